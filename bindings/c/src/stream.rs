//! Stream writers and readers (`SharedDataStream`) behind opaque handles: lossless, ordered chunks with
//! back-pressure, each chunk read as an `ArrowArrayStream` over the shared memory.
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
//! let name = CString::new(format!("qads-c-stream-doc-{}", std::process::id()))?;
//! let (mut w, mut r) = (std::ptr::null_mut(), std::ptr::null_mut());
//! // SAFETY (for every call below): valid names, null options, live handles, writable out pointers.
//! unsafe {
//!     assert_eq!(qds_stream_writer_create(name.as_ptr(), 1 << 20, std::ptr::null(), &mut w), QdsStatus::Ok);
//!     assert_eq!(qds_stream_reader_open(name.as_ptr(), std::ptr::null(), &mut r), QdsStatus::Ok);
//! }
//! let col: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
//! let batch = RecordBatch::try_from_iter([("x", col)])?;
//! let schema = FFI_ArrowSchema::try_from(batch.schema().as_ref())?;
//! for _ in 0..2 {
//!     let mut array = FFI_ArrowArray::new(&StructArray::from(batch.clone()).into_data());
//!     // SAFETY: as above; the array is moved, the schema borrowed.
//!     let st = unsafe { qds_stream_writer_write_batch(w, &mut array, &schema, std::ptr::null_mut()) };
//!     assert_eq!(st, QdsStatus::Ok);
//! }
//! // SAFETY: as above.
//! assert_eq!(unsafe { qds_stream_writer_finish(w) }, QdsStatus::Ok);
//!
//! let mut info = QdsFrameInfo::default();
//! for seq in 1..=2 {
//!     let mut chunk = FFI_ArrowArrayStream::empty();
//!     // SAFETY: as above.
//!     assert_eq!(unsafe { qds_stream_reader_next_chunk(r, 1000, &mut chunk, &mut info) }, QdsStatus::Ok);
//!     assert_eq!(info.seq, seq);
//!     let got: Vec<RecordBatch> = RecordBatchStreamReader::try_new(chunk)?.collect::<Result<_, _>>()?;
//!     assert_eq!(got, vec![batch.clone()]);
//! }
//! let mut chunk = FFI_ArrowArrayStream::empty();
//! // SAFETY: as above.
//! assert_eq!(unsafe { qds_stream_reader_next_chunk(r, 1000, &mut chunk, &mut info) }, QdsStatus::EndOfStream);
//! // SAFETY: each handle is freed once and not used afterwards.
//! unsafe {
//!     qds_stream_reader_free(r);
//!     qds_stream_writer_free(w);
//! }
//! # Ok(())
//! # }
//! ```

use std::ffi::c_char;
use std::time::Duration;

use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use qadataswap_handle::Closable;
use qadataswap_stream::{
    Chunk, Config, SharedDataStream, StartAt, StreamReader, StreamWriter, Validation, WriteInfo,
};

use crate::error::{boundary, Failure, QdsStatus};
use crate::export::export_stream;
use crate::snapshot::{
    handle, import_batch, read_timeout, str_arg, QdsFrameInfo, QdsWriteInfo, FOREVER,
    QDS_TIMEOUT_INFINITE,
};

/// `QDS_START_OLDEST`: a new reader starts at the oldest chunk still in the ring.
pub const QDS_START_OLDEST: u32 = 0;
/// `QDS_START_NEXT`: a new reader starts at the first chunk published after it attached.
pub const QDS_START_NEXT: u32 = 1;

