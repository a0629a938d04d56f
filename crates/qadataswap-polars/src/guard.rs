//! The type rules of the hand-off to Polars: the one place that decides, before Polars sees a
//! column, whether it arrives with exactly the written values, is converted first, or is refused.
//!
//! Both readers that build a Polars frame use it: the Rust adapter
//! ([`crate::ffi::record_batches_to_dataframe`]) and the Python binding (whose Polars is a
//! different build, fed through the Arrow C stream interface). A rule lives here when *some*
//! Polars build would panic on a type, misread its values or reject it with an internal
//! message; everything else is left to Polars, which keeps or converts the values exactly.
//!
//! | arrow type (anywhere in a column) | what happens |
//! |---|---|
//! | `Decimal32(p, s)`, `Decimal64(p, s)` | widened to `Decimal128(p, s)` first: a copy, counted in [`Prepared::widened`] (Polars 2.1's C import reads their values as 128-bit: `-2.79` came back as `4.2950E+7`) |
//! | `Float16` | widened to `Float32` (exact for every value, NaN and infinities included): a copy, counted (polars-core 0.55 here is built without `dtype-f16` and panics on a nested one) |
//! | a `Dictionary` field marked as an extension type | the extension name is dropped, the dictionary kept (Polars refuses it with "must contain a dictionary in ffi") |
//! | `Decimal256`, `Interval(..)`, `Union`, `RunEndEncoded`, `ListView`, `LargeListView`, a `Dictionary` whose values hold a dictionary | refused with [`GuardError::UnsupportedType`], naming the column, the type and the way out |
//! | anything else | given to Polars unchanged |
//!
//! Only the schema is inspected, so a frame that needs no conversion costs O(columns) and its
//! batches are passed on as they are.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use arrow_array::{Decimal32Array, RecordBatch};
//! use arrow_schema::{DataType, Field, Schema};
//! use qadataswap_polars::guard;
//!
//! let prices = Decimal32Array::from(vec![Some(-279), None]).with_precision_and_scale(5, 2)?;
//! let schema = Arc::new(Schema::new(vec![Field::new("px", DataType::Decimal32(5, 2), true)]));
//! let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(prices)])?;
//!
//! let ready = guard::prepare(&schema, vec![batch])?;
//! assert_eq!(ready.schema.field(0).data_type(), &DataType::Decimal128(5, 2));
//! assert_eq!(ready.widened, ["px"]);
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchOptions};
use arrow_buffer::{Buffer, ScalarBuffer};
use arrow_data::{ArrayData, ArrayDataBuilder};
use arrow_schema::{ArrowError, DataType, Field, FieldRef, Fields, Schema, SchemaRef};

/// Arrow's half-precision float.
type F16 = <arrow_array::types::Float16Type as arrow_array::ArrowPrimitiveType>::Native;

/// Field metadata key that marks an Arrow extension type.
const EXTENSION_NAME: &str = "ARROW:extension:name";
/// Field metadata key of an extension type's parameters.
const EXTENSION_METADATA: &str = "ARROW:extension:metadata";

/// Why a frame cannot be handed to Polars as it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// A column holds an arrow type no Polars build imports faithfully.
    #[error(
        "column `{column}` has arrow type {data_type}, and Polars cannot take its {unsupported}: {way_out}"
    )]
    UnsupportedType {
        /// Column name.
        column: String,
        /// The column's whole arrow type.
        data_type: String,
        /// The offending (possibly nested) arrow type.
        unsupported: String,
        /// What to do instead.
        way_out: &'static str,
    },
    /// A column could not be converted to the form Polars takes (the batch does not hold the
    /// layout its type promises).
    #[error(
        "column `{column}` of arrow type {data_type} cannot be converted for Polars: {source}; read \
         it as Arrow instead (`read_arrow()` in Python, `SnapshotReader` in Rust)"
    )]
    Convert {
        /// Column name.
        column: String,
        /// The column's arrow type.
        data_type: String,
        /// The arrow-rs error.
        #[source]
        source: ArrowError,
    },
}

