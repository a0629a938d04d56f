//! What users install, built once and installed the way the README's "Install" section says, each in a fresh
//! temporary place outside the repository:
//!
//! - the Python wheel (`maturin build --release --zig --compatibility manylinux_2_28`: abi3, stripped, glibc 2.28),
//!   which is also what `.venv` gets (no second build), then a new venv that installs it from the file and runs the
//!   README's Python quick start as two processes in both orders, the console script and `python -m qadataswap`,
//!   and the oldest polars the package claims;
//! - an out-of-tree crate depending on `qadataswap` by path, running the README's Rust seed lines;
//! - `cargo install --path crates/qadataswap-cli`;
//! - `cargo package` of every crate that would be published, in dependency order.
//!
//! Each check prints `install check: <what> ... ok` and counts as one test.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::install_cmake::{readme_block, unexpected, TempDir};
use crate::shell::{self, Workspace};
use crate::summary::TestCounts;
use crate::venv;

/// The platform tag the wheel must carry (glibc 2.28: RHEL 8, Debian 10+, Ubuntu 18.10+, Amazon Linux 2023).
pub const WHEEL_TAG: &str = "manylinux_2_28_x86_64";
/// The largest wheel we ship.
const WHEEL_MAX_BYTES: u64 = 8 << 20;
/// The oldest polars `pyproject.toml` claims; the install check runs the quick start with it too.
const OLDEST_POLARS: &str = "polars==1.30.0";
/// Crates that would be published, in dependency order.
pub const PUBLISHED: &[&str] = &[
    "qadataswap-shm",
    "qadataswap-sync",
    "qadataswap-arrow",
    "qadataswap-stream",
    "qadataswap-polars",
    "qadataswap",
    "qadataswap-flight",
    "qadataswap-cli",
];

/// PATH with the venv's bin first (maturin finds `python -m ziglang` there).
fn venv_path(ws: &Workspace) -> Result<std::ffi::OsString> {
    let bin = venv::venv_dir(ws).join("bin");
    let mut dirs = vec![bin];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).map_err(|e| unexpected(format!("PATH: {e}")))
}

/// Builds the wheel into `<target>/wheels` and returns its path. One release build, shared with `.venv`.
pub fn build_wheel(ws: &Workspace) -> Result<PathBuf> {
    let out = ws.target_dir.join("wheels");
    if out.is_dir() {
        for e in
            fs::read_dir(&out).map_err(|e| Error::io(format!("listing {}", out.display()), e))?
        {
            let p = e.map_err(|e| Error::io("listing the wheels", e))?.path();
            if p.extension().is_some_and(|x| x == "whl") {
                fs::remove_file(&p)
                    .map_err(|e| Error::io(format!("removing the old {}", p.display()), e))?;
            }
        }
    }
    shell::run(
        ws.command(venv::venv_bin(ws, "maturin"))
            .current_dir(ws.path("bindings/python"))
            .env("VIRTUAL_ENV", venv::venv_dir(ws))
            .env("PATH", venv_path(ws)?)
            .args([
                "build",
                "--release",
                "--zig",
                "--compatibility",
                "manylinux_2_28",
                "--strip",
                "--out",
            ])
            .arg(&out),
    )?;
    let wheel = fs::read_dir(&out)
        .map_err(|e| Error::io(format!("listing {}", out.display()), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| unexpected(format!("maturin built no wheel into {}", out.display())))?;
    println!("wheel: {}", wheel.display());
    Ok(wheel)
}

/// Installs `wheel` into `.venv` (what the tests, the demo and the benches import).
pub fn install_into_dev_venv(ws: &Workspace, wheel: &Path) -> Result<()> {
    shell::run(
        ws.command(venv::venv_python(ws))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--force-reinstall",
                "--no-deps",
            ])
            .arg(wheel),
    )
}