/// Stream writer options (`qds_stream_writer_options`); fill with [`qds_stream_writer_options_init`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct QdsStreamWriterOptions {
    /// Slots in the ring (default: `memory.num_buffers` of the configuration, 3); the size is split across them.
    pub num_buffers: usize,
    /// Reader-table entries (default 64).
    pub reader_capacity: usize,
    /// How long one attempt of a write waits for the slowest reader, in ms, or `QDS_TIMEOUT_INFINITE`
    /// (default: `sync.timeout_ms`, 5000).
    pub timeout_ms: i64,
    /// Attempts after the first before a write fails with `QDS_ERR_READERS_BEHIND` (default: `sync.retry_count`,
    /// 3).
    pub retry_count: u32,
    /// Non-zero: keep the segment after `finish` (late readers can still read the retained chunks).
    pub persistent: u32,
    /// Spin iterations before parking (default 0).
    pub spin: u32,
    /// Readers that must be attached before the first chunk is written (default 1; 0: broadcast to whoever is
    /// there). The first write waits for them up to the timeout, then fails with `QDS_ERR_NO_READERS`.
    pub min_readers: u32,
    /// How long `finish` keeps the name for attached readers that have not read the end, in ms (default: the
    /// timeout, 5000).
    pub linger_ms: u64,
}

/// Stream reader options (`qds_stream_reader_options`); fill with [`qds_stream_reader_options_init`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct QdsStreamReaderOptions {
    /// Default wait of `qds_stream_reader_next_chunk(..., QDS_TIMEOUT_DEFAULT, ...)` per attempt, in ms, or
    /// `QDS_TIMEOUT_INFINITE` (default: `sync.timeout_ms`, 5000).
    pub timeout_ms: i64,
    /// Attempts after the first of a default-timeout read (default: `sync.retry_count`, 3).
    pub retry_count: u32,
    /// `QDS_START_OLDEST` (default) or `QDS_START_NEXT`.
    pub start: u32,
    /// Spin iterations before parking (default 0).
    pub spin: u32,
    /// `QDS_VALIDATION_TRUSTED` (default) or `QDS_VALIDATION_FULL`.
    pub validation: u32,
}

/// Counters of a stream handle (`qds_stream_stats`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct QdsStreamStats {
    /// Chunks written (writer).
    pub chunks_written: u64,
    /// Encoded bytes written (writer).
    pub bytes_written: u64,
    /// Chunks read (reader).
    pub chunks_read: u64,
    /// Encoded bytes read (reader).
    pub bytes_read: u64,
    /// Writes that had to wait for the slowest reader (writer: back-pressure).
    pub lease_waits: u64,
    /// Wait attempts that ran out.
    pub timeouts: u64,
    /// Buffers copied into private memory (compressed chunks; reader).
    pub copies: u64,
}

impl From<qadataswap_stream::Stats> for QdsStreamStats {
    fn from(s: qadataswap_stream::Stats) -> Self {
        QdsStreamStats {
            chunks_written: s.frames_written,
            bytes_written: s.bytes_written,
            chunks_read: s.frames_read,
            bytes_read: s.bytes_read,
            lease_waits: s.lease_waits,
            timeouts: s.timeouts,
            copies: s.copies,
        }
    }
}

/// A stream writer (`qds_stream_writer`, opaque in C).
pub struct QdsStreamWriter {
    inner: Closable<StreamWriter>,
}

/// A stream reader (`qds_stream_reader`, opaque in C).
pub struct QdsStreamReader {
    inner: Closable<StreamReader>,
}

/// The configuration (file and environment), or the defaults if it cannot be loaded (the error then comes back
/// from create/open, which load it again).
fn config() -> Config {
    Config::load().unwrap_or_default()
}

fn ms_or_infinite(t: Option<Duration>) -> i64 {
    t.map_or(QDS_TIMEOUT_INFINITE, |t| {
        i64::try_from(t.as_millis()).unwrap_or(i64::MAX)
    })
}

fn option_timeout(timeout_ms: i64) -> Result<Option<Duration>, Failure> {
    match timeout_ms {
        QDS_TIMEOUT_INFINITE => Ok(None),
        t if t >= 0 => Ok(Some(Duration::from_millis(t as u64))),
        t => Err(Failure::invalid(format!(
            "timeout_ms {t} is invalid: use >= 0 or QDS_TIMEOUT_INFINITE (-1)"
        ))),
    }
}

fn validation(v: u32) -> Result<Validation, Failure> {
    match v {
        0 => Ok(Validation::Trusted),
        1 => Ok(Validation::Full),
        v => Err(Failure::invalid(format!(
            "validation {v} is invalid: use QDS_VALIDATION_TRUSTED (0) or QDS_VALIDATION_FULL (1)"
        ))),
    }
}

