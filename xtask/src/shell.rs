//! Running programs: the workspace context, printing each command before it runs, and capturing a
//! copy of stdout while still showing it live.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// Where the workspace is and the options that every step sees.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The repository root (holds the workspace Cargo.toml).
    pub root: PathBuf,
    /// Cargo's target directory: `$CARGO_TARGET_DIR` if set, else `<root>/target`.
    pub target_dir: PathBuf,
    /// `--soak`: slow soak steps run; children see `QADATASWAP_SOAK=1`.
    pub soak: bool,
}

/// `cargo run` (and so `cargo xtask`) prepends the target dir's `debug/deps` and the toolchain's libraries to
/// `LD_LIBRARY_PATH`. Every program xtask starts would inherit that, and a C++ binary linked against
/// `target/release/libqadataswap_c.so` (by RUNPATH, which `LD_LIBRARY_PATH` overrides) would load the *debug*
/// build from `target/debug/deps` instead: measured, the C++ read bench then took 27 µs instead of 4 µs. Drop the
/// entries cargo added (under the target dir, or a rustup toolchain); keep whatever the user set.
fn strip_cargo_library_path(target_dir: &Path) {
    let Some(value) = std::env::var_os("LD_LIBRARY_PATH") else {
        return;
    };
    let toolchains = std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".rustup")))
        .map(|r| r.join("toolchains"));
    let kept: Vec<PathBuf> = std::env::split_paths(&value)
        .filter(|p| {
            !p.starts_with(target_dir) && !toolchains.as_ref().is_some_and(|t| p.starts_with(t))
        })
        .collect();
    if kept.is_empty() {
        std::env::remove_var("LD_LIBRARY_PATH");
    } else if let Ok(joined) = std::env::join_paths(kept) {
        std::env::set_var("LD_LIBRARY_PATH", joined);
    }
}

impl Workspace {
    /// Finds the workspace from where xtask was built (`xtask/..`).
    pub fn locate(soak: bool) -> Result<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(Path::to_path_buf)
            .ok_or_else(|| Error::Unexpected {
                message:
                    "xtask's manifest dir has no parent; run it as `cargo xtask` from the workspace"
                        .into(),
            })?;
        if !root.join("Cargo.toml").is_file() {
            return Err(Error::Unexpected {
                message: format!(
                    "{} holds no Cargo.toml; run xtask from the QADataSwap workspace",
                    root.display()
                ),
            });
        }
        let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) if !dir.is_empty() => {
                let dir = PathBuf::from(dir);
                if dir.is_absolute() {
                    dir
                } else {
                    root.join(dir)
                }
            }
            _ => root.join("target"),
        };
        strip_cargo_library_path(&target_dir);
        Ok(Workspace {
            root,
            target_dir,
            soak,
        })
    }

    /// A path relative to the repository root.
    pub fn path(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.root.join(relative)
    }

    /// `program` run from the repository root, with `QADATASWAP_SOAK=1` under `--soak`.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.root);
        if self.soak {
            cmd.env("QADATASWAP_SOAK", "1");
        }
        cmd
    }

    /// The cargo that runs us (`$CARGO`), else `cargo` from PATH.
    pub fn cargo(&self) -> Command {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        self.command(cargo)
    }
}

/// The command line as a person would type it, with the variables we set in front.
pub fn display(cmd: &Command) -> String {
    let mut out = String::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            out.push_str(&format!("{}={} ", key.to_string_lossy(), quote(value)));
        }
    }
    // `$CARGO` is a long toolchain path; people type `cargo`.
    let program = cmd.get_program();
    if std::env::var_os("CARGO").is_some_and(|cargo| cargo == program) {
        out.push_str("cargo");
    } else {
        out.push_str(&quote(program));
    }
    for arg in cmd.get_args() {
        out.push(' ');
        out.push_str(&quote(arg));
    }
    out
}

fn quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn announce(cmd: &Command) -> String {
    let line = display(cmd);
    match cmd.get_current_dir() {
        Some(dir) => println!("$ {line}    (in {})", dir.display()),
        None => println!("$ {line}"),
    }
    // Our line must appear before the child's output.
    let _ = std::io::stdout().flush();
    line
}

/// Prints the command, runs it with inherited stdio, and fails unless it exits 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    let line = announce(cmd);
    let status = cmd.status().map_err(|source| Error::Spawn {
        command: line.clone(),
        source,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Failed {
            command: line,
            status,
        })
    }
}

/// Runs the command quietly and returns its stdout (trimmed); fails unless it exits 0.
pub fn output(cmd: &mut Command) -> Result<String> {
    let line = display(cmd);
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|source| Error::Spawn {
            command: line.clone(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(Error::Failed {
            command: line,
            status: out.status,
        })
    }
}

/// Whether the command runs and exits 0 (output discarded). For probes such as `dpkg-query`.
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Prints the command, runs it showing its stdout live, and also returns that stdout.
/// On failure the error carries the exit status; the caller still gets the text through `captured`.
pub fn run_tee(cmd: &mut Command, captured: &mut String) -> Result<()> {
    let line = announce(cmd);
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn {
            command: line.clone(),
            source,
        })?;
    if let Some(stdout) = child.stdout.take() {
        let mut reader = BufReader::new(stdout);
        let mut buf = Vec::new();
        let out = std::io::stdout();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&buf);
                    let mut lock = out.lock();
                    let _ = lock.write_all(text.as_bytes());
                    let _ = lock.flush();
                    captured.push_str(&text);
                }
                Err(source) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Error::io(format!("reading the output of `{line}`"), source));
                }
            }
        }
    }
    let status = child
        .wait()
        .map_err(|source| Error::io(format!("waiting for `{line}`"), source))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Failed {
            command: line,
            status,
        })
    }
}
