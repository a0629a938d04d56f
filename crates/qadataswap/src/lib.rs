//! QADataSwap umbrella crate.
pub use qadataswap_arrow as arrow;
pub use qadataswap_shm as shm;
pub use qadataswap_stream as stream;
pub use qadataswap_sync as sync;
