//! `chunks_async` / `next_chunk_async`: an async stream of chunks for any executor (driven here by a ten-line
//! `block_on` of our own, no runtime), with no thread per reader and nothing held by a dropped wait. Ordering and
//! completion are asserted, never wall-clock times; every wait has a watchdog.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch};
use futures_core::Stream;
use qadataswap_stream::{
    Config, Error, SharedDataStream, StreamReaderBuilder, StreamWriterBuilder,
};

struct Unpark(std::thread::Thread, AtomicBool);
impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.1.store(true, Ordering::Release);
        self.0.unpark();
    }
}

/// Drive `f` on this thread: poll, park until woken, poll again. Counts the polls (each is a wake-up).
fn block_on<F: Future>(f: F) -> (F::Output, u64) {
    let mut f = std::pin::pin!(f);
    let unpark = Arc::new(Unpark(std::thread::current(), AtomicBool::new(false)));
    let waker = Waker::from(Arc::clone(&unpark));
    let mut cx = Context::from_waker(&waker);
    let mut polls = 0;
    loop {
        polls += 1;
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return (v, polls);
        }
        while !unpark.1.swap(false, Ordering::AcqRel) {
            std::thread::park_timeout(Duration::from_secs(60)); // watchdog: a lost wake-up fails below
        }
    }
}

fn next<S: Stream + Unpin>(s: &mut S) -> impl Future<Output = Option<S::Item>> + '_ {
    std::future::poll_fn(move |cx| Pin::new(&mut *s).poll_next(cx))
}

fn writer(name: &str) -> StreamWriterBuilder {
    SharedDataStream::writer(name)
        .config(Config::default())
        .timeout(Some(Duration::from_secs(30)))
        .retry_count(0)
        .min_readers(0)
}

fn reader(name: &str) -> StreamReaderBuilder {
    SharedDataStream::reader(name)
        .config(Config::default())
        .timeout(Some(Duration::from_secs(30)))
        .retry_count(0)
}

fn unique(tag: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "qads-sta-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn chunk(seq: u64) -> RecordBatch {
    let a: ArrayRef = Arc::new(Int64Array::from_iter_values(
        (0..4).map(|i| seq as i64 * 10 + i),
    ));
    RecordBatch::try_from_iter([("a", a)]).unwrap()
}

fn value(b: &RecordBatch) -> i64 {
    b.column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0)
}

fn reactor_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|c| c.trim() == "qadataswap-reac")
        .count()
}

fn leases(r: &qadataswap_stream::StreamReader) -> u32 {
    let att = r.core().attachment();
    (0..att.shared().geometry().slot_count)
        .map(|s| att.entry().lease_count(s))
        .sum()
}

#[test]
fn an_async_reader_gets_every_chunk_in_order_while_a_writer_thread_is_held_back_by_it() {
    let name = unique("order");
    let mut w = writer(&name).size(1 << 16).slots(3).create().unwrap();
    let mut r = reader(&name).open().unwrap();
    let writer = std::thread::spawn(move || {
        for seq in 1..=500 {
            w.write_chunk(&chunk(seq)).unwrap();
        }
        w.finish().unwrap();
    });
    let (got, polls) = block_on(async {
        let mut s = r.chunks_async();
        let mut got = Vec::new();
        while let Some(c) = next(&mut s).await {
            let c = c.unwrap();
            assert_eq!(c.seq(), got.len() as u64 + 1, "out of order or lost");
            got.push(value(&c.batches()[0]));
        }
        got
    });
    writer.join().unwrap();
    assert_eq!(got, (1..=500).map(|s| s * 10).collect::<Vec<_>>());
    assert!(r.is_finished());
    assert!(polls >= 1);
    assert!(
        reactor_threads() <= 1,
        "one reactor thread per process, whatever the number of readers"
    );
}

#[test]
fn many_pending_async_reads_share_one_reactor_thread_and_all_complete() {
    let names: Vec<String> = (0..40).map(|_| unique("many")).collect();
    let mut writers: Vec<_> = names
        .iter()
        .map(|n| writer(n).size(1 << 16).create().unwrap())
        .collect();
    let mut readers: Vec<_> = names.iter().map(|n| reader(n).open().unwrap()).collect();
    // All 40 reads pending at once in one task (a join by hand), then every writer publishes.
    let publish = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50)); // lets the reads register first (either order is correct)
        for (i, w) in writers.iter_mut().enumerate() {
            w.write_chunk(&chunk(i as u64 + 1)).unwrap();
        }
        writers
    });
    let (values, _) = block_on(async {
        let mut futs: Vec<_> = readers
            .iter_mut()
            .map(|r| Box::pin(r.next_chunk_async()))
            .collect();
        let mut out = vec![None; futs.len()];
        std::future::poll_fn(|cx| {
            for (i, f) in futs.iter_mut().enumerate() {
                if out[i].is_none() {
                    if let Poll::Ready(c) = f.as_mut().poll(cx) {
                        out[i] = Some(value(&c.unwrap().unwrap().batches()[0]));
                    }
                }
            }
            if out.iter().all(Option::is_some) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        out
    });
    drop(publish.join().unwrap());
    assert_eq!(values, (1..=40).map(|s| Some(s * 10)).collect::<Vec<_>>());
    // Other tests run in parallel threads of this process, so count the library's threads by name: the reactor,
    // and nothing else (a waiter per read would show up here).
    let ours: Vec<String> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|c| c.trim().to_owned())
        .filter(|c| c.starts_with("qadataswap"))
        .collect();
    assert_eq!(
        ours,
        ["qadataswap-reac"],
        "one reactor thread, no thread per pending read"
    );
}

#[test]
fn a_dropped_pending_read_holds_nothing_and_the_next_read_gets_the_chunk() {
    let name = unique("drop");
    let mut w = writer(&name).size(1 << 16).create().unwrap();
    let mut r = reader(&name).open().unwrap();
    {
        let mut f = Box::pin(r.next_chunk_async());
        let waker = Waker::noop();
        assert!(f
            .as_mut()
            .poll(&mut Context::from_waker(waker))
            .is_pending());
    } // dropped while registered
    w.write_chunk(&chunk(1)).unwrap();
    assert_eq!(leases(&r), 0);
    let (c, _) = block_on(r.next_chunk_async());
    assert_eq!(value(&c.unwrap().unwrap().batches()[0]), 10);
}

#[test]
fn the_async_stream_reports_a_timeout_and_a_closed_writer_as_errors_and_then_ends() {
    let name = unique("timeout");
    let w = writer(&name).size(1 << 16).create().unwrap();
    let mut r = reader(&name)
        .timeout(Some(Duration::from_millis(150)))
        .open()
        .unwrap();
    let (e, _) = block_on(r.next_chunk_async());
    assert!(matches!(e, Err(Error::Timeout { .. })), "{e:?}");

    let mut r = reader(&name).open().unwrap();
    let closer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        drop(w); // a close without finish()
    });
    let (items, _) = block_on(async {
        let mut s = r.chunks_async();
        let first = next(&mut s).await;
        let after = next(&mut s).await;
        (first, after)
    });
    closer.join().unwrap();
    assert!(
        matches!(items.0, Some(Err(Error::WriterClosed { .. }))),
        "{:?}",
        items.0
    );
    assert!(items.1.is_none(), "an error ends the stream");
}
