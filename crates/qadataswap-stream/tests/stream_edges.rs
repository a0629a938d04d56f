//! Stream protocol corners found in review: a lease left in an entry that was reclaimed under a live reader, and
//! a reader that polls (never waits) while a writer sleeps on a full ring.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_schema::SchemaRef;
use qadataswap_arrow::{ReaderOptions, WriterOptions};
use qadataswap_stream::protocol::{ChunkWrite, Poll, StartAt, StreamReaderCore, StreamWriterCore};

fn name(tag: &str) -> String {
    format!("qads-edges-{}-{tag}", std::process::id())
}

fn chunk(k: i64) -> (SchemaRef, RecordBatch) {
    let a: ArrayRef = Arc::new(Int64Array::from_iter_values(k * 10..k * 10 + 10));
    let b = RecordBatch::try_from_iter([("v", a)]).unwrap();
    (b.schema(), b)
}

fn writer(name: &str, slots: usize) -> StreamWriterCore {
    StreamWriterCore::create(
        name,
        WriterOptions {
            size: 1 << 20,
            num_buffers: slots,
            spin: 0,
            ..WriterOptions::default()
        },
    )
    .unwrap()
}

fn write(w: &mut StreamWriterCore, k: i64, within: Duration) -> ChunkWrite {
    let (schema, b) = chunk(k);
    w.write_chunk(&schema, &[b], Instant::now() + within)
        .unwrap()
}

/// Fails the test (instead of hanging it) if the body runs past `limit`.
fn watchdog(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("watchdog: the test ran past {limit:?}");
        std::process::exit(101);
    });
}

#[test]
fn a_lease_left_in_a_reclaimed_entry_holds_the_writer_only_until_its_deadline() {
    watchdog(Duration::from_secs(60));
    let n = name("reclaimed");
    let mut w = writer(&n, 2);
    let mut r = StreamReaderCore::open(&n, &ReaderOptions::default(), StartAt::Oldest).unwrap();
    // The reader's entry is reclaimed while it lives (as when the writer cannot see its pid), and it goes on
    // leasing through it.
    r.attachment().entry().unregister();
    assert!(matches!(
        write(&mut w, 1, Duration::from_secs(5)),
        ChunkWrite::Written(_)
    ));
    let held = match r.try_next().unwrap() {
        Poll::Chunk(f) => f,
        _ => panic!("chunk 1 was published"),
    };
    assert!(matches!(
        write(&mut w, 2, Duration::from_secs(5)),
        ChunkWrite::Written(_)
    ));
    // Chunk 3 needs chunk 1's slot, leased through the free entry: the writer must count that lease and give up
    // at its deadline (it used to spin past it, the pre-check and the claim disagreeing about free entries).
    match write(&mut w, 3, Duration::from_millis(200)) {
        ChunkWrite::Blocked { chunk, slot, .. } => assert_eq!((chunk, slot), (3, 0)),
        ChunkWrite::Written(_) => panic!("chunk 3 overwrote a slot that is still leased"),
    }
    drop(held);
    assert!(matches!(
        write(&mut w, 3, Duration::from_secs(5)),
        ChunkWrite::Written(_)
    ));
}

#[test]
fn a_polling_reader_holding_most_of_the_ring_still_gets_every_chunk_in_order() {
    watchdog(Duration::from_secs(120));
    let n = name("polling");
    let mut w = writer(&n, 4);
    let mut r = StreamReaderCore::open(&n, &ReaderOptions::default(), StartAt::Oldest).unwrap();
    let total = 60i64;
    let producer = std::thread::spawn(move || {
        for k in 1..=total {
            match write(&mut w, k, Duration::from_secs(30)) {
                ChunkWrite::Written(_) => {}
                ChunkWrite::Blocked { laggards, .. } => panic!("chunk {k} blocked by {laggards:?}"),
            }
        }
        w.finish().unwrap();
    });
    // Keep the last 3 chunks of a 4-slot ring alive and only ever poll: the writer parks on the full ring, and
    // this reader's releases alone are never "due" (it always leases the next slots); its polls must wake it.
    let mut window = std::collections::VecDeque::new();
    let mut next = 1i64;
    loop {
        match r.try_next().unwrap() {
            Poll::Chunk(f) => {
                let v = f.batches()[0]
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .value(0);
                assert_eq!(v, next * 10, "chunk {next} out of order");
                next += 1;
                window.push_back(f);
                if window.len() > 3 {
                    window.pop_front();
                }
            }
            Poll::Pending => std::thread::yield_now(),
            Poll::End => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(next, total + 1);
    producer.join().unwrap();
}

/// Writes `value` at header field `field` of segment `name`'s file, as a hostile process would.
fn poke(name: &str, field: &str, value: u64) {
    use std::os::unix::fs::FileExt;
    let at = qadataswap_arrow::format::header_field(field)
        .expect("a FORMAT.md header field")
        .offset;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("{}/{name}", qadataswap_shm::SHM_DIR))
        .unwrap();
    f.write_all_at(&value.to_le_bytes(), at as u64).unwrap();
}

#[test]
fn a_stream_head_and_tail_at_the_top_of_the_range_are_refused_as_a_protocol_error_not_a_panic() {
    watchdog(Duration::from_secs(60));
    let n = name("top");
    let mut w = writer(&n, 2);
    assert!(matches!(
        write(&mut w, 1, Duration::from_secs(5)),
        ChunkWrite::Written(_)
    ));
    poke(&n, "stream_head", u64::MAX);
    poke(&n, "stream_tail", u64::MAX);
    let opts = ReaderOptions {
        open_timeout: Duration::ZERO,
        ..ReaderOptions::default()
    };
    let mut r = StreamReaderCore::open(&n, &opts, StartAt::Oldest).unwrap();
    match r.try_next() {
        Err(qadataswap_arrow::Error::Protocol { what, .. }) => {
            assert!(what.contains("chunk number"), "{what}")
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
    let mut f =
        qadataswap_stream::protocol::StreamFollower::open(&n, &opts, StartAt::Oldest).unwrap();
    match f.poll() {
        Err(qadataswap_arrow::Error::Protocol { .. }) => {}
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[test]
fn a_writer_taking_over_a_stream_whose_head_is_at_the_top_of_the_range_is_refused_as_a_protocol_error(
) {
    watchdog(Duration::from_secs(60));
    let n = name("top-writer");
    let opts = WriterOptions {
        size: 1 << 20,
        num_buffers: 2,
        spin: 0,
        persistent: true,
        ..WriterOptions::default()
    };
    let mut w = StreamWriterCore::create(&n, opts.clone()).unwrap();
    assert!(matches!(
        write(&mut w, 1, Duration::from_secs(5)),
        ChunkWrite::Written(_)
    ));
    drop(w); // persistent: the name stays, the writer role is free
    poke(&n, "stream_head", u64::MAX);
    let mut w = StreamWriterCore::create(&n, opts).unwrap();
    let (schema, b) = chunk(2);
    match w.write_chunk(&schema, &[b], Instant::now() + Duration::from_secs(5)) {
        Err(qadataswap_arrow::Error::Protocol { what, .. }) => {
            assert!(what.contains("frame number"), "{what}")
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
    drop(w);
    let _ = std::fs::remove_file(format!("{}/{n}", qadataswap_shm::SHM_DIR));
}
