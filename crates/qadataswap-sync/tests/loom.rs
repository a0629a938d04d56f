//! loom models of the sync protocols (reliability.md R1-R3). Build and run with:
//!
//! ```text
//! RUSTFLAGS="--cfg qadataswap_loom" CARGO_TARGET_DIR=/work/target-loom \
//!     cargo test -p qadataswap-sync --release --test loom
//! ```
//!
//! The models run the crate's real code: `primitive` swaps in loom's atomics, and the futex is
//! a mutex + condition variable model whose waits never time out, so a lost wake-up is a
//! deadlock loom reports. Kept small (at most 2 readers x 2 slots, bounded preemptions).
#![cfg(qadataswap_loom)]

use std::convert::Infallible;
use std::time::Duration;

use loom::sync::Arc;
use loom::thread;
use qadataswap_sync::lease::{LeaseError, LeaseTable, ReaderEntry};
use qadataswap_sync::notify::{Notifier, SpinBudget, WaitOptions};
use qadataswap_sync::primitive::{AtomicU32, AtomicU64, Ordering};
use qadataswap_sync::process::ProcessIdentity;
use qadataswap_sync::seqlock::SeqWord;

fn builder(preemptions: usize) -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(preemptions);
    b
}

fn opts(spin: u32) -> WaitOptions {
    WaitOptions {
        spin: SpinBudget(spin),
        deadline: None,
        slice: Duration::from_millis(100),
    }
}

fn id(pid: u32) -> ProcessIdentity {
    ProcessIdentity { pid, start_time: 1 }
}

// ---------------------------------------------------------------- R2: wait / notify

struct Wake {
    word: AtomicU32,
    waiters: AtomicU32,
    data: AtomicU32,
}

impl Wake {
    fn new() -> Arc<Self> {
        Arc::new(Wake {
            word: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            data: AtomicU32::new(0),
        })
    }
    fn notifier(&self) -> Notifier<'_> {
        Notifier::new(&self.word, &self.waiters)
    }
    fn wait_for(&self, spin: u32, value: u32) -> u32 {
        self.notifier()
            .wait_until(&opts(spin), || {
                let v = self.data.load(Ordering::Acquire);
                Ok::<_, Infallible>((v >= value).then_some(v))
            })
            .unwrap()
    }
}

fn one_waiter_one_publish(spin: u32) {
    builder(3).check(move || {
        let s = Wake::new();
        let p = Arc::clone(&s);
        let publisher = thread::spawn(move || {
            p.data.store(1, Ordering::Relaxed);
            p.notifier().notify();
        });
        assert_eq!(s.wait_for(spin, 1), 1);
        publisher.join().unwrap();
        assert_eq!(s.waiters.load(Ordering::Relaxed), 0);
    });
}

#[test]
fn r2_parked_waiter_never_misses_the_wake_up() {
    one_waiter_one_publish(0);
}

#[test]
fn r2_spinning_then_parked_waiter_never_misses_the_wake_up() {
    one_waiter_one_publish(1);
}

#[test]
fn r2_two_parked_waiters_are_both_woken_by_one_publish() {
    builder(3).check(|| {
        let s = Wake::new();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let w = Arc::clone(&s);
                thread::spawn(move || w.wait_for(0, 1))
            })
            .collect();
        s.data.store(1, Ordering::Relaxed);
        s.notifier().notify();
        for w in waiters {
            assert_eq!(w.join().unwrap(), 1);
        }
    });
}

#[test]
fn r2_waiter_sees_the_second_of_two_publishes() {
    builder(3).check(|| {
        let s = Wake::new();
        let p = Arc::clone(&s);
        let publisher = thread::spawn(move || {
            for v in 1..=2 {
                p.data.store(v, Ordering::Relaxed);
                p.notifier().notify();
            }
        });
        assert_eq!(s.wait_for(0, 2), 2);
        publisher.join().unwrap();
    });
}

// ---------------------------------------------------------------- R1: seqlock

struct Guarded {
    seq: AtomicU64,
    a: AtomicU64,
    b: AtomicU64,
}

impl Guarded {
    fn read(&self) -> Option<(u64, (u64, u64))> {
        SeqWord::new(&self.seq).read_consistent(|| {
            (
                self.a.load(Ordering::Relaxed),
                self.b.load(Ordering::Relaxed),
            )
        })
    }
    fn write(&self, generation: u64) {
        let seq = SeqWord::new(&self.seq);
        seq.begin_write(2 * generation - 1);
        self.a.store(generation, Ordering::Relaxed);
        self.b.store(generation, Ordering::Relaxed);
        seq.commit(2 * generation);
    }
}

