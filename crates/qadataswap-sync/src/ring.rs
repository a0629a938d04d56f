//! The ring's rules (docs/FORMAT.md §8 and §11), as functions over this crate's atomics and [`LeaseTable`]: which
//! slot a snapshot writer takes, what the published word and the commit words encode, when a stream slot is free,
//! when a reader wakes a parked writer, and the tail/cursor handshake by which a new stream reader picks its first
//! chunk. `qadataswap-arrow` and `qadataswap-stream` call exactly these, and the loom models in `tests/loom.rs`
//! drive exactly these, so editing a rule is checked by the models.

use crate::lease::{LeaseTable, ReaderEntry};
use crate::notify::Notifier;
use std::marker::PhantomData;

use crate::primitive::{fence, AtomicU64, Ordering};

/// Cursor value of a reader handle that was dropped while some of its chunks are still alive: it no longer holds
/// the writer back by position, only by its leases.
pub const CURSOR_DETACHED: u64 = u64::MAX;

/// The `published` word: `frame_seq << 8 | slot` (0 = nothing published yet).
pub fn pack_published(frame_seq: u64, slot: usize) -> u64 {
    (frame_seq << 8) | (slot as u64 & 0xff)
}

/// Inverse of [`pack_published`]; `None` for 0 (nothing published yet).
pub fn unpack_published(word: u64) -> Option<(u64, usize)> {
    if word == 0 {
        None
    } else {
        Some((word >> 8, (word & 0xff) as usize))
    }
}

/// The commit word of a slot holding frame (or chunk) `frame_seq`, committed: `2 * frame_seq`. A reader leases a
/// published frame expecting exactly this value, so a slot rewritten since it looked is refused and it looks again.
pub fn committed(frame_seq: u64) -> u64 {
    frame_seq.wrapping_mul(2)
}

/// The commit word of a slot while frame `frame_seq` is being written: `2 * frame_seq - 1` (odd).
pub fn writing(frame_seq: u64) -> u64 {
    frame_seq.wrapping_mul(2).wrapping_sub(1)
}

/// The snapshot writer's slot choice: not the published slot (unless there is only one), none a reader leases, the
/// oldest frame first (`frame_seq(i)` is slot `i`'s frame number, 0 when empty). `None`: every candidate is leased.
pub fn pick_snapshot_slot(
    slots: usize,
    published: u64,
    table: LeaseTable<'_>,
    frame_seq: impl Fn(usize) -> u64,
) -> Option<usize> {
    let published = unpack_published(published).map(|(_, slot)| slot);
    (0..slots)
        .filter(|&i| slots == 1 || Some(i) != published)
        .filter(|&i| table.leases_on(i) == 0)
        .min_by_key(|&i| frame_seq(i))
}

/// How many slots a reader frees before it wakes a writer parked on a full ring: half the ring (at least one).
pub fn wake_batch(slots: u64) -> u64 {
    (slots / 2).max(1)
}

/// Where a new stream reader starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartAt {
    /// At `stream_tail`: the oldest chunk the writer still retains in the ring (chunk 1 if it has not wrapped yet).
    #[default]
    Oldest,
    /// At `stream_head + 1`: only chunks published after the reader attached.
    Next,
    /// At `stream_head`: the newest chunk published so far (chunk 1 if none was published yet).
    Newest,
}

/// The writer's side of a [`StreamRing`]: every method, the stores into `stream_head`, `stream_tail` and
/// `stream_end` included (only the stream's writer holds one).
#[derive(Clone, Copy, Debug)]
pub enum WriterSide {}

/// A reader's side of a [`StreamRing`]: it reads the three words, publishes its own cursor and wakes the writer;
/// it cannot store into the ring's words:
///
/// ```compile_fail
/// use qadataswap_sync::ring::{ReaderSide, StreamRing};
/// fn a_reader_publishing(ring: StreamRing<'_, ReaderSide>) {
///     ring.publish(1); // only the writer's side has `publish`
/// }
/// ```
#[derive(Clone, Copy, Debug)]
pub enum ReaderSide {}

