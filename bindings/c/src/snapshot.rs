//! Snapshot writers and readers behind opaque handles.

use std::ffi::{c_char, c_int, CStr};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::ffi::{from_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use arrow_array::{Array, RecordBatch, StructArray};
use arrow_schema::{DataType, Schema};
use qadataswap_arrow::{
    Frame, ReaderOptions, SnapshotReader, SnapshotWriter, Validation, WriteInfo, WriterOptions,
};
use qadataswap_handle::{Closable, RwClosable};

use crate::error::{boundary, Failure, QdsStatus};
use crate::export::export_stream;

/// `QDS_TIMEOUT_INFINITE`: wait until something arrives or the writer goes away.
pub const QDS_TIMEOUT_INFINITE: i64 = -1;
/// `QDS_TIMEOUT_DEFAULT`: use the reader's default timeout (from its options).
pub const QDS_TIMEOUT_DEFAULT: i64 = -2;

/// Stands in for "forever" where the core wants a `Duration` (136 years).
pub(crate) const FOREVER: Duration = Duration::from_secs(u32::MAX as u64);

/// Writer options (`qds_writer_options`); fill with [`qds_writer_options_init`] and change what you need.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct QdsWriterOptions {
    /// Slots in the ring (default 3); the data size is split across them.
    pub num_buffers: usize,
    /// Reader-table entries (default 64).
    pub reader_capacity: usize,
    /// Schema-area bytes (default 64 KiB).
    pub schema_capacity: usize,
    /// File mode of the segment (default 0600).
    pub permissions: u32,
    /// Non-zero: keep the segment after the writer closes.
    pub persistent: u32,
    /// Spin iterations before parking.
    pub spin: u32,
    /// How long a write waits for a leased slot, in ms (default 5000).
    pub lease_timeout_ms: u64,
}

/// Reader options (`qds_reader_options`); fill with [`qds_reader_options_init`] and change what you need.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct QdsReaderOptions {
    /// Default timeout of blocking reads in ms, or `QDS_TIMEOUT_INFINITE` (the default).
    pub timeout_ms: i64,
    /// How long to wait for a segment still being initialised, in ms (default 2000).
    pub open_timeout_ms: u64,
    /// Spin iterations before parking.
    pub spin: u32,
    /// 0: trusted bodies (default, O(columns)); 1: full Arrow validation (O(rows)).
    pub validation: u32,
    /// Non-zero: accept a segment whose mode lets group/others in.
    pub allow_shared_mode: u32,
}

/// What a write published (`qds_write_info`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct QdsWriteInfo {
    /// The frame's sequence number.
    pub seq: u64,
    /// The slot it went to.
    pub slot: u64,
    /// Bytes of the encoded frame.
    pub bytes: u64,
    /// Rows over all batches.
    pub rows: u64,
}

/// What a read returned (`qds_frame_info`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct QdsFrameInfo {
    /// The frame's sequence number.
    pub seq: u64,
    /// Rows over all batches.
    pub num_rows: u64,
    /// Record batches in the frame.
    pub num_batches: u64,
    /// Encoded size in the slot.
    pub num_bytes: u64,
    /// When the writer committed it (CLOCK_REALTIME, ns).
    pub write_time_ns: u64,
}

/// A snapshot writer (`qds_snapshot_writer`, opaque in C).
pub struct QdsSnapshotWriter {
    inner: Closable<SnapshotWriter>,
}

/// A snapshot reader (`qds_snapshot_reader`, opaque in C).
pub struct QdsSnapshotReader {
    inner: RwClosable<SnapshotReader>,
}

// ---- argument helpers ----

/// # Safety
/// `p` is null or a NUL-terminated string valid for the call.
pub(crate) unsafe fn str_arg<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(Failure::invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-null and NUL-terminated per the caller's contract.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str()
        .map_err(|_| Failure::invalid(format!("{what} is not valid UTF-8")))
}

