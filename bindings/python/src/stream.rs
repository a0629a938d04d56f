//! Native stream writer and reader over `qadataswap-stream`: lossless, ordered chunks with back-pressure.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, Schema, SchemaRef};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};
use qadataswap_handle::{Closable, Closed};
use qadataswap_stream::{
    Chunk, Error as StreamError, SharedDataStream, StartAt, StreamReader, StreamWriter,
};

use crate::boundary::guarded;
use crate::capsule;
use crate::conform;
use crate::error::{raise, to_py};
use crate::frame::PyFrame;
use crate::snapshot::{check_pid, finite_seconds, released, seconds, stats_dict, PyCancel};

const SLICE: Duration = Duration::from_millis(50);

/// The Python exception for a stream error.
pub fn stream_to_py(py: Python<'_>, e: StreamError) -> PyErr {
    let msg = e.to_string();
    let name_of = |n: &str| {
        (
            "name",
            n.to_owned()
                .into_pyobject(py)
                .map(|s| s.into_any().unbind())
                .unwrap_or_else(|_| py.None()),
        )
    };
    match e {
        StreamError::Arrow(inner) => to_py(py, inner),
        StreamError::Config(_) => raise(py, "InvalidConfigError", msg, &[]),
        StreamError::ReadersBehind { ref name, .. } => {
            raise(py, "ReadersBehindError", msg, &[name_of(name)])
        }
        StreamError::RingHeld { ref name, .. } => raise(py, "RingHeldError", msg, &[name_of(name)]),
        StreamError::ChunksLost { ref name, .. } => {
            raise(py, "ChunksLostError", msg, &[name_of(name)])
        }
        StreamError::WriterDied { ref name, .. } => {
            raise(py, "WriterDiedError", msg, &[name_of(name)])
        }
        StreamError::WriterClosed { ref name, .. } => {
            raise(py, "WriterClosedError", msg, &[name_of(name)])
        }
        StreamError::Timeout { ref name, .. } => raise(py, "TimeoutError", msg, &[name_of(name)]),
        StreamError::Finished { ref name } => raise(py, "FinishedError", msg, &[name_of(name)]),
        StreamError::NoReaders { ref name, .. } => {
            raise(py, "NoReadersError", msg, &[name_of(name)])
        }
        StreamError::JoinedLate {
            ref name,
            first,
            last,
            resumes_at,
        } => {
            let num = |v: u64| {
                v.into_pyobject(py)
                    .map(|o| o.into_any().unbind())
                    .unwrap_or_else(|_| py.None())
            };
            raise(
                py,
                "ChunksMissedError",
                msg,
                &[
                    name_of(name),
                    ("first", num(first)),
                    ("last", num(last)),
                    ("resumes_at", num(resumes_at)),
                ],
            )
        }
        _ => raise(py, "Error", msg, &[]),
    }
}

/// The native stream writer.
#[pyclass(module = "qadataswap._native", name = "StreamWriter", frozen)]
pub struct PyStreamWriter {
    inner: Closable<StreamWriter>,
    name: String,
    pid: u32,
}

impl PyStreamWriter {
    fn with<R: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut StreamWriter) -> Result<R, StreamError> + Send,
    ) -> PyResult<R> {
        check_pid(py, "stream writer", &self.name, self.pid)?;
        py.detach(|| self.inner.with_mut(f))
            .map_err(|c| released(py, c.what, &self.name))?
            .map_err(|e| stream_to_py(py, e))
    }
}

