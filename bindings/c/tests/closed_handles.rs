//! A closed handle stays valid until freed: closing it again is fine, and every other call returns
//! `QDS_ERR_CLOSED` with a message naming the handle, without touching the data passed in beyond marking an output
//! stream released.

use std::ffi::{CStr, CString};
use std::ptr::{null, null_mut};
use std::sync::Arc;

use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StructArray};
use qadataswap_c::*;

fn last_error() -> String {
    // SAFETY: the library returns a NUL-terminated string valid until the next failing call on this thread.
    unsafe { CStr::from_ptr(qds_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

fn segment(tag: &str) -> CString {
    CString::new(format!("qads-c-closed-{tag}-{}", std::process::id())).unwrap()
}

#[test]
fn snapshot_handles_refuse_every_call_after_close_and_close_twice() {
    let name = segment("snap");
    let mut w = null_mut();
    let mut r = null_mut();
    // SAFETY: a valid name, null options and writable out pointers; the handles are live until freed at the end.
    unsafe {
        assert_eq!(
            qds_snapshot_writer_create(name.as_ptr(), 1 << 20, null(), &mut w),
            QdsStatus::Ok
        );
        assert_eq!(
            qds_snapshot_reader_open(name.as_ptr(), null(), &mut r),
            QdsStatus::Ok
        );

        assert_eq!(qds_snapshot_reader_close(r), QdsStatus::Ok);
        assert_eq!(qds_snapshot_reader_close(r), QdsStatus::Ok);
        let mut seq = 7;
        assert_eq!(qds_snapshot_reader_last_seq(r, &mut seq), QdsStatus::Closed);
        assert_eq!(last_error(), "this reader was closed; open a new one");
        assert_eq!(seq, 7);
        let mut stream = FFI_ArrowArrayStream::empty();
        assert_eq!(
            qds_snapshot_reader_try_read(r, &mut stream, null_mut()),
            QdsStatus::Closed
        );
        assert!(stream.release().is_none());

        assert_eq!(qds_snapshot_writer_close(w), QdsStatus::Ok);
        assert_eq!(qds_snapshot_writer_close(w), QdsStatus::Ok);
        let col: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
        let batch = RecordBatch::try_from_iter([("x", col)]).unwrap();
        let mut array = FFI_ArrowArray::new(&StructArray::from(batch.clone()).into_data());
        let schema = FFI_ArrowSchema::try_from(batch.schema().as_ref()).unwrap();
        assert_eq!(
            qds_snapshot_writer_write_batch(w, &mut array, &schema, null_mut()),
            QdsStatus::Closed
        );
        assert_eq!(last_error(), "this writer was closed; open a new one");
        assert!(array.is_released());

        qds_snapshot_reader_free(r);
        qds_snapshot_writer_free(w);
    }
}

#[test]
fn stream_handles_refuse_every_call_after_close_and_close_twice() {
    let name = segment("stream");
    let mut w = null_mut();
    let mut r = null_mut();
    // SAFETY: as in the snapshot test.
    unsafe {
        assert_eq!(
            qds_stream_writer_create(name.as_ptr(), 1 << 20, null(), &mut w),
            QdsStatus::Ok
        );
        assert_eq!(
            qds_stream_reader_open(name.as_ptr(), null(), &mut r),
            QdsStatus::Ok
        );

        assert_eq!(qds_stream_reader_close(r), QdsStatus::Ok);
        assert_eq!(qds_stream_reader_close(r), QdsStatus::Ok);
        assert_eq!(
            qds_stream_reader_position(r, null_mut(), null_mut()),
            QdsStatus::Closed
        );
        assert_eq!(
            last_error(),
            "this stream reader was closed; open a new one"
        );
        let mut stream = FFI_ArrowArrayStream::empty();
        assert_eq!(
            qds_stream_reader_try_next_chunk(r, &mut stream, null_mut()),
            QdsStatus::Closed
        );
        assert!(stream.release().is_none());

        assert_eq!(qds_stream_writer_close(w), QdsStatus::Ok);
        assert_eq!(qds_stream_writer_close(w), QdsStatus::Ok);
        let mut n = 9;
        assert_eq!(qds_stream_writer_readers(w, &mut n), QdsStatus::Closed);
        assert_eq!(
            last_error(),
            "this stream writer was closed; open a new one"
        );
        assert_eq!(n, 9);
        assert_eq!(qds_stream_writer_finish(w), QdsStatus::Closed);

        qds_stream_reader_free(r);
        qds_stream_writer_free(w);
    }
}
