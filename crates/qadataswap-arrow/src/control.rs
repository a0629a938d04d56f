//! The control area's shared words as types: the header (FORMAT.md §3) and the slot descriptor (§5).
//!
//! Both are `#[repr(C)]` structs of atomics whose field offsets are asserted below against the FORMAT.md tables
//! (and, in the tests, against the tables parsed from FORMAT.md itself). Their accessors are crate-private and named
//! for what they do (`publish`, `count_commit`, `record_new_writer`, ...), and no code picks a word's width by hand.
//! Outside this crate, only the holder of the writer role stores into protocol words, through
//! `RawWriter`'s methods (the stream ring's writer side, `finish_stream`, the claim and commit of `write_slot`);
//! a reader's side of the ring reads. The public description of the layout, for tools and
//! tests that corrupt segments on purpose, is [`crate::format`]: names, offsets and widths, read-only.

use std::mem::offset_of;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use qadataswap_shm::Mapping;
use qadataswap_sync::owner::OwnerWord;
use qadataswap_sync::process::ProcessIdentity;
use qadataswap_sync::seqlock::SeqWord;

use crate::layout::{self, Geometry, HEADER_SIZE, SLOT_DESC_SIZE};

/// The segment header, format version 2: 4096 bytes, every field an atomic so that a reference into a live mapping
/// is sound whatever other processes do. Fields are private; the crate reads and writes them through methods.
#[repr(C)]
pub struct Header {
    // line 0: identity, immutable once `state` left INITIALISING
    magic: AtomicU64,
    format_version: AtomicU32,
    abi: AtomicU32,
    header_size: AtomicU32,
    flags: AtomicU32,
    total_size: AtomicU64,
    mode: AtomicU32,
    slot_count: AtomicU32,
    slot_capacity: AtomicU64,
    reader_capacity: AtomicU32,
    schema_capacity: AtomicU32,
    created_ns: AtomicU64,
    // line 1: region offsets and the creator, immutable
    reader_table_offset: AtomicU64,
    reader_entry_size: AtomicU32,
    max_slots: AtomicU32,
    slot_table_offset: AtomicU64,
    slot_desc_size: AtomicU32,
    _reserved_92: AtomicU32,
    schema_offset: AtomicU64,
    data_offset: AtomicU64,
    creator_pid: AtomicU32,
    _reserved_116: AtomicU32,
    creator_start_time: AtomicU64,
    // line 2: state and the writer
    state: AtomicU32,
    writer_pid: AtomicU32,
    writer_start_time: AtomicU64,
    generation: AtomicU64,
    last_write_ns: AtomicU64,
    frames_written: AtomicU64,
    bytes_written: AtomicU64,
    writer_claim: AtomicU64,
    writer_pidns: AtomicU64,
    // line 3: snapshot publication and its futex
    published: AtomicU64,
    notify: AtomicU32,
    waiters: AtomicU32,
    _reserved_208: [AtomicU64; 6],
    // line 4: the stream's words
    stream_head: AtomicU64,
    stream_tail: AtomicU64,
    stream_end: AtomicU64,
    _reserved_280: [AtomicU64; 5],
    // line 5: the lease-release futex
    release_notify: AtomicU32,
    release_waiters: AtomicU32,
    _reserved_328: [AtomicU64; 7],
    // line 6: the schema area's seqlock
    schema_seq: AtomicU64,
    schema_version: AtomicU64,
    schema_len: AtomicU64,
    schema_checksum: AtomicU64,
    _reserved_416: [AtomicU64; 4],
    // line 7: version 2
    creator_pidns: AtomicU64,
    _reserved_456: [AtomicU64; (HEADER_SIZE - 456) / 8],
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Header")
            .field("format_version", &self.format_version())
            .field("state", &self.state())
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

/// One slot descriptor (FORMAT.md §5): 64 bytes of atomics.
#[repr(C)]
pub struct SlotDesc {
    seq: AtomicU64,
    frame_seq: AtomicU64,
    schema_version: AtomicU64,
    len: AtomicU64,
    num_rows: AtomicU64,
    write_ns: AtomicU64,
    num_batches: AtomicU32,
    _reserved_52: AtomicU32,
    flags: AtomicU32,
    _reserved_60: AtomicU32,
}

/// Compile-time ties between the types and FORMAT.md's tables (the unit tests also parse FORMAT.md itself).
macro_rules! at {
    ($t:ty, $($field:ident = $off:expr),* $(,)?) => {
        $( const _: () = assert!(offset_of!($t, $field) == $off); )*
    };
}
at!(
    Header,
    magic = 0,
    format_version = 8,
    abi = 12,
    header_size = 16,
    flags = 20,
    total_size = 24,
    mode = 32,
    slot_count = 36,
    slot_capacity = 40,
    reader_capacity = 48,
    schema_capacity = 52,
    created_ns = 56,
    reader_table_offset = 64,
    reader_entry_size = 72,
    max_slots = 76,
    slot_table_offset = 80,
    slot_desc_size = 88,
    schema_offset = 96,
    data_offset = 104,
    creator_pid = 112,
    creator_start_time = 120,
    state = 128,
    writer_pid = 132,
    writer_start_time = 136,
    generation = 144,
    last_write_ns = 152,
    frames_written = 160,
    bytes_written = 168,
    writer_claim = 176,
    writer_pidns = 184,
    published = 192,
    notify = 200,
    waiters = 204,
    stream_head = 256,
    stream_tail = 264,
    stream_end = 272,
    release_notify = 320,
    release_waiters = 324,
    schema_seq = 384,
    schema_version = 392,
    schema_len = 400,
    schema_checksum = 408,
    creator_pidns = 448
);
at!(
    SlotDesc,
    seq = 0,
    frame_seq = 8,
    schema_version = 16,
    len = 24,
    num_rows = 32,
    write_ns = 40,
    num_batches = 48,
    flags = 56
);
const _: () = assert!(std::mem::size_of::<Header>() == HEADER_SIZE);
const _: () = assert!(std::mem::size_of::<SlotDesc>() == SLOT_DESC_SIZE);
const _: () = assert!(std::mem::align_of::<Header>() <= layout::ALIGN);
const _: () = assert!(std::mem::align_of::<SlotDesc>() <= layout::ALIGN);

/// One field of a control-area structure, as FORMAT.md describes it: for tools and tests that read or corrupt a
/// segment's bytes on purpose. Read-only: the library's own code reaches the words through typed accessors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// The field's name in FORMAT.md.
    pub name: &'static str,
    /// Bytes from the start of the structure.
    pub offset: usize,
    /// Bytes the field takes (4 or 8).
    pub width: usize,
}

