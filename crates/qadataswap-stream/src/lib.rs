//! `SharedDataStream`: a lossless, ordered stream of Arrow record batches from one writer process to any number of
//! reader processes through named shared memory.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use arrow_array::{ArrayRef, Int64Array, RecordBatch};
//! use qadataswap_stream::SharedDataStream;
//!
//! let name = format!("qads-stream-doc-{}", std::process::id());
//! let mut writer = SharedDataStream::create_writer(&name, 1 << 20)?;
//! let mut reader = SharedDataStream::create_reader(&name)?; // usually in another process
//!
//! let col: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
//! let batch = RecordBatch::try_from_iter([("x", col)])?;
//! writer.write_chunk(&batch)?;
//! writer.write_chunk(&batch)?;
//! writer.finish()?; // readers drain what was written, then their iteration ends
//!
//! let mut seqs = Vec::new();
//! for chunk in reader.iter_chunks() {
//!     let chunk = chunk?; // zero-copy: its buffers point into shared memory
//!     assert_eq!(chunk.batches()[0], batch);
//!     seqs.push(chunk.seq());
//! }
//! assert_eq!(seqs, [1, 2]);
//! # Ok(())
//! # }
//! ```
//!
//! # Semantics
//! - **Broadcast, lossless, ordered.** Chunks are numbered from 1. Every reader sees every chunk from its start on,
//!   exactly once and in order. The ring has `num_buffers` slots (memory.num_buffers, default 3); chunk `k` lives in
//!   slot `(k - 1) % num_buffers`.
//! - **Back-pressure.** The writer does not overwrite a chunk that a live reader has not read yet: when the slowest
//!   reader is a whole ring behind, [`StreamWriter::write_chunk`] waits (`sync.timeout_ms` per attempt,
//!   `sync.retry_count` retries; [`Stats::lease_waits`] counts the waits) and then fails with
//!   [`Error::ReadersBehind`], naming the readers that held it back. A reader process that dies stops holding the
//!   writer back: its reader-table entry is reclaimed (pid + start time) within milliseconds.
//! - **Late readers** start at the oldest chunk still retained in the ring ([`StartAt::Oldest`], the default: chunk
//!   1 if the writer has not wrapped around yet), or with [`StartAt::Next`] at the first chunk published after they
//!   attach. [`StreamWriter::wait_for_readers`] lets a writer wait for its audience before the first chunk.
//! - **Zero copy and leases.** A [`Chunk`] is a [`Frame`] like a snapshot: its buffers point into the slot and hold
//!   a lease on it until the last one is dropped. A reader may keep at most `num_buffers - 1` chunks alive while it
//!   reads on; if it still holds the slot its next chunk needs, the read fails at once with [`Error::RingHeld`]
//!   (never a deadlock). [`Chunk::to_owned`] copies a chunk into private memory so it holds no lease.
//! - **Compression** (compression.enabled, lz4 or zstd) uses Arrow IPC body compression; a compressed chunk is
//!   decompressed into private memory on read, so it is not zero-copy and [`Stats::copies`] counts its buffers.
//! - **End of stream.** [`StreamWriter::finish`] ends the stream cleanly: readers drain every chunk, then
//!   [`StreamReader::next_chunk`] returns `Ok(None)` and [`StreamReader::iter_chunks`] ends. A writer that dies
//!   instead is reported, after the drain, as [`Error::WriterDied`]; one dropped without `finish()` as
//!   [`Error::WriterClosed`].
//! - **Configuration**: builders start from [`Config::load`] (`qadataswap.yaml` / `QADATASWAP_*` variables, see
//!   [`config`]); explicit builder calls win.
//!
//! # Threads
//! [`StreamWriter`] and [`StreamReader`] are `Send` (one thread at a time: `&mut self`). [`Chunk`] is
//! `Send + Sync`. Neither handle works in a child after `fork()` (every call returns a `Forked` error).

#![forbid(unsafe_code)]

