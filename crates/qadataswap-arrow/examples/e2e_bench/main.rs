//! End-to-end benches between processes, each beside the anchors a user would otherwise pick, in one run:
//!
//! - `latency`: a small frame (1, 10, 100, 1000 rows of int64, float64, utf8) from the writer's `write()` call to
//!   a reader process holding the `RecordBatch`, hot (reader spinning) and parked (reader asleep in the futex),
//!   beside a raw shared-memory handoff of the same bytes (the floor) and Arrow IPC over a Unix socket.
//! - `fanout`: one writer, 1, 4 and 16 reader processes on one snapshot segment: write-to-read latency per reader
//!   count, the writer's throughput, and a reader stopped (SIGSTOP) while it holds a lease; beside the same frame
//!   sent to N socket readers.
//! - `memory`: a reader's memory (`/proc/self/smaps_rollup`) before and after reading a 320 MB frame (64 MB with
//!   `--quick`), and the copies of the data on the machine, beside Arrow IPC over a Unix socket (copies) and an
//!   Arrow IPC file on /dev/shm read through mmap (maps).
//! - `profile`: instructions per `write()` and per `read_next()` of a small frame, and the functions that execute
//!   them, counted by `valgrind --tool=callgrind` (exact where times are noisy): what bounds the latency.
//!
//! Latencies are one way: the writer stores a CLOCK_MONOTONIC stamp in a small shared control mapping just before
//! it sends, and the reader reads the same clock as soon as it holds the batch (one clock for every process on the
//! machine). The reader then acknowledges, and the writer sends the next round only after the acknowledgement, so
//! one frame is in flight at a time.
//!
//! ```text
//! cargo run --release -p qadataswap-arrow --example e2e_bench -- <latency|fanout|memory|profile> [--quick] [--json PATH]
//! ```
//!
//! With `--json X.json` a suite also writes `X.md` (its tables for `target/bench/report.md`, ratios first) and
//! `X-*.svg` charts beside it. Children re-run this binary with `--child`; they die with the bench (parent-death
//! signal), are killed on every error path, and a watchdog ends a run that hangs.

mod fanout;
mod harness;
mod latency;
mod memory;
mod profile;
mod svg;

use std::path::PathBuf;
use std::time::Duration;

use harness::Res;

/// What every suite gets from the command line.
#[derive(Debug)]
struct Opts {
    quick: bool,
    json: Option<PathBuf>,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("e2e_bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        harness::child_init()?;
        let role = args.get(1).ok_or("--child needs a role")?;
        let rest = &args[2..];
        return match role.as_str() {
            "latency" => latency::child(rest),
            "fanout" => fanout::child(rest),
            "fanout-socket" => fanout::child_socket(rest),
            "fanout-staller" => fanout::child_staller(rest),
            "memory" => memory::child(rest),
            "profile" => profile::child(rest),
            other => Err(format!("unknown child role {other}").into()),
        };
    }
    let opts = Opts {
        quick: args.iter().any(|a| a == "--quick"),
        json: args
            .iter()
            .position(|a| a == "--json")
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from),
    };
    if let Some(dir) = opts.json.as_deref().and_then(std::path::Path::parent) {
        std::fs::create_dir_all(dir)?;
    }
    // Far above a full run of any suite (each takes well under a minute), far below "hung forever".
    harness::watchdog(Duration::from_secs(600));
    match args.first().map(String::as_str) {
        Some("latency") => latency::run(&opts),
        Some("fanout") => fanout::run(&opts),
        Some("memory") => memory::run(&opts),
        Some("profile") => profile::run(&opts),
        _ => Err("usage: e2e_bench <latency|fanout|memory|profile> [--quick] [--json PATH]".into()),
    }
}