macro_rules! fields {
    ($t:ty, $w:ident, $($field:ident),* $(,)?) => {
        &[$( Field { name: stringify!($field), offset: offset_of!($t, $field), width: $w::<$t, _>(|h| &h.$field) } ),*]
    };
}

/// The width of the atomic a projection returns (4 or 8), computed without a value of `T`.
const fn width_of<T, A: Sized>(_: fn(&T) -> &A) -> usize {
    std::mem::size_of::<A>()
}

/// The header's fields (FORMAT.md §3), in offset order.
pub const HEADER_FIELDS: &[Field] = fields!(
    Header,
    width_of,
    magic,
    format_version,
    abi,
    header_size,
    flags,
    total_size,
    mode,
    slot_count,
    slot_capacity,
    reader_capacity,
    schema_capacity,
    created_ns,
    reader_table_offset,
    reader_entry_size,
    max_slots,
    slot_table_offset,
    slot_desc_size,
    schema_offset,
    data_offset,
    creator_pid,
    creator_start_time,
    state,
    writer_pid,
    writer_start_time,
    generation,
    last_write_ns,
    frames_written,
    bytes_written,
    writer_claim,
    writer_pidns,
    published,
    notify,
    waiters,
    stream_head,
    stream_tail,
    stream_end,
    release_notify,
    release_waiters,
    schema_seq,
    schema_version,
    schema_len,
    schema_checksum,
    creator_pidns
);

/// The slot descriptor's fields (FORMAT.md §5), in offset order.
pub const SLOT_DESC_FIELDS: &[Field] = fields!(
    SlotDesc,
    width_of,
    seq,
    frame_seq,
    schema_version,
    len,
    num_rows,
    write_ns,
    num_batches,
    flags
);

