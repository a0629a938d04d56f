//! `cargo xtask test`: every check that `.ci/run` runs, in order, stopping at the first failure.

use crate::error::{Error, Result};
use crate::shell::{self, Workspace};
use crate::summary::{Outcome, Steps, TestCounts};
use crate::venv;

/// Options of `cargo xtask test`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TestOptions {
    /// `--quick`: skip the loom models and the Python tests.
    pub quick: bool,
}

/// Runs setup, then the Rust tests, loom models, Python, C++ and cross-language steps, then prints
/// the summary table.
pub fn test(ws: &Workspace, opts: TestOptions) -> Result<()> {
    let mut steps = Steps::with_test_counts("xtask test");
    if ws.soak {
        println!("--soak: slow soak steps are on (children see QADATASWAP_SOAK=1)");
    }
    warn_if_disk_is_short(ws);
    steps.run("setup (.venv)", |_| venv::setup(ws).map(|()| Outcome::Ran))?;
    // The Python package is installed before the Rust tests, which start Python readers of their own (the R15
    // soak's, the format document's reader).
    steps.run("python package (wheel, into .venv)", |_| {
        if opts.quick {
            return Ok(Outcome::Skipped("--quick".into()));
        }
        crate::install::build_python(ws).map(|()| Outcome::Ran)
    })?;
    steps.run("cargo test --workspace", |tests| cargo_tests(ws, tests))?;
    // The workspace's lints (undocumented_unsafe_blocks, missing_debug_implementations, ...) bite only here.
    steps.run("clippy (-D warnings)", |_| {
        shell::run(ws.cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))
        .map(|()| Outcome::Ran)
    })?;
    steps.run("loom models (qadataswap-sync)", |tests| {
        if opts.quick {
            return Ok(Outcome::Skipped("--quick".into()));
        }
        loom_models(ws, tests)
    })?;
    steps.run("python bindings (pytest)", |tests| {
        if opts.quick {
            return Ok(Outcome::Skipped("--quick".into()));
        }
        python_tests(ws, tests)
    })?;
    steps.run("C/C++ bindings", |tests| cpp_tests(ws, tests))?;
    steps.run("install: cmake package", |tests| {
        crate::install_cmake::install_check(ws, tests)
    })?;
    steps.run("cross-language", |tests| cross_lang_step(ws, tests))?;
    steps.run("install: wheel in a fresh venv", |tests| {
        if opts.quick {
            return Ok(Outcome::Skipped("--quick".into()));
        }
        let wheel = crate::install::build_wheel(ws)?; // up to date: the python step built it
        crate::install::wheel_checks(ws, &wheel, tests).map(|()| Outcome::Ran)
    })?;
    steps.run("install: crate, CLI, cargo package", |tests| {
        crate::install::crate_check(ws, tests)?;
        crate::install::cli_check(ws, tests)?;
        crate::install::package_check(ws, tests).map(|()| Outcome::Ran)
    })?;
    steps.print_summary();
    if steps.tests.failed > 0 {
        return Err(Error::Unexpected {
            message: format!(
                "{} tests failed although every runner exited 0",
                steps.tests.failed
            ),
        });
    }
    Ok(())
}

/// What a clean `cargo xtask test` leaves in the target dir (measured: 3.5 GB), plus headroom.
const DISK_NEEDED_BYTES: u64 = 5 << 30;

/// Says up front when the disk holding the target dir has less room than a clean run needs: running
/// out mid-build ends in a linker's "No space left on device" far from the cause.
fn warn_if_disk_is_short(ws: &Workspace) {
    let mut dir = ws.target_dir.as_path();
    while !dir.exists() {
        match dir.parent() {
            Some(p) => dir = p,
            None => return,
        }
    }
    let Ok(out) = std::process::Command::new("df")
        .args(["-Pk"])
        .arg(dir)
        .output()
    else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let free_kib = text
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(free) = free_kib.map(|k| k * 1024) {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        if free < DISK_NEEDED_BYTES {
            eprintln!(
                "xtask: warning: only {:.1} GiB free on the disk of {} ; a clean `cargo xtask test` needs about {:.0} GiB. \
                 Free some space (`cargo clean`, old target dirs) or point CARGO_TARGET_DIR at a bigger disk.",
                gib(free),
                ws.target_dir.display(),
                gib(DISK_NEEDED_BYTES)
            );
        } else {
            println!(
                "disk: {:.1} GiB free for {} (a clean run needs about {:.0} GiB)",
                gib(free),
                ws.target_dir.display(),
                gib(DISK_NEEDED_BYTES)
            );
        }
    }
}

