//! R9, R10 (and the stream paths): a bounded, in-process, libFuzzer-style mutation fuzzer over every target of
//! `qadataswap_stream::fuzzing`, run by every `cargo test` in the normal test profile (no instrumented build, no
//! nightly, nothing outside the registry). `cargo xtask fuzz` runs the same targets under libFuzzer for longer.
//!
//! Each target starts from its kept crashes (`tests/fuzz-corpus/<target>/`) and from seeds the library writes
//! (every Arrow type, dictionaries and their replacement, several batches, LZ4/ZSTD bodies, wrapped rings, stream
//! segments with a live and a finished writer). Every seed is first run as is and must read back. Then, until the
//! time budget is spent, an input of the pool gets a stack of 1 to 4 mutations: bit flips; bytes set to 0, 0xff,
//! 0x7f, 0x80...; 2-, 4- and 8-byte little-endian interesting integers and small increments; splices and
//! crossovers between inputs; truncations, insertions, erasures and copies; and structure-aware mutations that set
//! a field the seed is known to have: a header word, a reader-table word, a slot-descriptor field, a message's
//! prefix, any scalar of any flatbuffer table (and the vtables themselves), a record batch's field nodes, buffer
//! offsets and lengths (moving a buffer onto another's bytes), variadic counts, and bytes of the metadata and body
//! regions. Segment inputs then get their schema checksum recomputed half of the time, so a mutated schema area
//! reaches the schema decoder. Inputs that still read back join the pool (a cheap stand-in for coverage).
//!
//! - by default (as in `cargo xtask test`) a run is deterministic: a fixed seed and at most
//!   [`DEFAULT_EXECS`] mutated inputs per target (fewer if the time budget runs out first), so CI never fails on a
//!   newly drawn input; `QADATASWAP_FUZZ_RANDOM=1` (and `QADATASWAP_SOAK`) draws a fresh seed and runs for the
//!   whole budget, to explore;
//! - `QADATASWAP_FUZZ_SEED=N` replays a run (the seed is printed at the start of each target);
//! - `QADATASWAP_FUZZ_SECONDS=S` sets the budget per target (default 30 s; 300 s under `QADATASWAP_SOAK`);
//! - an input that makes a target panic is written to `tests/fuzz-corpus/new-crashes/<target>-<hash>` (and printed
//!   as hex when short) and fails the test; `tests/fuzz_replay.rs` replays that directory too, so once the bug is
//!   fixed, move the file to `tests/fuzz-corpus/<target>/` to keep it fixed;
//! - an input during which an allocation fails (the process aborts: there is no panic to catch) is written to
//!   `tests/fuzz-corpus/new-crashes/<target>-abort` first, by the test binary's allocator;
//! - a watchdog aborts the process, after saving the input the same way, if one input runs for more than 60 s.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_ipc::{root_as_message, MessageHeader};
use flatbuffers::Table;
use qadataswap_arrow::format;
use qadataswap_arrow::fuzzing as arrow_fuzzing;
use qadataswap_arrow::golden::Lcg;
use qadataswap_arrow::layout::{fnv1a64, READER_ENTRY_SIZE, SLOT_DESC_SIZE};
use qadataswap_stream::fuzzing;

/// Default budget per target; with the test harness's two threads, the four targets take about two minutes of
/// CPU and one of wall time on the 2-core development machine.
const DEFAULT_SECONDS: u64 = 30;
/// Budget per target under `QADATASWAP_SOAK`.
const SOAK_SECONDS: u64 = 300;
/// One input running longer than this is a hang.
const HANG_LIMIT: Duration = Duration::from_secs(60);
/// Stop a target after this many crashing inputs (they are usually one bug).
const MAX_CRASHES: usize = 5;
/// Most inputs kept in the pool.
const MAX_POOL: usize = 512;
/// Longest input a mutation makes.
const MAX_LEN: usize = 1 << 20;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus")
}

