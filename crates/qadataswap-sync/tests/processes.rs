//! Multi-process tests: the test binary re-executes itself with `QADATASWAP_SYNC_CHILD` set
//! to play a child role (see `child_role`). Shared memory is a file in /dev/shm mapped
//! `MAP_SHARED` by both processes. Every wait has a watchdog.
#![cfg(not(qadataswap_loom))]

use std::process::{Child, Command};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use qadataswap_sync::lease::{LeaseError, LeaseTable, ReaderEntry};
use qadataswap_sync::notify::{Notifier, SpinBudget, WaitError, WaitOptions};
use qadataswap_sync::process::ProcessIdentity;
use qadataswap_sync::seqlock::SeqWord;
use rustix::fs::{Mode, OFlags};
use rustix::mm::{MapFlags, ProtFlags};

const ROLE: &str = "QADATASWAP_SYNC_CHILD";
const PATH: &str = "QADATASWAP_SYNC_PATH";
const LEN: usize = 4096;
const ENTRIES: usize = 4;
const WATCHDOG: Duration = Duration::from_secs(30);

/// Layout of the test mapping.
#[repr(C)]
struct Shared {
    word: AtomicU32,
    _pad0: [u8; 60],
    waiters: AtomicU32,
    _pad1: [u8; 60],
    data: AtomicU32,
    ready: AtomicU32,
    _pad2: [u8; 56],
    seq: AtomicU64,
    _pad3: [u8; 56],
    entries: [ReaderEntry; ENTRIES],
}

const _: () = assert!(std::mem::size_of::<Shared>() <= LEN);

/// A /dev/shm file mapped shared; unlinked on drop by the process that created it.
struct Mapping {
    ptr: NonNull<Shared>,
    path: String,
    owner: bool,
}

impl Mapping {
    fn create() -> Mapping {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = format!(
            "/dev/shm/qadataswap-sync-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let fd = rustix::fs::open(
            &path,
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .unwrap();
        rustix::fs::ftruncate(&fd, LEN as u64).unwrap();
        Mapping::map(fd, path, true)
    }

    fn open(path: &str) -> Mapping {
        let fd = rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()).unwrap();
        Mapping::map(fd, path.to_owned(), false)
    }

    fn map(fd: rustix::fd::OwnedFd, path: String, owner: bool) -> Mapping {
        // SAFETY: a fresh mapping of a file we sized to LEN bytes; nothing else is mapped there.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                LEN,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &fd,
                0,
            )
        }
        .unwrap();
        Mapping {
            ptr: NonNull::new(ptr.cast()).unwrap(),
            path,
            owner,
        }
    }

    fn shared(&self) -> &Shared {
        // SAFETY: the mapping is LEN >= size_of::<Shared>() bytes, page aligned, zero-filled
        // at creation (a valid all-free `Shared`: atomics and padding), lives as long as
        // `self`, and is only ever accessed through atomics.
        unsafe { self.ptr.as_ref() }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `map` mapped; no reference outlives `self`.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), LEN) };
        if self.owner {
            let _ = rustix::fs::unlink(&self.path);
        }
    }
}

fn spawn_child(role: &str, mapping: &Mapping) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_role", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(PATH, &mapping.path)
        .spawn()
        .unwrap()
}

