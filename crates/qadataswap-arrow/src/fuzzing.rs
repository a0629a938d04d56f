//! The snapshot fuzz targets and the building blocks of every target (the stream crate's `fuzzing` module adds the
//! stream ones and dispatches all four for the libFuzzer harness under `fuzz/`, the in-process mutation harness
//! `cargo test` runs on a time budget and the corpus replay test). Not a stable API.
//!
//! Each target feeds hostile bytes through the same code a reader runs and panics only when the library did
//! something it promises never to do: let a panic escape, or need the last-resort `catch_unwind` in
//! `decode_frame` (which means a check is missing). Every loop a target drives is bounded, so a target that does
//! not return is a hang in the library.

use std::ffi::CStr;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_buffer::{Buffer, MutableBuffer};

use crate::control::DescRecord;
use crate::decode;
use crate::golden::{all_types_batch, numeric_batch, GoldenOptions};
use crate::layout::Mode;
use crate::options::{Compression, ReaderOptions, Validation, WriterOptions};
use crate::reader::SnapshotReader;
use crate::status::classify;
use crate::writer::SnapshotWriter;

/// Numbers the segments the targets create, so that threads of one process never share a name.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Largest input the segment targets write to a file.
const MAX_SEGMENT_INPUT: usize = 4 << 20;

/// An input written to a fresh file under `/dev/shm`, removed on drop (also when a target panics).
#[derive(Debug)]
pub struct InputFile {
    /// The segment name.
    pub name: String,
    path: String,
}

impl InputFile {
    /// Write `data` (at most 4 MiB of it) to a fresh file; `None` if it cannot be created.
    pub fn write(tag: &str, data: &[u8]) -> Option<InputFile> {
        let data = &data[..data.len().min(MAX_SEGMENT_INPUT)];
        let name = format!(
            "qads-fuzz-{}-{tag}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = format!("{}/{name}", qadataswap_shm::SHM_DIR);
        let _ = std::fs::remove_file(&path);
        let file = InputFile { name, path };
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file.path)
            .and_then(|mut f| f.write_all(data))
            .ok()?;
        Some(file)
    }
}

impl Drop for InputFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Panics when `decode_frame`'s last-resort `catch_unwind` fired since `before`.
pub fn assert_no_caught_panic(before: u64) {
    assert_eq!(
        decode::caught_panics(),
        before,
        "decode_frame's last-resort catch_unwind fired: a metadata check is missing"
    );
}

/// Reader options of the targets: never wait (a hostile segment may claim a live writer that never writes).
pub fn no_wait(validation: Validation) -> ReaderOptions {
    ReaderOptions {
        timeout: Some(Duration::ZERO),
        open_timeout: Duration::ZERO,
        spin: 0,
        validation,
        ..ReaderOptions::default()
    }
}

/// Whether `data` says it is a stream-mode segment (the header's mode word).
pub fn is_stream_mode(data: &[u8]) -> bool {
    let mode = crate::control::header_field("mode").map_or(0, |f| f.offset);
    data.get(mode..mode + 4) == Some(&Mode::Stream.to_u32().to_le_bytes()[..])
}

/// The snapshot half of the segment target: segment file `name` (already written) is classified, inspected and
/// opened at both validation levels; the newest frame is read and copied out, and the schema area read. Returns how
/// many frames were read and copied out. The stream crate's `fuzzing::segment_bytes` runs this and, on a stream-mode
/// file, its stream reader and follower paths.
pub fn drive_snapshot(name: &str) -> usize {
    let mut read = 0;
    let _ = classify(name);
    let _ = crate::inspect::inspect(name);
    for validation in [Validation::Trusted, Validation::Full] {
        let Ok(reader) = SnapshotReader::builder(name)
            .options(no_wait(validation))
            .open()
        else {
            continue;
        };
        if let Ok(Some(frame)) = reader.try_read() {
            read += usize::from(frame.to_owned().is_ok());
        }
        let _ = reader.read_copied();
        let _ = reader.schema();
    }
    read
}

/// A writer and two readers (Trusted and Full) on one private segment, reused across inputs.
struct FrameFixture {
    writer: SnapshotWriter,
    trusted: SnapshotReader,
    full: SnapshotReader,
    seq: u64,
}

fn frame_fixture() -> &'static Mutex<FrameFixture> {
    static FIXTURE: OnceLock<Mutex<FrameFixture>> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let name = format!("qads-fuzz-{}-frame", std::process::id());
        let _ = qadataswap_shm::SegmentName::new(&name).map(|n| qadataswap_shm::unlink(&n));
        let writer = SnapshotWriter::builder(&name)
            .size(8 << 20)
            .slots(1)
            .reader_capacity(4)
            .create()
            .expect("fuzz fixture: create the frame segment");
        let open = |validation| {
            SnapshotReader::builder(&name)
                .timeout(Some(Duration::ZERO))
                .validation(validation)
                .open()
                .expect("fuzz fixture: open a reader")
        };
        let trusted = open(Validation::Trusted);
        let full = open(Validation::Full);
        // Not unlinked on exit by anyone else: remove the name now, the mappings stay.
        if let Ok(n) = qadataswap_shm::SegmentName::new(&name) {
            let _ = qadataswap_shm::unlink(&n);
        }
        Mutex::new(FrameFixture {
            writer,
            trusted,
            full,
            seq: 0,
        })
    })
}

