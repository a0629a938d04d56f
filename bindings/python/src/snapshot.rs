//! Native snapshot writer and reader. The Python layer (`qadataswap/__init__.py`) wraps them into the seed's API.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use qadataswap_arrow::{
    Error, Frame, SnapshotReader, SnapshotWriter, Stats, Validation, WriteInfo,
};
use qadataswap_handle::Closable;

use crate::boundary::guarded;
use crate::capsule;
use crate::error::{raise, to_py};
use crate::frame::{PyFrame, PySchema};

/// Longest uninterrupted wait: between slices the GIL is taken back to check for Ctrl-C and cancellation.
const SLICE: Duration = Duration::from_millis(50);

/// The longest finite wait, in seconds (about 31.7 years). A larger finite number, like `inf` or `None`, means
/// "wait forever"; settings that need a finite duration (`lease_timeout`, `open_timeout`, `wait_for_readers`) are
/// capped at it. Documented on every Python function that takes seconds.
pub const FOREVER_SECS: f64 = 1e9;

fn bad_seconds(py: Python<'_>, what: &str, v: f64) -> PyErr {
    raise(
        py,
        "InvalidConfigError",
        format!(
            "{what} must be a number of seconds >= 0 (None, inf or anything above {FOREVER_SECS:e} means forever), \
             not {v}"
        ),
        &[],
    )
}

/// Seconds from Python into a duration, `None` for forever (`None`, `inf`, or more than [`FOREVER_SECS`]).
///
/// # Errors
/// `InvalidConfigError` for a negative number or NaN.
pub fn seconds(py: Python<'_>, what: &str, s: Option<f64>) -> PyResult<Option<Duration>> {
    match s {
        None => Ok(None),
        Some(v) if v.is_nan() || v < 0.0 => Err(bad_seconds(py, what, v)),
        Some(v) if v > FOREVER_SECS => Ok(None),
        Some(v) => Duration::try_from_secs_f64(v)
            .map(Some)
            .map_err(|_| bad_seconds(py, what, v)),
    }
}

/// Seconds from Python into a finite duration: as [`seconds`], with "forever" capped at [`FOREVER_SECS`].
///
/// # Errors
/// `InvalidConfigError` for a negative number or NaN.
pub fn finite_seconds(py: Python<'_>, what: &str, s: f64) -> PyResult<Duration> {
    Ok(seconds(py, what, Some(s))?.unwrap_or(Duration::from_secs(FOREVER_SECS as u64)))
}

/// A flag a waiting call checks between slices (set by `read_async` when its awaiter is cancelled).
#[pyclass(module = "qadataswap._native", name = "Cancel", frozen)]
#[derive(Default)]
pub struct PyCancel {
    flag: AtomicBool,
}

#[pymethods]
impl PyCancel {
    #[new]
    fn new() -> Self {
        Self::default()
    }
    /// Ask the waiting call to stop at its next slice.
    fn set(&self) {
        self.flag.store(true, Ordering::Relaxed);
    }
    /// Whether `set` was called.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
}

pub fn stats_dict<'py>(py: Python<'py>, s: &Stats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("frames_written", s.frames_written)?;
    d.set_item("bytes_written", s.bytes_written)?;
    d.set_item("frames_read", s.frames_read)?;
    d.set_item("bytes_read", s.bytes_read)?;
    d.set_item("lease_waits", s.lease_waits)?;
    d.set_item("timeouts", s.timeouts)?;
    d.set_item("copies", s.copies)?;
    d.set_item("zero_copy_buffers", s.zero_copy_buffers)?;
    d.set_item("retries", s.retries)?;
    Ok(d)
}

pub fn released(py: Python<'_>, what: &str, name: &str) -> PyErr {
    raise(
        py,
        "ReleasedError",
        format!("this {what} of '{name}' is closed; create a new one"),
        &[],
    )
}

pub fn check_pid(py: Python<'_>, what: &'static str, name: &str, owner_pid: u32) -> PyResult<()> {
    let pid = std::process::id();
    if pid != owner_pid {
        return Err(to_py(
            py,
            Error::Forked {
                what,
                name: name.to_owned(),
                owner_pid,
                pid,
            },
        ));
    }
    Ok(())
}

