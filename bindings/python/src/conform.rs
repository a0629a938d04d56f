//! `requested_schema` of the Arrow PyCapsule protocol: a consumer may ask for a schema when it calls
//! `__arrow_c_stream__`. We honour it when it is the frame's schema (then nothing is copied), or when every
//! column that differs can be cast to the requested type without losing anything; otherwise we refuse with
//! `SchemaMismatchError` naming the column, rather than handing over other types than asked for.
//!
//! "Without loss" is checked on the data, not guessed from the types: a differing column is cast with
//! `safe: false` (an overflow is an error, not a null), cast back, and must compare equal to the original. So
//! `int32 -> int64`, `string -> large_string` or a dictionary to its values pass, while `int64 -> int32` passes
//! only if every value fits, and `float64 -> int64` only if every value is integral. A cast column is a copy in
//! private memory (the cast is what the consumer asked for); the other columns stay zero-copy.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_cast::{can_cast_types, cast_with_options, CastOptions};
use arrow_schema::{ffi::FFI_ArrowSchema, DataType, Field, Schema, SchemaRef};
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use crate::error::{arrow_to_py, raise};

/// Why a requested schema cannot be honoured.
#[derive(Debug)]
pub enum Refusal {
    /// The column counts differ.
    Columns { found: usize, requested: usize },
    /// Column `index` has another name.
    Name {
        index: usize,
        found: String,
        requested: String,
    },
    /// Column `name` cannot be cast to the requested type, or not without loss.
    Type {
        name: String,
        found: DataType,
        requested: DataType,
        why: String,
    },
    /// Column `name` has nulls but the requested field is not nullable.
    Nulls { name: String, nulls: usize },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Columns { found, requested } => write!(
                f,
                "the requested schema has {requested} column(s), the data {found}; request the data's schema \
                 (reader.schema()) or select columns after importing"
            ),
            Refusal::Name { index, found, requested } => write!(
                f,
                "column {index} is named {found:?}, the requested schema calls it {requested:?}; columns are not \
                 renamed or reordered on export: rename them after importing"
            ),
            Refusal::Type { name, found, requested, why } => write!(
                f,
                "column {name:?} is {found} and cannot be given as {requested} without loss ({why}); request \
                 {found}, or cast it yourself after importing if the loss is acceptable"
            ),
            Refusal::Nulls { name, nulls } => write!(
                f,
                "column {name:?} has {nulls} null(s) but the requested field is not nullable; request it nullable"
            ),
        }
    }
}

/// The schema a `requested_schema` capsule holds (`None` for `None`).
///
/// # Errors
/// `TypeError` if it is not an `arrow_schema` capsule, `ArrowError` if the schema does not import.
pub fn requested(py: Python<'_>, obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<SchemaRef>> {
    let Some(obj) = obj else { return Ok(None) };
    if obj.is_none() {
        return Ok(None);
    }
    let cap = obj.cast::<PyCapsule>().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(
            "requested_schema must be an 'arrow_schema' PyCapsule (e.g. pa.schema(...).__arrow_c_schema__()) or None",
        )
    })?;
    let ptr = cap.pointer_checked(Some(c"arrow_schema"))?;
    // SAFETY: a capsule named "arrow_schema" points to a valid ArrowSchema by the PyCapsule protocol; it stays owned
    // by the capsule, which `obj` keeps alive for the whole borrow.
    let ffi = unsafe { &*ptr.as_ptr().cast::<FFI_ArrowSchema>() };
    let schema = Schema::try_from(ffi).map_err(|e| arrow_to_py(py, e))?;
    Ok(Some(Arc::new(schema)))
}

/// The Python error for a refusal.
pub fn refusal_to_py(py: Python<'_>, what: &str, r: &Refusal) -> PyErr {
    raise(
        py,
        "SchemaMismatchError",
        format!("cannot export {what} as the requested schema: {r}"),
        &[],
    )
}

/// Check `requested` against `found` without looking at data: the columns that need a cast (by index), or a
/// refusal for what no data could make right.
///
/// # Errors
/// A [`Refusal`] for other column counts, names, or types Arrow cannot cast at all.
pub fn plan(found: &Schema, requested: &Schema) -> Result<Vec<usize>, Refusal> {
    if found.fields().len() != requested.fields().len() {
        return Err(Refusal::Columns {
            found: found.fields().len(),
            requested: requested.fields().len(),
        });
    }
    let mut casts = Vec::new();
    for (index, (f, r)) in found
        .fields()
        .iter()
        .zip(requested.fields().iter())
        .enumerate()
    {
        if f.name() != r.name() {
            return Err(Refusal::Name {
                index,
                found: f.name().clone(),
                requested: r.name().clone(),
            });
        }
        if f.data_type() == r.data_type() {
            continue;
        }
        if !can_cast_types(f.data_type(), r.data_type())
            || !can_cast_types(r.data_type(), f.data_type())
        {
            return Err(type_refusal(
                f,
                r,
                "Arrow has no cast between them".to_owned(),
            ));
        }
        casts.push(index);
    }
    Ok(casts)
}

fn type_refusal(f: &Field, r: &Field, why: String) -> Refusal {
    Refusal::Type {
        name: f.name().clone(),
        found: f.data_type().clone(),
        requested: r.data_type().clone(),
        why,
    }
}

/// `batch` as `requested` (already [`plan`]ned: `casts` are the columns to cast).
///
/// # Errors
/// A [`Refusal`] if a value does not survive the cast, or nulls meet a non-nullable field.
pub fn batch(
    batch: &RecordBatch,
    requested: &SchemaRef,
    casts: &[usize],
) -> Result<RecordBatch, Refusal> {
    let strict = CastOptions {
        safe: false,
        ..Default::default()
    };
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (index, (column, r)) in batch
        .columns()
        .iter()
        .zip(requested.fields().iter())
        .enumerate()
    {
        let f = batch.schema_ref().field(index).clone();
        if !r.is_nullable() && column.logical_null_count() > 0 {
            return Err(Refusal::Nulls {
                name: f.name().clone(),
                nulls: column.logical_null_count(),
            });
        }
        if !casts.contains(&index) {
            columns.push(column.clone());
            continue;
        }
        let cast = cast_with_options(column, r.data_type(), &strict)
            .map_err(|e| type_refusal(&f, r, e.to_string()))?;
        let back = cast_with_options(&cast, f.data_type(), &strict)
            .map_err(|e| type_refusal(&f, r, format!("the cast back fails: {e}")))?;
        if back.to_data() != column.to_data() {
            return Err(type_refusal(&f, r, "some values change".to_owned()));
        }
        columns.push(cast);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(requested.clone(), columns, &options).map_err(|e| {
        Refusal::Type {
            name: String::new(),
            found: DataType::Null,
            requested: DataType::Null,
            why: e.to_string(),
        }
    })
}

/// All of `batches` as `requested`, or a refusal. With no request, or the same schema, nothing is touched.
///
/// # Errors
/// As [`plan`] and [`batch`].
pub fn batches(
    found: &SchemaRef,
    batches: Vec<RecordBatch>,
    requested: Option<&SchemaRef>,
) -> Result<(SchemaRef, Vec<RecordBatch>), Refusal> {
    let Some(requested) = requested else {
        return Ok((found.clone(), batches));
    };
    let casts = plan(found, requested)?;
    let out = batches
        .iter()
        .map(|b| batch(b, requested, &casts))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((requested.clone(), out))
}