// ---- options ----

/// Fill `out` with the default stream writer options (from `qadataswap.yaml` / `QADATASWAP_*` if present).
///
/// # Safety
/// `out` is null (ignored) or points to writable `qds_stream_writer_options`.
#[no_mangle]
pub unsafe extern "C" fn qds_stream_writer_options_init(out: *mut QdsStreamWriterOptions) {
    let _ = boundary(|| {
        let c = config();
        let v = QdsStreamWriterOptions {
            num_buffers: c.num_buffers,
            reader_capacity: qadataswap_arrow::WriterOptions::default().reader_capacity,
            timeout_ms: ms_or_infinite(Some(c.timeout())),
            retry_count: c.retry_count,
            persistent: 0,
            spin: qadataswap_stream::DEFAULT_SPIN,
            min_readers: 1,
            linger_ms: u64::try_from(c.timeout().as_millis()).unwrap_or(u64::MAX),
        };
        // SAFETY: the caller passes null or a writable struct.
        if let Some(o) = unsafe { out.as_mut() } {
            *o = v;
        }
        Ok(())
    });
}

/// Fill `out` with the default stream reader options (from `qadataswap.yaml` / `QADATASWAP_*` if present).
///
/// # Safety
/// `out` is null (ignored) or points to writable `qds_stream_reader_options`.
#[no_mangle]
pub unsafe extern "C" fn qds_stream_reader_options_init(out: *mut QdsStreamReaderOptions) {
    let _ = boundary(|| {
        let c = config();
        let v = QdsStreamReaderOptions {
            timeout_ms: ms_or_infinite(Some(c.timeout())),
            retry_count: c.retry_count,
            start: QDS_START_OLDEST,
            spin: qadataswap_stream::DEFAULT_READER_SPIN,
            validation: 0,
        };
        // SAFETY: the caller passes null or a writable struct.
        if let Some(o) = unsafe { out.as_mut() } {
            *o = v;
        }
        Ok(())
    });
}

// ---- writer ----

/// Create the stream `name` (or take it over from a dead writer: numbering continues) with `size_bytes` of data
/// capacity split across the slots; `opts` may be NULL (configuration defaults). On success `*out` is a new writer.
///
/// # Safety
/// `name` is a NUL-terminated string; `opts` is null or valid; `out` points to writable storage.
#[no_mangle]
pub unsafe extern "C" fn qds_stream_writer_create(
    name: *const c_char,
    size_bytes: usize,
    opts: *const QdsStreamWriterOptions,
    out: *mut *mut QdsStreamWriter,
) -> QdsStatus {
    boundary(|| {
        if out.is_null() {
            return Err(Failure::invalid("out is NULL"));
        }
        // SAFETY: per this function's contract.
        let name = unsafe { str_arg(name, "name") }?;
        let mut b = SharedDataStream::writer(name).size(size_bytes);
        // SAFETY: per this function's contract `opts` is null or valid.
        if let Some(c) = unsafe { opts.as_ref() } {
            b = b
                .slots(c.num_buffers)
                .reader_capacity(c.reader_capacity)
                .timeout(option_timeout(c.timeout_ms)?)
                .retry_count(c.retry_count)
                .persistent(c.persistent != 0)
                .spin(c.spin)
                .min_readers(c.min_readers as usize)
                .linger(std::time::Duration::from_millis(c.linger_ms));
        }
        let w = b.create()?;
        let h = Box::new(QdsStreamWriter {
            inner: Closable::new("stream writer", w),
        });
        // SAFETY: `out` is non-null and writable per the contract.
        unsafe { out.write(Box::into_raw(h)) };
        Ok(())
    })
}

/// # Safety
/// `info` is null or writable.
unsafe fn put_write_info(info: *mut QdsWriteInfo, i: &WriteInfo) {
    // SAFETY: per the contract.
    if let Some(out) = unsafe { info.as_mut() } {
        *out = QdsWriteInfo {
            seq: i.seq,
            slot: i.slot as u64,
            bytes: i.bytes as u64,
            rows: i.rows as u64,
        };
    }
}

