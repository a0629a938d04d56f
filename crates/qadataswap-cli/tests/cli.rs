//! Drive the built `qadataswap` binary against real segments: a live one, one left by a SIGKILLed writer, one of an
//! incompatible version and a foreign file.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use qadataswap_arrow::{SnapshotReader, SnapshotWriter, WriterOptions};
use qadataswap_stream::protocol::{ChunkWrite, StreamWriterCore};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_qadataswap");
const ROLE: &str = "QADS_CLI_TEST_ROLE";
const ROLE_NAME: &str = "QADS_CLI_TEST_NAME";

fn name(tag: &str) -> String {
    format!("qads-cli-{}-{tag}", std::process::id())
}

/// Run the binary with a watchdog: killed (and the test failed) after 60 s.
fn run(args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn qadataswap");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        stdout.read_to_end(&mut s).unwrap();
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        stderr.read_to_end(&mut s).unwrap();
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("qadataswap {args:?} hung for 60 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&o.stdout)))
}

fn batch(n: i64) -> RecordBatch {
    let id: ArrayRef = Arc::new(Int64Array::from_iter_values(0..n));
    let label: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..n).map(|i| format!("row-{i}")),
    ));
    RecordBatch::try_from_iter([("id", id), ("label", label)]).unwrap()
}

fn shm_path(name: &str) -> String {
    format!("/dev/shm/{name}")
}

/// A child process (this test binary, re-executed) that creates a writer, writes, says READY, and is SIGKILLed.
fn killed_writer(name: &str) {
    killed_child(name, "killed-writer");
}

