//! Cross-process synchronisation for QADataSwap: futex wait/wake, a spin-then-park
//! [`Notifier`], seqlock commit words ([`SeqWord`]), the reader [`LeaseTable`], and the ring's rules
//! ([`ring`]: the snapshot slot choice, and the stream's back-pressure, wake-ups and start handshake).
//!
//! Every type here works on *references* to atomics that normally live in a shared mapping;
//! nothing owns memory or knows about segment names or Arrow.
//!
//! ```
//! use std::sync::atomic::{AtomicU32, AtomicU64};
//! use std::time::Duration;
//! use qadataswap_sync::lease::{LeaseTable, ReaderEntry};
//! use qadataswap_sync::notify::{Notifier, WaitOptions};
//! use qadataswap_sync::process::ProcessIdentity;
//! use qadataswap_sync::seqlock::SeqWord;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // In real use these words sit in shared memory, at offsets given by docs/FORMAT.md.
//! let (word, waiters) = (AtomicU32::new(0), AtomicU32::new(0));
//! let slot_word = AtomicU64::new(0);
//! let entries = [ReaderEntry::new(), ReaderEntry::new()];
//!
//! // Writer: claim slot 0 (no reader leases it), write, commit generation 2, wake readers.
//! let table = LeaseTable::new(&entries);
//! let seq = SeqWord::new(&slot_word);
//! table.claim_slot_for_write(0, &seq, 0, 1)?;
//! /* ... write the slot ... */
//! seq.commit(2);
//! Notifier::new(&word, &waiters).notify();
//!
//! // Reader: wait for a generation, lease the slot, read, release.
//! let me = table.register(ProcessIdentity::current())?;
//! let opts = WaitOptions::timeout(Duration::from_secs(1));
//! let generation = Notifier::new(&word, &waiters).wait_until(&opts, || {
//!     let g = seq.load();
//!     Ok::<_, std::convert::Infallible>((g != 0 && g % 2 == 0).then_some(g))
//! })?;
//! assert!(entries[me].try_lease(0, &seq, generation));
//! /* ... read the slot: the writer cannot reuse it now ... */
//! assert!(table.claim_slot_for_write(0, &seq, generation, generation + 1).is_err());
//! entries[me].release(0);
//! entries[me].unregister();
//! # Ok(())
//! # }
//! ```
//!
//! # Thread and process safety
//!
//! | type | `Send` | `Sync` | note |
//! |------|:------:|:------:|------|
//! | [`Notifier`] | yes | yes | `Copy`; borrows two `AtomicU32` |
//! | [`SeqWord`] | yes | yes | `Copy`; borrows one `AtomicU64` |
//! | [`LeaseTable`] | yes | yes | `Copy`; borrows `[ReaderEntry]` |
//! | [`StreamRing`] | yes | yes | `Copy`; borrows the stream's words, table and notifiers |
//! | [`ReaderEntry`] | yes | yes | all atomics; `#[repr(C, align(64))]`, 320 bytes |
//! | [`ProcessIdentity`] | yes | yes | plain data |
//! | [`WaitOptions`], [`SpinBudget`] | yes | yes | plain data |
//! | [`WaitError<E>`], [`LeaseError`] | if `E` is | if `E` is | errors |
//!
//! All of them are also safe across processes: every shared word is accessed atomically, and
//! the futexes are shared (not `FUTEX_PRIVATE`).
//!
//! # Testing
//!
//! The protocols are model-checked with loom (`tests/loom.rs`, build with
//! `RUSTFLAGS="--cfg qadataswap_loom"`): the [`primitive`] module swaps in loom's atomics and
//! the futex is stood in by a mutex + condition variable model. The stream and snapshot models drive
//! [`ring`]'s functions themselves, the ones `qadataswap-arrow` and `qadataswap-stream` call.
//!
//! [`Notifier`]: notify::Notifier
//! [`SeqWord`]: seqlock::SeqWord
//! [`LeaseTable`]: lease::LeaseTable
//! [`StreamRing`]: ring::StreamRing
//! [`ReaderEntry`]: lease::ReaderEntry
//! [`ProcessIdentity`]: process::ProcessIdentity
//! [`WaitOptions`]: notify::WaitOptions
//! [`SpinBudget`]: notify::SpinBudget
//! [`WaitError<E>`]: notify::WaitError
//! [`LeaseError`]: lease::LeaseError

#[cfg(not(qadataswap_loom))]
pub mod futex;
pub mod lease;
pub mod notify;
pub mod owner;
mod park;
pub mod primitive;
pub mod process;
#[cfg(not(qadataswap_loom))]
pub mod reactor;
pub mod ring;
pub mod seqlock;

pub use lease::{LeaseError, LeaseTable, ReaderEntry, MAX_SLOTS};
pub use notify::{Notifier, SpinBudget, WaitError, WaitOptions};
pub use process::ProcessIdentity;
pub use seqlock::SeqWord;