/// The native snapshot writer.
#[pyclass(module = "qadataswap._native", name = "SnapshotWriter", frozen)]
pub struct PyWriter {
    inner: Closable<SnapshotWriter>,
    name: String,
    pid: u32,
    range: (usize, usize),
    slot_capacity: usize,
    slots: usize,
}

impl PyWriter {
    fn with<R>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut SnapshotWriter) -> Result<R, Error> + Send,
    ) -> PyResult<R>
    where
        R: Send,
    {
        check_pid(py, "writer", &self.name, self.pid)?;
        py.detach(|| self.inner.with_mut(f))
            .map_err(|c| released(py, c.what, &self.name))?
            .map_err(|e| to_py(py, e))
    }
}

#[pymethods]
impl PyWriter {
    /// Create (or take over from a dead writer) the snapshot segment `name`.
    #[new]
    #[pyo3(signature = (name, size=None, num_buffers=None, *, persistent=false, reader_capacity=None,
                        schema_capacity=None, lease_timeout=None, spin=None, permissions=None, config=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        name: String,
        size: Option<usize>,
        num_buffers: Option<usize>,
        persistent: bool,
        reader_capacity: Option<usize>,
        schema_capacity: Option<usize>,
        lease_timeout: Option<f64>,
        spin: Option<u32>,
        permissions: Option<u32>,
        config: Option<std::path::PathBuf>,
    ) -> PyResult<Self> {
        guarded(py, || {
            // What is not given comes from the configuration (qadataswap.yaml), as for streams.
            let mut b = SnapshotWriter::builder(&name).persistent(persistent);
            if let Some(path) = config {
                b = b.config_file(path);
            }
            if let Some(n) = size {
                b = b.size(n);
            }
            if let Some(n) = num_buffers {
                b = b.slots(n);
            }
            if let Some(n) = reader_capacity {
                b = b.reader_capacity(n);
            }
            if let Some(n) = schema_capacity {
                b = b.schema_capacity(n);
            }
            if let Some(t) = lease_timeout {
                b = b.lease_timeout(finite_seconds(py, "lease_timeout", t)?);
            }
            if let Some(n) = spin {
                b = b.spin(n);
            }
            if let Some(m) = permissions {
                b = b.permissions(m);
            }
            let w = py.detach(|| b.create()).map_err(|e| to_py(py, e))?;
            let map = w.shared().mapping();
            let start = map.as_ptr() as usize;
            let geo = w.geometry();
            Ok(PyWriter {
                range: (start, start + map.len()),
                slot_capacity: geo.slot_capacity,
                slots: geo.slot_count,
                inner: Closable::new("writer", w),
                name,
                pid: std::process::id(),
            })
        })
    }

    /// Publish `data` (anything with ``__arrow_c_stream__`` or ``__arrow_c_array__``) as the newest frame.
    /// Returns ``(seq, slot, bytes, rows)``.
    fn write(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
    ) -> PyResult<(u64, usize, usize, usize)> {
        guarded(py, || {
            check_pid(py, "writer", &self.name, self.pid)?;
            let imported = capsule::import(py, data)?;
            let schema = imported.schema;
            let mut batches = imported.batches;
            if batches.is_empty() {
                batches.push(RecordBatch::new_empty(schema.clone()));
            }
            let info: WriteInfo = self.with(py, move |w| w.write_frame(&schema, &batches))?;
            Ok((info.seq, info.slot, info.bytes, info.rows))
        })
    }

    /// Close: readers finish what they hold, then get WriterClosedError; unlinks unless persistent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        guarded(py, || {
            match self.inner.close() {
                Some(w) if std::process::id() == self.pid => {
                    py.detach(|| w.close()).map_err(|e| to_py(py, e))
                }
                // Inherited through fork: dropping it leaves the parent's segment alone.
                Some(w) => {
                    drop(w);
                    Ok(())
                }
                None => Ok(()),
            }
        })
    }

    /// Whether `close` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// The segment's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Counters of this writer.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        guarded(py, || {
            let s = self.with(py, |w| Ok(w.stats()))?;
            stats_dict(py, &s)
        })
    }

    /// The writer generation (bumped by every takeover).
    #[getter]
    fn generation(&self, py: Python<'_>) -> PyResult<u64> {
        guarded(py, || self.with(py, |w| Ok(w.generation())))
    }

    /// The sequence number the next write gets.
    #[getter]
    fn next_seq(&self, py: Python<'_>) -> PyResult<u64> {
        guarded(py, || self.with(py, |w| Ok(w.next_seq())))
    }

    /// Bytes per slot: the largest frame that fits.
    #[getter]
    fn slot_capacity(&self) -> usize {
        self.slot_capacity
    }

    /// Slots in the ring.
    #[getter]
    fn num_buffers(&self) -> usize {
        self.slots
    }

    /// ``(start, end)`` addresses of the segment's mapping in this process.
    fn segment_range(&self) -> (usize, usize) {
        self.range
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Newest,
    Next,
}