/// The code block after `<!-- readme-test: LANG TAG -->` in README.md.
fn readme(ws: &Workspace, lang: &str, tag: &str) -> Result<String> {
    let text =
        fs::read_to_string(ws.path("README.md")).map_err(|e| Error::io("reading README.md", e))?;
    readme_block(&text, lang, tag)
}

fn check(name: &str, tests: &mut TestCounts, f: impl FnOnce() -> Result<()>) -> Result<()> {
    println!("install check: {name} ...");
    match f() {
        Ok(()) => {
            println!("install check: {name} ... ok");
            tests.passed += 1;
            Ok(())
        }
        Err(e) => {
            println!("install check: {name} ... FAILED");
            tests.failed += 1;
            Err(e)
        }
    }
}

/// Runs `reader` and `writer` (Python files in `dir`) as two processes, the reader started first or second, and
/// returns the reader's stdout.
fn two_processes(python: &Path, dir: &Path, reader_first: bool) -> Result<String> {
    let spawn = |file: &str| {
        Command::new(python)
            .arg(file)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(format!("starting {} {file}", python.display()), e))
    };
    let (reader, writer) = if reader_first {
        let r = spawn("reader.py")?;
        (r, spawn("writer.py")?)
    } else {
        let w = spawn("writer.py")?;
        (spawn("reader.py")?, w)
    };
    let w = writer
        .wait_with_output()
        .map_err(|e| Error::io("waiting for writer.py", e))?;
    let r = reader
        .wait_with_output()
        .map_err(|e| Error::io("waiting for reader.py", e))?;
    for (what, o) in [("writer.py", &w), ("reader.py", &r)] {
        if !o.status.success() {
            return Err(unexpected(format!(
                "{what} failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            )));
        }
    }
    Ok(String::from_utf8_lossy(&r.stdout).into_owned())
}

/// The wheel: its tag, size and metadata, then a fresh venv that installs it and runs what the README says.
pub fn wheel_checks(ws: &Workspace, wheel: &Path, tests: &mut TestCounts) -> Result<()> {
    check(
        "the wheel is abi3, manylinux_2_28, stripped and under 8 MB, with complete metadata",
        tests,
        || {
            let file = wheel.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !file.contains("abi3") || !file.contains(WHEEL_TAG) {
                return Err(unexpected(format!(
                    "{file}: expected an abi3 {WHEEL_TAG} wheel"
                )));
            }
            let size = fs::metadata(wheel)
                .map_err(|e| Error::io("reading the wheel's size", e))?
                .len();
            println!("  {file}: {:.1} MB", size as f64 / (1 << 20) as f64);
            if size > WHEEL_MAX_BYTES {
                return Err(unexpected(format!(
                    "{file} is {size} bytes, above the 8 MB limit"
                )));
            }
            // The metadata and the extension, read with the venv's python (a wheel is a zip).
            let script = "import sys, zipfile\n\
                      z = zipfile.ZipFile(sys.argv[1])\n\
                      meta = next(n for n in z.namelist() if n.endswith('.dist-info/METADATA'))\n\
                      print(z.read(meta).decode())\n\
                      so = next(i for i in z.infolist() if i.filename.endswith('.so'))\n\
                      data = z.read(so.filename)\n\
                      import struct\n\
                      shoff = struct.unpack_from('<Q', data, 0x28)[0]\n\
                      entsize, count, strndx = struct.unpack_from('<HHH', data, 0x3A)\n\
                      sh = lambda i: struct.unpack_from('<IIQQQQIIQQ', data, shoff + i * entsize)\n\
                      strtab = sh(strndx)[4]\n\
                      names = [data[strtab + sh(i)[0]:data.index(b'\\0', strtab + sh(i)[0])].decode() for i in range(count)]\n\
                      print('SO_BYTES', len(data))\n\
                      print('DEBUG_SECTIONS', [n for n in names if n.startswith('.debug')])\n\
                      print('ENTRY_POINTS', any(n.endswith('entry_points.txt') for n in z.namelist()))\n";
            let out = shell::output(
                ws.command(venv::venv_python(ws))
                    .args(["-c", script])
                    .arg(wheel),
            )?;
            for needed in [
                "Classifier: Typing :: Typed",
                "Requires-Dist: polars",
                "Description-Content-Type: text/markdown",
                "License",
                "DEBUG_SECTIONS []",
                "ENTRY_POINTS True",
            ] {
                if !out.contains(needed) {
                    return Err(unexpected(format!("the wheel's metadata lacks `{needed}`")));
                }
            }
            Ok(())
        },
    )?;

    let tmp = TempDir::new("wheel")?;
    let venv_dir = tmp.path().join("venv");
    let base = std::env::var_os("QADATASWAP_PYTHON").unwrap_or_else(|| "python3".into());
    let python = venv_dir.join("bin/python");
    check(
        "pip install of the wheel into a new venv, then the Python quick start in both orders",
        tests,
        || {
            shell::run(Command::new(&base).args(["-m", "venv"]).arg(&venv_dir))?;
            shell::run(
                Command::new(&python)
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                    ])
                    .arg(wheel),
            )?;
            let dir = tmp.path().join("quickstart");
            fs::create_dir_all(&dir).map_err(|e| Error::io("creating the quick start dir", e))?;
            // Names of our own, so a concurrent run elsewhere on the machine cannot collide.
            let tag = format!("qads-install-{}", std::process::id());
            for (file, which) in [("writer.py", "writer"), ("reader.py", "reader")] {
                let code = readme(ws, "python", which)?
                    .replace("\"mydata\"", &format!("\"{tag}-snap\""))
                    .replace("\"bigdata\"", &format!("\"{tag}-stream\""));
                fs::write(dir.join(file), code)
                    .map_err(|e| Error::io(format!("writing {file}"), e))?;
            }
            for reader_first in [true, false] {
                let out = two_processes(&python, &dir, reader_first)?;
                let lines: Vec<&str> = out.lines().collect();
                if lines != ["(3, 2)", "45000"] {
                    return Err(unexpected(format!(
                    "the README's reader printed {lines:?}, expected [\"(3, 2)\", \"45000\"] (reader first: {reader_first})"
                )));
                }
            }
            Ok(())
        },
    )?;
    check(
        "the qadataswap console script and python -m qadataswap from the wheel",
        tests,
        || {
            let script = venv_dir.join("bin/qadataswap");
            let help = shell::output(Command::new(&script).arg("--help"))?;
            if !help.contains("gc") || !help.contains("inspect") {
                return Err(unexpected(format!("`qadataswap --help` printed {help:?}")));
            }
            shell::run(
                Command::new(&script)
                    .args(["ls", "--json"])
                    .stdout(Stdio::null()),
            )?;
            let code = Command::new(&python)
                .args(["-m", "qadataswap", "inspect", "no-such-segment-here"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_err(|e| Error::io("running python -m qadataswap", e))?;
            if code.code() != Some(3) {
                return Err(unexpected(format!(
                    "`python -m qadataswap inspect <missing>` exited {code}, expected 3"
                )));
            }
            Ok(())
        },
    )?;
    check(
        &format!("the quick start with the oldest polars claimed ({OLDEST_POLARS})"),
        tests,
        || {
            shell::run(Command::new(&python).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                OLDEST_POLARS,
            ]))?;
            let out = two_processes(&python, &tmp.path().join("quickstart"), true)?;
            let lines: Vec<&str> = out.lines().collect();
            if lines != ["(3, 2)", "45000"] {
                return Err(unexpected(format!(
                    "with {OLDEST_POLARS} the README's reader printed {lines:?}"
                )));
            }
            Ok(())
        },
    )
}

