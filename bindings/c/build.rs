//! Gives the shared library a SONAME so programs linked against it record `libqadataswap_c.so` (found through their
//! rpath or the loader path), not the absolute path of the build tree.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libqadataswap_c.so");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
