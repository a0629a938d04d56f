//! Read-only inspection of a segment, for tools such as `qadataswap ls` and `qadataswap inspect`.
//!
//! [`inspect`] opens the segment `O_RDONLY`, maps it `PROT_READ` and copies out what it finds: the header fields,
//! every slot descriptor with its lease count, every registered reader entry and the decoded schema. It never
//! registers in the reader table, never takes a lease, never writes a byte (the mapping is read-only: a write would
//! fault) and never waits for a segment that is still being initialised. Everything it returns is a private copy
//! taken at one moment; a live writer may have moved on by the time it is printed.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use qadataswap_arrow::{golden, inspect, SnapshotWriter};
//!
//! let name = format!("qads-doc-inspect-{}", std::process::id());
//! let mut writer = SnapshotWriter::create(&name, 1 << 20)?;
//! writer.write(&golden::numeric_batch(10, 2))?;
//!
//! let seen = inspect::inspect(&name)?;
//! assert_eq!(seen.header.published, Some((1, 0)));
//! let body = seen.body.expect("initialised");
//! assert_eq!(body.slots[0].rows, 10);
//! assert!(body.readers.is_empty(), "inspecting does not register a reader");
//! # Ok(())
//! # }
//! ```

use std::sync::atomic::Ordering;

use arrow_schema::SchemaRef;
use qadataswap_shm::{Access, OpenOptions, Protection, Segment, SegmentName};
use qadataswap_sync::owner::Holder;
use qadataswap_sync::process::{Liveness, ProcessIdentity};

use crate::error::{Error, Result};
use crate::layout::{self, state, unpack_published, Geometry, Mode, HEADER_SIZE};
use crate::segment::{HeaderCopy, Shared};

/// A process named in the header or the reader table, and whether it is running now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Its pid.
    pub pid: u32,
    /// Its start time (clock ticks since boot, FORMAT.md §7), 0 if unknown.
    pub start_time: u64,
    /// Whether that process (same pid and start time, not a zombie) is running now, or may be: a process of another
    /// PID namespace counts as alive, since nobody here can tell (see [`ProcessInfo::liveness`]).
    pub alive: bool,
    /// What this process can tell about it.
    pub liveness: Liveness,
}

impl ProcessInfo {
    /// Judge `pid`/`start_time` recorded with PID namespace `pidns` (0 = not recorded).
    pub(crate) fn of(pid: u32, start_time: u64, pidns: u64) -> ProcessInfo {
        let liveness = if pid == 0 {
            Liveness::Dead
        } else {
            ProcessIdentity { pid, start_time }.liveness(pidns)
        };
        ProcessInfo {
            pid,
            start_time,
            alive: liveness.may_be_alive(),
            liveness,
        }
    }

    /// The holder of a version-2 writer role word (its start time is known only in its low 32 bits).
    fn of_holder(h: &Holder, start_time: u64) -> ProcessInfo {
        let liveness = h.liveness();
        ProcessInfo {
            pid: h.pid,
            start_time,
            alive: liveness.may_be_alive(),
            liveness,
        }
    }
}

/// The header's fields, copied once (FORMAT.md §3).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeaderInfo {
    /// `format_version`.
    pub format_version: u32,
    /// `abi` fingerprint.
    pub abi: u32,
    /// `flags` (persistent, LZ4, ZSTD).
    pub flags: u32,
    /// `total_size`.
    pub total_size: u64,
    /// `mode`, `None` if the word holds no known mode (e.g. while initialising).
    pub mode: Option<Mode>,
    /// `slot_count`.
    pub slot_count: u32,
    /// `slot_capacity`.
    pub slot_capacity: u64,
    /// `reader_capacity`.
    pub reader_capacity: u32,
    /// `schema_capacity`.
    pub schema_capacity: u32,
    /// `created_ns`.
    pub created_ns: u64,
    /// The creator.
    pub creator: ProcessInfo,
    /// `state`: see [`layout::state`].
    pub state: u32,
    /// The writer, `None` when `writer_pid` is 0 (closed cleanly, or never set).
    pub writer: Option<ProcessInfo>,
    /// `generation`.
    pub generation: u64,
    /// `last_write_ns` (0: never written).
    pub last_write_ns: u64,
    /// `frames_written`.
    pub frames_written: u64,
    /// `bytes_written`.
    pub bytes_written: u64,
    /// `published` unpacked as `(frame_seq, slot)`; `None` before the first publish.
    pub published: Option<(u64, usize)>,
    /// `waiters` parked on `notify`.
    pub waiters: u32,
    /// `stream_head`.
    pub stream_head: u64,
    /// `stream_tail`.
    pub stream_tail: u64,
    /// `stream_end`.
    pub stream_end: u64,
    /// `release_waiters` (writers parked on `release_notify`).
    pub release_waiters: u32,
    /// `schema_version`.
    pub schema_version: u64,
    /// `schema_len`.
    pub schema_len: u64,
}

