//! `cargo xtask fuzz` (the libFuzzer targets under `fuzz/`) and `cargo xtask valgrind` (the unsafe core's tests
//! under memcheck).

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use crate::apt::ensure_debian_packages;
use crate::error::{Error, Result};
use crate::shell::{self, Workspace};
use crate::summary::{Outcome, Steps};

/// The fuzz targets (`fuzz/fuzz_targets/<name>.rs`, `qadataswap_stream::fuzzing::TARGETS`) and the largest input
/// each gets.
const TARGETS: &[(&str, usize)] = &[
    ("segment", 1 << 20),
    ("frame", 1 << 20),
    ("stream", 1 << 20),
    ("follower", 1 << 20),
];

/// Targets whose seeds the `fuzz_seeds` example does not write itself: they start from the segment seeds, which
/// include the stream segments (the snapshot ones are refused at once, or become stream segments by a mutation of
/// the mode word).
const SEEDED_FROM_SEGMENT: &[&str] = &["stream", "follower"];

/// Where crashes are kept after the fix; `tests/fuzz_replay.rs` replays them in every `cargo test`.
const KEPT: &str = "crates/qadataswap-stream/tests/fuzz-corpus";

/// Options of `cargo xtask fuzz`.
#[derive(Debug, Clone, Copy)]
pub struct FuzzOptions {
    /// Seconds per target.
    pub seconds: u64,
}

/// What one target's run did.
struct FuzzRun {
    target: &'static str,
    seconds: f64,
    runs: Option<u64>,
    new_crashes: Vec<PathBuf>,
}

/// Builds and runs every target for `opts.seconds` (cargo fuzz with `--sanitizer none`: stable Rust), starting
/// from generated seeds plus the kept crashes. A crash stops its target; its input is copied into
/// `crates/qadataswap-stream/tests/fuzz-corpus/<target>/`, and the command fails at the end.
pub fn fuzz(ws: &Workspace, opts: FuzzOptions) -> Result<()> {
    ensure_cargo_fuzz(ws)?;
    let mut steps = Steps::new("xtask fuzz");
    let corpus = ws.target_dir.join("fuzz-corpus");
    steps.run("seeds", |_| {
        shell::run(
            ws.cargo()
                .args([
                    "run",
                    "--release",
                    "-q",
                    "-p",
                    "qadataswap-stream",
                    "--example",
                    "fuzz_seeds",
                    "--",
                ])
                .arg(&corpus),
        )?;
        for target in SEEDED_FROM_SEGMENT {
            copy_new(&corpus.join("segment"), &corpus.join(target))?;
        }
        for (target, _) in TARGETS {
            copy_new(&ws.path(KEPT).join(target), &corpus.join(target))?;
        }
        Ok(Outcome::Ran)
    })?;
    let fuzz_target_dir = ws.target_dir.join("fuzz");
    steps.run("build targets (cargo fuzz build --sanitizer none)", |_| {
        shell::run(
            ws.cargo()
                .env("CARGO_TARGET_DIR", &fuzz_target_dir)
                .args(["fuzz", "build", "--sanitizer", "none", "-O", "--fuzz-dir"])
                .arg(ws.path("fuzz")),
        )
        .map(|()| Outcome::Ran)
    })?;
    let mut runs = Vec::new();
    for &(target, max_len) in TARGETS {
        let mut outcome = None;
        let ran = steps.run(&format!("fuzz {target} for {} s", opts.seconds), |_| {
            let r = run_target(ws, &fuzz_target_dir, &corpus, target, max_len, opts.seconds)?;
            outcome = Some(r);
            Ok(Outcome::Ran)
        });
        if let Some(r) = outcome {
            runs.push(r);
        }
        ran?;
    }
    steps.print_summary();
    println!("\nfuzz summary:");
    println!("| target   | seconds | inputs run | new crashes |");
    println!("|----------|---------|------------|-------------|");
    for r in &runs {
        println!(
            "| {:<8} | {:>7.0} | {:>10} | {:>11} |",
            r.target,
            r.seconds,
            r.runs.map_or("?".to_string(), |n| n.to_string()),
            r.new_crashes.len()
        );
        for c in &r.new_crashes {
            println!("    kept {}", c.display());
        }
    }
    let crashes: usize = runs.iter().map(|r| r.new_crashes.len()).sum();
    if crashes > 0 {
        return Err(Error::Unexpected {
            message: format!(
                "{crashes} crashing input(s) found and kept under {KEPT}/: fix them, then `cargo test -p \
                 qadataswap-stream --test fuzz_replay` replays them"
            ),
        });
    }
    Ok(())
}

fn ensure_cargo_fuzz(ws: &Workspace) -> Result<()> {
    if shell::succeeds(ws.cargo().args(["fuzz", "--version"])) {
        return Ok(());
    }
    println!("fuzz: cargo-fuzz is not installed; installing it now with `cargo install cargo-fuzz --locked`");
    shell::run(ws.cargo().args(["install", "cargo-fuzz", "--locked"]))
}

/// Copy files of `from` that `to` does not have yet; returns the copies.
fn copy_new(from: &Path, to: &Path) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(to).map_err(|e| Error::io(format!("creating {}", to.display()), e))?;
    let Ok(entries) = fs::read_dir(from) else {
        return Ok(Vec::new());
    };
    let have: BTreeSet<_> = fs::read_dir(to)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    let mut copied = Vec::new();
    for e in entries.filter_map(|e| e.ok()) {
        let path = e.path();
        if !path.is_file() || have.contains(&e.file_name()) || e.file_name() == "README.md" {
            continue;
        }
        let dest = to.join(e.file_name());
        fs::copy(&path, &dest)
            .map_err(|err| Error::io(format!("copying {}", path.display()), err))?;
        copied.push(dest);
    }
    Ok(copied)
}

