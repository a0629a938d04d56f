//! The stream writer's half of the protocol (docs/FORMAT.md §11): chunk `k` goes into slot `(k - 1) % slots` once
//! the ring's rules say the slot is free (`qadataswap_sync::ring::StreamRing`), waiting on the release futex and
//! reclaiming dead readers meanwhile.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use qadataswap_arrow::layout::Mode;
use qadataswap_arrow::reader::reclaim_dead_readers;
use qadataswap_arrow::segment::Shared;
use qadataswap_arrow::writer::RawWriter;
use qadataswap_arrow::{Error, Result, Stats, WriteInfo, WriterOptions};
use qadataswap_sync::notify::{SpinBudget, WaitError, WaitOptions};

use super::common::{effective_spin, RECLAIM_EVERY};

/// A reader that keeps the writer from reusing a slot (what [`ChunkWrite::Blocked`] and the stream's
/// `Error::ReadersBehind` report).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Laggard {
    /// The reader's pid.
    pub pid: u32,
    /// The next chunk it will read (its `cursor`); it holds the writer back when `cursor <= chunk - slot_count`.
    pub next_chunk: u64,
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
        laggards: Vec<Laggard>,
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
            .field("name", &self.raw.shared().name())
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
        let next = raw.stream_ring().open_for_writer();
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
    pub fn laggards(&self, chunk: u64) -> Vec<Laggard> {
        self.shared()
            .stream_ring()
            .holding_back(chunk)
            .map(|(e, cursor, leases)| Laggard {
                pid: e.pid(),
                next_chunk: cursor,
                leases,
            })
            .collect()
    }

    /// Whether chunk `chunk`'s slot may be written now (the ring's rule; cheap: no `/proc` access).
    fn slot_free(&self, chunk: u64) -> bool {
        self.raw.stream_ring().slot_free(chunk)
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
                    self.shared().name()
                ),
            });
        }
        RawWriter::check_frame(schema, batches)?;
        let shared = Arc::clone(self.shared());
        let k = self.next;
        let slot = self.slot_of(k);
        // Give up chunk k - n for late joiners first, then look at the cursors.
        self.raw.stream_ring().give_up_before(k);
        let info = loop {
            if let Some(waited) = self.wait_free(&shared, k, deadline)? {
                self.raw.counters().count_timeout();
                return Ok(ChunkWrite::Blocked {
                    chunk: k,
                    slot,
                    waited,
                    laggards: self.laggards(k),
                });
            }
            match self.raw.write_slot(slot, k, schema, batches)? {
                Some(info) => break info,
                // A lease appeared between the check and the claim: wait again (still bounded by the deadline).
                None => {
                    if Instant::now() >= deadline {
                        self.raw.counters().count_timeout();
                        return Ok(ChunkWrite::Blocked {
                            chunk: k,
                            slot,
                            waited: Duration::ZERO,
                            laggards: self.laggards(k),
                        });
                    }
                    std::hint::spin_loop();
                    continue;
                }
            }
        };
        self.raw.stream_ring().publish(k);
        self.next += 1;
        Ok(ChunkWrite::Written(info))
    }

    /// Wait until the slot is free. `Ok(None)`: free; `Ok(Some(waited))`: the deadline passed.
    fn wait_free(&self, s: &Shared, chunk: u64, deadline: Instant) -> Result<Option<Duration>> {
        if self.slot_free(chunk) {
            return Ok(None);
        }
        self.raw.counters().count_lease_wait();
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
                if self.slot_free(chunk) {
                    return Ok(Some(()));
                }
                if last_reclaim.elapsed() >= RECLAIM_EVERY {
                    last_reclaim = Instant::now();
                    if !reclaim_dead_readers(s).is_empty() {
                        return Ok(self.slot_free(chunk).then_some(()));
                    }
                }
                Ok(None)
            });
        match r {
            Ok(()) => Ok(None),
            Err(WaitError::Aborted(e)) => Err(e),
            Err(_) => {
                // One last look for dead readers, so a deadline that passed just as one died does not fail.
                reclaim_dead_readers(s);
                if self.slot_free(chunk) {
                    Ok(None)
                } else {
                    Ok(Some(start.elapsed()))
                }
            }
        }
    }

    /// Readers attached and positioned (dead readers are reclaimed first, so they do not count).
    pub fn readers(&self) -> usize {
        reclaim_dead_readers(self.shared());
        self.shared().stream_ring().positions().count()
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
                reclaim_dead_readers(s);
                let have = s.stream_ring().positions().count();
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
        self.raw.finish_stream(end);
        if !linger.is_zero() {
            let wait = WaitOptions {
                spin: SpinBudget(0),
                deadline: Instant::now().checked_add(linger),
                slice: Duration::from_millis(20),
            };
            let _ = s
                .release_notifier()
                .wait_until(&wait, || -> Result<Option<()>, Error> {
                    reclaim_dead_readers(&s);
                    // Readers of this very process are not waited for: one on this thread could not read on
                    // while the writer waits, and none of them needs the name any more.
                    let me = qadataswap_sync::process::current_pid();
                    let behind = s
                        .stream_ring()
                        .positions()
                        .any(|(e, c)| e.pid() != me && c < end);
                    Ok((!behind).then_some(()))
                });
        }
        self.raw.close_finished()
    }
}

#[allow(dead_code)]
fn _assert_send() {
    fn is_send<T: Send>() {}
    is_send::<StreamWriterCore>();
}
