//! Per-handle counters, so that a silent copy or a wait shows up.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a writer's or reader's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames (or chunks) this handle wrote.
    pub frames_written: u64,
    /// Bytes of encoded frames written.
    pub bytes_written: u64,
    /// Frames this handle read.
    pub frames_read: u64,
    /// Bytes of the frames read (their encoded size in the slot).
    pub bytes_read: u64,
    /// Times a writer had to wait for a lease to be released (or a stream reader to catch up).
    pub lease_waits: u64,
    /// Blocking calls that ended in a timeout.
    pub timeouts: u64,
    /// Copies made: on the write side, each frame encoded through an intermediate buffer; on the read side, each
    /// buffer of a returned frame that does not point into the mapping (decompressed or realigned), plus every
    /// buffer of a `to_owned`/`read_copied` frame.
    pub copies: u64,
    /// Buffers handed out that point straight into the mapping.
    pub zero_copy_buffers: u64,
    /// Reads that lost a race with the writer and retried.
    pub retries: u64,
}

/// The live counters behind [`Stats`].
#[derive(Debug, Default)]
pub struct StatsCounters {
    pub(crate) frames_written: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    pub(crate) frames_read: AtomicU64,
    pub(crate) bytes_read: AtomicU64,
    pub(crate) lease_waits: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) copies: AtomicU64,
    pub(crate) zero_copy_buffers: AtomicU64,
    pub(crate) retries: AtomicU64,
}

impl StatsCounters {
    /// Read all counters.
    pub fn snapshot(&self) -> Stats {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            frames_written: l(&self.frames_written),
            bytes_written: l(&self.bytes_written),
            frames_read: l(&self.frames_read),
            bytes_read: l(&self.bytes_read),
            lease_waits: l(&self.lease_waits),
            timeouts: l(&self.timeouts),
            copies: l(&self.copies),
            zero_copy_buffers: l(&self.zero_copy_buffers),
            retries: l(&self.retries),
        }
    }

    /// Count a wait for a slot (a lease, or a stream reader a whole ring behind).
    pub fn count_lease_wait(&self) {
        self.lease_waits.fetch_add(1, Ordering::Relaxed);
    }

    /// Count a blocking call that reached its deadline.
    pub fn count_timeout(&self) {
        self.timeouts.fetch_add(1, Ordering::Relaxed);
    }

    /// Count a read that had to look again (the slot changed under it).
    pub fn count_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Count `n` buffers copied into private memory.
    pub fn count_copies(&self, n: u64) {
        self.copies.fetch_add(n, Ordering::Relaxed);
    }
}