/// `qadataswap.yaml` (it lives in `qadataswap_arrow::config`: snapshot and stream builders share it).
pub use qadataswap_arrow::config;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod protocol;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use protocol::{ChunkWrite, Poll, StreamReaderCore, StreamWriterCore};
use qadataswap_arrow::{ReaderOptions, WriterOptions};

pub use config::{Algorithm, Config, ConfigError};
pub use error::{Error, Laggard, Result};
pub use protocol::StartAt;
pub use qadataswap_arrow::{Compression, Frame, Stats, Validation, WriteInfo};

/// Spin iterations a stream *writer* makes before parking, unless set with [`StreamWriterBuilder::spin`]: 0. A writer
/// waits only when the ring is full, i.e. for a slower reader; it parks at once, and readers wake it with
/// hysteresis (once half the ring is free), so it neither burns the CPU the slow reader needs nor pays a wake-up
/// per chunk. (Measured on a 2-core machine shared with other work, a spinning writer made small-chunk throughput
/// several times worse.)
pub const DEFAULT_SPIN: u32 = 0;

/// Spin iterations a stream *reader* makes before parking, unless set with [`StreamReaderBuilder::spin`]: 50 polls
/// (a few microseconds, then a short back-off), about the time a writer takes to produce a small chunk. A reader
/// waits when it has caught up with the writer; parking at once would cost a futex wake-up and a context switch
/// per chunk (1000-row chunks, 2 cores: 4 slots ~0.6x the throughput of an Arrow IPC Unix socket without the
/// spin, ~1.3-1.8x with it). The budget is bounded and the core drops it by itself when there are more parties
/// than cores.
pub const DEFAULT_READER_SPIN: u32 = 50;

/// Entry point: `SharedDataStream::create_writer(name, size)`, `SharedDataStream::create_reader(name)`, or for
/// everything optional `SharedDataStream::writer(name)` / `SharedDataStream::reader(name)`.
#[derive(Debug)]
pub struct SharedDataStream;

impl SharedDataStream {
    /// Create the stream `name` with `size` bytes of data capacity (split across `num_buffers` slots; other
    /// settings from [`Config::load`]).
    ///
    /// # Errors
    /// [`Error::Config`] for a bad configuration; name, permission and space errors; a live writer already owns
    /// the name.
    pub fn create_writer(name: &str, size: usize) -> Result<StreamWriter> {
        Self::writer(name).size(size).create()
    }

    /// Attach a reader to the stream `name`, starting at the oldest retained chunk.
    ///
    /// # Errors
    /// [`Error::Config`]; the stream does not exist, is not a stream, or has no free reader entry.
    pub fn create_reader(name: &str) -> Result<StreamReader> {
        Self::reader(name).open()
    }

    /// A builder for the writer of `name`: writer options only.
    pub fn writer(name: &str) -> StreamWriterBuilder {
        StreamWriterBuilder {
            common: Common::new(name),
            size: None,
            slots: None,
            compression: None,
            reader_capacity: None,
            persistent: None,
            min_readers: None,
            linger: None,
        }
    }

    /// A builder for a reader of `name`: reader options only.
    pub fn reader(name: &str) -> StreamReaderBuilder {
        StreamReaderBuilder {
            common: Common::new(name),
            start: StartAt::Oldest,
            validation: Validation::Trusted,
            open_timeout: None,
        }
    }
}

/// What both ends' builders hold: the name, where the configuration comes from, one attempt's timeout, the retries,
/// the spin.
#[derive(Clone, Debug)]
struct Common {
    name: String,
    config: Option<Config>,
    config_file: Option<std::path::PathBuf>,
    timeout: Option<Option<Duration>>,
    retry_count: Option<u32>,
    spin: Option<u32>,
}

impl Common {
    fn new(name: &str) -> Common {
        Common {
            name: name.to_owned(),
            config: None,
            config_file: None,
            timeout: None,
            retry_count: None,
            spin: None,
        }
    }

    fn resolve(&self) -> Result<(Config, Option<Duration>, u32)> {
        let cfg = match &self.config {
            Some(c) => c.clone(),
            None => Config::load_with(self.config_file.as_deref())?,
        };
        let timeout = self.timeout.unwrap_or(Some(cfg.timeout()));
        let retries = self.retry_count.unwrap_or(cfg.retry_count);
        Ok((cfg, timeout, retries))
    }
}

