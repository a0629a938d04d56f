//! A segment's life at its edges, with real processes (reliability.md promises 3, 5-8; scenarios R6-R8, R16-R18):
//! removal only of what is provably ours and unused, atomic creation, exactly one winner among concurrent
//! creators, leftovers of a killed creator, leases that survive `fork()`, and readers in another PID namespace.
//!
//! Children are this test binary re-executed with `QADS_ARROW_ROLE`; they talk to the test through stdout lines and
//! wait for it on stdin (closing stdin ends them). Nothing waits on a clock to synchronise.

mod common;

use std::io::{BufRead, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch};
use common::{child, expect_line, role, Kid, Unlink};
use qadataswap_arrow::status::{self, SegmentStatus};
use qadataswap_arrow::{Error, SnapshotReader, SnapshotWriter};

fn unique(tag: &str) -> String {
    format!("qads-life-{}-{tag}", std::process::id())
}

fn path(name: &str) -> String {
    format!("/dev/shm/{name}")
}

/// `rows` values all equal to `tag`: a frame that changed under its holder shows another sum.
fn tagged(tag: i64, rows: usize) -> RecordBatch {
    let a: ArrayRef = Arc::new(Int64Array::from_iter_values(std::iter::repeat_n(tag, rows)));
    RecordBatch::try_from_iter([("v", a)]).unwrap()
}

fn sum(b: &RecordBatch) -> i64 {
    let a = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
    a.values().iter().sum()
}

/// Wait for the child to exit (its stdin closed by the caller), with the watchdog of `expect_line`.
fn finish(mut kid: Kid) {
    drop(kid.child.stdin.take());
    let _ = expect_line_or_eof(&mut kid);
    let status = kid.wait().unwrap();
    assert!(status.success(), "child failed: {status:?}");
}

fn expect_line_or_eof(kid: &mut Kid) -> Option<String> {
    let mut line = String::new();
    match kid.out.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line),
    }
}

/// Block until the parent closes our stdin (or writes a line).
fn wait_for_parent() -> String {
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    line
}

fn say(what: &str) {
    println!("{what}");
    std::io::stdout().flush().unwrap();
}