/// The header field called `name` in FORMAT.md.
pub fn header_field(name: &str) -> Option<Field> {
    HEADER_FIELDS.iter().copied().find(|f| f.name == name)
}

/// The slot-descriptor field called `name` in FORMAT.md.
pub fn slot_desc_field(name: &str) -> Option<Field> {
    SLOT_DESC_FIELDS.iter().copied().find(|f| f.name == name)
}

/// Loads of fields nobody else changes concurrently in a way that matters for ordering use Acquire anyway: the cost
/// is nil on x86-64 and the reasoning stays local.
macro_rules! getters {
    ($($(#[$doc:meta])* $name:ident: $t:ty),* $(,)?) => {
        $( $(#[$doc])* pub(crate) fn $name(&self) -> $t { self.$name.load(Ordering::Acquire) } )*
    };
}

/// What a creator writes into a fresh header before it says READY.
pub(crate) struct HeaderInit {
    pub(crate) geo: Geometry,
    pub(crate) flags: u32,
    pub(crate) created_ns: u64,
    pub(crate) writer_claim: Option<u64>,
    pub(crate) writer: ProcessIdentity,
    pub(crate) writer_pidns: u64,
}

impl Header {
    /// The header at the start of `map`.
    ///
    /// # Panics
    /// If the mapping is shorter than the header (a caller bug: callers map the header first).
    pub(crate) fn in_mapping(map: &Mapping) -> &Header {
        assert!(map.len() >= HEADER_SIZE, "caller maps the whole header");
        // SAFETY: the mapping is page aligned (>= align_of::<Header>()) and at least HEADER_SIZE ==
        // size_of::<Header>() bytes long (asserted); Header consists of atomics only, so a shared reference is sound
        // while other processes change the words; the reference borrows `map`, so it cannot outlive the mapping.
        unsafe { &*(map.as_ptr() as *const Header) }
    }

    /// A private, zeroed header (for copies).
    fn zeroed() -> Box<Header> {
        // SAFETY: every field of Header is an atomic integer (or an array of them), for which all-zero bytes are a
        // valid value.
        Box::new(unsafe { std::mem::zeroed::<Header>() })
    }

    getters! {
        format_version: u32, abi: u32, header_size: u32, flags: u32, total_size: u64, mode: u32, slot_count: u32,
        slot_capacity: u64, reader_capacity: u32, schema_capacity: u32, created_ns: u64, reader_table_offset: u64,
        reader_entry_size: u32, max_slots: u32, slot_table_offset: u64, slot_desc_size: u32, schema_offset: u64,
        data_offset: u64, creator_pid: u32, creator_start_time: u64, creator_pidns: u64,
        state: u32, writer_pid: u32, writer_start_time: u64, writer_pidns: u64, writer_claim: u64,
        generation: u64, last_write_ns: u64, frames_written: u64, bytes_written: u64,
        /// The packed `published` word (`frame_seq << 8 | slot`, 0 = none).
        published: u64,
        waiters: u32, stream_head: u64, stream_tail: u64, stream_end: u64, release_waiters: u32,
        schema_version: u64, schema_len: u64, schema_checksum: u64,
    }

    /// The magic bytes.
    pub(crate) fn magic(&self) -> [u8; 8] {
        self.magic.load(Ordering::Acquire).to_le_bytes()
    }

    /// The creator's identity.
    pub(crate) fn creator(&self) -> ProcessIdentity {
        ProcessIdentity {
            pid: self.creator_pid(),
            start_time: self.creator_start_time(),
        }
    }

    /// The state word itself (a futex: waiters for READY park on it).
    pub(crate) fn state_word(&self) -> &AtomicU32 {
        &self.state
    }

    /// Store a new state (Release). Waking its waiters is the segment's job ([`crate::segment::Shared::set_state`]).
    pub(crate) fn store_state(&self, s: u32) {
        self.state.store(s, Ordering::Release);
    }

    /// Every field of a fresh header but the identity written before the file grew, then nothing else: the caller
    /// says READY.
    pub(crate) fn initialise(&self, init: &HeaderInit) {
        let g = &init.geo;
        let r = Ordering::Relaxed;
        self.header_size.store(HEADER_SIZE as u32, r);
        self.flags.store(init.flags, r);
        self.total_size.store(g.total_size as u64, r);
        self.mode.store(g.mode.to_u32(), r);
        self.slot_count.store(g.slot_count as u32, r);
        self.slot_capacity.store(g.slot_capacity as u64, r);
        self.reader_capacity.store(g.reader_capacity as u32, r);
        self.schema_capacity.store(g.schema_capacity as u32, r);
        self.created_ns.store(init.created_ns, r);
        self.reader_table_offset
            .store(g.reader_table_offset as u64, r);
        self.reader_entry_size
            .store(layout::READER_ENTRY_SIZE as u32, r);
        self.max_slots.store(layout::MAX_SLOT_COUNT as u32, r);
        self.slot_table_offset.store(g.slot_table_offset as u64, r);
        self.slot_desc_size.store(SLOT_DESC_SIZE as u32, r);
        self.schema_offset.store(g.schema_offset as u64, r);
        self.data_offset.store(g.data_offset as u64, r);
        if let Some(claim) = init.writer_claim {
            self.writer_claim.store(claim, r);
        }
        self.writer_pidns.store(init.writer_pidns, r);
        self.writer_pid.store(init.writer.pid, r);
        self.writer_start_time.store(init.writer.start_time, r);
        self.generation.store(1, r);
    }

    /// The first bytes of a new segment, written before it grows: magic, version, ABI and the creator, so that anyone
    /// who finds it unpublished can tell that it is ours, whose, and still being built (state 0).
    pub(crate) fn identity_bytes(creator: ProcessIdentity, pidns: u64) -> Vec<u8> {
        let mut head = vec![0u8; HEADER_SIZE];
        let mut put = |at: usize, bytes: &[u8]| head[at..at + bytes.len()].copy_from_slice(bytes);
        put(offset_of!(Header, magic), &layout::MAGIC);
        put(
            offset_of!(Header, format_version),
            &layout::FORMAT_VERSION.to_le_bytes(),
        );
        put(
            offset_of!(Header, abi),
            &layout::ABI_FINGERPRINT.to_le_bytes(),
        );
        put(offset_of!(Header, creator_pid), &creator.pid.to_le_bytes());
        put(
            offset_of!(Header, creator_start_time),
            &creator.start_time.to_le_bytes(),
        );
        put(offset_of!(Header, creator_pidns), &pidns.to_le_bytes());
        head
    }

    /// The writer's role word (format version 2; 0 in a version-1 segment).
    pub(crate) fn writer_role(&self) -> OwnerWord<'_> {
        OwnerWord::new(&self.writer_claim)
    }

    /// After taking the role over: record who the writer is now and bump the generation.
    pub(crate) fn record_new_writer(&self, me: ProcessIdentity, pidns: u64) {
        self.writer_pidns.store(pidns, Ordering::Relaxed);
        self.writer_start_time
            .store(me.start_time, Ordering::Relaxed);
        self.writer_pid.store(me.pid, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// A closing writer clears `writer_pid` if it is still its own.
    pub(crate) fn clear_writer_pid(&self, pid: u32) {
        let _ = self
            .writer_pid
            .compare_exchange(pid, 0, Ordering::AcqRel, Ordering::Relaxed);
    }

    /// The writer identity recorded by version-1 writers (pid 0 = none).
    pub(crate) fn writer_identity(&self) -> Option<ProcessIdentity> {
        let pid = self.writer_pid();
        (pid != 0).then(|| ProcessIdentity {
            pid,
            start_time: self.writer_start_time(),
        })
    }

    /// Count a committed frame of `len` bytes at `now` (ns since the epoch).
    pub(crate) fn count_commit(&self, now: u64, len: u64) {
        self.last_write_ns.store(now, Ordering::Relaxed);
        self.frames_written.fetch_add(1, Ordering::Relaxed);
        self.bytes_written.fetch_add(len, Ordering::Relaxed);
    }

    /// Snapshot mode: make `frame_seq` in `slot` the newest frame (Release: its commit happened before).
    pub(crate) fn publish(&self, frame_seq: u64, slot: usize) {
        self.published
            .store(layout::pack_published(frame_seq, slot), Ordering::Release);
    }

    /// Snapshot mode: the published word itself (readers compare it before and after a lease).
    pub(crate) fn published_word(&self) -> &AtomicU64 {
        &self.published
    }

    /// The publish futex (`notify`, `waiters`): readers park here.
    pub(crate) fn publish_futex(&self) -> (&AtomicU32, &AtomicU32) {
        (&self.notify, &self.waiters)
    }

    /// The release futex (`release_notify`, `release_waiters`): a writer parks here.
    pub(crate) fn release_futex(&self) -> (&AtomicU32, &AtomicU32) {
        (&self.release_notify, &self.release_waiters)
    }

    /// Stream mode: the words `stream_head`, `stream_tail`, `stream_end`.
    pub(crate) fn stream_words(&self) -> (&AtomicU64, &AtomicU64, &AtomicU64) {
        (&self.stream_head, &self.stream_tail, &self.stream_end)
    }

    /// The schema area's seqlock word.
    pub(crate) fn schema_seq(&self) -> SeqWord<'_> {
        SeqWord::new(&self.schema_seq)
    }

    /// Under the schema seqlock: record the schema message's version, length and checksum.
    pub(crate) fn store_schema(&self, version: u64, len: u64, checksum: u64) {
        self.schema_version.store(version, Ordering::Relaxed);
        self.schema_len.store(len, Ordering::Relaxed);
        self.schema_checksum.store(checksum, Ordering::Relaxed);
    }
}

/// What a commit records in a slot's descriptor.
pub(crate) struct DescRecord {
    pub(crate) frame_seq: u64,
    pub(crate) schema_version: u64,
    pub(crate) len: u64,
    pub(crate) rows: u64,
    pub(crate) write_ns: u64,
    pub(crate) batches: u32,
    pub(crate) flags: u32,
}

impl SlotDesc {
    getters! { frame_seq: u64, schema_version: u64, len: u64, num_rows: u64, write_ns: u64, num_batches: u32, flags: u32 }

    /// The commit word.
    pub(crate) fn seq(&self) -> SeqWord<'_> {
        SeqWord::new(&self.seq)
    }

    /// Fill the descriptor of a claimed slot (the commit of `seq` that follows orders these stores).
    pub(crate) fn record(&self, r: &DescRecord) {
        let o = Ordering::Relaxed;
        self.frame_seq.store(r.frame_seq, o);
        self.schema_version.store(r.schema_version, o);
        self.len.store(r.len, o);
        self.num_rows.store(r.rows, o);
        self.write_ns.store(r.write_ns, o);
        self.num_batches.store(r.batches, o);
        self._reserved_52.store(0, o);
        self.flags.store(r.flags, o);
    }

    /// Forget the frame a given-up claim had started to write (its `seq` is then committed as 0: empty).
    pub(crate) fn forget_frame(&self) {
        self.frame_seq.store(0, Ordering::Relaxed);
    }
}

/// A private copy of the header's words, taken once (a concurrent writer can change words while it is taken, but
/// never make it undefined); everything a reader decides from the header it decides from such a copy.
pub struct HeaderCopy {
    h: Box<Header>,
}

impl Clone for HeaderCopy {
    fn clone(&self) -> HeaderCopy {
        HeaderCopy::from_bytes(&self.to_bytes())
    }
}

impl std::fmt::Debug for HeaderCopy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderCopy")
            .field("magic", &self.h.magic())
            .field("format_version", &self.h.format_version())
            .field("state", &self.h.state())
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for HeaderCopy {
    type Target = Header;
    fn deref(&self) -> &Header {
        &self.h
    }
}

impl HeaderCopy {
    fn words(&self) -> &[AtomicU64] {
        // SAFETY: Header is repr(C) and 8-aligned, and holds no padding: its fields' sizes add up to HEADER_SIZE,
        // which is size_of::<Header>() (asserted above); viewing it as HEADER_SIZE / 8 AtomicU64 covers exactly its
        // bytes, this private copy is never accessed concurrently through its typed fields, and every access through
        // the view is atomic.
        unsafe {
            std::slice::from_raw_parts(
                &*self.h as *const Header as *const AtomicU64,
                HEADER_SIZE / 8,
            )
        }
    }

    /// A header copy from raw bytes (missing bytes read as zero, extra bytes are ignored): for tests and fuzzing.
    pub fn from_bytes(bytes: &[u8]) -> HeaderCopy {
        let copy = HeaderCopy {
            h: Header::zeroed(),
        };
        for (w, chunk) in copy.words().iter().zip(bytes.chunks(8)) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            w.store(u64::from_le_bytes(b), Ordering::Relaxed);
        }
        copy
    }

    fn to_bytes(&self) -> Vec<u8> {
        self.words()
            .iter()
            .flat_map(|w| w.load(Ordering::Relaxed).to_le_bytes())
            .collect()
    }

    /// Copy the header out of a mapping of at least [`HEADER_SIZE`] bytes, one atomic load per word.
    ///
    /// # Panics
    /// If the mapping is shorter than the header (a caller bug: callers map the header first).
    pub fn read(map: &Mapping) -> HeaderCopy {
        let live = Header::in_mapping(map);
        let copy = HeaderCopy {
            h: Header::zeroed(),
        };
        // SAFETY: as in `words`, for the live header: HEADER_SIZE bytes of atomics inside the mapping.
        let src = unsafe {
            std::slice::from_raw_parts(live as *const Header as *const AtomicU64, HEADER_SIZE / 8)
        };
        for (d, s) in copy.words().iter().zip(src) {
            d.store(s.load(Ordering::Acquire), Ordering::Relaxed);
        }
        copy
    }

    /// The magic bytes.
    pub fn magic(&self) -> [u8; 8] {
        self.h.magic()
    }

    /// The `format_version` word.
    pub fn version(&self) -> u32 {
        self.h.format_version()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of the FORMAT.md table that follows `heading`: (offset, type, field).
    fn format_table(heading: &str) -> Vec<(usize, String, String)> {
        let text = include_str!("../../../docs/FORMAT.md");
        let start = text
            .find(heading)
            .unwrap_or_else(|| panic!("FORMAT.md has no '{heading}'"));
        text[start..]
            .lines()
            .skip_while(|l| !l.starts_with("| offset"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| {
                let cols: Vec<&str> = l.split('|').map(str::trim).collect();
                (
                    cols[1].parse().unwrap(),
                    cols[2].to_owned(),
                    cols[3].to_owned(),
                )
            })
            .collect()
    }

    fn width(ty: &str) -> usize {
        match ty.split_whitespace().next().unwrap() {
            "u32" => 4,
            "u64" | "u8[8]" => 8,
            other => panic!("unknown type {other}"),
        }
    }

    #[test]
    fn every_field_of_the_header_and_slot_descriptor_sits_where_format_md_says() {
        let header = format_table("## 3.");
        assert!(header.len() > 40, "FORMAT.md's header table was not found");
        for (offset, ty, field) in header {
            if field == "reserved" {
                continue;
            }
            let f = header_field(&field).unwrap_or_else(|| {
                panic!("FORMAT.md's header field '{field}' has no twin in Header")
            });
            assert_eq!(
                (f.offset, f.width),
                (offset, width(&ty)),
                "header field {field}"
            );
        }
        let desc = format_table("## 5.");
        assert!(
            desc.len() >= 8,
            "FORMAT.md's slot descriptor table was not found"
        );
        for (offset, ty, field) in desc {
            if field == "reserved" {
                continue;
            }
            let f = slot_desc_field(&field).unwrap_or_else(|| {
                panic!("FORMAT.md's descriptor field '{field}' has no twin in SlotDesc")
            });
            assert_eq!(
                (f.offset, f.width),
                (offset, width(&ty)),
                "descriptor field {field}"
            );
        }
    }

    #[test]
    fn a_copy_reads_back_the_bytes_it_was_made_from() {
        let mut bytes = vec![0u8; HEADER_SIZE];
        bytes[128..132].copy_from_slice(&7u32.to_le_bytes());
        bytes[256..264].copy_from_slice(&42u64.to_le_bytes());
        let c = HeaderCopy::from_bytes(&bytes);
        assert_eq!((c.state(), c.stream_head()), (7, 42));
        assert_eq!(c.clone().to_bytes(), bytes);
    }
}
