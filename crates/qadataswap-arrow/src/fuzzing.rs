//! Fuzz targets, shared by the libFuzzer harness under `fuzz/`, the in-process mutation harness that `cargo test`
//! runs on a time budget (`tests/fuzz_mutate.rs`) and the corpus replay test (`tests/fuzz_replay.rs`). Not a
//! stable API.
//!
//! Each target feeds hostile bytes through the same code a reader runs and panics only when the library did
//! something it promises never to do: let a panic escape, or need the last-resort `catch_unwind` in
//! `decode_frame` (which means a check is missing). Every loop a target drives is bounded, so a target that does
//! not return is a hang in the library.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_buffer::{Buffer, MutableBuffer};

use crate::control::DescRecord;
use crate::decode;
use crate::golden::{all_types_batch, numeric_batch, GoldenOptions};
use crate::layout::Mode;
use crate::options::{Compression, ReaderOptions, Validation, WriterOptions};
use crate::reader::SnapshotReader;
use crate::status::classify;
use crate::stream::{
    FollowEvent, Poll, StartAt, StreamFollower, StreamReaderCore, StreamWriterCore,
};
use crate::writer::SnapshotWriter;

/// Every target, by name (`fuzz/fuzz_targets/<name>.rs`, `tests/fuzz-corpus/<name>/`).
pub const TARGETS: &[&str] = &["segment", "frame", "stream", "follower"];

/// Numbers the segments the targets create, so that threads of one process never share a name.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Largest input the segment targets write to a file.
const MAX_SEGMENT_INPUT: usize = 4 << 20;

/// Most steps a stream target takes through one input's chunks (a hostile `stream_head` can claim 2^64 chunks).
const MAX_STREAM_STEPS: usize = 256;

/// An input written to a fresh file under `/dev/shm`, removed on drop (also when a target panics).
struct InputFile {
    name: String,
    path: String,
}