/// A frame ready for Polars: the schema and batches to import, and what was converted.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The schema to give Polars (the input's, or one with widened decimals).
    pub schema: SchemaRef,
    /// The batches to give Polars (the input's, unchanged, unless a column was converted).
    pub batches: Vec<RecordBatch>,
    /// Columns whose values were copied into a wider type (`Decimal32/64` -> `Decimal128`,
    /// `Float16` -> `Float32`).
    pub widened: Vec<String>,
}

/// What the rules say about one field.
enum Verdict {
    /// Give it to Polars as it is.
    Keep,
    /// Give Polars this field instead; `copies` when its values must be rewritten.
    Convert { field: FieldRef, copies: bool },
}

/// A type no Polars build takes, with the way out.
struct Refusal {
    unsupported: DataType,
    way_out: &'static str,
}

const READ_ARROW: &str =
    "read this frame as Arrow instead (`read_arrow()` in Python, `SnapshotReader` in Rust), \
                          which returns every type exactly";

/// The way out for a refused type.
fn way_out(data_type: &DataType) -> &'static str {
    match data_type {
        DataType::Decimal256(_, _) => {
            "read this frame as Arrow instead (`read_arrow()` in Python, `SnapshotReader` in Rust), or have the \
             writer cast the column to Decimal128 (precision <= 38)"
        }
        DataType::Interval(_) => {
            "read this frame as Arrow instead (`read_arrow()` in Python, `SnapshotReader` in Rust), or have the \
             writer store a Duration or a Struct of the interval's fields"
        }
        DataType::Union(_, _) => {
            "read this frame as Arrow instead (`read_arrow()` in Python, `SnapshotReader` in Rust), or have the \
             writer store one column per variant"
        }
        DataType::RunEndEncoded(_, _) => {
            "read this frame as Arrow instead (`read_arrow()` in Python, `SnapshotReader` in Rust), or have the \
             writer store the decoded values"
        }
        DataType::Dictionary(_, _) => {
            "read this frame as Arrow instead (`read_arrow()` in Python, `SnapshotReader` in Rust), or have the \
             writer decode the inner dictionary (a dictionary of dictionaries)"
        }
        DataType::ListView(_) | DataType::LargeListView(_) => {
            "read this frame as Arrow instead (`read_arrow()` in Python, `SnapshotReader` in Rust), or have the \
             writer cast the column to LargeList"
        }
        _ => READ_ARROW,
    }
}

/// The type Polars should be given instead of `data_type` (`None`: the same), and whether the
/// values must be copied to get it.
fn polars_type(data_type: &DataType) -> Result<Option<(DataType, bool)>, Refusal> {
    let refuse = || Refusal {
        unsupported: data_type.clone(),
        way_out: way_out(data_type),
    };
    Ok(match data_type {
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) => {
            Some((DataType::Decimal128(*p, *s), true))
        }
        DataType::Float16 => Some((DataType::Float32, true)),
        DataType::Decimal256(_, _)
        | DataType::Interval(_)
        | DataType::Union(_, _)
        | DataType::RunEndEncoded(_, _)
        | DataType::ListView(_)
        | DataType::LargeListView(_) => return Err(refuse()),
        DataType::List(item) => polars_field(item)?.map(|(f, c)| (DataType::List(f), c)),
        DataType::LargeList(item) => polars_field(item)?.map(|(f, c)| (DataType::LargeList(f), c)),
        DataType::FixedSizeList(item, n) => {
            polars_field(item)?.map(|(f, c)| (DataType::FixedSizeList(f, *n), c))
        }
        DataType::Map(entries, sorted) => {
            polars_field(entries)?.map(|(f, c)| (DataType::Map(f, *sorted), c))
        }
        DataType::Struct(fields) => {
            let mut changed = false;
            let mut copies = false;
            let mut out = Vec::with_capacity(fields.len());
            for field in fields {
                match polars_field(field)? {
                    Some((f, c)) => {
                        changed = true;
                        copies |= c;
                        out.push(f);
                    }
                    None => out.push(field.clone()),
                }
            }
            changed.then(|| (DataType::Struct(Fields::from(out)), copies))
        }
        DataType::Dictionary(_, values) if qadataswap_arrow::decode::has_dictionary(values) => {
            return Err(refuse())
        }
        DataType::Dictionary(key, values) => {
            polars_type(values)?.map(|(v, c)| (DataType::Dictionary(key.clone(), Box::new(v)), c))
        }
        _ => None,
    })
}