fn run_target(
    ws: &Workspace,
    fuzz_target_dir: &Path,
    corpus: &Path,
    target: &'static str,
    max_len: usize,
    seconds: u64,
) -> Result<FuzzRun> {
    let artifacts = ws.target_dir.join("fuzz-artifacts").join(target);
    fs::create_dir_all(&artifacts)
        .map_err(|e| Error::io(format!("creating {}", artifacts.display()), e))?;
    let mut cmd = ws.cargo();
    cmd.env("CARGO_TARGET_DIR", fuzz_target_dir)
        .args(["fuzz", "run", "--sanitizer", "none", "-O", "--fuzz-dir"])
        .arg(ws.path("fuzz"))
        .arg(target)
        .arg(corpus.join(target))
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-max_len={max_len}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .args(["-timeout=20", "-rss_limit_mb=4096", "-print_final_stats=1"]);
    let line = shell::display(&cmd);
    println!("$ {line}");
    let start = Instant::now();
    let mut child = cmd
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn {
            command: line.clone(),
            source,
        })?;
    let mut runs = None;
    if let Some(err) = child.stderr.take() {
        for l in BufReader::new(err).lines().map_while(|l| l.ok()) {
            // libFuzzer: "stat::number_of_executed_units: N" at the end, "#N ..." progress lines before.
            if let Some(n) = l.strip_prefix("stat::number_of_executed_units:") {
                runs = n.trim().parse().ok();
            } else if let Some(n) = l
                .strip_prefix('#')
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
            {
                runs = Some(runs.map_or(n, |r: u64| r.max(n)));
            }
            eprintln!("{l}");
        }
    }
    let status = child.wait().map_err(|source| Error::Spawn {
        command: line.clone(),
        source,
    })?;
    let new_crashes = copy_new(&artifacts, &ws.path(KEPT).join(target))?;
    if !status.success() && new_crashes.is_empty() {
        return Err(Error::Failed {
            command: line,
            status,
        });
    }
    Ok(FuzzRun {
        target,
        seconds: start.elapsed().as_secs_f64(),
        runs,
        new_crashes,
    })
}

/// The test binaries `cargo xtask valgrind` runs under memcheck: the unsafe core (shm, sync, arrow). Multi-process
/// tests re-execute their binary: those children run natively (valgrind does not trace children).
const VALGRIND_TESTS: &[(&str, &str)] = &[
    ("qadataswap-shm", "--lib"),
    ("qadataswap-sync", "--lib"),
    ("qadataswap-arrow", "--lib"),
    ("qadataswap-arrow", "snapshot"),
    ("qadataswap-arrow", "hostile"),
    ("qadataswap-stream", "fuzz_replay"),
];

/// Tests skipped under valgrind because they assert on wall-clock time, which valgrind's slowed-down, serialised
/// threads distort (they say nothing about memory safety and run natively in `cargo xtask test`).
const VALGRIND_SKIP: &[&str] = &["wait_that_nobody_publishes_times_out_and_says_so"];

/// `cargo xtask valgrind`: builds the test binaries above and runs each under
/// `valgrind --tool=memcheck --error-exitcode=1`; any invalid read, write or use of uninitialised memory fails it.
///
/// The binaries are built with `--cfg rustix_use_libc` (into `<target>/valgrind`): rustix's default backend
/// parses the vDSO itself, which valgrind does not map (rustix issue 1559: every binary dies with SIGSEGV in
/// `check_elf_base` before a test runs); the libc backend goes through glibc, which valgrind understands.
pub fn valgrind(ws: &Workspace) -> Result<()> {
    ensure_debian_packages(&["valgrind"])?;
    let mut steps = Steps::with_test_counts("xtask valgrind");
    for &(package, which) in VALGRIND_TESTS {
        let exe = test_binary(ws, package, which)?;
        steps.run(&format!("memcheck {package} {which}"), |tests| {
            let mut out = String::new();
            let result = shell::run_tee(
                ws.command("valgrind")
                    .args([
                        "--tool=memcheck",
                        "--error-exitcode=1",
                        "--leak-check=no",
                        "--fair-sched=yes",
                        "--quiet",
                    ])
                    .arg(&exe)
                    .args(["--test-threads=2"])
                    .args(VALGRIND_SKIP.iter().flat_map(|t| ["--skip", t]))
                    .env("QADATASWAP_VALGRIND", "1"),
                &mut out,
            );
            tests.add_output(&out);
            result.map(|()| Outcome::Ran)
        })?;
    }
    steps.print_summary();
    Ok(())
}

/// Build one test target and return its executable (from cargo's JSON messages).
fn test_binary(ws: &Workspace, package: &str, which: &str) -> Result<PathBuf> {
    let mut cmd = ws.cargo();
    cmd.env("RUSTFLAGS", "--cfg rustix_use_libc")
        .env("CARGO_TARGET_DIR", ws.target_dir.join("valgrind"))
        .args(["test", "--no-run", "--message-format=json", "-p", package]);
    if which == "--lib" {
        cmd.arg("--lib");
    } else {
        cmd.args(["--test", which]);
    }
    let out = shell::output(&mut cmd)?;
    out.lines()
        .filter(|l| l.contains("\"reason\":\"compiler-artifact\""))
        .filter_map(|l| {
            let at = l.find("\"executable\":\"")? + "\"executable\":\"".len();
            let end = l[at..].find('"')?;
            Some(PathBuf::from(&l[at..at + end]))
        })
        .next_back()
        .ok_or_else(|| Error::Unexpected {
            message: format!("cargo built no test executable for {package} {which}"),
        })
}
