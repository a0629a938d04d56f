//! Helpers for tests that re-execute their own binary as child processes: the child runs the role named by
//! `QADS_ARROW_ROLE` on the segment named by `QADS_ARROW_NAME`, and talks to the parent through stdout lines.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const ROLE: &str = "QADS_ARROW_ROLE";
pub const NAME: &str = "QADS_ARROW_NAME";

/// A child process running one role, with its stdout read line by line.
pub struct Kid {
    pub child: Child,
    pub out: BufReader<ChildStdout>,
}

impl Kid {
    pub fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.child.wait()
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        kill(self);
    }
}

pub fn child(role: &str, name: &str, test: &str) -> Kid {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(NAME, name)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    spawn(cmd)
}

/// Start `cmd` (stdout piped) as a [`Kid`].
pub fn spawn(mut cmd: Command) -> Kid {
    let mut child = cmd.spawn().unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    Kid { child, out }
}

/// Wait (with a watchdog) for a line from the child's stdout containing `marker`; returns the text from it on.
pub fn expect_line(c: &mut Kid, marker: &str) -> String {
    let pid = c.child.id();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d2 = Arc::clone(&done);
    std::thread::spawn(move || {
        let t0 = Instant::now();
        while !d2.load(std::sync::atomic::Ordering::Relaxed) {
            if t0.elapsed() > Duration::from_secs(60) {
                // Watchdog: a hung child is killed so the test fails instead of hanging.
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let mut line = String::new();
    loop {
        line.clear();
        if c.out.read_line(&mut line).unwrap() == 0 {
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            panic!("child exited before printing {marker}");
        }
        if let Some(at) = line.find(marker) {
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            return line[at..].trim().to_owned();
        }
    }
}

pub fn kill(c: &mut Kid) {
    let _ = c.child.kill();
    let _ = c.child.wait();
}

pub struct Unlink(pub String);
impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/dev/shm/{}", self.0));
    }
}

pub fn role() -> Option<(String, String)> {
    Some((std::env::var(ROLE).ok()?, std::env::var(NAME).ok()?))
}
