//! Zero-copy bridge between arrow-rs [`RecordBatch`]es and a Polars [`DataFrame`], through the
//! [Arrow C Data Interface](https://arrow.apache.org/docs/format/CDataInterface.html).
//!
//! * [`record_batches_to_dataframe`]: arrow-rs -> Polars. Each batch becomes one chunk of every
//!   column (no rechunk). Polars keeps the arrow-rs buffers alive through the C release callback:
//!   the owners behind them (in this project: a lease on a shared-memory slot) are dropped when
//!   the last Polars array that uses them is dropped, not before and not later.
//! * [`dataframe_to_record_batches`]: Polars -> arrow-rs, in Polars' own newest layout
//!   (`CompatLevel::newest()`), one [`RecordBatch`] per chunk. The arrow-rs arrays keep the
//!   Polars buffers alive the same way.
//! * [`import_copy_reason`]: tells, before importing, whether Polars will copy a column of a
//!   given arrow type, and why; callers that promise "zero-copy" count or refuse those.
//!
//! Ownership granularity: polars-arrow holds every buffer of one imported C array (one column of
//! one batch, children included) through a single owner, the whole `ArrowArray`. As long as any
//! of its buffers is in use, all of that column-chunk's arrow-rs buffers stay alive. Different
//! columns and different batches are released independently.
//!
//! # Arrow -> Polars without a copy
//!
//! Every buffer is kept at the same address (`tests/ffi.rs`
//! `every_native_arrow_buffer_is_found_unchanged_in_polars`) for:
//!
//! | arrow type | Polars dtype |
//! |---|---|
//! | `Null` | `Null` (no buffers; Polars keeps it as one chunk whatever the batches) |
//! | `Boolean` | `Boolean` |
//! | `Int8/16/32/64`, `UInt8/16/32/64`, `Float32/64` | same |
//! | `Utf8View`, `BinaryView` | `String`, `Binary` |
//! | `Date32` | `Date` |
//! | `Timestamp(ms/us/ns, tz)` | `Datetime(unit, tz)`; the time zone string is kept verbatim |
//! | `Duration(ms/us/ns)` | `Duration(unit)` |
//! | `Time64(ns)` | `Time` |
//! | `Decimal128(p, s)` | `Decimal(p, s)` |
//! | `LargeList<T>` | `List<T>` (zero-copy iff `T` is) |
//! | `FixedSizeList<T, n>` | `Array<T, n>` (zero-copy iff `T` is) |
//! | `Struct{..}` | `Struct{..}` (zero-copy iff every field is; see below) |
//! | `Date64` | `Datetime(ms)`: buffers kept, but it comes back as `Timestamp(ms)` |
//!
//! Struct caveat: when a struct has nulls, Polars (`propagate_nulls_struct` in polars-compute)
//! always builds a new validity bitmap for its *first* field (`field & struct`), and for any
//! other field whose nulls do not already cover the struct's; values buffers are kept. The copy
//! is `len / 8` bytes per field.
//!
//! A buffer whose address is not aligned for its element type would be copied by polars-arrow
//! (`create_buffer` in `polars-arrow/src/ffi/array.rs`); arrow-rs arrays that passed
//! `ArrayData`'s checks are always aligned.
//!
//! # Arrow -> Polars with a copy
//!
//! Read from `Series::_try_from_arrow_unchecked_with_md` and `to_physical_and_dtype` in
//! polars-core 0.55.2 `src/series/from.rs`, then measured by `tests/ffi.rs`
//! `polars_copies_exactly_the_arrow_types_import_copy_reason_names` (run it with
//! `--nocapture` for the table; "kept" counts arrow-rs buffers found at the same address in
//! Polars):
//!
//! | arrow type | kept | what Polars does | comes back as |
//! |---|---|---|---|
//! | `Utf8`, `LargeUtf8` | 2/3 | new views (16 bytes per value) pointing into the kept string bytes; offsets dropped | `Utf8View` |
//! | `Binary`, `LargeBinary` | 2/3 | same as `Utf8` | `BinaryView` |
//! | `FixedSizeBinary` | 1/2 | new views and new bytes | `BinaryView` |
//! | `List<T>` | 3/4 | widens the `i32` offsets to `i64`; values kept | `LargeList<T>` |
//! | `Map<K, V>` | 2/5 | rebuilt as `List<Struct{key, value}>`, keys cast as above | `LargeList<Struct>` |
//! | `Dictionary<K, V>` (any key, `u32` too) | 0 | re-encodes every value into Polars' categorical mapping | `Dictionary<u32, Utf8View>` |
//! | `Timestamp(s)`, `Duration(s)` | 1/2 | multiplies into a new `ms` array | `Timestamp(ms)`, `Duration(ms)` |
//! | `Time32(s/ms)`, `Time64(us)` | 1/2 | widens / multiplies into a new `ns` array | `Time64(ns)` |
//! | `Decimal32`, `Decimal64` | 1/2 | widened into a new `i128` buffer by [`crate::guard`] before Polars sees it | `Decimal128` |
//!
//! A column Polars copied releases its arrow-rs buffers when the import returns, except for
//! `Utf8`/`Binary`, whose new views point into the original string bytes (so the column-chunk
//! stays alive with the frame; `a_utf8_column_keeps_its_arrow_buffers_alive_...`).
//!
//! `Float16` is widened to `Float32` by [`crate::guard`] (polars-core's `dtype-f16` is off here).
//! Refused: `Decimal256`, `Interval(..)`, `Union`, `RunEndEncoded`, `ListView`, anywhere in the type, are
//! refused up front by [`crate::guard`] ([`FfiError::Guard`]): polars-arrow's C importer panics
//! on some of them and rejects the others with messages that name no column.
//!
//! # Polars -> arrow-rs
//!
//! Zero-copy for every dtype in the first table, in its native form (`String` -> `Utf8View`,
//! `Binary` -> `BinaryView`, `List` -> `LargeList`, `Array` -> `FixedSizeList`, `Datetime` ->
//! `Timestamp` with the time zone, `Duration`, `Date` -> `Date32`, `Time` -> `Time64(ns)`,
//! `Decimal` -> `Decimal128`, `Struct`, `Null`), checked by
//! `every_polars_buffer_is_found_unchanged_in_arrow`. Copies, all made by Polars' exporter:
//!
//! * `Categorical` -> `Dictionary<u32, Utf8View>`: Polars renumbers the keys per chunk in order
//!   of first appearance and builds the dictionary from the used categories (new buffers).
//! * `Enum` -> `Dictionary<u8|u16|u32, Utf8View>`: the keys are kept, the dictionary values are
//!   built from the frozen categories (one small new buffer).
//! * A constant (`Column::Scalar`) column is materialized first.
//! * A validity bitmap whose bit offset differs from its values' offset is shifted into a new
//!   bitmap by polars-arrow (`to_ffi_aligned`); this happens to a column with nulls imported
//!   from a *sliced* arrow-rs array (non-zero C offset), as polars-arrow starts the values at the
//!   offset but keeps the bitmap's bit offset (read from the source, not covered by a test).
//! * polars-arrow exports a `Null` array with one buffer, which arrow-rs refuses; the bridge
//!   corrects the C struct (`n_buffers = 0`) before arrow-rs reads it.
//!
//! Not exportable: `Int128`, `UInt128` (Polars writes the non-standard C formats `_pli128` /
//! `_plu128`): [`FfiError::ArrowImport`].
//!
//! Chunks: when all columns have the same chunk lengths, each chunk becomes one batch (empty
//! chunks included). When they do not (e.g. after an `hstack` of differently chunked columns),
//! the batches are cut at the union of all columns' chunk boundaries by *slicing*, which copies
//! nothing (rather than Polars' `align_chunks`, which rechunks): chunk lengths `[3, 2]` and
//! `[1, 4]` give batches of 1, 2 and 2 rows. `Null` columns (always one chunk in Polars) do not
//! take part in choosing the cuts, so a frame with a `Null` column keeps its batches; a frame of
//! only `Null` columns comes back as one batch.
//!
//! # Metadata and nullability
//!
//! Polars keeps no per-column metadata besides what encodes its own dtypes, so the exported
//! schema carries exactly what Polars writes: `_PL_CATEGORICAL2` on categorical fields and
//! `_PL_ENUM_VALUES2` on enum fields (also nested), nothing else. Every exported field (nested
//! ones too) is nullable: Polars does not track nullability. On import, field metadata is read
//! by Polars to choose the dtype (e.g. `Enum` from a dictionary) and then dropped.
//!
//! # Features
//!
//! polars-core is built with `dtype-{i8,i16,u8,u16,date,datetime,duration,time,decimal,struct,
//! array,categorical}` only (`dtype-decimal` brings `dtype-i128`). `timezones` is off on
//! purpose: it pulls in chrono-tz (the tz database), and with it Polars rewrites time zones on
//! import (`+00:00` -> `UTC`) and rejects unknown ones, so round trips would no longer be exact.
//! Without it a `Datetime` time zone is a string carried verbatim.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;