/// As [`polars_type`] for a field: also drops an extension marker from a dictionary field.
fn polars_field(field: &FieldRef) -> Result<Option<(FieldRef, bool)>, Refusal> {
    let converted = polars_type(field.data_type())?;
    let extension_dictionary = matches!(field.data_type(), DataType::Dictionary(_, _))
        && field.metadata().contains_key(EXTENSION_NAME);
    if converted.is_none() && !extension_dictionary {
        return Ok(None);
    }
    let (data_type, copies) = converted.unwrap_or_else(|| (field.data_type().clone(), false));
    let mut metadata = field.metadata().clone();
    if extension_dictionary {
        metadata.remove(EXTENSION_NAME);
        metadata.remove(EXTENSION_METADATA);
    }
    let field = Field::new(field.name(), data_type, field.is_nullable()).with_metadata(metadata);
    Ok(Some((Arc::new(field), copies)))
}

fn verdict(field: &FieldRef) -> Result<Verdict, GuardError> {
    match polars_field(field) {
        Ok(None) => Ok(Verdict::Keep),
        Ok(Some((field, copies))) => Ok(Verdict::Convert { field, copies }),
        Err(refusal) => Err(GuardError::UnsupportedType {
            column: field.name().clone(),
            data_type: field.data_type().to_string(),
            unsupported: refusal.unsupported.to_string(),
            way_out: refusal.way_out,
        }),
    }
}

/// Checks a schema against the rules without converting anything: `Ok` if every column can be
/// given to Polars (possibly after a conversion [`prepare`] makes).
///
/// # Errors
///
/// [`GuardError::UnsupportedType`] for the first column of a type Polars cannot take.
pub fn check_schema(schema: &Schema) -> Result<(), GuardError> {
    for field in schema.fields() {
        verdict(field)?;
    }
    Ok(())
}

/// Makes `batches` (all of `schema`) ready for Polars: refuses what Polars cannot take, converts
/// what it would misread, and passes everything else through untouched (see the
/// [module docs](self) for the rules).
///
/// # Errors
///
/// * [`GuardError::UnsupportedType`] naming the first column Polars cannot take, its type and
///   the way out.
/// * [`GuardError::Convert`] if a batch's column does not have the layout of its type.
pub fn prepare(schema: &SchemaRef, batches: Vec<RecordBatch>) -> Result<Prepared, GuardError> {
    let mut targets = Vec::with_capacity(schema.fields().len());
    let mut widened = Vec::new();
    for field in schema.fields() {
        match verdict(field)? {
            Verdict::Keep => targets.push(None),
            Verdict::Convert {
                field: target,
                copies,
            } => {
                if copies {
                    widened.push(field.name().clone());
                }
                targets.push(Some(target));
            }
        }
    }
    if targets.iter().all(Option::is_none) {
        return Ok(Prepared {
            schema: schema.clone(),
            batches,
            widened,
        });
    }
    let fields: Vec<FieldRef> = schema
        .fields()
        .iter()
        .zip(&targets)
        .map(|(field, target)| target.clone().unwrap_or_else(|| field.clone()))
        .collect();
    let new_schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let mut out = Vec::with_capacity(batches.len());
    for batch in &batches {
        let mut columns = Vec::with_capacity(batch.num_columns());
        for ((column, field), target) in batch.columns().iter().zip(schema.fields()).zip(&targets) {
            match target {
                None => columns.push(column.clone()),
                Some(target) => {
                    let data =
                        convert(&column.to_data(), target.data_type()).map_err(|source| {
                            GuardError::Convert {
                                column: field.name().clone(),
                                data_type: field.data_type().to_string(),
                                source,
                            }
                        })?;
                    columns.push(arrow_array::make_array(data));
                }
            }
        }
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        let converted = RecordBatch::try_new_with_options(new_schema.clone(), columns, &options)
            .map_err(|source| GuardError::Convert {
                column: String::from("(batch)"),
                data_type: String::from("(record batch)"),
                source,
            })?;
        out.push(converted);
    }
    Ok(Prepared {
        schema: new_schema,
        batches: out,
        widened,
    })
}

