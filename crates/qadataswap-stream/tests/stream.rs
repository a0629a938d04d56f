//! In-process behaviour of SharedDataStream (readers and writer in one process; processes.rs has the real ones).

use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use qadataswap_arrow::{SnapshotReader, SnapshotWriter};
use qadataswap_stream::{
    Compression, Config, Error, SharedDataStream, StartAt, StreamReader, StreamReaderBuilder,
    StreamWriterBuilder,
};

fn name(tag: &str) -> String {
    format!("qads-st-{tag}-{}", std::process::id())
}

struct Unlink(String);
impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/dev/shm/{}", self.0));
    }
}

fn batch(seq: i64, rows: usize) -> RecordBatch {
    let a: ArrayRef = Arc::new(Int64Array::from_iter_values(
        (0..rows as i64).map(|i| seq * 1000 + i),
    ));
    let s: ArrayRef =
        Arc::new(StringArray::from_iter_values((0..rows).map(|i| {
            format!("row {i} of chunk {seq}, with some text that compresses well")
        })));
    RecordBatch::try_from_iter([("a", a), ("s", s)]).unwrap()
}

fn tag(c: &RecordBatch) -> i64 {
    c.column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0)
        / 1000
}

/// Tests do not depend on a qadataswap.yaml lying around: defaults, short timeouts.
fn writer(n: &str) -> StreamWriterBuilder {
    SharedDataStream::writer(n)
        .config(Config::default())
        .size(1 << 20)
        .slots(3)
        .timeout(Some(Duration::from_millis(200)))
        .retry_count(1)
}

fn reader(n: &str) -> StreamReaderBuilder {
    SharedDataStream::reader(n)
        .config(Config::default())
        .timeout(Some(Duration::from_millis(200)))
        .retry_count(1)
}

fn seqs(r: &mut StreamReader) -> Vec<u64> {
    r.iter_chunks().map(|c| c.unwrap().seq()).collect()
}

#[test]
fn every_chunk_arrives_in_order_and_the_iteration_ends_at_finish() {
    let n = name("order");
    let _u = Unlink(n.clone());
    let mut w = writer(&n).create().unwrap();
    let mut r = reader(&n).open().unwrap();
    let mut got = Vec::new();
    for i in 1..=10 {
        w.write_chunk(&batch(i, 10)).unwrap();
        let c = r.next_chunk(None).unwrap().unwrap();
        assert_eq!(c.batches()[0], batch(i, 10));
        got.push(tag(&c.batches()[0]));
    }
    w.finish().unwrap();
    assert!(r.next_chunk(None).unwrap().is_none());
    assert!(r.is_finished());
    assert_eq!(got, (1..=10).collect::<Vec<_>>());
    assert_eq!(r.stats().copies, 0, "uncompressed chunks are zero-copy");
    assert!(r.stats().zero_copy_buffers > 0);
}

#[test]
fn reader_drains_what_was_written_before_finish_then_ends() {
    let n = name("drain");
    let _u = Unlink(n.clone());
    let mut w = writer(&n).create().unwrap();
    let mut r = reader(&n).open().unwrap();
    w.write_chunk(&batch(1, 3)).unwrap();
    w.write_chunk(&batch(2, 3)).unwrap();
    w.finish().unwrap();
    assert_eq!(seqs(&mut r), [1, 2]);
    assert!(matches!(
        w.write_chunk(&batch(3, 3)),
        Err(Error::Finished { .. })
    ));
}

#[test]
fn a_frame_of_several_batches_is_one_chunk_and_is_not_rechunked() {
    let n = name("frame");
    let _u = Unlink(n.clone());
    let mut w = writer(&n).create().unwrap();
    let mut r = reader(&n).open().unwrap();
    let parts = [batch(1, 5), batch(2, 7)];
    w.write_frame(parts[0].schema_ref(), &parts).unwrap();
    let c = r.next_chunk(None).unwrap().unwrap();
    assert_eq!(c.batches(), &parts);
    assert_eq!(c.num_rows(), 12);
}