/// Unit, integration, doc tests and examples of every workspace member (benches are left to `bench`).
fn cargo_tests(ws: &Workspace, tests: &mut TestCounts) -> Result<Outcome> {
    let mut out = String::new();
    let result = shell::run_tee(ws.cargo().args(["test", "--workspace"]), &mut out);
    tests.add_output(&out);
    result.map(|()| Outcome::Ran)
}

/// The loom models in `crates/qadataswap-sync/tests/loom.rs`, built under the project's own cfg in a
/// separate target dir so that the normal build is not invalidated.
fn loom_models(ws: &Workspace, tests: &mut TestCounts) -> Result<Outcome> {
    let rustflags = match std::env::var("RUSTFLAGS") {
        Ok(existing) if !existing.trim().is_empty() => format!("{existing} --cfg qadataswap_loom"),
        _ => "--cfg qadataswap_loom".to_string(),
    };
    let mut out = String::new();
    let result = shell::run_tee(
        ws.cargo()
            .env("RUSTFLAGS", rustflags)
            .env("CARGO_TARGET_DIR", ws.target_dir.join("loom"))
            .args([
                "test",
                "-p",
                "qadataswap-sync",
                "--release",
                "--test",
                "loom",
            ]),
        &mut out,
    );
    tests.add_output(&out);
    result.map(|()| Outcome::Ran)
}

/// Runs pytest on `bindings/python/tests` (the extension was built into `.venv` by the step before the Rust tests).
fn python_tests(ws: &Workspace, tests: &mut TestCounts) -> Result<Outcome> {
    let venv_dir = venv::venv_dir(ws);
    // The Flight tests (test_flight.py) drive `qadataswap serve`/`relay`, which the wheel's tool leaves out: they
    // run the workspace's own binary (a no-op build after `cargo test --workspace`).
    shell::run(ws.cargo().args(["build", "-p", "qadataswap-cli"]))?;
    let mut out = String::new();
    let result = shell::run_tee(
        ws.command(venv::venv_python(ws))
            .env("VIRTUAL_ENV", &venv_dir)
            .env(
                "QADATASWAP_CLI",
                ws.target_dir.join("debug").join("qadataswap"),
            )
            .args(["-m", "pytest", "bindings/python/tests", "-q"]),
        &mut out,
    );
    tests.add_output(&out);
    match result {
        // pytest exits 5 when it collected nothing: a binding without tests is a failure here, said plainly.
        Err(Error::Failed { status, .. }) if status.code() == Some(5) => Err(Error::Unexpected {
            message: "pytest collected no tests in bindings/python/tests; add tests or remove the binding".into(),
        }),
        other => other.map(|()| Outcome::Ran),
    }
}

/// C/C++ bindings: builds the C ABI crate (`qadataswap-c`, release), configures and builds `bindings/c` with CMake
/// against the Arrow C++ that pyarrow bundles, then runs ctest: the GoogleTest suite of the C++ header, the C11 test
/// of the C header (shared and static library) and a `find_package(qadataswap)` / pkg-config consumer.
pub fn cpp_tests(ws: &Workspace, tests: &mut TestCounts) -> Result<Outcome> {
    let build = crate::cpp::build_cpp(ws, None)?;
    let mut out = String::new();
    let result = shell::run_tee(
        ws.command("ctest")
            .arg("--test-dir")
            .arg(&build)
            .arg("--output-on-failure"),
        &mut out,
    );
    tests.add_output(&out);
    result.map(|()| Outcome::Ran)
}

/// The cross-language step of `test`: the 9 writer/reader pairs (and the three-language streams).
fn cross_lang_step(ws: &Workspace, tests: &mut TestCounts) -> Result<Outcome> {
    let mut out = String::new();
    let r = crate::crosslang::cross_lang_report(ws, &mut out);
    tests.add_output(&out);
    r.map(|()| Outcome::Ran)
}

/// `cargo xtask cross-lang`: writers and readers in Rust, Python and C++ exchanging frames.
pub fn cross_lang(ws: &Workspace) -> Result<()> {
    crate::crosslang::cross_lang(ws)
}