/// Write every record batch of `stream` as the next chunk (kept as they are, not rechunked), waiting while the
/// slowest reader is a whole ring behind. The stream is consumed: released before this returns, whatever the
/// outcome. `info` may be NULL.
///
/// # Safety
/// `w` is a live stream writer; `stream` points to a valid (not released) `ArrowArrayStream` of struct arrays;
/// `info` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn qds_stream_writer_write_stream(
    w: *mut QdsStreamWriter,
    stream: *mut FFI_ArrowArrayStream,
    info: *mut QdsWriteInfo,
) -> QdsStatus {
    boundary(|| {
        if stream.is_null() {
            return Err(Failure::invalid("stream is NULL"));
        }
        // SAFETY: `stream` is a valid stream per the contract; it is moved out (left released).
        let reader = unsafe { RecordBatchStreamReader::from_raw(stream) }?;
        // SAFETY: per the contract `w` is null or live.
        let w = unsafe { handle(w, "stream writer") }?;
        let schema = arrow_array::RecordBatchReader::schema(&reader);
        let batches = reader.collect::<Result<Vec<_>, _>>()?;
        let i = w.inner.with_mut(|wr| wr.write_frame(&schema, &batches))??;
        // SAFETY: per the contract.
        unsafe { put_write_info(info, &i) };
        Ok(())
    })
}

/// Write one record batch, given as a struct `array` of the struct `schema`, as the next chunk. The array is moved
/// (released before this returns, whatever the outcome); the schema is only borrowed. `info` may be NULL.
///
/// # Safety
/// `w` is a live stream writer; `array` and `schema` are valid C Data Interface structs (not released); `info` is
/// null or writable.
#[no_mangle]
pub unsafe extern "C" fn qds_stream_writer_write_batch(
    w: *mut QdsStreamWriter,
    array: *mut FFI_ArrowArray,
    schema: *const FFI_ArrowSchema,
    info: *mut QdsWriteInfo,
) -> QdsStatus {
    boundary(|| {
        if array.is_null() {
            return Err(Failure::invalid("array is NULL"));
        }
        // SAFETY: `array` is valid per the contract; it is moved out (left released) so that it is released on
        // every path below.
        let array = unsafe { FFI_ArrowArray::from_raw(array) };
        // SAFETY: per the contract `schema` is null or valid.
        let schema =
            unsafe { schema.as_ref() }.ok_or_else(|| Failure::invalid("schema is NULL"))?;
        // SAFETY: per the contract `w` is null or live.
        let w = unsafe { handle(w, "stream writer") }?;
        let batch = import_batch(array, schema)?;
        let i = w.inner.with_mut(|wr| wr.write_chunk(&batch))??;
        // SAFETY: per the contract.
        unsafe { put_write_info(info, &i) };
        Ok(())
    })
}

/// Wait until at least `n` readers are attached, up to `timeout_ms` (`QDS_TIMEOUT_INFINITE`: no limit). `*attached`
/// (may be NULL) gets how many are. `QDS_ERR_TIMEOUT` if fewer than `n` attached in time.
///
/// # Safety
/// `w` is a live stream writer; `attached` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn qds_stream_writer_wait_for_readers(
    w: *const QdsStreamWriter,
    n: usize,
    timeout_ms: i64,
    attached: *mut usize,
) -> QdsStatus {
    boundary(|| {
        let t = option_timeout(timeout_ms)?.unwrap_or(FOREVER);
        // SAFETY: per the contract.
        let w = unsafe { handle(w, "stream writer") }?;
        let (r, have) = w.inner.with(|writer| {
            let r = writer.wait_for_readers(n, t);
            let have = match &r {
                Ok(have) => *have,
                Err(_) => writer.readers(),
            };
            (r, have)
        })?;
        // SAFETY: per the contract.
        if let Some(a) = unsafe { attached.as_mut() } {
            *a = have;
        }
        r.map(drop).map_err(Failure::from)
    })
}