use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::{Array as _, ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::{ArrowError, DataType as ArrowType, Field as ArrowRsField, Schema, SchemaRef};
use polars_arrow::datatypes::Field as PolarsArrowField;
use polars_arrow::ffi::{ArrowArray as PolarsCArray, ArrowSchema as PolarsCSchema};
use polars_core::error::PolarsError;
use polars_core::frame::DataFrame;
use polars_core::prelude::{CompatLevel, DataType as PolarsType, IntoColumn, Series};

/// Errors of the arrow-rs <-> Polars bridge.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FfiError {
    /// A record batch does not have the schema passed along with it.
    #[error(
        "record batch {batch} does not match the schema: {detail}; pass batches that all have \
         the given schema's column count and types"
    )]
    SchemaMismatch {
        /// Index of the offending batch.
        batch: usize,
        /// What differs.
        detail: String,
    },
    /// arrow-rs could not describe a column's type through the C Data Interface.
    #[error(
        "arrow-rs cannot export column `{column}` of type {data_type} to the C Data Interface: \
         {source}; convert the column to a type the C Data Interface supports"
    )]
    ArrowExport {
        /// Column name.
        column: String,
        /// The column's arrow type.
        data_type: String,
        /// The arrow-rs error.
        #[source]
        source: ArrowError,
    },
    /// Polars could not import an arrow column.
    #[error(
        "polars cannot import column `{column}` of arrow type {data_type}: {source}; cast the \
         column to a type Polars supports (see `qadataswap_polars::ffi` docs for the list)"
    )]
    PolarsImport {
        /// Column name.
        column: String,
        /// The column's arrow type.
        data_type: String,
        /// The Polars error.
        #[source]
        source: PolarsError,
    },
    /// Polars could not convert a column to arrow (e.g. a dtype without an arrow form).
    #[error(
        "polars cannot export column `{column}` of dtype {dtype} to arrow: {source}; cast the \
         column to a dtype with an arrow form first"
    )]
    PolarsExport {
        /// Column name.
        column: String,
        /// The column's Polars dtype.
        dtype: String,
        /// The Polars error.
        #[source]
        source: PolarsError,
    },
    /// A column's type is one Polars cannot take faithfully ([`crate::guard`]'s rules): refused
    /// before Polars saw anything.
    #[error(transparent)]
    Guard(#[from] crate::guard::GuardError),
    /// arrow-rs could not import what Polars exported (e.g. Polars' non-standard `Int128`).
    #[error(
        "arrow-rs cannot import column `{column}` of polars dtype {dtype} as exported by polars: \
         {source}; cast the column to a standard arrow type (e.g. Int128 -> Decimal) before \
         exporting"
    )]
    ArrowImport {
        /// Column name.
        column: String,
        /// The column's Polars dtype.
        dtype: String,
        /// The arrow-rs error.
        #[source]
        source: ArrowError,
    },
    /// Polars rejected the assembled columns as a frame (e.g. differing lengths).
    #[error("polars cannot build a DataFrame from the imported columns: {source}; this is a bug if the batches were valid, please report it")]
    DataFrame {
        /// The Polars error.
        #[source]
        source: PolarsError,
    },
    /// arrow-rs rejected an assembled record batch.
    #[error("arrow-rs cannot build record batch {batch}: {source}; this is a bug if the frame was valid, please report it")]
    RecordBatch {
        /// Index of the batch being built.
        batch: usize,
        /// The arrow-rs error.
        #[source]
        source: ArrowError,
    },
}

