//! What state a segment is in, from a read-only look at its header (never registers, leases or writes): the
//! classification `qadataswap ls` shows, shared with the Flight gateway's `ListFlights`.

use crate::inspect::{self, Inspection};
use crate::layout::state as hstate;
use crate::Mode;
use qadataswap_shm::{SegmentInfo, ShmError};
use serde::Serialize;

/// The state `ls` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// A live writer owns it.
    Live,
    /// The writer closed cleanly; the segment was kept (persistent) or readers are still attached.
    Closed,
    /// The writer died, but live readers are still attached.
    WriterDead,
    /// Nothing alive is attached (writer dead or never finished initialising, readers dead): `gc` removes it.
    Stale,
    /// Its creator is still setting it up.
    Initialising,
    /// Not this library's (other magic, too small, not a regular file) or another user's.
    Foreign,
    /// This library's magic, but another format version or ABI.
    Incompatible,
    /// This library's magic and version, but an impossible header.
    Corrupt,
}

impl State {
    /// The name printed in tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Live => "live",
            State::Closed => "closed",
            State::WriterDead => "writer-dead",
            State::Stale => "stale",
            State::Initialising => "initialising",
            State::Foreign => "foreign",
            State::Incompatible => "incompatible",
            State::Corrupt => "corrupt",
        }
    }
}

/// One process the header or the reader table names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Proc {
    /// `writer`, `creator` or `reader`.
    pub role: &'static str,
    /// Its pid.
    pub pid: u32,
    /// Whether it is running now.
    pub alive: bool,
}

/// A segment as `ls` sees it.
#[derive(Clone, Debug)]
pub struct Status {
    /// File name in /dev/shm.
    pub name: String,
    /// File size.
    pub size: u64,
    /// The state.
    pub state: State,
    /// Why it is foreign, incompatible or corrupt.
    pub reason: Option<String>,
    /// The read-only look, when the header could be read.
    pub inspection: Option<Inspection>,
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Look at segment `name` (listed or not).
///
/// # Errors
/// [`ShmError::NotFound`] (as `crate::Error::Shm`) if there is no such segment; other errors are
/// folded into the state.
pub fn classify(name: &str, size: Option<u64>) -> Result<Status, crate::Error> {
    use crate::Error as A;
    let listed = size.is_some();
    let size = size.or_else(|| {
        std::fs::symlink_metadata(format!("{}/{name}", qadataswap_shm::SHM_DIR))
            .ok()
            .map(|m| m.len())
    });
    let mut st = Status {
        name: name.to_owned(),
        size: size.unwrap_or(0),
        state: State::Foreign,
        reason: None,
        inspection: None,
    };
    match inspect::inspect(name) {
        Ok(i) => {
            st.size = i.file_size;
            if i.owner_uid != euid() {
                st.reason = Some(format!(
                    "owned by uid {}, not by you (uid {})",
                    i.owner_uid,
                    euid()
                ));
                st.state = State::Foreign;
            } else {
                st.state = state_of(&i);
            }
            st.inspection = Some(i);
        }
        Err(A::Shm(ShmError::NotFound { .. })) if !listed => {
            return Err(A::Shm(ShmError::NotFound {
                name: name.to_owned(),
            }))
        }
        Err(A::Shm(ShmError::NotFound { .. })) => {
            // Vanished while listing.
            st.state = State::Stale;
            st.reason = Some("removed while listing".into());
        }
        Err(A::Foreign { .. }) => {
            // A header still all zeros is a segment being created (or whose creator died right after creating
            // the file), not a foreign one: the arrow layer's classifier tells which.
            use crate::status::SegmentStatus as S;
            match crate::status::classify(name) {
                Ok(S::Initialising { .. }) => st.state = State::Initialising,
                Ok(S::Stale { creator_pid }) => {
                    st.state = State::Stale;
                    st.reason = Some(format!(
                        "creator (pid {creator_pid}) died while creating it"
                    ));
                }
                _ => st.reason = Some("no QADSWAP magic bytes".into()),
            }
        }
        Err(A::VersionMismatch {
            found,
            expected,
            found_abi,
            expected_abi,
            ..
        }) => {
            st.state = State::Incompatible;
            st.reason = Some(if found != expected {
                format!(
                    "format version {found}, this tool reads versions {} to {expected}",
                    crate::layout::OLDEST_READABLE_VERSION
                )
            } else {
                format!("ABI {found_abi:#010x}, this tool reads ABI {expected_abi:#010x}")
            });
        }
        Err(A::CorruptHeader { what, .. }) => {
            st.state = State::Corrupt;
            st.reason = Some(format!("corrupt header: {what}"));
        }
        Err(A::Shm(e @ (ShmError::NotARegularFile { .. } | ShmError::TooSmall { .. }))) => {
            st.reason = Some(e.to_string());
        }
        Err(e) => {
            // Unreadable (permissions, I/O): say so, and treat it as not ours.
            st.reason = Some(e.to_string());
        }
    }
    Ok(st)
}

fn state_of(i: &Inspection) -> State {
    let h = &i.header;
    let Some(body) = &i.body else {
        return if h.creator.alive {
            State::Initialising
        } else {
            State::Stale
        };
    };
    let live_readers = body.readers.iter().any(|r| r.process.alive);
    match (h.state, h.writer) {
        (hstate::READY, Some(w)) if w.alive => State::Live,
        (hstate::CLOSED | hstate::FINISHED, None) => State::Closed,
        _ if live_readers => State::WriterDead,
        _ => State::Stale,
    }
}

impl Status {
    /// Every process named by the header and the reader table.
    pub fn processes(&self) -> Vec<Proc> {
        let Some(i) = &self.inspection else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if i.body.is_none() {
            out.push(Proc {
                role: "creator",
                pid: i.header.creator.pid,
                alive: i.header.creator.alive,
            });
        }
        if let Some(w) = i.header.writer {
            out.push(Proc {
                role: "writer",
                pid: w.pid,
                alive: w.alive,
            });
        }
        if let Some(b) = &i.body {
            out.extend(b.readers.iter().map(|r| Proc {
                role: "reader",
                pid: r.process.pid,
                alive: r.process.alive,
            }));
        }
        out
    }

    /// Snapshot or stream.
    pub fn mode(&self) -> Option<Mode> {
        self.inspection.as_ref().and_then(|i| i.header.mode)
    }

    /// The newest sequence number: the published frame (snapshot) or the last chunk (stream).
    pub fn last_seq(&self) -> Option<u64> {
        let i = self.inspection.as_ref()?;
        i.body.as_ref()?;
        match i.header.mode? {
            Mode::Snapshot => i.header.published.map(|(seq, _)| seq),
            Mode::Stream => i.header.stream_head.checked_sub(1).filter(|&s| s > 0),
        }
    }

    /// Whether a segment of this library in this state is only shown by `ls --all`.
    pub fn hidden_by_default(&self) -> bool {
        self.state == State::Foreign
    }
}

/// Every entry of /dev/shm whose name starts with `prefix`, classified.
///
/// # Errors
/// If /dev/shm cannot be read.
pub fn list_all(prefix: &str) -> Result<Vec<Status>, crate::Error> {
    let entries: Vec<SegmentInfo> = qadataswap_shm::list(prefix)?;
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        if !e.regular {
            out.push(Status {
                name: e.name,
                size: e.size,
                state: State::Foreign,
                reason: Some("not a regular file".into()),
                inspection: None,
            });
            continue;
        }
        match classify(&e.name, Some(e.size)) {
            Ok(s) => out.push(s),
            Err(err) => return Err(err),
        }
    }
    Ok(out)
}