fn budget() -> Duration {
    let secs = std::env::var("QADATASWAP_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0);
    match secs {
        Some(s) => Duration::from_secs_f64(s),
        None if std::env::var_os("QADATASWAP_SOAK").is_some() => Duration::from_secs(SOAK_SECONDS),
        None => Duration::from_secs(DEFAULT_SECONDS),
    }
}

/// Mutated inputs per target in a deterministic run.
const DEFAULT_EXECS: u64 = 4_000;
/// The seed of a deterministic run.
const DEFAULT_SEED: u64 = 20_261_202;

/// Whether this run explores (fresh seed, whole budget) rather than repeats the deterministic run.
fn exploring() -> bool {
    std::env::var_os("QADATASWAP_FUZZ_RANDOM").is_some()
        || std::env::var_os("QADATASWAP_SOAK").is_some()
}

/// Most mutated inputs per target: unlimited when exploring, else [`DEFAULT_EXECS`].
fn max_execs() -> u64 {
    if exploring() {
        u64::MAX
    } else {
        DEFAULT_EXECS
    }
}

/// The run's seed: `QADATASWAP_FUZZ_SEED`, else [`DEFAULT_SEED`], or a fresh one when exploring (the printed seed
/// replays it).
fn run_seed() -> u64 {
    if let Some(s) = std::env::var("QADATASWAP_FUZZ_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        return s;
    }
    if !exploring() {
        return DEFAULT_SEED;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (now ^ u64::from(std::process::id()).rotate_left(32)) % 1_000_000_000
}

// ---------------------------------------------------------------------------------------------------------------
// Structure: where the fields of a seed are.

/// A place in an input a structure-aware mutation may set: a `width`-byte little-endian field, or (width 0) a
/// region of `len` bytes.
#[derive(Clone, Copy, Debug)]
struct Field {
    at: usize,
    width: usize,
    len: usize,
}

impl Field {
    fn word(at: usize, width: usize) -> Field {
        Field {
            at,
            width,
            len: width,
        }
    }
    fn region(at: usize, len: usize) -> Field {
        Field { at, width: 0, len }
    }
}

fn le(bytes: &[u8], at: usize, width: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(src) = bytes.get(at..at + width) {
        b[..width].copy_from_slice(src);
    }
    u64::from_le_bytes(b)
}

fn put_le(bytes: &mut [u8], at: usize, width: usize, v: u64) {
    if let Some(dst) = bytes.get_mut(at..at + width) {
        dst.copy_from_slice(&v.to_le_bytes()[..width]);
    }
}

/// Every scalar slot of a flatbuffer table (widths from the gaps between slot offsets), the table's vtable offset
/// and its vtable's entries. `base` is the offset of the flatbuffer in the input.
fn table_fields(t: &Table<'_>, meta: &[u8], base: usize, out: &mut Vec<Field>) {
    let vt = t.vtable();
    let inline = vt.object_inline_num_bytes();
    let mut slots: Vec<usize> = (0..vt.num_fields())
        .map(|i| vt.get_field(i) as usize)
        .filter(|&o| o != 0)
        .collect();
    slots.sort_unstable();
    for (i, &o) in slots.iter().enumerate() {
        let end = slots.get(i + 1).copied().unwrap_or(inline.max(o + 1));
        let width = match end.saturating_sub(o) {
            0 => continue,
            1 => 1,
            2 | 3 => 2,
            4..=7 => 4,
            _ => 8,
        };
        out.push(Field::word(base + t.loc() + o, width));
    }
    out.push(Field::word(base + t.loc(), 4));
    let vt_at = vt.as_bytes().as_ptr() as usize - meta.as_ptr() as usize;
    for i in 0..vt.num_bytes() / 2 {
        out.push(Field::word(base + vt_at + 2 * i, 2));
    }
}

/// The elements of a flatbuffer vector of `elem`-byte structs or scalars, as `word`-byte fields, and its length.
fn vector_fields(bytes: &[u8], meta: &[u8], base: usize, word: usize, out: &mut Vec<Field>) {
    let at = bytes.as_ptr() as usize - meta.as_ptr() as usize;
    out.push(Field::word(base + at - 4, 4));
    for i in 0..bytes.len() / word {
        out.push(Field::word(base + at + i * word, word));
    }
}

fn batch_fields(b: &arrow_ipc::RecordBatch<'_>, meta: &[u8], base: usize, out: &mut Vec<Field>) {
    table_fields(&b._tab, meta, base, out);
    if let Some(n) = b.nodes() {
        vector_fields(n.bytes(), meta, base, 8, out);
    }
    if let Some(v) = b.buffers() {
        vector_fields(v.bytes(), meta, base, 8, out);
    }
    if let Some(v) = b.variadicBufferCounts() {
        vector_fields(v.bytes(), meta, base, 8, out);
    }
    if let Some(c) = b.compression() {
        table_fields(&c._tab, meta, base, out);
    }
}

fn schema_field_fields(
    f: &arrow_ipc::Field<'_>,
    meta: &[u8],
    base: usize,
    depth: usize,
    out: &mut Vec<Field>,
) {
    if depth > 64 {
        return;
    }
    table_fields(&f._tab, meta, base, out);
    if let Some(t) = f.type_() {
        table_fields(&t, meta, base, out);
    }
    if let Some(d) = f.dictionary() {
        table_fields(&d._tab, meta, base, out);
        if let Some(i) = d.indexType() {
            table_fields(&i._tab, meta, base, out);
        }
    }
    if let Some(u) = f.type_as_union() {
        if let Some(ids) = u.typeIds() {
            vector_fields(ids.bytes(), meta, base, 4, out);
        }
    }
    for c in f.children().iter().flatten() {
        schema_field_fields(&c, meta, base, depth + 1, out);
    }
}

/// The fields of the Arrow IPC messages in `bytes[start..start + len]` (a frame or the schema area).
fn ipc_fields(bytes: &[u8], start: usize, len: usize, out: &mut Vec<Field>) {
    let end = (start + len).min(bytes.len());
    let mut pos = start;
    while pos + 8 <= end {
        if le(bytes, pos, 4) != 0xFFFF_FFFF {
            return;
        }
        out.push(Field::word(pos, 4));
        out.push(Field::word(pos + 4, 4));
        let meta_len = le(bytes, pos + 4, 4) as usize;
        let base = pos + 8;
        if meta_len == 0 || base + meta_len > end {
            return;
        }
        let meta = &bytes[base..base + meta_len];
        out.push(Field::region(base, meta_len));
        let Ok(msg) = root_as_message(meta) else {
            return;
        };
        table_fields(&msg._tab, meta, base, out);
        match msg.header_type() {
            MessageHeader::Schema => {
                if let Some(s) = msg.header_as_schema() {
                    table_fields(&s._tab, meta, base, out);
                    for f in s.fields().iter().flatten() {
                        schema_field_fields(&f, meta, base, 0, out);
                    }
                }
            }
            MessageHeader::RecordBatch => {
                if let Some(b) = msg.header_as_record_batch() {
                    batch_fields(&b, meta, base, out);
                }
            }
            MessageHeader::DictionaryBatch => {
                if let Some(d) = msg.header_as_dictionary_batch() {
                    table_fields(&d._tab, meta, base, out);
                    if let Some(b) = d.data() {
                        batch_fields(&b, meta, base, out);
                    }
                }
            }
            _ => {}
        }
        let body = usize::try_from(msg.bodyLength()).unwrap_or(0);
        let body_start = base + meta_len;
        if body > 0 && body_start + body <= end {
            out.push(Field::region(body_start, body));
        }
        pos = body_start + body;
    }
}

/// Header field offsets in order (FORMAT.md §3, from the library's table); a field's width is the gap to the next
/// one (at most 8), so the reserved words between fields are mutated too.
fn header_offsets() -> Vec<usize> {
    format::HEADER_FIELDS.iter().map(|f| f.offset).collect()
}

/// Descriptor fields (offset, width), the reserved word at 52 included.
fn desc_fields() -> Vec<(usize, usize)> {
    let mut v: Vec<(usize, usize)> = format::SLOT_DESC_FIELDS
        .iter()
        .map(|f| (f.offset, f.width))
        .collect();
    v.push((52, 4));
    v
}

/// The offset of header field `name`.
fn h(name: &str) -> usize {
    format::header_field(name)
        .expect("a FORMAT.md header field")
        .offset
}

/// Where a seed segment's parts are (read from its own, valid header).
#[derive(Clone, Copy, Debug, Default)]
struct Regions {
    schema_offset: usize,
    schema_capacity: usize,
}

/// The fields of a whole segment file: header, reader table, descriptors, schema area and every slot's frame.
fn segment_fields(bytes: &[u8]) -> (Vec<Field>, Option<Regions>) {
    let mut out = Vec::new();
    let offsets = header_offsets();
    for (i, &at) in offsets.iter().enumerate() {
        let next = offsets.get(i + 1).copied().unwrap_or(at + 8);
        out.push(Field::word(at, (next - at).min(8)));
    }
    let g = |o: usize, w: usize| le(bytes, o, w) as usize;
    let slots = g(h("slot_count"), 4);
    let slot_capacity = g(h("slot_capacity"), 8);
    let readers = g(h("reader_capacity"), 4);
    let (rt, st) = (g(h("reader_table_offset"), 8), g(h("slot_table_offset"), 8));
    let (schema_offset, data) = (g(h("schema_offset"), 8), g(h("data_offset"), 8));
    let schema_capacity = g(h("schema_capacity"), 4);
    if slots > 64 || readers > 4096 || data > bytes.len() {
        return (out, None);
    }
    for r in 0..readers {
        for w in 0..READER_ENTRY_SIZE / 8 {
            out.push(Field::word(rt + r * READER_ENTRY_SIZE + 8 * w, 8));
        }
    }
    for s in 0..slots {
        for (o, w) in desc_fields() {
            out.push(Field::word(st + s * SLOT_DESC_SIZE + o, w));
        }
    }
    out.push(Field::region(schema_offset, schema_capacity));
    ipc_fields(bytes, schema_offset, g(h("schema_len"), 8), &mut out);
    for s in 0..slots {
        let len = g(
            st + s * SLOT_DESC_SIZE + format::slot_desc_field("len").expect("len").offset,
            8,
        );
        let start = data + s * slot_capacity;
        if len > 0 && len <= slot_capacity {
            out.push(Field::region(start, len));
            ipc_fields(bytes, start, len, &mut out);
        }
    }
    out.retain(|f| f.at + f.len.max(1) <= bytes.len());
    (
        out,
        Some(Regions {
            schema_offset,
            schema_capacity,
        }),
    )
}

fn structure(target: &str, bytes: &[u8]) -> (Vec<Field>, Option<Regions>) {
    if target == "frame" {
        let mut out = Vec::new();
        ipc_fields(bytes, 0, bytes.len(), &mut out);
        (out, None)
    } else {
        segment_fields(bytes)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Mutations.

const INTERESTING_8: &[u8] = &[0, 1, 0x7f, 0x80, 0xff, 0x40, 0x10, 0xfe];
const INTERESTING_16: &[u16] = &[0, 1, 4, 8, 0x7fff, 0x8000, 0xffff, 0xfffe];
const INTERESTING_32: &[u32] = &[
    0,
    1,
    2,
    7,
    8,
    63,
    64,
    4096,
    0x1_0000,
    0x10_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fff8,
    0xffff_fffe,
    0xffff_ffff,
];
const INTERESTING_64: &[u64] = &[
    0,
    1,
    2,
    8,
    64,
    0x7fff_ffff,
    0xffff_ffff,
    1 << 32,
    1 << 48,
    (1 << 48) + 1,
    1 << 62,
    i64::MAX as u64,
    i64::MIN as u64,
    u64::MAX - 1,
    u64::MAX,
];

struct Input {
    bytes: Vec<u8>,
    /// Fields of the seed it came from, while its offsets still hold (no length-changing mutation since).
    fields: Option<Arc<Vec<Field>>>,
    regions: Option<Regions>,
}

struct Mutator {
    rng: Lcg,
}

impl Mutator {
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.rng.next_u64() % n as u64) as usize
        }
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }

    /// A value for a `width`-byte field holding `current`: an interesting one, a small step from it, the value of
    /// another field of the input, or random bits.
    fn value(&mut self, width: usize, current: u64, other: u64) -> u64 {
        let delta = self.pick(&[1u64, 2, 3, 4, 7, 8, 16, 63, 64, 4096]);
        match self.below(6) {
            0 | 1 => match width {
                1 => u64::from(self.pick(INTERESTING_8)),
                2 => u64::from(self.pick(INTERESTING_16)),
                4 => u64::from(self.pick(INTERESTING_32)),
                _ => self.pick(INTERESTING_64),
            },
            2 => current.wrapping_add(delta),
            3 => current.wrapping_sub(delta),
            4 => other,
            _ => self.rng.next_u64(),
        }
    }

    /// A byte-level mutation at `at`.
    fn byte(&mut self, data: &mut [u8], at: usize) {
        let Some(b) = data.get_mut(at) else {
            return;
        };
        match self.rng.next_u64() % 3 {
            0 => *b ^= 1 << (self.rng.next_u64() % 8),
            1 => *b = self.pick(INTERESTING_8),
            _ => *b = self.rng.next_u64() as u8,
        }
    }

    /// A word-level mutation of `width` bytes at `at`.
    fn word(&mut self, data: &mut [u8], at: usize, width: usize) {
        if at + width > data.len() {
            return;
        }
        let current = le(data, at, width);
        let other_at = self.below(data.len().saturating_sub(width) + 1);
        let other = le(data, other_at, width);
        let v = self.value(width, current, other);
        put_le(data, at, width, v);
    }

    /// A structure-aware mutation: set one known field, or mutate inside one known region.
    fn structured(&mut self, data: &mut [u8], fields: &[Field]) {
        if fields.is_empty() {
            return;
        }
        let f = fields[self.below(fields.len())];
        if f.width == 0 {
            let at = f.at + self.below(f.len);
            match self.below(3) {
                0 => self.byte(data, at),
                _ => {
                    let width = self.pick(&[2usize, 4, 8]);
                    self.word(data, at & !(width - 1), width);
                }
            }
            return;
        }
        let current = le(data, f.at, f.width);
        // The value of another field of the same width (e.g. a buffer offset moved onto another buffer's bytes).
        let same: Vec<&Field> = fields.iter().filter(|g| g.width == f.width).collect();
        let other = le(data, same[self.below(same.len())].at, f.width);
        let v = self.value(f.width, current, other);
        put_le(data, f.at, f.width, v);
    }

    /// Mutate `input` (1 to 4 stacked mutations) with `pool` to splice from. Returns the bytes and whether the
    /// input's field offsets still hold.
    fn mutate(&mut self, input: &Input, pool: &[Input]) -> (Vec<u8>, bool) {
        let mut data = input.bytes.clone();
        let mut same_shape = true;
        let fields = input.fields.clone();
        for _ in 0..1 + self.below(4) {
            let len = data.len();
            match self.below(16) {
                0..=5 if fields.is_some() && same_shape => {
                    self.structured(&mut data, fields.as_deref().map_or(&[], |f| f))
                }
                0 | 1 => {
                    let at = self.below(len);
                    self.byte(&mut data, at)
                }
                2..=4 => {
                    let width = self.pick(&[2usize, 4, 8]);
                    let at = self.below(len.saturating_sub(width) + 1);
                    let at = if self.below(2) == 0 {
                        at & !(width - 1)
                    } else {
                        at
                    };
                    self.word(&mut data, at, width)
                }
                6 | 7 => {
                    let at = self.below(len);
                    self.byte(&mut data, at)
                }
                8 => {
                    // Overwrite a range with the same range of another input (same-shape splice).
                    let other = &pool[self.below(pool.len())].bytes;
                    let at = self.below(len.min(other.len()));
                    let n = 1 + self.below(256.min(len.min(other.len()) - at.min(len)).max(1));
                    let end = (at + n).min(len).min(other.len());
                    data[at..end].copy_from_slice(&other[at..end]);
                }
                9 => {
                    // Crossover: a prefix of this input and the rest of another.
                    let other = &pool[self.below(pool.len())].bytes;
                    let cut = self.below(len.min(other.len()) + 1);
                    data.truncate(cut);
                    data.extend_from_slice(&other[cut.min(other.len())..]);
                    same_shape = false;
                }
                10 => {
                    data.truncate(self.below(len + 1));
                    same_shape = false;
                }
                11 => {
                    let at = self.below(len + 1);
                    let n = 1 + self.below(64);
                    let fill = self.rng.next_u64() as u8;
                    let random = self.below(2) == 0;
                    let bytes: Vec<u8> = (0..n)
                        .map(|_| {
                            if random {
                                self.rng.next_u64() as u8
                            } else {
                                fill
                            }
                        })
                        .collect();
                    data.splice(at..at, bytes);
                    same_shape = false;
                }
                12 => {
                    let at = self.below(len);
                    let n = 1 + self.below(64);
                    data.drain(at..(at + n).min(len));
                    same_shape = false;
                }
                13 => {
                    // Copy a range of the input over another place of it.
                    let (from, to) = (self.below(len), self.below(len));
                    let n = (1 + self.below(128)).min(len - from).min(len - to);
                    data.copy_within(from..from + n, to);
                }
                _ => {
                    let at = self.below(len);
                    let width = self.pick(&[4usize, 8]);
                    self.word(&mut data, at, width)
                }
            }
            if data.is_empty() {
                data.push(0);
            }
        }
        data.truncate(MAX_LEN);
        // Half the time, a segment's schema checksum is made to match its (maybe mutated) schema area, so the
        // mutation reaches the schema decoder instead of stopping at the checksum.
        if let (Some(r), true, true) = (input.regions, same_shape, self.below(2) == 0) {
            let len = le(&data, h("schema_len"), 8) as usize;
            if len <= r.schema_capacity {
                if let Some(area) = data.get(r.schema_offset..r.schema_offset + len) {
                    let sum = fnv1a64(area);
                    put_le(&mut data, h("schema_checksum"), 8, sum);
                }
            }
        }
        (data, same_shape)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The loop, its watchdog and crash records.

/// Write a crashing (or hanging) input where `fuzz_replay` and a person find it; returns the path.
fn keep_crash(target: &str, what: &str, data: &[u8]) -> PathBuf {
    let dir = corpus_dir().join("new-crashes");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{target}-{what}-{:016x}", fnv1a64(data)));
    if let Err(e) = std::fs::write(&path, data) {
        eprintln!("fuzz {target}: could not write {}: {e}", path.display());
    }
    if data.len() <= 4096 {
        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
        eprintln!(
            "fuzz {target}: {what} input ({} bytes, hex): {hex}",
            data.len()
        );
    }
    eprintln!(
        "fuzz {target}: {what} input kept as {} ({} bytes)",
        path.display(),
        data.len()
    );
    path
}

/// When an allocation fails (arrow-ipc sizing a buffer from a hostile length; the process aborts next, no panic to
/// catch), the input being run is written to `new-crashes/<target>-abort` first (see
/// `qadataswap_arrow::fuzzing::KeepInputOnAbort`).
#[global_allocator]
static ALLOCATOR: arrow_fuzzing::KeepInputOnAbort = arrow_fuzzing::KeepInputOnAbort;

/// Aborts the process (after keeping the input) when no input finished for [`HANG_LIMIT`].
struct Watchdog {
    beat: mpsc::Sender<()>,
    current: Arc<Mutex<Vec<u8>>>,
    /// Where the allocator keeps the input if an allocation fails.
    abort_path: std::ffi::CString,
    abort_dir: std::ffi::CString,
}

impl Watchdog {
    fn start(target: &'static str) -> Watchdog {
        let (beat, beats) = mpsc::channel::<()>();
        let current = Arc::new(Mutex::new(Vec::new()));
        let input = Arc::clone(&current);
        std::thread::spawn(move || loop {
            match beats.recv_timeout(HANG_LIMIT) {
                Ok(()) => {}
                Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    let data = input.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    keep_crash(target, "hang", &data);
                    eprintln!("fuzz {target}: one input ran for more than {HANG_LIMIT:?}: a hang; aborting");
                    std::process::abort();
                }
            }
        });
        let dir = corpus_dir().join("new-crashes");
        let c = |p: PathBuf| {
            std::ffi::CString::new(p.into_os_string().into_encoded_bytes())
                .expect("no NUL in the corpus path")
        };
        Watchdog {
            beat,
            current,
            abort_path: c(dir.join(format!("{target}-abort"))),
            abort_dir: c(dir),
        }
    }

    fn running(&self, data: &[u8]) {
        let mut c = self.current.lock().unwrap_or_else(|p| p.into_inner());
        c.clear();
        c.extend_from_slice(data);
        let _ = self.beat.send(());
    }
}

/// What running one input did.
enum Outcome {
    Read(usize),
    Panicked(String),
}

fn run_one(target: &str, dog: &Watchdog, data: &[u8]) -> Outcome {
    dog.running(data);
    let r = arrow_fuzzing::run_keeping_input(data, &dog.abort_path, &dog.abort_dir, || {
        catch_unwind(AssertUnwindSafe(|| fuzzing::run(target, data)))
    });
    let _ = dog.beat.send(());
    match r {
        Ok(n) => Outcome::Read(n),
        Err(p) => Outcome::Panicked(
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a non-string panic".into()),
        ),
    }
}

fn input_of(target: &str, bytes: Vec<u8>) -> Input {
    let (fields, regions) = structure(target, &bytes);
    Input {
        bytes,
        fields: Some(Arc::new(fields)),
        regions,
    }
}

/// The pool a target starts from: its kept crashes, then the library's seeds. Returns (pool, seeds' count).
fn initial_pool(target: &str) -> (Vec<Input>, usize, usize) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir().join(target))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    let mut pool: Vec<Input> = files
        .iter()
        .filter_map(|f| std::fs::read(f).ok())
        .map(|b| input_of(target, b))
        .collect();
    let kept = pool.len();
    let seeds = fuzzing::seeds(target);
    let n = seeds.len();
    pool.extend(seeds.into_iter().map(|b| input_of(target, b)));
    (pool, kept, n)
}

