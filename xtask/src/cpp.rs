//! The C/C++ project in `bindings/c`: the C ABI library built by cargo, then configured and built by CMake into
//! `<target>/cpp`, for the C/C++ tests, the cross-language roles, the install check and the benches.

use crate::apt::ensure_debian_packages;
use crate::error::Result;
use crate::shell::{self, Workspace};
use crate::venv;

/// Builds `libqadataswap_c` with cargo (release) and the CMake project in `bindings/c`, tests and bench included,
/// into `<target>/cpp` (only `target` if given); returns the CMake build directory.
pub fn build_cpp(ws: &Workspace, target: Option<&str>) -> Result<std::path::PathBuf> {
    let build = configure_cpp(ws)?;
    let mut cmd = ws.command("cmake");
    cmd.arg("--build").arg(&build).args(["--parallel", "2"]);
    if let Some(t) = target {
        cmd.args(["--target", t]);
    }
    shell::run(&mut cmd)?;
    Ok(build)
}

/// Builds `libqadataswap_c` with cargo (release) and configures `bindings/c` into `<target>/cpp` with its tests and
/// bench on (they are off by default); returns the CMake build directory.
pub fn configure_cpp(ws: &Workspace) -> Result<std::path::PathBuf> {
    ensure_debian_packages(&["cmake", "g++", "libgtest-dev", "pkg-config"])?;
    shell::run(
        ws.cargo()
            .args(["build", "--release", "-p", "qadataswap-c"]),
    )?;
    let arrow = venv::pyarrow_paths(ws)?;
    let lib_dirs: Vec<String> = arrow
        .lib_dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    let build = ws.target_dir.join("cpp");
    shell::run(
        ws.command("cmake")
            .arg("-S")
            .arg(ws.path("bindings/c"))
            .arg("-B")
            .arg(&build)
            .arg("-DCMAKE_BUILD_TYPE=Release")
            .args(["-DQADATASWAP_BUILD_TESTS=ON", "-DQADATASWAP_BUILD_BENCH=ON"])
            .arg(format!(
                "-DQADATASWAP_RUST_LIB_DIR={}",
                ws.target_dir.join("release").display()
            ))
            .arg(format!(
                "-DQADATASWAP_ARROW_INCLUDE_DIR={}",
                arrow.include_dir.display()
            ))
            .arg(format!(
                "-DQADATASWAP_ARROW_LIB_DIRS={}",
                lib_dirs.join(";")
            )),
    )?;
    Ok(build)
}
