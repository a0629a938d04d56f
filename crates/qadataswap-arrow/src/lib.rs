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
pub mod decode;
mod encode;
pub mod error;
mod fork;
#[doc(hidden)]
pub mod fuzzing;
pub mod golden;
pub mod inspect;
pub mod layout;
pub mod listing;
pub mod loan;
mod onecopy;
pub mod options;
pub mod reader;
pub mod segment;
pub mod stats;
pub mod status;
pub mod stream;
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