/// Readers attached now (dead ones are reclaimed first).
///
/// # Safety
/// `w` is a live stream writer; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn qds_stream_writer_readers(
    w: *const QdsStreamWriter,
    out: *mut usize,
) -> QdsStatus {
    boundary(|| {
        if out.is_null() {
            return Err(Failure::invalid("out is NULL"));
        }
        // SAFETY: per the contract.
        let w = unsafe { handle(w, "stream writer") }?;
        let n = w.inner.with(StreamWriter::readers)?;
        // SAFETY: `out` is non-null and writable.
        unsafe { out.write(n) };
        Ok(())
    })
}

/// This writer's counters (`lease_waits`: writes that waited for slow readers).
///
/// # Safety
/// `w` is a live stream writer; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn qds_stream_writer_stats(
    w: *const QdsStreamWriter,
    out: *mut QdsStreamStats,
) -> QdsStatus {
    boundary(|| {
        if out.is_null() {
            return Err(Failure::invalid("out is NULL"));
        }
        // SAFETY: per the contract.
        let w = unsafe { handle(w, "stream writer") }?;
        let st = w.inner.with(StreamWriter::stats)?;
        // SAFETY: `out` is non-null and writable.
        unsafe { out.write(st.into()) };
        Ok(())
    })
}

/// End the stream cleanly: readers drain every chunk and then get `QDS_END_OF_STREAM`. The name is unlinked
/// (unless persistent); later writes fail with `QDS_ERR_FINISHED`. Idempotent.
///
/// # Safety
/// `w` is a live stream writer.
#[no_mangle]
pub unsafe extern "C" fn qds_stream_writer_finish(w: *mut QdsStreamWriter) -> QdsStatus {
    boundary(|| {
        // SAFETY: per the contract.
        let w = unsafe { handle(w, "stream writer") }?;
        Ok(w.inner.with_mut(StreamWriter::finish)??)
    })
}

/// Close without finishing (if not finished already): readers drain and then get `QDS_ERR_WRITER_CLOSED`, so an
/// unfinished stream is never mistaken for a complete one. The handle stays valid (later calls return
/// `QDS_ERR_CLOSED`) until [`qds_stream_writer_free`].
///
/// # Safety
/// `w` is a live stream writer.
#[no_mangle]
pub unsafe extern "C" fn qds_stream_writer_close(w: *mut QdsStreamWriter) -> QdsStatus {
    boundary(|| {
        // SAFETY: per the contract.
        let w = unsafe { handle(w, "stream writer") }?;
        drop(w.inner.close());
        Ok(())
    })
}

/// Free a stream writer (closing it first if needed, without finishing). NULL is ignored.
///
/// # Safety
/// `w` is null or a stream writer not yet freed; it must not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn qds_stream_writer_free(w: *mut QdsStreamWriter) {
    let _ = boundary(|| {
        if !w.is_null() {
            // SAFETY: `w` came from `Box::into_raw` in `qds_stream_writer_create` and is freed once.
            drop(unsafe { Box::from_raw(w) });
        }
        Ok(())
    });
}

// ---- reader ----

/// Attach a reader to the stream `name`; `opts` may be NULL (configuration defaults, start at the oldest chunk).
///
/// # Safety
/// `name` is a NUL-terminated string; `opts` is null or valid; `out` points to writable storage.
#[no_mangle]
pub unsafe extern "C" fn qds_stream_reader_open(
    name: *const c_char,
    opts: *const QdsStreamReaderOptions,
    out: *mut *mut QdsStreamReader,
) -> QdsStatus {
    boundary(|| {
        if out.is_null() {
            return Err(Failure::invalid("out is NULL"));
        }
        // SAFETY: per this function's contract.
        let name = unsafe { str_arg(name, "name") }?;
        let mut b = SharedDataStream::reader(name);
        // SAFETY: per this function's contract `opts` is null or valid.
        if let Some(c) = unsafe { opts.as_ref() } {
            let start = match c.start {
                QDS_START_OLDEST => StartAt::Oldest,
                QDS_START_NEXT => StartAt::Next,
                s => {
                    return Err(Failure::invalid(format!(
                        "start {s} is invalid: use QDS_START_OLDEST (0) or QDS_START_NEXT (1)"
                    )))
                }
            };
            b = b
                .timeout(option_timeout(c.timeout_ms)?)
                .retry_count(c.retry_count)
                .start_at(start)
                .spin(c.spin)
                .validation(validation(c.validation)?);
        }
        let r = b.open()?;
        let h = Box::new(QdsStreamReader {
            inner: Closable::new("stream reader", r),
        });
        // SAFETY: `out` is non-null and writable per the contract.
        unsafe { out.write(Box::into_raw(h)) };
        Ok(())
    })
}

