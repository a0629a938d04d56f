//! qadataswap-polars: the Polars adapter (see the crate description).
//!
//! For now this crate holds the zero-copy bridge between arrow-rs record batches and Polars
//! data frames; the shared-memory `SharedDataFrame` API is built on top of it.
//!
//! ```
//! use std::sync::Arc;
//!
//! use arrow_array::{Int64Array, RecordBatch};
//! use arrow_schema::{DataType, Field, Schema};
//! use qadataswap_polars::ffi::{dataframe_to_record_batches, record_batches_to_dataframe};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]));
//! let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1, 2, 3]))])?;
//! let df = record_batches_to_dataframe(&schema, &[batch])?;
//! assert_eq!(df.height(), 3);
//! let (_schema, batches) = dataframe_to_record_batches(&df)?;
//! assert_eq!(batches.len(), 1);
//! # Ok(())
//! # }
//! ```

pub mod ffi;
