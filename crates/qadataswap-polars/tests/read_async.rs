//! `read_async` / `read_next_async` on tokio: ready at once when a snapshot exists, never blocks
//! the executor while waiting, and dropping a pending future leaves no lease and no thread.
//!
//! The tests run one at a time (a lock): the cancellation test counts this process' waiter
//! threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use polars_core::frame::DataFrame;
use polars_core::prelude::Column;
use qadataswap_polars::{DataFrameReader, Error, SharedDataFrame};

static SERIAL: Mutex<()> = Mutex::new(());
static NEXT: AtomicUsize = AtomicUsize::new(0);

fn unique(tag: &str) -> String {
    format!(
        "qads-pla-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn frame(x: i64) -> DataFrame {
    DataFrame::new(2, vec![Column::new("x".into(), [x, x + 1])]).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Kills the process if a test hangs (a blocked executor cannot time itself out).
fn watchdog() {
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(120));
        eprintln!("watchdog: a read_async test hung for 120 s");
        std::process::exit(101);
    });
}

fn leases(reader: &DataFrameReader) -> u32 {
    let att = reader.attachment();
    (0..att.shared().geometry().slot_count)
        .map(|slot| att.entry().lease_count(slot))
        .sum()
}

/// The library's threads in this process other than the one reactor (a thread per read, or a
/// waiter left behind by a dropped read, would show up here).
fn waiter_threads() -> usize {
    threads(|comm| comm.starts_with("qadataswap") && comm != "qadataswap-reac")
}

fn reactor_threads() -> usize {
    threads(|comm| comm == "qadataswap-reac")
}

/// This process's threads whose name (as `/proc` shows it, 15 characters at most) satisfies `which`.
fn threads(which: impl Fn(&str) -> bool) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| which(comm.trim()))
        .count()
}

#[test]
fn fifty_pending_reads_on_fifty_segments_start_no_thread_but_the_one_reactor() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    watchdog();
    let names: Vec<String> = (0..50).map(|_| unique("fifty")).collect();
    let mut writers: Vec<_> = names
        .iter()
        .map(|n| SharedDataFrame::create_writer(n, 1 << 16).unwrap())
        .collect();
    let readers: Vec<DataFrameReader> = names
        .iter()
        .map(|n| SharedDataFrame::create_reader(n).unwrap())
        .collect();
    let rt = runtime();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let publisher = std::thread::spawn(move || {
        rx.recv().unwrap();
        for (i, w) in writers.iter_mut().enumerate() {
            w.write(frame(i as i64)).unwrap();
        }
        writers
    });
    let frames = rt.block_on(async {
        let reads: Vec<_> = readers
            .iter()
            .map(|r| tokio::spawn(r.read_next_async()))
            .collect();
        // Every task runs to its first wait (one pass of the run queue each).
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        assert!(
            reads.iter().all(|t| !t.is_finished()),
            "nothing published yet"
        );
        assert_eq!(waiter_threads(), 0, "no thread per pending read");
        // The reactor names itself once it runs: wait (bounded) for that, then there must be exactly one.
        assert!(eventually(|| reactor_threads() >= 1));
        assert_eq!(reactor_threads(), 1, "one reactor for the process");
        tx.send(()).unwrap();
        let mut out = Vec::new();
        for t in reads {
            out.push(t.await.unwrap().unwrap());
        }
        out
    });
    for (i, df) in frames.iter().enumerate() {
        assert!(df.equals_missing(&frame(i as i64)), "reader {i}");
    }
    drop(frames);
    drop(publisher.join().unwrap());
    assert!(readers.iter().all(|r| leases(r) == 0));
}

/// Waits (bounded) until `done` holds; false if it never did.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    done()
}

#[test]
fn read_async_is_ready_at_once_when_a_snapshot_exists() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    watchdog();
    let name = unique("ready");
    let mut writer = SharedDataFrame::create_writer(&name, 1 << 20).unwrap();
    writer.write(frame(1)).unwrap();
    let reader = SharedDataFrame::create_reader(&name).unwrap();
    let df = runtime().block_on(reader.read_async()).unwrap();
    assert!(df.equals_missing(&frame(1)));
    assert_eq!(waiter_threads(), 0, "no thread for a read that was ready");
}

#[test]
fn read_next_async_waits_without_blocking_the_executor() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    watchdog();
    let name = unique("next");
    let mut writer = SharedDataFrame::create_writer(&name, 1 << 20).unwrap();
    writer.write(frame(1)).unwrap();
    let reader = SharedDataFrame::create_reader(&name).unwrap();
    assert!(reader.read().unwrap().equals_missing(&frame(1)));

    // The publish is triggered by another task of the same single-threaded executor: if the
    // pending read blocked the executor thread, that task could never run and nothing would
    // ever be published.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let publisher = std::thread::spawn(move || {
        rx.recv().unwrap();
        writer.write(frame(2)).unwrap();
        writer
    });
    let (read, ()) = runtime().block_on(async {
        let trigger = async {
            tokio::task::yield_now().await;
            tx.send(()).unwrap();
        };
        tokio::join!(reader.read_next_async(), trigger)
    });
    assert!(read.unwrap().equals_missing(&frame(2)));
    drop(publisher.join().unwrap());
}

