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
use qadataswap_sync::ring::{self, StartAt, StreamRing, WriterSide};
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

/// A snapshot ring of two slots driven by the real rules of `qadataswap_sync::ring`: the writer picks its slot with
/// `pick_snapshot_slot`, claims it through the lease table, commits `committed(g)` and publishes
/// `pack_published(g, slot)`; a reader reads the published word, expects `committed(g)` of *that* word (possibly
/// stale by the time it leases: the writer may have reused the slot since) and retries when the lease is refused.
/// Frame `g`'s two payload words both hold `g`. Frame 1 is in slot 0 from the start.
struct Ring {
    published: AtomicU64,
    seq: [AtomicU64; 2],
    a: [AtomicU64; 2],
    b: [AtomicU64; 2],
    entries: Vec<ReaderEntry>,
    /// Times a reader's lease was refused because the slot no longer held what the published word named.
    stale: AtomicU64,
}

impl Ring {
    fn new(entries: usize) -> Arc<Self> {
        Arc::new(Ring {
            published: AtomicU64::new(ring::pack_published(1, 0)),
            seq: [AtomicU64::new(ring::committed(1)), AtomicU64::new(0)],
            a: [AtomicU64::new(1), AtomicU64::new(0)],
            b: [AtomicU64::new(1), AtomicU64::new(0)],
            entries: (0..entries).map(|_| ReaderEntry::new()).collect(),
            stale: AtomicU64::new(0),
        })
    }

