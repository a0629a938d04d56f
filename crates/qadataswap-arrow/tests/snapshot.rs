//! In-process behaviour of snapshot writers and readers over real named segments.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringViewArray};
use arrow_schema::{DataType, Field, Schema};
use proptest::prelude::*;
use qadataswap_arrow::golden::{all_types_batch, numeric_batch, GoldenOptions};
use qadataswap_arrow::{buffer_ranges, Error, Frame, SnapshotReader, SnapshotWriter, Validation};

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique(tag: &str) -> String {
    format!(
        "qads-t-{}-{}-{}",
        std::process::id(),
        tag,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Every buffer of every column of `frame` lies inside the reader's mapping.
fn assert_zero_copy(reader: &SnapshotReader, frame: &Frame) {
    let map = reader.attachment().shared().mapping();
    let (start, end) = (map.as_ptr() as usize, map.as_ptr() as usize + map.len());
    let mut n = 0;
    for b in frame.batches() {
        for (i, c) in b.columns().iter().enumerate() {
            for (addr, len) in buffer_ranges(c.as_ref()) {
                if len == 0 {
                    continue;
                }
                n += 1;
                assert!(
                    addr >= start && addr + len <= end,
                    "column {} ({}) has a buffer at {addr:#x}+{len} outside the mapping {start:#x}..{end:#x}",
                    b.schema().field(i).name(),
                    c.data_type()
                );
            }
        }
    }
    assert!(n > 0, "no buffer checked");
}

#[test]
fn every_type_round_trips_through_a_segment_without_a_copy() {
    let name = unique("all");
    let batch = all_types_batch(GoldenOptions {
        rows: 257,
        seed: 7,
        nulls: true,
    });
    let mut w = SnapshotWriter::create(&name, 8 << 20).unwrap();
    let info = w.write(&batch).unwrap();
    assert_eq!(info.seq, 1);
    let r = SnapshotReader::open(&name).unwrap();
    let f = r.read().unwrap();
    assert_eq!(f.seq(), 1);
    assert_eq!(f.batches().len(), 1);
    assert_eq!(f.batches()[0], batch);
    assert_eq!(
        f.schema().as_ref(),
        batch.schema().as_ref(),
        "types and metadata are stored as given"
    );
    assert_zero_copy(&r, &f);
    let st = r.stats();
    assert_eq!(st.copies, 0, "{st:?}");
    assert!(st.zero_copy_buffers > 50, "{st:?}");
}

#[test]
fn sliced_inputs_round_trip_with_their_offsets_applied() {
    let name = unique("slice");
    let batch = all_types_batch(GoldenOptions {
        rows: 300,
        seed: 3,
        nulls: true,
    });
    let sliced = batch.slice(13, 251);
    let mut w = SnapshotWriter::create(&name, 8 << 20).unwrap();
    w.write(&sliced).unwrap();
    let r = SnapshotReader::open(&name).unwrap();
    let f = r.read().unwrap();
    assert_eq!(f.batches()[0], sliced);
    assert_zero_copy(&r, &f);
}

#[test]
fn a_frame_of_several_batches_is_not_rechunked() {
    let name = unique("multi");
    let b1 = all_types_batch(GoldenOptions {
        rows: 10,
        seed: 1,
        nulls: true,
    });
    let b2 = all_types_batch(GoldenOptions {
        rows: 20,
        seed: 2,
        nulls: false,
    });
    let mut w = SnapshotWriter::create(&name, 8 << 20).unwrap();
    w.write_frame(&b1.schema(), &[b1.clone(), b2.clone()])
        .unwrap();
    let r = SnapshotReader::open(&name).unwrap();
    let f = r.read().unwrap();
    assert_eq!(f.batches(), &[b1, b2]);
    assert_eq!(f.num_rows(), 30);
}

#[test]
fn the_schema_may_change_between_writes() {
    let name = unique("schema");
    let mut w = SnapshotWriter::create(&name, 1 << 20).unwrap();
    let a = numeric_batch(100, 2);
    let b = numeric_batch(50, 3);
    w.write(&a).unwrap();
    let r = SnapshotReader::open(&name).unwrap();
    assert_eq!(r.read().unwrap().batches()[0], a);
    assert_eq!(r.schema().unwrap().unwrap(), a.schema());
    w.write(&b).unwrap();
    let f = r.read_next(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(f.batches()[0], b);
    assert_eq!(r.schema().unwrap().unwrap(), b.schema());
}

#[test]
fn a_frame_larger_than_a_slot_names_the_bytes_needed_and_available() {
    let name = unique("big");
    let mut w = SnapshotWriter::create(&name, 3 * 64 * 1024).unwrap();
    let e = w.write(&numeric_batch(100_000, 2)).unwrap_err();
    match &e {
        Error::SlotTooSmall {
            needed, capacity, ..
        } => {
            assert!(*needed > 1_600_000, "{e}");
            assert_eq!(*capacity, 64 * 1024);
        }
        other => panic!("expected SlotTooSmall, got {other}"),
    }
    assert!(e.to_string().contains("num_buffers"), "{e}");
    // Nothing was published and the writer still works.
    w.write(&numeric_batch(10, 2)).unwrap();
    let r = SnapshotReader::open(&name).unwrap();
    assert_eq!(r.read().unwrap().seq(), 1);
}

#[test]
fn a_leased_slot_is_never_overwritten_and_the_writer_reports_who_holds_it() {
    let name = unique("lease");
    let mut w = SnapshotWriter::builder(&name)
        .size(3 << 20)
        .slots(3)
        .lease_timeout(Duration::from_millis(300))
        .create()
        .unwrap();
    let r = SnapshotReader::open(&name).unwrap();
    let batch = |v: i64| {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![v; 1000]));
        RecordBatch::try_from_iter([("v", a)]).unwrap()
    };
    w.write(&batch(1)).unwrap();
    let f1 = r.read().unwrap();
    w.write(&batch(2)).unwrap();
    let f2 = r.read_next(None).unwrap();
    w.write(&batch(3)).unwrap(); // third slot
                                 // Slots: 1 and 2 leased, 3 published: no slot left.
    let e = w.write(&batch(4)).unwrap_err();
    assert!(matches!(e, Error::AllSlotsLeased { .. }), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("pid {}", std::process::id())),
        "{e}"
    );
    // The frames we hold never changed.
    assert_eq!(f1.batches()[0], batch(1));
    assert_eq!(f2.batches()[0], batch(2));
    drop(f1);
    w.write(&batch(4)).unwrap();
    assert_eq!(f2.batches()[0], batch(2));
    assert_eq!(r.read().unwrap().batches()[0], batch(4));
}