/// The setters both builders have (the options of [`Common`]).
macro_rules! common_setters {
    ($builder:ident, $spin_default:literal) => {
        impl $builder {
            /// Use this configuration instead of loading `qadataswap.yaml` and the environment.
            pub fn config(mut self, cfg: Config) -> Self {
                self.common.config = Some(cfg);
                self
            }
            /// Load the configuration from this file (which must exist) instead of the usual search
            /// (`$QADATASWAP_CONFIG`, then `./qadataswap.yaml`); the `QADATASWAP_*` variables still apply.
            pub fn config_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
                self.common.config_file = Some(path.into());
                self
            }
            /// One attempt of a blocking call (`None`: wait without limit; death and end still end the wait).
            pub fn timeout(mut self, t: Option<Duration>) -> Self {
                self.common.timeout = Some(t);
                self
            }
            /// Attempts after the first before a timeout error.
            pub fn retry_count(mut self, n: u32) -> Self {
                self.common.retry_count = Some(n);
                self
            }
            #[doc = concat!("Spin iterations before parking (default [`", $spin_default, "`]).")]
            pub fn spin(mut self, n: u32) -> Self {
                self.common.spin = Some(n);
                self
            }
        }
    };
}

/// Builder for a [`StreamWriter`] ([`SharedDataStream::writer`]). Unset options come from the [`Config`] (loaded at
/// create time unless one was given with [`StreamWriterBuilder::config`]).
#[derive(Clone, Debug)]
pub struct StreamWriterBuilder {
    common: Common,
    size: Option<usize>,
    slots: Option<usize>,
    compression: Option<Option<Compression>>,
    reader_capacity: Option<usize>,
    persistent: Option<bool>,
    min_readers: Option<usize>,
    linger: Option<Duration>,
}

common_setters!(StreamWriterBuilder, "DEFAULT_SPIN");

impl StreamWriterBuilder {
    /// Readers that must be attached before the first chunk is written (default 1: nothing written is lost for want
    /// of a reader). The first write waits for them up to the timeout (all attempts), then fails with
    /// [`Error::NoReaders`]. 0: broadcast to whoever is attached (late readers learn what they missed:
    /// [`Error::JoinedLate`]).
    pub fn min_readers(mut self, n: usize) -> Self {
        self.min_readers = Some(n);
        self
    }
    /// How long [`StreamWriter::finish`] keeps a finished stream's name for attached readers that have not read its
    /// end yet (default: the timeout, `sync.timeout_ms`). Readers already attached read on regardless; the name only
    /// matters to readers still attaching.
    pub fn linger(mut self, d: Duration) -> Self {
        self.linger = Some(d);
        self
    }
    /// Total data capacity in bytes.
    pub fn size(mut self, bytes: usize) -> Self {
        self.size = Some(bytes);
        self
    }
    /// Slots in the ring (`num_buffers`).
    pub fn slots(mut self, n: usize) -> Self {
        self.slots = Some(n);
        self
    }
    /// Body compression (chunks then cost a copy to read).
    pub fn compression(mut self, c: Option<Compression>) -> Self {
        self.compression = Some(c);
        self
    }
    /// Reader-table entries (default 64).
    pub fn reader_capacity(mut self, n: usize) -> Self {
        self.reader_capacity = Some(n);
        self
    }
    /// Keep the segment after `finish()` (then a reader can still attach and read the retained chunks).
    pub fn persistent(mut self, yes: bool) -> Self {
        self.persistent = Some(yes);
        self
    }

