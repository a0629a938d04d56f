//! `cargo xtask cross-lang`: every language writes the golden frame, every language reads it, in separate processes;
//! each result is compared with the golden frame value by value and type by type, and each reader checks that every
//! buffer it got points into the segment.
//!
//! A language takes part through a "role" program with a fixed command line (see
//! `crates/qadataswap-stream/examples/crosslang.rs` for the reference):
//! `ROLE write NAME IN.arrows` (prints a line starting with `READY`, closes when stdin gets a line) and
//! `ROLE read NAME OUT.arrows` (dumps what it read as an Arrow IPC stream, exits non-zero unless zero-copy).
//!
//! Then the three-language streams: for each writer language, one stream of [`STREAM_CHUNKS`] chunks in a ring of
//! [`STREAM_SLOTS`] slots (so the writer meets back-pressure) is written by one process and read at once by three
//! reader processes, one per language; every reader checks every chunk's number (in order), content and zero-copy.
//! Roles: `ROLE stream-write NAME N SLOTS` (prints `READY` once the stream exists, waits for 3 readers, writes chunks
//! 0..N, finishes) and `ROLE stream-read NAME` (prints `STREAM chunks=N ok ...`, exits non-zero on any mismatch).

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
        "qadataswap-stream",
        "--example",
        "crosslang",
    ]))?;
    Ok(ws.target_dir.join("release/examples/crosslang"))
}

fn languages(ws: &Workspace) -> Result<Vec<Lang>> {
    let rust = rust_role(ws)?;
    let py_script = ws.path("bindings/python/tests/crosslang_role.py");
    let python = if py_script.exists() {
        crate::install::build_python(ws)?;
        Ok(vec![venv::venv_python(ws), py_script])
    } else {
        Err("bindings/python/tests/crosslang_role.py is missing".to_owned())
    };
    let cpp = if ws.path("bindings/c/tests/crosslang_role.cc").exists() {
        let build = crate::cpp::build_cpp(ws, Some("crosslang_role"))?;
        Ok(vec![build.join("crosslang_role")])
    } else {
        Err("bindings/c/tests/crosslang_role.cc is missing".to_owned())
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

/// Chunks of each three-language stream.
const STREAM_CHUNKS: usize = 200;
/// Slots in its ring: small, so the writer waits for its readers.
const STREAM_SLOTS: usize = 4;
/// Watchdog of one stream run (all four processes).
const STREAM_WATCHDOG: Duration = Duration::from_secs(180);

/// A role process whose stdout lines and stderr are collected by threads (so a pipe never fills or closes early).
struct Proc {
    label: String,
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Proc {
    fn spawn(mut cmd: Command, label: String) -> std::result::Result<Proc, String> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn {label}: {e}"))?;
        let (tx, lines) = std::sync::mpsc::channel();
        if let Some(out) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    match line {
                        Ok(l) => {
                            if tx.send(l).is_err() {
                                return;
                            }
                        }
                        Err(_) => return,
                    }
                }
            });
        }
        let stderr = child.stderr.take().map(|mut err| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = std::io::Read::read_to_string(&mut err, &mut s);
                s
            })
        });
        Ok(Proc {
            label,
            child,
            lines,
            stderr,
        })
    }

    /// Wait for a stdout line containing `marker`.
    fn wait_for(&self, marker: &str, timeout: Duration) -> std::result::Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(marker) => return Ok(l),
                Ok(_) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!("{}: no {marker} within {timeout:?}", self.label))
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(format!("{}: exited before printing {marker}", self.label))
                }
            }
        }
    }

    /// After exit: every stdout line not consumed yet (up to the pipe's end), and stderr.
    fn output(&mut self) -> (String, String) {
        let mut out = Vec::new();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(5)) {
            out.push(l);
        }
        let err = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        (out.join(" | "), err.trim().to_owned())
    }
}

