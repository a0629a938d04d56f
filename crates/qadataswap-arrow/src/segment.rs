//! A mapped segment with a validated geometry, and typed access to its shared words.
//!
//! All pointer arithmetic into the mapping happens here, from a [`Geometry`] that was either computed by the
//! creator or recomputed and cross-checked from a private copy of the header: nothing read from shared memory
//! after that copy decides an offset.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use qadataswap_shm::{Mapping, Segment};
use qadataswap_sync::futex;
use qadataswap_sync::lease::{LeaseTable, ReaderEntry};
use qadataswap_sync::notify::Notifier;
use qadataswap_sync::owner::OwnerWord;
use qadataswap_sync::process::{Liveness, ProcessIdentity};
use qadataswap_sync::ring::{ReaderSide, StreamRing, WriterSide};
use qadataswap_sync::seqlock::SeqWord;

use crate::control::{Header, SlotDesc};
use crate::error::{Error, Result};
use crate::layout::{self, state, Geometry, Mode, HEADER_SIZE};

pub use crate::control::HeaderCopy;

impl HeaderCopy {
    /// Check identity and version, then recompute the geometry and require the stored offsets to match it.
    ///
    /// # Errors
    /// [`Error::Foreign`], [`Error::VersionMismatch`] or [`Error::CorruptHeader`].
    pub fn validate(&self, name: &str) -> Result<Geometry> {
        if self.magic() != layout::MAGIC {
            return Err(Error::Foreign {
                name: name.to_owned(),
            });
        }
        let version = self.format_version();
        let abi = self.abi();
        let readable = layout::OLDEST_READABLE_VERSION..=layout::FORMAT_VERSION;
        if !readable.contains(&version) || abi != layout::ABI_FINGERPRINT {
            return Err(Error::VersionMismatch {
                name: name.to_owned(),
                found: version,
                expected: layout::FORMAT_VERSION,
                found_abi: abi,
                expected_abi: layout::ABI_FINGERPRINT,
            });
        }
        let corrupt = |what: String| Error::CorruptHeader {
            name: name.to_owned(),
            what,
        };
        if self.header_size() as usize != HEADER_SIZE
            || self.reader_entry_size() as usize != layout::READER_ENTRY_SIZE
            || self.slot_desc_size() as usize != layout::SLOT_DESC_SIZE
            || self.max_slots() as usize != layout::MAX_SLOT_COUNT
        {
            return Err(corrupt(format!(
                "structure sizes do not match format version {version}"
            )));
        }
        let hflags = self.flags();
        if hflags & !layout::flags::KNOWN != 0 {
            return Err(corrupt(format!(
                "unknown header flag bits {:#x}",
                hflags & !layout::flags::KNOWN
            )));
        }
        if hflags & layout::flags::LZ4 != 0 && hflags & layout::flags::ZSTD != 0 {
            return Err(corrupt("both LZ4 and ZSTD flags are set".into()));
        }
        let st = self.state();
        if st > layout::state::FINISHED {
            return Err(corrupt(format!("unknown state {st}")));
        }
        let mode = Mode::from_u32(self.mode())
            .ok_or_else(|| corrupt(format!("unknown mode {}", self.mode())))?;
        let slot_count = self.slot_count() as usize;
        let slot_capacity =
            usize::try_from(self.slot_capacity()).map_err(|_| corrupt("slot capacity".into()))?;
        let reader_capacity = self.reader_capacity() as usize;
        let schema_capacity = self.schema_capacity() as usize;
        if slot_count == 0 || slot_count > layout::MAX_SLOT_COUNT {
            return Err(corrupt(format!(
                "slot count {slot_count} out of 1..={}",
                layout::MAX_SLOT_COUNT
            )));
        }
        if slot_capacity == 0 || slot_capacity % layout::ALIGN != 0 {
            return Err(corrupt(format!(
                "slot capacity {slot_capacity} is not a positive multiple of 64"
            )));
        }
        if reader_capacity == 0 || reader_capacity > 4096 {
            return Err(corrupt(format!(
                "reader capacity {reader_capacity} out of 1..=4096"
            )));
        }
        if !schema_capacity.is_multiple_of(layout::ALIGN) {
            return Err(corrupt(format!(
                "schema capacity {schema_capacity} is not a multiple of 64"
            )));
        }
        let geo = Geometry::from_parts(
            mode,
            slot_count,
            slot_capacity,
            reader_capacity,
            schema_capacity,
        )
        .ok_or_else(|| corrupt("sizes overflow".into()))?;
        let stored = [
            (
                "reader_table_offset",
                self.reader_table_offset(),
                geo.reader_table_offset,
            ),
            (
                "slot_table_offset",
                self.slot_table_offset(),
                geo.slot_table_offset,
            ),
            ("schema_offset", self.schema_offset(), geo.schema_offset),
            ("data_offset", self.data_offset(), geo.data_offset),
            ("total_size", self.total_size(), geo.total_size),
        ];
        for (field, found, expect) in stored {
            if found != expect as u64 {
                return Err(corrupt(format!(
                    "{field} is {found} but the geometry implies {expect}"
                )));
            }
        }
        Ok(geo)
    }
}

