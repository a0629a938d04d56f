//! Gives the shared library a versioned SONAME, `libqadataswap_c.so.<major>`, so programs linked against it record
//! that name (found through their rpath or the loader path), not the absolute path of the build tree.
//!
//! The rule: the SONAME's number is the crate's major version, so it changes exactly when the version says the ABI
//! may break. While the version is 0.x it is `.so.0`, and (as semver says of 0.x) a new minor version may break the
//! ABI: the CMake package's version file only accepts the same 0.minor, so programs are rebuilt against it. The
//! installed file is `libqadataswap_c.so.<major>.<minor>.<patch>` with the `.so.<major>` and `.so` links
//! (`bindings/c/CMakeLists.txt`).

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".to_owned());
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libqadataswap_c.so.{major}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
