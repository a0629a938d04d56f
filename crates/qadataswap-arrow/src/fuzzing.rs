//! Fuzz targets, shared by the libFuzzer harness under `fuzz/` and the corpus replay test
//! (`tests/fuzz_replay.rs`). Not a stable API.
//!
//! Each target feeds hostile bytes through the same code a reader runs and panics only when the library did
//! something it promises never to do: let a panic escape, or need the last-resort `catch_unwind` in
//! `decode_frame` (which means a check is missing).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_buffer::{Buffer, MutableBuffer};

use crate::decode;
use crate::golden::{all_types_batch, numeric_batch, GoldenOptions};
use crate::layout::{desc, off, pack_published};
use crate::options::{ReaderOptions, Validation};
use crate::reader::SnapshotReader;
use crate::status::classify;
use crate::writer::SnapshotWriter;

/// Numbers the segments the targets create, so that threads of one process never share a name.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Largest input the segment target writes to a file.
const MAX_SEGMENT_INPUT: usize = 4 << 20;

/// Target 1: `data` is the whole content of a segment file (header, reader table, descriptors, schema area,
/// slots). Writes it to `/dev/shm`, classifies and inspects it, opens it at both validation levels, reads the newest frame,
/// copies it out and reads the schema area.
///
/// Returns how many frames were read and copied out (for checking that seeds exercise the whole path).
///
/// # Panics
/// When the library panicked or its last-resort `catch_unwind` fired.
pub fn segment_bytes(data: &[u8]) -> usize {
    let data = &data[..data.len().min(MAX_SEGMENT_INPUT)];
    let name = format!(
        "qads-fuzz-{}-segment-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let path = format!("{}/{name}", qadataswap_shm::SHM_DIR);
    let _ = std::fs::remove_file(&path);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(data));
    if written.is_err() {
        let _ = std::fs::remove_file(&path);
        return 0;
    }
    let mut read = 0;
    let before = decode::caught_panics();
    let _ = classify(&name);
    let _ = crate::inspect::inspect(&name);
    for validation in [Validation::Trusted, Validation::Full] {
        let opts = ReaderOptions {
            timeout: Some(Duration::ZERO),
            open_timeout: Duration::ZERO,
            validation,
            ..ReaderOptions::default()
        };
        let Ok(reader) = SnapshotReader::builder(&name).options(opts).open() else {
            continue;
        };
        if let Ok(Some(frame)) = reader.try_read() {
            read += usize::from(frame.to_owned().is_ok());
        }
        let _ = reader.schema();
    }
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        decode::caught_panics(),
        before,
        "decode_frame's last-resort catch_unwind fired: a metadata check is missing"
    );
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
    let rows = decode::decode_frame(&copy, 0, &mut None, Validation::Full)
        .map(|(_, b)| b.iter().map(RecordBatch::num_rows).sum::<usize>() as u64)
        .unwrap_or(0);

    fx.seq += 1;
    let seq = fx.seq;
    let slot = shared.slot_seq(0);
    slot.begin_write(2 * seq - 1);
    // SAFETY: slot 0 is `cap` bytes of this process's read-write mapping, data.len() <= cap, and no lease is held
    // on it: every frame read from it below is dropped before the next input is written.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), shared.slot_ptr(0), data.len()) };
    shared
        .desc_u64(0, desc::FRAME_SEQ)
        .store(seq, Ordering::Relaxed);
    // A fresh schema version per input, so every input's own schema message is decoded.
    shared
        .desc_u64(0, desc::SCHEMA_VERSION)
        .store(seq, Ordering::Relaxed);
    shared
        .desc_u64(0, desc::LEN)
        .store(data.len() as u64, Ordering::Relaxed);
    shared
        .desc_u64(0, desc::NUM_ROWS)
        .store(rows, Ordering::Relaxed);
    slot.commit(2 * seq);
    shared
        .header_u64(off::PUBLISHED)
        .store(pack_published(seq, 0), Ordering::Release);

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

/// Seed inputs for a target (`"segment"` or `"frame"`): real segments and frames holding every Arrow type the
/// golden batch has, with and without nulls, several batch sizes, and a two-batch frame.
///
/// # Panics
/// On an unknown target or when a seed segment cannot be created (a broken environment).
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let mut frames: Vec<Vec<RecordBatch>> = Vec::new();
    for (rows, nulls) in [(0, false), (1, true), (3, false), (7, true)] {
        frames.push(vec![all_types_batch(GoldenOptions {
            rows,
            seed: rows as u64 + 1,
            nulls,
        })]);
    }
    frames.push(vec![numeric_batch(5, 3), numeric_batch(2, 3)]);
    let mut out = Vec::new();
    for (i, batches) in frames.iter().enumerate() {
        let name = format!(
            "qads-fuzz-seed-{}-{i}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        // The smallest slot that holds the frame keeps the seed (the whole file) small.
        let mut w = None;
        for size in [8 << 10, 32 << 10, 128 << 10, 1 << 20, 8 << 20] {
            let mut candidate = SnapshotWriter::builder(&name)
                .size(size)
                .slots(1)
                .reader_capacity(1)
                .schema_capacity(16 << 10)
                .create()
                .expect("seed segment");
            match candidate.write_frame(&batches[0].schema(), batches) {
                Ok(_) => {
                    w = Some(candidate);
                    break;
                }
                Err(crate::Error::SlotTooSmall { .. }) => {
                    let _ = candidate.close();
                }
                Err(e) => panic!("seed frame: {e}"),
            }
        }
        let w = w.expect("a seed frame fits in 8 MiB");
        let path = format!("{}/{name}", qadataswap_shm::SHM_DIR);
        let bytes = std::fs::read(&path).expect("read the seed segment");
        let geo = *w.geometry();
        let len = w.shared().desc_u64(0, desc::LEN).load(Ordering::Relaxed) as usize;
        let _ = w.close();
        match target {
            "segment" => out.push(bytes),
            "frame" => out.push(bytes[geo.data_offset..geo.data_offset + len].to_vec()),
            other => panic!("unknown fuzz target {other:?} (segment or frame)"),
        }
    }
    out
}

/// Run `target` (`"segment"` or `"frame"`) on `data`.
///
/// Returns how many frames were read and copied out.
///
/// # Panics
/// As the targets do, and on an unknown target.
pub fn run(target: &str, data: &[u8]) -> usize {
    match target {
        "segment" => segment_bytes(data),
        "frame" => frame_bytes(data),
        other => panic!("unknown fuzz target {other:?} (segment or frame)"),
    }
}