/// As [`killed_writer`], with the child role `role`.
fn killed_child(name: &str, role: &str) {
    let mut child: Child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_role_does_nothing_unless_spawned_by_a_test",
            "--nocapture",
        ])
        .env(ROLE, role)
        .env(ROLE_NAME, name)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.trim() == "READY" {
                let _ = tx.send(());
            }
        }
    });
    if rx.recv_timeout(Duration::from_secs(30)).is_err() {
        child.kill().unwrap();
        child.wait().unwrap();
        panic!("the writer child never became ready");
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

#[test]
fn child_process_role_does_nothing_unless_spawned_by_a_test() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let name = std::env::var(ROLE_NAME).unwrap();
    match role.as_str() {
        "killed-writer" => {
            let mut w = SnapshotWriter::create(&name, 1 << 20).unwrap();
            w.write(&batch(7)).unwrap();
            println!("READY");
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        "killed-stream-writer" => {
            let mut w = stream_writer(&name);
            let b = batch(4);
            assert!(matches!(
                w.write_chunk(&b.schema(), &[b], Instant::now()).unwrap(),
                ChunkWrite::Written(_)
            ));
            println!("READY");
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        other => panic!("unknown role {other}"),
    }
}

/// A real segment whose format_version (offset 8) was patched to 99.
fn incompatible(name: &str) {
    let mut w = SnapshotWriter::builder(name)
        .size(1 << 20)
        .persistent(true)
        .create()
        .unwrap();
    w.write(&batch(3)).unwrap();
    w.close().unwrap();
    let mut bytes = std::fs::read(shm_path(name)).unwrap();
    bytes[8..12].copy_from_slice(&99u32.to_le_bytes());
    std::fs::write(shm_path(name), bytes).unwrap();
}

/// A /dev/shm file of pseudo-random bytes.
fn foreign(name: &str) {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
    let bytes: Vec<u8> = (0..8192)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(shm_path(name), bytes).unwrap();
    std::fs::set_permissions(
        shm_path(name),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
}

fn cleanup(names: &[&str]) {
    for n in names {
        let _ = std::fs::remove_file(shm_path(n));
    }
}

fn state_in_ls<'a>(ls: &'a Value, name: &str) -> Option<&'a Value> {
    ls.as_array()?.iter().find(|s| s["name"] == name)
}

#[test]
fn ls_shows_live_dead_incompatible_and_foreign_segments_with_the_right_states() {
    let (live, dead, old, alien) = (
        name("ls-live"),
        name("ls-dead"),
        name("ls-old"),
        name("ls-alien"),
    );
    let mut w = SnapshotWriter::builder(&live)
        .size(1 << 20)
        .slots(2)
        .create()
        .unwrap();
    w.write(&batch(10)).unwrap();
    w.write(&batch(11)).unwrap();
    killed_writer(&dead);
    incompatible(&old);
    foreign(&alien);

    let o = run(&["ls", "--all", "--json"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let ls = json(&o);
    let l = state_in_ls(&ls, &live).expect("live listed");
    assert_eq!(l["state"], "live");
    assert_eq!(l["mode"], "snapshot");
    assert_eq!(l["slots"], 2);
    assert_eq!(l["last_seq"], 2);
    assert_eq!(l["writer"]["pid"], std::process::id());
    assert_eq!(l["writer"]["alive"], true);
    let d = state_in_ls(&ls, &dead).expect("dead listed");
    assert_eq!(d["state"], "stale");
    assert_eq!(d["writer"]["alive"], false);
    assert_eq!(d["last_seq"], 1);
    let v = state_in_ls(&ls, &old).expect("incompatible listed");
    assert_eq!(v["state"], "incompatible");
    assert!(v["reason"].as_str().unwrap().contains("version 99"), "{v}");
    assert_eq!(
        state_in_ls(&ls, &alien).expect("foreign listed with --all")["state"],
        "foreign"
    );

    let o = run(&["ls", "--json"]);
    assert!(
        state_in_ls(&json(&o), &alien).is_none(),
        "foreign files are hidden without --all"
    );

    let o = run(&["ls"]);
    let table = text(&o.stdout);
    assert!(table.starts_with("NAME"), "{table}");
    let line = table
        .lines()
        .find(|l| l.starts_with(&live))
        .expect("live row");
    assert!(line.contains("live") && line.contains("alive"), "{line}");
    let line = table
        .lines()
        .find(|l| l.starts_with(&dead))
        .expect("dead row");
    assert!(line.contains("dead") && line.ends_with("stale"), "{line}");
    drop(w);
    cleanup(&[&dead, &old, &alien]);
}

#[test]
fn rm_refuses_a_live_segment_and_names_the_writer_and_reader_pids() {
    let live = name("rm-live");
    let mut w = SnapshotWriter::create(&live, 1 << 20).unwrap();
    w.write(&batch(4)).unwrap();
    let o = run(&["rm", &live]);
    assert_eq!(code(&o), 4);
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("writer {}", std::process::id())),
        "{err}"
    );
    let o = run(&["rm", "--force", &live]);
    assert_eq!(code(&o), 4, "--force never removes a live segment");
    assert!(std::path::Path::new(&shm_path(&live)).exists());

    // A live reader keeps a segment whose writer died: still refused.
    let held = name("rm-reader");
    killed_writer(&held);
    let reader = SnapshotReader::open(&held).unwrap();
    let o = run(&["rm", "--force", &held]);
    assert_eq!(code(&o), 4);
    assert!(text(&o.stderr).contains(&format!("reader {}", std::process::id())));
    let o = run(&["ls", "--json"]);
    assert_eq!(
        state_in_ls(&json(&o), &held).unwrap()["state"],
        "writer-dead"
    );
    drop(reader);
    drop(w);
    cleanup(&[&held]);
}

#[test]
fn rm_and_gc_never_touch_a_foreign_or_incompatible_segment() {
    let (old, alien) = (name("keep-old"), name("keep-alien"));
    incompatible(&old);
    foreign(&alien);
    let o = run(&["rm", &alien]);
    assert_eq!(code(&o), 5);
    assert!(text(&o.stderr).contains("foreign"), "{}", text(&o.stderr));
    assert_eq!(
        code(&run(&["rm", "--force", &alien])),
        5,
        "--force never removes a foreign file"
    );
    assert_eq!(code(&run(&["rm", &old])), 5);
    // This test's own prefix: a gc over every test's prefix would race the other tests' segments.
    let o = run(&["gc", "--prefix", &name("keep-"), "--closed"]);
    assert_eq!(code(&o), 0);
    assert!(std::path::Path::new(&shm_path(&alien)).exists());
    assert!(std::path::Path::new(&shm_path(&old)).exists());
    // An incompatible segment is ours by its magic: --force may remove it.
    assert_eq!(code(&run(&["rm", "--force", &old])), 0);
    assert!(!std::path::Path::new(&shm_path(&old)).exists());
    cleanup(&[&alien]);
}

#[test]
fn gc_removes_only_the_segment_whose_writer_was_killed() {
    let (live, dead) = (name("gc-live"), name("gc-dead"));
    let mut w = SnapshotWriter::create(&live, 1 << 20).unwrap();
    w.write(&batch(5)).unwrap();
    killed_writer(&dead);

    let o = run(&["rm", &dead]);
    assert_eq!(code(&o), 4, "dead registrations need --force or gc");
    assert!(text(&o.stderr).contains("gc"), "{}", text(&o.stderr));

    let o = run(&["gc", "--prefix", &name("gc-"), "--dry-run", "--json"]);
    let report = json(&o);
    let entry = report
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == dead.as_str())
        .unwrap();
    assert_eq!(entry["action"], "would remove");
    assert!(std::path::Path::new(&shm_path(&dead)).exists());

    let o = run(&["gc", "--prefix", &name("gc-")]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let said = text(&o.stdout);
    assert!(said.contains(&format!("removed {dead}")), "{said}");
    assert!(!said.contains(&live), "{said}");
    assert!(!std::path::Path::new(&shm_path(&dead)).exists());
    assert!(std::path::Path::new(&shm_path(&live)).exists());
    assert_eq!(code(&run(&["rm", &dead])), 3, "gone now");
    drop(w);
}

#[test]
fn rm_with_force_removes_a_crashed_writers_segment() {
    let dead = name("rm-force");
    killed_writer(&dead);
    let o = run(&["rm", "--force", &dead]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("removed"));
    assert!(!std::path::Path::new(&shm_path(&dead)).exists());
}

#[test]
fn inspect_shows_header_schema_slots_and_readers_without_registering() {
    let live = name("inspect");
    let mut w = SnapshotWriter::builder(&live)
        .size(1 << 20)
        .slots(3)
        .create()
        .unwrap();
    w.write(&batch(6)).unwrap();
    let reader = SnapshotReader::open(&live).unwrap();
    let held = reader.read().unwrap();

    let o = run(&["inspect", "--json", &live]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let j = json(&o);
    assert_eq!(j["state"], "live");
    assert_eq!(j["header"]["format_version"], 2);
    assert_eq!(j["header"]["published_seq"], 1);
    assert_eq!(j["header"]["slot_count"], 3);
    assert_eq!(j["schema"][0]["name"], "id");
    assert_eq!(j["schema"][0]["data_type"], "Int64");
    assert_eq!(j["schema"][1]["name"], "label");
    let slots = j["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 3);
    assert_eq!(slots[0]["state"], "committed");
    assert_eq!(slots[0]["rows"], 6);
    assert_eq!(slots[0]["leases"], 1);
    assert_eq!(slots[1]["state"], "empty");
    let readers = j["readers"].as_array().unwrap();
    assert_eq!(
        readers.len(),
        1,
        "only the test's reader; inspect never registers: {readers:?}"
    );
    assert_eq!(readers[0]["pid"], std::process::id());
    assert_eq!(readers[0]["leases"][0], serde_json::json!([0, 1]));

    let o = run(&["inspect", &live]);
    let t = text(&o.stdout);
    for want in [
        "segment",
        "live",
        "schema (version 1)",
        "label",
        "Utf8",
        "committed",
        "slot 0 x1",
    ] {
        assert!(t.contains(want), "missing {want:?} in\n{t}");
    }
    drop(held);
    drop(reader);

    assert_eq!(code(&run(&["inspect", &name("nope")])), 3);
    let alien = name("inspect-alien");
    foreign(&alien);
    let o = run(&["inspect", "--json", &alien]);
    assert_eq!(code(&o), 5);
    assert_eq!(json(&o)["state"], "foreign");
    drop(w);
    cleanup(&[&alien]);
}

#[test]
fn cat_prints_the_newest_snapshot_as_a_table() {
    let live = name("cat");
    let mut w = SnapshotWriter::create(&live, 1 << 20).unwrap();
    w.write(&batch(2)).unwrap();
    w.write(&batch(50)).unwrap();
    let o = run(&["cat", &live, "--rows", "3"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let t = text(&o.stdout);
    assert!(t.contains("frame 2: 50 rows"), "{t}");
    assert!(t.contains("| row-2 "), "{t}");
    assert!(!t.contains("row-3"), "only 3 rows: {t}");
    assert!(t.contains("first 3 rows"), "{t}");
    let o = run(&["cat", &live, "--rows", "0"]);
    assert!(text(&o.stdout).contains("row-49"));

    // The dead writer's last frame is still readable.
    let dead = name("cat-dead");
    killed_writer(&dead);
    let o = run(&["cat", &dead]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("row-6"));

    let empty = name("cat-empty");
    let e = SnapshotWriter::create(&empty, 1 << 20).unwrap();
    let o = run(&["cat", &empty, "--timeout", "0.2"]);
    assert_eq!(code(&o), 6, "{}", text(&o.stderr));
    let old = name("cat-old");
    incompatible(&old);
    assert_eq!(code(&run(&["cat", &old])), 5);
    assert_eq!(code(&run(&["cat", &name("absent")])), 3);
    drop((w, e));
    cleanup(&[&dead, &old]);
}

#[test]
fn cat_follow_prints_new_frames_until_its_count() {
    let live = name("follow");
    let mut w = SnapshotWriter::builder(&live)
        .size(1 << 20)
        .slots(2)
        .create()
        .unwrap();
    w.write(&batch(1)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut n = 2;
            let deadline = Instant::now() + Duration::from_secs(60);
            // Never blocked by the follower: every write must succeed promptly even with 2 slots.
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                w.write(&batch(n))
                    .expect("the follower never holds the writer back");
                n += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            w
        })
    };
    let o = run(&[
        "cat",
        &live,
        "--follow",
        "--count",
        "3",
        "--rows",
        "1",
        "--timeout",
        "10",
    ]);
    stop.store(true, Ordering::Relaxed);
    let w = writer.join().unwrap();
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let t = text(&o.stdout);
    let frames: Vec<&str> = t.lines().filter(|l| l.starts_with("# ")).collect();
    assert_eq!(frames.len(), 3, "{t}");
    let after = run(&["inspect", "--json", &live]);
    assert!(
        json(&after)["readers"].as_array().unwrap().is_empty(),
        "the follower unregistered"
    );
    drop(w);
}

#[test]
fn usage_errors_exit_with_2_and_help_documents_the_exit_codes() {
    let o = run(&["frobnicate"]);
    assert_eq!(code(&o), 2);
    let o = run(&["--help"]);
    assert_eq!(code(&o), 0);
    let t = text(&o.stdout);
    assert!(t.contains("Exit codes") && t.contains("4  refused"), "{t}");
}

#[test]
fn bench_runs_a_small_measurement_and_prints_json() {
    let o = run(&[
        "bench", "--rows", "1000", "--iters", "3", "--pings", "20", "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let j = json(&o);
    let whats: Vec<&str> = j["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["what"].as_str().unwrap())
        .collect();
    assert!(whats.iter().any(|w| w.starts_with("write")), "{whats:?}");
    assert!(whats.iter().any(|w| w.starts_with("read()")), "{whats:?}");
    assert!(whats.iter().any(|w| w.starts_with("handoff")), "{whats:?}");
}

/// A stream writer with a tiny ring (2 slots of 2 MiB).
fn stream_writer(name: &str) -> StreamWriterCore {
    StreamWriterCore::create(
        name,
        WriterOptions {
            size: 4 << 20,
            num_buffers: 2,
            spin: 0,
            ..WriterOptions::default()
        },
    )
    .unwrap()
}

/// Write the next chunk without waiting at all: nothing may hold the writer back.
fn write_now(w: &mut StreamWriterCore, rows: i64) {
    let b = batch(rows);
    match w.write_chunk(&b.schema(), &[b], Instant::now()).unwrap() {
        ChunkWrite::Written(_) => {}
        ChunkWrite::Blocked { laggards, .. } => panic!("the writer was held back by {laggards:?}"),
    }
}

#[test]
fn cat_of_a_stream_prints_its_newest_chunk() {
    let n = name("stream-cat");
    let mut w = stream_writer(&n);
    for rows in [3, 4, 5] {
        write_now(&mut w, rows);
    }
    let o = run(&["cat", &n, "--rows", "2"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let t = text(&o.stdout);
    assert!(t.contains(&format!("# {n} chunk 3: 5 rows")), "{t}");
    assert!(t.contains("first 2 rows"), "{t}");
    assert!(t.contains("| row-1 ") && !t.contains("row-2"), "{t}");
    let after = run(&["inspect", "--json", &n]);
    assert!(
        json(&after)["readers"].as_array().unwrap().is_empty(),
        "cat unregistered"
    );
    assert_eq!(w.stats().lease_waits, 0);
    w.finish().unwrap();
}

#[test]
fn cat_follow_on_a_stream_never_holds_the_writer_back_reports_skips_and_exits_0_at_the_end() {
    let n = name("stream-follow");
    let mut w = stream_writer(&n);
    // Big chunks: printing one (all rows) takes far more than a pipe's buffer, so the follower blocks in its
    // write to stdout while the test does not read, like a paused terminal.
    const ROWS: i64 = 20_000;
    write_now(&mut w, ROWS);
    write_now(&mut w, ROWS);
    let mut child = Command::new(BIN)
        .args(["cat", &n, "--follow", "--rows", "0", "--timeout", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(90);
            while !done.load(Ordering::Relaxed) {
                if Instant::now() > deadline {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                    return true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            false
        })
    };
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    // The header is printed after the chunk was copied out and its lease released; the follower now blocks on
    // the full pipe, holding nothing.
    assert!(
        first.starts_with(&format!("# {n} chunk 2: {ROWS} rows")),
        "{first}"
    );
    for _ in 0..20 {
        write_now(&mut w, 3);
    }
    assert_eq!(
        w.stats().lease_waits,
        0,
        "the writer never waited for the follower"
    );
    w.finish().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    done.store(true, Ordering::Relaxed);
    assert!(!watchdog.join().unwrap(), "cat --follow hung");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    let headers: Vec<&str> = rest.lines().filter(|l| l.starts_with("# ")).collect();
    let want = [
        "# skipped chunks 3..20 (the follower fell behind; the writer never waits for it)"
            .to_owned(),
        format!("# {n} chunk 21: 3 rows in 1 batch(es), "),
        format!("# {n} chunk 22: 3 rows in 1 batch(es), "),
        format!("# {n}: end of stream"),
    ];
    assert_eq!(headers.len(), want.len(), "{rest}");
    for (got, want) in headers.iter().zip(&want) {
        assert!(
            got.starts_with(want.as_str()),
            "{got:?} should start with {want:?}"
        );
    }
}

#[test]
fn cat_follow_on_a_stream_exits_1_when_the_writer_dies() {
    let n = name("stream-dead");
    killed_child(&n, "killed-stream-writer");
    let o = run(&["cat", &n, "--follow", "--timeout", "30"]);
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains(&format!("# {n} chunk 1: 4 rows")));
    assert!(text(&o.stderr).contains("died"), "{}", text(&o.stderr));
    cleanup(&[&n]);
}

#[test]
fn ls_gc_and_rm_never_claim_another_applications_zero_filled_file() {
    // `head -c 65536 /dev/zero > /dev/shm/otherapp-pool`, aged by an hour: not ours, whatever its bytes.
    let other = name("otherapp-pool");
    std::fs::write(shm_path(&other), vec![0u8; 65536]).unwrap();
    std::fs::File::options()
        .write(true)
        .open(shm_path(&other))
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    let o = run(&["ls", "--all", "--json"]);
    let listed = json(&o);
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == other.as_str())
        .expect("ls --all lists it");
    assert_eq!(entry["state"], "foreign", "{entry}");
    // Its own name as the prefix: a gc over every test's prefix would race the other tests' dead segments.
    let o = run(&["gc", "--prefix", &other]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(!text(&o.stdout).contains(&other), "{}", text(&o.stdout));
    assert_eq!(code(&run(&["rm", "--force", &other])), 5);
    assert_eq!(std::fs::read(shm_path(&other)).unwrap(), vec![0u8; 65536]);
    cleanup(&[&other]);
}

#[test]
fn a_negative_nan_or_non_numeric_cat_timeout_is_a_usage_error_and_a_huge_one_means_forever() {
    let live = name("cat-timeouts");
    let mut w = SnapshotWriter::create(&live, 1 << 20).unwrap();
    w.write(&batch(3)).unwrap();
    for bad in ["-1", "nan", "-inf", "soon", ""] {
        let o = run(&["cat", &live, &format!("--timeout={bad}")]);
        assert_eq!(code(&o), 2, "--timeout={bad}: {}", text(&o.stderr));
        assert!(text(&o.stderr).contains("--timeout"), "{}", text(&o.stderr));
    }
    for huge in ["1e300", "inf", "1e19", "1e10"] {
        let o = run(&["cat", &live, &format!("--timeout={huge}")]);
        assert_eq!(code(&o), 0, "--timeout={huge}: {}", text(&o.stderr));
        assert!(text(&o.stdout).contains("row-2"), "{}", text(&o.stdout));
    }
    let help = text(&run(&["cat", "--help"]).stdout);
    assert!(help.contains("(default: 5)"), "{help}");
    drop(w);
}

#[test]
fn an_invalid_segment_name_is_a_usage_error_not_a_foreign_segment() {
    for command in ["cat", "rm", "inspect"] {
        for bad in ["", "a/b", "..", "."] {
            let o = run(&[command, bad]);
            assert_eq!(code(&o), 2, "{command} {bad:?}: {}", text(&o.stderr));
            let e = text(&o.stderr);
            assert!(e.contains("invalid shared-memory segment name"), "{e}");
            assert!(!e.contains("foreign"), "{e}");
        }
    }
}

#[test]
fn a_bug_exits_with_code_1_and_a_message_instead_of_a_rust_panic_exit() {
    let o = run(&["panic-for-test"]);
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    let e = text(&o.stderr);
    assert!(
        e.contains("internal error (a bug, please report it)"),
        "{e}"
    );
    assert!(!e.contains("RUST_BACKTRACE"), "{e}");
}