impl InputFile {
    fn write(tag: &str, data: &[u8]) -> Option<InputFile> {
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
fn assert_no_caught_panic(before: u64) {
    assert_eq!(
        decode::caught_panics(),
        before,
        "decode_frame's last-resort catch_unwind fired: a metadata check is missing"
    );
}

/// Reader options of the targets: never wait (a hostile segment may claim a live writer that never writes).
fn no_wait(validation: Validation) -> ReaderOptions {
    ReaderOptions {
        timeout: Some(Duration::ZERO),
        open_timeout: Duration::ZERO,
        spin: 0,
        validation,
        ..ReaderOptions::default()
    }
}

/// Whether `data` says it is a stream-mode segment (the header's mode word).
fn is_stream_mode(data: &[u8]) -> bool {
    let mode = crate::control::header_field("mode").map_or(0, |f| f.offset);
    data.get(mode..mode + 4) == Some(&Mode::Stream.to_u32().to_le_bytes()[..])
}

/// Target 1: `data` is the whole content of a segment file (header, reader table, descriptors, schema area,
/// slots). Writes it to `/dev/shm`, classifies and inspects it, opens it at both validation levels, reads the newest
/// frame, copies it out and reads the schema area; a stream-mode file is also driven through [`stream_bytes`]'s and
/// [`follower_bytes`]'s paths.
///
/// Returns how many frames (or chunks) were read and copied out (for checking that seeds exercise the whole path).
///
/// # Panics
/// When the library panicked or its last-resort `catch_unwind` fired.
pub fn segment_bytes(data: &[u8]) -> usize {
    let Some(file) = InputFile::write("segment", data) else {
        return 0;
    };
    let name = file.name.as_str();
    let mut read = 0;
    let before = decode::caught_panics();
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
    if is_stream_mode(data) {
        read += drive_stream_reader(name) + drive_follower(name);
    }
    assert_no_caught_panic(before);
    read
}

/// Target 3: `data` is a stream-mode segment file. A [`StreamReaderCore`] at each validation level reads every
/// chunk from the oldest on (the `Full` one keeps its chunks alive, so its leases pile up as a slow consumer's do),
/// copies each out, then makes one blocking call whose deadline has already passed.
///
/// Returns how many chunks were read and copied out.
///
/// # Panics
/// When the library panicked or its last-resort `catch_unwind` fired.
pub fn stream_bytes(data: &[u8]) -> usize {
    let Some(file) = InputFile::write("stream", data) else {
        return 0;
    };
    let before = decode::caught_panics();
    let read = drive_stream_reader(&file.name);
    assert_no_caught_panic(before);
    read
}

/// Target 4: `data` is a stream-mode segment file. A [`StreamFollower`] at each validation level follows it from
/// the oldest chunk (at `Full`) or the newest (at `Trusted`) through every chunk, skip and end, then makes one
/// blocking call with a zero timeout.
///
/// Returns how many chunks were copied out.
///
/// # Panics
/// When the library panicked or its last-resort `catch_unwind` fired.
pub fn follower_bytes(data: &[u8]) -> usize {
    let Some(file) = InputFile::write("follower", data) else {
        return 0;
    };
    let before = decode::caught_panics();
    let read = drive_follower(&file.name);
    assert_no_caught_panic(before);
    read
}

/// Every chunk of stream segment `name` through two stream readers; see [`stream_bytes`].
fn drive_stream_reader(name: &str) -> usize {
    let mut read = 0;
    for (validation, keep) in [(Validation::Trusted, false), (Validation::Full, true)] {
        let Ok(mut reader) = StreamReaderCore::open(name, &no_wait(validation), StartAt::Oldest)
        else {
            continue;
        };
        let mut kept = Vec::new();
        for _ in 0..MAX_STREAM_STEPS {
            match reader.try_next() {
                Ok(Poll::Chunk(chunk)) => {
                    read += usize::from(chunk.to_owned().is_ok());
                    if keep {
                        kept.push(chunk);
                    }
                }
                // Pending, the end, a dead or closed writer, a held ring, lost chunks, errors: the stream crate
                // turns each into a return or an error, never into another look.
                _ => break,
            }
        }
        // The blocking form, bounded by a deadline that has already passed.
        let _ = reader.wait(Some(Instant::now()));
        drop(kept);
    }
    read
}

/// Every chunk of stream segment `name` through two followers; see [`follower_bytes`].
fn drive_follower(name: &str) -> usize {
    let mut read = 0;
    for (validation, start) in [
        (Validation::Full, StartAt::Oldest),
        (Validation::Trusted, StartAt::Newest),
    ] {
        let Ok(mut follower) = StreamFollower::open(name, &no_wait(validation), start) else {
            continue;
        };
        for _ in 0..MAX_STREAM_STEPS {
            match follower.poll() {
                Ok(Some(FollowEvent::Chunk(chunk))) => {
                    read += usize::from(chunk.to_owned().is_ok());
                }
                Ok(Some(FollowEvent::Skipped { .. })) => {}
                _ => break,
            }
        }
        let _ = follower.next(Some(Duration::ZERO));
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
    slot.begin_write(2 * seq - 1);
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
    slot.commit(2 * seq);
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
fn seed_frames() -> Vec<Vec<RecordBatch>> {
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
fn seed_name(tag: &str) -> String {
    format!(
        "qads-fuzz-seed-{}-{tag}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The writer options of a seed segment of `size` data bytes: small, so that the seeds (whole files) stay small.
fn seed_options(size: usize, slots: usize, compression: Option<Compression>) -> WriterOptions {
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
const SEED_SIZES: [usize; 5] = [8 << 10, 32 << 10, 128 << 10, 1 << 20, 8 << 20];

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

/// A stream segment of 3 slots holding `chunks` (more chunks than slots: the ring wraps and `stream_tail` moves),
/// copied while its writer is alive, and again after `finish()` when `finish` is set.
fn stream_seed(
    chunks: &[Vec<RecordBatch>],
    compression: Option<Compression>,
    finish: bool,
) -> Vec<u8> {
    for size in SEED_SIZES {
        let name = seed_name("stream");
        let mut w = StreamWriterCore::create(&name, seed_options(size * 3, 3, compression))
            .expect("seed stream segment");
        let deadline = Instant::now() + Duration::from_secs(5);
        let fits = chunks.iter().all(|batches| {
            match w.write_chunk(&batches[0].schema(), batches, deadline) {
                Ok(_) => true,
                Err(crate::Error::SlotTooSmall { .. }) => false,
                Err(e) => panic!("seed chunk: {e}"),
            }
        });
        let path = format!("{}/{name}", qadataswap_shm::SHM_DIR);
        if fits && finish {
            w.finish().expect("finish the seed stream");
        }
        let bytes = std::fs::read(&path).expect("read the seed stream segment");
        drop(w);
        let _ = std::fs::remove_file(&path);
        if fits {
            return bytes;
        }
    }
    panic!("a seed chunk fits in 8 MiB");
}

/// Seed inputs for a target (one of [`TARGETS`]): real segments and frames written by the writer, holding every
/// Arrow type the golden batch has, dictionaries (and their replacement in a later batch), several batch sizes,
/// several batches per frame, LZ4 and ZSTD bodies; for the stream targets, stream segments whose ring wrapped,
/// with a live and a finished writer. The segment target's seeds include the stream targets' seeds.
///
/// # Panics
/// On an unknown target or when a seed segment cannot be created (a broken environment).
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let frames = seed_frames();
    match target {
        "segment" | "frame" => {
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
            if target == "frame" {
                return out_frames;
            }
            segments.extend(seeds("stream"));
            segments
        }
        "stream" | "follower" => {
            let chunks = [&frames[1], &frames[2], &frames[4], &frames[5], &frames[3]];
            let chunks: Vec<Vec<RecordBatch>> = chunks.into_iter().cloned().collect();
            vec![
                stream_seed(&chunks, None, false),
                stream_seed(&chunks, None, true),
                stream_seed(&chunks[..2], Some(Compression::Lz4), true),
            ]
        }
        other => panic!("unknown fuzz target {other:?} (one of {TARGETS:?})"),
    }
}

/// Run `target` (one of [`TARGETS`]) on `data`.
///
/// Returns how many frames were read and copied out.
///
/// # Panics
/// As the targets do, and on an unknown target.
pub fn run(target: &str, data: &[u8]) -> usize {
    match target {
        "segment" => segment_bytes(data),
        "frame" => frame_bytes(data),
        "stream" => stream_bytes(data),
        "follower" => follower_bytes(data),
        other => panic!("unknown fuzz target {other:?} (one of {TARGETS:?})"),
    }
}
