//! Crash safety with real processes: the test binary re-executes itself with `QADS_ARROW_ROLE` naming a child role.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch};
use qadataswap_arrow::{Error, Frame, SnapshotReader, SnapshotWriter};

mod common;
use common::{child, expect_line, kill, role, Unlink};

/// A frame whose every value is derived from its sequence number, so a torn frame is detectable.
fn consistent_batch(seq: i64, rows: usize) -> RecordBatch {
    let a: ArrayRef = Arc::new(Int64Array::from_iter_values(
        (0..rows as i64).map(|i| seq * 1_000_003 + i),
    ));
    let b: ArrayRef = Arc::new(Int64Array::from_iter_values(
        (0..rows as i64).map(|i| (seq * 1_000_003 + i) ^ 0x5555),
    ));
    RecordBatch::try_from_iter([("a", a), ("b", b)]).unwrap()
}

/// Panics if the frame is not one whole consistent batch; returns its seq tag.
fn check_consistent(f: &Frame) -> i64 {
    let b = &f.batches()[0];
    let a = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
    let c = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
    let tag = a.value(0) / 1_000_003;
    for i in 0..a.len() {
        assert_eq!(
            a.value(i),
            tag * 1_000_003 + i as i64,
            "torn frame: column a row {i}"
        );
        assert_eq!(
            c.value(i),
            a.value(i) ^ 0x5555,
            "torn frame: column b row {i}"
        );
    }
    tag
}

/// Child roles live inside this test so that `--exact` selects them.
#[test]
fn child_roles() {
    let Some((role, name)) = role() else { return };
    match role.as_str() {
        "writer-forever" => {
            // Take over (or create), then write consistent frames as fast as possible until killed.
            let mut w = loop {
                match SnapshotWriter::builder(&name)
                    .size(3 << 20)
                    .persistent(true)
                    .create()
                {
                    Ok(w) => break w,
                    Err(Error::WriterAlive { .. }) => std::thread::sleep(Duration::from_millis(5)),
                    Err(e) => panic!("{e}"),
                }
            };
            println!("WRITING gen={}", w.generation());
            let mut seq = w.next_seq() as i64;
            loop {
                w.write(&consistent_batch(seq, 20_000)).unwrap();
                seq += 1;
            }
        }
        "reader-read-once" => {
            let r = SnapshotReader::open(&name).unwrap();
            let f = r.read_timeout(Duration::from_secs(10)).unwrap();
            println!(
                "READ seq={} tag={} copies={}",
                f.seq(),
                check_consistent(&f),
                r.stats().copies
            );
        }
        "reader-hold" => {
            let r = SnapshotReader::open(&name).unwrap();
            let mut held = Vec::new();
            for _ in 0..2 {
                held.push(r.read_next(Some(Duration::from_secs(10))).unwrap());
            }
            println!("HOLDING {}", held.len());
            std::thread::sleep(Duration::from_secs(60));
        }
        other => panic!("unknown role {other}"),
    }
    std::process::exit(0);
}

#[test]
fn a_reader_in_another_process_reads_the_frame_without_a_copy() {
    if role().is_some() {
        return;
    }
    let name = format!("qads-p-read-{}", std::process::id());
    let mut w = SnapshotWriter::create(&name, 3 << 20).unwrap();
    w.write(&consistent_batch(42, 1000)).unwrap();
    let mut c = child("reader-read-once", &name, "child_roles");
    let line = expect_line(&mut c, "READ");
    assert_eq!(line, "READ seq=1 tag=42 copies=0");
    assert!(c.wait().unwrap().success());
}

