//! Stream mode (docs/FORMAT.md §11): every chunk to every reader, in order, with back-pressure.
//!
//! The low-level halves of `qadataswap-stream`'s `SharedDataStream`:
//! - [`StreamWriterCore`] writes chunk `k` (numbered from 1) into slot `(k - 1) % slot_count`, but only once every
//!   registered reader's `cursor` is past chunk `k - slot_count` and nobody holds a lease on that slot; then it
//!   publishes `stream_head = k`. While waiting it parks on the release notifier, and reclaims the entries of dead
//!   readers so that they stop holding it back.
//! - [`StreamReaderCore`] leases chunk `cursor` when `cursor <= stream_head`, decodes it zero-copy like a snapshot
//!   frame, and advances its `cursor`.
//!
//! - [`StreamFollower`] watches a stream without ever holding the writer back (for viewers such as
//!   `qadataswap cat --follow`): it registers an entry (it needs one to take leases) but keeps its cursor at
//!   [`CURSOR_DETACHED`], so the writer's back-pressure ignores it. It leases a chunk only if the slot's commit word
//!   still says that chunk, copies it out and releases the lease at once; chunks the writer overwrote before the
//!   follower got to them are reported as [`FollowEvent::Skipped`], and the follower jumps to the oldest retained.
//!
//! Wake-ups with hysteresis: a parked writer is not woken for every slot a reader frees (that costs a futex wake,
//! a context switch and a re-park per chunk when the ring is full). A reader wakes it once, as far as that reader
//! is concerned, the next `max(1, slot_count / 2)` chunks can be written (cursor far enough ahead, no lease on
//! their slots), or at once while any reader sleeps for chunks. So that nobody waits on a writer left asleep on
//! purpose, a reader (or follower) about to wait for chunks wakes a parked writer first; and the writer's wait
//! slices (10 ms) bound how long it sleeps on a slot that came free while no reader needed chunks.
//!
//! Both sides report the situations a stream has and a snapshot has not as plain data ([`ChunkWrite::Blocked`],
//! [`Poll`], [`FollowEvent`]); the stream crate turns them into its own errors.
//!
//! ```no_run
//! use std::time::Duration;
//! use qadataswap_arrow::stream::{FollowEvent, StartAt, StreamFollower};
//! use qadataswap_arrow::ReaderOptions;
//!
//! let mut f = StreamFollower::open("ticks", &ReaderOptions::default(), StartAt::Newest)?;
//! loop {
//!     match f.next(Some(Duration::from_secs(5)))? {
//!         FollowEvent::Chunk(c) => println!("chunk {}: {} rows", c.seq(), c.num_rows()),
//!         FollowEvent::Skipped { from, to } => println!("fell behind: chunks {from}..={to} are gone"),
//!         FollowEvent::End => break,
//!         _ => {}
//!     }
//! }
//! # Ok::<(), qadataswap_arrow::Error>(())
//! ```

use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use qadataswap_sync::notify::{SpinBudget, WaitError, WaitOptions};

use crate::decode::SchemaCache;
use crate::error::{Error, Result};
use crate::layout::{state, Mode};
use crate::options::{ReaderOptions, Validation, WriterOptions};
use crate::reader::{Attachment, Frame};
use crate::segment::Shared;
use crate::stats::{Stats, StatsCounters};
use crate::writer::{RawWriter, WriteInfo};

pub use qadataswap_sync::ring::CURSOR_DETACHED;

/// How often a waiting writer looks for dead readers (each look reads `/proc` once per registered reader).
const RECLAIM_EVERY: Duration = Duration::from_millis(10);
/// How often a waiting reader checks that the writer is alive.
const LIVENESS_EVERY: Duration = Duration::from_millis(20);

