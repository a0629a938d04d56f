//! Native stream writer and reader over `qadataswap-stream`: lossless, ordered chunks with back-pressure.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use qadataswap_stream::{
    Error as StreamError, SharedDataStream, StartAt, StreamReader, StreamWriter,
};

use crate::boundary::guarded;
use crate::capsule;
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
    inner: Mutex<Option<StreamWriter>>,
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
        py.detach(|| {
            let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            g.as_mut().map(f)
        })
        .ok_or_else(|| released(py, "stream writer", &self.name))?
        .map_err(|e| stream_to_py(py, e))
    }
}

#[pymethods]
impl PyStreamWriter {
    /// Create the stream `name` (or take over one whose writer died).
    #[new]
    #[pyo3(signature = (name, size, num_buffers=None, *, timeout=None, retry_count=None, persistent=None,
                        reader_capacity=None, spin=None, min_readers=None, linger=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        name: String,
        size: usize,
        num_buffers: Option<usize>,
        timeout: Option<f64>,
        retry_count: Option<u32>,
        persistent: Option<bool>,
        reader_capacity: Option<usize>,
        spin: Option<u32>,
        min_readers: Option<usize>,
        linger: Option<f64>,
    ) -> PyResult<Self> {
        guarded(py, || {
            let mut b = SharedDataStream::builder(&name).size(size);
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
            let w = py
                .detach(|| b.create_writer())
                .map_err(|e| stream_to_py(py, e))?;
            Ok(PyStreamWriter {
                inner: Mutex::new(Some(w)),
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
        let w = self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
        py.detach(move || drop(w));
    }

    /// Whether `close` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
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
    inner: Mutex<Option<StreamReader>>,
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
            let mut b = SharedDataStream::builder(&name)
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
                |slice| b.clone().open_timeout(Some(slice)).create_reader(),
                |e| matches!(e, qadataswap_stream::Error::Arrow(a) if crate::snapshot::not_created_yet(a)),
                |e, waited| match e {
                    qadataswap_stream::Error::Arrow(a) => {
                        crate::snapshot::waited_in_vain(py, a, waited)
                    }
                    other => stream_to_py(py, other),
                },
            )?;
            Ok(PyStreamReader {
                inner: Mutex::new(Some(r)),
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
            let start = Instant::now();
            let deadline = t.map(|t| start + t);
            loop {
                let slice = match deadline {
                    Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
                    None => SLICE,
                };
                let res = py
                    .detach(|| {
                        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
                        g.as_mut().map(|r| r.next_chunk(Some(slice)))
                    })
                    .ok_or_else(|| released(py, "stream reader", &self.name))?;
                match res {
                    Ok(Some(c)) => {
                        return Ok(Some(
                            PyFrame::new(c.frame().clone(), "shared")
                                .counting_polars_copies(&self.polars_copies),
                        ))
                    }
                    Ok(None) => return Ok(None),
                    Err(StreamError::Timeout { .. }) => {
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
                        if cancel.as_deref().is_some_and(|c| c.is_set()) {
                            return Err(raise(py, "ReleasedError", "cancelled".into(), &[]));
                        }
                    }
                    Err(e) => return Err(stream_to_py(py, e)),
                }
            }
        })
    }

    /// The next chunk if one is ready now, else None (see `finished`).
    fn try_next_chunk(&self, py: Python<'_>) -> PyResult<Option<PyFrame>> {
        guarded(py, || {
            check_pid(py, "stream reader", &self.name, self.pid)?;
            let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let r = g
                .as_mut()
                .ok_or_else(|| released(py, "stream reader", &self.name))?;
            let c = r.try_next_chunk().map_err(|e| stream_to_py(py, e))?;
            Ok(c.map(|c| {
                PyFrame::new(c.frame().clone(), "shared")
                    .counting_polars_copies(&self.polars_copies)
            }))
        })
    }

    /// Whether the stream was finished and every chunk read.
    #[getter]
    fn finished(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|r| r.is_finished())
    }

    /// Chunks returned so far.
    #[getter]
    fn delivered(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map_or(0, |r| r.delivered())
    }

    /// The stream's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Counters of this reader (`timeouts` counts only waits that reached the caller's timeout).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        guarded(py, || {
            let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let r = g
                .as_ref()
                .ok_or_else(|| released(py, "stream reader", &self.name))?;
            let mut s = r.stats();
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

    /// Detach.
    fn close(&self) {
        let r = self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(r);
    }

    /// Whether `close` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }
}
