//! A whole segment file of format version 1, kept in the repository (tests/golden/segment-v1.qads): today's reader
//! must read it exactly, so a format change that breaks old segments fails here. Regenerate only on purpose:
//! `QADS_REGENERATE_GOLDEN=1 cargo test -p qadataswap-arrow --test golden_segment` (and bump the format version).

use std::path::PathBuf;

use qadataswap_arrow::golden::{all_types_batch, GoldenOptions};
use qadataswap_arrow::{Error, SnapshotReader, SnapshotWriter};

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/segment-v1.qads")
}

fn golden_batch() -> arrow_array::RecordBatch {
    all_types_batch(GoldenOptions {
        rows: 40,
        seed: 2026,
        nulls: true,
    })
}

#[test]
fn a_golden_version_1_segment_reads_back_exactly() {
    let path = golden_path();
    if std::env::var_os("QADS_REGENERATE_GOLDEN").is_some() {
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
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(format!("/dev/shm/{name}"), &path).unwrap();
        std::fs::remove_file(format!("/dev/shm/{name}")).unwrap();
    }
    let name = format!("qads-golden-{}", std::process::id());
    let shm = format!("/dev/shm/{name}");
    std::fs::copy(&path, &shm).expect("tests/golden/segment-v1.qads is in the repository");
    std::fs::set_permissions(&shm, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let result = std::panic::catch_unwind(|| {
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
    });
    let _ = std::fs::remove_file(&shm);
    result.unwrap();
}