/// A reader that keeps the writer from reusing a slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocker {
    /// The reader's pid.
    pub pid: u32,
    /// The next chunk it will read (its `cursor`); it holds the writer back when `cursor <= chunk - slot_count`.
    pub cursor: u64,
    /// Leases it holds on the slot the writer needs (chunks it still keeps alive).
    pub leases: u32,
}

/// What a blocking chunk write did.
#[derive(Clone, Debug)]
#[must_use]
pub enum ChunkWrite {
    /// The chunk was committed and published.
    Written(WriteInfo),
    /// The slot did not come free before the deadline; nothing was written.
    Blocked {
        /// The chunk that could not be written.
        chunk: u64,
        /// The slot it needs.
        slot: usize,
        /// How long the writer waited.
        waited: Duration,
        /// Who held it back when the wait ended.
        blockers: Vec<Blocker>,
    },
}

/// The writing half of a stream segment.
///
/// `Send`, one thread at a time (`&mut self`).
pub struct StreamWriterCore {
    raw: RawWriter,
    next: u64,
    finished: bool,
}

impl std::fmt::Debug for StreamWriterCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamWriterCore")
            .field("name", &self.raw.shared.name)
            .field("next_chunk", &self.next)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl StreamWriterCore {
    /// Create the stream segment `name` (or take over one whose writer died: numbering continues after the last
    /// published chunk, and readers that are attached carry on).
    ///
    /// # Errors
    /// As [`RawWriter::create`].
    pub fn create(name: &str, opts: WriterOptions) -> Result<StreamWriterCore> {
        let raw = RawWriter::create(name, Mode::Stream, opts)?;
        let next = raw.shared().stream_ring().open_for_writer();
        Ok(StreamWriterCore {
            raw,
            next,
            finished: false,
        })
    }

    /// The segment.
    pub fn shared(&self) -> &Arc<Shared> {
        self.raw.shared()
    }

    /// The options in force.
    pub fn options(&self) -> &WriterOptions {
        self.raw.options()
    }

    /// Counters of this writer (`lease_waits` counts the writes that had to wait for readers).
    pub fn stats(&self) -> Stats {
        self.raw.stats()
    }

    /// The number the next chunk will get.
    pub fn next_chunk_seq(&self) -> u64 {
        self.next
    }

    /// Whether [`StreamWriterCore::finish`] was called.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn slot_of(&self, chunk: u64) -> usize {
        self.shared().stream_ring().slot_of(chunk)
    }

    /// Readers that keep chunk `chunk`'s slot from being written now.
    pub fn blockers(&self, chunk: u64) -> Vec<Blocker> {
        let s = self.shared();
        let n = s.geo.slot_count as u64;
        let slot = self.slot_of(chunk);
        let limit = chunk.saturating_sub(n);
        s.lease_table()
            .registered_entries()
            .filter_map(|(_, e)| {
                let cursor = e.cursor().load(Ordering::Acquire);
                let leases = e.lease_count(slot);
                let behind = cursor != 0 && cursor <= limit;
                (behind || leases > 0).then(|| Blocker {
                    pid: e.pid(),
                    cursor,
                    leases,
                })
            })
            .collect()
    }

    fn slot_free(s: &Shared, chunk: u64) -> bool {
        s.stream_ring().slot_free(chunk)
    }

    /// Write `batches` (of one schema) as the next chunk, waiting until `deadline` for the slowest reader.
    ///
    /// # Errors
    /// [`Error::InvalidFrame`] (mixed schemas, or a write after `finish`), [`Error::SlotTooSmall`], Arrow encoding
    /// errors, [`Error::Forked`].
    pub fn write_chunk(
        &mut self,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        deadline: Instant,
    ) -> Result<ChunkWrite> {
        self.raw.check_owner()?;
        if self.finished {
            return Err(Error::InvalidFrame {
                what: format!(
                    "stream '{}' was finished; no chunk can follow its end",
                    self.shared().name
                ),
            });
        }
        RawWriter::check_frame(schema, batches)?;
        let shared = Arc::clone(self.shared());
        let k = self.next;
        let slot = self.slot_of(k);
        // Give up chunk k - n for late joiners first, then look at the cursors.
        shared.stream_ring().give_up_before(k);
        let info = loop {
            if let Some(waited) = self.wait_free(&shared, k, deadline)? {
                self.raw.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                return Ok(ChunkWrite::Blocked {
                    chunk: k,
                    slot,
                    waited,
                    blockers: self.blockers(k),
                });
            }
            match self.raw.write_slot(slot, k, schema, batches)? {
                Some(info) => break info,
                // A lease appeared between the check and the claim: wait again (still bounded by the deadline).
                None => {
                    if Instant::now() >= deadline {
                        self.raw.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                        return Ok(ChunkWrite::Blocked {
                            chunk: k,
                            slot,
                            waited: Duration::ZERO,
                            blockers: self.blockers(k),
                        });
                    }
                    std::hint::spin_loop();
                    continue;
                }
            }
        };
        shared.stream_ring().publish(k);
        self.next += 1;
        Ok(ChunkWrite::Written(info))
    }

    /// Wait until the slot is free. `Ok(None)`: free; `Ok(Some(waited))`: the deadline passed.
    fn wait_free(&self, s: &Shared, chunk: u64, deadline: Instant) -> Result<Option<Duration>> {
        if Self::slot_free(s, chunk) {
            return Ok(None);
        }
        self.raw.stats.lease_waits.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        let mut last_reclaim = start;
        let wait = WaitOptions {
            spin: SpinBudget(effective_spin(s, self.raw.options().spin)),
            deadline: Some(deadline),
            // Readers wake a parked writer with hysteresis (`writer_wake_due`): a slot that came free while no
            // reader needed chunks may go unannounced, and this slice bounds how long the writer then sleeps on.
            slice: RECLAIM_EVERY,
        };
        let r = s
            .release_notifier()
            .wait_until(&wait, || -> Result<Option<()>, Error> {
                if Self::slot_free(s, chunk) {
                    return Ok(Some(()));
                }
                if last_reclaim.elapsed() >= RECLAIM_EVERY {
                    last_reclaim = Instant::now();
                    if !crate::reader::reclaim_dead_readers(s).is_empty() {
                        return Ok(Self::slot_free(s, chunk).then_some(()));
                    }
                }
                Ok(None)
            });
        match r {
            Ok(()) => Ok(None),
            Err(WaitError::Aborted(e)) => Err(e),
            Err(_) => {
                // One last look for dead readers, so a deadline that passed just as one died does not fail.
                crate::reader::reclaim_dead_readers(s);
                if Self::slot_free(s, chunk) {
                    Ok(None)
                } else {
                    Ok(Some(start.elapsed()))
                }
            }
        }
    }

    /// Readers attached and positioned (dead readers are reclaimed first, so they do not count).
    pub fn readers(&self) -> usize {
        crate::reader::reclaim_dead_readers(self.shared());
        count_positioned(self.shared())
    }

    /// Wait until at least `n` readers are attached, up to `timeout`; returns how many there are (fewer than `n`
    /// when the timeout passed).
    ///
    /// # Errors
    /// [`Error::Forked`].
    pub fn wait_for_readers(&self, n: usize, timeout: Duration) -> Result<usize> {
        self.raw.check_owner()?;
        let s = self.shared();
        let wait = WaitOptions {
            spin: SpinBudget(0),
            deadline: Instant::now().checked_add(timeout),
            slice: Duration::from_millis(20),
        };
        let r = s
            .release_notifier()
            .wait_until(&wait, || -> Result<Option<usize>, Error> {
                crate::reader::reclaim_dead_readers(s);
                let have = count_positioned(s);
                Ok((have >= n).then_some(have))
            });
        match r {
            Ok(have) => Ok(have),
            Err(WaitError::Aborted(e)) => Err(e),
            Err(_) => Ok(self.readers()),
        }
    }

    /// End the stream cleanly: store `stream_end`, mark the segment finished, wake everyone, unlink the name unless
    /// persistent. Readers drain what was written and then see the end. Idempotent.
    ///
    /// # Errors
    /// [`Error::Forked`], an unlink failure.
    pub fn finish(&mut self) -> Result<()> {
        self.finish_lingering(Duration::ZERO)
    }

    /// [`StreamWriterCore::finish`], keeping the name (and the writer role) until every attached reader of another
    /// process has read the end, or `linger` has passed: a reader still attaching in that time finds the stream and
    /// drains it.
    ///
    /// # Errors
    /// As [`StreamWriterCore::finish`].
    pub fn finish_lingering(&mut self, linger: Duration) -> Result<()> {
        self.raw.check_owner()?;
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        let end = self.next;
        let s = Arc::clone(self.shared());
        s.stream_ring().finish(end);
        s.set_state(state::FINISHED);
        if !linger.is_zero() {
            let wait = WaitOptions {
                spin: SpinBudget(0),
                deadline: Instant::now().checked_add(linger),
                slice: Duration::from_millis(20),
            };
            let _ = s
                .release_notifier()
                .wait_until(&wait, || -> Result<Option<()>, Error> {
                    crate::reader::reclaim_dead_readers(&s);
                    // Readers of this very process are not waited for: one on this thread could not read on
                    // while the writer waits, and none of them needs the name any more.
                    let me = qadataswap_sync::process::current_pid();
                    let behind = s.lease_table().registered_entries().any(|(_, e)| {
                        let c = e.cursor().load(Ordering::Acquire);
                        e.pid() != me && c != 0 && c != CURSOR_DETACHED && c < end
                    });
                    Ok((!behind).then_some(()))
                });
        }
        self.raw.close_with(state::FINISHED)
    }
}