/// One writer in `w`'s language and one reader in each language, at once, on one stream.
fn run_stream(ws: &Workspace, w: &Lang, langs: &[Lang]) -> std::result::Result<String, String> {
    let name = format!(
        "qads-xls-{}-{}",
        std::process::id(),
        w.name.replace('+', "p")
    );
    let chunks = STREAM_CHUNKS.to_string();
    let slots = STREAM_SLOTS.to_string();
    let cmd = w
        .cmd(ws, &["stream-write", &name, &chunks, &slots])
        .ok_or("writer unavailable")?;
    let mut procs = vec![Proc::spawn(cmd, format!("{} writer", w.name))?];
    let t = Instant::now();
    let result = (|| {
        procs[0].wait_for("READY", Duration::from_secs(60))?;
        for r in langs {
            let cmd = r
                .cmd(ws, &["stream-read", &name])
                .ok_or_else(|| format!("{} reader unavailable", r.name))?;
            procs.push(Proc::spawn(cmd, format!("{} reader", r.name))?);
        }
        // Watchdog: every process must end in time.
        let deadline = Instant::now() + STREAM_WATCHDOG;
        let mut statuses = vec![None; procs.len()];
        while statuses.iter().any(Option::is_none) {
            for (p, st) in procs.iter_mut().zip(statuses.iter_mut()) {
                if st.is_none() {
                    *st = p.child.try_wait().map_err(|e| e.to_string())?;
                }
            }
            if Instant::now() >= deadline {
                let stuck: Vec<&str> = procs
                    .iter()
                    .zip(&statuses)
                    .filter(|(_, s)| s.is_none())
                    .map(|(p, _)| p.label.as_str())
                    .collect();
                return Err(format!(
                    "still running after {STREAM_WATCHDOG:?}: {}",
                    stuck.join(", ")
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let elapsed = t.elapsed();
        let mut problems = Vec::new();
        let mut writer_line = String::new();
        let mut readers_ok = Vec::new();
        for (i, (p, st)) in procs.iter_mut().zip(&statuses).enumerate() {
            let (out, err) = p.output();
            let ok = st.is_some_and(|s| s.success());
            let wanted = format!("STREAM chunks={STREAM_CHUNKS} ok");
            if !ok {
                problems.push(format!("{} failed: {out} {err}", p.label));
            } else if i == 0 {
                writer_line = out;
            } else if !out.contains(&wanted) {
                problems.push(format!("{} did not report {wanted:?}: {out}", p.label));
            } else {
                let zero_copy = out
                    .split_whitespace()
                    .find_map(|f| f.strip_prefix("zero_copy_buffers="))
                    .unwrap_or("?");
                readers_ok.push(format!(
                    "{} ({zero_copy} bufs)",
                    p.label.replace(" reader", "")
                ));
            }
        }
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        let waits = writer_line
            .split_whitespace()
            .find(|f| f.starts_with("lease_waits="))
            .unwrap_or("");
        Ok(format!(
            "{STREAM_CHUNKS} chunks in order, all zero-copy: {}; writer {waits} ({:.0} ms)",
            readers_ok.join(" + "),
            elapsed.as_secs_f64() * 1e3
        ))
    })();
    for p in &mut procs {
        if matches!(p.child.try_wait(), Ok(None)) {
            let _ = p.child.kill();
        }
        let _ = p.child.wait();
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
    println!(
        "\nthree-language streams: 1 writer + 3 readers (Rust, Python, C++) at once, {STREAM_CHUNKS} chunks, \
         {STREAM_SLOTS}-slot ring"
    );
    let mut streams = Vec::new();
    for w in &langs {
        let label = format!("{:>6} writes -> Rust + Python + C++ read at once", w.name);
        let verdict = match langs.iter().find_map(|l| l.command.as_ref().err()) {
            Some(why) => Err(format!("cannot run: {why}")),
            None => run_stream(ws, w, &langs),
        };
        match &verdict {
            Ok(detail) => streams.push(format!("  ok    {label}  {detail}")),
            Err(e) => {
                streams.push(format!("  FAIL  {label}  {e}"));
                failures.push(label);
            }
        }
        println!("{}", streams.last().map(String::as_str).unwrap_or(""));
    }
    println!("\ncross-language matrix:\n{}", table.join("\n"));
    println!("\nthree-language streams:\n{}", streams.join("\n"));
    let passed = table.len() + streams.len() - failures.len();
    // Worded like pytest's closing line, so the summary counts these runs among the tests.
    let line = format!(
        "{passed} passed, {} failed in the cross-language runs",
        failures.len()
    );
    println!("{line}");
    summary.push_str(&line);
    summary.push('\n');
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Unexpected {
            message: format!("cross-language runs failed: {}", failures.join("; ")),
        })
    }
}