/// Shared body of the chunk reads: check the pointers, mark `out` released, read, export.
///
/// # Safety
/// `r` is null or live; `out` is null or writable; `info` is null or writable.
unsafe fn chunk_into(
    r: *const QdsStreamReader,
    out: *mut FFI_ArrowArrayStream,
    info: *mut QdsFrameInfo,
    read: impl FnOnce(&mut StreamReader) -> Result<Option<Chunk>, Failure>,
) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::invalid("out stream is NULL"));
    }
    // A released stream on every other path, so callers can always check `out->release`.
    // SAFETY: `out` is non-null and writable; `write` does not drop the old contents.
    unsafe { out.write(FFI_ArrowArrayStream::empty()) };
    // SAFETY: per the contract.
    let r = unsafe { handle(r, "stream reader") }?;
    let chunk = r.inner.with_mut(|reader| match read(reader)? {
        Some(c) => Ok(c),
        None if reader.is_finished() => Err(Failure::new(
            QdsStatus::EndOfStream,
            "the stream was finished and every chunk was read",
        )),
        None => Err(Failure::new(
            QdsStatus::NoFrame,
            "no new chunk is ready yet",
        )),
    })??;
    // SAFETY: `info` is null or writable per the contract.
    if let Some(i) = unsafe { info.as_mut() } {
        *i = QdsFrameInfo {
            seq: chunk.seq(),
            num_rows: chunk.num_rows() as u64,
            num_batches: chunk.batches().len() as u64,
            num_bytes: chunk.num_bytes() as u64,
            write_time_ns: chunk.write_time_ns(),
        };
    }
    let schema = std::sync::Arc::clone(chunk.schema());
    let stream = export_stream(schema, chunk.into_batches());
    // SAFETY: as above.
    unsafe { out.write(stream) };
    Ok(())
}

/// The next chunk, in order, as a stream of record batches pointing into shared memory (no copy), waiting up to
/// `timeout_ms` (`QDS_TIMEOUT_DEFAULT`: the reader's timeout with its retries; `QDS_TIMEOUT_INFINITE`). Returns
/// `QDS_OK`, `QDS_END_OF_STREAM` once the stream was finished and every chunk read, `QDS_ERR_WRITER_DIED` /
/// `QDS_ERR_WRITER_CLOSED` after every published chunk was read, `QDS_ERR_TIMEOUT`, `QDS_ERR_RING_HELD` (this
/// reader still holds the slot its next chunk needs: release older chunks). Every array taken from the stream holds
/// the slot's lease until released; a reader can keep at most `num_buffers - 1` chunks alive. On anything but
/// `QDS_OK` `*out` is a released stream.
///
/// # Safety
/// `r` is a live stream reader; `out` points to writable `ArrowArrayStream` storage (overwritten, not released);
/// `info` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn qds_stream_reader_next_chunk(
    r: *const QdsStreamReader,
    timeout_ms: i64,
    out: *mut FFI_ArrowArrayStream,
    info: *mut QdsFrameInfo,
) -> QdsStatus {
    boundary(|| {
        let t = read_timeout(timeout_ms)?;
        // SAFETY: forwarded contract.
        unsafe { chunk_into(r, out, info, |rd| Ok(rd.next_chunk(t)?)) }
    })
}