/// # Safety
/// `p` is null or a handle returned by this library and not yet freed.
pub(crate) unsafe fn handle<'a, T>(p: *const T, what: &str) -> Result<&'a T, Failure> {
    // SAFETY: per the caller's contract a non-null `p` is a live handle.
    unsafe { p.as_ref() }.ok_or_else(|| Failure::invalid(format!("{what} is NULL")))
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

pub(crate) fn read_timeout(timeout_ms: i64) -> Result<Option<Duration>, Failure> {
    match timeout_ms {
        QDS_TIMEOUT_DEFAULT => Ok(None),
        QDS_TIMEOUT_INFINITE => Ok(Some(FOREVER)),
        t if t >= 0 => Ok(Some(Duration::from_millis(t as u64))),
        t => Err(Failure::invalid(format!(
            "timeout_ms {t} is invalid: use >= 0, QDS_TIMEOUT_INFINITE (-1) or QDS_TIMEOUT_DEFAULT (-2)"
        ))),
    }
}

// ---- options ----

/// Fill `out` with the default writer options.
///
/// # Safety
/// `out` is null (ignored) or points to writable `qds_writer_options`.
#[no_mangle]
pub unsafe extern "C" fn qds_writer_options_init(out: *mut QdsWriterOptions) {
    // The configuration's values (qadataswap.yaml, QADATASWAP_* variables), or the built-in defaults if it cannot
    // be loaded: the error then comes back from qds_snapshot_writer_create, which loads it again.
    let d = SnapshotWriter::builder("")
        .resolve()
        .unwrap_or_else(|_| WriterOptions::default());
    let v = QdsWriterOptions {
        num_buffers: d.num_buffers,
        reader_capacity: d.reader_capacity,
        schema_capacity: d.schema_capacity,
        permissions: d.mode,
        persistent: u32::from(d.persistent),
        spin: d.spin,
        lease_timeout_ms: d.lease_timeout.as_millis() as u64,
    };
    // SAFETY: the caller passes null or a writable struct.
    if let Some(o) = unsafe { out.as_mut() } {
        *o = v;
    }
}

/// Fill `out` with the default reader options.
///
/// # Safety
/// `out` is null (ignored) or points to writable `qds_reader_options`.
#[no_mangle]
pub unsafe extern "C" fn qds_reader_options_init(out: *mut QdsReaderOptions) {
    // The open timeout is the configuration's sync.timeout_ms (see qds_writer_options_init for errors).
    let d = SnapshotReader::builder("")
        .resolve()
        .unwrap_or_else(|_| ReaderOptions::default());
    let v = QdsReaderOptions {
        timeout_ms: d
            .timeout
            .map_or(QDS_TIMEOUT_INFINITE, |t| t.as_millis() as i64),
        open_timeout_ms: d.open_timeout.as_millis() as u64,
        spin: d.spin,
        validation: 0,
        allow_shared_mode: u32::from(d.allow_shared_mode),
    };
    // SAFETY: the caller passes null or a writable struct.
    if let Some(o) = unsafe { out.as_mut() } {
        *o = v;
    }
}

// ---- writer ----

/// Create (or take over from a dead owner) the snapshot segment `name` with `size_bytes` of data capacity split
/// across the slots; `opts` may be NULL for defaults. On success `*out` is a new writer.
///
/// # Safety
/// `name` is a NUL-terminated string; `opts` is null or valid; `out` points to writable storage.
#[no_mangle]
pub unsafe extern "C" fn qds_snapshot_writer_create(
    name: *const c_char,
    size_bytes: usize,
    opts: *const QdsWriterOptions,
    out: *mut *mut QdsSnapshotWriter,
) -> QdsStatus {
    boundary(|| {
        if out.is_null() {
            return Err(Failure::invalid("out is NULL"));
        }
        // SAFETY: per this function's contract.
        let name = unsafe { str_arg(name, "name") }?;
        // Unset (NULL options, size 0) is the configuration's (qadataswap.yaml, QADATASWAP_* variables).
        let mut b = SnapshotWriter::builder(name);
        if size_bytes != 0 {
            b = b.size(size_bytes);
        }
        // SAFETY: per this function's contract `opts` is null or valid.
        if let Some(c) = unsafe { opts.as_ref() } {
            b = b
                .slots(c.num_buffers)
                .reader_capacity(c.reader_capacity)
                .schema_capacity(c.schema_capacity)
                .permissions(c.permissions)
                .persistent(c.persistent != 0)
                .spin(c.spin)
                .lease_timeout(ms(c.lease_timeout_ms));
        }
        let w = b.create()?;
        let h = Box::new(QdsSnapshotWriter {
            inner: Closable::new("writer", w),
        });
        // SAFETY: `out` is non-null and writable per the contract.
        unsafe { out.write(Box::into_raw(h)) };
        Ok(())
    })
}

fn with_writer(
    w: &QdsSnapshotWriter,
    f: impl FnOnce(&mut SnapshotWriter) -> Result<WriteInfo, Failure>,
    info: *mut QdsWriteInfo,
) -> Result<(), Failure> {
    let i = w.inner.with_mut(f)??;
    // SAFETY: callers pass null or a writable `qds_write_info` (checked by the public functions' contracts).
    if let Some(out) = unsafe { info.as_mut() } {
        *out = QdsWriteInfo {
            seq: i.seq,
            slot: i.slot as u64,
            bytes: i.bytes as u64,
            rows: i.rows as u64,
        };
    }
    Ok(())
}

/// Publish every record batch of `stream` as one frame (not rechunked). The stream is consumed: it is released
/// before this returns, whatever the outcome. `info` may be NULL.
///
/// # Safety
/// `w` is a live writer; `stream` points to a valid (not released) `ArrowArrayStream` of struct arrays; `info` is
/// null or writable.
#[no_mangle]
pub unsafe extern "C" fn qds_snapshot_writer_write_stream(
    w: *mut QdsSnapshotWriter,
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
        let w = unsafe { handle(w, "writer") }?;
        let schema = arrow_array::RecordBatchReader::schema(&reader);
        let batches = reader.collect::<Result<Vec<_>, _>>()?;
        with_writer(w, |wr| Ok(wr.write_frame(&schema, &batches)?), info)
    })
}

