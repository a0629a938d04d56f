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

use std::time::{Duration, SystemTime};

use qadataswap_shm::{Access, OpenOptions, Protection, Segment, SegmentName, ShmError};
use qadataswap_sync::process::ProcessIdentity;

use crate::error::{Error, Result};
use crate::layout::{self, off, state, HEADER_SIZE};
use crate::segment::HeaderCopy;

/// How long a segment whose header is still all zeros counts as being created rather than abandoned: the creator
/// writes its pid right after reserving the memory, so only a creator that died in that window leaves zeros.
const ZERO_HEADER_GRACE: Duration = Duration::from_secs(2);

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
/// # Errors
/// [`Error::Shm`] when the name is invalid or does not exist, or on I/O errors. Everything about the segment
/// itself, including permission problems, is a [`SegmentStatus`].
pub fn classify(name: &str) -> Result<SegmentStatus> {
    let seg_name = SegmentName::new(name)?;
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
    let me = rustix::process::geteuid().as_raw();
    if segment.owner_uid() != me {
        return Ok(foreign(&format!(
            "owned by uid {}, not {me}",
            segment.owner_uid()
        )));
    }
    if segment.len() < HEADER_SIZE {
        return Ok(foreign(&format!(
            "{} bytes, shorter than a {HEADER_SIZE}-byte header",
            segment.len()
        )));
    }
    let head = segment.map(0, HEADER_SIZE, Protection::ReadOnly, false)?;
    let copy = HeaderCopy::read(&head);
    drop(head);
    Ok(classify_header(&copy, segment.len(), || age(&segment)))
}

fn foreign(why: &str) -> SegmentStatus {
    SegmentStatus::Foreign {
        why: why.to_owned(),
    }
}

/// Time since the file was last modified (a fresh file's creation).
fn age(segment: &Segment) -> Duration {
    let modified = rustix::fs::fstat(segment.as_fd()).ok().map(|st| {
        SystemTime::UNIX_EPOCH
            + Duration::new(
                st.st_mtime.max(0) as u64,
                st.st_mtime_nsec.clamp(0, 999_999_999) as u32,
            )
    });
    modified
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .unwrap_or(Duration::MAX)
}

/// The decision, from a private copy of the header (testable without a file).
fn classify_header(
    copy: &HeaderCopy,
    file_len: usize,
    age: impl FnOnce() -> Duration,
) -> SegmentStatus {
    let magic = copy.magic();
    let st = copy.u32(off::STATE);
    let creator = ProcessIdentity {
        pid: copy.u32(off::CREATOR_PID),
        start_time: copy.u64(off::CREATOR_START_TIME),
    };
    // A creator stores its pid first and the magic among its first stores, and `state` last: a header with no
    // magic yet and state 0 is a half-built segment of ours; anything else without our magic is someone else's.
    let half_built = st == state::INITIALISING && (magic == layout::MAGIC || magic == [0; 8]);
    if half_built {
        if creator.pid == 0 {
            return if age() < ZERO_HEADER_GRACE {
                SegmentStatus::Initialising { creator_pid: 0 }
            } else {
                SegmentStatus::Stale { creator_pid: 0 }
            };
        }
        return if creator.is_alive() {
            SegmentStatus::Initialising {
                creator_pid: creator.pid,
            }
        } else {
            SegmentStatus::Stale {
                creator_pid: creator.pid,
            }
        };
    }
    if magic != layout::MAGIC {
        return foreign("it does not start with the qadataswap magic bytes");
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
    let writer = ProcessIdentity {
        pid: copy.u32(off::WRITER_PID),
        start_time: copy.u64(off::WRITER_START_TIME),
    };
    match (st, writer.pid) {
        (state::READY, 0) | (state::CLOSED | state::FINISHED, 0) => SegmentStatus::Closed,
        (state::READY | state::CLOSED | state::FINISHED, pid) => {
            if writer.is_alive() {
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