/// `data` rebuilt as `target` (a type [`polars_type`] derived from its own): decimals widened,
/// every other buffer shared.
fn convert(data: &ArrayData, target: &DataType) -> Result<ArrayData, ArrowError> {
    if data.data_type() == target {
        return Ok(data.clone());
    }
    match (data.data_type(), target) {
        (DataType::Decimal32(_, _), DataType::Decimal128(_, _)) => {
            let values = element_bytes::<4>(data)?.map(|b| i128::from(i32::from_le_bytes(b)));
            widen(data, target, values)
        }
        (DataType::Decimal64(_, _), DataType::Decimal128(_, _)) => {
            let values = element_bytes::<8>(data)?.map(|b| i128::from(i64::from_le_bytes(b)));
            widen(data, target, values)
        }
        (DataType::Float16, DataType::Float32) => {
            let values =
                element_bytes::<2>(data)?.map(|b| F16::from_bits(u16::from_le_bytes(b)).to_f32());
            widen(data, target, values)
        }
        (
            _,
            DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _),
        )
        | (_, DataType::Map(item, _)) => rebuild(data, target, &[item.data_type()]),
        (_, DataType::Struct(fields)) => {
            let types: Vec<&DataType> = fields.iter().map(|f| f.data_type()).collect();
            rebuild(data, target, &types)
        }
        (_, DataType::Dictionary(_, values)) => rebuild(data, target, &[values]),
        (found, _) => Err(ArrowError::InvalidArgumentError(format!(
            "no conversion from {found} to {target}"
        ))),
    }
}

/// The `len` values of a fixed-width array (from its offset) as little-endian byte groups: read
/// without alignment or length assumptions, so a short or odd buffer is an error, never a panic.
fn element_bytes<const W: usize>(
    data: &ArrayData,
) -> Result<impl Iterator<Item = [u8; W]> + '_, ArrowError> {
    let short = || {
        ArrowError::InvalidArgumentError(format!(
            "the values buffer of a {} array of {} values at offset {} is too short",
            data.data_type(),
            data.len(),
            data.offset()
        ))
    };
    let start = data.offset().checked_mul(W).ok_or_else(short)?;
    let end = data
        .offset()
        .checked_add(data.len())
        .and_then(|n| n.checked_mul(W))
        .ok_or_else(short)?;
    let bytes = data
        .buffers()
        .first()
        .and_then(|b| b.as_slice().get(start..end))
        .ok_or_else(short)?;
    Ok(bytes
        .chunks_exact(W)
        .map(|c| c.try_into().unwrap_or([0; W])))
}

/// An array's values (already offset) into a new buffer of a wider type; validity shared.
fn widen<T: arrow_buffer::ArrowNativeType>(
    data: &ArrayData,
    target: &DataType,
    values: impl Iterator<Item = T>,
) -> Result<ArrayData, ArrowError> {
    let values: ScalarBuffer<T> = values.take(data.len()).collect();
    ArrayDataBuilder::new(target.clone())
        .len(data.len())
        .nulls(data.nulls().cloned())
        .buffers(vec![Buffer::from(values)])
        .build()
}