#[pymethods]
impl PyStreamWriter {
    /// Create the stream `name` (or take over one whose writer died).
    #[new]
    #[pyo3(signature = (name, size=None, num_buffers=None, *, timeout=None, retry_count=None, persistent=None,
                        reader_capacity=None, spin=None, min_readers=None, linger=None, config=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        name: String,
        size: Option<usize>,
        num_buffers: Option<usize>,
        timeout: Option<f64>,
        retry_count: Option<u32>,
        persistent: Option<bool>,
        reader_capacity: Option<usize>,
        spin: Option<u32>,
        min_readers: Option<usize>,
        linger: Option<f64>,
        config: Option<std::path::PathBuf>,
    ) -> PyResult<Self> {
        guarded(py, || {
            let mut b = SharedDataStream::writer(&name);
            if let Some(path) = config {
                b = b.config_file(path);
            }
            if let Some(n) = size {
                b = b.size(n);
            }
            if let Some(n) = min_readers {
                b = b.min_readers(n);
            }
            if let Some(t) = linger {
                b = b.linger(finite_seconds(py, "linger", t)?);
            }
            if let Some(n) = num_buffers {
                b = b.slots(n);
            }
            if let Some(t) = timeout {
                b = b.timeout(Some(finite_seconds(py, "timeout", t)?));
            }
            if let Some(n) = retry_count {
                b = b.retry_count(n);
            }
            if let Some(p) = persistent {
                b = b.persistent(p);
            }
            if let Some(n) = reader_capacity {
                b = b.reader_capacity(n);
            }
            if let Some(n) = spin {
                b = b.spin(n);
            }
            let w = py.detach(|| b.create()).map_err(|e| stream_to_py(py, e))?;
            Ok(PyStreamWriter {
                inner: Closable::new("stream writer", w),
                name,
                pid: std::process::id(),
            })
        })
    }

    /// Write `data` as the next chunk; returns ``(seq, slot, bytes, rows)``.
    fn write_chunk(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
    ) -> PyResult<(u64, usize, usize, usize)> {
        guarded(py, || {
            check_pid(py, "stream writer", &self.name, self.pid)?;
            let imported = capsule::import(py, data)?;
            let schema = imported.schema;
            let mut batches = imported.batches;
            if batches.is_empty() {
                batches.push(RecordBatch::new_empty(schema.clone()));
            }
            let info = self.with(py, move |w| w.write_frame(&schema, &batches))?;
            Ok((info.seq, info.slot, info.bytes, info.rows))
        })
    }

    /// Wait until `n` readers are attached (or `timeout` s); returns how many are.
    fn wait_for_readers(&self, py: Python<'_>, n: usize, timeout: f64) -> PyResult<usize> {
        guarded(py, || {
            let t = finite_seconds(py, "timeout", timeout)?;
            self.with(py, move |w| w.wait_for_readers(n, t))
        })
    }

    /// Readers attached now.
    fn readers(&self, py: Python<'_>) -> PyResult<usize> {
        guarded(py, || self.with(py, |w| Ok(w.readers())))
    }

    /// End the stream cleanly: readers drain every chunk, then their iteration ends.
    fn finish(&self, py: Python<'_>) -> PyResult<()> {
        guarded(py, || self.with(py, |w| w.finish()))
    }

    /// Close (without finishing, readers see WriterClosedError after draining, unless finish() was called).
    fn close(&self, py: Python<'_>) {
        let w = self.inner.close();
        py.detach(move || drop(w));
    }

    /// Whether `close` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// The stream's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The number the next chunk gets.
    #[getter]
    fn next_seq(&self, py: Python<'_>) -> PyResult<u64> {
        guarded(py, || self.with(py, |w| Ok(w.next_seq())))
    }

    /// Counters of this writer.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        guarded(py, || {
            let s = self.with(py, |w| Ok(w.stats()))?;
            stats_dict(py, &s)
        })
    }
}

/// The native stream reader.
#[pyclass(module = "qadataswap._native", name = "StreamReader", frozen)]
pub struct PyStreamReader {
    inner: Arc<Closable<StreamReader>>,
    /// A chunk taken from `inner` and not handed out yet: waited for by `wait_chunk` (asyncio), peeked at by
    /// `__arrow_c_stream__` for the schema, or left unread when an exported stream was dropped. Lock order:
    /// `pending` before `inner`.
    pending: Arc<Mutex<Option<Pending>>>,
    name: String,
    pid: u32,
    timeout: Option<Duration>,
    slice_timeouts: AtomicU64,
    /// Columns copied on the way to Polars (decimal32/64 widened), over every chunk this reader returned.
    polars_copies: Arc<AtomicU64>,
}