    /// Create the stream (or take over one whose writer died: numbering continues).
    ///
    /// # Errors
    /// As [`SharedDataStream::create_writer`].
    pub fn create(self) -> Result<StreamWriter> {
        let (cfg, timeout, retries) = self.common.resolve()?;
        let mut opts: WriterOptions = cfg.writer_options();
        if let Some(s) = self.size {
            opts.size = s;
        }
        if let Some(n) = self.slots {
            opts.num_buffers = n;
        }
        if let Some(c) = self.compression {
            opts.compression = c;
        }
        if let Some(n) = self.reader_capacity {
            opts.reader_capacity = n;
        }
        if let Some(p) = self.persistent {
            opts.persistent = p;
        }
        opts.spin = self.common.spin.unwrap_or(DEFAULT_SPIN);
        let core = StreamWriterCore::create(&self.common.name, opts)?;
        Ok(StreamWriter {
            name: self.common.name,
            core,
            timeout,
            retries,
            min_readers: self.min_readers.unwrap_or(1),
            linger: self.linger.unwrap_or(cfg.timeout()),
            audience_checked: false,
        })
    }
}

/// Builder for a [`StreamReader`] ([`SharedDataStream::reader`]). Unset options come from the [`Config`] (loaded at
/// open time unless one was given with [`StreamReaderBuilder::config`]).
#[derive(Clone, Debug)]
pub struct StreamReaderBuilder {
    common: Common,
    start: StartAt,
    validation: Validation,
    open_timeout: Option<Option<Duration>>,
}

common_setters!(StreamReaderBuilder, "DEFAULT_READER_SPIN");

impl StreamReaderBuilder {
    /// How long opening waits for the stream to be created, when the reader starts before its writer (default: the
    /// timeout, i.e. `sync.timeout_ms`; `Some(ZERO)` fails at once, `None` waits without limit).
    pub fn open_timeout(mut self, t: Option<Duration>) -> Self {
        self.open_timeout = Some(t);
        self
    }
    /// Where to start.
    pub fn start_at(mut self, s: StartAt) -> Self {
        self.start = s;
        self
    }
    /// Body validation level.
    pub fn validation(mut self, v: Validation) -> Self {
        self.validation = v;
        self
    }

    /// Attach the reader.
    ///
    /// # Errors
    /// As [`SharedDataStream::create_reader`].
    pub fn open(self) -> Result<StreamReader> {
        let (_, timeout, retries) = self.common.resolve()?;
        let mut opts = ReaderOptions {
            timeout,
            validation: self.validation,
            open_timeout: self
                .open_timeout
                .unwrap_or(timeout)
                .unwrap_or(Duration::MAX),
            ..ReaderOptions::default()
        };
        opts.spin = self.common.spin.unwrap_or(DEFAULT_READER_SPIN);
        let core = StreamReaderCore::open(&self.common.name, &opts, self.start)?;
        // Starting at the oldest retained chunk: if the ring no longer holds chunk 1, say which ones are gone.
        let missed =
            (self.start == StartAt::Oldest && core.cursor() > 1).then(|| (1, core.cursor() - 1));
        Ok(StreamReader {
            name: self.common.name,
            core,
            timeout,
            retries,
            delivered: 0,
            done: false,
            missed,
        })
    }
}

/// The writing end of a stream. `Send`; one thread at a time.
pub struct StreamWriter {
    name: String,
    core: StreamWriterCore,
    timeout: Option<Duration>,
    retries: u32,
    min_readers: usize,
    linger: Duration,
    /// Whether the first write's wait for `min_readers` is done.
    audience_checked: bool,
}

impl std::fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamWriter")
            .field("name", &self.name)
            .field("next_seq", &self.next_seq())
            .finish_non_exhaustive()
    }
}

impl StreamWriter {
    /// Write one record batch as the next chunk, waiting (per the configured timeout and retries) while the slowest
    /// reader is a whole ring behind.
    ///
    /// # Errors
    /// [`Error::ReadersBehind`] when readers did not move in time (nothing was written; the call may be
    /// repeated), [`Error::Finished`] after [`StreamWriter::finish`], and Arrow-layer errors (`SlotTooSmall`...).
    pub fn write_chunk(&mut self, batch: &RecordBatch) -> Result<WriteInfo> {
        self.write_frame(batch.schema_ref(), std::slice::from_ref(batch))
    }

