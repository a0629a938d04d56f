//! SharedDataStream across real processes: the test binary re-executes itself with `QADS_STREAM_ROLE` naming a
//! child role. Every child has a watchdog that ends it, and the parent kills children it waits on too long.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch};
use qadataswap_stream::{
    Config, Error, SharedDataStream, StreamReaderBuilder, StreamWriterBuilder,
};
use rustix::process::Signal;

const ROLE: &str = "QADS_STREAM_ROLE";
const NAME: &str = "QADS_STREAM_NAME";
const ARG: &str = "QADS_STREAM_ARG";
const WATCHDOG: Duration = Duration::from_secs(90);

/// Send `sig` to our own child `pid` (rustix's safe kill(2)).
fn signal(pid: i32, sig: Signal) {
    let pid = rustix::process::Pid::from_raw(pid).expect("a child's pid is positive");
    rustix::process::kill_process(pid, sig).expect("signal our own child");
}

fn writer(name: &str) -> StreamWriterBuilder {
    SharedDataStream::writer(name)
        .config(Config::default())
        .timeout(Some(Duration::from_secs(20)))
        .retry_count(0)
}

fn reader(name: &str) -> StreamReaderBuilder {
    SharedDataStream::reader(name)
        .config(Config::default())
        .timeout(Some(Duration::from_secs(20)))
        .retry_count(0)
}

/// A chunk whose values all derive from its number, so a wrong, torn or repeated chunk is detectable.
fn chunk(seq: u64, rows: usize) -> RecordBatch {
    let s = seq as i64;
    let a: ArrayRef = Arc::new(Int64Array::from_iter_values(
        (0..rows as i64).map(|i| s * 1_000_003 + i),
    ));
    RecordBatch::try_from_iter([("a", a)]).unwrap()
}

fn check(b: &RecordBatch, seq: u64) {
    let a = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
    for i in 0..a.len() {
        assert_eq!(
            a.value(i),
            seq as i64 * 1_000_003 + i as i64,
            "chunk {seq} row {i}"
        );
    }
}

struct Unlink(String);
impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/dev/shm/{}", self.0));
    }
}

struct Kid {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(test: &str, role: &str, name: &str, arg: &str) -> Kid {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(NAME, name)
        .env(ARG, arg)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    Kid { child, out }
}

/// The first stdout line of `kid` containing `marker`, from the marker on (the child is killed by its own
/// watchdog if it hangs, which ends the stream).
fn expect_line(kid: &mut Kid, marker: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        if kid.out.read_line(&mut line).unwrap() == 0 {
            panic!("child exited before printing {marker}");
        }
        if let Some(at) = line.find(marker) {
            return line[at..].trim().to_owned();
        }
    }
}