#[pymethods]
impl PyStreamReader {
    /// Attach to the stream `name`, from the oldest retained chunk (or, with `start="next"`, the next one).
    #[new]
    #[pyo3(signature = (name, *, timeout=None, start="oldest", validation="trusted", spin=None,
                        open_timeout=Some(5.0)))]
    fn new(
        py: Python<'_>,
        name: String,
        timeout: Option<f64>,
        start: &str,
        validation: &str,
        spin: Option<u32>,
        open_timeout: Option<f64>,
    ) -> PyResult<Self> {
        guarded(py, || {
            let timeout = seconds(py, "timeout", timeout)?;
            let open_timeout = seconds(py, "open_timeout", open_timeout)?;
            let start = match start {
                "oldest" => StartAt::Oldest,
                "next" => StartAt::Next,
                other => {
                    return Err(raise(
                        py,
                        "InvalidConfigError",
                        format!("start must be 'oldest' or 'next', not {other:?}"),
                        &[],
                    ))
                }
            };
            let validation = match validation {
                "trusted" => qadataswap_stream::Validation::Trusted,
                "full" => qadataswap_stream::Validation::Full,
                other => {
                    return Err(raise(
                        py,
                        "InvalidConfigError",
                        format!("validation must be 'trusted' or 'full', not {other:?}"),
                        &[],
                    ))
                }
            };
            let mut b = SharedDataStream::reader(&name)
                .start_at(start)
                .validation(validation)
                .retry_count(0)
                .timeout(Some(SLICE));
            if let Some(n) = spin {
                b = b.spin(n);
            }
            let r = crate::snapshot::open_waiting(
                py,
                open_timeout,
                |slice| b.clone().open_timeout(Some(slice)).open(),
                |e| matches!(e, qadataswap_stream::Error::Arrow(a) if crate::snapshot::not_created_yet(a)),
                |e, waited| match e {
                    qadataswap_stream::Error::Arrow(a) => {
                        crate::snapshot::waited_in_vain(py, a, waited)
                    }
                    other => stream_to_py(py, other),
                },
            )?;
            Ok(PyStreamReader {
                inner: Arc::new(Closable::new("stream reader", r)),
                pending: Arc::new(Mutex::new(None)),
                name,
                pid: std::process::id(),
                timeout,
                slice_timeouts: AtomicU64::new(0),
                polars_copies: Arc::new(AtomicU64::new(0)),
            })
        })
    }

    /// The next chunk (waiting up to `timeout` s; default: the reader's), or None at the clean end of the stream.
    #[pyo3(signature = (timeout=None, *, cancel=None, has_timeout=false))]
    fn next_chunk(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
        cancel: Option<PyRef<'_, PyCancel>>,
        has_timeout: bool,
    ) -> PyResult<Option<PyFrame>> {
        guarded(py, || {
            check_pid(py, "stream reader", &self.name, self.pid)?;
            let t = if has_timeout || timeout.is_some() {
                seconds(py, "timeout", timeout)?
            } else {
                self.timeout
            };
            match self.wait(py, t, cancel.as_deref())? {
                Some(Some(p)) => Ok(Some(
                    p.into_frame().counting_polars_copies(&self.polars_copies),
                )),
                Some(None) => Ok(None),
                None => Err(raise(py, "ReleasedError", "cancelled".into(), &[])),
            }
        })
    }

    /// The next chunk if one is ready now, else None (see `finished`).
    fn try_next_chunk(&self, py: Python<'_>) -> PyResult<Option<PyFrame>> {
        guarded(py, || {
            check_pid(py, "stream reader", &self.name, self.pid)?;
            if let Some(p) = lock(&self.pending).take() {
                return Ok(Some(
                    p.into_frame().counting_polars_copies(&self.polars_copies),
                ));
            }
            let c = self
                .inner
                .with_mut(StreamReader::try_next_chunk)
                .map_err(|c| released(py, c.what, &self.name))?
                .map_err(|e| stream_to_py(py, e))?;
            Ok(c.map(|c| {
                PyFrame::new(c.frame().clone(), "shared")
                    .counting_polars_copies(&self.polars_copies)
            }))
        })
    }

    /// Wait (up to `timeout` s; default: the reader's) until the next chunk, or the end of the stream, is ready,
    /// without handing it out: the chunk is kept for the next `next_chunk`/`try_next_chunk`. Returns "chunk",
    /// "end", or "cancelled" once `cancel` is set. What the asyncio waiter thread calls, so that a cancelled await
    /// loses no chunk.
    #[pyo3(signature = (timeout=None, *, cancel=None, has_timeout=false))]
    fn wait_chunk(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
        cancel: Option<PyRef<'_, PyCancel>>,
        has_timeout: bool,
    ) -> PyResult<&'static str> {
        guarded(py, || {
            check_pid(py, "stream reader", &self.name, self.pid)?;
            let t = if has_timeout || timeout.is_some() {
                seconds(py, "timeout", timeout)?
            } else {
                self.timeout
            };
            match self.wait(py, t, cancel.as_deref())? {
                Some(Some(p)) => {
                    let mut pending = lock(&self.pending);
                    if pending.is_none() {
                        *pending = Some(p);
                    }
                    Ok("chunk")
                }
                Some(None) => Ok("end"),
                None => Ok("cancelled"),
            }
        })
    }

    /// Arrow PyCapsule stream over the chunks: each chunk's batches in order, ending at the end of the stream
    /// (zero-copy: each batch holds its chunk's lease). Blocks until the first chunk (or the end) to know the
    /// schema, with the reader's timeout; later chunks are waited for as the consumer pulls them. A chunk with
    /// another schema than the first ends the export with an error. `requested_schema` is honoured as for a
    /// frame (same schema, or casts without loss) or refused with `SchemaMismatchError`. Batches not pulled when
    /// the consumer releases the stream stay with this reader: nothing is lost.
    ///
    /// With `copy=True` each batch is copied into private memory as it is pulled and holds no lease: for
    /// consumers that keep every batch until they finish (DuckDB with several threads), over a stream longer than
    /// the ring.
    #[pyo3(signature = (requested_schema=None, *, copy=false))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
        copy: bool,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        guarded(py, || {
            check_pid(py, "stream reader", &self.name, self.pid)?;
            let requested = conform::requested(py, requested_schema.as_ref())?;
            let first = match self.wait(py, self.timeout, None)? {
                Some(first) => first,
                None => return Err(raise(py, "ReleasedError", "cancelled".into(), &[])),
            };
            let (source, current) = match first {
                Some(p) => (Some(p.schema.clone()), Some(p)),
                None => (None, None),
            };
            let plan = match (&source, &requested) {
                (Some(found), Some(req)) => match conform::plan(found, req) {
                    Ok(casts) => Some(casts),
                    Err(r) => {
                        // The peeked chunk stays with the reader.
                        if let Some(p) = current {
                            lock(&self.pending).get_or_insert(p);
                        }
                        return Err(conform::refusal_to_py(
                            py,
                            &format!("stream '{}'", self.name),
                            &r,
                        ));
                    }
                },
                _ => None,
            };
            let schema = requested
                .clone()
                .or_else(|| source.clone())
                .unwrap_or_else(|| Arc::new(Schema::empty()));
            let done = current.is_none();
            let batches = ChunkBatches {
                inner: Arc::clone(&self.inner),
                pending: Arc::clone(&self.pending),
                name: self.name.clone(),
                timeout: self.timeout,
                source,
                schema,
                casts: plan,
                current,
                done,
                copy,
            };
            let stream = FFI_ArrowArrayStream::new(Box::new(batches));
            PyCapsule::new_with_value(py, stream, c"arrow_array_stream")
        })
    }

    /// Whether the stream was finished and every chunk read.
    #[getter]
    fn finished(&self) -> bool {
        self.inner.with(StreamReader::is_finished).unwrap_or(false)
    }

    /// Chunks returned so far.
    #[getter]
    fn delivered(&self) -> u64 {
        self.inner.with(StreamReader::delivered).unwrap_or(0)
    }

    /// The stream's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Counters of this reader (`timeouts` counts only waits that reached the caller's timeout).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        guarded(py, || {
            let mut s = self
                .inner
                .with(StreamReader::stats)
                .map_err(|c| released(py, c.what, &self.name))?;
            s.timeouts = s
                .timeouts
                .saturating_sub(self.slice_timeouts.load(Ordering::Relaxed));
            let d = stats_dict(py, &s)?;
            d.set_item(
                "polars_copied_columns",
                self.polars_copies.load(Ordering::Relaxed),
            )?;
            Ok(d)
        })
    }

    /// Detach (a chunk waited for but not handed out is dropped with it).
    fn close(&self) {
        let p = lock(&self.pending).take();
        drop(p);
        drop(self.inner.close());
    }

    /// Whether `close` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A chunk taken from the core reader, with the batches not handed out yet.
