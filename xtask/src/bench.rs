//! `cargo xtask bench`: every benchmark in one run on this machine, each printing its own table and
//! writing JSON under `target/bench/`, plus a combined `target/bench/report.md` and `results.json`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::shell::{self, Workspace};
use crate::summary::{Outcome, Steps};
use crate::venv;

/// Options of `cargo xtask bench`.
#[derive(Debug, Clone, Copy, Default)]
pub struct BenchOptions {
    /// `--quick`: the benches' own quick modes (rivals: only the 1M-row case).
    pub quick: bool,
}

/// One benchmark program. It must print a readable table on stdout and write JSON to the given path.
struct Bench {
    /// Short name: the JSON file is `target/bench/<key>.json`.
    key: &'static str,
    title: &'static str,
    /// Path relative to the root that must exist for the bench to run.
    requires: &'static str,
    command: fn(&Workspace, &Path, BenchOptions) -> Command,
}

/// The benches, in the order they run. The arrow and stream benches are added here as they land.
const BENCHES: &[Bench] = &[
    Bench {
        key: "sync-handoff",
        title: "qadataswap-sync: small-message handoff between two processes",
        requires: "crates/qadataswap-sync/examples/handoff.rs",
        command: |ws, json, _| {
            let mut cmd = ws.cargo();
            cmd.args(["run", "--release", "-p", "qadataswap-sync", "--example", "handoff", "--", "--json"]).arg(json);
            cmd
        },
    },
    Bench {
        key: "arrow-read",
        title: "qadataswap-arrow: read() on an open reader, 1M and 10M rows of (int64, float64, utf8view)",
        requires: "crates/qadataswap-arrow/examples/read_bench.rs",
        command: |ws, json, opts| {
            let mut cmd = ws.cargo();
            cmd.args(["run", "--release", "-p", "qadataswap-arrow", "--example", "read_bench", "--", "--json"]).arg(json);
            if opts.quick {
                cmd.arg("--quick");
            }
            cmd
        },
    },
    Bench {
        key: "arrow-write",
        title: "qadataswap-arrow: one-copy write(), loan and arrow-ipc's StreamWriter vs a warm memcpy (16 MB, 320 MB)",
        requires: "crates/qadataswap-arrow/examples/write_bench.rs",
        command: |ws, json, opts| {
            let mut cmd = ws.cargo();
            cmd.args(["run", "--release", "-p", "qadataswap-arrow", "--example", "write_bench", "--", "--json"]).arg(json);
            if opts.quick {
                cmd.arg("--quick");
            }
            cmd
        },
    },
    Bench {
        key: "cpp-read",
        title: "C++ (bindings/c): Reader::Read() to an arrow::Table on an open reader, 1M and 10M rows of (int64, float64, utf8view)",
        requires: "bindings/c/bench/read_bench.cc",
        // Builds the C ABI crate and the CMake target first (Arrow C++ found through the .venv's pyarrow), then runs.
        command: |ws, json, opts| {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut cmd = ws.command("sh");
            cmd.arg("-c")
                .arg(
                    "set -e; cargo=\"$0\"; t=\"$1\"; shift; \"$cargo\" build --release -p qadataswap-c; \
                     cmake -S bindings/c -B \"$t/cpp\" -DCMAKE_BUILD_TYPE=Release -DQADATASWAP_RUST_LIB_DIR=\"$t/release\" \
                     -DQADATASWAP_BUILD_TESTS=ON -DQADATASWAP_BUILD_BENCH=ON >/dev/null; \
                     cmake --build \"$t/cpp\" --parallel 2 --target read_bench >/dev/null; \
                     exec \"$t/cpp/read_bench\" \"$@\"",
                )
                .arg(cargo)
                .arg(&ws.target_dir)
                .arg("--json")
                .arg(json);
            if opts.quick {
                cmd.arg("--quick");
            }
            cmd
        },
    },
    Bench {
        key: "arrow-validation",
        title: "qadataswap-arrow: read() at Validation::Trusted vs Full vs read_copied(), 1M rows of (int64, float64, utf8view)",
        requires: "crates/qadataswap-arrow/examples/validation_bench.rs",
        command: |ws, json, opts| {
            let mut cmd = ws.cargo();
            cmd.args(["run", "--release", "-p", "qadataswap-arrow", "--example", "validation_bench", "--", "--json"]).arg(json);
            if opts.quick {
                cmd.arg("--quick");
            }
            cmd
        },
    },
    Bench {
        key: "stream-throughput",
        title: "qadataswap-stream: chunks/s and GB/s, 1k- and 1M-row chunks, vs Arrow IPC over a Unix socket",
        requires: "crates/qadataswap-stream/examples/stream_bench.rs",
        command: |ws, json, opts| {
            let mut cmd = ws.cargo();
            cmd.args(["run", "--release", "-p", "qadataswap-stream", "--example", "stream_bench", "--", "--json"]).arg(json);
            if opts.quick {
                cmd.arg("--quick");
            }
            cmd
        },
    },
    Bench {
        key: "polars-read",
        title: "qadataswap-polars: read() to a Polars DataFrame on an open reader, 1M and 10M rows of (int64, float64, string)",
        requires: "crates/qadataswap-polars/examples/polars_read_bench.rs",
        command: |ws, json, opts| {
            let mut cmd = ws.cargo();
            cmd.args(["run", "--release", "-p", "qadataswap-polars", "--example", "polars_read_bench", "--", "--json"]).arg(json);
            if opts.quick {
                cmd.arg("--quick");
            }
            cmd
        },
    },
    Bench {
        key: "python-read",
        title: "Python: reader.read() to a polars.DataFrame (1M, 10M rows), cold first write and segment creation",
        requires: "bench/python/qadataswap_bench.py",
        command: |ws, json, opts| {
            let mut cmd = ws.command(venv::venv_python(ws));
            cmd.arg("bench/python/qadataswap_bench.py").arg("--no-rivals").arg("--json").arg(json);
            if opts.quick {
                cmd.arg("--quick");
            }
            cmd
        },
    },
    Bench {
        key: "python-rivals",
        title: "Python rivals: pickle, Arrow IPC over pipe/socket/file/shared_memory, Parquet, vs memcpy",
        requires: "bench/python/rivals.py",
        command: |ws, json, opts| {
            let mut cmd = ws.command(venv::venv_python(ws));
            cmd.arg("bench/python/rivals.py").arg("--json").arg(json);
            if opts.quick {
                cmd.arg("--quick");
            }
            cmd
        },
    },
    Bench {
        key: "iceoryx2",
        title: "iceoryx2 publish-subscribe of the same bytes as a loaned sample (the e2e-latency anchor)",
        requires: "bench/iceoryx2/Cargo.toml",
        // Outside the workspace (its own target dir): built only here, never by `cargo xtask test`.
        command: |ws, json, opts| {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut cmd = ws.command("sh");
            cmd.arg("-c")
                .arg(
                    "set -e; cargo=\"$0\"; t=\"$1\"; shift; \
                     CARGO_TARGET_DIR=\"$t\" \"$cargo\" build --release --manifest-path bench/iceoryx2/Cargo.toml; \
                     exec \"$t/release/qadataswap-iceoryx2-bench\" \"$@\"",
                )
                .arg(cargo)
                .arg(ws.target_dir.join("iceoryx2"))
                .arg("--json")
                .arg(json);
            if opts.quick {
                cmd.arg("--quick");
            }
            cmd
        },
    },
    Bench {
        key: "e2e-latency",
        title: "End to end: a 1- to 1,000-row frame from write() to a RecordBatch in another process, hot and parked, vs a raw shared-memory handoff and Arrow IPC over a Unix socket",
        requires: "crates/qadataswap-arrow/examples/e2e_bench/main.rs",
        command: |ws, json, opts| e2e(ws, "latency", json, opts),
    },
    Bench {
        key: "e2e-fanout",
        title: "End to end: one writer, 1, 4 and 16 reader processes, and a stopped reader holding a lease, vs the frame sent to N Unix sockets",
        requires: "crates/qadataswap-arrow/examples/e2e_bench/main.rs",
        command: |ws, json, opts| e2e(ws, "fanout", json, opts),
    },
    Bench {
        key: "e2e-memory",
        title: "End to end: a reader's memory and the copies on the machine for a 320 MB frame, vs Arrow IPC over a Unix socket and an IPC file mapped from /dev/shm",
        requires: "crates/qadataswap-arrow/examples/e2e_bench/main.rs",
        command: |ws, json, opts| e2e(ws, "memory", json, opts),
    },
    Bench {
        key: "e2e-profile",
        title: "where the small-frame latency goes: instructions per write() and read_next() (callgrind)",
        requires: "crates/qadataswap-arrow/examples/e2e_bench/main.rs",
        command: |ws, json, opts| e2e(ws, "profile", json, opts),
    },
    Bench {
        key: "flight",
        title: "Arrow Flight on loopback: the gateway's DoGet vs pyarrow.flight serving from memory (16 MB, 320 MB), and the relay's added latency vs the Flight transfer",
        requires: "bench/python/flight_bench.py",
        command: |ws, json, opts| crate::bench_flight::command(ws, json, opts.quick),
    },
];