#[test]
fn dropping_a_pending_read_leaves_no_lease_and_stops_its_thread() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    watchdog();
    let name = unique("cancel");
    let mut writer = SharedDataFrame::create_writer(&name, 1 << 20).unwrap();
    let reader = SharedDataFrame::create_reader(&name).unwrap();

    let rt = runtime();
    let timed_out = rt.block_on(async {
        tokio::time::timeout(Duration::from_millis(20), reader.read_async()).await
    });
    assert!(timed_out.is_err(), "nothing was published yet");
    // The future is dropped; a publish now may be picked up by its thread, which must drop it.
    writer.write(frame(3)).unwrap();
    assert!(
        eventually(|| waiter_threads() == 0),
        "the waiter thread did not exit"
    );
    assert_eq!(leases(&reader), 0);

    // Many cancelled reads in a row leave nothing behind either.
    for _ in 0..20 {
        let _ = rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(1), reader.read_next_async()).await
        });
    }
    assert!(eventually(|| waiter_threads() == 0));
    assert_eq!(leases(&reader), 0);
    // And the reader still works.
    assert!(rt
        .block_on(reader.read_async())
        .unwrap()
        .equals_missing(&frame(3)));
}

#[test]
fn read_async_reports_the_writer_closing() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    watchdog();
    let name = unique("closed");
    let writer = SharedDataFrame::create_writer(&name, 1 << 20).unwrap();
    let reader = SharedDataFrame::create_reader(&name).unwrap();
    let closer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        writer.close().unwrap();
    });
    let err = runtime().block_on(reader.read_async()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Arrow(qadataswap_arrow::Error::WriterClosed { .. })
        ),
        "{err}"
    );
    closer.join().unwrap();
}

#[test]
fn read_async_honours_the_reader_timeout() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    watchdog();
    let name = unique("timeout");
    let _writer = SharedDataFrame::create_writer(&name, 1 << 20).unwrap();
    let reader = SharedDataFrame::reader(&name)
        .timeout(Some(Duration::from_millis(120)))
        .open()
        .unwrap();
    let err = runtime().block_on(reader.read_async()).unwrap_err();
    assert!(
        matches!(err, Error::Arrow(qadataswap_arrow::Error::Timeout { .. })),
        "{err}"
    );
}

fn open_threads() -> usize {
    threads(|comm| comm == "qadataswap-open")
}

#[test]
fn create_reader_async_waits_for_the_writer_without_blocking_the_executor() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    watchdog();
    let name = unique("open");
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let writer_name = name.clone();
    // The writer starts only when the executor's other task says so: a blocked executor would never get there.
    let writer = std::thread::spawn(move || {
        rx.recv().unwrap();
        let mut w = SharedDataFrame::create_writer(&writer_name, 1 << 20).unwrap();
        w.write(frame(7)).unwrap();
        w
    });
    let reader = runtime().block_on(async {
        let open = SharedDataFrame::reader(&name)
            .open_timeout(Duration::from_secs(60))
            .open_async();
        let trigger = async {
            tokio::task::yield_now().await;
            tx.send(()).unwrap();
        };
        tokio::join!(open, trigger).0
    });
    let reader = reader.unwrap();
    assert!(runtime()
        .block_on(reader.read_async())
        .unwrap()
        .equals_missing(&frame(7)));
    drop(writer.join().unwrap());
}

#[test]
fn a_dropped_pending_open_stops_its_thread_and_attaches_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    watchdog();
    let name = unique("open-drop");
    let rt = runtime();
    let r = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_millis(50),
            SharedDataFrame::reader(&name)
                .open_timeout(Duration::from_secs(60))
                .open_async(),
        )
        .await
    });
    assert!(r.is_err(), "nobody created the name");
    assert!(
        eventually(|| open_threads() == 0),
        "the open's thread did not stop"
    );
    // The writer now finds no reader registered by the cancelled open.
    let mut w = SharedDataFrame::create_writer(&name, 1 << 20).unwrap();
    let registered = w
        .as_arrow()
        .shared()
        .lease_table()
        .registered_entries()
        .count();
    assert_eq!(registered, 0);
}

#[test]
fn create_reader_async_times_out_with_the_usual_error() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    watchdog();
    let name = unique("open-timeout");
    let err = runtime()
        .block_on(
            SharedDataFrame::reader(&name)
                .open_timeout(Duration::from_millis(100))
                .open_async(),
        )
        .unwrap_err();
    assert!(err.to_string().contains(&name), "{err}");
    assert!(
        matches!(
            err,
            Error::Arrow(qadataswap_arrow::Error::NotCreated { .. })
        ),
        "{err:?}"
    );
}