/// An out-of-tree crate that depends on `qadataswap` by path and runs the README's Rust seed lines.
pub fn crate_check(ws: &Workspace, tests: &mut TestCounts) -> Result<()> {
    check(
        "an out-of-tree crate using qadataswap runs the README's Rust seed",
        tests,
        || {
            let tmp = TempDir::new("crate")?;
            let root = ws.path("crates/qadataswap");
            let manifest = format!(
            "[package]\nname = \"qads-user\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\nqadataswap = {{ path = {:?} }}\n\n[workspace]\n",
            root.display().to_string()
        );
            fs::create_dir_all(tmp.path().join("src"))
                .map_err(|e| Error::io("creating the crate", e))?;
            fs::write(tmp.path().join("Cargo.toml"), manifest)
                .map_err(|e| Error::io("writing Cargo.toml", e))?;
            // The workspace's lock: the same versions as the tests, so the build reuses what they built.
            fs::copy(ws.path("Cargo.lock"), tmp.path().join("Cargo.lock"))
                .map_err(|e| Error::io("copying Cargo.lock", e))?;
            let name = format!("qads-install-rs-{}", std::process::id());
            let seed = readme(ws, "rust", "seed")?.replace("\"mydata\"", &format!("{name:?}"));
            let main = format!(
                "use qadataswap::polars_core::prelude::*;\n\n\
             fn main() -> Result<(), Box<dyn std::error::Error>> {{\n\
             let df = df!(\"a\" => [1i64, 2, 3])?;\n{seed}\
             assert_eq!(df.shape(), (3, 1));\n\
             Ok(())\n}}\n"
            );
            fs::write(tmp.path().join("src/main.rs"), main)
                .map_err(|e| Error::io("writing main.rs", e))?;
            shell::run(
                ws.cargo()
                    .current_dir(tmp.path())
                    .env("CARGO_TARGET_DIR", &ws.target_dir)
                    // Not --locked: the lock gains the new root package; every version in it stays as tested.
                    .args(["run", "--quiet", "--bin", "qads-user"]),
            )
        },
    )
}

