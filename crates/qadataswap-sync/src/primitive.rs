//! The atomics every other module uses: `std`'s normally, loom's under `cfg(qadataswap_loom)`.
//!
//! Keeping one import point means the loom models in `tests/loom.rs` check the very code the
//! other crates run. Loom atomics are not 4/8 bytes, so code that casts pointers into shared
//! memory must stay out of loom builds.

#[cfg(not(qadataswap_loom))]
pub use std::hint::spin_loop;
#[cfg(not(qadataswap_loom))]
pub use std::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicUsize, Ordering};

#[cfg(qadataswap_loom)]
pub use loom::hint::spin_loop;
#[cfg(qadataswap_loom)]
pub use loom::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicUsize, Ordering};
