//! Exporting a frame as an `ArrowArrayStream` without copying.
//!
//! The stream's private data owns the frame's record batches (whose buffers point into the segment and hold the
//! slot lease). Each `get_next` exports one batch as a struct `ArrowArray` through arrow-rs' `FFI_ArrowArray::new`,
//! whose private data holds clones of the `Buffer`s of that array, and every child and dictionary is exported as its
//! own `FFI_ArrowArray` with its own private data: a consumer that moves a child out and releases the parent still
//! holds the lease through the child until it releases that child too. Releasing the stream drops the batches it has
//! not handed out yet.
//!
//! Callbacks never unwind into C: each runs under `catch_unwind` and reports failure through its return code and
//! `get_last_error`.

use std::ffi::{c_char, c_int, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{Array, RecordBatch, StructArray};
use arrow_schema::SchemaRef;

const EINVAL: c_int = 22;
const EIO: c_int = 5;

struct StreamPrivate {
    schema: SchemaRef,
    batches: std::vec::IntoIter<RecordBatch>,
    last_error: Option<CString>,
}

/// A C stream over `batches` (moved in; each keeps its lease until the consumer releases what it got).
pub(crate) fn export_stream(schema: SchemaRef, batches: Vec<RecordBatch>) -> FFI_ArrowArrayStream {
    let private = Box::new(StreamPrivate {
        schema,
        batches: batches.into_iter(),
        last_error: None,
    });
    // SAFETY: the callbacks below implement the C stream interface over a `StreamPrivate` that `private_data` owns;
    // `release_stream` frees it exactly once and marks the stream released.
    unsafe {
        FFI_ArrowArrayStream::new_unchecked(
            Some(get_schema),
            Some(get_next),
            Some(get_last_error),
            Some(release_stream),
            Box::into_raw(private).cast::<c_void>(),
        )
    }
}

/// # Safety
/// `stream` is null or a live stream made by [`export_stream`].
unsafe fn private<'a>(stream: *mut FFI_ArrowArrayStream) -> Option<&'a mut StreamPrivate> {
    if stream.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees `stream` points to a valid stream struct.
    let p = unsafe { (*stream).private_data() }.cast::<StreamPrivate>();
    // SAFETY: `private_data` is the `Box<StreamPrivate>` made by `export_stream` (or null once released); the C
    // stream contract forbids concurrent calls on one stream, so this is the only reference.
    unsafe { p.as_mut() }
}

fn record(p: &mut StreamPrivate, message: String) {
    p.last_error = CString::new(message.replace('\0', " ")).ok();
}

unsafe extern "C" fn get_schema(
    stream: *mut FFI_ArrowArrayStream,
    out: *mut FFI_ArrowSchema,
) -> c_int {
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the consumer passes the stream this callback belongs to.
        let Some(p) = (unsafe { private(stream) }) else {
            return EINVAL;
        };
        if out.is_null() {
            record(p, "get_schema: null output pointer".into());
            return EINVAL;
        }
        match FFI_ArrowSchema::try_from(p.schema.as_ref()) {
            Ok(schema) => {
                // SAFETY: `out` is non-null and points to writable (possibly uninitialised) ArrowSchema storage;
                // `write` does not drop the old contents.
                unsafe { out.write(schema) };
                0
            }
            Err(e) => {
                record(p, format!("cannot export the schema: {e}"));
                EIO
            }
        }
    }));
    r.unwrap_or(EIO)
}

unsafe extern "C" fn get_next(
    stream: *mut FFI_ArrowArrayStream,
    out: *mut FFI_ArrowArray,
) -> c_int {
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the consumer passes the stream this callback belongs to.
        let Some(p) = (unsafe { private(stream) }) else {
            return EINVAL;
        };
        if out.is_null() {
            record(p, "get_next: null output pointer".into());
            return EINVAL;
        }
        let array = match p.batches.next() {
            Some(batch) => FFI_ArrowArray::new(&StructArray::from(batch).into_data()),
            // End of stream: a released array.
            None => FFI_ArrowArray::empty(),
        };
        // SAFETY: `out` is non-null and points to writable (possibly uninitialised) ArrowArray storage.
        unsafe { out.write(array) };
        0
    }));
    r.unwrap_or(EIO)
}

unsafe extern "C" fn get_last_error(stream: *mut FFI_ArrowArrayStream) -> *const c_char {
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the consumer passes the stream this callback belongs to.
        match unsafe { private(stream) } {
            Some(p) => p
                .last_error
                .as_ref()
                .map_or(std::ptr::null(), |m| m.as_ptr()),
            None => std::ptr::null(),
        }
    }));
    r.unwrap_or(std::ptr::null())
}

unsafe extern "C" fn release_stream(stream: *mut FFI_ArrowArrayStream) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if stream.is_null() {
            return;
        }
        // SAFETY: `stream` is valid; taking the struct out leaves an empty (released) stream behind, and the
        // taken value's fields are ours to free.
        let taken = unsafe { FFI_ArrowArrayStream::from_raw(stream) };
        let p = taken.private_data().cast::<StreamPrivate>();
        // `taken` would call this release again on drop: forget it, we free the private data ourselves.
        std::mem::forget(taken);
        if !p.is_null() {
            // SAFETY: `p` is the box made by `export_stream`, freed only here (the stream is now marked released).
            drop(unsafe { Box::from_raw(p) });
        }
    }));
}