/// Wait (on the state word's futex) until a segment leaves the INITIALISING state.
///
/// Returns early with [`Error::Foreign`] when the magic bytes are not ours, so a foreign file whose state word
/// happens to be 0 is never mistaken for a half-built segment (and never reclaimed); and with [`Error::NotInitialised`] as soon as the creator recorded in
/// the header is dead, instead of waiting for the timeout.
pub(crate) fn wait_initialised(map: &Mapping, name: &str, timeout: Duration) -> Result<u32> {
    let header = Header::in_mapping(map);
    let state_word = header.state_word();
    let start = Instant::now();
    loop {
        let s = state_word.load(Ordering::Acquire);
        if s != state::INITIALISING {
            return Ok(s);
        }
        // Segments are published only once built (format version 2), so a file without our magic is someone else's,
        // all zeros included. (Version-1 creators wrote the magic among their first stores.)
        if header.magic() != layout::MAGIC {
            return Err(Error::Foreign {
                name: name.to_owned(),
            });
        }
        let waited = start.elapsed();
        let creator = header.creator();
        let creator_dead = creator.pid != 0 && !creator.is_alive();
        if waited >= timeout || creator_dead {
            // The state may have flipped while we looked at the creator: one last look before giving up.
            let s = state_word.load(Ordering::Acquire);
            if s != state::INITIALISING {
                return Ok(s);
            }
            return Err(Error::NotInitialised {
                name: name.to_owned(),
                creator_pid: creator.pid,
                waited,
            });
        }
        let slice = (timeout - waited).min(Duration::from_millis(20));
        let _ = futex::wait(state_word, state::INITIALISING, Some(slice));
    }
}