/// The native snapshot reader.
#[pyclass(module = "qadataswap._native", name = "SnapshotReader", frozen)]
pub struct PyReader {
    inner: Closable<Arc<SnapshotReader>>,
    name: String,
    pid: u32,
    timeout: Option<Duration>,
    range: (usize, usize),
    /// Intermediate slice timeouts the core counted, which are not timeouts to the caller.
    slice_timeouts: AtomicU64,
    timeouts: AtomicU64,
    /// Columns copied on the way to Polars (decimal32/64 widened), over every frame this reader returned.
    polars_copies: Arc<AtomicU64>,
}

impl PyReader {
    fn get(&self, py: Python<'_>) -> PyResult<Arc<SnapshotReader>> {
        check_pid(py, "reader", &self.name, self.pid)?;
        self.inner
            .with(Arc::clone)
            .map_err(|c| released(py, c.what, &self.name))
    }

    /// Wait in slices of at most [`SLICE`], checking signals (main thread) and `cancel` in between.
    /// `Ok(None)` only when cancelled.
    fn wait(
        &self,
        py: Python<'_>,
        kind: Kind,
        timeout: Option<Duration>,
        cancel: Option<&PyCancel>,
    ) -> PyResult<Option<Frame>> {
        let r = self.get(py)?;
        let start = Instant::now();
        let deadline = timeout.map(|t| start + t);
        loop {
            let slice = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
                None => SLICE,
            };
            let res = py.detach(|| match kind {
                Kind::Newest => r.read_timeout(slice),
                Kind::Next => r.read_next(Some(slice)),
            });
            match res {
                Ok(f) => return Ok(Some(f)),
                Err(Error::Timeout { .. }) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        self.timeouts.fetch_add(1, Ordering::Relaxed);
                        self.slice_timeouts.fetch_add(1, Ordering::Relaxed);
                        return Err(to_py(
                            py,
                            Error::Timeout {
                                name: self.name.clone(),
                                what: "waiting for a frame",
                                waited: start.elapsed(),
                            },
                        ));
                    }
                    self.slice_timeouts.fetch_add(1, Ordering::Relaxed);
                    py.check_signals()?;
                    if cancel.is_some_and(|c| c.is_set()) {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(to_py(py, e)),
            }
        }
    }

    fn timeout_arg(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
        given: bool,
    ) -> PyResult<Option<Duration>> {
        if given {
            seconds(py, "timeout", timeout)
        } else {
            Ok(self.timeout)
        }
    }
}

/// Open with `attempt(slice)`, waiting up to `total` (`None`: without limit) for the segment to be created, in slices
/// of at most 100 ms with the GIL released, so that Ctrl-C (and a cancelled asyncio task's thread) stops the wait
/// between slices. `not_yet` tells which errors mean "not there yet"; a wait that runs out is reported by `fail`
/// with the error and the whole time waited.
pub(crate) fn open_waiting<T: Send, E: Send>(
    py: Python<'_>,
    total: Option<Duration>,
    mut attempt: impl FnMut(Duration) -> Result<T, E> + Send,
    not_yet: impl Fn(&E) -> bool,
    fail: impl FnOnce(E, Duration) -> PyErr,
) -> PyResult<T> {
    let start = Instant::now();
    let slice_max = Duration::from_millis(100);
    loop {
        let left = total.map(|t| t.saturating_sub(start.elapsed()));
        let slice = left.map_or(slice_max, |l| l.min(slice_max));
        match py.detach(|| attempt(slice)) {
            Ok(v) => return Ok(v),
            Err(e) if not_yet(&e) && left.is_none_or(|l| l > slice) => py.check_signals()?,
            Err(e) => return Err(fail(e, start.elapsed())),
        }
    }
}