/// A stream segment's ring: its three words (`stream_head`, `stream_tail`, `stream_end`), its reader table and its
/// two futexes (publish: readers park; release: the writer parks). Chunks are numbered from 1; chunk `k` lives in
/// slot `(k - 1) % slots`. `Side` says who holds it: [`WriterSide`] (made by [`StreamRing::new`]) or
/// [`ReaderSide`] ([`StreamRing::reader_side`]).
pub struct StreamRing<'a, Side = ReaderSide> {
    head: &'a AtomicU64,
    tail: &'a AtomicU64,
    end: &'a AtomicU64,
    slots: u64,
    table: LeaseTable<'a>,
    publish: Notifier<'a>,
    release: Notifier<'a>,
    side: PhantomData<Side>,
}

impl<Side> Clone for StreamRing<'_, Side> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Side> Copy for StreamRing<'_, Side> {}

impl<Side> std::fmt::Debug for StreamRing<'_, Side> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamRing")
            .field("head", &self.head())
            .field("tail", &self.tail())
            .field("end", &self.end())
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

impl<'a> StreamRing<'a, WriterSide> {
    /// The ring over these words, for its writer. `slots` is at least 1 (a caller bug otherwise: the header was
    /// validated).
    pub fn new(
        (head, tail, end): (&'a AtomicU64, &'a AtomicU64, &'a AtomicU64),
        slots: usize,
        table: LeaseTable<'a>,
        publish: Notifier<'a>,
        release: Notifier<'a>,
    ) -> StreamRing<'a, WriterSide> {
        debug_assert!(slots >= 1);
        StreamRing {
            head,
            tail,
            end,
            slots: slots.max(1) as u64,
            table,
            publish,
            release,
            side: PhantomData,
        }
    }

    /// The same ring, for a reader.
    pub fn reader_side(self) -> StreamRing<'a, ReaderSide> {
        StreamRing {
            head: self.head,
            tail: self.tail,
            end: self.end,
            slots: self.slots,
            table: self.table,
            publish: self.publish,
            release: self.release,
            side: PhantomData,
        }
    }

    /// A writer taking the ring (fresh or over a dead writer): reopen the end, make the tail at least 1, and return
    /// the chunk it writes next (numbering continues after the last published chunk).
    pub fn open_for_writer(&self) -> u64 {
        let head = self.head();
        self.end.store(0, Ordering::Release);
        self.tail.fetch_max(1, Ordering::AcqRel);
        head.saturating_add(1)
    }

    /// Before writing chunk `chunk` into a slot that held chunk `chunk - slots`: give that one up for late joiners
    /// (`stream_tail`), then a full fence, so that this store and a new reader's cursor store are ordered: either the
    /// writer then sees the reader's cursor (and waits for it), or the reader sees the new tail ([`Self::start`]).
    pub fn give_up_before(&self, chunk: u64) {
        if chunk > self.slots {
            self.tail
                .fetch_max(chunk - self.slots + 1, Ordering::AcqRel);
            fence(Ordering::SeqCst);
        }
    }

    /// Whether chunk `chunk`'s slot may be written now (cheap: no `/proc` access). Leases count in every entry,
    /// exactly as the claim counts them (a reader whose entry was reclaimed while it lived may still hold a lease),
    /// cursors only in registered ones. A pre-check: the claim re-checks the leases under the lease handshake.
    pub fn slot_free(&self, chunk: u64) -> bool {
        let n = self.slots;
        let slot = self.slot_of(chunk);
        // A cursor of 0 is a reader still choosing its start: it re-checks `stream_tail` after publishing its
        // cursor (the fence pair of `give_up_before` and `start`), so it cannot start behind us.
        let limit = chunk.saturating_sub(n);
        self.table.entries().iter().all(|e| {
            if e.lease_count(slot) > 0 {
                return false;
            }
            if e.pid() == 0 {
                return true;
            }
            let c = e.cursor().load(Ordering::Acquire);
            !(chunk > n && c != 0 && c <= limit)
        })
    }

    /// Chunk `chunk` is committed: make it the head and wake readers.
    pub fn publish(&self, chunk: u64) {
        self.head.store(chunk, Ordering::Release);
        self.publish.notify();
    }

    /// The stream ends after chunk `end - 1`: store `stream_end` and wake readers parked for chunks (they drain and
    /// see the end).
    pub fn finish(&self, end: u64) {
        self.end.store(end, Ordering::Release);
        self.publish.notify();
    }
}

