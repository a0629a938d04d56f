//! Claiming a slot for a write and committing it (docs/FORMAT.md §8 steps 2 and 3), shared by the encoding writer
//! ([`RawWriter::write_slot`]) and the loan API ([`crate::loan`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use arrow_schema::SchemaRef;
use qadataswap_sync::lease::LeaseError;

use crate::control::DescRecord;
use crate::error::{Error, Result};
use crate::layout;
use crate::segment::{now_ns, Shared};
use crate::writer::{RawWriter, WriteInfo};

/// A claimed slot: its sequence word is odd and no reader holds it. A guard: [`RawWriter::commit_slot`] consumes
/// it, and dropped without a commit (an error, an early return, an abandoned loan) it gives the slot up, so no path
/// can leave a slot claimed.
#[derive(Debug)]
#[must_use = "a claim dropped without a commit gives the slot up at once"]
pub(crate) struct Claim {
    shared: Arc<Shared>,
    pub(crate) slot: usize,
    pub(crate) seq: u64,
    /// The slot's sequence before the claim (restored by an abort that changed nothing).
    previous: u64,
    /// The slot's bytes may have changed: giving it up marks it empty (sequence 0) instead of restoring `previous`,
    /// since the frame it held is gone.
    touched: bool,
    /// Committed: nothing to give up.
    committed: bool,
}

/// The outcome of a claim: a lost race (a reader leased the slot between the writer's check and its claim) is an
/// ordinary outcome the caller retries, not an error.
#[derive(Debug)]
pub(crate) enum Claimed {
    Won(Claim),
    Raced,
}

impl Claim {
    /// The slot's bytes are being written: from now on giving it up marks it empty.
    pub(crate) fn touch(&mut self) {
        self.touched = true;
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let seqw = self.shared.slot_seq(self.slot);
        if self.touched {
            self.shared.desc(self.slot).forget_frame();
            seqw.commit(0);
        } else {
            seqw.abort(self.previous);
        }
    }
}

/// What a commit stores in the slot's descriptor.
pub(crate) struct Committed<'a> {
    pub(crate) schema: &'a SchemaRef,
    pub(crate) len: usize,
    pub(crate) rows: usize,
    pub(crate) batches: usize,
    pub(crate) compressed: bool,
    /// Extra copies the encoding made (counted in the writer's stats).
    pub(crate) copies: u64,
}

impl RawWriter {
    /// Claim `slot` for frame `seq`: odd sequence, fence, lease check (§8 step 2). [`Claimed::Raced`] when a reader
    /// leased the slot in between (pick a slot again).
    ///
    /// # Errors
    /// A sequence number past the format's range; a lease table in a state the protocol never produces.
    pub(crate) fn claim_slot(&self, slot: usize, seq: u64) -> Result<Claimed> {
        let shared = &self.shared;
        let seqw = shared.slot_seq(slot);
        let previous = seqw.load();
        let odd = seq
            .checked_mul(2)
            .and_then(|v| v.checked_sub(1))
            .ok_or_else(|| Error::InvalidConfig {
                what: "frame sequence overflow".into(),
            })?;
        match shared
            .lease_table()
            .claim_slot_for_write(slot, &seqw, previous, odd)
        {
            Ok(()) => Ok(Claimed::Won(Claim {
                shared: Arc::clone(shared),
                slot,
                seq,
                previous,
                touched: false,
                committed: false,
            })),
            Err(LeaseError::SlotBusy { .. }) => Ok(Claimed::Raced),
            Err(e) => Err(Error::InvalidConfig {
                what: e.to_string(),
            }),
        }
    }

    /// Commit a claimed slot whose bytes are written: schema area if the schema changed, descriptor, even
    /// sequence (§8 step 3), counters. Does not publish. On error the slot is given up (marked empty).
    pub(crate) fn commit_slot(&mut self, mut claim: Claim, c: Committed<'_>) -> Result<WriteInfo> {
        claim.touch();
        if self
            .last_schema
            .as_ref()
            .is_none_or(|s| !crate::onecopy::same_schema(s, c.schema))
        {
            // On error the claim is dropped here: the slot is marked empty.
            self.publish_schema(c.schema)?;
        }
        let shared = &self.shared;
        let slot = claim.slot;
        let now = now_ns();
        let sflags = if c.compressed {
            layout::slot_flags::COMPRESSED
        } else {
            0
        };
        shared.desc(slot).record(&DescRecord {
            frame_seq: claim.seq,
            schema_version: self.schema_version,
            len: c.len as u64,
            rows: c.rows as u64,
            write_ns: now,
            batches: c.batches as u32,
            flags: sflags,
        });
        shared.slot_seq(slot).commit(claim.seq * 2);
        claim.committed = true;
        shared.header().count_commit(now, c.len as u64);
        self.stats.frames_written.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes_written
            .fetch_add(c.len as u64, Ordering::Relaxed);
        self.stats.copies.fetch_add(c.copies, Ordering::Relaxed);
        Ok(WriteInfo {
            seq: claim.seq,
            slot,
            bytes: c.len,
            rows: c.rows,
        })
    }
}
