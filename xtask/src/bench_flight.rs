//! The Flight bench of `cargo xtask bench` (`bench/python/flight_bench.py`): the gateway's DoGet throughput against
//! pyarrow.flight serving the same table from memory (16 MB, 320 MB), and the relay's added latency against the
//! loopback Flight transfer. It needs the release `qadataswap` binary, built first by the same command.

use std::path::Path;
use std::process::Command;

use crate::shell::Workspace;
use crate::venv;

/// `cargo build --release -p qadataswap-cli`, then the script with that binary, the JSON path and `--quick` if
/// `quick`.
pub fn command(ws: &Workspace, json: &Path, quick: bool) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = ws.command("sh");
    cmd.arg("-c")
        .arg(
            "set -e; cargo=\"$0\"; t=\"$1\"; py=\"$2\"; shift 2; \
             \"$cargo\" build --release -p qadataswap-cli >&2; \
             exec \"$py\" bench/python/flight_bench.py --cli \"$t/release/qadataswap\" \"$@\"",
        )
        .arg(cargo)
        .arg(&ws.target_dir)
        .arg(venv::venv_python(ws))
        .arg("--json")
        .arg(json);
    if quick {
        cmd.arg("--quick");
    }
    cmd
}