/// Publish one record batch, given as a struct `array` of the struct `schema`, as one frame. The array is moved
/// (released before this returns, whatever the outcome); the schema is only borrowed. `info` may be NULL.
///
/// # Safety
/// `w` is a live writer; `array` and `schema` are valid C Data Interface structs (not released); `info` is null or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn qds_snapshot_writer_write_batch(
    w: *mut QdsSnapshotWriter,
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
        let w = unsafe { handle(w, "writer") }?;
        let batch = import_batch(array, schema)?;
        with_writer(w, |wr| Ok(wr.write(&batch)?), info)
    })
}

pub(crate) fn import_batch(
    array: FFI_ArrowArray,
    schema: &FFI_ArrowSchema,
) -> Result<RecordBatch, Failure> {
    let rust_schema = Schema::try_from(schema)?;
    // SAFETY: the array and schema are valid C Data Interface structs per the caller's contract, and describe
    // each other (the caller's promise; arrow-rs checks the buffer counts against the type).
    let data = unsafe { from_ffi(array, schema) }?;
    if !matches!(data.data_type(), DataType::Struct(_)) {
        return Err(Failure::invalid(format!(
            "a record batch is a struct array, this one is {}; export a RecordBatch (ExportRecordBatch in C++)",
            data.data_type()
        )));
    }
    let s = StructArray::from(data);
    if s.null_count() > 0 {
        return Err(Failure::invalid(
            "the top-level struct array has nulls; a record batch cannot",
        ));
    }
    Ok(RecordBatch::try_new(
        Arc::new(rust_schema),
        s.columns().to_vec(),
    )?)
}

/// Close the writer cleanly: readers finish what they hold and then get `QDS_ERR_WRITER_CLOSED`; the name is
/// unlinked unless the segment is persistent. The handle stays valid (later calls return `QDS_ERR_CLOSED`) until
/// [`qds_snapshot_writer_free`].
///
/// # Safety
/// `w` is a live writer.
#[no_mangle]
pub unsafe extern "C" fn qds_snapshot_writer_close(w: *mut QdsSnapshotWriter) -> QdsStatus {
    boundary(|| {
        // SAFETY: per the contract.
        let w = unsafe { handle(w, "writer") }?;
        match w.inner.close() {
            Some(writer) => Ok(writer.close()?),
            None => Ok(()),
        }
    })
}