/// Target 2: `data` replaces the frame bytes of a valid segment's slot (descriptor updated to match, as a hostile
/// writer would), then both readers `try_read()` it and copy it out.
///
/// Returns how many frames were read and copied out.
///
/// # Panics
/// When the library panicked or its last-resort `catch_unwind` fired.
pub fn frame_bytes(data: &[u8]) -> usize {
    let mut fx = frame_fixture().lock().unwrap_or_else(|p| p.into_inner());
    let shared = Arc::clone(fx.writer.shared());
    let cap = shared.geometry().slot_capacity;
    let data = &data[..data.len().min(cap)];
    let before = decode::caught_panics();

    // The row count a hostile writer would claim: what the bytes decode to, when they do.
    let mut aligned = MutableBuffer::new(data.len());
    aligned.extend_from_slice(data);
    let copy: Buffer = aligned.into();
    let rows = decode::decode_frame(
        &copy,
        0,
        &mut None,
        Validation::Full,
        &mut decode::BufferCounts::default(),
    )
    .map(|(_, b)| b.iter().map(RecordBatch::num_rows).sum::<usize>() as u64)
    .unwrap_or(0);

    fx.seq += 1;
    let seq = fx.seq;
    let slot = shared.slot_seq(0);
    slot.begin_write(qadataswap_sync::ring::writing(seq));
    // SAFETY: slot 0 is `cap` bytes of this process's read-write mapping, data.len() <= cap, and no lease is held
    // on it: every frame read from it below is dropped before the next input is written.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), shared.slot_ptr(0), data.len()) };
    // A fresh schema version per input, so every input's own schema message is decoded.
    shared.desc(0).record(&DescRecord {
        frame_seq: seq,
        schema_version: seq,
        len: data.len() as u64,
        rows,
        write_ns: 0,
        batches: 0,
        flags: 0,
    });
    slot.commit(qadataswap_sync::ring::committed(seq));
    shared.header().publish(seq, 0);

    let mut read = 0;
    for reader in [&fx.trusted, &fx.full] {
        if let Ok(Some(frame)) = reader.try_read() {
            read += usize::from(frame.to_owned().is_ok());
        }
    }
    assert_eq!(
        decode::caught_panics(),
        before,
        "decode_frame's last-resort catch_unwind fired: a metadata check is missing"
    );
    read
}

/// The frames the seeds hold: every Arrow type the golden batch has (dictionaries included), with and without
/// nulls, several batch sizes, several batches per frame (the second replacing the first's dictionaries).
pub fn seed_frames() -> Vec<Vec<RecordBatch>> {
    let golden =
        |rows: usize, nulls: bool, seed: u64| all_types_batch(GoldenOptions { rows, seed, nulls });
    let mut frames: Vec<Vec<RecordBatch>> = Vec::new();
    for (rows, nulls) in [(0, false), (1, true), (3, false), (7, true)] {
        frames.push(vec![golden(rows, nulls, rows as u64 + 1)]);
    }
    frames.push(vec![numeric_batch(5, 3), numeric_batch(2, 3)]);
    frames.push(vec![golden(2, true, 11), golden(3, false, 12)]);
    frames
}