#[test]
fn late_reader_learns_which_chunks_it_missed_then_starts_at_the_oldest_still_in_the_ring() {
    let n = name("late");
    let _u = Unlink(n.clone());
    // A broadcast (min_readers 0): nobody reads, the writer may run over old chunks freely.
    let mut w = writer(&n).min_readers(0).create().unwrap();
    for i in 1..=7 {
        w.write_chunk(&batch(i, 2)).unwrap();
    }
    let mut oldest = reader(&n).open().unwrap();
    let mut next = reader(&n).start_at(StartAt::Next).open().unwrap();
    assert_eq!(oldest.cursor(), 5, "3 slots: chunks 5, 6, 7 are retained");
    assert_eq!(oldest.missed(), Some((1, 4)));
    assert_eq!(next.cursor(), 8);
    assert_eq!(
        next.missed(),
        None,
        "a reader that asked for the next chunk missed nothing"
    );
    // Never silent: the first read says which chunks are gone, the next one goes on.
    match oldest.next_chunk(None) {
        Err(Error::JoinedLate {
            first: 1,
            last: 4,
            resumes_at: 5,
            ..
        }) => {}
        other => panic!("expected JoinedLate 1..=4, got {other:?}"),
    }
    // Chunk 8 goes where chunk 5 is: the new reader holds the writer back until it has read 5.
    assert_eq!(oldest.next_chunk(None).unwrap().unwrap().seq(), 5);
    w.write_chunk(&batch(8, 2)).unwrap();
    w.finish().unwrap();
    assert_eq!(seqs(&mut oldest), [6, 7, 8]);
    assert_eq!(seqs(&mut next), [8]);
}

#[test]
fn writer_blocked_by_a_reader_a_whole_ring_behind_names_it_in_the_timeout_error() {
    let n = name("behind");
    let _u = Unlink(n.clone());
    let mut w = writer(&n).create().unwrap();
    let mut r = reader(&n).open().unwrap();
    for i in 1..=3 {
        w.write_chunk(&batch(i, 2)).unwrap();
    }
    let e = w.write_chunk(&batch(4, 2)).unwrap_err();
    match &e {
        Error::ReadersBehind {
            chunk,
            attempts,
            laggards,
            ..
        } => {
            assert_eq!((*chunk, *attempts), (4, 2));
            assert_eq!(laggards.len(), 1);
            assert_eq!(laggards[0].pid, std::process::id());
            assert_eq!(laggards[0].next_chunk, 1);
        }
        other => panic!("expected ReadersBehind, got {other}"),
    }
    assert!(e
        .to_string()
        .contains(&format!("pid {}", std::process::id())));
    assert!(w.stats().lease_waits >= 1);
    // Once the reader moves, the same chunk can be written.
    assert_eq!(r.next_chunk(None).unwrap().unwrap().seq(), 1);
    assert_eq!(w.write_chunk(&batch(4, 2)).unwrap().seq, 4);
    w.finish().unwrap();
    assert_eq!(seqs(&mut r), [2, 3, 4]);
}

#[test]
fn reader_that_keeps_a_whole_ring_of_chunks_gets_ring_held_instead_of_a_deadlock() {
    let n = name("held");
    let _u = Unlink(n.clone());
    let mut w = writer(&n).create().unwrap();
    let mut r = reader(&n).open().unwrap();
    for i in 1..=3 {
        w.write_chunk(&batch(i, 2)).unwrap();
    }
    let kept: Vec<_> = (0..3)
        .map(|_| r.next_chunk(None).unwrap().unwrap())
        .collect();
    let e = r.next_chunk(Some(Duration::from_secs(30))).unwrap_err();
    match &e {
        Error::RingHeld {
            chunk,
            slot,
            keep_at_most,
            ..
        } => assert_eq!((*chunk, *slot, *keep_at_most), (4, 0, 2)),
        other => panic!("expected RingHeld, got {other}"),
    }
    assert!(e.to_string().contains("to_owned"), "{e}");
    assert!(matches!(r.try_next_chunk(), Err(Error::RingHeld { .. })));
    // Copies hold no lease: keep those instead.
    let owned: Vec<_> = kept.iter().map(|c| c.to_owned().unwrap()).collect();
    drop(kept);
    w.write_chunk(&batch(4, 2)).unwrap();
    assert_eq!(r.next_chunk(None).unwrap().unwrap().seq(), 4);
    assert_eq!(owned[0].batches()[0], batch(1, 2));
}