/// Free a writer (closing it first if needed; errors are dropped: call [`qds_snapshot_writer_close`] to see them).
/// NULL is ignored.
///
/// # Safety
/// `w` is null or a writer not yet freed; it must not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn qds_snapshot_writer_free(w: *mut QdsSnapshotWriter) {
    let _ = boundary(|| {
        if !w.is_null() {
            // SAFETY: `w` came from `Box::into_raw` in `qds_snapshot_writer_create` and is freed once.
            drop(unsafe { Box::from_raw(w) });
        }
        Ok(())
    });
}

/// Remove the segment `name` if it is ours and unused (`qadataswap_arrow::status::remove`).
///
/// # Safety
/// `name` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn qds_remove(name: *const c_char, force: c_int) -> QdsStatus {
    boundary(|| {
        // SAFETY: per this function's contract.
        let name = unsafe { str_arg(name, "name") }?;
        qadataswap_arrow::status::remove(name, force != 0)?;
        Ok(())
    })
}

// ---- reader ----

/// Attach to the snapshot segment `name`; `opts` may be NULL for defaults. On success `*out` is a new reader.
///
/// # Safety
/// `name` is a NUL-terminated string; `opts` is null or valid; `out` points to writable storage.
#[no_mangle]
pub unsafe extern "C" fn qds_snapshot_reader_open(
    name: *const c_char,
    opts: *const QdsReaderOptions,
    out: *mut *mut QdsSnapshotReader,
) -> QdsStatus {
    boundary(|| {
        if out.is_null() {
            return Err(Failure::invalid("out is NULL"));
        }
        // SAFETY: per this function's contract.
        let name = unsafe { str_arg(name, "name") }?;
        let mut o = ReaderOptions::default();
        // SAFETY: per this function's contract `opts` is null or valid.
        if let Some(c) = unsafe { opts.as_ref() } {
            o.timeout = match c.timeout_ms {
                QDS_TIMEOUT_INFINITE => None,
                t if t >= 0 => Some(Duration::from_millis(t as u64)),
                t => {
                    return Err(Failure::invalid(format!(
                        "timeout_ms {t} is invalid: use >= 0 or QDS_TIMEOUT_INFINITE (-1)"
                    )))
                }
            };
            o.open_timeout = ms(c.open_timeout_ms);
            o.spin = c.spin;
            o.validation = match c.validation {
                0 => Validation::Trusted,
                1 => Validation::Full,
                v => {
                    return Err(Failure::invalid(format!(
                        "validation {v} is invalid: use QDS_VALIDATION_TRUSTED (0) or QDS_VALIDATION_FULL (1)"
                    )))
                }
            };
            o.allow_shared_mode = c.allow_shared_mode != 0;
        }
        let r = SnapshotReader::builder(name).options(o).open()?;
        let h = Box::new(QdsSnapshotReader {
            inner: RwClosable::new("reader", r),
        });
        // SAFETY: `out` is non-null and writable per the contract.
        unsafe { out.write(Box::into_raw(h)) };
        Ok(())
    })
}