    /// Write several batches of one schema as one chunk (kept as they are, not rechunked).
    ///
    /// # Errors
    /// As [`StreamWriter::write_chunk`], plus `InvalidFrame` when a batch's schema differs.
    pub fn write_frame(
        &mut self,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<WriteInfo> {
        if self.core.is_finished() {
            return Err(Error::Finished {
                name: self.name.clone(),
            });
        }
        if !self.audience_checked {
            self.wait_for_audience()?;
        }
        let start = Instant::now();
        let attempts = self.retries.saturating_add(1);
        for attempt in 1..=attempts {
            // No timeout: one attempt that lasts (practically) forever.
            let deadline = match self.timeout {
                Some(t) => Instant::now()
                    .checked_add(t)
                    .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)),
                None => Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600),
            };
            match self.core.write_chunk(schema, batches, deadline)? {
                ChunkWrite::Written(info) => return Ok(info),
                ChunkWrite::Blocked {
                    chunk, laggards, ..
                } if attempt == attempts => {
                    return Err(Error::ReadersBehind {
                        name: self.name.clone(),
                        chunk,
                        waited: start.elapsed(),
                        attempts,
                        laggards,
                    })
                }
                ChunkWrite::Blocked { .. } => {}
            }
        }
        unreachable!("the last attempt returns")
    }

    /// The first write's wait for `min_readers` readers, up to the timeout through all attempts (no timeout: without
    /// limit).
    fn wait_for_audience(&mut self) -> Result<()> {
        if self.min_readers == 0 || self.core.readers() >= self.min_readers {
            self.audience_checked = true;
            return Ok(());
        }
        let start = Instant::now();
        let total = self
            .timeout
            .and_then(|t| t.checked_mul(self.retries.saturating_add(1)));
        loop {
            let slice = match total {
                Some(t) => t.saturating_sub(start.elapsed()),
                None => Duration::from_secs(3600),
            };
            if self.core.wait_for_readers(self.min_readers, slice)? >= self.min_readers {
                self.audience_checked = true;
                return Ok(());
            }
            if total.is_some_and(|t| start.elapsed() >= t) {
                return Err(Error::NoReaders {
                    name: self.name.clone(),
                    min_readers: self.min_readers,
                    waited: start.elapsed(),
                });
            }
        }
    }

    /// Wait until at least `n` readers are attached, up to `timeout`; returns how many are.
    ///
    /// # Errors
    /// [`Error::Timeout`] if fewer than `n` attached in time.
    pub fn wait_for_readers(&self, n: usize, timeout: Duration) -> Result<usize> {
        let start = Instant::now();
        let have = self.core.wait_for_readers(n, timeout)?;
        if have >= n {
            Ok(have)
        } else {
            Err(Error::Timeout {
                name: self.name.clone(),
                what: "waiting for readers to attach",
                waited: start.elapsed(),
                attempts: 1,
            })
        }
    }

    /// Readers attached now (dead ones are reclaimed first).
    pub fn readers(&self) -> usize {
        self.core.readers()
    }

    /// End the stream cleanly: readers drain every chunk written and then see the end. The name stays until every
    /// attached reader has read the end, or the linger time ([`StreamWriterBuilder::linger`], default the timeout) has
    /// passed; then it is unlinked (unless persistent) and no new reader can attach. Further writes fail with
    /// [`Error::Finished`]. Idempotent.
    ///
    /// Dropping a writer without `finish()` closes the segment instead, and readers get [`Error::WriterClosed`]
    /// after draining: an unfinished stream is never mistaken for a complete one.
    ///
    /// # Errors
    /// An unlink failure.
    pub fn finish(&mut self) -> Result<()> {
        Ok(self.core.finish_lingering(self.linger)?)
    }

    /// The number the next chunk will get.
    pub fn next_seq(&self) -> u64 {
        self.core.next_chunk_seq()
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Counters (`lease_waits`: writes that waited for readers; `timeouts`: attempts that ran out).
    pub fn stats(&self) -> Stats {
        self.core.stats()
    }

    /// The low-level writer (segment, geometry).
    pub fn core(&self) -> &StreamWriterCore {
        &self.core
    }
}

