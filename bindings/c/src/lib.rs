//! The C ABI of QADataSwap: named shared-memory snapshots, and ordered lossless streams of chunks
//! (`qds_stream_*`, over `SharedDataStream`), exchanged as Arrow C Data Interface structs.
//!
//! The header is `include/qadataswap/qadataswap.h`; it needs only the C standard library. Every function returns a
//! [`QdsStatus`]; on failure [`qds_last_error_message`] describes what went wrong on the calling thread. Panics never
//! cross the boundary: they come back as [`QdsStatus::Panic`].
//!
//! Rust code can call the same functions (this crate is also an `rlib`), which is how the tests below drive it:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::ffi::CString;
//! use std::sync::Arc;
//! use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StructArray};
//! use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
//! use arrow_array::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
//! use qadataswap_c::*;
//!
//! let name = CString::new(format!("qads-c-doc-{}", std::process::id()))?;
//! let mut writer = std::ptr::null_mut();
//! // SAFETY: valid NUL-terminated name, null options (defaults), valid out pointer.
//! let status = unsafe { qds_snapshot_writer_create(name.as_ptr(), 1 << 20, std::ptr::null(), &mut writer) };
//! assert_eq!(status, QdsStatus::Ok);
//!
//! let col: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
//! let batch = RecordBatch::try_from_iter([("x", col)])?;
//! let data = StructArray::from(batch.clone()).into_data();
//! let mut array = FFI_ArrowArray::new(&data);
//! let schema = FFI_ArrowSchema::try_from(batch.schema().as_ref())?;
//! // SAFETY: the array and schema are valid exports; the array is moved, the schema borrowed.
//! let status = unsafe { qds_snapshot_writer_write_batch(writer, &mut array, &schema, std::ptr::null_mut()) };
//! assert_eq!(status, QdsStatus::Ok);
//!
//! let mut reader = std::ptr::null_mut();
//! // SAFETY: as above.
//! assert_eq!(unsafe { qds_snapshot_reader_open(name.as_ptr(), std::ptr::null(), &mut reader) }, QdsStatus::Ok);
//! let mut stream = FFI_ArrowArrayStream::empty();
//! // SAFETY: `reader` is open, `stream` is writable, the info pointer may be null.
//! assert_eq!(unsafe { qds_snapshot_reader_read(reader, &mut stream, std::ptr::null_mut()) }, QdsStatus::Ok);
//! let batches: Vec<RecordBatch> = RecordBatchStreamReader::try_new(stream)?.collect::<Result<_, _>>()?;
//! assert_eq!(batches, vec![batch]);
//!
//! // SAFETY: each handle is freed once and not used afterwards.
//! unsafe {
//!     qds_snapshot_reader_free(reader);
//!     qds_snapshot_writer_free(writer);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Threads
//! A writer handle serialises its callers (one frame at a time); a snapshot reader handle may be used by many threads
//! at once, a stream reader handle serialises its callers (use one per consuming thread). Neither works in a child after `fork()` ([`QdsStatus::Forked`]). Exported streams and arrays may be moved
//! to and released on any thread.
// The public structs here are handles behind an FFI boundary (C pointers, Python classes), not Rust API.
#![allow(missing_debug_implementations)]

mod error;
mod export;
mod snapshot;
mod stream;

pub use error::{qds_last_error_message, qds_status_string, QdsStatus};
pub use snapshot::*;
pub use stream::*;

/// The library version as a NUL-terminated string (static storage).
#[no_mangle]
pub extern "C" fn qds_version() -> *const std::ffi::c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