pub struct Pending {
    seq: u64,
    write_ns: u64,
    bytes: usize,
    schema: SchemaRef,
    batches: VecDeque<RecordBatch>,
}

impl Pending {
    fn of(c: Chunk) -> Pending {
        Pending {
            seq: c.seq(),
            write_ns: c.write_time_ns(),
            bytes: c.num_bytes(),
            schema: c.schema().clone(),
            batches: c.into_batches().into(),
        }
    }

    fn into_frame(self) -> PyFrame {
        PyFrame::from_parts(
            self.seq,
            self.write_ns,
            self.bytes,
            self.schema,
            self.batches.into(),
        )
    }
}

/// One slice of waiting for the next chunk.
enum Step {
    Chunk(Pending),
    End,
    Wait,
    Closed,
}

/// Wait up to `slice` for the next chunk, the pending one first. Needs no GIL.
fn step(
    inner: &Closable<StreamReader>,
    pending: &Mutex<Option<Pending>>,
    slice: Duration,
) -> Result<Step, StreamError> {
    if let Some(p) = lock(pending).take() {
        return Ok(Step::Chunk(p));
    }
    match inner.with_mut(|r| r.next_chunk(Some(slice)).map(|c| c.map(Pending::of))) {
        Err(Closed { .. }) => Ok(Step::Closed),
        Ok(Ok(Some(p))) => Ok(Step::Chunk(p)),
        Ok(Ok(None)) => Ok(Step::End),
        Ok(Err(StreamError::Timeout { .. })) => Ok(Step::Wait),
        Ok(Err(e)) => Err(e),
    }
}