/// Nanoseconds since the UNIX epoch.
pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// An open, mapped, validated segment.
pub struct Shared {
    pub(crate) name: String,
    pub(crate) segment: Segment,
    pub(crate) map: Mapping,
    pub(crate) geo: Geometry,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.name)
            .field("geometry", &self.geo)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The segment's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The validated geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }

    /// The mapping (for address checks).
    pub fn mapping(&self) -> &Mapping {
        &self.map
    }

    /// The underlying segment.
    pub fn segment(&self) -> &Segment {
        &self.segment
    }

    /// The header, typed.
    pub(crate) fn header(&self) -> &Header {
        Header::in_mapping(&self.map)
    }

    /// Slot `slot`'s descriptor.
    ///
    /// # Panics
    /// If `slot` is not below the validated slot count (a caller bug).
    pub(crate) fn desc(&self, slot: usize) -> &SlotDesc {
        assert!(slot < self.geo.slot_count, "slot {slot} out of range");
        // SAFETY: the geometry was validated against the mapping's length, so descriptor `slot` lies inside the
        // control area: desc_offset(slot) is a multiple of 64 (the slot table is page aligned, descriptors are 64
        // bytes) and SlotDesc is 64 bytes of atomics, so the reference is aligned, in bounds and sound under
        // concurrent atomic access; it borrows `self`, which owns the mapping.
        unsafe { &*(self.map.as_ptr().add(self.geo.desc_offset(slot)) as *const SlotDesc) }
    }

    /// The commit word of slot `slot`.
    pub(crate) fn slot_seq(&self, slot: usize) -> SeqWord<'_> {
        self.desc(slot).seq()
    }

    /// The reader table.
    pub fn entries(&self) -> &[ReaderEntry] {
        // SAFETY: the reader table lies inside the control area (geometry validated), starts 64-aligned, holds
        // reader_capacity entries of exactly size_of::<ReaderEntry>() bytes (const-asserted in layout), and
        // ReaderEntry consists of atomics only, so shared references are sound under concurrent access.
        unsafe {
            std::slice::from_raw_parts(
                self.map.as_ptr().add(self.geo.reader_table_offset) as *const ReaderEntry,
                self.geo.reader_capacity,
            )
        }
    }

    /// The lease table over the reader entries.
    pub fn lease_table(&self) -> LeaseTable<'_> {
        LeaseTable::new(self.entries())
    }

    /// The publish notifier (readers park here).
    pub fn notifier(&self) -> Notifier<'_> {
        let (word, waiters) = self.header().publish_futex();
        Notifier::new(word, waiters)
    }

    /// The release notifier (the writer parks here waiting for leases or lagging stream readers).
    pub fn release_notifier(&self) -> Notifier<'_> {
        let (word, waiters) = self.header().release_futex();
        Notifier::new(word, waiters)
    }

    /// Start of slot `slot`'s data.
    pub fn slot_ptr(&self, slot: usize) -> *mut u8 {
        assert!(slot < self.geo.slot_count);
        // SAFETY: slot_offset(slot) + slot_capacity <= total_size == the mapping's length (geometry validated and
        // mapped in full), so the pointer stays inside the mapping.
        unsafe { self.map.as_mut_ptr().add(self.geo.slot_offset(slot)) }
    }

    /// Start of the schema area.
    pub(crate) fn schema_ptr(&self) -> *mut u8 {
        // SAFETY: schema_offset + schema_capacity <= data_offset <= mapping length.
        unsafe { self.map.as_mut_ptr().add(self.geo.schema_offset) }
    }

    /// The stream ring, a reader's side of it: the words read, a reader's cursor handshake and wake-ups (the rules
    /// are `qadataswap_sync::ring`'s). The writer's side is the writer's ([`crate::writer::RawWriter::stream_ring`]).
    pub fn stream_ring(&self) -> StreamRing<'_, ReaderSide> {
        self.stream_ring_writer().reader_side()
    }

    /// The stream ring, its writer's side (stores into `stream_head`, `stream_tail`, `stream_end`).
    pub(crate) fn stream_ring_writer(&self) -> StreamRing<'_, WriterSide> {
        StreamRing::new(
            self.header().stream_words(),
            self.geo.slot_count,
            self.lease_table(),
            self.notifier(),
            self.release_notifier(),
        )
    }

    /// After the reader owning `entry` released a lease: wake a writer parked on the release futex. A snapshot
    /// writer is woken at once; a stream writer by the ring's hysteresis rule (`StreamRing::release_wake`).
    pub(crate) fn lease_released(&self, entry: &ReaderEntry) {
        match self.geo.mode {
            Mode::Snapshot => self.release_notifier().notify(),
            Mode::Stream => self.stream_ring().release_wake(entry),
        }
    }

    /// The writer's role word (format version 2; always 0 in a version-1 segment).
    pub(crate) fn writer_role(&self) -> OwnerWord<'_> {
        self.header().writer_role()
    }

    /// What this process can tell about the recorded writer: `None` when there is none. In a version-2 segment the
    /// role word decides (a writer in another PID namespace is [`Liveness::Unknown`]); in a version-1 segment the
    /// writer's pid and start time do.
    pub fn writer_liveness(&self) -> Option<(u32, Liveness)> {
        if let Some(h) = self.writer_role().holder() {
            return Some((h.pid, h.liveness()));
        }
        let w = self.writer_identity()?;
        let pidns = self.header().writer_pidns();
        Some((w.pid, w.liveness(pidns)))
    }

    /// The header's writer identity (pid 0 = none).
    pub(crate) fn writer_identity(&self) -> Option<ProcessIdentity> {
        self.header().writer_identity()
    }

    /// The state word's value.
    pub fn state(&self) -> u32 {
        self.header().state()
    }

    /// The writer generation (bumped each time a new writer takes the segment over).
    pub fn generation(&self) -> u64 {
        self.header().generation()
    }

    /// Set the state word and wake anyone waiting on it and on the publish word.
    pub(crate) fn set_state(&self, s: u32) {
        let h = self.header();
        h.store_state(s);
        futex::wake(h.state_word(), u32::MAX);
        self.notifier().notify();
        self.release_notifier().notify();
    }
}