/// A nested array with the same buffers and its children converted to `child_types`.
fn rebuild(
    data: &ArrayData,
    target: &DataType,
    child_types: &[&DataType],
) -> Result<ArrayData, ArrowError> {
    if data.child_data().len() != child_types.len() {
        return Err(ArrowError::InvalidArgumentError(format!(
            "{} has {} children, its type {} promises {}",
            data.data_type(),
            data.child_data().len(),
            target,
            child_types.len()
        )));
    }
    let children = data
        .child_data()
        .iter()
        .zip(child_types)
        .map(|(child, child_type)| convert(child, child_type))
        .collect::<Result<Vec<_>, _>>()?;
    data.clone()
        .into_builder()
        .data_type(target.clone())
        .child_data(children)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, Decimal64Array, Int64Array, ListArray, StructArray};

    fn one_column(field: Field, array: arrow_array::ArrayRef) -> (SchemaRef, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![field]));
        let batch = RecordBatch::try_new(schema.clone(), vec![array]).unwrap();
        (schema, vec![batch])
    }

    #[test]
    fn a_frame_that_needs_nothing_is_passed_on_as_it_is() {
        let array = Arc::new(Int64Array::from(vec![1, 2])) as arrow_array::ArrayRef;
        let (schema, batches) = one_column(Field::new("i", DataType::Int64, false), array.clone());
        let ready = prepare(&schema, batches).unwrap();
        assert!(Arc::ptr_eq(&ready.schema, &schema));
        assert!(ready.widened.is_empty());
        assert_eq!(
            ready.batches[0].column(0).to_data().buffers()[0].as_ptr(),
            array.to_data().buffers()[0].as_ptr()
        );
    }

    #[test]
    fn a_sliced_decimal64_inside_a_struct_inside_a_list_is_widened_to_the_same_values() {
        let decimals = Decimal64Array::from(vec![Some(-279), None, Some(i64::MAX), Some(i64::MIN)])
            .with_precision_and_scale(18, 2)
            .unwrap()
            .slice(1, 3);
        let field = Arc::new(Field::new("d", DataType::Decimal64(18, 2), true));
        let st = StructArray::new(vec![field].into(), vec![Arc::new(decimals.clone())], None);
        let item = Arc::new(Field::new("item", st.data_type().clone(), true));
        let list = ListArray::new(
            item.clone(),
            arrow_buffer::OffsetBuffer::from_lengths([1, 2]),
            Arc::new(st),
            None,
        );
        let (schema, batches) = one_column(
            Field::new("l", list.data_type().clone(), true),
            Arc::new(list),
        );
        let ready = prepare(&schema, batches).unwrap();
        assert_eq!(ready.widened, ["l"]);
        let back = ready.batches[0].column(0).to_data();
        let widened = &back.child_data()[0].child_data()[0];
        assert_eq!(widened.data_type(), &DataType::Decimal128(18, 2));
        let values = arrow_array::Decimal128Array::from(widened.clone());
        let expected: Vec<Option<i128>> = decimals.iter().map(|v| v.map(i128::from)).collect();
        assert_eq!(values.iter().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn a_union_nested_in_a_struct_is_refused_naming_the_column_and_the_way_out() {
        let union = DataType::Union(
            arrow_schema::UnionFields::try_new(
                vec![0],
                vec![Field::new("a", DataType::Int8, true)],
            )
            .unwrap(),
            arrow_schema::UnionMode::Sparse,
        );
        let schema = Schema::new(vec![Field::new(
            "u",
            DataType::Struct(vec![Field::new("x", union, true)].into()),
            true,
        )]);
        let err = check_schema(&schema).unwrap_err().to_string();
        assert!(err.contains("column `u`"), "{err}");
        assert!(err.contains("read_arrow()"), "{err}");
    }
}