/// One chunk as read: a [`Frame`] whose buffers point into shared memory and hold the slot's lease until dropped.
#[derive(Clone, Debug)]
pub struct Chunk {
    frame: Frame,
}

impl Chunk {
    /// The chunk's number (1, 2, ...).
    pub fn seq(&self) -> u64 {
        self.frame.seq()
    }
    /// The schema.
    pub fn schema(&self) -> &SchemaRef {
        self.frame.schema()
    }
    /// The record batches, as written.
    pub fn batches(&self) -> &[RecordBatch] {
        self.frame.batches()
    }
    /// Take the batches (they keep the lease).
    pub fn into_batches(self) -> Vec<RecordBatch> {
        self.frame.into_batches()
    }
    /// Rows over all batches.
    pub fn num_rows(&self) -> usize {
        self.frame.num_rows()
    }
    /// Encoded size in the slot.
    pub fn num_bytes(&self) -> usize {
        self.frame.num_bytes()
    }
    /// When the writer committed it (ns since the UNIX epoch).
    pub fn write_time_ns(&self) -> u64 {
        self.frame.write_time_ns()
    }
    /// The frame.
    pub fn frame(&self) -> &Frame {
        &self.frame
    }
    /// A deep copy in private memory that holds no lease: keep this instead of the chunk when you must keep it.
    ///
    /// # Errors
    /// Arrow errors while copying.
    pub fn to_owned(&self) -> Result<Chunk> {
        Ok(Chunk {
            frame: self.frame.to_owned()?,
        })
    }
}

/// The reading end of a stream. `Send`; one thread at a time.
pub struct StreamReader {
    name: String,
    core: StreamReaderCore,
    timeout: Option<Duration>,
    retries: u32,
    delivered: u64,
    done: bool,
    /// Chunks gone before this reader attached (`first`, `last`), reported once by the first read.
    missed: Option<(u64, u64)>,
}

impl std::fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamReader")
            .field("name", &self.name)
            .field("cursor", &self.cursor())
            .field("delivered", &self.delivered)
            .finish_non_exhaustive()
    }
}

impl StreamReader {
    /// [`Error::JoinedLate`], once, if this reader attached after the first chunks were dropped.
    fn report_missed(&mut self) -> Result<()> {
        match self.missed.take() {
            Some((first, last)) => Err(Error::JoinedLate {
                name: self.name.clone(),
                first,
                last,
                resumes_at: last + 1,
            }),
            None => Ok(()),
        }
    }

    /// The chunks this reader missed by attaching late (`first..=last`), until its first read reports them.
    pub fn missed(&self) -> Option<(u64, u64)> {
        self.missed
    }

    fn outcome(&mut self, p: Poll) -> Result<Option<Option<Chunk>>> {
        let name = || self.name.clone();
        match p {
            Poll::Chunk(frame) => {
                self.delivered += 1;
                Ok(Some(Some(Chunk { frame })))
            }
            Poll::Pending => Ok(None),
            Poll::End => {
                self.done = true;
                Ok(Some(None))
            }
            Poll::Closed => Err(Error::WriterClosed {
                name: name(),
                delivered: self.delivered,
            }),
            Poll::WriterDied { pid } => Err(Error::WriterDied {
                name: name(),
                pid,
                delivered: self.delivered,
            }),
            Poll::RingHeld { chunk, slot, held } => {
                let slots = self.core.shared().geometry().slot_count;
                Err(Error::RingHeld {
                    name: name(),
                    chunk,
                    slot,
                    held,
                    slots,
                    keep_at_most: slots.saturating_sub(1),
                })
            }
            Poll::Lost { expected, oldest } => Err(Error::ChunksLost {
                name: name(),
                expected,
                oldest,
            }),
        }
    }

