//! `cargo xtask demo`: the demos a newcomer runs to see the project work, one after another.

use std::process::Command;

use crate::error::Result;
use crate::shell::{self, Workspace};
use crate::summary::{Outcome, Steps};

/// One demo: it runs when the file it needs exists (the crates are written in parallel).
struct Demo {
    name: &'static str,
    /// Path relative to the root that must exist for the demo to run.
    requires: &'static str,
    command: fn(&Workspace) -> Command,
}

/// The demos, in the order they run. Add new ones here.
const DEMOS: &[Demo] = &[
    Demo {
        name: "arrow: writer and zero-copy reader in two processes",
        requires: "crates/qadataswap-arrow/examples/demo.rs",
        command: |ws| {
            let mut cmd = ws.cargo();
            cmd.args([
                "run",
                "--release",
                "-p",
                "qadataswap-arrow",
                "--example",
                "demo",
            ]);
            cmd
        },
    },
    Demo {
        name: "polars: the Rust quick start, writer and reader in two processes",
        requires: "crates/qadataswap/examples/quickstart.rs",
        command: |ws| {
            let mut cmd = ws.cargo();
            cmd.args([
                "run",
                "--release",
                "-p",
                "qadataswap",
                "--example",
                "quickstart",
            ]);
            cmd
        },
    },
];

/// Runs every demo whose example exists, stopping at the first failure.
pub fn demo(ws: &Workspace) -> Result<()> {
    let mut steps = Steps::new("xtask demo");
    for demo in DEMOS {
        steps.run(demo.name, |_| {
            if !ws.path(demo.requires).exists() {
                return Ok(Outcome::Skipped(format!(
                    "{} not written yet",
                    demo.requires
                )));
            }
            shell::run(&mut (demo.command)(ws)).map(|()| Outcome::Ran)
        })?;
    }
    steps.print_summary();
    Ok(())
}