    fn table(&self) -> LeaseTable<'_> {
        LeaseTable::new(&self.entries)
    }

    /// Writes frame `g` into the slot the real rule picks, unless every candidate is leased (or the claim loses to
    /// a lease). Returns whether it was published.
    fn publish(&self, g: u64) -> bool {
        let frame_of = |i: usize| SeqWord::new(&self.seq[i]).load() / 2;
        let Some(slot) = ring::pick_snapshot_slot(
            2,
            self.published.load(Ordering::Acquire),
            self.table(),
            frame_of,
        ) else {
            return false;
        };
        let seq = SeqWord::new(&self.seq[slot]);
        let previous = seq.load();
        match self
            .table()
            .claim_slot_for_write(slot, &seq, previous, ring::writing(g))
        {
            Ok(()) => {
                self.a[slot].store(g, Ordering::Relaxed);
                self.b[slot].store(g, Ordering::Relaxed);
                seq.commit(ring::committed(g));
                self.published
                    .store(ring::pack_published(g, slot), Ordering::Release);
                true
            }
            Err(LeaseError::SlotBusy { .. }) => {
                assert_eq!(seq.load(), previous, "a refused claim restores the word");
                false
            }
            Err(e) => panic!("{e}"),
        }
    }

    /// Reads the published word, leases the slot it names expecting that frame (retrying when the writer reused the
    /// slot in between), checks the payload twice while leased, releases. Returns the frame read, if any.
    fn read(&self, entry: usize) -> Option<u64> {
        self.read_from(entry, None)
    }

    /// [`Ring::read`], whose first look uses `first` instead of loading the published word: a reader delayed
    /// between its load and its lease.
    fn read_from(&self, entry: usize, mut first: Option<u64>) -> Option<u64> {
        let me = &self.entries[entry];
        for _ in 0..3 {
            let word = first
                .take()
                .unwrap_or_else(|| self.published.load(Ordering::Acquire));
            let (g, slot) = ring::unpack_published(word)?;
            let seq = SeqWord::new(&self.seq[slot]);
            // (A delayed reader gets here after the writer reused the slot: the lease is refused.)
            if !me.try_lease(slot, &seq, ring::committed(g)) {
                self.stale.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let first = (
                self.a[slot].load(Ordering::Relaxed),
                self.b[slot].load(Ordering::Relaxed),
            );
            assert_eq!(first.0, first.1, "torn payload under a lease");
            assert_eq!(
                first.0, g,
                "lease covers another frame than the published one"
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
        // Frame 2 goes to slot 1, which nobody can lease before it is published; frame 3 to slot 0, unless a
        // reader holds it.
        assert!(ring.publish(2), "the unpublished slot was free");
        let published_3 = ring.publish(3);
        for r in readers {
            let got = r.join().unwrap();
            assert!(
                matches!(got, Some(1) | Some(2)) || (got == Some(3) && published_3),
                "a reader got {got:?}, a frame that was never published"
            );
        }
        assert_eq!(ring.table().leases_on(0) + ring.table().leases_on(1), 0);
    });
}

/// A reader that loaded the published word and was delayed before leasing while the writer published twice more
/// (reusing the slot the word names): its lease must be refused, and it must look again and read a newer frame.
/// Loom runs the writer against the delayed reader; then the refusal is forced once more with the stale word.
#[test]
fn r3_a_reader_holding_a_stale_published_word_is_refused_and_retries() {
    builder(3).check(|| {
        let ring = Ring::new(1);
        assert_eq!(ring.table().register(id(10)), Ok(0));
        let stale = ring.published.load(Ordering::Acquire);
        let w = Arc::clone(&ring);
        let writer = thread::spawn(move || (w.publish(2), w.publish(3)));
        let got = ring.read_from(0, Some(stale));
        let (published_2, published_3) = writer.join().unwrap();
        let refused = ring.stale.load(Ordering::Relaxed);
        match got {
            // Leased while slot 0 still held frame 1 (at once, or after a refusal met the writer's claim of slot 0
            // that it then gave up, because of this very lease).
            Some(1) => {}
            Some(2) => assert!(
                published_2 && refused >= 1,
                "frame 2 read without a refusal"
            ),
            Some(3) => assert!(
                published_3 && refused >= 1,
                "frame 3 read without a refusal"
            ),
            other => panic!("the delayed reader got {other:?}"),
        }
        assert!(published_2, "slot 1 was never leased");
        if published_3 {
            // Slot 0 now holds frame 3: the stale word's expectation (frame 1) is refused, every time.
            let before = ring.stale.load(Ordering::Relaxed);
            assert_eq!(ring.read_from(0, Some(stale)), Some(3));
            assert_eq!(
                ring.stale.load(Ordering::Relaxed),
                before + 1,
                "one refusal, then the newest frame"
            );
        }
    });
}

#[test]
fn r3_reclaiming_a_dead_readers_lease_races_safely_with_writer_and_live_reader() {
    builder(3).check(|| {
        let ring = Ring::new(2);
        // Reader 100 leased slot 0 (generation 0) and died.
        let dead = ring.table().register(id(100)).unwrap();
        assert!(ring.entries[dead].try_lease(0, &SeqWord::new(&ring.seq[0]), ring::committed(1)));
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
        // With the dead lease gone, slot 0 can be reused now (frame 2, if written, went to slot 1).
        assert!(ring.publish(3));
    });
}

#[test]
fn r3_two_reclaimers_and_a_registering_reader_never_lose_a_live_lease() {
    builder(3).check(|| {
        let ring = Ring::new(2);
        let dead = ring.table().register(id(100)).unwrap();
        assert!(ring.entries[dead].try_lease(0, &SeqWord::new(&ring.seq[0]), ring::committed(1)));
        let alive = |who: ProcessIdentity| who.pid != 100;

        let r = Arc::clone(&ring);
        let live_reader = thread::spawn(move || {
            let entry = r.table().register(id(200)).unwrap();
            assert!(r.read(entry).is_some());
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

// ---------------------------------------------------------------- R4: the stream ring's back-pressure and wake-ups

/// A stream of `CHUNKS` chunks through a ring of `RING` slots, one writer and one reader, driven by
/// `qadataswap_sync::ring::StreamRing` exactly as `qadataswap-stream` drives it: the writer gives the overwritten
/// chunk up (`give_up_before`), parks on the release futex until `slot_free`, claims the slot through the lease
/// table, commits and `publish`es; the reader picks its start with `start` (the tail/cursor handshake), parks on
/// the publish futex (waking a parked writer first: `flush_writer`), leases the chunk expecting `committed(c)`,
/// advances its cursor and wakes the writer by the real hysteresis rule (`release_wake` / `writer_wake_due`), then
/// releases its lease. The futex model never times out, so a wake-up the rules lose is a deadlock loom reports, and
/// a chunk overwritten before it was read is a refused lease the model asserts against.
struct Stream {
    words: [AtomicU64; 3],
    futexes: [AtomicU32; 4],
    entries: Vec<ReaderEntry>,
    seq: Vec<AtomicU64>,
    data: Vec<AtomicU64>,
}

const RING: usize = 2;
const CHUNKS: u64 = 3;

impl Stream {
    fn new() -> Arc<Self> {
        Arc::new(Stream {
            words: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
            futexes: [
                AtomicU32::new(0),
                AtomicU32::new(0),
                AtomicU32::new(0),
                AtomicU32::new(0),
            ],
            entries: vec![ReaderEntry::new()],
            seq: (0..RING).map(|_| AtomicU64::new(0)).collect(),
            data: (0..RING).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    fn ring(&self) -> StreamRing<'_, WriterSide> {
        StreamRing::new(
            (&self.words[0], &self.words[1], &self.words[2]),
            RING,
            LeaseTable::new(&self.entries),
            Notifier::new(&self.futexes[0], &self.futexes[1]),
            Notifier::new(&self.futexes[2], &self.futexes[3]),
        )
    }

    fn write_all(&self, spin: u32) {
        let ring = self.ring();
        let first = ring.open_for_writer();
        for k in first..first + CHUNKS {
            ring.give_up_before(k);
            let slot = ring.slot_of(k);
            let seq = SeqWord::new(&self.seq[slot]);
            loop {
                ring.release_notifier()
                    .wait_until(&opts(spin), || {
                        Ok::<_, Infallible>(ring.slot_free(k).then_some(()))
                    })
                    .unwrap();
                let previous = seq.load();
                match ring
                    .table()
                    .claim_slot_for_write(slot, &seq, previous, ring::writing(k))
                {
                    Ok(()) => break,
                    // A lease taken between the check and the claim: wait again.
                    Err(LeaseError::SlotBusy { .. }) => continue,
                    Err(e) => panic!("{e}"),
                }
            }
            self.data[slot].store(k, Ordering::Relaxed);
            seq.commit(ring::committed(k));
            ring.publish(k);
        }
        ring.finish(first + CHUNKS);
    }

    /// Registers a reader and positions it with the real handshake (`start`); returns its entry and first chunk.
    fn join(&self) -> (usize, u64) {
        let ring = self.ring().reader_side();
        let entry = ring.table().register(id(10)).unwrap();
        (entry, ring.start(&self.entries[entry], StartAt::Oldest))
    }

    /// Reads every chunk from `c` to the end; returns the chunks read.
    fn read_all(&self, spin: u32, entry: usize, mut c: u64) -> Vec<u64> {
        let ring = self.ring().reader_side();
        let me = &self.entries[entry];
        let mut got = Vec::new();
        loop {
            let ready = || {
                let end = ring.end();
                Ok::<_, Infallible>(if ring.head() >= c {
                    Some(true)
                } else if end != 0 && c >= end {
                    Some(false)
                } else {
                    None
                })
            };
            let more = match ready().unwrap() {
                Some(more) => more,
                None => {
                    ring.flush_writer();
                    ring.publish_notifier()
                        .wait_until_then(&opts(spin), ready, || ring.flush_writer())
                        .unwrap()
                }
            };
            if !more {
                return got;
            }
            let slot = ring.slot_of(c);
            let seq = SeqWord::new(&self.seq[slot]);
            assert!(
                me.try_lease(slot, &seq, ring::committed(c)),
                "chunk {c} was overwritten before its reader got to it"
            );
            assert_eq!(
                self.data[slot].load(Ordering::Relaxed),
                c,
                "slot holds another chunk"
            );
            got.push(c);
            c += 1;
            me.set_cursor(c);
            ring.release_wake(me);
            me.release(slot);
            ring.release_wake(me);
        }
    }
}

fn stream_delivers_every_chunk_once(spin: u32, reader_first: bool) {
    builder(2).check(move || {
        let st = Stream::new();
        let early = reader_first.then(|| st.join());
        let w = Arc::clone(&st);
        let writer = thread::spawn(move || w.write_all(spin));
        let (entry, start) = early.unwrap_or_else(|| st.join());
        let got = st.read_all(spin, entry, start);
        writer.join().unwrap();
        let ring = st.ring();
        // A reader positioned first sees every chunk; a late one starts at the tail it found and sees the rest.
        let first = got.first().copied().unwrap_or(CHUNKS + 1);
        assert_eq!(first, start.min(CHUNKS + 1));
        if reader_first {
            assert_eq!(first, 1);
        }
        assert_eq!(
            got,
            (first..=CHUNKS).collect::<Vec<_>>(),
            "in order, no gap, no duplicate"
        );
        assert_eq!(ring.head(), CHUNKS);
        assert_eq!(
            st.futexes[1].load(Ordering::Relaxed),
            0,
            "nobody left parked on publish"
        );
        assert_eq!(
            st.futexes[3].load(Ordering::Relaxed),
            0,
            "nobody left parked on release"
        );
    });
}

#[test]
fn r4_parked_pair_with_the_real_wake_hysteresis_never_deadlocks_nor_loses_a_chunk() {
    stream_delivers_every_chunk_once(0, true);
}

#[test]
fn r4_spinning_pair_with_the_real_wake_hysteresis_never_deadlocks_nor_loses_a_chunk() {
    stream_delivers_every_chunk_once(1, true);
}

#[test]
fn r4_a_reader_joining_while_the_writer_wraps_never_starts_at_an_overwritten_chunk() {
    stream_delivers_every_chunk_once(0, false);
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