/// One suite of the end-to-end bench (`e2e_bench <suite>`): besides its JSON it writes `<key>.md` (its tables,
/// ratios first, for the report) and `<key>-*.svg` charts.
fn e2e(ws: &Workspace, suite: &str, json: &Path, opts: BenchOptions) -> Command {
    let mut cmd = ws.cargo();
    cmd.args([
        "run",
        "--release",
        "-p",
        "qadataswap-arrow",
        "--example",
        "e2e_bench",
        "--",
        suite,
        "--json",
    ])
    .arg(json);
    if opts.quick {
        cmd.arg("--quick");
    }
    if suite == "latency" {
        // The same write() read by a Python process into a polars.DataFrame and by a C++ process into an
        // arrow::Table. A C++ reader that does not build leaves its rows out (the report says so), not the suite.
        cmd.env("QADATASWAP_BENCH_PYTHON", venv::venv_python(ws));
        // This run's iceoryx2 figures (the bench before this one), when it ran.
        cmd.env(
            "QADATASWAP_BENCH_ICEORYX2_JSON",
            json.with_file_name("iceoryx2.json"),
        );
        match crate::cpp::build_cpp(ws, Some("latency_reader")) {
            Ok(build) => {
                cmd.env("QADATASWAP_BENCH_CPP_LATENCY", build.join("latency_reader"));
            }
            Err(e) => {
                eprintln!("e2e-latency: the C++ reader did not build ({e}); measuring without it")
            }
        }
    }
    cmd
}