/// The spin budget to use: spinning only pays when every party (the writer and each reader) has a core of its own;
/// on an oversubscribed machine a spinning waiter takes the CPU from the process it waits for, so park at once.
fn effective_spin(s: &Shared, spin: u32) -> u32 {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let parties = s.lease_table().registered_entries().count() + 1;
    if parties > cores {
        0
    } else {
        spin
    }
}

fn count_positioned(s: &Shared) -> usize {
    s.lease_table()
        .registered_entries()
        .filter(|(_, e)| {
            let c = e.cursor().load(Ordering::Acquire);
            c != 0 && c != CURSOR_DETACHED
        })
        .count()
}

pub use qadataswap_sync::ring::StartAt;

/// What a non-blocking look at the stream found.
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum Poll {
    /// The next chunk (the cursor has moved past it).
    Chunk(Frame),
    /// Nothing new yet.
    Pending,
    /// Every chunk up to the clean end was read.
    End,
    /// The writer closed the segment without finishing the stream, and every chunk it wrote was read.
    Closed,
    /// The writer process died, and every chunk it published was read.
    WriterDied {
        /// The dead writer's pid.
        pid: u32,
    },
    /// The next chunk needs a slot this reader itself still holds a lease on (it keeps chunk `chunk - slot_count`
    /// alive): waiting would deadlock.
    RingHeld {
        /// The chunk this reader waits for.
        chunk: u64,
        /// The slot that chunk needs.
        slot: usize,
        /// Leases this reader holds on it.
        held: u32,
    },
    /// The chunk at the cursor is gone (the slot holds another chunk): this reader's entry was reclaimed or the
    /// segment was rewritten.
    Lost {
        /// The chunk the cursor pointed at.
        expected: u64,
        /// The oldest chunk still retained.
        oldest: u64,
    },
}

