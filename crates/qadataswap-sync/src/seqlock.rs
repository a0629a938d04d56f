//! A 64-bit seqlock commit word: even = stable, odd = being written.
//!
//! The word is the generation of the data it guards (64 bits: it never wraps in practice, so
//! "same value" really means "same data"). The guarded data must itself be read and written
//! through atomics (relaxed is enough); the word orders them.

use crate::primitive::{fence, AtomicU64, Ordering};

/// A seqlock commit word in shared memory. `Send + Sync + Copy` (it only borrows the atomic).
#[derive(Clone, Copy, Debug)]
pub struct SeqWord<'a>(&'a AtomicU64);

impl<'a> SeqWord<'a> {
    /// Borrows a commit word.
    pub fn new(w: &'a AtomicU64) -> SeqWord<'a> {
        SeqWord(w)
    }

    /// The current value (Acquire): data published before the matching `commit` is visible.
    pub fn load(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Marks the data as being written: stores `odd`, then a full fence so that no store to
    /// the guarded data (and no later load, as in the lease check) moves before it.
    ///
    /// `odd` should be odd (checked in debug builds); readers treat any odd value as "busy".
    pub fn begin_write(&self, odd: u64) {
        debug_assert!(odd % 2 == 1, "begin_write needs an odd value, got {odd}");
        self.0.store(odd, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Publishes the data written since `begin_write` under the new even generation `even`.
    pub fn commit(&self, even: u64) {
        debug_assert!(
            even.is_multiple_of(2),
            "commit needs an even value, got {even}"
        );
        self.0.store(even, Ordering::Release);
    }

    /// Abandons a write by restoring the previous even value: the generation does not advance.
    ///
    /// Only for a write that has not touched the guarded data yet (as in
    /// `LeaseTable::claim_slot_for_write`): a reader that loaded `previous` before
    /// `begin_write` would otherwise accept modified data under the old generation. A writer
    /// that already changed data must `commit` a new generation (or leave the word odd).
    pub fn abort(&self, previous: u64) {
        debug_assert!(
            previous.is_multiple_of(2),
            "abort needs the previous even value, got {previous}"
        );
        self.0.store(previous, Ordering::Release);
    }

    /// Runs `read` as a seqlock read: `Some((generation, value))` only if the word was even and
    /// unchanged around it; `None` means "a write was in progress or happened: retry".
    ///
    /// `read` must load the guarded data through atomics (it may see a torn mixture; the
    /// result is discarded then).
    pub fn read_consistent<T>(&self, mut read: impl FnMut() -> T) -> Option<(u64, T)> {
        let s1 = self.0.load(Ordering::Acquire);
        if s1 % 2 == 1 {
            return None;
        }
        let value = read();
        fence(Ordering::Acquire);
        let s2 = self.0.load(Ordering::Relaxed);
        (s1 == s2).then_some((s1, value))
    }
}

#[cfg(all(test, not(qadataswap_loom)))]
mod tests {
    use super::*;

    #[test]
    fn read_during_a_write_is_refused_and_after_commit_accepted() {
        let w = AtomicU64::new(2);
        let data = AtomicU64::new(10);
        let seq = SeqWord::new(&w);
        seq.begin_write(3);
        assert!(seq
            .read_consistent(|| data.load(Ordering::Relaxed))
            .is_none());
        data.store(11, Ordering::Relaxed);
        seq.commit(4);
        assert_eq!(
            seq.read_consistent(|| data.load(Ordering::Relaxed)),
            Some((4, 11))
        );
    }

    #[test]
    fn aborted_write_restores_the_previous_generation() {
        let w = AtomicU64::new(8);
        let seq = SeqWord::new(&w);
        seq.begin_write(9);
        seq.abort(8);
        assert_eq!(seq.load(), 8);
    }
}