/// What a bench may write beside its JSON: `<key>.md`, a report fragment, and `<key>-*.svg` charts.
fn side_files(out_dir: &Path, key: &str) -> Vec<PathBuf> {
    let mut files = vec![out_dir.join(format!("{key}.md"))];
    if let Ok(dir) = fs::read_dir(out_dir) {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("{key}-")) && name.ends_with(".svg") {
                files.push(entry.path());
            }
        }
    }
    files
}

struct BenchResult {
    key: &'static str,
    title: &'static str,
    command: String,
    seconds: f64,
    table: String,
    json: Option<PathBuf>,
    error: Option<String>,
}

/// Runs every bench whose program exists. A failing bench does not stop the others; the command
/// fails at the end if any did.
pub fn bench(ws: &Workspace, opts: BenchOptions) -> Result<()> {
    let out_dir = ws.target_dir.join("bench");
    fs::create_dir_all(&out_dir)
        .map_err(|e| Error::io(format!("creating {}", out_dir.display()), e))?;
    let mut steps = Steps::new("xtask bench");
    steps.run("setup (.venv)", |_| venv::setup(ws).map(|()| Outcome::Ran))?;
    // The Python benches (and the latency suite's Python reader) import the package: the same wheel `test` installs.
    steps.run("python package (wheel, into .venv)", |_| {
        crate::install::build_python(ws).map(|()| Outcome::Ran)
    })?;

    let mut results = Vec::new();
    for bench in BENCHES {
        let json = out_dir.join(format!("{}.json", bench.key));
        let mut cmd = (bench.command)(ws, &json, opts);
        let command = shell::display(&cmd);
        let mut table = String::new();
        let start = Instant::now();
        println!("\n{}: {}", bench.key, bench.title);
        let ran = steps.run(bench.key, |_| {
            if !ws.path(bench.requires).exists() {
                return Ok(Outcome::Skipped(format!("{} is missing", bench.requires)));
            }
            // A stale file from an earlier run must not pass for this run's result.
            let _ = fs::remove_file(&json);
            for stale in side_files(&out_dir, bench.key) {
                let _ = fs::remove_file(stale);
            }
            shell::run_tee(&mut cmd, &mut table).map(|()| Outcome::Ran)
        });
        if !ws.path(bench.requires).exists() {
            continue;
        }
        if ran.is_ok() && !json.is_file() {
            save_printed_json(&table, &json)?;
        }
        results.push(BenchResult {
            key: bench.key,
            title: bench.title,
            command,
            seconds: start.elapsed().as_secs_f64(),
            table,
            json: json.is_file().then_some(json),
            error: ran.as_ref().err().map(ToString::to_string),
        });
        if let Err(err) = ran {
            eprintln!("xtask bench: {err}; going on with the other benches");
        }
    }

    write_reports(&out_dir, &results)?;
    steps.print_summary();
    println!("bench: report in {}", out_dir.join("report.md").display());
    match results.iter().find(|r| r.error.is_some()) {
        Some(failed) => Err(Error::Unexpected {
            message: format!(
                "bench `{}` failed: {}",
                failed.key,
                failed.error.as_deref().unwrap_or("")
            ),
        }),
        None => Ok(()),
    }
}

