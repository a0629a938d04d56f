//! `cargo xtask cross-lang`: every language writes the golden frame, every language reads it, in separate processes;
//! each result is compared with the golden frame value by value and type by type, and each reader checks that every
//! buffer it got points into the segment.
//!
//! A language takes part through a "role" program with a fixed command line (see
//! `crates/qadataswap-arrow/examples/crosslang.rs` for the reference):
//! `ROLE write NAME IN.arrows` (prints a line starting with `READY`, closes when stdin gets a line) and
//! `ROLE read NAME OUT.arrows` (dumps what it read as an Arrow IPC stream, exits non-zero unless zero-copy).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::shell::{self, Workspace};
use crate::venv;

/// One language's role program.
struct Lang {
    name: &'static str,
    /// The command prefix, or why this language cannot take part.
    command: std::result::Result<Vec<PathBuf>, String>,
}

impl Lang {
    fn cmd(&self, ws: &Workspace, args: &[&str]) -> Option<Command> {
        let parts = self.command.as_ref().ok()?;
        let mut c = ws.command(&parts[0]);
        c.args(&parts[1..]).args(args);
        Some(c)
    }
}

fn rust_role(ws: &Workspace) -> Result<PathBuf> {
    shell::run(ws.cargo().args([
        "build",
        "--release",
        "-p",
        "qadataswap-arrow",
        "--example",
        "crosslang",
    ]))?;
    Ok(ws.target_dir.join("release/examples/crosslang"))
}

fn languages(ws: &Workspace) -> Result<Vec<Lang>> {
    let rust = rust_role(ws)?;
    let py_script = ws.path("bindings/python/tests/crosslang_role.py");
    let python = if py_script.exists() {
        crate::suite::build_python(ws)?;
        Ok(vec![venv::venv_python(ws), py_script])
    } else {
        Err("bindings/python/tests/crosslang_role.py not written yet".to_owned())
    };
    let cpp = if ws.path("bindings/c/tests/crosslang_role.cc").exists() {
        let build = crate::suite::build_cpp(ws, Some("crosslang_role"))?;
        Ok(vec![build.join("crosslang_role")])
    } else {
        Err("bindings/c/tests/crosslang_role.cc not written yet".to_owned())
    };
    Ok(vec![
        Lang {
            name: "Rust",
            command: Ok(vec![rust]),
        },
        Lang {
            name: "Python",
            command: python,
        },
        Lang {
            name: "C++",
            command: cpp,
        },
    ])
}

/// Read the child's stdout until a line containing `marker` (or the child ends / the deadline passes).
fn wait_for_line(
    child: &mut Child,
    marker: &str,
    timeout: Duration,
) -> std::result::Result<String, String> {
    let out = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    let wanted = marker.to_owned();
    std::thread::spawn(move || {
        let mut r = BufReader::new(out);
        let mut line = String::new();
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(Err("exited before it was ready".to_owned()));
                    return;
                }
                Ok(_) if line.contains(&wanted) => {
                    let _ = tx.send(Ok(line.trim().to_owned()));
                    return;
                }
                Ok(_) => {}
            }
        }
    });
    rx.recv_timeout(timeout)
        .map_err(|_| format!("no {marker} within {timeout:?}"))?
}

fn run_pair(
    ws: &Workspace,
    golden: &Path,
    rust: &Lang,
    w: &Lang,
    r: &Lang,
    out: &Path,
) -> std::result::Result<String, String> {
    let name = format!(
        "qads-xl-{}-{}-{}",
        std::process::id(),
        w.name.replace('+', "p"),
        r.name.replace('+', "p")
    );
    let golden_s = golden.to_string_lossy().into_owned();
    let out_s = out.to_string_lossy().into_owned();
    let mut writer = w
        .cmd(ws, &["write", &name, &golden_s])
        .ok_or("writer unavailable")?
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawn writer: {e}"))?;
    let result = (|| {
        wait_for_line(&mut writer, "READY", Duration::from_secs(60))?;
        let t = Instant::now();
        let o = r
            .cmd(ws, &["read", &name, &out_s])
            .ok_or("reader unavailable")?
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("spawn reader: {e}"))?;
        let stdout = String::from_utf8_lossy(&o.stdout).trim().to_owned();
        if !o.status.success() {
            return Err(format!("reader failed: {stdout}"));
        }
        let c = rust
            .cmd(ws, &["compare", &golden_s, &out_s])
            .ok_or("no compare")?
            .output()
            .map_err(|e| e.to_string())?;
        if !c.status.success() {
            return Err(format!(
                "values differ: {}",
                String::from_utf8_lossy(&c.stderr).trim()
            ));
        }
        Ok(format!(
            "{stdout} ({:.0} ms)",
            t.elapsed().as_secs_f64() * 1e3
        ))
    })();
    if let Some(mut stdin) = writer.stdin.take() {
        let _ = stdin.write_all(b"\n");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match writer.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = writer.kill();
                let _ = writer.wait();
                break;
            }
        }
    }
    let _ = std::fs::remove_file(format!("/dev/shm/{name}"));
    result
}

/// Run the matrix. Fails if any pair fails or any language cannot take part.
pub fn cross_lang(ws: &Workspace) -> Result<()> {
    let mut summary = String::new();
    cross_lang_report(ws, &mut summary)
}

/// As [`cross_lang`], appending the closing "N passed, N failed" line to `summary` for the test counts.
pub fn cross_lang_report(ws: &Workspace, summary: &mut String) -> Result<()> {
    let langs = languages(ws)?;
    let dir = ws.target_dir.join("cross-lang");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    let golden = dir.join("golden.arrows");
    let rust = &langs[0];
    let mut gen =
        rust.cmd(ws, &["golden", &golden.to_string_lossy()])
            .ok_or(Error::Unexpected {
                message: "the Rust role is missing".into(),
            })?;
    shell::run(&mut gen)?;
    println!("golden frame: every Arrow type, nulls, 3 batches, dictionaries, nested types, metadata ({})", golden.display());
    let mut failures = Vec::new();
    let mut table = Vec::new();
    for w in &langs {
        for r in &langs {
            let label = format!("{:>6} writes -> {:<6} reads", w.name, r.name);
            let verdict = match (&w.command, &r.command) {
                (Err(why), _) | (_, Err(why)) => Err(format!("cannot run: {why}")),
                _ => run_pair(
                    ws,
                    &golden,
                    rust,
                    w,
                    r,
                    &dir.join(format!("{}-{}.arrows", w.name, r.name).replace('+', "p")),
                ),
            };
            match &verdict {
                Ok(detail) => table.push(format!("  ok    {label}  {detail}")),
                Err(e) => {
                    table.push(format!("  FAIL  {label}  {e}"));
                    failures.push(label);
                }
            }
            println!("{}", table.last().map(String::as_str).unwrap_or(""));
        }
    }
    println!("\ncross-language matrix:\n{}", table.join("\n"));
    let passed = table.len() - failures.len();
    let line = format!("cross-lang: {passed} passed, {} failed", failures.len());
    println!("{line}");
    summary.push_str(&line);
    summary.push('\n');
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Unexpected {
            message: format!("cross-language pairs failed: {}", failures.join("; ")),
        })
    }
}