/// Wait for a child to exit, killing it after the watchdog.
fn wait_exit(kid: &mut Kid) -> std::process::ExitStatus {
    let deadline = Instant::now() + WATCHDOG;
    loop {
        if let Some(st) = kid.child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = kid.child.kill();
            panic!("child {} hung: killed by the watchdog", kid.child.id());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// In a child: the role to play, with a watchdog that ends the process if it hangs.
fn role() -> Option<(String, String, String)> {
    let r = std::env::var(ROLE).ok()?;
    std::thread::spawn(|| {
        std::thread::sleep(WATCHDOG);
        eprintln!("child watchdog: exiting");
        std::process::exit(97);
    });
    Some((
        r,
        std::env::var(NAME).unwrap(),
        std::env::var(ARG).unwrap_or_default(),
    ))
}

/// Child role "read": read until the end, checking every chunk; `arg` = "expected_count,sleep_us_per_chunk".
fn read_all(name: &str, arg: &str) {
    let mut parts = arg.split(',');
    let expected: u64 = parts.next().unwrap().parse().unwrap();
    let sleep_us: u64 = parts.next().unwrap_or("0").parse().unwrap();
    let mut r = reader(name).open().unwrap();
    println!("ATTACHED");
    let mut next = 1;
    for c in r.iter_chunks() {
        let c = c.unwrap();
        assert_eq!(c.seq(), next, "chunk out of order or lost");
        check(&c.batches()[0], next);
        next += 1;
        if sleep_us > 0 {
            std::thread::sleep(Duration::from_micros(sleep_us));
        }
    }
    assert_eq!(next - 1, expected);
    println!("READ {}", next - 1);
}

fn spawn_readers(test: &str, name: &str, n: usize, arg: &str) -> Vec<Kid> {
    (0..n)
        .map(|_| {
            let mut k = spawn(test, "read", name, arg);
            expect_line(&mut k, "ATTACHED");
            k
        })
        .collect()
}

fn finish_readers(kids: &mut [Kid], expected: u64) {
    for k in kids.iter_mut() {
        assert_eq!(expect_line(k, "READ "), format!("READ {expected}"));
        assert!(wait_exit(k).success());
    }
}

#[test]
fn eight_reader_processes_each_get_all_10000_chunks_once_and_in_order() {
    const TEST: &str = "eight_reader_processes_each_get_all_10000_chunks_once_and_in_order";
    if let Some((r, name, arg)) = role() {
        assert_eq!(r, "read");
        return read_all(&name, &arg);
    }
    let name = format!("qads-stp-8r-{}", std::process::id());
    let _u = Unlink(name.clone());
    let mut w = writer(&name).size(1 << 20).slots(8).create().unwrap();
    let mut kids = spawn_readers(TEST, &name, 8, "10000,0");
    assert_eq!(w.wait_for_readers(8, WATCHDOG).unwrap(), 8);
    let t0 = Instant::now();
    for seq in 1..=10_000 {
        assert_eq!(w.write_chunk(&chunk(seq, 8)).unwrap().seq, seq);
    }
    w.finish().unwrap();
    eprintln!(
        "10000 chunks to 8 readers in {:?}: {:?}",
        t0.elapsed(),
        w.stats()
    );
    finish_readers(&mut kids, 10_000);
}

#[test]
fn slow_reader_process_exerts_back_pressure_and_still_gets_every_chunk() {
    const TEST: &str = "slow_reader_process_exerts_back_pressure_and_still_gets_every_chunk";
    if let Some((_, name, arg)) = role() {
        return read_all(&name, &arg);
    }
    let name = format!("qads-stp-slow-{}", std::process::id());
    let _u = Unlink(name.clone());
    let mut w = writer(&name).size(1 << 20).slots(3).create().unwrap();
    let mut kids = spawn_readers(TEST, &name, 1, "300,2000");
    kids.extend(spawn_readers(TEST, &name, 1, "300,0"));
    w.wait_for_readers(2, WATCHDOG).unwrap();
    for seq in 1..=300 {
        w.write_chunk(&chunk(seq, 64)).unwrap();
    }
    w.finish().unwrap();
    finish_readers(&mut kids, 300);
    assert!(
        w.stats().lease_waits > 0,
        "a reader sleeping 2 ms a chunk must make the writer wait: {:?}",
        w.stats()
    );
}

#[test]
fn reader_process_killed_mid_stream_stops_holding_the_writer_back() {
    const TEST: &str = "reader_process_killed_mid_stream_stops_holding_the_writer_back";
    if let Some((_, name, _)) = role() {
        // Read one chunk, keep it, never read again.
        let mut r = reader(&name).open().unwrap();
        let kept = r.next_chunk(None).unwrap().unwrap();
        println!("STALLED at {}", kept.seq());
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let name = format!("qads-stp-killr-{}", std::process::id());
    let _u = Unlink(name.clone());
    let mut w = writer(&name).size(1 << 20).slots(3).create().unwrap();
    let mut stalled = spawn(TEST, "stall", &name, "");
    w.wait_for_readers(1, WATCHDOG).unwrap();
    w.write_chunk(&chunk(1, 8)).unwrap();
    assert_eq!(expect_line(&mut stalled, "STALLED"), "STALLED at 1");
    w.write_chunk(&chunk(2, 8)).unwrap();
    w.write_chunk(&chunk(3, 8)).unwrap();
    // Chunk 4 needs chunk 1's slot, which the stalled reader holds: kill it while the writer waits.
    let pid = stalled.child.id();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        signal(pid as i32, Signal::KILL);
    });
    for seq in 4..=20 {
        w.write_chunk(&chunk(seq, 8)).unwrap();
    }
    killer.join().unwrap();
    assert!(w.stats().lease_waits >= 1, "{:?}", w.stats());
    assert_eq!(w.readers(), 0, "the dead reader's entry was reclaimed");
    let _ = wait_exit(&mut stalled);
}

#[test]
fn writer_process_killed_mid_stream_is_reported_as_writer_died_after_the_drain() {
    const TEST: &str =
        "writer_process_killed_mid_stream_is_reported_as_writer_died_after_the_drain";
    if let Some((_, name, _)) = role() {
        // Written before any reader attaches (the ring holds all 5): a broadcast, min_readers 0.
        let mut w = writer(&name)
            .size(1 << 20)
            .slots(8)
            .min_readers(0)
            .create()
            .unwrap();
        for seq in 1..=5 {
            w.write_chunk(&chunk(seq, 8)).unwrap();
        }
        println!("WROTE 5");
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let name = format!("qads-stp-killw-{}", std::process::id());
    let _u = Unlink(name.clone());
    let mut writer = spawn(TEST, "write", &name, "");
    assert_eq!(expect_line(&mut writer, "WROTE"), "WROTE 5");
    let mut r = reader(&name).open().unwrap();
    let pid = writer.child.id();
    signal(pid as i32, Signal::KILL);
    let _ = wait_exit(&mut writer);
    let mut seqs = Vec::new();
    let end = loop {
        match r.next_chunk(None) {
            Ok(Some(c)) => {
                check(&c.batches()[0], c.seq());
                seqs.push(c.seq());
            }
            Ok(None) => panic!("a killed writer must not look like a clean end"),
            Err(e) => break e,
        }
    };
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    match &end {
        Error::WriterDied {
            pid: p, delivered, ..
        } => assert_eq!((*p, *delivered), (pid, 5)),
        other => panic!("expected WriterDied, got {other}"),
    }
}

#[test]
fn a_finished_stream_keeps_its_name_until_readers_of_other_processes_have_read_its_end() {
    const TEST: &str =
        "a_finished_stream_keeps_its_name_until_readers_of_other_processes_have_read_its_end";
    if let Some((_, name, arg)) = role() {
        read_all(&name, &arg);
        return;
    }
    let name = format!("qads-stp-linger-{}", std::process::id());
    let _u = Unlink(name.clone());
    let mut w = writer(&name)
        .linger(Duration::from_secs(60))
        .create()
        .unwrap();
    let mut child = spawn(TEST, "read", &name, "3");
    expect_line(&mut child, "ATTACHED");
    // Stop the reader (attached, positioned at chunk 1) before it reads anything: finish must keep the name for it.
    let pid = child.child.id() as i32;
    signal(pid, Signal::STOP);
    // SIGSTOP takes effect asynchronously: wait until every thread of the child is stopped.
    let stopped = || {
        std::fs::read_dir(format!("/proc/{pid}/task")).is_ok_and(|tasks| {
            tasks.flatten().all(|t| {
                std::fs::read_to_string(t.path().join("stat")).is_ok_and(|st| {
                    st.rsplit(')')
                        .next()
                        .is_some_and(|rest| rest.trim_start().starts_with('T'))
                })
            })
        })
    };
    while !stopped() {
        std::thread::yield_now();
    }
    for seq in 1..=3 {
        w.write_chunk(&chunk(seq, 8)).unwrap();
    }
    let finisher = std::thread::spawn(move || {
        w.finish().unwrap();
    });
    loop {
        let state = qadataswap_arrow::inspect::inspect(&name)
            .expect("the name must stay while its reader has not read the end")
            .header
            .state;
        if state == qadataswap_arrow::layout::state::FINISHED {
            break;
        }
        std::thread::yield_now();
    }
    // Finished, the reader has not read the end: the name is still there, and a late reader attaching by name now
    // drains what the ring holds.
    let mut late = reader(&name)
        .open_timeout(Some(Duration::ZERO))
        .open()
        .unwrap();
    let got: Vec<u64> = late.iter_chunks().map(|c| c.unwrap().seq()).collect();
    assert_eq!(got, [1, 2, 3]);
    signal(pid, Signal::CONT);
    assert_eq!(expect_line(&mut child, "READ "), "READ 3");
    assert!(wait_exit(&mut child).success());
    finisher.join().unwrap();
    assert!(
        !std::path::Path::new(&format!("/dev/shm/{name}")).exists(),
        "unlinked once the reader of another process read the end"
    );
}
