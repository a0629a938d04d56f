//! Whole segment files of each format version, kept in the repository (tests/golden/segment-v<N>.qads): today's
//! reader must read every one exactly, so a format change that breaks old segments fails here. Regenerate the
//! current version's file only on purpose (and bump the format version if its bytes change meaning):
//! `QADS_REGENERATE_GOLDEN=1 cargo test -p qadataswap-arrow --test golden_segment`.

use std::path::PathBuf;

use qadataswap_arrow::golden::{all_types_batch, GoldenOptions};
use qadataswap_arrow::layout::FORMAT_VERSION;
use qadataswap_arrow::{Error, SnapshotReader, SnapshotWriter};

/// `format_version`'s offset (FORMAT.md §3).
const VERSION_AT: usize = 8;

fn golden_path(version: u32) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../tests/golden/segment-v{version}.qads"))
}

fn golden_batch() -> arrow_array::RecordBatch {
    all_types_batch(GoldenOptions {
        rows: 40,
        seed: 2026,
        nulls: true,
    })
}

fn regenerate_current() {
    let name = format!("qads-golden-gen-{}", std::process::id());
    let mut w = SnapshotWriter::builder(&name)
        .size(2 * 32 * 1024)
        .slots(2)
        .reader_capacity(4)
        .schema_capacity(8192)
        .persistent(true)
        .create()
        .unwrap();
    w.write(&golden_batch()).unwrap();
    w.close().unwrap();
    let path = golden_path(FORMAT_VERSION);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::copy(format!("/dev/shm/{name}"), &path).unwrap();
    std::fs::remove_file(format!("/dev/shm/{name}")).unwrap();
}

/// Copy the golden file of `version` into /dev/shm, read it, remove it.
fn reads_back_exactly(version: u32) {
    let path = golden_path(version);
    let name = format!("qads-golden-{version}-{}", std::process::id());
    let shm = format!("/dev/shm/{name}");
    std::fs::copy(&path, &shm).expect("the golden segment is in the repository");
    std::fs::set_permissions(&shm, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let bytes = std::fs::read(&shm).unwrap();
    let stored = u32::from_le_bytes(bytes[VERSION_AT..VERSION_AT + 4].try_into().unwrap());
    let result = std::panic::catch_unwind(|| {
        assert_eq!(
            stored,
            version,
            "{} holds format version {stored}",
            path.display()
        );
        let r = SnapshotReader::open(&name).unwrap();
        let f = r
            .try_read()
            .unwrap()
            .expect("the golden segment holds a committed frame");
        assert_eq!(f.seq(), 1);
        assert_eq!(f.batches(), &[golden_batch()]);
        assert_eq!(r.stats().copies, 0);
        // Its writer closed cleanly long ago.
        assert!(matches!(
            r.read_next(Some(std::time::Duration::from_millis(200))),
            Err(Error::WriterClosed { .. })
        ));
        drop(r);
        if version != FORMAT_VERSION {
            // Read, but never taken over by a writer of another version.
            assert!(matches!(
                SnapshotWriter::create(&name, 1 << 16),
                Err(Error::VersionMismatch { found, .. }) if found == version
            ));
        }
    });
    let _ = std::fs::remove_file(&shm);
    result.unwrap();
}

#[test]
fn a_golden_version_1_segment_reads_back_exactly_and_is_never_taken_over() {
    reads_back_exactly(1);
}

#[test]
fn a_golden_segment_of_the_current_version_reads_back_exactly() {
    if std::env::var_os("QADS_REGENERATE_GOLDEN").is_some() {
        regenerate_current();
    }
    reads_back_exactly(FORMAT_VERSION);
}