#[test]
fn r1_seqlock_reader_never_returns_a_torn_value_and_aborts_never_advance() {
    builder(3).check(|| {
        let g = Arc::new(Guarded {
            seq: AtomicU64::new(0),
            a: AtomicU64::new(0),
            b: AtomicU64::new(0),
        });
        let w = Arc::clone(&g);
        let writer = thread::spawn(move || {
            w.write(1);
            let seq = SeqWord::new(&w.seq);
            seq.begin_write(3);
            seq.abort(2);
            assert_eq!(
                seq.load(),
                2,
                "an aborted write never advances the generation"
            );
            w.write(2);
        });
        for _ in 0..2 {
            if let Some((generation, (a, b))) = g.read() {
                assert_eq!(a, b, "torn read accepted");
                assert_eq!(2 * a, generation, "value from another generation");
            }
        }
        writer.join().unwrap();
        assert_eq!(g.read(), Some((4, (2, 2))));
    });
}

// ---------------------------------------------------------------- R3: ring reuse with leases

/// A two-slot ring. Generation `g` lives in slot `g % 2`, its commit word is `2g + 2` and its
/// payload words both hold `g`. Generation 0 is in slot 0 from the start.
struct Ring {
    latest: AtomicU64,
    seq: [AtomicU64; 2],
    a: [AtomicU64; 2],
    b: [AtomicU64; 2],
    entries: Vec<ReaderEntry>,
}

impl Ring {
    fn new(entries: usize) -> Arc<Self> {
        Arc::new(Ring {
            latest: AtomicU64::new(0),
            seq: [AtomicU64::new(2), AtomicU64::new(0)],
            a: [AtomicU64::new(0), AtomicU64::new(0)],
            b: [AtomicU64::new(0), AtomicU64::new(0)],
            entries: (0..entries).map(|_| ReaderEntry::new()).collect(),
        })
    }

    fn table(&self) -> LeaseTable<'_> {
        LeaseTable::new(&self.entries)
    }

    /// Writes generation `g` unless its slot is leased. Returns whether it was published.
    fn publish(&self, g: u64) -> bool {
        let slot = (g % 2) as usize;
        let seq = SeqWord::new(&self.seq[slot]);
        let previous = seq.load();
        match self
            .table()
            .claim_slot_for_write(slot, &seq, previous, 2 * g + 1)
        {
            Ok(()) => {
                self.a[slot].store(g, Ordering::Relaxed);
                self.b[slot].store(g, Ordering::Relaxed);
                seq.commit(2 * g + 2);
                self.latest.store(g, Ordering::Release);
                true
            }
            Err(LeaseError::SlotBusy { .. }) => {
                assert_eq!(seq.load(), previous, "a refused claim restores the word");
                false
            }
            Err(e) => panic!("{e}"),
        }
    }

    /// Chooses the latest slot, leases it (retrying once if it changed), checks the payload
    /// twice while leased, releases. Returns the generation read, if any.
    fn read(&self, entry: usize) -> Option<u64> {
        let me = &self.entries[entry];
        for _ in 0..2 {
            let g = self.latest.load(Ordering::Acquire);
            let slot = (g % 2) as usize;
            let seq = SeqWord::new(&self.seq[slot]);
            let expected = seq.load();
            // (A delayed reader may get here after the writer reused the slot.)
            if !me.try_lease(slot, &seq, expected) {
                continue;
            }
            let first = (
                self.a[slot].load(Ordering::Relaxed),
                self.b[slot].load(Ordering::Relaxed),
            );
            assert_eq!(first.0, first.1, "torn payload under a lease");
            assert_eq!(
                2 * first.0 + 2,
                expected,
                "lease covers other data than expected"
            );
            assert_eq!(
                me.lease_count(slot),
                1,
                "somebody zeroed a live reader's lease"
            );
            let again = (
                self.a[slot].load(Ordering::Relaxed),
                self.b[slot].load(Ordering::Relaxed),
            );
            assert_eq!(first, again, "slot rewritten while leased");
            me.release(slot);
            return Some(first.0);
        }
        None
    }
}

#[test]
fn r3_writer_never_reuses_a_leased_slot_and_a_late_reader_retries() {
    builder(3).check(|| {
        let ring = Ring::new(2);
        for i in 0..2 {
            assert_eq!(ring.table().register(id(10 + i)), Ok(i as usize));
        }
        let readers: Vec<_> = (0..2)
            .map(|i| {
                let r = Arc::clone(&ring);
                thread::spawn(move || r.read(i))
            })
            .collect();
        ring.publish(1);
        ring.publish(2);
        for r in readers {
            r.join().unwrap();
        }
        assert_eq!(ring.table().leases_on(0) + ring.table().leases_on(1), 0);
    });
}