    /// The next chunk, waiting up to `timeout` (one attempt), or with `None` the configured timeout with its
    /// retries. `Ok(None)` once the stream was finished and every chunk read.
    ///
    /// # Errors
    /// [`Error::Timeout`], [`Error::WriterDied`] / [`Error::WriterClosed`] (after every published chunk was
    /// delivered), [`Error::RingHeld`], [`Error::ChunksLost`], corruption.
    pub fn next_chunk(&mut self, timeout: Option<Duration>) -> Result<Option<Chunk>> {
        self.report_missed()?;
        let (per_attempt, attempts) = match timeout {
            Some(t) => (Some(t), 1),
            None => (self.timeout, self.retries.saturating_add(1)),
        };
        let start = Instant::now();
        for _ in 0..attempts {
            let deadline = per_attempt.and_then(|t| Instant::now().checked_add(t));
            let p = self.core.wait(deadline)?;
            if let Some(r) = self.outcome(p)? {
                return Ok(r);
            }
            self.core.count_timeout();
        }
        Err(Error::Timeout {
            name: self.name.clone(),
            what: "waiting for the next chunk",
            waited: start.elapsed(),
            attempts,
        })
    }

    /// The next chunk if one is ready now; `Ok(None)` if not (see [`StreamReader::is_finished`] for the end).
    ///
    /// # Errors
    /// As [`StreamReader::next_chunk`], without timeouts.
    pub fn try_next_chunk(&mut self) -> Result<Option<Chunk>> {
        self.report_missed()?;
        let p = self.core.try_next()?;
        Ok(self.outcome(p)?.flatten())
    }

    /// Whether the stream was finished and this reader has read every chunk.
    pub fn is_finished(&self) -> bool {
        self.done
    }

    /// Iterate over the chunks until the clean end of the stream. Each item waits as [`StreamReader::next_chunk`]
    /// with the configured timeout; an error is yielded once and then the iteration ends. Drop each chunk (or
    /// `to_owned()` it) before taking many more: see [`Error::RingHeld`].
    pub fn iter_chunks(&mut self) -> Chunks<'_> {
        Chunks {
            reader: self,
            failed: false,
        }
    }

    /// The number of the next chunk this reader will return.
    pub fn cursor(&self) -> u64 {
        self.core.cursor()
    }

    /// Chunks returned so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Counters (`copies`: buffers decompressed into private memory; `timeouts`: attempts that ran out).
    pub fn stats(&self) -> Stats {
        self.core.stats()
    }

    /// The low-level reader (segment, attachment).
    pub fn core(&self) -> &StreamReaderCore {
        &self.core
    }
}

impl StreamReader {
    /// The chunks as an async [`Stream`](futures_core::Stream), for any executor, until the clean end of the
    /// stream: the same items as [`StreamReader::iter_chunks`] (an error is yielded once and ends it), each
    /// waiting as [`StreamReader::next_chunk`]`(None)` does, but never on the executor's thread. A pending item
    /// registers with the process's one reactor thread (`qadataswap_sync::reactor`), which wakes the task when the
    /// writer publishes; no thread is started per reader or per item. Dropping the stream (or a pending `next()`)
    /// withdraws the wait and holds no lease.
    ///
    /// Back-pressure is unchanged: the writer waits for this reader while it has not taken a chunk, however long
    /// the task takes to poll again.
    pub fn chunks_async(&mut self) -> AsyncChunks<'_> {
        AsyncChunks {
            reader: self,
            started: None,
            registration: None,
            failed: false,
        }
    }

    /// The next chunk as a future: [`StreamReader::next_chunk`]`(None)` for async code. `Ok(None)` at the end.
    pub fn next_chunk_async(&mut self) -> NextChunk<'_> {
        NextChunk {
            inner: self.chunks_async(),
        }
    }

    /// One non-blocking step of an async wait: a chunk, the end, an error, or `Pending` with a registration that
    /// wakes the task when the writer publishes (or within `reactor::SLICE`, to re-check the timeout).
    fn poll_async(
        &mut self,
        cx: &mut std::task::Context<'_>,
        started: &mut Option<Instant>,
        registration: &mut Option<qadataswap_sync::reactor::Registration>,
    ) -> std::task::Poll<Result<Option<Chunk>>> {
        use std::task::Poll as TaskPoll;
        *registration = None;
        if self.done {
            return TaskPoll::Ready(Ok(None));
        }
        let start = *started.get_or_insert_with(Instant::now);
        let shared = Arc::clone(self.core.shared());
        // Read before looking: a publish after this line moves the word, and the reactor wakes the task at once.
        let seq = shared.notifier().sequence();
        match self.try_next_chunk() {
            Ok(Some(c)) => {
                *started = None;
                return TaskPoll::Ready(Ok(Some(c)));
            }
            Ok(None) if self.done => return TaskPoll::Ready(Ok(None)),
            Ok(None) => {}
            Err(e) => return TaskPoll::Ready(Err(e)),
        }
        let attempts = self.retries.saturating_add(1);
        if let Some(per_attempt) = self.timeout {
            let waited = start.elapsed();
            if waited >= per_attempt.saturating_mul(attempts) {
                self.core.count_timeout();
                return TaskPoll::Ready(Err(Error::Timeout {
                    name: self.name.clone(),
                    what: "waiting for the next chunk (async)",
                    waited,
                    attempts,
                }));
            }
        }
        match qadataswap_sync::reactor::wake_on_change(
            &shared,
            qadataswap_arrow::segment::Shared::notifier,
            seq,
            cx.waker(),
        ) {
            Ok(r) => {
                *registration = Some(r);
                TaskPoll::Pending
            }
            Err(source) => TaskPoll::Ready(Err(Error::Spawn {
                name: self.name.clone(),
                source,
            })),
        }
    }
}

