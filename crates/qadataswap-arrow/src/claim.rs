//! Claiming a slot for a write and committing it (docs/FORMAT.md §8 steps 2 and 3), shared by the encoding writer
//! (`RawWriter::write_slot`) and the loan API ([`crate::loan`]).

use std::sync::Arc;

use arrow_schema::SchemaRef;
use qadataswap_sync::lease::LeaseError;
use qadataswap_sync::ring;

use crate::control::DescRecord;
use crate::error::{Error, Result};
use crate::layout;
use crate::segment::{now_ns, Shared};

/// A claimed slot: its sequence word is odd and no reader holds it. A guard: [`Claim::commit`] consumes
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

/// Claim `slot` of `shared` for frame `seq`: odd sequence, fence, lease check (§8 step 2). [`Claimed::Raced`] when
/// a reader leased the slot in between (pick a slot again).
///
/// # Errors
/// [`Error::Protocol`] for a frame number past the format's range or a lease table in a state the protocol never
/// produces.
pub(crate) fn claim_slot(shared: &Arc<Shared>, slot: usize, seq: u64) -> Result<Claimed> {
    let protocol = |what: String| Error::Protocol {
        name: shared.name.clone(),
        what,
    };
    let seqw = shared.slot_seq(slot);
    let previous = seqw.load();
    if seq == 0 || seq > u64::MAX / 2 {
        return Err(protocol(format!(
            "frame number {seq} is outside 1..=2^63-1"
        )));
    }
    match shared
        .lease_table()
        .claim_slot_for_write(slot, &seqw, previous, ring::writing(seq))
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
        Err(e) => Err(protocol(e.to_string())),
    }
}

impl Claim {
    /// Commit the claimed slot, its bytes written and the schema area up to date: descriptor, even sequence (§8
    /// step 3), the header's counters. Does not publish.
    pub(crate) fn commit(mut self, schema_version: u64, c: &Committed<'_>) {
        let now = now_ns();
        let flags = if c.compressed {
            layout::slot_flags::COMPRESSED
        } else {
            0
        };
        self.shared.desc(self.slot).record(&DescRecord {
            frame_seq: self.seq,
            schema_version,
            len: c.len as u64,
            rows: c.rows as u64,
            write_ns: now,
            batches: c.batches as u32,
            flags,
        });
        self.shared
            .slot_seq(self.slot)
            .commit(ring::committed(self.seq));
        self.committed = true;
        self.shared.header().count_commit(now, c.len as u64);
    }
}