/// Imports record batches into a Polars [`DataFrame`] without copying the buffers of the types
/// listed in the [module docs](self): batch `i` becomes chunk `i` of every column.
///
/// The arrow-rs buffers (and whatever owns them, e.g. a custom allocation holding a shared-memory
/// lease) stay alive while any Polars column, clone or slice still uses them, and are released
/// when the last one is dropped. Columns of types Polars must convert are copied
/// ([`import_copy_reason`] tells which) and their arrow-rs buffers are released when this
/// function returns, except `Utf8`/`Binary`, whose string bytes stay shared.
///
/// With no batches the result is an empty frame with the schema's columns. Field nullability and
/// metadata other than Polars' own are not kept (see the module docs).
///
/// # Errors
///
/// * [`FfiError::SchemaMismatch`] if a batch does not have the schema's column count and types.
/// * [`FfiError::Guard`] for a type [`crate::guard`] refuses (`Decimal256`, intervals, unions,
///   run-end encoding, list views), before Polars sees anything.
/// * [`FfiError::ArrowExport`] if arrow-rs cannot describe a type through the C Data Interface.
/// * [`FfiError::PolarsImport`] if Polars does not support a type (see the module docs).
/// * [`FfiError::DataFrame`] if Polars rejects the columns.
pub fn record_batches_to_dataframe(
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<DataFrame, FfiError> {
    check_batches(schema, batches)?;
    let ready = crate::guard::prepare(schema, batches.to_vec())?;
    let (schema, batches) = (&ready.schema, ready.batches.as_slice());
    let height = batches.iter().map(RecordBatch::num_rows).sum();
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (index, field) in schema.fields().iter().enumerate() {
        let polars_field = import_field(field)?;
        let chunks = batches
            .iter()
            .map(|batch| import_array(field, &polars_field, batch.column(index)))
            .collect::<Result<Vec<_>, _>>()?;
        let series = if chunks.is_empty() {
            let dtype = PolarsType::from_arrow_field(&polars_field);
            Series::new_empty(polars_field.name.clone(), &dtype)
        } else if matches!(field.data_type(), ArrowType::Dictionary(_, _)) {
            import_dictionary_chunks(&polars_field, chunks)
                .map_err(|source| polars_import_error(field, source))?
        } else {
            Series::try_from((&polars_field, chunks))
                .map_err(|source| polars_import_error(field, source))?
        };
        columns.push(series.into_column());
    }
    DataFrame::new(height, columns).map_err(|source| FfiError::DataFrame { source })
}

/// Exports a Polars [`DataFrame`] as arrow-rs record batches in Polars' newest layout
/// (`CompatLevel::newest()`), sharing the Polars buffers: one batch per chunk.
///
/// If the columns' chunks do not line up, the batches are cut at the union of all chunk
/// boundaries by slicing, which copies nothing (see the module docs). A frame with no columns
/// gives one batch with no columns and the frame's height. Every field is nullable; field
/// metadata is what Polars writes for its own dtypes.
///
/// # Errors
///
/// * [`FfiError::PolarsExport`] for dtypes Polars cannot express in arrow.
/// * [`FfiError::ArrowImport`] for dtypes arrow-rs cannot read (`Int128`, `UInt128`).
/// * [`FfiError::RecordBatch`] if arrow-rs rejects an assembled batch.
pub fn dataframe_to_record_batches(
    df: &DataFrame,
) -> Result<(SchemaRef, Vec<RecordBatch>), FfiError> {
    let series: Vec<&Series> = df
        .columns()
        .iter()
        .map(|column| column.as_materialized_series())
        .collect();

    let mut fields = Vec::with_capacity(series.len());
    let mut exported: Vec<Vec<ArrayRef>> = Vec::with_capacity(series.len());
    for s in &series {
        let polars_field = polars_arrow_field(s)?;
        let field = export_field(s, &polars_field)?;
        let chunks = (0..s.n_chunks())
            .map(|chunk| export_array(s, &polars_field, &field, chunk))
            .collect::<Result<Vec<_>, _>>()?;
        fields.push(field);
        exported.push(chunks);
    }
    let schema: SchemaRef = Arc::new(Schema::new(fields));

    if exported.is_empty() {
        let options = RecordBatchOptions::new().with_row_count(Some(df.height()));
        let batch = RecordBatch::try_new_with_options(schema.clone(), Vec::new(), &options)
            .map_err(|source| FfiError::RecordBatch { batch: 0, source })?;
        return Ok((schema, vec![batch]));
    }

    let batches = assemble_batches(&schema, &exported, df.height())?;
    Ok((schema, batches))
}

/// Why Polars must copy a column of this arrow type on import, or `None` if it keeps the
/// buffers (see the [module docs](self) for the list and how it was checked).
///
/// Nested types are checked recursively: `LargeList<Utf8>` is copied because its values are.
/// Types Polars rejects altogether also return `Some` (the import then fails). `None` means the
/// data buffers are kept; it does not mean the type comes back unchanged (`Date64` comes back
/// as `Timestamp(ms)`), and a struct with nulls gets new field validity bitmaps (module docs).
pub fn import_copy_reason(data_type: &ArrowType) -> Option<&'static str> {
    use arrow_schema::TimeUnit;
    match data_type {
        ArrowType::Null
        | ArrowType::Boolean
        | ArrowType::Int8
        | ArrowType::Int16
        | ArrowType::Int32
        | ArrowType::Int64
        | ArrowType::UInt8
        | ArrowType::UInt16
        | ArrowType::UInt32
        | ArrowType::UInt64
        | ArrowType::Float32
        | ArrowType::Float64
        | ArrowType::Utf8View
        | ArrowType::BinaryView
        | ArrowType::Date32
        | ArrowType::Date64
        | ArrowType::Time64(TimeUnit::Nanosecond)
        | ArrowType::Decimal128(_, _) => None,
        ArrowType::Timestamp(TimeUnit::Second, _) | ArrowType::Duration(TimeUnit::Second) => {
            Some("seconds are multiplied into a new milliseconds array")
        }
        ArrowType::Timestamp(_, _) | ArrowType::Duration(_) => None,
        ArrowType::LargeList(item) | ArrowType::FixedSizeList(item, _) => {
            import_copy_reason(item.data_type())
        }
        ArrowType::Struct(fields) => fields
            .iter()
            .find_map(|field| import_copy_reason(field.data_type())),
        ArrowType::Utf8 | ArrowType::LargeUtf8 => Some("strings are cast to a new Utf8View array"),
        ArrowType::Binary | ArrowType::LargeBinary | ArrowType::FixedSizeBinary(_) => {
            Some("binaries are cast to a new BinaryView array")
        }
        ArrowType::List(_) => Some("i32 list offsets are widened to i64 (LargeList)"),
        ArrowType::Map(_, _) => Some("maps are rebuilt as List<Struct> with i64 offsets"),
        ArrowType::Dictionary(_, _) => {
            Some("dictionaries are re-encoded into a Polars categorical mapping")
        }
        ArrowType::Time32(_) | ArrowType::Time64(_) => {
            Some("times are converted into a new Time64(ns) array")
        }
        ArrowType::Decimal32(_, _) | ArrowType::Decimal64(_, _) => {
            Some("decimals are widened into a new Decimal128 array before Polars sees them")
        }
        ArrowType::Float16 => {
            Some("Float16 is widened into a new Float32 array before Polars sees it")
        }
        _ => Some("Polars does not support this type"),
    }
}

