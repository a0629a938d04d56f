//! Replays every input under `tests/fuzz-corpus/{segment,frame}/` (crashes the fuzzers once found, kept after the
//! fix) and the generated seeds through the same targets the fuzzers run: errors are fine, a panic is not, and
//! neither is a firing of `decode_frame`'s last-resort `catch_unwind`.

use std::path::Path;

use qadataswap_arrow::fuzzing;

fn replay(target: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    let before = qadataswap_arrow::decode::caught_panics();
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        eprintln!("replaying {} ({} bytes)", f.display(), bytes.len());
        let _ = fuzzing::run(target, &bytes);
    }
    for (i, seed) in fuzzing::seeds(target).iter().enumerate() {
        // Trusted and Full each read and copy out a valid seed.
        assert_eq!(
            fuzzing::run(target, seed),
            2,
            "{target} seed {i} does not read back"
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
