//! Replays every input under `tests/fuzz-corpus/<target>/` (crashes the fuzzers once found, kept after the fix),
//! every input under `tests/fuzz-corpus/new-crashes/` (what `tests/fuzz_mutate.rs` found and nobody fixed yet: the
//! file name starts with its target) and the generated seeds through the same targets the fuzzers run: errors are
//! fine, a panic is not, and neither is a firing of `decode_frame`'s last-resort `catch_unwind`.

use std::path::{Path, PathBuf};

use qadataswap_stream::fuzzing;

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|f| f.is_file());
    files.sort();
    files
}

fn replay(target: &str) {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus");
    let mut files = files_in(&corpus.join(target));
    files.extend(
        files_in(&corpus.join("new-crashes"))
            .into_iter()
            .filter(|f| {
                f.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.split('-').next())
                    == Some(target)
            }),
    );
    let before = qadataswap_arrow::decode::caught_panics();
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        eprintln!("replaying {} ({} bytes)", f.display(), bytes.len());
        let _ = fuzzing::run(target, &bytes);
    }
    for (i, seed) in fuzzing::seeds(target).iter().enumerate() {
        // A seed reads back (at both validation levels for the snapshot targets), so the fuzzers' mutations of it
        // reach the decoder.
        let read = fuzzing::run(target, seed);
        let least = if target == "frame" { 2 } else { 1 };
        assert!(
            read >= least,
            "{target} seed {i} reads back {read} frames, expected at least {least}"
        );
    }
    assert_eq!(qadataswap_arrow::decode::caught_panics(), before);
}

#[test]
fn every_kept_segment_crash_and_seed_is_rejected_or_read_without_a_panic() {
    replay("segment");
}

#[test]
fn every_kept_frame_crash_and_seed_is_rejected_or_read_without_a_panic() {
    replay("frame");
}

#[test]
fn every_kept_stream_crash_and_seed_is_rejected_or_read_chunk_by_chunk_without_a_panic() {
    replay("stream");
}

#[test]
fn every_kept_follower_crash_and_seed_is_rejected_or_followed_without_a_panic() {
    replay("follower");
}
