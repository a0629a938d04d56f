//! `StreamFollower`: a stream viewer that the writer never waits for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_schema::SchemaRef;
use qadataswap_arrow::{Error, ReaderOptions, WriterOptions};
use qadataswap_stream::protocol::{
    ChunkWrite, FollowEvent, StartAt, StreamFollower, StreamWriterCore,
};

fn name(tag: &str) -> String {
    format!("qads-follow-{}-{tag}", std::process::id())
}

fn chunk(k: i64) -> (SchemaRef, RecordBatch) {
    let a: ArrayRef = Arc::new(Int64Array::from_iter_values(k * 10..k * 10 + 10));
    let b = RecordBatch::try_from_iter([("v", a)]).unwrap();
    (b.schema(), b)
}

fn two_slot_writer(name: &str) -> StreamWriterCore {
    StreamWriterCore::create(
        name,
        WriterOptions {
            size: 1 << 20,
            num_buffers: 2,
            spin: 0,
            ..WriterOptions::default()
        },
    )
    .unwrap()
}

/// Write chunk `k` without waiting at all: it must go through at once.
fn write_now(w: &mut StreamWriterCore, k: i64) {
    let (schema, b) = chunk(k);
    match w.write_chunk(&schema, &[b], Instant::now()).unwrap() {
        ChunkWrite::Written(_) => {}
        ChunkWrite::Blocked { laggards, .. } => {
            panic!("chunk {k} was held back by {laggards:?}; a follower must never hold the writer back")
        }
    }
}

fn next(f: &mut StreamFollower) -> FollowEvent {
    f.next(Some(Duration::from_secs(30))).unwrap()
}

#[test]
fn a_follower_that_never_reads_does_not_hold_the_writer_back_and_later_reports_the_skip() {
    let n = name("idle");
    let mut w = two_slot_writer(&n);
    let mut f = StreamFollower::open(&n, &ReaderOptions::default(), StartAt::Oldest).unwrap();
    assert_eq!(f.cursor(), 1);
    for k in 1..=10 {
        assert!(w.laggards(w.next_chunk_seq()).is_empty());
        write_now(&mut w, k);
    }
    assert_eq!(w.stats().lease_waits, 0, "the writer never waited");
    assert_eq!(
        w.readers(),
        0,
        "a follower is not a reader the writer waits for"
    );
    match next(&mut f) {
        FollowEvent::Skipped { from: 1, to: 8 } => {}
        other => panic!("expected chunks 1..=8 skipped, got {other:?}"),
    }
    for k in 9..=10u64 {
        match next(&mut f) {
            FollowEvent::Chunk(c) => {
                assert_eq!(c.seq(), k);
                let v = c.batches()[0]
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap();
                assert_eq!(v.value(0), k as i64 * 10);
            }
            other => panic!("expected chunk {k}, got {other:?}"),
        }
    }
    write_now(&mut w, 11);
    assert!(matches!(next(&mut f), FollowEvent::Chunk(c) if c.seq() == 11));
    w.finish().unwrap();
    assert!(matches!(next(&mut f), FollowEvent::End));
    assert!(
        matches!(next(&mut f), FollowEvent::End),
        "the end is sticky"
    );
}

#[test]
fn a_slow_follower_sees_every_chunk_once_or_as_skipped_in_order_and_then_the_end() {
    let n = name("slow");
    let mut w = two_slot_writer(&n);
    let mut f = StreamFollower::open(&n, &ReaderOptions::default(), StartAt::Oldest).unwrap();
    const LAST: u64 = 300;
    let writer = std::thread::spawn(move || {
        for k in 1..=LAST as i64 {
            let (schema, b) = chunk(k);
            // Generous deadline: the follower may only delay a write by the time it takes to copy one chunk.
            match w
                .write_chunk(&schema, &[b], Instant::now() + Duration::from_secs(10))
                .unwrap()
            {
                ChunkWrite::Written(_) => {}
                ChunkWrite::Blocked { laggards, .. } => panic!("held back by {laggards:?}"),
            }
        }
        w.finish().unwrap();
        w
    });
    let mut expect = 1u64;
    let (mut chunks, mut skips) = (0u64, 0u64);
    loop {
        match next(&mut f) {
            FollowEvent::Chunk(c) => {
                assert_eq!(c.seq(), expect);
                expect += 1;
                chunks += 1;
                // A slow consumer: the writer runs on meanwhile.
                std::thread::sleep(Duration::from_millis(3));
            }
            FollowEvent::Skipped { from, to } => {
                assert_eq!(from, expect);
                assert!(to >= from);
                expect = to + 1;
                skips += 1;
            }
            FollowEvent::End => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    let w = writer.join().unwrap();
    assert_eq!(
        expect,
        LAST + 1,
        "every chunk was returned or reported skipped"
    );
    assert!(chunks > 0);
    assert_eq!(w.stats().timeouts, 0);
    eprintln!(
        "chunks {chunks}, skips {skips}, writer lease waits {}",
        w.stats().lease_waits
    );
}

#[test]
fn a_follower_drains_then_reports_a_writer_that_closed_without_finishing() {
    let n = name("closed");
    let mut w = two_slot_writer(&n);
    write_now(&mut w, 1);
    let mut f = StreamFollower::open(&n, &ReaderOptions::default(), StartAt::Newest).unwrap();
    write_now(&mut w, 2);
    drop(w);
    assert!(matches!(next(&mut f), FollowEvent::Chunk(c) if c.seq() == 1));
    assert!(matches!(next(&mut f), FollowEvent::Chunk(c) if c.seq() == 2));
    match f.next(Some(Duration::from_secs(30))) {
        Err(Error::WriterClosed { .. }) => {}
        other => panic!("expected WriterClosed, got {other:?}"),
    }
}

#[test]
fn a_follower_times_out_when_nothing_is_published() {
    let n = name("quiet");
    let _w = two_slot_writer(&n);
    let mut f = StreamFollower::open(&n, &ReaderOptions::default(), StartAt::Newest).unwrap();
    assert_eq!(f.cursor(), 1);
    assert!(matches!(
        f.next(Some(Duration::from_millis(50))),
        Err(Error::Timeout { .. })
    ));
    assert_eq!(f.stats().timeouts, 1);
}