#[test]
fn the_lease_returns_only_when_the_last_buffer_is_dropped() {
    let name = unique("drop");
    let mut w = SnapshotWriter::create(&name, 3 << 20).unwrap();
    w.write(&numeric_batch(1000, 2)).unwrap();
    let r = SnapshotReader::open(&name).unwrap();
    let f = r.read().unwrap();
    let column: ArrayRef = Arc::clone(f.batches()[0].column(1));
    let entry = r.attachment().entry();
    let slot = (0..3)
        .find(|&s| entry.lease_count(s) > 0)
        .expect("a lease is held");
    drop(f);
    assert_eq!(
        entry.lease_count(slot),
        1,
        "one column still points into the slot"
    );
    drop(column);
    assert_eq!(entry.lease_count(slot), 0);
}

#[test]
fn to_owned_copies_out_and_holds_no_lease() {
    let name = unique("owned");
    let mut w = SnapshotWriter::create(&name, 8 << 20).unwrap();
    let batch = all_types_batch(GoldenOptions {
        rows: 64,
        seed: 11,
        nulls: true,
    });
    w.write(&batch).unwrap();
    let r = SnapshotReader::open(&name).unwrap();
    let owned = r.read().unwrap().to_owned().unwrap();
    assert_eq!(owned.batches()[0], batch);
    let entry = r.attachment().entry();
    assert!((0..3).all(|s| entry.lease_count(s) == 0));
    let map = r.attachment().shared().mapping();
    for c in owned.batches()[0].columns() {
        for (addr, len) in buffer_ranges(c.as_ref()) {
            assert!(
                len == 0 || !map.contains(addr),
                "to_owned buffer still in shared memory"
            );
        }
    }
    let copied = r.read_copied().unwrap();
    assert_eq!(copied.batches()[0], batch);
    assert!(r.stats().copies > 0);
}

#[test]
fn full_validation_reads_the_same_frames() {
    let name = unique("full");
    let mut w = SnapshotWriter::create(&name, 8 << 20).unwrap();
    let batch = all_types_batch(GoldenOptions {
        rows: 100,
        seed: 5,
        nulls: true,
    });
    w.write(&batch).unwrap();
    let r = SnapshotReader::builder(&name)
        .validation(Validation::Full)
        .open()
        .unwrap();
    let f = r.read().unwrap();
    assert_eq!(f.batches()[0], batch);
    assert_zero_copy(&r, &f);
}

#[test]
fn read_next_returns_only_newer_frames_and_times_out_with_a_clear_error() {
    let name = unique("next");
    let mut w = SnapshotWriter::create(&name, 1 << 20).unwrap();
    let r = SnapshotReader::open(&name).unwrap();
    assert!(r.try_read().unwrap().is_none());
    let e = r.read_timeout(Duration::from_millis(50)).unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(e.to_string().contains("timed out"));
    w.write(&numeric_batch(10, 1)).unwrap();
    assert_eq!(r.read().unwrap().seq(), 1);
    assert!(matches!(
        r.read_next(Some(Duration::from_millis(30))),
        Err(Error::Timeout { .. })
    ));
    w.write(&numeric_batch(10, 1)).unwrap();
    w.write(&numeric_batch(10, 1)).unwrap();
    assert_eq!(
        r.read_next(None).unwrap().seq(),
        3,
        "read_next returns the newest, skipping 2"
    );
    assert_eq!(r.stats().timeouts, 2);
}

