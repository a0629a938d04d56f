//! What a named segment is, told without changing it: live, abandoned, half-built, foreign or from another
//! version. `qadataswap ls` / `gc` use this to decide what may be removed (only [`SegmentStatus::is_reclaimable`]).
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use qadataswap_arrow::status::{classify, SegmentStatus};
//! use qadataswap_arrow::SnapshotWriter;
//!
//! let name = format!("qads-doc-status-{}", std::process::id());
//! let writer = SnapshotWriter::create(&name, 1 << 20)?;
//! assert_eq!(classify(&name)?, SegmentStatus::Live { pid: std::process::id() });
//! writer.close()?;
//! # Ok(())
//! # }
//! ```

use qadataswap_shm::{
    Access, OpenOptions, Protection, Segment, SegmentName, ShmError, PRIVATE_PREFIX,
};
use qadataswap_sync::owner::{Holder, Refused, Taken};
use qadataswap_sync::process::{pid_namespace, ProcessIdentity};

use crate::error::{Error, Result};
use crate::layout::{self, state, HEADER_SIZE};
use crate::segment::HeaderCopy;

/// What a segment is. Only the variants for which [`SegmentStatus::is_reclaimable`] holds may be removed or
/// taken over; [`SegmentStatus::Foreign`] and [`SegmentStatus::Incompatible`] segments are never touched.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SegmentStatus {
    /// A live writer owns it.
    Live {
        /// The writer's pid.
        pid: u32,
    },
    /// Initialised, but the writer died without closing: a new writer takes it over; readers get its last frame.
    WriterDead {
        /// The dead writer's pid.
        pid: u32,
    },
    /// Closed cleanly by its writer but kept (persistent): readers may still read its last frame; a new writer
    /// takes it over.
    Closed,
    /// Its creator died before finishing the header: nobody can be attached; the next writer recreates it.
    Stale {
        /// The dead creator's pid (0 if it died before writing it).
        creator_pid: u32,
    },
    /// A live process is creating it right now.
    Initialising {
        /// The creator's pid (0 if it has not written it yet).
        creator_pid: u32,
    },
    /// Not ours: another user's file, not a regular file, too short for a header, or not starting with this
    /// library's magic bytes. Never opened for writing, never unlinked.
    Foreign {
        /// Why it is considered foreign.
        why: String,
    },
    /// Ours, but from another format version or ABI: never touched by this build.
    Incompatible {
        /// The format version found.
        found: u32,
        /// The ABI fingerprint found.
        found_abi: u32,
    },
    /// Ours and of this version, but its header describes an impossible layout or the file is shorter than it:
    /// nothing reads it; remove it by hand once you know its writer is gone.
    Corrupt {
        /// What is wrong.
        what: String,
    },
}

impl SegmentStatus {
    /// True when the segment may be removed or taken over without harming anyone: its creator or writer is dead,
    /// or it was closed.
    pub fn is_reclaimable(&self) -> bool {
        matches!(
            self,
            SegmentStatus::WriterDead { .. } | SegmentStatus::Closed | SegmentStatus::Stale { .. }
        )
    }
}

/// Classify the segment `name` by reading (never writing) its header.
///
/// Names starting with [`PRIVATE_PREFIX`] are segments a creator has not published yet: [`SegmentStatus::Initialising`]
/// while the creator runs, [`SegmentStatus::Stale`] once it is dead, [`SegmentStatus::Foreign`] without our magic
/// and creator. Any other name without our magic bytes is someone else's file, whatever its bytes (all zeros
/// included): segments are published only once built.
///
/// # Errors
/// [`Error::Shm`] when the name is invalid or does not exist, or on I/O errors. Everything about the segment
/// itself, including permission problems, is a [`SegmentStatus`].
pub fn classify(name: &str) -> Result<SegmentStatus> {
    let seg_name = SegmentName::any(name)?;
    let opts = OpenOptions {
        allow_shared_mode: true,
        allow_foreign_owner: true,
    };
    let segment = match Segment::open(&seg_name, Access::ReadOnly, &opts) {
        Ok(s) => s,
        Err(ShmError::PermissionDenied { .. }) => {
            return Ok(foreign("this user may not read it"));
        }
        Err(ShmError::NotARegularFile { .. }) => return Ok(foreign("not a regular file")),
        Err(e) => return Err(e.into()),
    };
    Ok(classify_open(&seg_name, &segment)?.0)
}

