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
    command: fn(&Workspace) -> Result<Command>,
}

/// The demos, in the order they run. Add new ones here.
const DEMOS: &[Demo] = &[
    Demo {
        name: "polyglot: Python writer -> Rust + C++ readers, Rust writer -> Python reader",
        requires: "bindings/python/examples/polyglot_demo.py",
        command: |ws| {
            shell::run(ws.cargo().args([
                "build",
                "--release",
                "-p",
                "qadataswap-arrow",
                "--example",
                "demo",
            ]))?;
            crate::install::build_python(ws)?;
            let cpp = crate::cpp::build_cpp(ws, Some("crosslang_role"))?;
            let mut cmd = ws.command(crate::venv::venv_python(ws));
            cmd.arg(ws.path("bindings/python/examples/polyglot_demo.py"))
                .arg(ws.target_dir.join("release/examples/demo"))
                .arg(cpp.join("crosslang_role"));
            Ok(cmd)
        },
    },
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
            Ok(cmd)
        },
    },
    Demo {
        name: "polars: the Rust quick start, writer and reader in two processes",
        requires: "crates/qadataswap/examples/quickstart.rs",
        command: |ws| {
            // The dev profile, which `cargo xtask test` has built already: a release build of Polars is another
            // seven minutes on a 2-core machine, for a demo whose point is what arrives, not how fast (the other
            // two demos, and `cargo xtask bench`, time release builds).
            let mut cmd = ws.cargo();
            cmd.args(["run", "-p", "qadataswap", "--example", "quickstart"]);
            Ok(cmd)
        },
    },
];

/// Runs every demo whose example exists, stopping at the first failure.
pub fn demo(ws: &Workspace) -> Result<()> {
    let mut steps = Steps::new("xtask demo");
    // What the demos need on a fresh clone: .venv with the pinned packages (maturin, zig, polars, pyarrow).
    steps.run("setup (.venv)", |_| {
        crate::venv::setup(ws).map(|()| Outcome::Ran)
    })?;
    for demo in DEMOS {
        steps.run(demo.name, |_| {
            if !ws.path(demo.requires).exists() {
                return Ok(Outcome::Skipped(format!("{} is missing", demo.requires)));
            }
            shell::run(&mut (demo.command)(ws)?).map(|()| Outcome::Ran)
        })?;
    }
    steps.print_summary();
    Ok(())
}
