//! Named POSIX shared-memory segments for QADataSwap: exclusive create with the space reserved up front, opens that
//! refuse planted or tampered segments, pre-faulted mappings, and read-only page protection.
//!
//! ```
//! use qadataswap_shm::{unlink, Access, CreateOptions, OpenOptions, Protection, Segment, SegmentName};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let name = SegmentName::new(format!("qads-doc-{}", std::process::id()))?;
//!
//! // Writer: create a 4 KiB segment (mode 0600, memory reserved now) and write a byte.
//! let writer = Segment::create(&name, 4096, &CreateOptions::default())?;
//! let out = writer.map(0, 4096, Protection::ReadWrite, true)?;
//! // SAFETY: offset 0 is inside the 4096-byte read-write mapping and nobody else uses this segment yet.
//! unsafe { out.as_mut_ptr().write(42) };
//!
//! // Reader (normally another process): open by name, read-only, and read the byte.
//! let reader = Segment::open(&name, Access::ReadOnly, &OpenOptions::default())?;
//! reader.require_len(4096)?;
//! let view = reader.map(0, 4096, Protection::ReadOnly, true)?;
//! // SAFETY: offset 0 is inside the mapping, and the writer is done writing it.
//! assert_eq!(unsafe { view.as_ptr().read() }, 42);
//!
//! // Remove the name; the mappings stay valid until dropped.
//! unlink(&name)?;
//! # Ok(())
//! # }
//! ```
//!
//! Segments live in `/dev/shm` (where `shm_open` puts them on Linux), so C, C++ and Python peers can open them too.
//! This crate knows nothing of the data format on top: callers pass sizes and offsets.
//!
//! Errors are [`ShmError`] values whose messages say what happened and what to do.

mod error;
mod mapping;
mod name;
mod segment;

pub use error::ShmError;
pub use mapping::{Mapping, Protection};
pub use name::{SegmentName, MAX_NAME_LEN, PRIVATE_PREFIX};
pub use segment::{
    list, names_same_file, unlink, unlink_if_same, wait_for_name, Access, CreateOptions, FileId,
    OpenOptions, Segment, SegmentInfo, SHM_DIR,
};

/// The system page size in bytes (mapping offsets and [`Mapping::protect`] ranges must be multiples of it).
pub fn page_size() -> usize {
    rustix::param::page_size()
}
