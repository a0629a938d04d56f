//! The Arrow PyCapsule interface: importing what Python objects export (`__arrow_c_stream__`,
//! `__arrow_c_array__`) and exporting frames the same way, through arrow-rs's C Data Interface.
//!
//! Imports move the C structs out of the producer's capsule (leaving `release` null, as the protocol requires), so
//! the producer's buffers stay alive through the imported arrays. Exports put an owned C struct in a capsule whose
//! destructor releases it unless a consumer moved it out; the struct's private data holds the frame's batches, and
//! so the slot lease, until the consumer releases what it imported.

use std::ffi::CStr;
use std::sync::Arc;

use arrow_array::ffi::{from_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::{ArrayStreamReader, FFI_ArrowArrayStream};
use arrow_array::{
    Array, ArrayReader, ArrayRef, RecordBatch, RecordBatchIterator, RecordBatchOptions, StructArray,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyTuple};

use crate::error::{arrow_to_py, raise};

const STREAM: &CStr = c"arrow_array_stream";
const ARRAY: &CStr = c"arrow_array";
const SCHEMA: &CStr = c"arrow_schema";

/// Everything imported from one Python object: a schema and its batches, as given (not rechunked, not cast).
pub struct Imported {
    /// The schema of every batch.
    pub schema: SchemaRef,
    /// The batches.
    pub batches: Vec<RecordBatch>,
}

/// The column name of a single array written as a one-column table when its Arrow field has no name (a pyarrow
/// `Array` or `ChunkedArray`, an unnamed Series).
pub const SINGLE_COLUMN_NAME: &str = "values";

/// Import `obj` through `__arrow_c_stream__` (preferred) or `__arrow_c_array__`.
///
/// One rule for what becomes a table: a struct array without null rows is a table (its fields are the columns: a
/// pyarrow `Table`, `RecordBatch`, `RecordBatchReader`, a polars `DataFrame`); any other array is one column,
/// named after its Arrow field, or [`SINGLE_COLUMN_NAME`] if that has no name. A struct array *with* null rows is
/// refused, since a table row cannot be null and storing it as one would change the data (wrap it first:
/// `pa.table({"values": array})`).
///
/// # Errors
/// `InvalidFrameError` if `obj` exports neither or is a struct with null rows; `ArrowError` if the import fails.
pub fn import(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Imported> {
    if obj.hasattr("__arrow_c_stream__")? {
        let cap = obj.call_method0("__arrow_c_stream__")?;
        let cap = cap.cast_into::<PyCapsule>()?;
        let ptr = cap.pointer_checked(Some(STREAM))?;
        // SAFETY: the capsule is named "arrow_array_stream", so by the PyCapsule protocol it points to a valid
        // ArrowArrayStream; `from_raw` moves it out and leaves a released (null `release`) struct behind, which
        // the capsule's destructor then ignores.
        let stream = unsafe { FFI_ArrowArrayStream::from_raw(ptr.as_ptr().cast()) };
        let reader = ArrayStreamReader::try_new(stream).map_err(|e| arrow_to_py(py, e))?;
        let field = reader.field().clone();
        let arrays = reader
            .collect::<Result<Vec<_>, ArrowError>>()
            .map_err(|e| arrow_to_py(py, e))?;
        return tabulate(py, &field, arrays);
    }
    if obj.hasattr("__arrow_c_array__")? {
        let pair = obj.call_method0("__arrow_c_array__")?;
        let pair = pair.cast_into::<PyTuple>()?;
        let schema_cap = pair.get_item(0)?.cast_into::<PyCapsule>()?;
        let array_cap = pair.get_item(1)?.cast_into::<PyCapsule>()?;
        let sptr = schema_cap.pointer_checked(Some(SCHEMA))?;
        let aptr = array_cap.pointer_checked(Some(ARRAY))?;
        // SAFETY: a capsule named "arrow_array" points to a valid ArrowArray; we move it out and leave an empty
        // (released) one, so the capsule's destructor does not release it a second time.
        let array = unsafe {
            std::ptr::replace(
                aptr.as_ptr().cast::<FFI_ArrowArray>(),
                FFI_ArrowArray::empty(),
            )
        };
        // SAFETY: a capsule named "arrow_schema" points to a valid ArrowSchema, which stays owned by the capsule
        // (alive until `schema_cap` drops, after this borrow ends).
        let schema = unsafe { &*sptr.as_ptr().cast::<FFI_ArrowSchema>() };
        // SAFETY: `array` and `schema` come from the same `__arrow_c_array__` call, so they describe each other.
        let data = unsafe { from_ffi(array, schema) }.map_err(|e| arrow_to_py(py, e))?;
        let field = arrow_schema::Field::try_from(schema).map_err(|e| arrow_to_py(py, e))?;
        return tabulate(py, &field, vec![arrow_array::make_array(data)]);
    }
    Err(raise(
        py,
        "InvalidFrameError",
        format!(
            "cannot write a {}: pass a polars DataFrame, LazyFrame or Series, a pyarrow Table, RecordBatch, Array or \
             ChunkedArray, or any object with __arrow_c_stream__ / __arrow_c_array__",
            obj.get_type().name()?
        ),
        &[],
    ))
}

/// Arrays of one Arrow field as a table, by the rule of [`import`].
fn tabulate(py: Python<'_>, field: &Field, arrays: Vec<ArrayRef>) -> PyResult<Imported> {
    if let DataType::Struct(fields) = field.data_type() {
        if let Some(nulls) = arrays
            .iter()
            .map(|a| a.logical_null_count())
            .find(|&n| n > 0)
        {
            return Err(raise(
                py,
                "InvalidFrameError",
                format!(
                    "cannot write a struct array with {nulls} null row(s) as a table: a table row cannot be null, \
                     and storing it would change the data; write it as one column instead, e.g. \
                     pa.table({{\"{SINGLE_COLUMN_NAME}\": array}}) (a pyarrow Array or ChunkedArray given to write() \
                     becomes that column by itself)"
                ),
                &[],
            ));
        }
        let schema = Arc::new(Schema::new_with_metadata(
            fields.clone(),
            field.metadata().clone(),
        ));
        let batches = arrays
            .into_iter()
            .map(|a| {
                let (_, columns, _) = StructArray::from(a.to_data()).into_parts();
                let options = RecordBatchOptions::new().with_row_count(Some(a.len()));
                RecordBatch::try_new_with_options(schema.clone(), columns, &options)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| arrow_to_py(py, e))?;
        return Ok(Imported { schema, batches });
    }
    let name = if field.name().is_empty() {
        SINGLE_COLUMN_NAME
    } else {
        field.name().as_str()
    };
    let nullable = field.is_nullable() || arrays.iter().any(|a| a.null_count() > 0);
    let column = Field::new(name, field.data_type().clone(), nullable)
        .with_metadata(field.metadata().clone());
    let schema = Arc::new(Schema::new(vec![column]));
    let batches = arrays
        .into_iter()
        .map(|a| RecordBatch::try_new(schema.clone(), vec![a]))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| arrow_to_py(py, e))?;
    Ok(Imported { schema, batches })
}

/// A capsule holding an `ArrowArrayStream` over clones of `batches` (cheap: buffers are shared, and so is the
/// lease they hold).
pub fn export_stream<'py>(
    py: Python<'py>,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> PyResult<Bound<'py, PyCapsule>> {
    let iter = RecordBatchIterator::new(batches.into_iter().map(Ok), schema);
    let stream = FFI_ArrowArrayStream::new(Box::new(iter));
    PyCapsule::new_with_value(py, stream, STREAM)
}

/// A capsule holding an `ArrowSchema`.
pub fn export_schema<'py>(py: Python<'py>, schema: &Schema) -> PyResult<Bound<'py, PyCapsule>> {
    let ffi = FFI_ArrowSchema::try_from(schema).map_err(|e| arrow_to_py(py, e))?;
    PyCapsule::new_with_value(py, ffi, SCHEMA)
}

/// The `(schema, array)` capsule pair of one batch, as a struct array.
pub fn export_batch<'py>(
    py: Python<'py>,
    batch: &RecordBatch,
) -> PyResult<(Bound<'py, PyCapsule>, Bound<'py, PyCapsule>)> {
    let schema = export_schema(py, batch.schema_ref())?;
    let data = StructArray::from(batch.clone()).into_data();
    let array = FFI_ArrowArray::new(&data);
    Ok((schema, PyCapsule::new_with_value(py, array, ARRAY)?))
}