#[test]
fn r3_reclaiming_a_dead_readers_lease_races_safely_with_writer_and_live_reader() {
    builder(3).check(|| {
        let ring = Ring::new(2);
        // Reader 100 leased slot 0 (generation 0) and died.
        let dead = ring.table().register(id(100)).unwrap();
        assert!(ring.entries[dead].try_lease(0, &SeqWord::new(&ring.seq[0]), 2));
        let alive = |who: ProcessIdentity| who.pid != 100;

        let r = Arc::clone(&ring);
        let live_reader = thread::spawn(move || {
            let entry = r.table().register(id(200)).unwrap();
            let got = r.read(entry);
            (entry, got)
        });
        let w = Arc::clone(&ring);
        let writer = thread::spawn(move || w.publish(2));
        let reclaimed = ring.table().reclaim_dead_by(300, alive);
        assert_eq!(reclaimed, vec![id(100)]);

        let (entry, _) = live_reader.join().unwrap();
        writer.join().unwrap();
        assert_eq!(
            ring.entries[entry].pid(),
            200,
            "live registration survived the reclaim"
        );
        assert_eq!(
            ring.table().leases_on(0),
            0,
            "the dead reader's lease is gone"
        );
        // With the dead lease gone, the slot can be reused now.
        assert!(ring.publish(4));
    });
}

#[test]
fn r3_two_reclaimers_and_a_registering_reader_never_lose_a_live_lease() {
    builder(3).check(|| {
        let ring = Ring::new(2);
        let dead = ring.table().register(id(100)).unwrap();
        assert!(ring.entries[dead].try_lease(0, &SeqWord::new(&ring.seq[0]), 2));
        let alive = |who: ProcessIdentity| who.pid != 100;

        let r = Arc::clone(&ring);
        let live_reader = thread::spawn(move || {
            let entry = r.table().register(id(200)).unwrap();
            assert_eq!(r.read(entry), Some(0));
            entry
        });
        let other = Arc::clone(&ring);
        let second = thread::spawn(move || other.table().reclaim_dead_by(301, alive));
        let mine = ring.table().reclaim_dead_by(300, alive);
        let theirs = second.join().unwrap();
        let entry = live_reader.join().unwrap();

        assert_eq!(
            mine.len() + theirs.len(),
            1,
            "the dead entry is reclaimed exactly once"
        );
        assert_eq!(ring.entries[entry].pid(), 200);
        assert_eq!(ring.table().registered_entries().count(), 1);
        assert_eq!(ring.table().leases_on(0), 0);
    });
}

// ---------------------------------------------------------------- R4: stream wake-ups with hysteresis

/// A stream of `CHUNKS` chunks through a ring of `RING` slots, one writer and one reader (the
/// protocol of `qadataswap-arrow`'s stream mode reduced to its counters): `head` = chunks
/// published, `read` = chunks the reader is done with. The writer parks on `release` while the
/// ring is full; the reader parks on `publish` while it has caught up.
///
/// Releases wake the writer only when `due` says so (`Notifier::notify_parked_if`); the model uses
/// the most aggressive hysteresis there is, "only when a reader is parked for chunks", so a
/// writer is left asleep with a free slot whenever possible. What keeps the pair from sleeping
/// on each other is the reader waking a parked writer before it waits for chunks (at the start
/// of its wait and before every sleep: `wait_until_then`'s `before_sleep`). The futex model
/// never times out, so a missing wake-up is a deadlock loom reports.
struct Pipe {
    head: AtomicU64,
    read: AtomicU64,
    publish: (AtomicU32, AtomicU32),
    release: (AtomicU32, AtomicU32),
}

const RING: u64 = 2;
const CHUNKS: u64 = 3;

impl Pipe {
    fn new() -> Arc<Self> {
        Arc::new(Pipe {
            head: AtomicU64::new(0),
            read: AtomicU64::new(0),
            publish: (AtomicU32::new(0), AtomicU32::new(0)),
            release: (AtomicU32::new(0), AtomicU32::new(0)),
        })
    }
    fn publish(&self) -> Notifier<'_> {
        Notifier::new(&self.publish.0, &self.publish.1)
    }
    fn release(&self) -> Notifier<'_> {
        Notifier::new(&self.release.0, &self.release.1)
    }

    fn write_all(&self, spin: u32) {
        for k in 1..=CHUNKS {
            self.release()
                .wait_until(&opts(spin), || {
                    let free = self.read.load(Ordering::Acquire) + RING >= k;
                    Ok::<_, Infallible>(free.then_some(()))
                })
                .unwrap();
            self.head.store(k, Ordering::Release);
            self.publish().notify();
        }
    }

    fn read_all(&self, spin: u32, due: impl Fn(&Pipe, u64) -> bool) {
        let flush = || {
            self.release().notify_parked_if(|| true);
        };
        for c in 1..=CHUNKS {
            let ready = || {
                let h = self.head.load(Ordering::Acquire);
                Ok::<_, Infallible>((h >= c).then_some(h))
            };
            if ready().unwrap().is_none() {
                flush();
                self.publish()
                    .wait_until_then(&opts(spin), ready, flush)
                    .unwrap();
            }
            self.read.store(c, Ordering::Release);
            self.release().notify_parked_if(|| due(self, c));
        }
    }
}

