//! Steps with banners and wall times, the closing table, and the test counts read from the runners'
//! own closing lines (cargo test, pytest, ctest).

use std::fmt;
use std::io::Write;
use std::time::Instant;

use crate::error::{Error, Result};

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// It ran and succeeded.
    Ok,
    /// It was not run, and why.
    Skipped(String),
    /// It ran and failed.
    Failed,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Ok => f.write_str("ok"),
            Status::Skipped(_) => f.write_str("skipped"),
            Status::Failed => f.write_str("FAILED"),
        }
    }
}

/// What a step function reports when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The step ran.
    Ran,
    /// The step did not apply, with the reason shown in the summary.
    Skipped(String),
}

/// Tests counted from the runners' closing lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TestCounts {
    /// Passed tests.
    pub passed: u64,
    /// Failed tests.
    pub failed: u64,
    /// Ignored / skipped tests.
    pub skipped: u64,
}

impl TestCounts {
    /// Adds the counts found in a runner's output.
    pub fn add_output(&mut self, output: &str) {
        for line in output.lines() {
            let line = line.trim().trim_matches('=').trim();
            if let Some(rest) = line.strip_prefix("test result: ") {
                // cargo: "test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s"
                for part in rest.split(';') {
                    self.add_pair(
                        part.trim()
                            .trim_start_matches("ok. ")
                            .trim_start_matches("FAILED. "),
                    );
                }
            } else if let Some((_, tail)) = line.split_once("tests passed, ") {
                // ctest: "100% tests passed, 0 tests failed out of 5"
                let failed = tail
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<u64>().ok());
                let total = tail.rsplit(' ').next().and_then(|n| n.parse::<u64>().ok());
                if let (Some(failed), Some(total)) = (failed, total) {
                    self.failed += failed;
                    self.passed += total.saturating_sub(failed);
                }
            } else if is_pytest_summary(line) {
                // pytest: "12 passed, 1 skipped in 0.52s"
                let body = line.split(" in ").next().unwrap_or(line);
                for part in body.split(',') {
                    self.add_pair(part.trim());
                }
            }
        }
    }

    fn add_pair(&mut self, part: &str) {
        let mut words = part.split_whitespace();
        let (Some(n), Some(kind)) = (words.next(), words.next()) else {
            return;
        };
        let Ok(n) = n.parse::<u64>() else { return };
        match kind {
            "passed" | "xpassed" => self.passed += n,
            "failed" | "error" | "errors" => self.failed += n,
            "ignored" | "skipped" | "xfailed" | "deselected" => self.skipped += n,
            _ => {}
        }
    }
}

fn is_pytest_summary(line: &str) -> bool {
    let first = line.split(',').next().unwrap_or("");
    let mut words = first.split_whitespace();
    matches!(
        (words.next().map(|n| n.parse::<u64>().is_ok()), words.next()),
        (
            Some(true),
            Some(
                "passed"
                    | "failed"
                    | "skipped"
                    | "error"
                    | "errors"
                    | "xfailed"
                    | "xpassed"
                    | "deselected"
            )
        )
    ) && line.contains(" in ")
}

struct Record {
    name: String,
    status: Status,
    seconds: f64,
}

/// Runs named steps in order with a banner and wall time each, stopping at the first failure.
pub struct Steps {
    title: &'static str,
    records: Vec<Record>,
    show_tests: bool,
    /// Tests counted so far; steps add to it.
    pub tests: TestCounts,
}

impl Steps {
    /// An empty run titled e.g. "xtask demo".
    pub fn new(title: &'static str) -> Self {
        Steps {
            title,
            records: Vec::new(),
            show_tests: false,
            tests: TestCounts::default(),
        }
    }

    /// Like [`Steps::new`], and the summary ends with the test counts (a line CI reads).
    pub fn with_test_counts(title: &'static str) -> Self {
        Steps {
            show_tests: true,
            ..Steps::new(title)
        }
    }

    /// Runs one step. On failure the summary is printed and the error names the step.
    pub fn run(
        &mut self,
        name: &str,
        step: impl FnOnce(&mut TestCounts) -> Result<Outcome>,
    ) -> Result<()> {
        banner(&format!(
            "{} | step {}: {name}",
            self.title,
            self.records.len() + 1
        ));
        let start = Instant::now();
        let result = step(&mut self.tests);
        let seconds = start.elapsed().as_secs_f64();
        let status = match &result {
            Ok(Outcome::Ran) => Status::Ok,
            Ok(Outcome::Skipped(why)) => Status::Skipped(why.clone()),
            Err(_) => Status::Failed,
        };
        match &status {
            Status::Skipped(why) => println!("--> {name}: skipped ({why})"),
            other => println!("--> {name}: {other} in {seconds:.1} s"),
        }
        self.records.push(Record {
            name: name.to_string(),
            status,
            seconds,
        });
        match result {
            Ok(_) => Ok(()),
            Err(err) => {
                self.print_summary();
                Err(Error::Step {
                    step: name.to_string(),
                    source: Box::new(err),
                })
            }
        }
    }

    /// The closing table: step, status, seconds; then the test counts.
    pub fn print_summary(&self) {
        let width = self
            .records
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        println!();
        println!("{} summary", self.title);
        println!(
            "{:<width$}  {:<8}  {:>8}  note",
            "step", "status", "seconds"
        );
        println!("{}", "-".repeat(width + 30));
        for r in &self.records {
            let note = match &r.status {
                Status::Skipped(why) => why.as_str(),
                _ => "",
            };
            println!(
                "{:<width$}  {:<8}  {:>8.1}  {note}",
                r.name,
                r.status.to_string(),
                r.seconds
            );
        }
        let total: f64 = self.records.iter().map(|r| r.seconds).sum();
        println!("{:<width$}  {:<8}  {:>8.1}", "total", "", total);
        if self.show_tests {
            let t = self.tests;
            println!(
                "tests: {} passed, {} failed, {} skipped",
                t.passed, t.failed, t.skipped
            );
        }
        let _ = std::io::stdout().flush();
    }
}

/// A banner that stands out in a long log.
pub fn banner(text: &str) {
    let rule = "=".repeat(text.len().clamp(40, 100));
    println!("\n{rule}\n{text}\n{rule}");
    let _ = std::io::stdout().flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_pytest_and_ctest_closing_lines_are_all_counted() {
        let mut t = TestCounts::default();
        t.add_output(
            "running 3 tests\n\
             test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s\n\
             test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out\n\
             ======== 12 passed, 1 skipped, 2 xfailed in 0.52s ========\n\
             4 passed in 1.00s\n\
             100% tests passed, 0 tests failed out of 5\n\
             nothing to see in here\n",
        );
        assert_eq!(
            t,
            TestCounts {
                passed: 3 + 1 + 12 + 4 + 5,
                failed: 2,
                skipped: 1 + 1 + 2
            }
        );
    }

    #[test]
    fn ordinary_log_lines_are_not_mistaken_for_counts() {
        let mut t = TestCounts::default();
        t.add_output("test foo ... ok\n3 slots in ring\ncompiled 2 crates in 3s\n");
        assert_eq!(t, TestCounts::default());
    }
}
