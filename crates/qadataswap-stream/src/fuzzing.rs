//! Fuzz targets over every kind of segment, shared by the libFuzzer harness under `fuzz/`, the in-process mutation
//! harness `cargo test` runs on a time budget (`tests/fuzz_mutate.rs`) and the corpus replay test
//! (`tests/fuzz_replay.rs`). The snapshot targets and the building blocks are `qadataswap_arrow::fuzzing`'s; this
//! crate adds the stream reader and follower, the lowest layer that has both. Not a stable API.
//!
//! Each target feeds hostile bytes through the same code a reader runs and panics only when the library did
//! something it promises never to do: let a panic escape, or need the last-resort `catch_unwind` in
//! `decode_frame` (which means a check is missing). Every loop a target drives is bounded, so a target that does
//! not return is a hang in the library.

use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use qadataswap_arrow::decode::caught_panics;
use qadataswap_arrow::fuzzing::{
    assert_no_caught_panic, drive_snapshot, frame_bytes, is_stream_mode, no_wait, seed_frames,
    seed_name, seed_options, snapshot_seeds, InputFile, SEED_SIZES,
};
use qadataswap_arrow::{Compression, Validation};

use crate::protocol::{
    FollowEvent, Poll, StartAt, StreamFollower, StreamReaderCore, StreamWriterCore,
};

/// Every target, by name (`fuzz/fuzz_targets/<name>.rs`, `tests/fuzz-corpus/<name>/`).
pub const TARGETS: &[&str] = &["segment", "frame", "stream", "follower"];

/// Most steps a stream target takes through one input's chunks (a hostile `stream_head` can claim 2^64 chunks).
const MAX_STREAM_STEPS: usize = 256;

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
    let before = caught_panics();
    let mut read = drive_snapshot(name);
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
    let before = caught_panics();
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
    let before = caught_panics();
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
                Err(qadataswap_arrow::Error::SlotTooSmall { .. }) => false,
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

/// Seed inputs for a target (one of [`TARGETS`]): real segments and frames written by the writers, holding every
/// Arrow type the golden batch has, dictionaries (and their replacement in a later batch), several batch sizes,
/// several batches per frame, LZ4 and ZSTD bodies; for the stream targets, stream segments whose ring wrapped,
/// with a live and a finished writer. The segment target's seeds include the stream targets' seeds.
///
/// # Panics
/// On an unknown target or when a seed segment cannot be created (a broken environment).
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "frame" => snapshot_seeds("frame"),
        "segment" => {
            let mut segments = snapshot_seeds("segment");
            segments.extend(seeds("stream"));
            segments
        }
        "stream" | "follower" => {
            let frames = seed_frames();
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
