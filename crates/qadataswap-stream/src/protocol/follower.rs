//! A stream reader that never holds the writer back (for viewers such as `qadataswap cat --follow`): see
//! [`StreamFollower`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use qadataswap_arrow::decode::SchemaCache;
use qadataswap_arrow::layout::Mode;
use qadataswap_arrow::reader::{Attachment, Frame};
use qadataswap_arrow::segment::Shared;
use qadataswap_arrow::stats::StatsCounters;
use qadataswap_arrow::{Error, ReaderOptions, Result, Stats, Validation};
use qadataswap_sync::notify::{SpinBudget, WaitError, WaitOptions};
use qadataswap_sync::ring::{StartAt, CURSOR_DETACHED};

use super::common::{check_chunk, effective_spin, writer_gone, Gone, LIVENESS_EVERY};

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

/// A stream reader that never holds the writer back: see the [protocol module docs](super).
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
            .field("name", &self.att.shared().name())
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
        let slot = self.shared().stream_ring().slot_of(c);
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
        self.stats.count_copies(buffers as u64);
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
            check_chunk(self.shared(), c)?;
            if let Some(f) = self.copy_chunk(c)? {
                self.cursor = c + 1;
                return Ok(Some(FollowEvent::Chunk(f)));
            }
            // The slot no longer holds chunk c: the writer raised the tail past it before claiming the slot.
            self.stats.count_retry();
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
        let name = || self.att.shared().name().to_owned();
        let gone = writer_gone(self.att.shared())?.map(|g| match g {
            Gone::Closed => Error::WriterClosed { name: name() },
            Gone::Died(pid) => Error::WriterDied { name: name(), pid },
        });
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
                self.stats.count_timeout();
                Err(Error::Timeout {
                    name: s.name().to_owned(),
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
    is_send::<StreamFollower>();
}