#[test]
fn try_next_chunk_returns_none_when_nothing_is_ready() {
    let n = name("try");
    let _u = Unlink(n.clone());
    let mut w = writer(&n).create().unwrap();
    let mut r = reader(&n).open().unwrap();
    assert!(r.try_next_chunk().unwrap().is_none());
    w.write_chunk(&batch(1, 1)).unwrap();
    assert_eq!(r.try_next_chunk().unwrap().unwrap().seq(), 1);
    assert!(r.try_next_chunk().unwrap().is_none());
    assert!(!r.is_finished());
    let e = r.next_chunk(Some(Duration::from_millis(20))).unwrap_err();
    assert!(matches!(e, Error::Timeout { attempts: 1, .. }), "{e}");
    assert_eq!(r.stats().timeouts, 1);
}

#[test]
fn writer_dropped_without_finish_is_reported_as_closed_after_the_drain() {
    let n = name("closed");
    let _u = Unlink(n.clone());
    let mut w = writer(&n).create().unwrap();
    let mut r = reader(&n).open().unwrap();
    w.write_chunk(&batch(1, 1)).unwrap();
    drop(w);
    assert_eq!(r.next_chunk(None).unwrap().unwrap().seq(), 1);
    let e = r.next_chunk(None).unwrap_err();
    assert!(matches!(e, Error::WriterClosed { delivered: 1, .. }), "{e}");
}

#[test]
fn wait_for_readers_counts_attached_readers_and_times_out_when_too_few() {
    let n = name("audience");
    let _u = Unlink(n.clone());
    let w = writer(&n).create().unwrap();
    let e = w
        .wait_for_readers(1, Duration::from_millis(30))
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    let _r1 = reader(&n).open().unwrap();
    let _r2 = reader(&n).open().unwrap();
    assert_eq!(w.wait_for_readers(2, Duration::from_secs(10)).unwrap(), 2);
    assert_eq!(w.readers(), 2);
}

#[test]
fn compressed_chunks_round_trip_and_are_counted_as_copies() {
    for c in [Compression::Lz4, Compression::Zstd] {
        let n = name(&format!("{c:?}").to_lowercase());
        let _u = Unlink(n.clone());
        let mut w = writer(&n).compression(Some(c)).create().unwrap();
        let mut r = reader(&n).open().unwrap();
        let b = batch(1, 1000);
        let info = w.write_chunk(&b).unwrap();
        let chunk = r.next_chunk(None).unwrap().unwrap();
        assert_eq!(chunk.batches()[0], b, "{c:?}");
        assert!(r.stats().copies > 0, "{c:?}: decompression is a copy");
        // The text column compresses: the slot holds fewer bytes than the plain encoding would.
        let mut plain = Vec::new();
        let mut sw = arrow_ipc::writer::StreamWriter::try_new(&mut plain, &b.schema()).unwrap();
        sw.write(&b).unwrap();
        sw.finish().unwrap();
        drop(sw);
        assert!(
            info.bytes < plain.len(),
            "{c:?}: {} >= {}",
            info.bytes,
            plain.len()
        );
    }
}

#[test]
fn compressed_snapshots_round_trip_through_the_config_helper() {
    let n = name("snapcfg");
    let _u = Unlink(n.clone());
    let cfg = Config::from_yaml(
        "memory:\n  size_mb: 4\n  num_buffers: 2\ncompression:\n  enabled: true\n  algorithm: zstd\n",
        "test",
    )
    .unwrap();
    let mut w = SnapshotWriter::builder(&n)
        .options(cfg.writer_options())
        .create()
        .unwrap();
    assert_eq!(w.geometry().slot_count, 2);
    let r = SnapshotReader::builder(&n)
        .options(cfg.reader_options())
        .open()
        .unwrap();
    let b = batch(7, 500);
    w.write(&b).unwrap();
    let f = r.read().unwrap();
    assert_eq!(f.batches()[0], b);
    assert!(r.stats().copies > 0);
}

