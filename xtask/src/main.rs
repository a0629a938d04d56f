//! `cargo xtask`: the project's automation, in Rust so that it runs wherever cargo does.
//!
//! ```text
//! cargo xtask setup                  # .venv with requirements-dev.txt (skipped when up to date)
//! cargo xtask test [--quick] [--soak] [--valgrind]
//! cargo xtask demo
//! cargo xtask bench [--quick]
//! cargo xtask fuzz [--seconds N]     # libFuzzer targets under fuzz/ (cargo fuzz, stable, --sanitizer none)
//! cargo xtask valgrind               # the unsafe core's tests under memcheck
//! cargo xtask cross-lang             # the 9 writer/reader language pairs
//! cargo xtask dist                   # build the wheel (also what `test` installs into .venv)
//! cargo xtask install-check          # the C/C++ package installed, moved and used downstream
//! ```
//!
//! `.ci/run` is `cargo xtask test`: what passes here passes in CI.
#![forbid(unsafe_code)]

mod apt;
mod bench;
mod bench_flight;
mod cpp;
mod crosslang;
mod demo;
mod error;
mod fuzz;
mod install;
mod install_cmake;
mod shell;
mod suite;
mod summary;
mod venv;

use std::process::ExitCode;

use error::{Error, Result};
use shell::Workspace;

const USAGE: &str = "\
usage: cargo xtask <command> [flags]

commands:
  setup               make .venv at the repo root and install requirements-dev.txt into it
                      (skipped when .venv already matches the file)
  test [--quick] [--soak] [--valgrind]
                      setup, the wheel (installed into .venv), cargo test --workspace, clippy
                      (-D warnings), loom models,
                      pytest, C/C++ (ctest, then install-check), cross-language, and the install checks
                      (the wheel in a fresh venv, an out-of-tree crate, cargo install of the CLI, cargo
                      package); stops at the first failure, ends with a table
                      --quick     skip the loom models and the Python tests
                      --soak      run slow soak steps too (children see QADATASWAP_SOAK=1)
                      --valgrind  then run `valgrind` (below)
  demo                run the demos
  bench [--quick]     every benchmark in one run; JSON and report.md under target/bench/
                      --quick  the benches' quick modes (Python rivals: 1M rows only)
  fuzz [--seconds N]  build the libFuzzer targets under fuzz/ (cargo fuzz, --sanitizer none: stable Rust;
                      installs cargo-fuzz with cargo install if missing, saying so) and run each for N
                      seconds (default 60) from generated seeds; crashes are kept under
                      crates/qadataswap-stream/tests/fuzz-corpus/, which `cargo test` replays
  valgrind            the shm, sync and arrow test binaries under valgrind memcheck
                      (--error-exitcode=1); installs the Debian package if missing
  cross-lang          writers and readers in Rust, Python and C++ exchanging frames (the 9 pairs)
  dist                build the Python wheel into <target>/wheels (abi3, manylinux_2_28, stripped)
  install-check       cmake --install the C/C++ package, move the prefix, then build and run a downstream
                      project against it (find_package and pkg-config); a step of `test`
  help                this text

environment:
  CARGO_TARGET_DIR    honoured; loom builds go to <target>/loom, bench output to <target>/bench
  QADATASWAP_PYTHON   the python that creates .venv (default: python3)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("\nxtask: error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[String]) -> Result<()> {
    let Some((command, flags)) = args.split_first() else {
        print!("{USAGE}");
        return Err(Error::usage("no command given"));
    };
    let mut quick = false;
    let mut soak = false;
    let mut valgrind = false;
    let mut seconds = 60;
    let mut flags = flags.iter();
    while let Some(flag) = flags.next() {
        match (command.as_str(), flag.as_str()) {
            ("test" | "bench", "--quick") => quick = true,
            ("test", "--soak") => soak = true,
            ("test", "--valgrind") => valgrind = true,
            ("fuzz", "--seconds") => {
                seconds = flags
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| Error::usage("`--seconds` needs a whole number of seconds"))?;
            }
            (_, "-h" | "--help") => {
                print!("{USAGE}");
                return Ok(());
            }
            _ => return Err(Error::usage(format!("`{command}` does not take `{flag}`"))),
        }
    }
    let ws = Workspace::locate(soak)?;
    match command.as_str() {
        "setup" => venv::setup(&ws),
        "test" => {
            suite::test(&ws, suite::TestOptions { quick })?;
            if valgrind {
                fuzz::valgrind(&ws)?;
            }
            Ok(())
        }
        "demo" => demo::demo(&ws),
        "bench" => bench::bench(&ws, bench::BenchOptions { quick }),
        "fuzz" => fuzz::fuzz(&ws, fuzz::FuzzOptions { seconds }),
        "valgrind" => fuzz::valgrind(&ws),
        "cross-lang" => suite::cross_lang(&ws),
        "install-check" => install_cmake::install_check_command(&ws),
        "dist" => {
            venv::setup(&ws)?;
            install::build_wheel(&ws).map(|_| ())
        }
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => Err(Error::usage(format!("unknown command `{other}`"))),
    }
}