/// The reading half of a stream segment.
///
/// `Send`; one thread at a time (`&mut self`). Chunks it returns are `Send + Sync` and hold their slot's lease.
pub struct StreamReaderCore {
    att: Arc<Attachment>,
    cursor: u64,
    cache: SchemaCache,
    validation: Validation,
    spin: u32,
    stats: StatsCounters,
    last_liveness: Instant,
}

impl std::fmt::Debug for StreamReaderCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamReaderCore")
            .field("name", &self.att.shared().name)
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl StreamReaderCore {
    /// Attach to the stream segment `name` and choose the first chunk per `start`.
    ///
    /// # Errors
    /// As [`Attachment::open`].
    pub fn open(name: &str, opts: &ReaderOptions, start: StartAt) -> Result<StreamReaderCore> {
        let att = Attachment::open(name, Mode::Stream, opts)?;
        let s = att.shared();
        let c = s.stream_ring().start(att.entry(), start);
        att.entry().touch();
        s.release_notifier().notify();
        Ok(StreamReaderCore {
            att,
            cursor: c,
            cache: None,
            validation: opts.validation,
            spin: opts.spin,
            stats: StatsCounters::default(),
            last_liveness: Instant::now(),
        })
    }

    /// The segment.
    pub fn shared(&self) -> &Arc<Shared> {
        self.att.shared()
    }

    /// The attachment (mapping and reader entry).
    pub fn attachment(&self) -> &Arc<Attachment> {
        &self.att
    }

    /// The number of the next chunk this reader will return.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Counters of this reader (`copies` counts buffers decompressed into private memory).
    pub fn stats(&self) -> Stats {
        self.stats.snapshot()
    }

    /// Add `n` to this reader's copy counter (for copies made above this layer, like `to_owned`).
    pub fn count_copies(&self, n: u64) {
        self.stats.copies.fetch_add(n, Ordering::Relaxed);
    }

    /// Count a blocking call that reached its timeout.
    pub fn count_timeout(&self) {
        self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
    }

    /// Look once, without blocking and without checking on the writer.
    ///
    /// # Errors
    /// [`Error::CorruptFrame`], [`Error::Forked`].
    pub fn poll(&mut self) -> Result<Poll> {
        self.att.check_owner()?;
        let p = self.poll_owned()?;
        Ok(self.flush_if_pending(p))
    }

    /// A reader that polls and finds nothing needs the writer: do not leave it parked on our account (see
    /// `writer_wake_due`). Costs a fence and a load; a system call only when the writer is parked.
    fn flush_if_pending(&self, p: Poll) -> Poll {
        if matches!(p, Poll::Pending) {
            self.att.shared().stream_ring().flush_writer();
        }
        p
    }

    /// [`StreamReaderCore::poll`] without the fork check (the caller made it).
    fn poll_owned(&mut self) -> Result<Poll> {
        let s = Arc::clone(self.att.shared());
        let c = self.cursor;
        let ring = s.stream_ring();
        if c <= ring.head() {
            return self.take(&s, c);
        }
        let end = ring.end();
        if end != 0 && c >= end {
            return Ok(Poll::End);
        }
        if c > ring.slots() {
            let slot = ring.slot_of(c);
            let held = self.att.entry().lease_count(slot);
            if held > 0 {
                return Ok(Poll::RingHeld {
                    chunk: c,
                    slot,
                    held,
                });
            }
        }
        Ok(Poll::Pending)
    }

    /// Lease, decode and return chunk `c`, advancing the cursor.
    fn take(&mut self, s: &Shared, c: u64) -> Result<Poll> {
        let slot = s.stream_ring().slot_of(c);
        match self.att.lease_frame(slot, c)? {
            Some(leased) => {
                let frame =
                    leased.decode(&self.att, &mut self.cache, self.validation, &self.stats)?;
                self.cursor = c + 1;
                let entry = self.att.entry();
                entry.set_cursor(c + 1);
                entry.touch();
                // Store-then-load with the writer's park (waiters++, fence, poll cursors): it either sees the new
                // cursor or is counted, and then we wake it when the wake is due.
                s.stream_ring().release_wake(entry);
                Ok(Poll::Chunk(frame))
            }
            None => {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
                let oldest = s.stream_ring().tail();
                Ok(Poll::Lost {
                    expected: c,
                    oldest,
                })
            }
        }
    }

    /// Why nothing more will come, if so (writer closed without finishing, or dead). Reads `/proc` once.
    ///
    /// # Errors
    /// [`Error::CorruptHeader`] if the state word holds a value no writer stores.
    fn gone(&self) -> Result<Option<Poll>> {
        let s = self.att.shared();
        match s.state() {
            state::CLOSED => return Ok(Some(Poll::Closed)),
            st if st > state::FINISHED => {
                return Err(Error::CorruptHeader {
                    name: s.name.clone(),
                    what: format!("unknown state {st}"),
                })
            }
            _ => {}
        }
        Ok(match s.writer_liveness() {
            Some((pid, qadataswap_sync::process::Liveness::Dead)) => Some(Poll::WriterDied { pid }),
            _ => None,
        })
    }

    /// [`StreamReaderCore::poll`], and when nothing is pending, a check on the writer at most every 20 ms, so a
    /// caller that only polls still learns that the writer died.
    ///
    /// # Errors
    /// As [`StreamReaderCore::poll`].
    pub fn try_next(&mut self) -> Result<Poll> {
        self.att.check_owner()?;
        let p = self.try_next_owned()?;
        Ok(self.flush_if_pending(p))
    }

    /// [`StreamReaderCore::try_next`] without the fork check (the caller made it).
    fn try_next_owned(&mut self) -> Result<Poll> {
        let p = self.poll_owned()?;
        if !matches!(p, Poll::Pending) || self.last_liveness.elapsed() < LIVENESS_EVERY {
            return Ok(p);
        }
        self.last_liveness = Instant::now();
        match self.gone()? {
            // Drain first: something published just before the writer went is still delivered.
            Some(g) => match self.poll_owned()? {
                Poll::Pending => Ok(g),
                other => Ok(other),
            },
            None => Ok(Poll::Pending),
        }
    }

    /// Wait (spin, then park on the publish notifier) until something other than [`Poll::Pending`] happens or
    /// `deadline` passes (then `Poll::Pending`).
    ///
    /// # Errors
    /// As [`StreamReaderCore::poll`].
    pub fn wait(&mut self, deadline: Option<Instant>) -> Result<Poll> {
        self.att.check_owner()?;
        let p = self.poll_owned()?;
        if !matches!(p, Poll::Pending) {
            return Ok(p);
        }
        let att = Arc::clone(&self.att);
        let s = att.shared();
        // Nothing to read: a writer parked on a full ring must not stay asleep on our account while we spin.
        s.stream_ring().flush_writer();
        let wait = WaitOptions {
            spin: SpinBudget(effective_spin(s, self.spin)),
            deadline,
            slice: Duration::from_millis(100),
        };
        let r = s.notifier().wait_until_then(
            &wait,
            || -> Result<Option<Poll>> {
                match self.try_next_owned()? {
                    Poll::Pending => Ok(None),
                    other => Ok(Some(other)),
                }
            },
            || s.stream_ring().flush_writer(),
        );
        match r {
            Ok(p) => Ok(p),
            Err(WaitError::Aborted(e)) => Err(e),
            Err(_) => Ok(Poll::Pending),
        }
    }
}