/// The next chunk if one is ready now: `QDS_OK`, `QDS_NO_FRAME` (nothing yet), `QDS_END_OF_STREAM`, or the errors
/// of [`qds_stream_reader_next_chunk`] without timeouts.
///
/// # Safety
/// As [`qds_stream_reader_next_chunk`].
#[no_mangle]
pub unsafe extern "C" fn qds_stream_reader_try_next_chunk(
    r: *const QdsStreamReader,
    out: *mut FFI_ArrowArrayStream,
    info: *mut QdsFrameInfo,
) -> QdsStatus {
    // SAFETY: forwarded contract.
    boundary(|| unsafe { chunk_into(r, out, info, |rd| Ok(rd.try_next_chunk()?)) })
}

/// The number of the next chunk this reader will return (`*next`) and how many it returned so far
/// (`*delivered`); either pointer may be NULL.
///
/// # Safety
/// `r` is a live stream reader; `next` and `delivered` are null or writable.
#[no_mangle]
pub unsafe extern "C" fn qds_stream_reader_position(
    r: *const QdsStreamReader,
    next: *mut u64,
    delivered: *mut u64,
) -> QdsStatus {
    boundary(|| {
        // SAFETY: per the contract.
        let r = unsafe { handle(r, "stream reader") }?;
        let (c, d) = r.inner.with(|rd| (rd.cursor(), rd.delivered()))?;
        // SAFETY: per the contract.
        if let Some(p) = unsafe { next.as_mut() } {
            *p = c;
        }
        // SAFETY: per the contract.
        if let Some(p) = unsafe { delivered.as_mut() } {
            *p = d;
        }
        Ok(())
    })
}

/// This reader's counters.
///
/// # Safety
/// `r` is a live stream reader; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn qds_stream_reader_stats(
    r: *const QdsStreamReader,
    out: *mut QdsStreamStats,
) -> QdsStatus {
    boundary(|| {
        if out.is_null() {
            return Err(Failure::invalid("out is NULL"));
        }
        // SAFETY: per the contract.
        let r = unsafe { handle(r, "stream reader") }?;
        let st = r.inner.with(StreamReader::stats)?;
        // SAFETY: `out` is non-null and writable.
        unsafe { out.write(st.into()) };
        Ok(())
    })
}

/// How many slot leases this reader holds right now (one per chunk with live exported data; for tests and
/// diagnostics).
///
/// # Safety
/// `r` is a live stream reader; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn qds_stream_reader_lease_count(
    r: *const QdsStreamReader,
    out: *mut u64,
) -> QdsStatus {
    boundary(|| {
        if out.is_null() {
            return Err(Failure::invalid("out is NULL"));
        }
        // SAFETY: per the contract.
        let r = unsafe { handle(r, "stream reader") }?;
        let n = r.inner.with(|rd| {
            let att = rd.core().attachment();
            let slots = rd.core().shared().geometry().slot_count;
            (0..slots)
                .map(|s| u64::from(att.entry().lease_count(s)))
                .sum::<u64>()
        })?;
        // SAFETY: `out` is non-null and writable.
        unsafe { out.write(n) };
        Ok(())
    })
}

/// Detach. Chunks already exported stay valid until released. The handle stays valid (later calls return
/// `QDS_ERR_CLOSED`) until [`qds_stream_reader_free`].
///
/// # Safety
/// `r` is a live stream reader.
#[no_mangle]
pub unsafe extern "C" fn qds_stream_reader_close(r: *mut QdsStreamReader) -> QdsStatus {
    boundary(|| {
        // SAFETY: per the contract.
        let r = unsafe { handle(r, "stream reader") }?;
        drop(r.inner.close());
        Ok(())
    })
}

/// Free a stream reader (detaching it first if needed). NULL is ignored.
///
/// # Safety
/// `r` is null or a stream reader not yet freed; it must not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn qds_stream_reader_free(r: *mut QdsStreamReader) {
    let _ = boundary(|| {
        if !r.is_null() {
            // SAFETY: `r` came from `Box::into_raw` in `qds_stream_reader_open` and is freed once.
            drop(unsafe { Box::from_raw(r) });
        }
        Ok(())
    });
}
