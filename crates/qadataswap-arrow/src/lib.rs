//! Zero-copy Arrow snapshots in named shared memory.
//!
//! A [`SnapshotWriter`] encodes record batches into a ring of slots of a named segment (the format is in
//! `docs/FORMAT.md`: a slot holds a standard Arrow IPC stream); a [`SnapshotReader`] in any process leases the newest
//! committed slot and decodes it without copying: every buffer of the returned batches points into the mapping and
//! holds a lease that keeps the writer off that slot until the last buffer is dropped.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use arrow_array::{Int64Array, RecordBatch, ArrayRef};
//! use qadataswap_arrow::{SnapshotReader, SnapshotWriter};
//!
//! let name = format!("qads-doc-{}", std::process::id());
//! let mut writer = SnapshotWriter::create(&name, 1 << 20)?;
//! let col: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
//! let batch = RecordBatch::try_from_iter([("x", col)])?;
//! writer.write(&batch)?;
//!
//! let reader = SnapshotReader::open(&name)?;
//! let frame = reader.read()?;
//! assert_eq!(frame.batches()[0], batch);
//! assert_eq!(reader.stats().copies, 0);
//! # Ok(())
//! # }
//! ```
//!
//! # Threads
//! [`SnapshotWriter`] is `Send` (one writer thread at a time, `&mut self`). [`SnapshotReader`] and [`Frame`] are
//! `Send + Sync`. Neither works in a child after `fork()`: every call there returns [`Error::Forked`].

mod arrow_layout;
mod claim;
pub mod config;
mod control;
pub mod decode;
mod encode;
pub mod error;
mod fork;
/// The control area's layout as data (FORMAT.md §3 and §5): each field's name, offset and width. Read-only: for
/// tools and tests that read or corrupt a segment's bytes on purpose; the library reaches the words through types.
pub mod format {
    pub use crate::control::{
        header_field, slot_desc_field, Field, HEADER_FIELDS, SLOT_DESC_FIELDS,
    };
}

#[doc(hidden)]
pub mod fuzzing;
pub mod golden;
pub mod inspect;
pub mod layout;
pub mod listing;
pub mod loan;
mod mode;
mod onecopy;
pub mod options;
pub mod reader;
mod schema_area;
pub mod segment;
pub mod stats;
pub mod status;
pub mod writer;

pub use config::{Config, ConfigError};
pub use decode::buffer_ranges;
pub use error::{Error, Result};
pub use layout::Mode;
pub use loan::Loan;
pub use options::{Compression, ReaderOptions, Validation, WriterOptions};
pub use reader::{Attachment, Frame, NewerPoll, ReaderBuilder, SnapshotReader};
pub use stats::Stats;
pub use status::{classify, SegmentStatus};
pub use writer::{RawWriter, SnapshotWriter, WriteInfo, WriterBuilder};