/// Shared body of the read functions: check the pointers, mark `out` released, read, export.
///
/// # Safety
/// `r` is null or live; `out` is null or writable; `info` is null or writable.
unsafe fn read_into(
    r: *const QdsSnapshotReader,
    out: *mut FFI_ArrowArrayStream,
    info: *mut QdsFrameInfo,
    read: impl FnOnce(&SnapshotReader) -> Result<Option<Frame>, Failure>,
) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::invalid("out stream is NULL"));
    }
    // A released stream on every failure path, so callers can always check `out->release`.
    // SAFETY: `out` is non-null and writable; `write` does not drop the old contents.
    unsafe { out.write(FFI_ArrowArrayStream::empty()) };
    // SAFETY: per the contract.
    let r = unsafe { handle(r, "reader") }?;
    let frame = r
        .inner
        .with(read)??
        .ok_or_else(|| Failure::new(QdsStatus::NoFrame, "no frame has been published yet"))?;
    // SAFETY: `info` is null or writable per the contract.
    if let Some(i) = unsafe { info.as_mut() } {
        *i = QdsFrameInfo {
            seq: frame.seq(),
            num_rows: frame.num_rows() as u64,
            num_batches: frame.batches().len() as u64,
            num_bytes: frame.num_bytes() as u64,
            write_time_ns: frame.write_time_ns(),
        };
    }
    let schema = Arc::clone(frame.schema());
    let stream = export_stream(schema, frame.into_batches());
    // SAFETY: as above.
    unsafe { out.write(stream) };
    Ok(())
}

/// The newest committed snapshot as a stream of record batches pointing into shared memory (no copy); blocks (up
/// to the reader's default timeout) only until a first frame exists. Every array taken from the stream, and every
/// child moved out of one, holds the slot's lease until released. On failure `*out` is a released stream.
///
/// # Safety
/// `r` is a live reader; `out` points to writable `ArrowArrayStream` storage (its old contents are overwritten, not
/// released); `info` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn qds_snapshot_reader_read(
    r: *const QdsSnapshotReader,
    out: *mut FFI_ArrowArrayStream,
    info: *mut QdsFrameInfo,
) -> QdsStatus {
    // SAFETY: forwarded contract.
    boundary(|| unsafe { read_into(r, out, info, |rd| Ok(Some(rd.read()?))) })
}

/// As [`qds_snapshot_reader_read`] with an explicit timeout (`QDS_TIMEOUT_INFINITE`, `QDS_TIMEOUT_DEFAULT` or ms).
///
/// # Safety
/// As [`qds_snapshot_reader_read`].
#[no_mangle]
pub unsafe extern "C" fn qds_snapshot_reader_read_timeout(
    r: *const QdsSnapshotReader,
    timeout_ms: i64,
    out: *mut FFI_ArrowArrayStream,
    info: *mut QdsFrameInfo,
) -> QdsStatus {
    boundary(|| {
        let t = read_timeout(timeout_ms)?;
        // SAFETY: forwarded contract.
        unsafe {
            read_into(r, out, info, |rd| {
                Ok(Some(match t {
                    Some(t) => rd.read_timeout(t)?,
                    None => rd.read()?,
                }))
            })
        }
    })
}

/// The newest frame strictly newer than the last one this reader returned, waiting up to `timeout_ms`. After the
/// writer closed (or died) and every frame was returned: `QDS_ERR_WRITER_CLOSED` (`QDS_ERR_WRITER_DIED`).
///
/// # Safety
/// As [`qds_snapshot_reader_read`].
#[no_mangle]
pub unsafe extern "C" fn qds_snapshot_reader_read_next(
    r: *const QdsSnapshotReader,
    timeout_ms: i64,
    out: *mut FFI_ArrowArrayStream,
    info: *mut QdsFrameInfo,
) -> QdsStatus {
    boundary(|| {
        let t = read_timeout(timeout_ms)?;
        // SAFETY: forwarded contract.
        unsafe { read_into(r, out, info, |rd| Ok(Some(rd.read_next(t)?))) }
    })
}

/// The newest committed frame without blocking: `QDS_OK`, or `QDS_NO_FRAME` if none was published yet.
///
/// # Safety
/// As [`qds_snapshot_reader_read`].
#[no_mangle]
pub unsafe extern "C" fn qds_snapshot_reader_try_read(
    r: *const QdsSnapshotReader,
    out: *mut FFI_ArrowArrayStream,
    info: *mut QdsFrameInfo,
) -> QdsStatus {
    // SAFETY: forwarded contract.
    boundary(|| unsafe { read_into(r, out, info, |rd| Ok(rd.try_read()?)) })
}

