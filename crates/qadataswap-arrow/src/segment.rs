//! A mapped segment with a validated geometry, and typed access to its shared words.
//!
//! All pointer arithmetic into the mapping happens here, from a [`Geometry`] that was either computed by the
//! creator or recomputed and cross-checked from a private copy of the header: nothing read from shared memory
//! after that copy decides an offset.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use qadataswap_shm::{Mapping, Segment};
use qadataswap_sync::futex;
use qadataswap_sync::lease::{LeaseTable, ReaderEntry};
use qadataswap_sync::notify::Notifier;
use qadataswap_sync::owner::OwnerWord;
use qadataswap_sync::process::{Liveness, ProcessIdentity};
use qadataswap_sync::seqlock::SeqWord;

use crate::error::{Error, Result};
use crate::layout::{self, desc, off, state, Geometry, Mode, HEADER_SIZE};

pub use crate::status::{classify, SegmentStatus};

/// A private copy of the header's words, taken once and validated.
#[derive(Clone, Debug)]
pub struct HeaderCopy {
    words: Box<[u64; HEADER_SIZE / 8]>,
}

impl HeaderCopy {
    /// A header copy from raw bytes (missing bytes read as zero, extra bytes are ignored): for tests and fuzzing.
    pub fn from_bytes(bytes: &[u8]) -> HeaderCopy {
        let mut words = Box::new([0u64; HEADER_SIZE / 8]);
        for (w, chunk) in words.iter_mut().zip(bytes.chunks(8)) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            *w = u64::from_le_bytes(b);
        }
        HeaderCopy { words }
    }

    /// Copy the header out of a mapping of at least [`HEADER_SIZE`] bytes (one atomic load per word: a concurrent
    /// writer can change words, but never make this read undefined).
    ///
    /// # Panics
    /// If the mapping is shorter than the header (a caller bug: callers map the header first).
    pub fn read(map: &Mapping) -> HeaderCopy {
        assert!(map.len() >= HEADER_SIZE, "caller maps the whole header");
        let mut words = Box::new([0u64; HEADER_SIZE / 8]);
        for (i, w) in words.iter_mut().enumerate() {
            // SAFETY: the mapping is page aligned and at least HEADER_SIZE long (asserted above), so word i is an
            // in-bounds, 8-aligned u64 that may be concurrently modified only through atomics.
            let a = unsafe { &*(map.as_ptr().add(i * 8) as *const AtomicU64) };
            *w = a.load(Ordering::Acquire);
        }
        HeaderCopy { words }
    }

    /// The u64 at byte offset `off` (8-aligned).
    pub fn u64(&self, off: usize) -> u64 {
        self.words[off / 8]
    }

    /// The u32 at byte offset `off` (4-aligned).
    pub fn u32(&self, off: usize) -> u32 {
        let w = self.words[off / 8];
        if off.is_multiple_of(8) {
            w as u32
        } else {
            (w >> 32) as u32
        }
    }

    /// The `format_version` word.
    pub fn version(&self) -> u32 {
        self.u32(off::FORMAT_VERSION)
    }

    /// The magic bytes.
    pub fn magic(&self) -> [u8; 8] {
        self.words[0].to_le_bytes()
    }

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
        let version = self.u32(off::FORMAT_VERSION);
        let abi = self.u32(off::ABI);
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
        if self.u32(off::HEADER_SIZE) as usize != HEADER_SIZE
            || self.u32(off::READER_ENTRY_SIZE) as usize != layout::READER_ENTRY_SIZE
            || self.u32(off::SLOT_DESC_SIZE) as usize != layout::SLOT_DESC_SIZE
            || self.u32(off::MAX_SLOTS) as usize != layout::MAX_SLOT_COUNT
        {
            return Err(corrupt(format!(
                "structure sizes do not match format version {version}"
            )));
        }
        let hflags = self.u32(off::FLAGS);
        if hflags & !layout::flags::KNOWN != 0 {
            return Err(corrupt(format!(
                "unknown header flag bits {:#x}",
                hflags & !layout::flags::KNOWN
            )));
        }
        if hflags & layout::flags::LZ4 != 0 && hflags & layout::flags::ZSTD != 0 {
            return Err(corrupt("both LZ4 and ZSTD flags are set".into()));
        }
        let st = self.u32(off::STATE);
        if st > layout::state::FINISHED {
            return Err(corrupt(format!("unknown state {st}")));
        }
        let mode = Mode::from_u32(self.u32(off::MODE))
            .ok_or_else(|| corrupt(format!("unknown mode {}", self.u32(off::MODE))))?;
        let slot_count = self.u32(off::SLOT_COUNT) as usize;
        let slot_capacity = usize::try_from(self.u64(off::SLOT_CAPACITY))
            .map_err(|_| corrupt("slot capacity".into()))?;
        let reader_capacity = self.u32(off::READER_CAPACITY) as usize;
        let schema_capacity = self.u32(off::SCHEMA_CAPACITY) as usize;
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
            (off::READER_TABLE_OFFSET, geo.reader_table_offset),
            (off::SLOT_TABLE_OFFSET, geo.slot_table_offset),
            (off::SCHEMA_OFFSET, geo.schema_offset),
            (off::DATA_OFFSET, geo.data_offset),
            (off::TOTAL_SIZE, geo.total_size),
        ];
        for (field, expect) in stored {
            if self.u64(field) != expect as u64 {
                return Err(corrupt(format!(
                    "field at byte {field} is {} but the geometry implies {expect}",
                    self.u64(field)
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
    assert!(map.len() >= HEADER_SIZE, "caller maps the whole header");
    // SAFETY: the mapping covers the header (asserted); offset STATE is 4-aligned and only accessed atomically.
    let state_word = unsafe { &*(map.as_ptr().add(off::STATE) as *const AtomicU32) };
    // SAFETY: as above, for the 8-aligned magic word.
    let magic_word = unsafe { &*(map.as_ptr().add(off::MAGIC) as *const AtomicU64) };
    // SAFETY: as above, for the 4-aligned creator pid word.
    let creator_word = unsafe { &*(map.as_ptr().add(off::CREATOR_PID) as *const AtomicU32) };
    // SAFETY: as above, for the 8-aligned creator start-time word.
    let creator_start =
        unsafe { &*(map.as_ptr().add(off::CREATOR_START_TIME) as *const AtomicU64) };
    let start = Instant::now();
    loop {
        let s = state_word.load(Ordering::Acquire);
        if s != state::INITIALISING {
            return Ok(s);
        }
        // Segments are published only once built (format version 2), so a file without our magic is someone else's,
        // all zeros included. (Version-1 creators wrote the magic among their first stores.)
        let magic = magic_word.load(Ordering::Acquire).to_le_bytes();
        if magic != layout::MAGIC {
            return Err(Error::Foreign {
                name: name.to_owned(),
            });
        }
        let waited = start.elapsed();
        let creator = ProcessIdentity {
            pid: creator_word.load(Ordering::Acquire),
            start_time: creator_start.load(Ordering::Acquire),
        };
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

    fn u32_at(&self, offset: usize) -> &AtomicU32 {
        assert!(
            offset.is_multiple_of(4) && offset + 4 <= self.geo.data_offset,
            "control-area word"
        );
        // SAFETY: the offset is 4-aligned and inside the control area of a live, page-aligned mapping (asserted);
        // the word is only ever accessed atomically by every process.
        unsafe { &*(self.map.as_ptr().add(offset) as *const AtomicU32) }
    }

    fn u64_at(&self, offset: usize) -> &AtomicU64 {
        assert!(
            offset.is_multiple_of(8) && offset + 8 <= self.geo.data_offset,
            "control-area word"
        );
        // SAFETY: as in u32_at, for an 8-aligned u64.
        unsafe { &*(self.map.as_ptr().add(offset) as *const AtomicU64) }
    }

    /// A u32 header word.
    pub fn header_u32(&self, field: usize) -> &AtomicU32 {
        self.u32_at(field)
    }

    /// A u64 header word.
    pub fn header_u64(&self, field: usize) -> &AtomicU64 {
        self.u64_at(field)
    }

    /// A u64 word of slot `slot`'s descriptor.
    pub fn desc_u64(&self, slot: usize, field: usize) -> &AtomicU64 {
        assert!(slot < self.geo.slot_count);
        self.u64_at(self.geo.desc_offset(slot) + field)
    }

    /// A u32 word of slot `slot`'s descriptor.
    pub fn desc_u32(&self, slot: usize, field: usize) -> &AtomicU32 {
        assert!(slot < self.geo.slot_count);
        self.u32_at(self.geo.desc_offset(slot) + field)
    }

    /// The commit word of slot `slot`.
    pub fn slot_seq(&self, slot: usize) -> SeqWord<'_> {
        SeqWord::new(self.desc_u64(slot, desc::SEQ))
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
        Notifier::new(self.u32_at(off::NOTIFY), self.u32_at(off::WAITERS))
    }

    /// The release notifier (the writer parks here waiting for leases or lagging stream readers).
    pub fn release_notifier(&self) -> Notifier<'_> {
        Notifier::new(
            self.u32_at(off::RELEASE_NOTIFY),
            self.u32_at(off::RELEASE_WAITERS),
        )
    }

    /// Start of slot `slot`'s data.
    pub fn slot_ptr(&self, slot: usize) -> *mut u8 {
        assert!(slot < self.geo.slot_count);
        // SAFETY: slot_offset(slot) + slot_capacity <= total_size == the mapping's length (geometry validated and
        // mapped in full), so the pointer stays inside the mapping.
        unsafe { self.map.as_mut_ptr().add(self.geo.slot_offset(slot)) }
    }

    /// Start of the schema area.
    pub fn schema_ptr(&self) -> *mut u8 {
        // SAFETY: schema_offset + schema_capacity <= data_offset <= mapping length.
        unsafe { self.map.as_mut_ptr().add(self.geo.schema_offset) }
    }

    /// The writer's role word (format version 2; always 0 in a version-1 segment).
    pub fn writer_role(&self) -> OwnerWord<'_> {
        OwnerWord::new(self.u64_at(off::WRITER_CLAIM))
    }

    /// What this process can tell about the recorded writer: `None` when there is none. In a version-2 segment the
    /// role word decides (a writer in another PID namespace is [`Liveness::Unknown`]); in a version-1 segment the
    /// writer's pid and start time do.
    pub fn writer_liveness(&self) -> Option<(u32, Liveness)> {
        if let Some(h) = self.writer_role().holder() {
            return Some((h.pid, h.liveness()));
        }
        let w = self.writer_identity()?;
        let pidns = self.u64_at(off::WRITER_PIDNS).load(Ordering::Acquire);
        Some((w.pid, w.liveness(pidns)))
    }

    /// The header's writer identity (pid 0 = none).
    pub fn writer_identity(&self) -> Option<ProcessIdentity> {
        let pid = self.header_u32(off::WRITER_PID).load(Ordering::Acquire);
        if pid == 0 {
            return None;
        }
        let start_time = self
            .header_u64(off::WRITER_START_TIME)
            .load(Ordering::Acquire);
        Some(ProcessIdentity { pid, start_time })
    }

    /// The state word's value.
    pub fn state(&self) -> u32 {
        self.header_u32(off::STATE).load(Ordering::Acquire)
    }

    /// Set the state word and wake anyone waiting on it and on the publish word.
    pub fn set_state(&self, s: u32) {
        let w = self.header_u32(off::STATE);
        w.store(s, Ordering::Release);
        futex::wake(w, u32::MAX);
        self.notifier().notify();
        self.release_notifier().notify();
    }
}
