//! `_Frame`: one frame as read, exported through the PyCapsule interface. Its batches' buffers point into the
//! segment and hold the slot lease; every capsule made from it shares them, so the lease returns only when this
//! object and everything imported from it are gone (or `release()` was called and the imports are gone).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use qadataswap_arrow::Frame;
use qadataswap_handle::Closable;

use crate::boundary::guarded;
use crate::capsule;
use crate::conform;
use crate::error::{guard_to_py, raise, to_py};

/// One frame read from a segment (native). Export it with ``__arrow_c_stream__`` (polars, pyarrow, duckdb...).
#[pyclass(module = "qadataswap._native", name = "Frame", frozen)]
pub struct PyFrame {
    seq: u64,
    rows: usize,
    bytes: usize,
    write_ns: u64,
    schema: SchemaRef,
    batches: Closable<Vec<RecordBatch>>,
    /// Where the data lives: "shared" (zero-copy, leased) or "private" (a copy).
    location: &'static str,
    /// The reader's count of columns copied on the way to Polars (decimals widened).
    polars_copies: Option<Arc<AtomicU64>>,
}

impl PyFrame {
    /// Wrap a frame read from shared memory.
    pub fn new(f: Frame, location: &'static str) -> PyFrame {
        PyFrame {
            seq: f.seq(),
            rows: f.num_rows(),
            bytes: f.num_bytes(),
            write_ns: f.write_time_ns(),
            schema: f.schema().clone(),
            batches: Closable::new("frame", f.into_batches()),
            location,
            polars_copies: None,
        }
    }

    /// A frame of `batches` (what is left of a chunk a consumer did not take: see `stream::Pending`).
    pub fn from_parts(
        seq: u64,
        write_ns: u64,
        bytes: usize,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> PyFrame {
        PyFrame {
            seq,
            rows: batches.iter().map(RecordBatch::num_rows).sum(),
            bytes,
            write_ns,
            schema,
            batches: Closable::new("frame", batches),
            location: "shared",
            polars_copies: None,
        }
    }

    /// Count the columns `for_polars` copies into `counter` (the reader's).
    pub fn counting_polars_copies(mut self, counter: &Arc<AtomicU64>) -> PyFrame {
        self.polars_copies = Some(Arc::clone(counter));
        self
    }

    fn batches(&self, py: Python<'_>) -> PyResult<Vec<RecordBatch>> {
        self.batches.with(Vec::clone).map_err(|_| {
            raise(
                py,
                "ReleasedError",
                format!("frame {} was released; read a new one", self.seq),
                &[],
            )
        })
    }
}

#[pymethods]
impl PyFrame {
    /// The frame's sequence number.
    #[getter]
    fn seq(&self) -> u64 {
        self.seq
    }
    /// Rows over all batches.
    #[getter]
    fn num_rows(&self) -> usize {
        self.rows
    }
    /// Encoded size in the slot, in bytes.
    #[getter]
    fn num_bytes(&self) -> usize {
        self.bytes
    }
    /// When the writer committed it, ns since the UNIX epoch.
    #[getter]
    fn write_time_ns(&self) -> u64 {
        self.write_ns
    }
    /// "shared" for a zero-copy leased frame, "private" for a copy.
    #[getter]
    fn location(&self) -> &'static str {
        self.location
    }
    /// Number of record batches (chunks), as written.
    #[getter]
    fn num_batches(&self, py: Python<'_>) -> PyResult<usize> {
        guarded(py, || Ok(self.batches(py)?.len()))
    }