/// The newest frame, fully validated and copied into private memory (for producers that are not trusted).
///
/// # Safety
/// As [`qds_snapshot_reader_read`].
#[no_mangle]
pub unsafe extern "C" fn qds_snapshot_reader_read_copied(
    r: *const QdsSnapshotReader,
    out: *mut FFI_ArrowArrayStream,
    info: *mut QdsFrameInfo,
) -> QdsStatus {
    // SAFETY: forwarded contract.
    boundary(|| unsafe { read_into(r, out, info, |rd| Ok(Some(rd.read_copied()?))) })
}

/// The schema of the newest frame (`QDS_NO_FRAME` before the first write). On success `*out` is a schema the
/// caller releases.
///
/// # Safety
/// `r` is a live reader; `out` points to writable `ArrowSchema` storage.
#[no_mangle]
pub unsafe extern "C" fn qds_snapshot_reader_schema(
    r: *const QdsSnapshotReader,
    out: *mut FFI_ArrowSchema,
) -> QdsStatus {
    boundary(|| {
        if out.is_null() {
            return Err(Failure::invalid("out schema is NULL"));
        }
        // SAFETY: per the contract.
        let r = unsafe { handle(r, "reader") }?;
        let schema = r
            .inner
            .with(SnapshotReader::schema)??
            .ok_or_else(|| Failure::new(QdsStatus::NoFrame, "no frame has been published yet"))?;
        let c = FFI_ArrowSchema::try_from(schema.as_ref())?;
        // SAFETY: `out` is non-null and writable.
        unsafe { out.write(c) };
        Ok(())
    })
}

/// How many slot leases this reader holds right now (one per slot with live exported data; for tests and
/// diagnostics).
///
/// # Safety
/// `r` is a live reader; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn qds_snapshot_reader_lease_count(
    r: *const QdsSnapshotReader,
    out: *mut u64,
) -> QdsStatus {
    boundary(|| {
        if out.is_null() {
            return Err(Failure::invalid("out is NULL"));
        }
        // SAFETY: per the contract.
        let r = unsafe { handle(r, "reader") }?;
        let n = r.inner.with(|reader| {
            let att = reader.attachment();
            let slots = att.shared().geometry().slot_count;
            (0..slots)
                .map(|s| u64::from(att.entry().lease_count(s)))
                .sum::<u64>()
        })?;
        // SAFETY: `out` is non-null and writable.
        unsafe { out.write(n) };
        Ok(())
    })
}

/// The sequence number of the last frame this reader returned (0: none yet).
///
/// # Safety
/// `r` is a live reader; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn qds_snapshot_reader_last_seq(
    r: *const QdsSnapshotReader,
    out: *mut u64,
) -> QdsStatus {
    boundary(|| {
        if out.is_null() {
            return Err(Failure::invalid("out is NULL"));
        }
        // SAFETY: per the contract.
        let r = unsafe { handle(r, "reader") }?;
        let seq = r.inner.with(SnapshotReader::last_seq)?;
        // SAFETY: `out` is non-null and writable.
        unsafe { out.write(seq) };
        Ok(())
    })
}

/// Detach the reader. Data already exported stays valid (it holds its own leases and mapping) until released.
/// The handle stays valid (later calls return `QDS_ERR_CLOSED`) until [`qds_snapshot_reader_free`].
///
/// # Safety
/// `r` is a live reader.
#[no_mangle]
pub unsafe extern "C" fn qds_snapshot_reader_close(r: *mut QdsSnapshotReader) -> QdsStatus {
    boundary(|| {
        // SAFETY: per the contract.
        let r = unsafe { handle(r, "reader") }?;
        drop(r.inner.close());
        Ok(())
    })
}

/// Free a reader (detaching it first if needed). NULL is ignored.
///
/// # Safety
/// `r` is null or a reader not yet freed; it must not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn qds_snapshot_reader_free(r: *mut QdsSnapshotReader) {
    let _ = boundary(|| {
        if !r.is_null() {
            // SAFETY: `r` came from `Box::into_raw` in `qds_snapshot_reader_open` and is freed once.
            drop(unsafe { Box::from_raw(r) });
        }
        Ok(())
    });
}