impl HeaderInfo {
    fn from_copy(h: &HeaderCopy) -> HeaderInfo {
        let writer_pid = h.writer_pid();
        HeaderInfo {
            format_version: h.format_version(),
            abi: h.abi(),
            flags: h.flags(),
            total_size: h.total_size(),
            mode: Mode::from_u32(h.mode()),
            slot_count: h.slot_count(),
            slot_capacity: h.slot_capacity(),
            reader_capacity: h.reader_capacity(),
            schema_capacity: h.schema_capacity(),
            created_ns: h.created_ns(),
            creator: ProcessInfo::of(h.creator_pid(), h.creator_start_time(), h.creator_pidns()),
            state: h.state(),
            // Version 2: the role word decides who the writer is; version 1 (word 0): writer_pid.
            writer: match Holder::unpack(h.writer_claim()) {
                Some(holder) => Some(ProcessInfo::of_holder(&holder, h.writer_start_time())),
                None => (writer_pid != 0)
                    .then(|| ProcessInfo::of(writer_pid, h.writer_start_time(), h.writer_pidns())),
            },
            generation: h.generation(),
            last_write_ns: h.last_write_ns(),
            frames_written: h.frames_written(),
            bytes_written: h.bytes_written(),
            published: unpack_published(h.published()),
            waiters: h.waiters(),
            stream_head: h.stream_head(),
            stream_tail: h.stream_tail(),
            stream_end: h.stream_end(),
            release_waiters: h.release_waiters(),
            schema_version: h.schema_version(),
            schema_len: h.schema_len(),
        }
    }
}

/// What a slot's commit word says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotState {
    /// `seq = 0`: never written (or reset after a writer died mid-write).
    Empty,
    /// Odd `seq`: a writer is writing it (or died doing so), or it changed while being copied.
    Writing,
    /// Even, non-zero `seq`: a committed frame.
    Committed,
}

/// One slot descriptor (FORMAT.md §5) and the leases on it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SlotInfo {
    /// Slot index.
    pub index: usize,
    /// What the commit word says.
    pub state: SlotState,
    /// The raw commit word.
    pub seq_word: u64,
    /// `frame_seq` (meaningful when committed).
    pub frame_seq: u64,
    /// `schema_version`.
    pub schema_version: u64,
    /// `len`: encoded bytes of the frame.
    pub len: u64,
    /// `num_rows`.
    pub rows: u64,
    /// `write_ns`.
    pub write_ns: u64,
    /// `num_batches`.
    pub num_batches: u32,
    /// `flags`.
    pub flags: u32,
    /// Leases on this slot summed over every reader entry (live or dead).
    pub leases: u32,
    /// Whether this is the published (newest) slot.
    pub published: bool,
}

/// One registered reader entry (FORMAT.md §4).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReaderInfo {
    /// Entry index in the reader table.
    pub index: usize,
    /// The owner.
    pub process: ProcessInfo,
    /// `cursor` (stream mode).
    pub cursor: u64,
    /// `heartbeat`: ns since the UNIX epoch of the last read (0: never).
    pub heartbeat_ns: u64,
    /// `(slot, count)` for every slot this entry holds leases on.
    pub leases: Vec<(usize, u32)>,
}

/// Everything past the header of an initialised segment.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BodyInfo {
    /// The validated geometry.
    pub geometry: Geometry,
    /// Every slot descriptor.
    pub slots: Vec<SlotInfo>,
    /// Every registered reader entry (free entries are left out).
    pub readers: Vec<ReaderInfo>,
    /// The schema area, decoded; `Ok(None)` before the first write.
    pub schema: std::result::Result<Option<SchemaRef>, String>,
}

/// A read-only look at one segment.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Inspection {
    /// The segment's name.
    pub name: String,
    /// Size of the file in bytes.
    pub file_size: u64,
    /// Owner uid of the file.
    pub owner_uid: u32,
    /// Permission bits of the file.
    pub permissions: u32,
    /// The header.
    pub header: HeaderInfo,
    /// The slots, readers and schema; `None` while the header's state is INITIALISING.
    pub body: Option<BodyInfo>,
}

/// Look at segment `name` without touching it: see the [module docs](self).
///
/// Segments of other users and with group/other permission bits are inspected too (reading a header harms nobody);
/// [`Inspection::owner_uid`] says whose it is.
///
/// # Errors
/// - [`Error::Shm`] with `NotFound`, `PermissionDenied`, `NotARegularFile`, `TooSmall` (shorter than a header) ...
/// - [`Error::Foreign`] if the file does not start with this library's magic bytes.
/// - [`Error::VersionMismatch`] for another format version or ABI.
/// - [`Error::CorruptHeader`] if the header describes an impossible layout or the file is shorter than it says.
pub fn inspect(name: &str) -> Result<Inspection> {
    let seg_name = SegmentName::any(name)?;
    let opts = OpenOptions {
        allow_shared_mode: true,
        allow_foreign_owner: true,
    };
    let segment = Segment::open(&seg_name, Access::ReadOnly, &opts)?;
    inspect_segment(name, segment)
}