/// A unique name for a seed segment.
pub fn seed_name(tag: &str) -> String {
    format!(
        "qads-fuzz-seed-{}-{tag}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The writer options of a seed segment of `size` data bytes: small, so that the seeds (whole files) stay small.
pub fn seed_options(size: usize, slots: usize, compression: Option<Compression>) -> WriterOptions {
    WriterOptions {
        size,
        num_buffers: slots,
        reader_capacity: 2,
        schema_capacity: 16 << 10,
        persistent: true,
        compression,
        ..WriterOptions::default()
    }
}

/// Data sizes tried for a seed segment, smallest first (the smallest whose slots hold every frame wins).
pub const SEED_SIZES: [usize; 5] = [8 << 10, 32 << 10, 128 << 10, 1 << 20, 8 << 20];

/// A snapshot segment of `slots` slots holding `frames` (written in order, so the ring wraps when there are more
/// frames than slots), read back as (file bytes, the newest frame's bytes). The writer is still alive when the
/// bytes are copied, as a reader finds it.
fn snapshot_seed(
    frames: &[Vec<RecordBatch>],
    slots: usize,
    compression: Option<Compression>,
) -> (Vec<u8>, Vec<u8>) {
    for size in SEED_SIZES {
        let name = seed_name("snapshot");
        let mut w = SnapshotWriter::builder(&name)
            .options(seed_options(size * slots, slots, compression))
            .create()
            .expect("seed segment");
        let mut last = None;
        let mut fits = true;
        for batches in frames {
            match w.write_frame(&batches[0].schema(), batches) {
                Ok(info) => last = Some(info),
                Err(crate::Error::SlotTooSmall { .. }) => {
                    fits = false;
                    break;
                }
                Err(e) => panic!("seed frame: {e}"),
            }
        }
        let path = format!("{}/{name}", qadataswap_shm::SHM_DIR);
        if fits {
            let info = last.expect("a seed has a frame");
            let bytes = std::fs::read(&path).expect("read the seed segment");
            let geo = *w.geometry();
            let len = w.shared().desc(info.slot).len() as usize;
            let start = geo.data_offset + info.slot * geo.slot_capacity;
            let frame = bytes[start..start + len].to_vec();
            let _ = w.close();
            let _ = std::fs::remove_file(&path);
            return (bytes, frame);
        }
        let _ = w.close();
        let _ = std::fs::remove_file(&path);
    }
    panic!("a seed frame fits in 8 MiB");
}

/// The snapshot seeds: segment files (`"segment"`) or the newest frame's bytes (`"frame"`): every Arrow type the
/// golden batch has, dictionaries (and their replacement in a later batch), several batch sizes, several batches per
/// frame, LZ4 and ZSTD bodies, a ring that wrapped. The stream crate adds its stream segments to the segment seeds.
///
/// # Panics
/// On another target, or when a seed segment cannot be created (a broken environment).
pub fn snapshot_seeds(target: &str) -> Vec<Vec<u8>> {
    let frames = seed_frames();
    let mut segments = Vec::new();
    let mut out_frames = Vec::new();
    for f in &frames {
        let (s, fr) = snapshot_seed(std::slice::from_ref(f), 1, None);
        segments.push(s);
        out_frames.push(fr);
    }
    for compression in [Compression::Lz4, Compression::Zstd] {
        let (s, fr) = snapshot_seed(&frames[2..3], 1, Some(compression));
        segments.push(s);
        out_frames.push(fr);
    }
    // Three slots, five frames: the ring wrapped, every slot holds a committed frame.
    let (s, _) = snapshot_seed(&frames[1..6], 3, None);
    segments.push(s);
    match target {
        "segment" => segments,
        "frame" => out_frames,
        other => panic!("no snapshot seeds for target {other:?}"),
    }
}

/// The input the current thread is running and where to keep it if the process must abort (raw parts, so that
/// the allocator can read them without allocating).
#[derive(Clone, Copy)]
struct Running {
    data: *const u8,
    len: usize,
    keep_at: *const libc::c_char,
    dir: *const libc::c_char,
}

thread_local! {
    static RUNNING: std::cell::Cell<Option<Running>> = const { std::cell::Cell::new(None) };
}

/// Run `f` with `data` registered as the input to keep at `keep_at` (creating the directory `dir`) if an
/// allocation fails while `f` runs: what a fuzz harness installing [`KeepInputOnAbort`] as its global allocator
/// wraps each input in. The registration ends with `f`, unwinding included.
pub fn run_keeping_input<R>(data: &[u8], keep_at: &CStr, dir: &CStr, f: impl FnOnce() -> R) -> R {
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            RUNNING.with(|c| c.set(None));
        }
    }
    RUNNING.with(|c| {
        c.set(Some(Running {
            data: data.as_ptr(),
            len: data.len(),
            keep_at: keep_at.as_ptr(),
            dir: dir.as_ptr(),
        }))
    });
    let _clear = Clear;
    f()
}

/// The system allocator, plus: when an allocation fails (arrow-ipc sizing a buffer from a hostile length; the
/// process aborts next, no panic to catch), the input [`run_keeping_input`] registered is written to its file with
/// plain system calls first. A test binary installs it with `#[global_allocator]`.
#[derive(Debug)]
pub struct KeepInputOnAbort;

// SAFETY: every method forwards to `System` unchanged; the extra work on a failed allocation allocates nothing.
unsafe impl std::alloc::GlobalAlloc for KeepInputOnAbort {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { std::alloc::System.alloc(layout) };
        if p.is_null() {
            keep_running_input();
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { std::alloc::System.alloc_zeroed(layout) };
        if p.is_null() {
            keep_running_input();
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { std::alloc::System.realloc(ptr, layout, new) };
        if p.is_null() {
            keep_running_input();
        }
        p
    }
}

fn keep_running_input() {
    let Some(r) = RUNNING.with(|c| c.get()) else {
        return;
    };
    const SAY: &[u8] =
        b"\nfuzz: an allocation failed (the process aborts next); the input is kept in new-crashes/\n";
    // SAFETY: `r` was registered by `run_keeping_input` from a slice and two C strings borrowed for the whole of the
    // run (the registration is cleared before they can be dropped, unwinding included); open/write/close get valid
    // pointers and lengths and allocate nothing.
    unsafe {
        libc::write(2, SAY.as_ptr().cast(), SAY.len());
        libc::mkdir(r.dir, 0o755);
        let fd = libc::open(
            r.keep_at,
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
            0o644,
        );
        if fd >= 0 {
            libc::write(fd, r.data.cast(), r.len);
            libc::close(fd);
        }
    }
}