fn fuzz(target: &'static str) {
    let budget = budget();
    let seed = run_seed();
    let mut m = Mutator {
        rng: Lcg::new(seed ^ fnv1a64(target.as_bytes())),
    };
    eprintln!(
        "fuzz {target}: seed {seed} (replay with QADATASWAP_FUZZ_SEED={seed}), budget {budget:?} \
         (QADATASWAP_FUZZ_SECONDS)"
    );
    let dog = Watchdog::start(target);
    let start = Instant::now();
    let (mut pool, kept, n_seeds) = initial_pool(target);
    let fields: usize = pool
        .iter()
        .map(|i| i.fields.as_ref().map_or(0, |f| f.len()))
        .sum();
    let mut crashes: Vec<(PathBuf, String)> = Vec::new();

    // Every kept crash and seed as is: crashes must not panic, seeds must read back.
    for (i, input) in pool.iter().enumerate() {
        match run_one(target, &dog, &input.bytes) {
            Outcome::Read(n) => assert!(
                i < kept || n > 0,
                "fuzz {target}: seed {} does not read back, so the mutations would not reach the decoder",
                i - kept
            ),
            Outcome::Panicked(msg) => {
                crashes.push((keep_crash(target, "crash", &input.bytes), msg));
            }
        }
    }

    let (mut execs, mut read_back, mut panicked) = (0u64, 0u64, 0u64);
    let loop_start = Instant::now();
    let max_execs = max_execs();
    while loop_start.elapsed() < budget && crashes.len() < MAX_CRASHES && execs < max_execs {
        let base = m.below(pool.len());
        let (data, same_shape) = m.mutate(&pool[base], &pool);
        execs += 1;
        match run_one(target, &dog, &data) {
            Outcome::Read(0) => {}
            Outcome::Read(_) => {
                read_back += 1;
                if data != pool[base].bytes {
                    let next = Input {
                        bytes: data,
                        fields: if same_shape {
                            pool[base].fields.clone()
                        } else {
                            None
                        },
                        regions: pool[base].regions,
                    };
                    if pool.len() < MAX_POOL {
                        pool.push(next);
                    } else {
                        // Replace an input found earlier, never a seed or a kept crash.
                        let first = kept + n_seeds;
                        let at = first + m.below(pool.len() - first);
                        pool[at] = next;
                    }
                }
            }
            Outcome::Panicked(msg) => {
                panicked += 1;
                crashes.push((keep_crash(target, "crash", &data), msg));
            }
        }
    }
    drop(dog);
    let secs = loop_start.elapsed().as_secs_f64();
    eprintln!(
        "fuzz {target}: {kept} kept crashes and {n_seeds} seeds ({fields} known fields), then {execs} mutated inputs \
         in {secs:.1} s ({:.0}/s): {read_back} read back, {panicked} panicked; pool {}; total {:.1} s",
        execs as f64 / secs.max(1e-9),
        pool.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(execs > 0 || budget.is_zero(), "fuzz {target}: no input ran");
    if !crashes.is_empty() {
        let list: Vec<String> = crashes
            .iter()
            .map(|(p, msg)| format!("  {} : {msg}", p.display()))
            .collect();
        panic!(
            "fuzz {target} (seed {seed}): {} input(s) made the target panic:\n{}\nreplay: cargo test -p \
             qadataswap-stream --test fuzz_replay; once fixed, move them to tests/fuzz-corpus/{target}/",
            crashes.len(),
            list.join("\n")
        );
    }
}

#[test]
fn mutated_segment_files_give_errors_or_frames_never_a_panic_or_a_hang() {
    fuzz("segment");
}

#[test]
fn mutated_frames_in_a_live_slot_give_errors_or_frames_never_a_panic_or_a_hang() {
    fuzz("frame");
}

#[test]
fn mutated_stream_segments_read_chunk_by_chunk_give_errors_or_chunks_never_a_panic_or_a_hang() {
    fuzz("stream");
}

#[test]
fn mutated_stream_segments_followed_give_errors_skips_or_chunks_never_a_panic_or_a_hang() {
    fuzz("follower");
}