impl Drop for StreamReaderCore {
    fn drop(&mut self) {
        if self.att.check_owner().is_err() {
            return;
        }
        // Chunks still alive keep the attachment (and the entry) registered; from now on they hold the writer back
        // only by their leases, not by this handle's position.
        let s = self.att.shared();
        self.att.entry().set_cursor(CURSOR_DETACHED);
        fence(Ordering::SeqCst);
        s.release_notifier().notify();
    }
}

/// What [`StreamFollower::next`] found.
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum FollowEvent {
    /// The next chunk, copied into private memory (it holds no lease).
    Chunk(Frame),
    /// The writer overwrote chunks `from..=to` before the follower got to them (it never waits for a follower);
    /// the follower now stands at `to + 1`, the oldest chunk retained when it looked.
    Skipped {
        /// The first chunk lost.
        from: u64,
        /// The last chunk lost.
        to: u64,
    },
    /// The writer finished the stream and every chunk from the follower's position on was returned or skipped.
    End,
}

/// A stream reader that never holds the writer back: see the [module docs](self).
///
/// Its reader entry keeps `cursor = CURSOR_DETACHED`, so the writer's "slowest reader" rule ignores it; a lease is
/// held only while one chunk is copied out. `Send`; one thread at a time (`&mut self`).
pub struct StreamFollower {
    att: Arc<Attachment>,
    cursor: u64,
    cache: SchemaCache,
    validation: Validation,
    spin: u32,
    stats: StatsCounters,
    last_liveness: Instant,
}

