//! `qadataswap rm` and `qadataswap gc`: remove segments nobody uses, never one that is in use or not ours.
//!
//! The check and the unlink are two steps: a writer that takes a stale segment over in between loses its name (its
//! mapping stays valid, readers that open the name afterwards get "not found"). Run `gc` when no writer is starting.

use std::io::Write;

use qadataswap_shm::SegmentName;
use serde::Serialize;

use crate::error::{CliError, Result};
use crate::listing::refusal;
use crate::status::{self, Proc, State, Status};

fn describe(procs: &[&Proc]) -> String {
    procs
        .iter()
        .map(|p| format!("{} {}", p.role, p.pid))
        .collect::<Vec<_>>()
        .join(", ")
}

fn unique_pids(procs: &[&Proc]) -> Vec<u32> {
    let mut pids: Vec<u32> = procs.iter().map(|p| p.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Whether `s` may be removed: `Ok(())`, or the refusal.
fn check_removable(s: &Status, force: bool) -> Result<()> {
    if s.state == State::Foreign {
        return Err(refusal(s).unwrap_or(CliError::Foreign {
            name: s.name.clone(),
            reason: "not ours".into(),
        }));
    }
    if matches!(s.state, State::Incompatible | State::Corrupt) && !force {
        // Its reader table cannot be trusted, so nobody can tell whether it is in use.
        return Err(refusal(s).unwrap_or(CliError::Incompatible {
            name: s.name.clone(),
            reason: "unreadable".into(),
        }));
    }
    let procs = s.processes();
    let live: Vec<&Proc> = procs.iter().filter(|p| p.alive).collect();
    if !live.is_empty() {
        return Err(CliError::InUse {
            name: s.name.clone(),
            pids: unique_pids(&live),
            who: describe(&live),
        });
    }
    let dead: Vec<&Proc> = procs.iter().filter(|p| !p.alive && p.pid != 0).collect();
    if !dead.is_empty() && !force {
        return Err(CliError::DeadButRegistered {
            name: s.name.clone(),
            pids: unique_pids(&dead),
            who: describe(&dead),
        });
    }
    Ok(())
}

fn unlink(name: &str) -> Result<()> {
    let n = SegmentName::new(name)?;
    match qadataswap_shm::unlink(&n) {
        Ok(()) => Ok(()),
        Err(qadataswap_shm::ShmError::NotFound { .. }) => Err(CliError::NotFound {
            name: name.to_owned(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// `rm NAME [--force]`.
///
/// # Errors
/// [`CliError::NotFound`] (3); [`CliError::InUse`] / [`CliError::DeadButRegistered`] (4); [`CliError::Foreign`] /
/// [`CliError::Incompatible`] (5).
pub fn rm(name: &str, force: bool, out: &mut dyn Write) -> Result<()> {
    let s = match status::classify(name, None) {
        Ok(s) => s,
        Err(qadataswap_arrow::Error::Shm(
            qadataswap_shm::ShmError::NotFound { .. }
            | qadataswap_shm::ShmError::InvalidName { .. },
        )) => {
            return Err(CliError::NotFound {
                name: name.to_owned(),
            })
        }
        Err(e) => return Err(e.into()),
    };
    check_removable(&s, force)?;
    unlink(name)?;
    writeln!(out, "removed {name} (was {})", s.state.as_str())?;
    Ok(())
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
    let statuses = status::list_all(prefix)?;
    for s in &statuses {
        let candidate = s.state == State::Stale
            || (closed && s.state == State::Closed && s.processes().iter().all(|p| !p.alive));
        if !candidate {
            continue;
        }
        // Dead registrations are what makes a segment stale: gc is the `--force` for them, never for live ones.
        let (action, why) = match check_removable(s, true) {
            Err(e) => ("kept", Some(e.to_string())),
            Ok(()) if dry_run => ("would remove", None),
            Ok(()) => match unlink(&s.name) {
                Ok(()) => ("removed", None),
                Err(CliError::NotFound { .. }) => ("gone", None),
                Err(e) => ("failed", Some(e.to_string())),
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