/// What both sides do: read the words, a reader's start handshake and its wake-ups of the writer.
impl<'a, Side> StreamRing<'a, Side> {
    /// Slots in the ring.
    pub fn slots(&self) -> u64 {
        self.slots
    }

    /// The slot chunk `chunk` (>= 1) lives in.
    pub fn slot_of(&self, chunk: u64) -> usize {
        (chunk.saturating_sub(1) % self.slots) as usize
    }

    /// The last published chunk (0 = none yet).
    pub fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    /// The oldest chunk the writer has not given up (at least 1).
    pub fn tail(&self) -> u64 {
        self.tail.load(Ordering::Acquire).max(1)
    }

    /// `stream_end`: 0 while open, else the last chunk + 1.
    pub fn end(&self) -> u64 {
        self.end.load(Ordering::Acquire)
    }

    /// The reader table.
    pub fn table(&self) -> LeaseTable<'a> {
        self.table
    }

    /// The publish notifier (readers park here).
    pub fn publish_notifier(&self) -> Notifier<'a> {
        self.publish
    }

    /// The release notifier (the writer parks here).
    pub fn release_notifier(&self) -> Notifier<'a> {
        self.release
    }

    /// The registered readers that hold a position, with it: a cursor of 0 is a reader still choosing its start and
    /// [`CURSOR_DETACHED`] a dropped handle whose chunks live on; neither holds the writer back by position.
    pub fn positions(&self) -> impl Iterator<Item = (&'a ReaderEntry, u64)> + 'a {
        self.table.registered_entries().filter_map(|(_, e)| {
            let c = e.cursor().load(Ordering::Acquire);
            (c != 0 && c != CURSOR_DETACHED).then_some((e, c))
        })
    }

    /// The registered readers that keep chunk `chunk`'s slot from being written, each with its cursor and its leases
    /// on that slot: a whole ring behind, or holding the chunk the slot has now (what [`StreamRing::slot_free`]
    /// waits for, named).
    pub fn holding_back(
        &self,
        chunk: u64,
    ) -> impl Iterator<Item = (&'a ReaderEntry, u64, u32)> + 'a {
        let slot = self.slot_of(chunk);
        let limit = chunk.saturating_sub(self.slots);
        self.table.registered_entries().filter_map(move |(_, e)| {
            let cursor = e.cursor().load(Ordering::Acquire);
            let leases = e.lease_count(slot);
            let behind = cursor != 0 && cursor <= limit;
            (behind || leases > 0).then_some((e, cursor, leases))
        })
    }

    /// A new reader (its entry registered, cursor 0) picks its first chunk per `at` and publishes it as its cursor,
    /// then re-checks the tail after a full fence (the pair of [`Self::give_up_before`]): it never starts at a chunk
    /// the writer already gave up. Returns the cursor.
    pub fn start(&self, entry: &ReaderEntry, at: StartAt) -> u64 {
        let mut c = self.first_chunk(at);
        loop {
            entry.set_cursor(c);
            fence(Ordering::SeqCst);
            let t = self.tail();
            if t <= c {
                return c;
            }
            c = t;
        }
    }

    /// The chunk `at` means now (without publishing a cursor: what a follower, which never holds the writer back,
    /// starts at).
    pub fn first_chunk(&self, at: StartAt) -> u64 {
        match at {
            StartAt::Oldest => self.tail(),
            StartAt::Next => self.head().saturating_add(1).max(self.tail()),
            StartAt::Newest => self.head().max(self.tail()),
        }
    }

    /// Whether a parked writer should be woken now by the reader owning `entry`, which just advanced its cursor or
    /// released a lease: yes if some reader is parked waiting for chunks, or if, as far as this entry is concerned,
    /// the writer can write a whole batch ([`wake_batch`]) of chunks: `head + 1 ..= head + batch` are all past its
    /// cursor's reach and it holds no lease on their slots.
    ///
    /// A wake skipped here is deferred, not lost: every reader about to sleep for chunks wakes a parked writer first
    /// ([`Self::flush_writer`]), and the writer's wait slices bound the delay for a writer nobody is waiting on.
    pub fn writer_wake_due(&self, entry: &ReaderEntry) -> bool {
        if self.publish.waiting() > 0 {
            return true;
        }
        let n = self.slots;
        let head = self.head();
        let last = head.saturating_add(wake_batch(n));
        let c = entry.cursor().load(Ordering::Acquire);
        if c != 0 && c != CURSOR_DETACHED && last > n && c <= last - n {
            return false;
        }
        (head.saturating_add(1)..=last).all(|j| entry.lease_count(self.slot_of(j)) == 0)
    }

    /// After the reader owning `entry` freed something (cursor advanced or lease released; the store is done): the
    /// store-then-load fence, then wake the writer if it is parked and [`Self::writer_wake_due`].
    pub fn release_wake(&self, entry: &ReaderEntry) {
        self.release
            .notify_parked_if(|| self.writer_wake_due(entry));
    }

    /// A reader about to sleep for lack of chunks: wake the writer if it is parked, since it may have been left
    /// asleep by [`Self::writer_wake_due`] with a free slot.
    pub fn flush_writer(&self) {
        self.release.notify_parked_if(|| true);
    }
}

#[cfg(all(test, not(qadataswap_loom)))]
mod tests {
    use super::*;
    use crate::primitive::AtomicU32;
    use crate::process::ProcessIdentity;

    struct Words {
        w: [AtomicU64; 3],
        f: [AtomicU32; 4],
        entries: Vec<ReaderEntry>,
    }

    fn words() -> Words {
        Words {
            w: Default::default(),
            f: Default::default(),
            entries: (0..2).map(|_| ReaderEntry::new()).collect(),
        }
    }

    fn ring(w: &Words, slots: usize) -> StreamRing<'_, WriterSide> {
        StreamRing::new(
            (&w.w[0], &w.w[1], &w.w[2]),
            slots,
            LeaseTable::new(&w.entries),
            Notifier::new(&w.f[0], &w.f[1]),
            Notifier::new(&w.f[2], &w.f[3]),
        )
    }

    #[test]
    fn a_reader_behind_by_a_whole_ring_holds_the_writer_back_and_a_new_one_starts_at_the_tail() {
        let w = words();
        let r = ring(&w, 2);
        assert_eq!(r.open_for_writer(), 1);
        let me = r
            .table()
            .register(ProcessIdentity {
                pid: 7,
                start_time: 1,
            })
            .unwrap();
        assert_eq!(r.start(&w.entries[me], StartAt::Oldest), 1);
        for k in 1..=2 {
            assert!(r.slot_free(k));
            r.give_up_before(k);
            r.publish(k);
        }
        // Chunk 3 reuses chunk 1's slot, which the reader has not read.
        assert!(!r.slot_free(3));
        w.entries[me].set_cursor(2);
        assert!(r.slot_free(3));
        r.give_up_before(3);
        assert_eq!(r.tail(), 2);
        assert_eq!(r.start(&w.entries[me], StartAt::Oldest), 2);
        assert_eq!(r.start(&w.entries[me], StartAt::Next), 3);
    }

    #[test]
    fn the_published_word_and_commit_words_round_trip() {
        assert_eq!(unpack_published(pack_published(12345, 2)), Some((12345, 2)));
        assert_eq!(unpack_published(0), None);
        assert_eq!((writing(3), committed(3)), (5, 6));
    }
}