impl std::fmt::Debug for StreamFollower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamFollower")
            .field("name", &self.att.shared().name)
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl StreamFollower {
    /// Attach to the stream segment `name` as a follower, at the chunk `start` names.
    ///
    /// # Errors
    /// As [`Attachment::open`].
    pub fn open(name: &str, opts: &ReaderOptions, start: StartAt) -> Result<StreamFollower> {
        let att = Attachment::open(name, Mode::Stream, opts)?;
        // Detached from the start: a cursor of 0 (just registered) is ignored by the writer too.
        att.entry().set_cursor(CURSOR_DETACHED);
        att.entry().touch();
        let s = att.shared();
        let cursor = s.stream_ring().first_chunk(start);
        Ok(StreamFollower {
            att,
            cursor,
            cache: None,
            validation: opts.validation,
            spin: opts.spin,
            stats: StatsCounters::default(),
            last_liveness: Instant::now(),
        })
    }

    /// The segment.
    pub fn shared(&self) -> &Arc<Shared> {
        self.att.shared()
    }

    /// The number of the next chunk this follower will try to return.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// The newest published chunk (0 if none yet).
    pub fn head(&self) -> u64 {
        self.shared().stream_ring().head()
    }

    /// The oldest chunk the writer still retains (chunks before it may already be overwritten).
    pub fn oldest(&self) -> u64 {
        self.shared().stream_ring().tail()
    }

    /// Counters of this follower (`copies` counts buffers copied out; every chunk is copied).
    pub fn stats(&self) -> Stats {
        self.stats.snapshot()
    }

    /// Lease chunk `c` if its slot still holds it, copy it out and release the lease at once.
    fn copy_chunk(&mut self, c: u64) -> Result<Option<Frame>> {
        let n = self.shared().geo.slot_count as u64;
        let slot = ((c - 1) % n) as usize;
        let Some(leased) = self.att.lease_frame(slot, c)? else {
            return Ok(None);
        };
        let frame = leased.decode(&self.att, &mut self.cache, self.validation, &self.stats)?;
        let owned = frame.to_owned();
        // Release before anything else happens (also when the copy failed).
        drop(frame);
        let owned = owned?;
        let buffers: usize = owned
            .batches()
            .iter()
            .flat_map(|b| b.columns())
            .map(|a| a.to_data().buffers().len())
            .sum();
        self.stats
            .copies
            .fetch_add(buffers as u64, Ordering::Relaxed);
        self.att.entry().touch();
        Ok(Some(owned))
    }

    /// Look once, without blocking and without checking on the writer. `Ok(None)`: nothing new yet.
    ///
    /// # Errors
    /// [`Error::CorruptFrame`], Arrow errors while copying, [`Error::Forked`].
    pub fn poll(&mut self) -> Result<Option<FollowEvent>> {
        self.att.check_owner()?;
        let c = self.cursor;
        if c <= self.head() {
            // Chunks before the tail were given up by the writer: do not even try them (a lease on their slot
            // could make the writer wait).
            let tail = self.oldest();
            if c < tail {
                self.cursor = tail;
                return Ok(Some(FollowEvent::Skipped {
                    from: c,
                    to: tail - 1,
                }));
            }
            if let Some(f) = self.copy_chunk(c)? {
                self.cursor = c + 1;
                return Ok(Some(FollowEvent::Chunk(f)));
            }
            // The slot no longer holds chunk c: the writer raised the tail past it before claiming the slot.
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            let next = self.oldest().max(c + 1);
            self.cursor = next;
            return Ok(Some(FollowEvent::Skipped {
                from: c,
                to: next - 1,
            }));
        }
        let end = self.shared().stream_ring().end();
        if end != 0 && c >= end {
            return Ok(Some(FollowEvent::End));
        }
        Ok(None)
    }

    /// [`StreamFollower::poll`], and when nothing is new, a check on the writer at most every 20 ms.
    fn try_next(&mut self) -> Result<Option<FollowEvent>> {
        let p = self.poll()?;
        if p.is_some() || self.last_liveness.elapsed() < LIVENESS_EVERY {
            return Ok(p);
        }
        self.last_liveness = Instant::now();
        let s = Arc::clone(self.att.shared());
        let st = s.state();
        if st > state::FINISHED {
            return Err(Error::CorruptHeader {
                name: s.name.clone(),
                what: format!("unknown state {st}"),
            });
        }
        let gone = if st == state::CLOSED {
            Some(Error::WriterClosed {
                name: s.name.clone(),
            })
        } else {
            match s.writer_liveness() {
                Some((pid, qadataswap_sync::process::Liveness::Dead)) => Some(Error::WriterDied {
                    name: s.name.clone(),
                    pid,
                }),
                _ => None,
            }
        };
        match gone {
            // Drain first: a chunk published just before the writer went is still delivered.
            Some(e) => match self.poll()? {
                None => Err(e),
                some => Ok(some),
            },
            None => Ok(None),
        }
    }

    /// Wait (spin, then park on the publish notifier) for the next event, up to `timeout` (`None`: until something
    /// happens).
    ///
    /// # Errors
    /// [`Error::Timeout`]; [`Error::WriterDied`] / [`Error::WriterClosed`] (closed without `finish`) once every
    /// chunk published before is returned; [`Error::CorruptFrame`], [`Error::Forked`].
    pub fn next(&mut self, timeout: Option<Duration>) -> Result<FollowEvent> {
        if let Some(e) = self.poll()? {
            return Ok(e);
        }
        let start = Instant::now();
        let deadline = timeout.and_then(|t| start.checked_add(t));
        let att = Arc::clone(&self.att);
        let s = att.shared();
        // Nothing to show: wake a writer left parked by the hysteresis before spinning (reader step 4).
        s.stream_ring().flush_writer();
        let wait = WaitOptions {
            spin: SpinBudget(effective_spin(s, self.spin)),
            deadline,
            slice: Duration::from_millis(100),
        };
        match s.notifier().wait_until_then(
            &wait,
            || self.try_next(),
            || s.stream_ring().flush_writer(),
        ) {
            Ok(e) => Ok(e),
            Err(WaitError::Aborted(e)) => Err(e),
            Err(_) => {
                self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                Err(Error::Timeout {
                    name: s.name.clone(),
                    what: "waiting for the next stream chunk",
                    waited: start.elapsed(),
                })
            }
        }
    }
}

#[allow(dead_code)]
fn _assert_send() {
    fn is_send<T: Send>() {}
    is_send::<StreamWriterCore>();
    is_send::<StreamReaderCore>();
    is_send::<StreamFollower>();
    let _ = AtomicU64::new(0);
}