#[test]
fn config_sets_the_ring_and_explicit_arguments_win() {
    let n = name("cfg");
    let _u = Unlink(n.clone());
    let cfg = Config::from_yaml("memory:\n  size_mb: 2\n  num_buffers: 5\n", "test").unwrap();
    let w = SharedDataStream::writer(&n)
        .config(cfg.clone())
        .create()
        .unwrap();
    let geo = *w.core().shared().geometry();
    assert_eq!(geo.slot_count, 5);
    assert_eq!(geo.slot_capacity, (2 << 20) / 5 / 64 * 64);
    drop(w);
    let w = SharedDataStream::writer(&n)
        .config(cfg)
        .slots(2)
        .create()
        .unwrap();
    assert_eq!(w.core().shared().geometry().slot_count, 2);
}

#[test]
fn a_reader_handle_dropped_while_its_chunks_live_no_longer_holds_the_writer_back_by_position() {
    let n = name("detach");
    let _u = Unlink(n.clone());
    let mut w = writer(&n).create().unwrap();
    let mut r = reader(&n).open().unwrap();
    w.write_chunk(&batch(1, 1)).unwrap();
    let kept = r.next_chunk(None).unwrap().unwrap();
    drop(r);
    // Chunk 1's slot stays leased, so chunk 4 cannot be written; 2 and 3 can (the cursor no longer counts).
    w.write_chunk(&batch(2, 1)).unwrap();
    w.write_chunk(&batch(3, 1)).unwrap();
    assert!(matches!(
        w.write_chunk(&batch(4, 1)),
        Err(Error::ReadersBehind { .. })
    ));
    drop(kept);
    w.write_chunk(&batch(4, 1)).unwrap();
}

#[test]
fn the_first_write_waits_for_a_reader_and_without_one_says_so_and_writes_nothing() {
    let n = name("min-readers");
    let _u = Unlink(n.clone());
    let mut w = writer(&n).create().unwrap();
    // No reader within the timeout (200 ms x 2 attempts): a clear error, and nothing was written.
    match w.write_chunk(&batch(1, 2)) {
        Err(e @ Error::NoReaders { min_readers: 1, .. }) => {
            assert!(e.to_string().contains("min_readers=0"), "{e}")
        }
        other => panic!("expected NoReaders, got {other:?}"),
    }
    assert_eq!(w.next_seq(), 1);
    drop(w);
    // A reader attaching while the first write waits (either order) gets every chunk from the first.
    let n2 = n.clone();
    let reader = std::thread::spawn(move || {
        let mut r = reader(&n2)
            .open_timeout(Some(Duration::from_secs(30)))
            .open()
            .unwrap();
        seqs(&mut r)
    });
    let mut w = SharedDataStream::writer(&n)
        .config(Config::default())
        .size(1 << 20)
        .slots(3)
        .timeout(None)
        .create()
        .unwrap();
    for i in 1..=5 {
        w.write_chunk(&batch(i, 2)).unwrap();
    }
    w.finish().unwrap();
    assert_eq!(
        reader.join().unwrap(),
        [1, 2, 3, 4, 5],
        "nothing lost before the reader attached"
    );
}

#[test]
fn a_reader_started_before_its_writer_waits_for_the_name_and_times_out_saying_which() {
    let n = name("reader-first");
    let _u = Unlink(n.clone());
    match reader(&n)
        .open_timeout(Some(Duration::from_millis(100)))
        .open()
    {
        Err(Error::Arrow(e @ qadataswap_arrow::Error::NotCreated { .. })) => {
            let text = e.to_string();
            assert!(
                text.contains(&n) && text.contains("did not appear within"),
                "{text}"
            );
        }
        other => panic!("expected NotCreated, got {other:?}", other = other.err()),
    }
    let n2 = n.clone();
    let reader = std::thread::spawn(move || {
        let mut r = reader(&n2)
            .open_timeout(Some(Duration::from_secs(30)))
            .open()
            .unwrap();
        seqs(&mut r)
    });
    let mut w = writer(&n)
        .timeout(Some(Duration::from_secs(30)))
        .create()
        .unwrap();
    w.write_chunk(&batch(1, 2)).unwrap();
    w.finish().unwrap();
    assert_eq!(reader.join().unwrap(), [1]);
}