/// The hysteresis rule of the real reader, reduced: wake a parked writer when a reader waits for
/// chunks, or once a batch of slots is free as far as this reader is concerned; here the batch is
/// the whole ring (this reader has read everything published).
fn batch_due(p: &Pipe, c: u64) -> bool {
    p.publish().waiting() > 0 || c >= p.head.load(Ordering::Acquire)
}

fn pipe_never_sleeps_on_itself(spin: u32, due: fn(&Pipe, u64) -> bool) {
    builder(2).check(move || {
        let p = Pipe::new();
        let w = Arc::clone(&p);
        let writer = thread::spawn(move || w.write_all(spin));
        p.read_all(spin, due);
        writer.join().unwrap();
        assert_eq!(p.head.load(Ordering::Relaxed), CHUNKS);
        assert_eq!(p.release.1.load(Ordering::Relaxed), 0);
        assert_eq!(p.publish.1.load(Ordering::Relaxed), 0);
    });
}

#[test]
fn r4_writer_left_asleep_on_purpose_is_woken_by_the_reader_before_it_waits() {
    pipe_never_sleeps_on_itself(0, |p, _| p.publish().waiting() > 0);
}

#[test]
fn r4_spinning_reader_with_batched_writer_wake_ups_never_deadlocks() {
    pipe_never_sleeps_on_itself(1, batch_due);
}

#[test]
fn r4_parked_pair_with_batched_writer_wake_ups_never_deadlocks() {
    pipe_never_sleeps_on_itself(0, batch_due);
}

// ---------------------------------------------------------------- R17: writer takeover, one compare-and-swap

/// Judge holders by a fixed set of dead pids (the previous holder, pid 1, is dead; every claimer is alive).
fn judge_dead_pid_1(h: &qadataswap_sync::owner::Holder) -> qadataswap_sync::process::Liveness {
    if h.pid == 1 {
        qadataswap_sync::process::Liveness::Dead
    } else {
        qadataswap_sync::process::Liveness::Alive
    }
}

#[test]
fn r17_two_claimers_of_a_dead_writers_role_never_both_win_nor_displace_the_winner() {
    use qadataswap_sync::owner::{Holder, OwnerWord};
    builder(3).check(|| {
        let dead = Holder::of(id(1), 0).unwrap().pack();
        let word = Arc::new(AtomicU64::new(dead));
        let claimers: Vec<_> = [2u32, 3]
            .into_iter()
            .map(|pid| {
                let word = Arc::clone(&word);
                thread::spawn(move || {
                    OwnerWord::new(&word)
                        .try_take_judged(id(pid), 0, judge_dead_pid_1)
                        .is_ok()
                        .then_some(pid)
                })
            })
            .collect();
        let winners: Vec<u32> = claimers
            .into_iter()
            .filter_map(|c| c.join().unwrap())
            .collect();
        assert_eq!(winners.len(), 1, "exactly one claimer takes the role");
        let holder = OwnerWord::new(&word).holder().unwrap();
        assert_eq!(
            holder.pid, winners[0],
            "the winner still holds it: nobody displaced it"
        );
    });
}

#[test]
fn r17_a_live_writer_is_never_displaced_while_it_releases_and_retakes() {
    use qadataswap_sync::owner::{Holder, OwnerWord};
    builder(3).check(|| {
        let word = Arc::new(AtomicU64::new(Holder::of(id(2), 0).unwrap().pack()));
        let w2 = Arc::clone(&word);
        // The live writer (pid 2) closes and a new one (pid 3) races a claimer (pid 4) for the free role.
        let closer = thread::spawn(move || {
            assert!(OwnerWord::new(&w2).release(id(2)));
        });
        let w3 = Arc::clone(&word);
        let a = thread::spawn(move || {
            OwnerWord::new(&w3)
                .try_take_judged(id(3), 0, judge_dead_pid_1)
                .is_ok()
        });
        let w4 = Arc::clone(&word);
        let b = thread::spawn(move || {
            OwnerWord::new(&w4)
                .try_take_judged(id(4), 0, judge_dead_pid_1)
                .is_ok()
        });
        closer.join().unwrap();
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        assert!(!(a && b), "two live writers");
        let holder = OwnerWord::new(&word).holder();
        match (a, b) {
            (true, false) => assert_eq!(holder.unwrap().pid, 3),
            (false, true) => assert_eq!(holder.unwrap().pid, 4),
            // Both came while pid 2 (alive) still held it: refused, and pid 2 then released it.
            _ => assert!(holder.is_none()),
        }
    });
}