/// Child roles live inside this test so that `--exact` selects them.
#[test]
fn child_roles() {
    let Some((role, name)) = role() else { return };
    match role.as_str() {
        "create-on-go" => {
            // Concurrent creators: all wait for "go", then create the same large segment at once.
            wait_for_parent();
            match SnapshotWriter::builder(&name)
                .size(256 << 20)
                .slots(2)
                .create()
            {
                Ok(mut w) => {
                    w.write(&tagged(std::process::id() as i64, 10)).unwrap();
                    say(&format!("RESULT won gen={}", w.generation()));
                    wait_for_parent();
                    w.close().unwrap();
                }
                Err(Error::WriterAlive { pid, .. }) => say(&format!("RESULT alive pid={pid}")),
                Err(e) => say(&format!("RESULT error {e}")),
            }
        }
        "recreate" => {
            // Another program removed the name and a new writer made it again.
            std::fs::remove_file(path(&name)).unwrap();
            let mut w = SnapshotWriter::create(&name, 1 << 20).unwrap();
            w.write(&tagged(2, 100)).unwrap();
            say("READY");
            wait_for_parent();
            w.close().unwrap();
        }
        "writer-live" => {
            let mut w = SnapshotWriter::builder(&name)
                .size(1 << 20)
                .persistent(true)
                .create()
                .unwrap();
            w.write(&tagged(1, 10)).unwrap();
            say("READY");
            wait_for_parent();
        }
        "die-while-creating" => {
            // Killed by the test while reserving a large segment.
            let _ = SnapshotWriter::create(&name, 4 << 30);
            say("CREATED");
            wait_for_parent();
        }
        "fork-holder" => fork_holder(&name),
        "reader-holding" => {
            // A reader (possibly in another PID namespace) holding one frame until told to check it.
            let r = SnapshotReader::open(&name).unwrap();
            let f = r.read().unwrap();
            let before = sum(&f.batches()[0]);
            say(&format!("HOLDING sum={before}"));
            wait_for_parent();
            let after = sum(&f.batches()[0]);
            say(&format!(
                "CHECKED {}",
                if after == before { "same" } else { "changed" }
            ));
            wait_for_parent();
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn of_concurrent_creators_of_one_large_name_exactly_one_wins_and_no_orphan_is_left() {
    let name = unique("race");
    let _u = Unlink(name.clone());
    let mut kids: Vec<Kid> = (0..3)
        .map(|_| child("create-on-go", &name, "child_roles"))
        .collect();
    for k in &mut kids {
        writeln!(k.child.stdin.as_mut().unwrap(), "go").unwrap();
    }
    let results: Vec<String> = kids.iter_mut().map(|k| expect_line(k, "RESULT")).collect();
    let winners: Vec<usize> = (0..kids.len())
        .filter(|&i| results[i].starts_with("RESULT won gen=1"))
        .collect();
    assert_eq!(winners.len(), 1, "exactly one creator wins: {results:?}");
    let winner_pid = kids[winners[0]].child.id();
    for (i, r) in results.iter().enumerate() {
        if i != winners[0] {
            assert_eq!(r, &format!("RESULT alive pid={winner_pid}"), "{results:?}");
        }
    }
    // The segment under the name is the winner's, and readers see its frame.
    let r = SnapshotReader::open(&name).unwrap();
    assert_eq!(sum(&r.read().unwrap().batches()[0]), 10 * winner_pid as i64);
    drop(r);
    for k in kids {
        finish(k);
    }
    // Nobody left a private segment behind, and the winner's clean close removed the name.
    assert!(std::fs::metadata(path(&name)).is_err());
    for k in qadataswap_shm::list(qadataswap_shm::PRIVATE_PREFIX).unwrap() {
        assert!(
            !k.name.contains(&format!(".{}.", winner_pid)),
            "leftover {}",
            k.name
        );
    }
}

#[test]
fn closing_a_writer_after_its_name_was_recreated_leaves_the_new_segment_alone() {
    let name = unique("recreated");
    let _u = Unlink(name.clone());
    let mut w1 = SnapshotWriter::create(&name, 1 << 20).unwrap();
    w1.write(&tagged(1, 100)).unwrap();
    let mut other = child("recreate", &name, "child_roles");
    expect_line(&mut other, "READY");
    w1.close().unwrap();
    // Writer 2's segment is still there and still its own.
    let r = SnapshotReader::open(&name).unwrap();
    assert_eq!(sum(&r.read().unwrap().batches()[0]), 200);
    assert_eq!(
        status::classify(&name).unwrap(),
        SegmentStatus::Live {
            pid: other.child.id()
        }
    );
    drop(r);
    finish(other);
}

#[test]
fn remove_refuses_live_foreign_and_other_users_segments_and_leaves_them_intact() {
    // A live writer in another process.
    let live = unique("rm-live");
    let _u1 = Unlink(live.clone());
    let mut kid = child("writer-live", &live, "child_roles");
    expect_line(&mut kid, "READY");
    match status::remove(&live, true) {
        Err(Error::InUse { pids, .. }) => assert_eq!(pids, vec![kid.child.id()]),
        other => panic!("expected InUse, got {other:?}"),
    }
    assert_eq!(
        SnapshotReader::open(&live)
            .unwrap()
            .read()
            .unwrap()
            .num_rows(),
        10
    );
    kid.child.kill().unwrap();
    kid.child.wait().unwrap();
    // Now its writer is gone (killed without closing): removable, with `force` since it is still registered.
    assert!(matches!(
        status::remove(&live, false),
        Err(Error::DeadButRegistered { .. })
    ));
    assert!(matches!(
        status::remove(&live, true),
        Ok(SegmentStatus::WriterDead { .. })
    ));
    assert!(std::fs::metadata(path(&live)).is_err());

    // Another application's zero-filled file, old enough to have passed any grace period.
    let other_app = unique("otherapp-pool");
    let _u2 = Unlink(other_app.clone());
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path(&other_app))
        .unwrap()
        .write_all(&vec![0u8; 65536])
        .unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(path(&other_app))
        .unwrap()
        .set_modified(old)
        .unwrap();
    assert!(matches!(
        status::classify(&other_app).unwrap(),
        SegmentStatus::Foreign { .. }
    ));
    for force in [false, true] {
        assert!(matches!(
            status::remove(&other_app, force),
            Err(Error::NotOurs { .. })
        ));
    }
    assert_eq!(std::fs::read(path(&other_app)).unwrap(), vec![0u8; 65536]);

    // Another user's closed segment (only testable as root; CI runs as root).
    if rustix::process::geteuid().is_root() {
        let theirs = unique("rm-owner");
        let _u3 = Unlink(theirs.clone());
        SnapshotWriter::builder(&theirs)
            .size(1 << 20)
            .persistent(true)
            .create()
            .unwrap()
            .close()
            .unwrap();
        std::os::unix::fs::chown(path(&theirs), Some(65534), Some(65534)).unwrap();
        assert!(matches!(
            status::remove(&theirs, true),
            Err(Error::NotOurs { .. })
        ));
        assert_eq!(std::fs::metadata(path(&theirs)).unwrap().uid(), 65534);
    }

    // A closed, persistent segment of ours that nobody uses is removed.
    let closed = unique("rm-closed");
    let _u4 = Unlink(closed.clone());
    SnapshotWriter::builder(&closed)
        .size(1 << 20)
        .persistent(true)
        .create()
        .unwrap()
        .close()
        .unwrap();
    assert_eq!(
        status::remove(&closed, false).unwrap(),
        SegmentStatus::Closed
    );
    assert!(matches!(
        status::remove(&closed, false),
        Err(Error::Shm(qadataswap_shm::ShmError::NotFound { .. }))
    ));
}

#[test]
fn a_creator_killed_while_reserving_memory_leaves_no_half_built_name_and_its_leftover_is_reclaimed()
{
    let name = unique("killed-creator");
    let _u = Unlink(name.clone());
    let mut kid = child("die-while-creating", &name, "child_roles");
    let pid = kid.child.id();
    // Wait until its private segment carries its identity (the first bytes are written before it grows), then
    // kill it in the middle of reserving 4 GiB.
    let mine = format!("{}{pid}.", qadataswap_shm::PRIVATE_PREFIX);
    let leftover = loop {
        let found = qadataswap_shm::list(&mine).unwrap();
        if let Some(f) = found.into_iter().find(|f| f.size >= 4096) {
            break f.name;
        }
        assert!(
            kid.child.try_wait().unwrap().is_none() && std::fs::metadata(path(&name)).is_err(),
            "the creator finished before it could be killed"
        );
        std::thread::yield_now();
    };
    let _ul = Unlink(leftover.clone());
    kid.child.kill().unwrap();
    kid.child.wait().unwrap();
    // Nobody can open the real name: it was never published half-built.
    assert!(matches!(
        SnapshotReader::builder(&name)
            .open_timeout(Duration::ZERO)
            .open(),
        Err(Error::Shm(qadataswap_shm::ShmError::NotFound { .. }))
    ));
    assert_eq!(
        status::classify(&leftover).unwrap(),
        SegmentStatus::Stale { creator_pid: pid }
    );
    // A private-prefixed file that does not carry our identity is not ours.
    let impostor = format!(
        "{}{}.999.x",
        qadataswap_shm::PRIVATE_PREFIX,
        std::process::id()
    );
    let _ui = Unlink(impostor.clone());
    std::fs::write(path(&impostor), vec![0u8; 8192]).unwrap();
    // The next creator sweeps the dead creator's leftover, and only it.
    let mut w = SnapshotWriter::create(&name, 1 << 20).unwrap();
    w.write(&tagged(3, 10)).unwrap();
    assert!(std::fs::metadata(path(&leftover)).is_err(), "leftover kept");
    assert!(
        std::fs::metadata(path(&impostor)).is_ok(),
        "a file that is not ours was removed"
    );
    assert!(
        qadataswap_shm::SegmentName::new(&impostor).is_err(),
        "the prefix is reserved"
    );
}

/// A process that reads a frame, forks, drops its own copy, and has the child check the inherited one after the
/// writer has lapped the ring. Prints `DROPPED`, waits for a line, then `CHILD same|changed`.
fn fork_holder(name: &str) {
    let r = SnapshotReader::open(name).unwrap();
    let f = r.read().unwrap();
    let before = sum(&f.batches()[0]);
    let mut fds = [0i32; 2];
    // SAFETY: a valid two-element array for pipe(2).
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child only reads a pipe, sums the inherited frame and exits with _exit (no destructors, no
    // allocation-dependent state shared with other threads is touched).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let mut b = [0u8; 1];
        // SAFETY: reading one byte into a local buffer from the pipe's read end.
        unsafe { libc::read(fds[0], b.as_mut_ptr().cast(), 1) };
        let same = sum(&f.batches()[0]) == before;
        // SAFETY: ends the child at once, as after any fork in a multithreaded program.
        unsafe { libc::_exit(if same { 0 } else { 3 }) };
    }
    drop(f);
    say("DROPPED");
    wait_for_parent();
    // SAFETY: writing one byte from a local buffer to the pipe's write end.
    unsafe { libc::write(fds[1], b"x".as_ptr().cast(), 1) };
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let same = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    say(&format!("CHILD {}", if same { "same" } else { "changed" }));
    drop(r);
    wait_for_parent();
}

#[test]
fn a_frame_inherited_by_a_fork_child_stays_unchanged_after_the_parent_drops_it_and_the_writer_laps()
{
    let name = unique("fork");
    let _u = Unlink(name.clone());
    let mut w = SnapshotWriter::builder(&name)
        .size(3 << 20)
        .slots(3)
        .lease_timeout(Duration::from_secs(20))
        .create()
        .unwrap();
    w.write(&tagged(1, 1000)).unwrap();
    let mut kid = child("fork-holder", &name, "child_roles");
    expect_line(&mut kid, "DROPPED");
    // Lap the ring several times: the slot the child's frame lives in must be skipped.
    for tag in 2..12 {
        w.write(&tagged(tag, 1000)).unwrap();
    }
    writeln!(kid.child.stdin.as_mut().unwrap(), "lapped").unwrap();
    assert_eq!(expect_line(&mut kid, "CHILD"), "CHILD same");
    finish(kid);
    // The child is gone: its entry is reclaimed and every slot is writable again.
    for tag in 12..18 {
        w.write(&tagged(tag, 1000)).unwrap();
    }
    let r = SnapshotReader::open(&name).unwrap();
    assert_eq!(sum(&r.read().unwrap().batches()[0]), 17 * 1000);
}

/// `unshare --pid --fork --mount-proc` available and allowed here (root, or user namespaces).
fn can_unshare() -> bool {
    Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_reader_in_another_pid_namespace_is_never_reclaimed_and_its_frame_never_changes() {
    if !can_unshare() {
        // Not root and no user namespaces: say so loudly rather than pass silently.
        eprintln!(
            "SKIPPED: `unshare --pid --fork --mount-proc` is not permitted here (CI runs as root)"
        );
        assert!(
            !rustix::process::geteuid().is_root(),
            "root must be able to unshare a PID namespace"
        );
        return;
    }
    let name = unique("pidns");
    let _u = Unlink(name.clone());
    let mut w = SnapshotWriter::builder(&name)
        .size(2 << 20)
        .slots(2)
        .lease_timeout(Duration::from_millis(300))
        .create()
        .unwrap();
    w.write(&tagged(1, 1000)).unwrap();
    // The reader runs in a new PID namespace (its own /proc): from here its pid means nothing.
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "child_roles", "--nocapture", "--test-threads=1"])
        .env(common::ROLE, "reader-holding")
        .env(common::NAME, &name)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut kid = common::spawn(cmd);
    assert_eq!(expect_line(&mut kid, "HOLDING"), "HOLDING sum=1000");
    // Its lease holds slot 0; slot 1 is free for one frame, then the writer needs slot 0 again.
    w.write(&tagged(2, 1000)).unwrap();
    match w.write(&tagged(3, 1000)) {
        Err(e @ Error::AllSlotsLeased { .. }) => {
            assert!(e.to_string().contains("another PID namespace"), "{e}")
        }
        other => {
            panic!("the writer reused a slot a reader in another PID namespace holds: {other:?}")
        }
    }
    writeln!(kid.child.stdin.as_mut().unwrap(), "check").unwrap();
    assert_eq!(expect_line(&mut kid, "CHECKED"), "CHECKED same");
    finish(kid);
    // Once it released its lease (on exit it unregistered), the writer goes on.
    w.write(&tagged(4, 1000)).unwrap();
}

#[test]
fn a_writer_waiting_for_the_name_never_takes_over_a_segment_that_was_closed_and_unlinked() {
    // The race the soak found: a new writer opens the segment just before the old writer's clean close unlinks the
    // name, and takes the released role just after. It must create the name afresh, not write into the orphan.
    for trial in 0..20 {
        let name = unique(&format!("orphan-{trial}"));
        let _u = Unlink(name.clone());
        let mut first = SnapshotWriter::create(&name, 1 << 20).unwrap();
        first.write(&tagged(1, 10)).unwrap();
        let n2 = name.clone();
        let second = std::thread::spawn(move || loop {
            match SnapshotWriter::create(&n2, 1 << 20) {
                Ok(w) => return w,
                Err(Error::WriterAlive { .. }) => std::hint::spin_loop(),
                Err(e) => panic!("{e}"),
            }
        });
        first.close().unwrap();
        let mut second = second.join().unwrap();
        assert_eq!(
            second.generation(),
            1,
            "trial {trial}: took over the closed, unlinked segment"
        );
        second.write(&tagged(2, 10)).unwrap();
        let r = SnapshotReader::open(&name).unwrap();
        assert_eq!(
            sum(&r.read().unwrap().batches()[0]),
            20,
            "trial {trial}: the new writer is not under the name"
        );
    }
}