    /// Arrow PyCapsule stream of the frame's batches (zero-copy; each capsule holds the lease).
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        guarded(py, || {
            let requested = conform::requested(py, requested_schema.as_ref())?;
            let batches = self.batches(py)?;
            let (schema, batches) = conform::batches(&self.schema, batches, requested.as_ref())
                .map_err(|r| conform::refusal_to_py(py, &format!("frame {}", self.seq), &r))?;
            capsule::export_stream(py, schema, batches)
        })
    }

    /// Arrow PyCapsule schema.
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        guarded(py, || capsule::export_schema(py, &self.schema))
    }

    /// The `i`-th batch as an object with ``__arrow_c_array__`` (a struct array) and ``__arrow_c_schema__``.
    fn batch(&self, py: Python<'_>, i: usize) -> PyResult<PyBatch> {
        guarded(py, || {
            let batches = self.batches(py)?;
            let n = batches.len();
            batches
                .into_iter()
                .nth(i)
                .map(|b| PyBatch { batch: b })
                .ok_or_else(|| {
                    pyo3::exceptions::PyIndexError::new_err(format!("batch {i} out of 0..{n}"))
                })
        })
    }

    /// A deep copy in private memory that holds no lease.
    fn to_owned(&self, py: Python<'_>) -> PyResult<PyFrame> {
        guarded(py, || {
            let batches = self.batches(py)?;
            let frame = py.detach(|| -> Result<Vec<RecordBatch>, qadataswap_arrow::Error> {
                batches
                    .iter()
                    .map(|b| {
                        let cols = b
                            .columns()
                            .iter()
                            .map(|c| deep_copy(&c.to_data()).map(arrow_array::make_array))
                            .collect::<Result<Vec<_>, _>>()?;
                        Ok(RecordBatch::try_new_with_options(
                            b.schema(),
                            cols,
                            &arrow_array::RecordBatchOptions::new()
                                .with_row_count(Some(b.num_rows())),
                        )?)
                    })
                    .collect()
            });
            let batches = frame.map_err(|e| to_py(py, e))?;
            Ok(PyFrame {
                seq: self.seq,
                rows: self.rows,
                bytes: self.bytes,
                write_ns: self.write_ns,
                schema: self.schema.clone(),
                batches: Closable::new("frame", batches),
                location: "private",
                polars_copies: self.polars_copies.clone(),
            })
        })
    }

    /// This frame as Polars must be given it (`qadataswap_polars::guard`): the same frame when no column needs a
    /// conversion (no copy), decimal32/64 columns widened to decimal128 (a copy, counted in the reader's
    /// `polars_copied_columns`), and `UnsupportedTypeError` naming the column for a type Polars cannot take.
    fn for_polars(&self, py: Python<'_>) -> PyResult<PyFrame> {
        guarded(py, || {
            let batches = self.batches(py)?;
            let schema = self.schema.clone();
            let ready = py
                .detach(move || qadataswap_polars::guard::prepare(&schema, batches))
                .map_err(|e| guard_to_py(py, e))?;
            if let Some(counter) = &self.polars_copies {
                counter.fetch_add(ready.widened.len() as u64, Ordering::Relaxed);
            }
            Ok(PyFrame {
                seq: self.seq,
                rows: self.rows,
                bytes: self.bytes,
                write_ns: self.write_ns,
                schema: ready.schema,
                batches: Closable::new("frame", ready.batches),
                location: self.location,
                polars_copies: self.polars_copies.clone(),
            })
        })
    }

    /// Drop this object's hold on the batches (capsules already exported keep theirs).
    fn release(&self) {
        drop(self.batches.close());
    }

    fn __repr__(&self) -> String {
        format!(
            "Frame(seq={}, rows={}, columns={}, bytes={}, {})",
            self.seq,
            self.rows,
            self.schema.fields().len(),
            self.bytes,
            self.location
        )
    }
}

/// A copy of `b` in private memory (holds no lease).
pub fn deep_copy_batch(b: &RecordBatch) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let cols = b
        .columns()
        .iter()
        .map(|c| deep_copy(&c.to_data()).map(arrow_array::make_array))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new_with_options(
        b.schema(),
        cols,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
    )
}

fn deep_copy(d: &arrow_data::ArrayData) -> Result<arrow_data::ArrayData, arrow_schema::ArrowError> {
    use arrow_buffer::Buffer;
    let buffers = d
        .buffers()
        .iter()
        .map(|b| Buffer::from_slice_ref(b.as_slice()))
        .collect::<Vec<_>>();
    let children = d
        .child_data()
        .iter()
        .map(deep_copy)
        .collect::<Result<Vec<_>, _>>()?;
    let nulls = d.nulls().map(|n| {
        let bits = Buffer::from_slice_ref(n.buffer().as_slice());
        arrow_buffer::NullBuffer::new(arrow_buffer::BooleanBuffer::new(bits, n.offset(), n.len()))
    });
    arrow_data::ArrayDataBuilder::new(d.data_type().clone())
        .len(d.len())
        .offset(d.offset())
        .buffers(buffers)
        .child_data(children)
        .nulls(nulls)
        .build()
}

/// One record batch (native), exported with ``__arrow_c_array__`` as a struct array.
#[pyclass(module = "qadataswap._native", name = "Batch", frozen)]
pub struct PyBatch {
    batch: RecordBatch,
}

#[pymethods]
impl PyBatch {
    /// Rows in this batch.
    #[getter]
    fn num_rows(&self) -> usize {
        self.batch.num_rows()
    }

    /// Arrow PyCapsule array: (schema capsule, array capsule) of a struct array.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_array__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyCapsule>, Bound<'py, PyCapsule>)> {
        guarded(py, || {
            let _ = requested_schema;
            capsule::export_batch(py, &self.batch)
        })
    }

    /// Arrow PyCapsule schema.
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        guarded(py, || capsule::export_schema(py, self.batch.schema_ref()))
    }
}

/// An Arrow schema (native), exported with ``__arrow_c_schema__``.
#[pyclass(module = "qadataswap._native", name = "Schema", frozen)]
pub struct PySchema {
    /// The schema.
    pub schema: SchemaRef,
}

#[pymethods]
impl PySchema {
    /// Arrow PyCapsule schema.
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        guarded(py, || capsule::export_schema(py, &self.schema))
    }
    /// Column names.
    fn names(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }
    fn __repr__(&self) -> String {
        format!("Schema({})", self.schema)
    }
}