/// The status of an open segment, and its header copy when it has one of ours.
fn classify_open(
    name: &SegmentName,
    segment: &Segment,
) -> Result<(SegmentStatus, Option<HeaderCopy>)> {
    let me = rustix::process::geteuid().as_raw();
    if segment.owner_uid() != me {
        return Ok((
            foreign(&format!("owned by uid {}, not {me}", segment.owner_uid())),
            None,
        ));
    }
    if segment.len() < HEADER_SIZE {
        return Ok((
            foreign(&format!(
                "{} bytes, shorter than a {HEADER_SIZE}-byte header",
                segment.len()
            )),
            None,
        ));
    }
    let head = segment.map(0, HEADER_SIZE, Protection::ReadOnly, false)?;
    let copy = HeaderCopy::read(&head);
    drop(head);
    let status = classify_header(&copy, segment.len(), name.is_private());
    Ok((status, Some(copy)))
}

fn foreign(why: &str) -> SegmentStatus {
    SegmentStatus::Foreign {
        why: why.to_owned(),
    }
}

/// The creator's status from its identity in the header (a segment being built).
fn by_creator(copy: &HeaderCopy) -> SegmentStatus {
    let creator = ProcessIdentity {
        pid: copy.creator_pid(),
        start_time: copy.creator_start_time(),
    };
    if creator.pid == 0 {
        return foreign("it carries no creator");
    }
    if creator.liveness(copy.creator_pidns()).may_be_alive() {
        SegmentStatus::Initialising {
            creator_pid: creator.pid,
        }
    } else {
        SegmentStatus::Stale {
            creator_pid: creator.pid,
        }
    }
}

/// The decision, from a private copy of the header (testable without a file). `private`: the name is a creator's
/// private one (never published).
fn classify_header(copy: &HeaderCopy, file_len: usize, private: bool) -> SegmentStatus {
    if copy.magic() != layout::MAGIC {
        return foreign("it does not start with the qadataswap magic bytes");
    }
    let st = copy.state();
    if private {
        // Never published: its creator decides, whatever state it reached.
        return by_creator(copy);
    }
    if st == state::INITIALISING {
        // Only a version-1 creator published a segment before building it.
        return by_creator(copy);
    }
    let geo = match copy.validate("") {
        Ok(g) => g,
        Err(Error::VersionMismatch {
            found, found_abi, ..
        }) => return SegmentStatus::Incompatible { found, found_abi },
        Err(Error::CorruptHeader { what, .. }) => return SegmentStatus::Corrupt { what },
        Err(e) => {
            return SegmentStatus::Corrupt {
                what: e.to_string(),
            }
        }
    };
    if file_len < geo.total_size {
        return SegmentStatus::Corrupt {
            what: format!(
                "the file has {file_len} bytes but its header describes {}",
                geo.total_size
            ),
        };
    }
    // Version 2: the role word names the writer; version 1 (word 0): writer_pid and its start time.
    let writer = match Holder::unpack(copy.writer_claim()) {
        Some(h) => Some((h.pid, h.liveness())),
        None => {
            let w = ProcessIdentity {
                pid: copy.writer_pid(),
                start_time: copy.writer_start_time(),
            };
            (w.pid != 0).then(|| (w.pid, w.liveness(copy.writer_pidns())))
        }
    };
    match (st, writer) {
        (state::READY | state::CLOSED | state::FINISHED, None) => SegmentStatus::Closed,
        (state::READY | state::CLOSED | state::FINISHED, Some((pid, l))) => {
            if l.may_be_alive() {
                SegmentStatus::Live { pid }
            } else {
                SegmentStatus::WriterDead { pid }
            }
        }
        (other, _) => SegmentStatus::Corrupt {
            what: format!("unknown state {other}"),
        },
    }
}