/// For [`open_waiting`]: the Arrow layer's "not there yet" errors.
pub(crate) fn not_created_yet(e: &qadataswap_arrow::Error) -> bool {
    matches!(
        e,
        qadataswap_arrow::Error::NotCreated { .. } | qadataswap_arrow::Error::NotInitialised { .. }
    )
}

/// For [`open_waiting`]: the error of a wait that ran out, with the whole time waited.
pub(crate) fn waited_in_vain(
    py: Python<'_>,
    e: qadataswap_arrow::Error,
    waited: Duration,
) -> PyErr {
    match e {
        qadataswap_arrow::Error::NotCreated { name, .. } => {
            to_py(py, qadataswap_arrow::Error::NotCreated { name, waited })
        }
        other => to_py(py, other),
    }
}

#[pymethods]
impl PyReader {
    /// Attach to the snapshot segment `name`.
    #[pyo3(signature = (name, *, timeout=None, open_timeout=Some(5.0), spin=None, validation="trusted",
                        allow_shared_mode=false))]
    #[new]
    fn new(
        py: Python<'_>,
        name: String,
        timeout: Option<f64>,
        open_timeout: Option<f64>,
        spin: Option<u32>,
        validation: &str,
        allow_shared_mode: bool,
    ) -> PyResult<Self> {
        guarded(py, || {
            let timeout = seconds(py, "timeout", timeout)?;
            let open_timeout = seconds(py, "open_timeout", open_timeout)?;
            let validation = match validation {
                "trusted" => Validation::Trusted,
                "full" => Validation::Full,
                other => {
                    return Err(raise(
                        py,
                        "InvalidConfigError",
                        format!("validation must be 'trusted' or 'full', not {other:?}"),
                        &[],
                    ))
                }
            };
            let mut b = SnapshotReader::builder(&name)
                .timeout(timeout)
                .validation(validation)
                .allow_shared_mode(allow_shared_mode);
            if let Some(n) = spin {
                b = b.spin(n);
            }
            let r = open_waiting(
                py,
                open_timeout,
                |slice| b.clone().open_timeout(slice).open(),
                not_created_yet,
                |e, waited| waited_in_vain(py, e, waited),
            )?;
            let map = r.attachment().shared().mapping();
            let start = map.as_ptr() as usize;
            Ok(PyReader {
                range: (start, start + map.len()),
                inner: Closable::new("reader", Arc::new(r)),
                name,
                pid: std::process::id(),
                timeout,
                slice_timeouts: AtomicU64::new(0),
                timeouts: AtomicU64::new(0),
                polars_copies: Arc::new(AtomicU64::new(0)),
            })
        })
    }

    /// The newest frame, waiting (up to `timeout` s; default: the reader's) only until a first one exists.
    /// With `cancel`, returns None once it is set.
    #[pyo3(signature = (timeout=None, *, cancel=None, has_timeout=false))]
    fn read(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
        cancel: Option<PyRef<'_, PyCancel>>,
        has_timeout: bool,
    ) -> PyResult<Option<PyFrame>> {
        guarded(py, || {
            let t = self.timeout_arg(py, timeout, has_timeout || timeout.is_some())?;
            let f = self.wait(py, Kind::Newest, t, cancel.as_deref())?;
            Ok(f.map(|f| PyFrame::new(f, "shared").counting_polars_copies(&self.polars_copies)))
        })
    }

    /// The newest frame strictly newer than the last one this reader returned.
    #[pyo3(signature = (timeout=None, *, cancel=None, has_timeout=false))]
    fn read_next(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
        cancel: Option<PyRef<'_, PyCancel>>,
        has_timeout: bool,
    ) -> PyResult<Option<PyFrame>> {
        guarded(py, || {
            let t = self.timeout_arg(py, timeout, has_timeout || timeout.is_some())?;
            let f = self.wait(py, Kind::Next, t, cancel.as_deref())?;
            Ok(f.map(|f| PyFrame::new(f, "shared").counting_polars_copies(&self.polars_copies)))
        })
    }

    /// The newest frame without blocking, or None.
    fn try_read(&self, py: Python<'_>) -> PyResult<Option<PyFrame>> {
        guarded(py, || {
            let r = self.get(py)?;
            let f = py.detach(|| r.try_read()).map_err(|e| to_py(py, e))?;
            Ok(f.map(|f| PyFrame::new(f, "shared").counting_polars_copies(&self.polars_copies)))
        })
    }

    /// The newest frame copied into private memory and fully validated there (holds no lease).
    #[pyo3(signature = (timeout=None, *, has_timeout=false))]
    fn read_copied(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
        has_timeout: bool,
    ) -> PyResult<PyFrame> {
        guarded(py, || {
            let t = self.timeout_arg(py, timeout, has_timeout || timeout.is_some())?;
            let f = self
                .wait(py, Kind::Newest, t, None)?
                .ok_or_else(|| released(py, "reader", &self.name))?;
            let owned = py.detach(move || f.to_owned()).map_err(|e| to_py(py, e))?;
            Ok(PyFrame::new(owned, "private").counting_polars_copies(&self.polars_copies))
        })
    }

    /// The schema from the header (None before the first write).
    fn schema(&self, py: Python<'_>) -> PyResult<Option<PySchema>> {
        guarded(py, || {
            let r = self.get(py)?;
            let s = r.schema().map_err(|e| to_py(py, e))?;
            Ok(s.map(|schema| PySchema { schema }))
        })
    }

    /// Counters of this reader.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        guarded(py, || {
            let r = self.get(py)?;
            let mut s = r.stats();
            s.timeouts = s
                .timeouts
                .saturating_sub(self.slice_timeouts.load(Ordering::Relaxed))
                + self.timeouts.load(Ordering::Relaxed);
            let d = stats_dict(py, &s)?;
            d.set_item(
                "polars_copied_columns",
                self.polars_copies.load(Ordering::Relaxed),
            )?;
            Ok(d)
        })
    }

    /// Leases this reader holds right now, over all slots (debugging and tests).
    fn lease_count(&self, py: Python<'_>) -> PyResult<u32> {
        guarded(py, || {
            let r = self.get(py)?;
            let att = r.attachment();
            let slots = att.shared().geometry().slot_count;
            Ok((0..slots).map(|i| att.entry().lease_count(i)).sum())
        })
    }

    /// The sequence number of the last frame this reader returned (0: none yet).
    #[getter]
    fn last_seq(&self, py: Python<'_>) -> PyResult<u64> {
        guarded(py, || Ok(self.get(py)?.last_seq()))
    }

    /// The segment's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The default timeout of blocking reads, in seconds (None: forever).
    #[getter]
    fn default_timeout(&self) -> Option<f64> {
        self.timeout.map(|d| d.as_secs_f64())
    }

    /// ``(start, end)`` addresses of the segment's mapping in this process.
    fn segment_range(&self) -> (usize, usize) {
        self.range
    }

    /// Detach. Frames already read stay valid (they keep the mapping) until they are dropped.
    fn close(&self) {
        drop(self.inner.close());
    }

    /// Whether `close` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }
}

/// Remove the segment `name` if it is ours and nobody uses it (the rule of `qadataswap rm`); `force` also removes
/// one that dead processes are still registered in. Readers attached keep their mapping.
#[pyfunction]
#[pyo3(signature = (name, force = false))]
pub fn unlink(py: Python<'_>, name: &str, force: bool) -> PyResult<()> {
    crate::boundary::guarded(py, || {
        let name = name.to_owned();
        py.detach(move || qadataswap_arrow::status::remove(&name, force))
            .map(|_| ())
            .map_err(|e| to_py(py, e))
    })
}