/// `cargo install --path crates/qadataswap-cli` into a temporary root, then the installed tool runs.
pub fn cli_check(ws: &Workspace, tests: &mut TestCounts) -> Result<()> {
    check(
        "cargo install --path crates/qadataswap-cli, then the installed qadataswap runs",
        tests,
        || {
            let tmp = TempDir::new("cli")?;
            shell::run(
                ws.cargo()
                    .env("CARGO_TARGET_DIR", &ws.target_dir)
                    .args([
                        "install",
                        "--locked",
                        "--path",
                        "crates/qadataswap-cli",
                        "--root",
                    ])
                    .arg(tmp.path()),
            )?;
            let help =
                shell::output(Command::new(tmp.path().join("bin/qadataswap")).arg("--help"))?;
            // `serve` and `relay`: the standalone tool has Flight (the wheel's does not).
            if !help.contains("gc") || !help.contains("serve") || !help.contains("relay") {
                return Err(unexpected(format!(
                    "the installed `qadataswap --help` printed {help:?}"
                )));
            }
            Ok(())
        },
    )
}

/// `cargo package` of every published crate, in order (no verify build: `cargo test` built them all).
pub fn package_check(ws: &Workspace, tests: &mut TestCounts) -> Result<()> {
    check(
        "cargo package of every crate that would be published",
        tests,
        || {
            let mut cmd = ws.cargo();
            cmd.args(["package", "--no-verify", "--allow-dirty", "--locked"]);
            for p in PUBLISHED {
                cmd.args(["-p", p]);
            }
            shell::run(&mut cmd)
        },
    )
}

/// The Python package in `.venv` (used by the tests, the demo and cross-lang): the release wheel, built once
/// (`cargo xtask dist`) and installed from the file, so that what is tested is what users install.
pub fn build_python(ws: &Workspace) -> Result<()> {
    let wheel = build_wheel(ws)?;
    install_into_dev_venv(ws, &wheel)
}