impl PyStreamReader {
    /// Wait for the next chunk in slices of at most [`SLICE`] with the GIL released, checking signals (main
    /// thread) and `cancel` in between. `Ok(None)` when cancelled; `Ok(Some(None))` at the end of the stream.
    fn wait(
        &self,
        py: Python<'_>,
        timeout: Option<Duration>,
        cancel: Option<&PyCancel>,
    ) -> PyResult<Option<Option<Pending>>> {
        let start = Instant::now();
        let deadline = timeout.and_then(|t| start.checked_add(t));
        loop {
            let slice = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
                None => SLICE,
            };
            match py.detach(|| step(&self.inner, &self.pending, slice)) {
                Ok(Step::Chunk(p)) => return Ok(Some(Some(p))),
                Ok(Step::End) => return Ok(Some(None)),
                Ok(Step::Closed) => return Err(released(py, "stream reader", &self.name)),
                Ok(Step::Wait) => {
                    self.slice_timeouts.fetch_add(1, Ordering::Relaxed);
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(stream_to_py(
                            py,
                            StreamError::Timeout {
                                name: self.name.clone(),
                                what: "waiting for the next chunk",
                                waited: start.elapsed(),
                                attempts: 1,
                            },
                        ));
                    }
                    py.check_signals()?;
                    if cancel.is_some_and(|c| c.is_set()) {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(stream_to_py(py, e)),
            }
        }
    }
}