/// Remove segment `name` only if it is provably ours and nobody uses it: the one rule behind `qadataswap rm`/`gc`,
/// Python's `unlink`, the C `qds_remove` and [`crate::SnapshotWriter`]'s close.
///
/// - Not this user's, not a regular file, or no qadataswap magic: [`Error::NotOurs`], never removed.
/// - A live (or unjudgeable) writer, creator or reader: [`Error::InUse`].
/// - Dead processes still registered: [`Error::DeadButRegistered`] unless `force`.
/// - Another format version or a corrupt header: [`Error::Unverifiable`] unless `force`.
///
/// The check and the removal refer to one open file: the name is unlinked only if it still refers to it. For a
/// version-2 segment whose writer is gone, the writer role is taken first, so no writer can take the segment over
/// between the check and the unlink. Returns what the segment was.
///
/// # Errors
/// The refusals above; [`Error::Shm`] for a missing or invalid name ([`ShmError::NotFound`]) and I/O errors.
pub fn remove(name: &str, force: bool) -> Result<SegmentStatus> {
    remove_with(name, force, false)
}

/// [`remove`], or with `dry_run` every check of it and nothing removed: `Ok` means "would remove".
///
/// # Errors
/// As [`remove`].
pub fn remove_with(name: &str, force: bool, dry_run: bool) -> Result<SegmentStatus> {
    let seg_name = SegmentName::any(name)?;
    let not_ours = |why: String| Error::NotOurs {
        name: seg_name.as_str().to_owned(),
        why,
    };
    let opts = OpenOptions {
        allow_shared_mode: true,
        allow_foreign_owner: true,
    };
    let segment = match Segment::open(&seg_name, Access::ReadWrite, &opts) {
        Ok(s) => s,
        Err(ShmError::PermissionDenied { .. }) => {
            return Err(not_ours("this user may not write it".into()))
        }
        Err(ShmError::NotARegularFile { .. }) => return Err(not_ours("not a regular file".into())),
        Err(e) => return Err(e.into()),
    };
    let (status, copy) = classify_open(&seg_name, &segment)?;
    match &status {
        SegmentStatus::Foreign { why } => return Err(not_ours(why.clone())),
        SegmentStatus::Incompatible { found, found_abi } if !force => {
            return Err(Error::Unverifiable {
                name: seg_name.as_str().to_owned(),
                why: format!("format version {found}, ABI {found_abi:#010x}"),
            })
        }
        SegmentStatus::Corrupt { what } if !force => {
            return Err(Error::Unverifiable {
                name: seg_name.as_str().to_owned(),
                why: what.clone(),
            })
        }
        SegmentStatus::Initialising { creator_pid } => {
            return Err(in_use(&seg_name, &[("creator", *creator_pid)]))
        }
        SegmentStatus::Live { pid } => return Err(in_use(&seg_name, &[("writer", *pid)])),
        SegmentStatus::WriterDead { .. } | SegmentStatus::Closed => {
            let copy = copy.ok_or_else(|| not_ours("no header".into()))?;
            return remove_unused(&seg_name, segment, &copy, status, force, dry_run);
        }
        _ => {}
    }
    if !dry_run {
        unlink_checked(&seg_name, &segment)?;
    }
    Ok(status)
}

fn in_use(name: &SegmentName, who: &[(&str, u32)]) -> Error {
    let mut pids: Vec<u32> = who.iter().map(|(_, p)| *p).collect();
    pids.sort_unstable();
    pids.dedup();
    Error::InUse {
        name: name.as_str().to_owned(),
        pids,
        who: describe(who),
    }
}