#[test]
fn wait_for_condition_returns_the_first_frame_that_satisfies_it() {
    let name = unique("cond");
    let mut w = SnapshotWriter::create(&name, 1 << 20).unwrap();
    let r = SnapshotReader::open(&name).unwrap();
    let t = std::thread::spawn(move || {
        for rows in [10, 20, 2000, 30] {
            std::thread::sleep(Duration::from_millis(20));
            w.write(&numeric_batch(rows, 1)).unwrap();
        }
        std::thread::sleep(Duration::from_millis(200));
    });
    let f = r
        .wait_for_condition(|f| f.num_rows() > 1000, Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(f.num_rows(), 2000);
    t.join().unwrap();
}

#[test]
fn a_clean_close_unlinks_and_readers_then_get_writer_closed() {
    let name = unique("close");
    let mut w = SnapshotWriter::create(&name, 1 << 20).unwrap();
    w.write(&numeric_batch(10, 1)).unwrap();
    let r = SnapshotReader::open(&name).unwrap();
    w.close().unwrap();
    assert!(!std::path::Path::new(&format!("/dev/shm/{name}")).exists());
    // The attached reader still reads the last frame, then learns the writer is gone.
    assert_eq!(r.read().unwrap().seq(), 1);
    let e = r.read_next(Some(Duration::from_secs(5))).unwrap_err();
    assert!(matches!(e, Error::WriterClosed { .. }), "{e}");
    assert!(matches!(
        SnapshotReader::builder(&name)
            .open_timeout(Duration::ZERO)
            .open(),
        Err(Error::Shm(_))
    ));
}

#[test]
fn a_persistent_segment_survives_its_writer_and_is_taken_over_by_the_next() {
    let name = unique("persist");
    let mut w = SnapshotWriter::builder(&name)
        .size(1 << 20)
        .persistent(true)
        .create()
        .unwrap();
    w.write(&numeric_batch(10, 1)).unwrap();
    let g1 = w.generation();
    w.close().unwrap();
    let r = SnapshotReader::open(&name).unwrap();
    assert_eq!(r.read().unwrap().num_rows(), 10);
    let mut w2 = SnapshotWriter::builder(&name)
        .size(1 << 20)
        .persistent(false)
        .create()
        .unwrap();
    assert_eq!(w2.generation(), g1 + 1);
    assert_eq!(
        w2.write(&numeric_batch(5, 1)).unwrap().seq,
        2,
        "numbering continues"
    );
    drop(w2);
    let _ = std::fs::remove_file(format!("/dev/shm/{name}"));
}

#[test]
fn a_second_writer_on_a_live_name_is_refused_with_the_owner_pid() {
    let name = unique("live");
    let _w = SnapshotWriter::create(&name, 1 << 20).unwrap();
    match SnapshotWriter::create(&name, 1 << 20) {
        Err(Error::WriterAlive { pid, .. }) => assert_eq!(pid, std::process::id()),
        Err(e) => panic!("expected WriterAlive, got {e}"),
        Ok(_) => panic!("expected WriterAlive, got a writer"),
    }
}

#[test]
fn utf8view_columns_keep_their_data_buffers_in_the_segment() {
    let name = unique("view");
    let long: Vec<String> = (0..1000)
        .map(|i| format!("a string long enough to live out of line {i}"))
        .collect();
    let a: ArrayRef = Arc::new(StringViewArray::from_iter_values(long.iter()));
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "s",
            DataType::Utf8View,
            false,
        )])),
        vec![a],
    )
    .unwrap();
    let mut w = SnapshotWriter::create(&name, 4 << 20).unwrap();
    w.write(&batch).unwrap();
    let r = SnapshotReader::open(&name).unwrap();
    let f = r.read().unwrap();
    assert_eq!(f.batches()[0], batch);
    assert_zero_copy(&r, &f);
    assert!(
        f.batches()[0].column(0).to_data().buffers().len() >= 2,
        "views plus at least one data buffer"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn random_frames_of_every_type_round_trip_exactly(rows in 0usize..200, seed in any::<u64>(), nulls in any::<bool>(),
                                                       start in 0usize..20, chunks in 1usize..4) {
        let name = unique("prop");
        let full = all_types_batch(GoldenOptions { rows: rows + start, seed, nulls });
        let batch = full.slice(start, rows);
        let per = rows.div_ceil(chunks).max(1);
        let mut parts = Vec::new();
        let mut at = 0;
        while at < rows || parts.is_empty() {
            let len = per.min(rows - at);
            parts.push(batch.slice(at, len));
            at += len;
            if len == 0 { break; }
        }
        let mut w = SnapshotWriter::create(&name, 16 << 20).unwrap();
        w.write_frame(&batch.schema(), &parts).unwrap();
        let r = SnapshotReader::open(&name).unwrap();
        let f = r.read().unwrap();
        prop_assert_eq!(f.batches(), &parts[..]);
        prop_assert_eq!(r.stats().copies, 0);
    }
}
