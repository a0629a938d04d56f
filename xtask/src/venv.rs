//! The Python environment: `.venv` at the repository root with `requirements-dev.txt` installed, plus
//! the facts about it that later steps need (its python, pyarrow's Arrow C++ headers and libraries).

use std::fs;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::shell::{self, Workspace};

/// The pinned requirements file, relative to the repository root.
pub const REQUIREMENTS: &str = "requirements-dev.txt";
/// The virtual environment, relative to the repository root.
pub const VENV: &str = ".venv";
/// Inside the venv: the hash of the requirements file that was last installed completely.
const STAMP: &str = ".xtask-requirements.stamp";

/// The venv's directory.
pub fn venv_dir(ws: &Workspace) -> PathBuf {
    ws.path(VENV)
}

/// The venv's python interpreter (it may not exist before [`setup`]).
pub fn venv_python(ws: &Workspace) -> PathBuf {
    venv_dir(ws).join("bin").join("python")
}

/// A program installed into the venv, such as `maturin` or `pytest`.
pub fn venv_bin(ws: &Workspace, name: &str) -> PathBuf {
    venv_dir(ws).join("bin").join(name)
}

/// Makes `.venv` (with `$QADATASWAP_PYTHON`, default `python3`) and installs the pinned requirements,
/// unless the stamp says this exact requirements file is already installed.
pub fn setup(ws: &Workspace) -> Result<()> {
    let req_path = ws.path(REQUIREMENTS);
    let requirements = fs::read(&req_path).map_err(|e| {
        Error::io(
            format!(
                "reading {} (it pins the Python dev tools)",
                req_path.display()
            ),
            e,
        )
    })?;
    let hash = format!("fnv1a64:{:016x}\n", fnv1a64(&requirements));
    let venv = venv_dir(ws);
    let python = venv_python(ws);
    let stamp = venv.join(STAMP);

    let python_works =
        python.is_file() && shell::succeeds(ws.command(&python).args(["-c", "import sys"]));
    if python_works && fs::read_to_string(&stamp).is_ok_and(|s| s == hash) {
        println!(
            "setup: {} is up to date with {REQUIREMENTS} (nothing to install)",
            VENV
        );
        return Ok(());
    }

    if !python_works {
        if venv.exists() {
            println!(
                "setup: {} exists but its python does not run; recreating it",
                venv.display()
            );
            fs::remove_dir_all(&venv)
                .map_err(|e| Error::io(format!("removing the broken {}", venv.display()), e))?;
        }
        let base = std::env::var_os("QADATASWAP_PYTHON").unwrap_or_else(|| "python3".into());
        println!("setup: creating the virtual environment {}", venv.display());
        shell::run(ws.command(&base).args(["-m", "venv"]).arg(&venv))?;
    }

    let pins: Vec<&str> = std::str::from_utf8(&requirements)
        .unwrap_or("")
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .collect();
    println!(
        "setup: installing into {VENV} with pip, from {REQUIREMENTS}: {}",
        pins.join(", ")
    );
    println!("       (their own dependencies come along; pip prints them below)");
    shell::run(
        ws.command(&python)
            .args(["-m", "pip", "install", "--requirement"])
            .arg(&req_path),
    )?;
    fs::write(&stamp, hash).map_err(|e| Error::io(format!("writing {}", stamp.display()), e))?;
    println!("setup: done; {VENV} matches {REQUIREMENTS}");
    Ok(())
}

/// Where pyarrow's bundled Arrow C++ lives, for compiling and linking C++ against it.
#[derive(Debug, Clone)]
pub struct PyArrowPaths {
    /// `pyarrow.get_include()`: holds `arrow/api.h`.
    pub include_dir: PathBuf,
    /// `pyarrow.get_library_dirs()`: hold `libarrow.so` (after `create_library_symlinks()`).
    pub lib_dirs: Vec<PathBuf>,
}

/// Asks the venv's pyarrow for its include and library dirs, and runs
/// `pyarrow.create_library_symlinks()` so that `-larrow` finds the versioned `libarrow.so.N`.
/// Call after [`setup`].
pub fn pyarrow_paths(ws: &Workspace) -> Result<PyArrowPaths> {
    const SCRIPT: &str = "import pyarrow as pa\n\
                          pa.create_library_symlinks()\n\
                          print(pa.get_include())\n\
                          for d in pa.get_library_dirs():\n    print(d)\n";
    println!(
        "pyarrow: creating the libarrow symlinks and reading its include/lib dirs (venv python)"
    );
    let out = shell::output(ws.command(venv_python(ws)).args(["-c", SCRIPT]))?;
    let mut lines = out.lines().map(str::trim).filter(|l| !l.is_empty());
    let include_dir = lines.next().map(PathBuf::from).ok_or_else(|| Error::Unexpected {
        message: "pyarrow printed no include dir; is pyarrow installed in .venv? run `cargo xtask setup`".into(),
    })?;
    let lib_dirs: Vec<PathBuf> = lines.map(PathBuf::from).collect();
    if lib_dirs.is_empty() {
        return Err(Error::Unexpected {
            message: "pyarrow printed no library dirs".into(),
        });
    }
    Ok(PyArrowPaths {
        include_dir,
        lib_dirs,
    })
}

/// FNV-1a, 64 bit: a stable hash for the stamp (std's hasher may change between releases).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::fnv1a64;

    #[test]
    fn stamp_hash_matches_the_published_fnv1a_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