/// The `RecordBatchReader` behind a stream reader's `__arrow_c_stream__`: each chunk's batches in order until the
/// end of the stream. It runs on whatever thread the consumer pulls from (DuckDB's own threads too), so it never
/// takes the GIL: a consumer thread that holds it while another waits for it would deadlock. Waits end at the
/// reader's timeout, or when the reader is closed.
struct ChunkBatches {
    inner: Arc<Closable<StreamReader>>,
    pending: Arc<Mutex<Option<Pending>>>,
    name: String,
    timeout: Option<Duration>,
    /// The first chunk's schema (None: the stream ended before any chunk).
    source: Option<SchemaRef>,
    /// The schema exported (the requested one, if any).
    schema: SchemaRef,
    /// With a requested schema: the columns to cast.
    casts: Option<Vec<usize>>,
    current: Option<Pending>,
    done: bool,
    /// Hand out private copies (no lease) instead of the shared batches.
    copy: bool,
}

impl ChunkBatches {
    fn external(e: StreamError) -> ArrowError {
        ArrowError::ExternalError(Box::new(e))
    }

    fn next_chunk(&mut self) -> Result<Option<Pending>, ArrowError> {
        let start = Instant::now();
        let deadline = self.timeout.and_then(|t| start.checked_add(t));
        loop {
            let slice = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
                None => SLICE,
            };
            match step(&self.inner, &self.pending, slice).map_err(Self::external)? {
                Step::Chunk(p) => return Ok(Some(p)),
                Step::End => return Ok(None),
                Step::Closed => {
                    return Err(ArrowError::ExternalError(
                        format!(
                            "the stream reader of '{}' was closed while a consumer was still reading its \
                             __arrow_c_stream__; close the reader only after the consumer is done",
                            self.name
                        )
                        .into(),
                    ))
                }
                Step::Wait => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(Self::external(StreamError::Timeout {
                            name: self.name.clone(),
                            what: "waiting for the next chunk (exported stream)",
                            waited: start.elapsed(),
                            attempts: 1,
                        }));
                    }
                }
            }
        }
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        loop {
            if let Some(b) = self.current.as_mut().and_then(|c| c.batches.pop_front()) {
                return Ok(Some(b));
            }
            self.current = None;
            if self.done {
                return Ok(None);
            }
            match self.next_chunk()? {
                Some(p) => {
                    if self.source.as_ref().is_some_and(|s| s != &p.schema) {
                        let (seq, found) = (p.seq, p.schema.clone());
                        // Left for the reader: a consumer that knows about the change can read it.
                        *lock(&self.pending) = Some(p);
                        self.done = true;
                        return Err(ArrowError::SchemaError(format!(
                            "stream '{}': chunk {seq} has the schema {found}, which differs from the first \
                             chunk's {}; an Arrow stream has one schema: read chunks of another schema with \
                             next_chunk() (the chunk stays with the reader)",
                            self.name,
                            self.schema
                        )));
                    }
                    self.current = Some(p);
                }
                None => {
                    self.done = true;
                    return Ok(None);
                }
            }
        }
    }
}

impl Iterator for ChunkBatches {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let batch = match self.next_batch() {
            Ok(Some(b)) => b,
            Ok(None) => return None,
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        let batch = if self.copy {
            match crate::frame::deep_copy_batch(&batch) {
                Ok(b) => b,
                Err(e) => return Some(Err(e)),
            }
        } else {
            batch
        };
        let Some(casts) = &self.casts else {
            return Some(Ok(batch));
        };
        Some(conform::batch(&batch, &self.schema, casts).map_err(|r| {
            ArrowError::CastError(format!(
                "cannot export stream '{}' as the requested schema: {r}",
                self.name
            ))
        }))
    }
}

impl RecordBatchReader for ChunkBatches {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl Drop for ChunkBatches {
    fn drop(&mut self) {
        // Batches the consumer did not pull stay with the reader, for its next read.
        if let Some(c) = self.current.take().filter(|c| !c.batches.is_empty()) {
            let mut pending = lock(&self.pending);
            if pending.is_none() {
                *pending = Some(c);
            }
        }
    }
}