#[test]
fn reader_never_sees_a_torn_frame_when_the_writer_is_killed_and_a_new_writer_takes_over() {
    if role().is_some() {
        return;
    }
    let name = format!("qads-p-kill-{}", std::process::id());
    let _g = Unlink(name.clone());
    let mut writer = child("writer-forever", &name, "child_roles");
    expect_line(&mut writer, "WRITING");
    let r = SnapshotReader::open(&name).unwrap();
    let mut last_gen_line;
    let mut reads = 0u64;
    // 12 kill/takeover cycles normally; `cargo xtask test --soak` (QADATASWAP_SOAK=1) runs the R15 soak: 1,000.
    let cycles: u64 = if std::env::var_os("QADATASWAP_SOAK").is_some() {
        1000
    } else {
        12
    };
    for cycle in 0..cycles {
        // Read while the writer runs, then kill it at an arbitrary point of a write.
        let until = Instant::now() + Duration::from_millis(30 + (cycle * 17) % 50);
        while Instant::now() < until {
            let f = r.read_timeout(Duration::from_secs(5)).unwrap();
            check_consistent(&f);
            reads += 1;
        }
        kill(&mut writer);
        // Readers keep seeing the last committed frame.
        let f = r
            .try_read()
            .unwrap()
            .expect("a committed frame survives the writer's death");
        let tag = check_consistent(&f);
        drop(f);
        match r.read_next(Some(Duration::from_secs(5))) {
            Err(Error::WriterDied { .. }) | Err(Error::WriterClosed { .. }) => {}
            Ok(f) => {
                check_consistent(&f);
            }
            Err(e) => panic!("unexpected {e}"),
        }
        // A new writer takes over (a live-looking dead writer would keep it retrying until the watchdog in
        // expect_line fails the test; how fast takeover is belongs to the benches, not to a test).
        writer = child("writer-forever", &name, "child_roles");
        last_gen_line = expect_line(&mut writer, "WRITING");
        let gen: u64 = last_gen_line
            .trim_start_matches("WRITING gen=")
            .parse()
            .unwrap();
        assert_eq!(gen, cycle + 2, "each takeover bumps the generation");
        let f = r.read_next(Some(Duration::from_secs(5))).unwrap();
        assert!(
            check_consistent(&f) > tag,
            "frames continue after the takeover"
        );
    }
    kill(&mut writer);
    assert!(reads > cycles);
}

#[test]
fn a_reader_killed_while_holding_leases_does_not_wedge_the_writer() {
    if role().is_some() {
        return;
    }
    let name = format!("qads-p-hold-{}", std::process::id());
    let mut w = SnapshotWriter::builder(&name)
        .size(3 << 20)
        .slots(3)
        .lease_timeout(Duration::from_secs(3))
        .create()
        .unwrap();
    w.write(&consistent_batch(1, 100)).unwrap();
    let mut c = child("reader-hold", &name, "child_roles");
    std::thread::sleep(Duration::from_millis(100));
    w.write(&consistent_batch(2, 100)).unwrap();
    w.write(&consistent_batch(3, 100)).unwrap();
    expect_line(&mut c, "HOLDING");
    kill(&mut c);
    // The dead reader's leases would block every slot but the published one: without reclaim the writes below
    // fail with AllSlotsLeased after the lease timeout.
    for seq in 4..10 {
        w.write(&consistent_batch(seq, 100)).unwrap();
    }
    let table = w.shared().lease_table();
    assert!(
        (0..3).all(|slot| table.holders(slot).is_empty()),
        "the dead reader's leases were reclaimed"
    );
}

#[test]
fn a_reader_inherited_through_fork_refuses_to_work_in_the_child() {
    if role().is_some() {
        return;
    }
    let name = format!("qads-p-fork-{}", std::process::id());
    let mut w = SnapshotWriter::create(&name, 1 << 20).unwrap();
    w.write(&consistent_batch(1, 10)).unwrap();
    let r = SnapshotReader::open(&name).unwrap();
    // SAFETY: the child only calls async-signal-safe-enough code paths of this library that do not take locks held
    // by other threads (the test harness thread is idle in wait), then _exits without unwinding.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let ok = matches!(r.try_read(), Err(Error::Forked { .. }))
            && matches!(w.write(&consistent_batch(2, 10)), Err(Error::Forked { .. }));
        // SAFETY: _exit is always safe to call; it skips destructors that belong to the parent.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child did not get Forked errors"
    );
    // The parent's objects still work.
    assert_eq!(r.read().unwrap().seq(), 1);
    w.write(&consistent_batch(3, 10)).unwrap();
}