/// Waits for `cond`, panicking (after killing `child`) if the watchdog fires.
fn wait_for(child: &mut Child, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WATCHDOG;
    while !cond() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("watchdog: gave up waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + WATCHDOG;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("watchdog: child {} did not exit", child.id());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The child side. A no-op when run as a normal test.
#[test]
fn child_role() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let mapping = Mapping::open(&std::env::var(PATH).unwrap());
    let s = mapping.shared();
    match role.as_str() {
        "parked-reader" => {
            let notifier = Notifier::new(&s.word, &s.waiters);
            let opts = WaitOptions::timeout(WATCHDOG).with_spin(SpinBudget::PARK_AT_ONCE);
            let got = notifier.wait_until(&opts, || {
                let v = s.data.load(Ordering::Acquire);
                Ok::<_, std::convert::Infallible>((v != 0).then_some(v))
            });
            std::process::exit(if got.is_ok_and(|v| v == 42) { 0 } else { 3 });
        }
        "leasing-reader" => {
            let table = LeaseTable::new(&s.entries);
            let me = table.register(ProcessIdentity::current()).unwrap();
            let seq = SeqWord::new(&s.seq);
            assert!(s.entries[me].try_lease(1, &seq, 2));
            assert!(s.entries[me].try_lease(1, &seq, 2));
            s.ready.store(1, Ordering::Release);
            // Hold the leases until killed (own watchdog: never outlive the test by much).
            std::thread::sleep(WATCHDOG);
            std::process::exit(4);
        }
        other => panic!("unknown child role {other}"),
    }
}

#[test]
fn reader_parked_in_another_process_is_woken_by_a_publish() {
    let mapping = Mapping::create();
    let s = mapping.shared();
    let mut child = spawn_child("parked-reader", &mapping);
    let notifier = Notifier::new(&s.word, &s.waiters);
    wait_for(&mut child, "the child to park", || notifier.waiting() > 0);
    // Give it time to get into the futex (not needed for correctness, makes the test mean it).
    std::thread::sleep(Duration::from_millis(20));
    s.data.store(42, Ordering::Release);
    notifier.notify();
    let status = wait_exit(&mut child);
    assert!(status.success(), "child saw the publish: {status:?}");
    assert_eq!(notifier.waiting(), 0);
}

#[test]
fn wait_across_processes_with_nobody_publishing_times_out_and_says_so() {
    let mapping = Mapping::create();
    let s = mapping.shared();
    let notifier = Notifier::new(&s.word, &s.waiters);
    let opts = WaitOptions::timeout(Duration::from_millis(50)).with_spin(SpinBudget(10));
    let err = notifier
        .wait_until(&opts, || Ok::<Option<()>, std::convert::Infallible>(None))
        .unwrap_err();
    assert!(matches!(err, WaitError::TimedOut { waited } if waited >= Duration::from_millis(50)));
    assert!(err.to_string().starts_with("timed out after"), "{err}");
}

#[test]
fn reader_killed_with_sigkill_while_holding_leases_is_found_dead_and_reclaimed() {
    let mapping = Mapping::create();
    let s = mapping.shared();
    s.seq.store(2, Ordering::Release);
    let mut child = spawn_child("leasing-reader", &mapping);
    wait_for(&mut child, "the child to lease", || {
        s.ready.load(Ordering::Acquire) == 1
    });

    let table = LeaseTable::new(&s.entries);
    let seq = SeqWord::new(&s.seq);
    let child_id = ProcessIdentity::of(child.id()).unwrap();
    assert_eq!(table.leases_on(1), 2);
    assert_eq!(table.holders(1), vec![(child.id(), 2)]);
    assert!(
        table.reclaim_dead().is_empty(),
        "a live reader is not reclaimed"
    );
    let busy = table.claim_slot_for_write(1, &seq, 2, 3).unwrap_err();
    assert!(matches!(busy, LeaseError::SlotBusy { slot: 1, .. }));
    assert!(
        busy.to_string()
            .contains(&format!("pid {} (2 leases)", child.id())),
        "{busy}"
    );

    child.kill().unwrap(); // SIGKILL
                           // Not reaped yet: a zombie counts as dead.
    wait_for(&mut child, "the child to die", || !child_id.is_alive());
    assert_eq!(table.reclaim_dead(), vec![child_id]);
    assert_eq!(table.leases_on(1), 0);
    assert_eq!(table.registered_entries().count(), 0);
    table.claim_slot_for_write(1, &seq, 2, 3).unwrap();
    seq.commit(4);
    let _ = wait_exit(&mut child);
}

#[test]
fn recycled_pid_with_a_different_start_time_is_not_mistaken_for_the_dead_reader() {
    let mapping = Mapping::create();
    let s = mapping.shared();
    s.seq.store(2, Ordering::Release);
    let mut child = spawn_child("leasing-reader", &mapping);
    wait_for(&mut child, "the child to lease", || {
        s.ready.load(Ordering::Acquire) == 1
    });
    let table = LeaseTable::new(&s.entries);
    let seq = SeqWord::new(&s.seq);

    // The dead reader: same pid as the running child, but an earlier start time.
    let live = ProcessIdentity::of(child.id()).unwrap();
    let dead = ProcessIdentity {
        pid: live.pid,
        start_time: live.start_time - 1,
    };
    assert!(live.is_alive());
    assert!(!dead.is_alive());
    let entry = table.register(dead).unwrap();
    assert!(s.entries[entry].try_lease(0, &seq, 2));

    assert_eq!(table.reclaim_dead(), vec![dead]);
    assert_eq!(table.leases_on(0), 0);
    assert_eq!(
        table.leases_on(1),
        2,
        "the live child with that pid keeps its leases"
    );
    assert_eq!(
        table
            .live_entries()
            .map(|(_, e)| e.identity())
            .collect::<Vec<_>>(),
        vec![Some(live)]
    );
    child.kill().unwrap();
    let _ = wait_exit(&mut child);
}