/// Polars builds a categorical column batch by batch and `append`s them, which drops empty
/// batches; this keeps one chunk per batch (the categories are re-encoded either way).
fn import_dictionary_chunks(
    field: &PolarsArrowField,
    chunks: Vec<Box<dyn polars_arrow::array::Array>>,
) -> Result<Series, PolarsError> {
    let parts = chunks
        .into_iter()
        .map(|chunk| Series::try_from((field, vec![chunk])))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(dtype) = parts.first().map(|s| s.dtype().clone()) else {
        return Ok(Series::new_empty(
            field.name.clone(),
            &PolarsType::from_arrow_field(field),
        ));
    };
    if parts.iter().any(|s| s.dtype() != &dtype) {
        // Different mappings (cannot happen with one field's metadata): let Polars merge them.
        let mut parts = parts.into_iter();
        let mut first = parts
            .next()
            .unwrap_or_else(|| Series::new_empty(field.name.clone(), &dtype));
        for s in parts {
            first.append_owned(s)?;
        }
        return Ok(first);
    }
    let chunks = parts
        .iter()
        .flat_map(|s| s.chunks().iter().cloned())
        .collect();
    // SAFETY: every chunk is a physical chunk of a Series of exactly `dtype`.
    Ok(unsafe { Series::from_chunks_and_dtype_unchecked(field.name.clone(), chunks, &dtype) })
}