/// [`inspect`] of a segment already open (the very file a caller is about to act on).
///
/// # Errors
/// As [`inspect`].
pub fn inspect_segment(name: &str, segment: Segment) -> Result<Inspection> {
    let file_size = segment.len() as u64;
    let owner_uid = segment.owner_uid();
    let permissions = segment.mode();
    if segment.len() < HEADER_SIZE {
        // Shorter than any of our headers: nobody of ours made it.
        return Err(Error::Foreign {
            name: name.to_owned(),
        });
    }
    let head = segment.map(0, HEADER_SIZE, Protection::ReadOnly, false)?;
    let copy = HeaderCopy::read(&head);
    drop(head);
    if copy.magic() != layout::MAGIC {
        return Err(Error::Foreign {
            name: name.to_owned(),
        });
    }
    let header = HeaderInfo::from_copy(&copy);
    let base = Inspection {
        name: name.to_owned(),
        file_size,
        owner_uid,
        permissions,
        header,
        body: None,
    };
    if copy.state() == state::INITIALISING {
        // The creator has not finished: the other fields may be incomplete, so look no further.
        return Ok(base);
    }
    let geo = copy.validate(name)?;
    if file_size < geo.total_size as u64 {
        return Err(Error::CorruptHeader {
            name: name.to_owned(),
            what: format!(
                "the file is {file_size} bytes but the header says {}",
                geo.total_size
            ),
        });
    }
    // Mapped in full (as `Shared` promises its methods) but not populated: slot data is never touched, so it costs
    // address space only.
    let map = segment.map(0, geo.total_size, Protection::ReadOnly, false)?;
    let shared = Shared {
        name: name.to_owned(),
        segment,
        map,
        geo,
    };
    Ok(Inspection {
        body: Some(read_body(&shared, base.header.published)),
        ..base
    })
}

fn read_body(s: &Shared, published: Option<(u64, usize)>) -> BodyInfo {
    let geo = s.geo;
    let table = s.lease_table();
    let file = s.segment.file_id().ok();
    let slots = (0..geo.slot_count)
        .map(|i| {
            let seq = s.slot_seq(i);
            let before = seq.load();
            let frame_seq = s.desc(i).frame_seq();
            let info = SlotInfo {
                index: i,
                state: SlotState::Empty,
                seq_word: before,
                frame_seq,
                schema_version: s.desc(i).schema_version(),
                len: s.desc(i).len(),
                rows: s.desc(i).num_rows(),
                write_ns: s.desc(i).write_ns(),
                num_batches: s.desc(i).num_batches(),
                flags: s.desc(i).flags(),
                leases: table.leases_on(i),
                published: published.is_some_and(|(_, slot)| slot == i),
            };
            // Fields copied while the word changed, or while it was odd, are not a committed frame's.
            let stable = seq.load() == before;
            let state = match before {
                0 if stable => SlotState::Empty,
                w if stable && w % 2 == 0 && w / 2 == frame_seq => SlotState::Committed,
                _ => SlotState::Writing,
            };
            SlotInfo { state, ..info }
        })
        .collect();
    let readers = table
        .registered_entries()
        .map(|(index, e)| {
            let process = match e.owner() {
                Some(o) => {
                    let liveness = crate::fork::owner_liveness(&o, file);
                    ProcessInfo {
                        pid: o.identity.pid,
                        start_time: o.identity.start_time,
                        alive: liveness.may_be_alive(),
                        liveness,
                    }
                }
                None => ProcessInfo::of(0, 0, 0),
            };
            ReaderInfo {
                index,
                process,
                cursor: e.cursor().load(Ordering::Acquire),
                heartbeat_ns: e.heartbeat(),
                leases: (0..geo.slot_count)
                    .filter_map(|slot| {
                        let n = e.lease_count(slot);
                        (n > 0).then_some((slot, n))
                    })
                    .collect(),
            }
        })
        .collect();
    let schema = crate::schema_area::read(s).map_err(|e| e.to_string());
    BodyInfo {
        geometry: geo,
        slots,
        readers,
        schema,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{golden, SnapshotReader, SnapshotWriter};

    #[test]
    fn inspecting_a_live_segment_neither_registers_nor_leases() {
        let name = format!("qads-inspect-unit-{}", std::process::id());
        let mut w = SnapshotWriter::builder(&name)
            .size(1 << 20)
            .slots(2)
            .create()
            .unwrap();
        w.write(&golden::numeric_batch(5, 2)).unwrap();
        let r = SnapshotReader::open(&name).unwrap();
        let held = r.read().unwrap();
        let seen = inspect(&name).unwrap();
        let body = seen.body.unwrap();
        assert_eq!(body.readers.len(), 1, "only the real reader is registered");
        assert_eq!(body.readers[0].leases, vec![(0, 1)]);
        assert_eq!(body.slots[0].state, SlotState::Committed);
        assert_eq!(body.slots[0].leases, 1);
        assert_eq!(body.slots[1].state, SlotState::Empty);
        assert_eq!(body.schema.unwrap().unwrap().fields().len(), 2);
        assert!(seen.header.writer.unwrap().alive);
        drop(held);
        assert_eq!(inspect(&name).unwrap().body.unwrap().slots[0].leases, 0);
    }
}
