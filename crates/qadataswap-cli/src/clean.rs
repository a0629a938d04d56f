//! `qadataswap rm` and `qadataswap gc`: remove segments nobody uses, never one that is in use or not ours.
//!
//! Both go through [`qadataswap_arrow::status::remove`], the one rule every API's removal follows (Python's
//! `unlink`, the C `qds_remove`): it checks and removes the very file it opened, and holds a dead writer's role
//! while it does, so no writer can take the segment over in between.

use std::io::Write;

use qadataswap_arrow::status;
use serde::Serialize;

use crate::error::{CliError, Result};
use crate::status::{list_all, State};

/// The CLI's error for a refusal of the shared rule.
fn refused(name: &str, e: qadataswap_arrow::Error) -> CliError {
    use qadataswap_arrow::Error as A;
    use qadataswap_shm::ShmError as S;
    match e {
        A::Shm(S::NotFound { .. }) => CliError::NotFound {
            name: name.to_owned(),
        },
        A::InUse { name, pids, who } => CliError::InUse { name, pids, who },
        A::DeadButRegistered { name, pids, who } => CliError::DeadButRegistered { name, pids, who },
        A::NotOurs { name, why } => CliError::Foreign { name, reason: why },
        A::Unverifiable { name, why } => CliError::Incompatible { name, reason: why },
        other => CliError::Arrow(other),
    }
}

/// `rm NAME [--force]`.
///
/// # Errors
/// [`CliError::NotFound`] (3); [`CliError::InUse`] / [`CliError::DeadButRegistered`] (4); [`CliError::Foreign`] /
/// [`CliError::Incompatible`] (5).
pub fn rm(name: &str, force: bool, out: &mut dyn Write) -> Result<()> {
    let was = status::remove(name, force).map_err(|e| refused(name, e))?;
    writeln!(out, "removed {name} (was {})", describe(&was))?;
    Ok(())
}

fn describe(s: &status::SegmentStatus) -> &'static str {
    use status::SegmentStatus as S;
    match s {
        S::Live { .. } => "live",
        S::WriterDead { .. } => "writer-dead",
        S::Closed => "closed",
        S::Stale { .. } => "stale",
        S::Initialising { .. } => "initialising",
        S::Foreign { .. } => "foreign",
        S::Incompatible { .. } => "incompatible",
        S::Corrupt { .. } => "corrupt",
        _ => "unknown",
    }
}

#[derive(Serialize)]
struct GcEntry<'a> {
    name: &'a str,
    state: State,
    action: &'static str,
    why: Option<String>,
}

/// `gc [--prefix P] [--dry-run] [--closed]`: remove every stale segment (whose name starts with `prefix`) (and, with `closed`, closed ones nobody reads).
///
/// # Errors
/// If /dev/shm cannot be read or output fails. Per-segment failures are reported and skipped.
pub fn gc(
    prefix: &str,
    dry_run: bool,
    closed: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let mut report = Vec::new();
    let statuses = list_all(prefix)?;
    for s in &statuses {
        let candidate = s.state == State::Stale
            || (closed && s.state == State::Closed && s.processes().iter().all(|p| !p.alive));
        if !candidate {
            continue;
        }
        // Dead registrations are what makes a segment stale: gc is the `--force` for them, never for live ones.
        let (action, why) = match status::remove_with(&s.name, true, dry_run) {
            Ok(_) if dry_run => ("would remove", None),
            Ok(_) => ("removed", None),
            Err(e) => match refused(&s.name, e) {
                CliError::NotFound { .. } => ("gone", None),
                e @ (CliError::InUse { .. }
                | CliError::Foreign { .. }
                | CliError::Incompatible { .. }) => ("kept", Some(e.to_string())),
                e => ("failed", Some(e.to_string())),
            },
        };
        report.push(GcEntry {
            name: &s.name,
            state: s.state,
            action,
            why,
        });
    }
    if json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
        return Ok(());
    }
    if report.is_empty() {
        writeln!(out, "nothing to remove")?;
    }
    for e in &report {
        match &e.why {
            Some(w) => writeln!(out, "{} {} ({}): {w}", e.action, e.name, e.state.as_str())?,
            None => writeln!(out, "{} {} ({})", e.action, e.name, e.state.as_str())?,
        }
    }
    Ok(())
}
