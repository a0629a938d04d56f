//! Errors of the stream layer. Each message says what happened and what to do about it.

use std::fmt;
use std::time::Duration;

use qadataswap_arrow::config::ConfigError;

pub use crate::protocol::Laggard;

/// Formats a list of laggards for people.
pub(crate) struct Laggards<'a>(pub &'a [Laggard]);

impl fmt::Display for Laggards<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "none left by the time of this report");
        }
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "pid {} at chunk {}", l.pid, l.next_chunk)?;
            if l.leases > 0 {
                write!(f, " holding {} lease(s) on the slot", l.leases)?;
            }
        }
        Ok(())
    }
}

/// Everything that can go wrong with a [`crate::SharedDataStream`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Arrow layer refused (names, permissions, sizes, corruption, encoding...).
    #[error(transparent)]
    Arrow(#[from] qadataswap_arrow::Error),

    /// The configuration file or an environment variable is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// The writer waited for the slowest reader through every attempt and it did not move.
    #[error(
        "stream '{name}': chunk {chunk} could not be written after {waited:?} ({attempts} attempt(s)): readers are \
         a whole ring behind or keep old chunks ({}); make them read faster, drop or to_owned() the chunks they \
         keep, raise sync.timeout_ms / sync.retry_count, or create the stream with more memory.num_buffers",
        Laggards(laggards)
    )]
    ReadersBehind {
        /// Stream name.
        name: String,
        /// The chunk that could not be written.
        chunk: u64,
        /// Total time waited.
        waited: Duration,
        /// Attempts made (1 + retries).
        attempts: u32,
        /// Who held the writer back.
        laggards: Vec<Laggard>,
    },

    /// The first write waited for a reader (`min_readers`) and none came: nothing was written.
    #[error(
        "stream '{name}': no reader attached within {waited:?} (the first chunk waits for {min_readers} so that \
         nothing is lost): start a reader (`SharedDataStream.create_reader(\"{name}\")`), wait longer \
         (sync.timeout_ms), or set min_readers=0 to broadcast to whoever is there"
    )]
    NoReaders {
        /// Stream name.
        name: String,
        /// How many readers the writer waited for.
        min_readers: usize,
        /// How long it waited.
        waited: Duration,
    },

    /// This reader attached after the writer had dropped the first chunks from its ring: they are gone. Reported
    /// once, by the first read; the next read returns chunk `resumes_at`.
    #[error(
        "stream '{name}': this reader attached late and missed chunks {first}..={last} (the writer's ring no longer \
         holds them); the next read returns chunk {resumes_at}. Start readers before the first chunk (the writer's \
         min_readers waits for them), or give the stream more memory.num_buffers"
    )]
    JoinedLate {
        /// Stream name.
        name: String,
        /// The first chunk missed.
        first: u64,
        /// The last chunk missed.
        last: u64,
        /// The chunk the next read returns.
        resumes_at: u64,
    },

    /// This reader holds a chunk whose slot the next chunk needs: waiting would never end.
    #[error(
        "stream '{name}': this reader waits for chunk {chunk}, but it still holds {held} lease(s) on slot {slot}, \
         which that chunk must overwrite; a reader can keep at most {keep_at_most} chunk(s) of a {slots}-slot ring \
         alive: drop the chunks you are done with, or keep copies with Chunk::to_owned()"
    )]
    RingHeld {
        /// Stream name.
        name: String,
        /// The chunk this reader waits for.
        chunk: u64,
        /// The slot it needs.
        slot: usize,
        /// Leases held on it.
        held: u32,
        /// Slots in the ring.
        slots: usize,
        /// `slots - 1`.
        keep_at_most: usize,
    },

    /// A chunk this reader had not read yet is gone (its reader entry was reclaimed, or the segment was rewritten).
    #[error(
        "stream '{name}': chunk {expected} was lost for this reader (the oldest retained chunk is {oldest}); its \
         reader entry was probably reclaimed as dead: open a new reader"
    )]
    ChunksLost {
        /// Stream name.
        name: String,
        /// The chunk the reader expected.
        expected: u64,
        /// The oldest chunk still retained.
        oldest: u64,
    },

    /// The writer died without `finish()`; every chunk it published was delivered before this error.
    #[error(
        "stream '{name}': the writer (pid {pid}) died before finishing the stream; {delivered} chunk(s) were \
         delivered to this reader and nothing more will come unless a new writer takes the name over"
    )]
    WriterDied {
        /// Stream name.
        name: String,
        /// The dead writer's pid.
        pid: u32,
        /// Chunks this reader received.
        delivered: u64,
    },

    /// The writer closed (was dropped) without `finish()`: the stream may be incomplete.
    #[error(
        "stream '{name}': the writer closed without finish(), so the stream may be incomplete; {delivered} chunk(s) \
         were delivered; call finish() on the writer to end a stream cleanly"
    )]
    WriterClosed {
        /// Stream name.
        name: String,
        /// Chunks this reader received.
        delivered: u64,
    },

    /// A blocking call ran out of time (through every retry).
    #[error(
        "stream '{name}': timed out after {waited:?} ({attempts} attempt(s)) {what}; the writer is alive but \
         slow: raise sync.timeout_ms or sync.retry_count, or pass a longer timeout"
    )]
    Timeout {
        /// Stream name.
        name: String,
        /// What we waited for.
        what: &'static str,
        /// Total time waited.
        waited: Duration,
        /// Attempts made (1 + retries).
        attempts: u32,
    },

    /// The process's reactor thread (which wakes async reads) could not be started.
    #[error(
        "cannot start the reactor thread for an async read of stream '{name}': {source}; the process is out of \
         threads or memory (it is started once per process)"
    )]
    Spawn {
        /// Stream name.
        name: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// `write_chunk` after `finish()`.
    #[error("stream '{name}' was finished; no chunk can be written after finish()")]
    Finished {
        /// Stream name.
        name: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
