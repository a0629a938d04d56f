//! qadataswap-polars: share Polars [`DataFrame`](polars_core::frame::DataFrame)s between
//! processes through named shared memory, and read them without a copy.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use polars_core::prelude::*;
//! use qadataswap_polars::SharedDataFrame;
//!
//! # let name = format!("qads-doc-lib-{}", std::process::id());
//! # let name = name.as_str();
//! let df = DataFrame::new(3, vec![
//!     Column::new("id".into(), [1i64, 2, 3]),
//!     Column::new("px".into(), [10.5f64, 11.0, 9.75]),
//! ])?;
//!
//! // Writer process:
//! let mut writer = SharedDataFrame::create_writer(name, 100 * 1024 * 1024)?;
//! writer.write(&df)?;
//!
//! // Reader process:
//! let reader = SharedDataFrame::create_reader(name)?;
//! let df = reader.read()?;
//! println!("{}", df);
//! assert_eq!(reader.stats().arrow.copies, 0);
//! # Ok(())
//! # }
//! ```
//!
//! # How
//!
//! [`DataFrameWriter::write`] exports the frame's columns in Polars' own Arrow layout (String as
//! `Utf8View`, Binary as `BinaryView`, List as `LargeList`, Categorical/Enum as dictionaries,
//! Datetime with its time zone, Duration, Date, Time, Decimal, Struct, Array, Null) without a
//! copy ([`ffi::dataframe_to_record_batches`]), one record batch per chunk, and
//! `qadataswap_arrow` encodes them into one slot of the segment (the one copy of the hand-off).
//! [`DataFrameReader::read`] leases the newest slot and imports its batches back into Polars
//! through the Arrow C Data Interface ([`ffi::record_batches_to_dataframe`]): every column
//! buffer points into the mapping, and the slot lease travels with the columns (clones and
//! slices too) until the last of them is dropped. Each chunk written comes back as a chunk.
//!
//! # What is not zero-copy on read
//!
//! Every dtype Polars writes comes back without a copy (checked buffer by buffer in
//! `tests/frame.rs`) except:
//!
//! * `Categorical` and `Enum`: Polars re-encodes a dictionary into its own categorical mapping
//!   on import (new keys; the dictionary values are re-inserted), so these columns are copied.
//!   They are counted in [`ReaderStats::polars_copied_columns`].
//! * `Struct` with nulls at the struct level: Polars builds a new validity bitmap for the first
//!   field (and any field whose nulls do not cover the struct's); values are kept. `len / 8`
//!   bytes per field.
//! * `Int128` / `UInt128` cannot be written at all (Polars exports non-standard Arrow formats):
//!   cast them to `Decimal` first.
//!
//! Frames written by other producers (arrow-rs, pyarrow) may use types Polars converts on
//! import (`Utf8`, `List`, dictionaries, `Timestamp(s)`, ...): see [`ffi`] for the full table.
//!
//! # Types Polars cannot take
//!
//! [`guard`] holds the rules every read to Polars goes through (this crate's and the Python
//! binding's): `Decimal32/64` are widened to `Decimal128` (a counted copy), an extension marker on
//! a dictionary is dropped, and `Decimal256`, intervals, unions, run-end encoding and list views
//! are refused before Polars sees them, with an error naming the column and the way out (read the
//! frame as Arrow). With `default-features = false` this crate is only [`guard`], without Polars.
//!
//! # Async
//!
//! [`DataFrameReader::read_async`] and [`DataFrameReader::read_next_async`] return a
//! [`ReadFuture`] that works on any executor: the wait runs on a waiter thread sleeping on the
//! segment's futex, never on an executor thread, and dropping the future is always safe.
//!
//! # Lazy frames
//!
//! [`DataFrameWriter::write`] takes anything [`IntoDataFrame`]: a `DataFrame`, a `&DataFrame`,
//! or a `PolarsResult<DataFrame>` such as `lazy_frame.collect()`, so `writer.write(lf.collect())?`
//! writes a `LazyFrame`. The crate does not depend on `polars-lazy` itself (its query engine
//! would more than double the adapter's build time).

/// Builder setters that hand their argument to the wrapped builder of the layer below (`self.inner`): the Polars
/// builders add nothing to an option but the type they create.
#[cfg(feature = "polars")]
macro_rules! forward {
    ($($(#[$doc:meta])* $name:ident($arg:ident: $t:ty);)*) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, $arg: $t) -> Self {
                self.inner = self.inner.$name($arg);
                self
            }
        )*
    };
}

#[cfg(feature = "polars")]
pub mod error;
#[cfg(feature = "polars")]
pub mod ffi;
#[cfg(feature = "polars")]
mod frame;
#[cfg(feature = "polars")]
pub mod future;
pub mod guard;
#[cfg(feature = "polars")]
pub mod stream;

#[cfg(feature = "polars")]
pub use error::{Error, Result};
#[cfg(feature = "polars")]
pub use frame::{
    to_owned, DataFrameReader, DataFrameReaderBuilder, DataFrameWriter, DataFrameWriterBuilder,
    IntoDataFrame, OpenFuture, ReaderStats, SharedDataFrame,
};
#[cfg(feature = "polars")]
pub use future::ReadFuture;
/// The `polars-core` this crate is built against (use it to build frames of a matching version).
#[cfg(feature = "polars")]
pub use polars_core;
pub use qadataswap_arrow::{Validation, WriteInfo};
#[cfg(feature = "polars")]
pub use stream::{
    DataFrameChunks, DataFrameChunksAsync, DataFrameStreamReader, DataFrameStreamReaderBuilder,
    DataFrameStreamWriter, DataFrameStreamWriterBuilder, SharedDataStream,
};