/// A bench that prints its JSON as the last line of stdout instead of writing the file it was given
/// still gets its file; one that does neither gets `null` in results.json.
fn save_printed_json(stdout: &str, json: &Path) -> Result<()> {
    let Some(last) = stdout.lines().map(str::trim).rfind(|l| !l.is_empty()) else {
        return Ok(());
    };
    if last.starts_with('{') && last.ends_with('}') {
        println!(
            "bench: the JSON was printed, not written; saving it to {}",
            json.display()
        );
        fs::write(json, format!("{last}\n"))
            .map_err(|e| Error::io(format!("writing {}", json.display()), e))?;
    } else {
        println!(
            "bench: no JSON written to {} and none printed",
            json.display()
        );
    }
    Ok(())
}

fn write_reports(out_dir: &Path, results: &[BenchResult]) -> Result<()> {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);

    let mut md = String::from("# QADataSwap benchmarks\n\n");
    md.push_str(&format!(
        "One `cargo xtask bench` run on one machine ({cores} cores), unix time {unix}. \
         Compare numbers within this report only: they are ratios to the same machine's memcpy and rivals.\n\n"
    ));
    let mut combined =
        format!("{{\n  \"unix_time\": {unix},\n  \"cores\": {cores},\n  \"benches\": {{");
    for (i, r) in results.iter().enumerate() {
        md.push_str(&format!(
            "## {}\n\n`{}` ({:.1} s)\n\n",
            r.title, r.command, r.seconds
        ));
        if let Some(err) = &r.error {
            md.push_str(&format!("**FAILED**: {err}\n\n"));
        }
        // A bench's own tables (and chart links, relative to this report) come before its printed output.
        let fragment = out_dir.join(format!("{}.md", r.key));
        if r.error.is_none() {
            if let Ok(text) = fs::read_to_string(&fragment) {
                md.push_str(text.trim_end());
                md.push_str("\n\nPrinted:\n\n");
            }
        }
        md.push_str(&format!("```text\n{}\n```\n\n", r.table.trim_end()));
        let raw = match &r.json {
            Some(path) => {
                md.push_str(&format!("JSON: `{}`\n\n", path.display()));
                let text = fs::read_to_string(path)
                    .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
                if text.trim().is_empty() {
                    "null".to_string()
                } else {
                    text.trim().to_string()
                }
            }
            None => "null".to_string(),
        };
        let sep = if i == 0 { "" } else { "," };
        combined.push_str(&format!("{sep}\n    \"{}\": {}", r.key, raw));
    }
    combined.push_str("\n  }\n}\n");

    let report = out_dir.join("report.md");
    fs::write(&report, md).map_err(|e| Error::io(format!("writing {}", report.display()), e))?;
    let all = out_dir.join("results.json");
    fs::write(&all, combined).map_err(|e| Error::io(format!("writing {}", all.display()), e))?;
    Ok(())
}