/// The async stream of a reader's chunks ([`StreamReader::chunks_async`]).
pub struct AsyncChunks<'a> {
    reader: &'a mut StreamReader,
    started: Option<Instant>,
    registration: Option<qadataswap_sync::reactor::Registration>,
    failed: bool,
}

impl std::fmt::Debug for AsyncChunks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncChunks")
            .field("stream", &self.reader.name)
            .field("cursor", &self.reader.cursor())
            .field("waiting", &self.registration.is_some())
            .finish()
    }
}

impl futures_core::Stream for AsyncChunks<'_> {
    type Item = Result<Chunk>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Chunk>>> {
        let this = self.get_mut();
        if this.failed {
            return std::task::Poll::Ready(None);
        }
        match this
            .reader
            .poll_async(cx, &mut this.started, &mut this.registration)
        {
            std::task::Poll::Pending => std::task::Poll::Pending,
            std::task::Poll::Ready(Ok(c)) => std::task::Poll::Ready(c.map(Ok)),
            std::task::Poll::Ready(Err(e)) => {
                this.failed = true;
                std::task::Poll::Ready(Some(Err(e)))
            }
        }
    }
}

impl futures_core::FusedStream for AsyncChunks<'_> {
    fn is_terminated(&self) -> bool {
        self.failed || self.reader.done
    }
}

/// The future of [`StreamReader::next_chunk_async`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct NextChunk<'a> {
    inner: AsyncChunks<'a>,
}

impl std::future::Future for NextChunk<'_> {
    type Output = Result<Option<Chunk>>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = &mut self.get_mut().inner;
        this.reader
            .poll_async(cx, &mut this.started, &mut this.registration)
    }
}

/// Iterator over a reader's chunks ([`StreamReader::iter_chunks`]).
pub struct Chunks<'a> {
    reader: &'a mut StreamReader,
    failed: bool,
}

impl std::fmt::Debug for Chunks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunks")
            .field("stream", &self.reader.name)
            .field("failed", &self.failed)
            .finish()
    }
}

impl Iterator for Chunks<'_> {
    type Item = Result<Chunk>;

    fn next(&mut self) -> Option<Result<Chunk>> {
        if self.failed || self.reader.done {
            return None;
        }
        match self.reader.next_chunk(None) {
            Ok(Some(c)) => Some(Ok(c)),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[allow(dead_code)]
fn _assert_send() {
    fn is_send<T: Send>() {}
    fn is_send_sync<T: Send + Sync>() {}
    is_send::<StreamWriter>();
    is_send::<StreamReader>();
    is_send_sync::<Chunk>();
    let _ = Arc::new(0);
}
