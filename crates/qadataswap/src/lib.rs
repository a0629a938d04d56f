//! QADataSwap: hand Arrow data and Polars DataFrames between processes through named shared
//! memory, zero-copy on the reading side.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use qadataswap::polars_core::prelude::*;
//! use qadataswap::SharedDataFrame;
//!
//! # let name = format!("qads-doc-umbrella-{}", std::process::id());
//! # let name = name.as_str();
//! let df = DataFrame::new(2, vec![Column::new("x".into(), [1i64, 2])])?;
//! let mut writer = SharedDataFrame::create_writer(name, 100 * 1024 * 1024)?;
//! writer.write(&df)?;
//!
//! let reader = SharedDataFrame::create_reader(name)?;
//! let df = reader.read()?;
//! println!("{}", df);
//! # Ok(())
//! # }
//! ```
//!
//! The layers, each usable on its own: [`shm`] (named segments), [`sync`] (futex, seqlock,
//! leases), [`arrow`] (snapshot segments of Arrow record batches), [`stream`], and with the
//! default `polars` feature [`polars`] (the Polars adapter, whose main types are re-exported
//! here).
#![forbid(unsafe_code)]

pub use qadataswap_arrow as arrow;
pub use qadataswap_shm as shm;
pub use qadataswap_stream as stream;
pub use qadataswap_sync as sync;

/// The Polars adapter (`qadataswap-polars`).
#[cfg(feature = "polars")]
pub use qadataswap_polars as polars;

/// The `polars-core` this crate is built against (use it to build frames of a matching version).
#[cfg(feature = "polars")]
pub use qadataswap_polars::polars_core;

#[cfg(feature = "polars")]
pub use qadataswap_polars::{
    DataFrameReader, DataFrameReaderBuilder, DataFrameStreamReader, DataFrameStreamReaderBuilder,
    DataFrameStreamWriter, DataFrameStreamWriterBuilder, DataFrameWriter, DataFrameWriterBuilder,
    IntoDataFrame, OpenFuture, ReadFuture, ReaderStats, SharedDataFrame, SharedDataStream,
};
