//! What the stream's writer, reader and follower share: how often they look at `/proc`, and how they spin.

use std::time::Duration;

use qadataswap_arrow::layout::state;
use qadataswap_arrow::segment::Shared;
use qadataswap_arrow::{Error, Result};
use qadataswap_sync::process::Liveness;

/// How often a waiting writer looks for dead readers (each look reads `/proc` once per registered reader).
pub(crate) const RECLAIM_EVERY: Duration = Duration::from_millis(10);
/// How often a waiting reader checks that the writer is alive.
pub(crate) const LIVENESS_EVERY: Duration = Duration::from_millis(20);

/// The spin budget to use: spinning only pays when every party (the writer and each reader) has a core of its own;
/// on an oversubscribed machine a spinning waiter takes the CPU from the process it waits for, so park at once.
pub(crate) fn effective_spin(s: &Shared, spin: u32) -> u32 {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let parties = s.lease_table().registered_entries().count() + 1;
    if parties > cores {
        0
    } else {
        spin
    }
}

/// The largest chunk number a writer can produce (its commit word is `2 * chunk`): a cursor past it comes from a
/// hostile `stream_head`/`stream_tail`.
pub(crate) const MAX_CHUNK: u64 = u64::MAX / 2;

/// [`Error::Protocol`] for a chunk number no writer produces (so `chunk + 1` never overflows).
pub(crate) fn check_chunk(s: &Shared, chunk: u64) -> Result<()> {
    if chunk == 0 || chunk > MAX_CHUNK {
        return Err(Error::Protocol {
            name: s.name().to_owned(),
            what: format!(
                "chunk number {chunk} is outside 1..=2^63-1 (stream_head or stream_tail)"
            ),
        });
    }
    Ok(())
}

/// Why no more chunks will come from the writer of `s`, if so.
pub(crate) enum Gone {
    /// It closed the segment without finishing the stream.
    Closed,
    /// It died (pid).
    Died(u32),
}

/// Whether the writer of `s` is gone: the state word says closed, or the recorded writer is dead. Reads `/proc`
/// once.
///
/// # Errors
/// [`Error::CorruptHeader`] if the state word holds a value no writer stores.
pub(crate) fn writer_gone(s: &Shared) -> Result<Option<Gone>> {
    match s.state() {
        state::CLOSED => return Ok(Some(Gone::Closed)),
        st if st > state::FINISHED => {
            return Err(Error::CorruptHeader {
                name: s.name().to_owned(),
                what: format!("unknown state {st}"),
            })
        }
        _ => {}
    }
    Ok(match s.writer_liveness() {
        Some((pid, Liveness::Dead)) => Some(Gone::Died(pid)),
        _ => None,
    })
}