fn describe(who: &[(&str, u32)]) -> String {
    who.iter()
        .map(|(role, pid)| format!("{role} {pid}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn unlink_checked(name: &SegmentName, segment: &Segment) -> Result<()> {
    match qadataswap_shm::unlink_if_same(name, segment) {
        Ok(()) => Ok(()),
        Err(ShmError::Replaced { .. }) => Err(Error::NotOurs {
            name: name.as_str().to_owned(),
            why: "it was re-created by another process while being checked".into(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// A segment whose writer is gone (or closed): hold the writer role, check the readers, unlink.
fn remove_unused(
    name: &SegmentName,
    segment: Segment,
    copy: &HeaderCopy,
    status: SegmentStatus,
    force: bool,
    dry_run: bool,
) -> Result<SegmentStatus> {
    let geo = copy.validate(name.as_str())?;
    let v2 = copy.version() >= 2;
    let map = segment.map(0, geo.total_size, Protection::ReadWrite, false)?;
    let shared = crate::segment::Shared {
        name: name.as_str().to_owned(),
        segment,
        map,
        geo,
    };
    let me = ProcessIdentity::current();
    let role = shared.writer_role();
    let mut previous = None;
    if v2 {
        // Hold the writer role while deciding: a writer taking the segment over now would lose its name to us.
        match role.try_take(me, pid_namespace()) {
            Ok(Taken::Fresh) => previous = Some(0),
            Ok(Taken::FromDead(h)) => previous = Some(h.pack()),
            Err(Refused::Held(h, _)) => return Err(in_use(name, &[("writer", h.pid)])),
            Err(Refused::InvalidPid) => {}
        }
    }
    let give_back = || {
        if let (Some(previous), Some(mine)) = (previous, Holder::of(me, pid_namespace())) {
            role.give_back(mine, previous);
        }
    };
    let body = inspect_readers(&shared);
    let live: Vec<(&str, u32)> = body
        .iter()
        .filter(|(_, alive)| *alive)
        .map(|(pid, _)| ("reader", *pid))
        .collect();
    if !live.is_empty() {
        give_back();
        return Err(in_use(name, &live));
    }
    let mut dead: Vec<(&str, u32)> = body.iter().map(|(pid, _)| ("reader", *pid)).collect();
    if let SegmentStatus::WriterDead { pid } = status {
        dead.insert(0, ("writer", pid));
    }
    if !dead.is_empty() && !force {
        give_back();
        let mut pids: Vec<u32> = dead.iter().map(|(_, p)| *p).collect();
        pids.sort_unstable();
        pids.dedup();
        return Err(Error::DeadButRegistered {
            name: name.as_str().to_owned(),
            pids,
            who: describe(&dead),
        });
    }
    if dry_run {
        give_back();
        return Ok(status);
    }
    if let Err(e) = unlink_checked(name, &shared.segment) {
        give_back();
        return Err(e);
    }
    Ok(status)
}

/// `(pid, may be alive)` of every registered reader (fork children that called `exec` count as gone).
fn inspect_readers(s: &crate::segment::Shared) -> Vec<(u32, bool)> {
    let file = s.segment.file_id().ok();
    s.lease_table()
        .registered_entries()
        .filter_map(|(_, e)| e.owner())
        .map(|o| {
            (
                o.identity.pid,
                crate::fork::owner_liveness(&o, file).may_be_alive(),
            )
        })
        .collect()
}

/// Remove every unpublished segment of this user whose creator is dead (a creator killed while building it), and
/// return their names. Files with our private prefix but without our magic and creator are left alone.
pub fn sweep_leftovers() -> Vec<String> {
    let Ok(entries) = qadataswap_shm::list(PRIVATE_PREFIX) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for e in entries.into_iter().filter(|e| e.regular) {
        if let Ok(SegmentStatus::Stale { .. }) = remove(&e.name, false) {
            removed.push(e.name);
        }
    }
    removed
}
