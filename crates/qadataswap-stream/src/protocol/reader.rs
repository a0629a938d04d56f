//! The stream reader's half of the protocol (docs/FORMAT.md §11): it leases chunk `cursor` when
//! `cursor <= stream_head`, decodes it zero-copy like a snapshot frame, advances its cursor and wakes a parked writer
//! by the ring's hysteresis rule.

use std::sync::Arc;
use std::time::{Duration, Instant};

use qadataswap_arrow::decode::SchemaCache;
use qadataswap_arrow::layout::Mode;
use qadataswap_arrow::reader::{Attachment, Frame};
use qadataswap_arrow::segment::Shared;
use qadataswap_arrow::stats::StatsCounters;
use qadataswap_arrow::{ReaderOptions, Result, Stats, Validation};
use qadataswap_sync::notify::{SpinBudget, WaitError, WaitOptions};
use qadataswap_sync::primitive::{fence, Ordering};
use qadataswap_sync::ring::{StartAt, CURSOR_DETACHED};

use super::common::{check_chunk, effective_spin, writer_gone, Gone, LIVENESS_EVERY};

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
            .field("name", &self.att.shared().name())
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
        self.stats.count_copies(n);
    }

    /// Count a blocking call that reached its timeout.
    pub fn count_timeout(&self) {
        self.stats.count_timeout();
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
        check_chunk(s, c)?;
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
                self.stats.count_retry();
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
        Ok(writer_gone(self.att.shared())?.map(|g| match g {
            Gone::Closed => Poll::Closed,
            Gone::Died(pid) => Poll::WriterDied { pid },
        }))
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

#[allow(dead_code)]
fn _assert_send() {
    fn is_send<T: Send>() {}
    is_send::<StreamReaderCore>();
}