fn check_batches(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<(), FfiError> {
    for (batch_index, batch) in batches.iter().enumerate() {
        let found = batch.schema_ref();
        if found.fields().len() != schema.fields().len() {
            return Err(FfiError::SchemaMismatch {
                batch: batch_index,
                detail: format!(
                    "it has {} columns, the schema {}",
                    found.fields().len(),
                    schema.fields().len()
                ),
            });
        }
        for (expected, column) in schema.fields().iter().zip(batch.columns()) {
            if !expected.data_type().equals_datatype(column.data_type()) {
                return Err(FfiError::SchemaMismatch {
                    batch: batch_index,
                    detail: format!(
                        "column `{}` has type {}, the schema {}",
                        expected.name(),
                        column.data_type(),
                        expected.data_type()
                    ),
                });
            }
        }
    }
    Ok(())
}

fn polars_import_error(field: &ArrowRsField, source: PolarsError) -> FfiError {
    FfiError::PolarsImport {
        column: field.name().clone(),
        data_type: field.data_type().to_string(),
        source,
    }
}

/// arrow-rs field (name, type, nullability, metadata) -> Polars' arrow field, through C.
fn import_field(field: &ArrowRsField) -> Result<PolarsArrowField, FfiError> {
    let c_schema = FFI_ArrowSchema::try_from(field).map_err(|source| FfiError::ArrowExport {
        column: field.name().clone(),
        data_type: field.data_type().to_string(),
        source,
    })?;
    // SAFETY: `FFI_ArrowSchema` and polars' `ArrowSchema` are both `#[repr(C)]` definitions of
    // the C Data Interface's `struct ArrowSchema` (same fields, same order; `transmute` checks the
    // size). Moving it hands its release callback over: only the polars value will release it.
    let c_schema: PolarsCSchema = unsafe { std::mem::transmute(c_schema) };
    // SAFETY: `c_schema` was just produced by arrow-rs' exporter and is a valid, unreleased
    // ArrowSchema; polars only reads it (and releases it when `c_schema` drops).
    unsafe { polars_arrow::ffi::import_field_from_c(&c_schema) }
        .map_err(|source| polars_import_error(field, source))
}

/// One arrow-rs array -> one Polars array sharing its buffers.
fn import_array(
    field: &ArrowRsField,
    polars_field: &PolarsArrowField,
    array: &ArrayRef,
) -> Result<Box<dyn polars_arrow::array::Array>, FfiError> {
    // `FFI_ArrowArray::new` moves a clone of the `ArrayData` (Arcs to the buffers and their
    // owners) into the C struct's private data: it is dropped by the release callback.
    let c_array = FFI_ArrowArray::new(&array.to_data());
    // SAFETY: `FFI_ArrowArray` and polars' `ArrowArray` are both `#[repr(C)]` definitions of the
    // C Data Interface's `struct ArrowArray` (same fields, same order; `transmute` checks the
    // size). Ownership moves to the polars value, whose `Drop` calls the release callback once.
    let c_array: PolarsCArray = unsafe { std::mem::transmute(c_array) };
    // SAFETY: `c_array` is a valid, unreleased ArrowArray exported by arrow-rs from an `ArrayData`
    // of `field.data_type()` (checked against every batch in `check_batches`), and
    // `polars_field.dtype` is that same type as read back by polars from arrow-rs' own
    // description of it. The buffers are immutable (arrow-rs buffers are shared, never written).
    unsafe { polars_arrow::ffi::import_array_from_c(c_array, polars_field.dtype.clone()) }
        .map_err(|source| polars_import_error(field, source))
}

/// Polars' arrow field -> arrow-rs field (name, type, metadata), through C.
fn export_field(s: &Series, polars_field: &PolarsArrowField) -> Result<ArrowRsField, FfiError> {
    let c_schema = polars_arrow::ffi::export_field_to_c(polars_field);
    // SAFETY: both types are `#[repr(C)]` definitions of `struct ArrowSchema` (see
    // `import_field`); ownership and the release callback move to the arrow-rs value.
    let c_schema: FFI_ArrowSchema = unsafe { std::mem::transmute(c_schema) };
    ArrowRsField::try_from(&c_schema).map_err(|source| arrow_import_error(s, source))
}

/// The arrow field Polars exports a Series as (`DataType::to_arrow_field` without its panic).
fn polars_arrow_field(s: &Series) -> Result<PolarsArrowField, FfiError> {
    let data_type = s
        .dtype()
        .try_to_arrow(CompatLevel::newest())
        .map_err(|source| polars_export_error(s, source))?;
    let field = PolarsArrowField::new(s.name().clone(), data_type, true);
    Ok(match s.dtype().to_arrow_field_metadata() {
        Some(metadata) => field.with_metadata(metadata),
        None => field,
    })
}

fn polars_export_error(s: &Series, source: PolarsError) -> FfiError {
    FfiError::PolarsExport {
        column: s.name().to_string(),
        dtype: s.dtype().to_string(),
        source,
    }
}

/// One Polars chunk -> one arrow-rs array sharing its buffers.
fn export_array(
    s: &Series,
    polars_field: &PolarsArrowField,
    field: &ArrowRsField,
    chunk: usize,
) -> Result<ArrayRef, FfiError> {
    let array = s
        .to_arrow_with_field(chunk, Cow::Borrowed(polars_field), true)
        .map_err(|source| polars_export_error(s, source))?;
    let c_array = polars_arrow::ffi::export_array_to_c(array);
    // SAFETY: both types are `#[repr(C)]` definitions of `struct ArrowArray` (see
    // `import_array`); ownership and the release callback move to the new value.
    let mut c_array: CArrowArray = unsafe { std::mem::transmute(c_array) };
    // SAFETY: `c_array` is the valid, unreleased tree polars just exported for an array of
    // `field.data_type()`, and we own it (nobody else holds a pointer into it).
    unsafe { drop_null_type_buffers(&mut c_array, field.data_type()) };
    // SAFETY: as above; ownership and the release callback move to the arrow-rs value.
    let c_array: FFI_ArrowArray = unsafe { std::mem::transmute(c_array) };
    let data_type = field.data_type().clone();
    // SAFETY: `c_array` is a valid, unreleased ArrowArray produced by polars' exporter from an
    // array whose type is `field.data_type()` (both come from `Series::to_arrow*` with
    // `CompatLevel::newest()`); arrow-rs takes ownership and calls the release callback when the
    // last buffer referencing it drops.
    let imported = unsafe { arrow_array::ffi::from_ffi_and_data_type(c_array, data_type) };
    let data = imported.map_err(|source| arrow_import_error(s, source))?;
    Ok(arrow_array::make_array(data))
}

/// The C Data Interface's `struct ArrowArray`, field for field, so that the bridge can correct
/// what polars exports before arrow-rs reads it (polars' and arrow-rs' own definitions keep
/// their fields private).
#[repr(C)]
#[allow(dead_code)] // Most fields are only moved through, never read.
struct CArrowArray {
    length: i64,
    null_count: i64,
    offset: i64,
    n_buffers: i64,
    n_children: i64,
    buffers: *mut *const std::ffi::c_void,
    children: *mut *mut CArrowArray,
    dictionary: *mut CArrowArray,
    release: Option<unsafe extern "C" fn(*mut CArrowArray)>,
    private_data: *mut std::ffi::c_void,
}

/// polars-arrow exports a `Null` array with one (null) buffer where the C Data Interface says
/// it has none, and arrow-rs refuses it; this sets `n_buffers` to 0 in every `Null` array of the
/// tree. The release callback frees the buffer list through its private data, not through
/// `n_buffers`, so nothing leaks.
///
/// # Safety
///
/// `array` must be a valid, unreleased `ArrowArray` of type `data_type` owned by the caller, whose
/// children and dictionary no one else reads or writes meanwhile.
unsafe fn drop_null_type_buffers(array: &mut CArrowArray, data_type: &ArrowType) {
    match data_type {
        ArrowType::Null => array.n_buffers = 0,
        ArrowType::List(item)
        | ArrowType::LargeList(item)
        | ArrowType::FixedSizeList(item, _)
        | ArrowType::Map(item, _) => {
            // SAFETY: forwarded from the caller; the only child has the item type.
            unsafe { drop_null_type_buffers_in_child(array, 0, item.data_type()) }
        }
        ArrowType::Struct(fields) => {
            for (index, field) in fields.iter().enumerate() {
                // SAFETY: forwarded from the caller; child `index` has field `index`'s type.
                unsafe { drop_null_type_buffers_in_child(array, index, field.data_type()) }
            }
        }
        ArrowType::Dictionary(_, values) => {
            // SAFETY: a non-null dictionary pointer points to a valid `ArrowArray` of the values
            // type, owned with its parent (exclusive access guaranteed by the caller).
            if let Some(dictionary) = unsafe { array.dictionary.as_mut() } {
                // SAFETY: as above.
                unsafe { drop_null_type_buffers(dictionary, values) };
            }
        }
        _ => {}
    }
}

/// [`drop_null_type_buffers`] on child `index` of `array`, if it has one.
///
/// # Safety
///
/// As [`drop_null_type_buffers`], and child `index` (if present) has type `child_type`.
unsafe fn drop_null_type_buffers_in_child(
    array: &mut CArrowArray,
    index: usize,
    child_type: &ArrowType,
) {
    let count = usize::try_from(array.n_children).unwrap_or(0);
    if index >= count || array.children.is_null() {
        return;
    }
    // SAFETY: `children` holds `n_children` pointers (C Data Interface) and `index` is below it.
    let child = unsafe { *array.children.add(index) };
    // SAFETY: a non-null child pointer points to a valid `ArrowArray` owned with its parent, and
    // the caller guarantees exclusive access to the tree.
    if let Some(child) = unsafe { child.as_mut() } {
        // SAFETY: same tree, same exclusive access; the child has type `child_type`.
        unsafe { drop_null_type_buffers(child, child_type) };
    }
}

fn arrow_import_error(s: &Series, source: ArrowError) -> FfiError {
    FfiError::ArrowImport {
        column: s.name().to_string(),
        dtype: s.dtype().to_string(),
        source,
    }
}

/// Cuts the exported chunks into batches; zero-copy slicing when chunk boundaries differ.
///
/// `Null` columns do not take part in choosing the cuts: Polars keeps them as one chunk whatever
/// the batches were, and a null array has no buffers, so slicing it is free.
fn assemble_batches(
    schema: &SchemaRef,
    columns: &[Vec<ArrayRef>],
    height: usize,
) -> Result<Vec<RecordBatch>, FfiError> {
    let lengths = |chunks: &Vec<ArrayRef>| chunks.iter().map(|a| a.len()).collect::<Vec<_>>();
    let mut reference: Vec<usize> = (0..columns.len())
        .filter(|&i| schema.field(i).data_type() != &ArrowType::Null)
        .collect();
    if reference.is_empty() {
        reference = (0..columns.len()).collect();
    }
    let first = reference
        .first()
        .map(|&i| lengths(&columns[i]))
        .unwrap_or_default();
    let aligned = reference.iter().all(|&i| lengths(&columns[i]) == first);

    // Pieces (start, len): the shared chunks, or the union of every column's chunk ends.
    let pieces: Vec<(usize, usize)> = if aligned {
        let mut start = 0;
        first
            .iter()
            .map(|&len| {
                start += len;
                (start - len, len)
            })
            .collect()
    } else {
        let mut cuts = BTreeSet::from([0, height]);
        for &i in &reference {
            let mut end = 0;
            for chunk in &columns[i] {
                end += chunk.len();
                cuts.insert(end);
            }
        }
        let cuts: Vec<usize> = cuts.into_iter().collect();
        cuts.windows(2).map(|w| (w[0], w[1] - w[0])).collect()
    };

    pieces
        .iter()
        .enumerate()
        .map(|(index, &(start, len))| {
            let arrays = columns
                .iter()
                .enumerate()
                .map(|(i, chunks)| match chunks.get(index) {
                    // Whole chunk: no slicing at all.
                    Some(chunk) if aligned && reference.contains(&i) => chunk.clone(),
                    _ => slice_across(chunks, start, len, schema.field(i).data_type()),
                })
                .collect();
            RecordBatch::try_new_with_options(
                schema.clone(),
                arrays,
                &RecordBatchOptions::new().with_row_count(Some(len)),
            )
            .map_err(|source| FfiError::RecordBatch {
                batch: index,
                source,
            })
        })
        .collect()
}

/// Rows `start..start + len` of a chunked column, which lie inside a single chunk.
fn slice_across(chunks: &[ArrayRef], start: usize, len: usize, data_type: &ArrowType) -> ArrayRef {
    let mut chunk_start = 0;
    for chunk in chunks {
        let chunk_end = chunk_start + chunk.len();
        if start < chunk_end || (len == 0 && start == chunk_start) {
            return chunk.slice(start - chunk_start, len);
        }
        chunk_start = chunk_end;
    }
    // Only an empty piece at the very end gets here.
    arrow_array::new_empty_array(data_type)
}
