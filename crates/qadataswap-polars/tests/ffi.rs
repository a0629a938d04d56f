//! The arrow-rs <-> Polars bridge: buffer addresses, buffer lifetimes, exact round trips.

use std::collections::BTreeMap;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arrow_array::builder::{Int32Builder, MapBuilder, StringBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{
    Array, ArrayRef, BinaryArray, Date64Array, Decimal256Array, Decimal64Array, DictionaryArray,
    DurationSecondArray, FixedSizeBinaryArray, Float16Array, Int64Array, LargeBinaryArray,
    LargeListArray, LargeStringArray, ListArray, RecordBatch, StringArray, StringViewArray,
    Time32MillisecondArray, Time64MicrosecondArray, TimestampSecondArray, UInt32Array,
};
use arrow_buffer::{i256, Buffer, NullBuffer, ScalarBuffer};
use arrow_data::ArrayData;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use polars_core::frame::DataFrame;
use polars_core::prelude::{
    DataType as PlDataType, FrozenCategories, IntoColumn, NamedFrom, Series,
};
use proptest::prelude::*;
mod common;
use common::*;

use qadataswap_polars::ffi::{
    dataframe_to_record_batches, import_copy_reason, record_batches_to_dataframe, FfiError,
};

// ---------------------------------------------------------------------------------------------
// Buffer addresses
// ---------------------------------------------------------------------------------------------

/// Start addresses of every non-empty buffer of an arrow-rs array, children and dictionary
/// included (validity only when there are nulls: Polars drops an all-valid bitmap).
fn arrow_ptrs(data: &ArrayData, out: &mut Vec<usize>) {
    arrow_ptrs_but(data, out, false, false);
}

/// As [`arrow_ptrs`]; with `struct_fields_lenient`, the validity bitmaps of the fields of a
/// struct that has nulls are left out (Polars rebuilds them on import, see the crate docs).
fn arrow_ptrs_but(
    data: &ArrayData,
    out: &mut Vec<usize>,
    struct_fields_lenient: bool,
    skip_validity: bool,
) {
    if data.null_count() > 0 && !skip_validity {
        if let Some(nulls) = data.nulls() {
            out.push(nulls.buffer().as_ptr() as usize);
        }
    }
    for buffer in data.buffers() {
        if !buffer.is_empty() {
            out.push(buffer.as_ptr() as usize);
        }
    }
    let skip_children_validity = struct_fields_lenient
        && matches!(data.data_type(), DataType::Struct(_))
        && data.null_count() > 0;
    for child in data.child_data() {
        arrow_ptrs_but(child, out, struct_fields_lenient, skip_children_validity);
    }
}

fn arrow_ptrs_of(array: &dyn Array) -> Vec<usize> {
    let mut out = Vec::new();
    arrow_ptrs(&array.to_data(), &mut out);
    out
}

fn series<'a>(df: &'a DataFrame, name: &str) -> &'a Series {
    df.column(name).unwrap().as_materialized_series()
}

// Test data (one column per dtype Polars holds natively, with nulls) lives in tests/common.

fn assert_batches_equal(expected: &[RecordBatch], found: &[RecordBatch]) {
    assert_eq!(expected.len(), found.len(), "batch count");
    for (b, (e, f)) in expected.iter().zip(found).enumerate() {
        assert_eq!(e.num_columns(), f.num_columns());
        for (i, field) in e.schema().fields().iter().enumerate() {
            assert_eq!(
                e.column(i).to_data(),
                f.column(i).to_data(),
                "batch {b} column `{}` ({})",
                field.name(),
                field.data_type()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Addresses: arrow-rs -> Polars
// ---------------------------------------------------------------------------------------------

#[test]
fn every_native_arrow_buffer_is_found_unchanged_in_polars() {
    let (schema, batches) = batches_of(native_columns, &[7, 5, 9]);
    let df = record_batches_to_dataframe(&schema, &batches).unwrap();
    for (i, field) in schema.fields().iter().enumerate() {
        assert_eq!(
            import_copy_reason(field.data_type()),
            None,
            "{}",
            field.data_type()
        );
        let s = series(&df, field.name());
        if field.data_type() == &DataType::Null {
            // Polars keeps a Null column as one chunk; it has no buffers to share.
            assert_eq!(s.len(), df.height());
            continue;
        }
        assert_eq!(
            s.n_chunks(),
            batches.len(),
            "column `{}` was rechunked",
            field.name()
        );
        for (b, batch) in batches.iter().enumerate() {
            let mut wanted = Vec::new();
            arrow_ptrs_but(&batch.column(i).to_data(), &mut wanted, true, false);
            let found = polars_ptrs_of(s.chunks()[b].as_ref());
            if field.data_type() != &DataType::Null {
                assert!(!wanted.is_empty(), "column `{}` has buffers", field.name());
            }
            for ptr in &wanted {
                assert!(
                    found.contains(ptr),
                    "column `{}` ({}) batch {b}: arrow buffer {ptr:#x} not in polars {found:x?}",
                    field.name(),
                    field.data_type()
                );
            }
        }
    }
}

/// One column of each arrow type Polars converts: `(name, array)`.
fn non_native_columns() -> Vec<(&'static str, ArrayRef)> {
    let strings = vec![Some(LONG[0]), None, Some(LONG[1]), Some("short")];
    let mut map = MapBuilder::new(None, StringBuilder::new(), Int32Builder::new());
    map.keys().append_value("k");
    map.values().append_value(1);
    map.append(true).unwrap();
    map.append(false).unwrap();
    let dict_i8: DictionaryArray<arrow_array::types::Int8Type> =
        vec![Some("a"), None, Some("b"), Some("a")]
            .into_iter()
            .collect();
    let dict_u32 = DictionaryArray::try_new(
        UInt32Array::from(vec![Some(0), None, Some(1)]),
        Arc::new(StringViewArray::from(vec!["a", "b"])) as ArrayRef,
    )
    .unwrap();
    vec![
        (
            "Utf8",
            Arc::new(StringArray::from(strings.clone())) as ArrayRef,
        ),
        (
            "LargeUtf8",
            Arc::new(LargeStringArray::from(strings.clone())),
        ),
        (
            "Binary",
            Arc::new(BinaryArray::from_iter(
                strings.iter().map(|s| s.map(str::as_bytes)),
            )),
        ),
        (
            "LargeBinary",
            Arc::new(LargeBinaryArray::from_iter(
                strings.iter().map(|s| s.map(str::as_bytes)),
            )),
        ),
        (
            "FixedSizeBinary",
            Arc::new(
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                    vec![Some([1u8, 2, 3]), None, Some([4, 5, 6])].into_iter(),
                    3,
                )
                .unwrap(),
            ),
        ),
        (
            "List<Int32>",
            Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
                Some(vec![Some(1), None]),
                None,
                Some(vec![Some(3)]),
            ])),
        ),
        ("Map<Utf8, Int32>", Arc::new(map.finish())),
        ("Dictionary<Int8, Utf8>", Arc::new(dict_i8)),
        ("Dictionary<UInt32, Utf8View>", Arc::new(dict_u32)),
        (
            "Date64",
            Arc::new(Date64Array::from(vec![Some(86_400_000), None])),
        ),
        (
            "Timestamp(s)",
            Arc::new(TimestampSecondArray::from(vec![Some(1), None, Some(3)])),
        ),
        (
            "Duration(s)",
            Arc::new(DurationSecondArray::from(vec![Some(1), None, Some(3)])),
        ),
        (
            "Time32(ms)",
            Arc::new(Time32MillisecondArray::from(vec![Some(1), None, Some(3)])),
        ),
        (
            "Time64(us)",
            Arc::new(Time64MicrosecondArray::from(vec![Some(1), None, Some(3)])),
        ),
        (
            "Decimal64(10,2)",
            Arc::new(
                Decimal64Array::from(vec![Some(1), None, Some(3)])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
        ),
    ]
}

#[test]
fn polars_copies_exactly_the_arrow_types_import_copy_reason_names() {
    let mut table = BTreeMap::new();
    for (name, array) in non_native_columns() {
        let schema = Arc::new(Schema::new(vec![nullable("c", array.data_type().clone())]));
        let batch = RecordBatch::try_new(schema.clone(), vec![array.clone()]).unwrap();
        let df = record_batches_to_dataframe(&schema, &[batch]).unwrap();
        let s = series(&df, "c");
        let wanted = arrow_ptrs_of(array.as_ref());
        let found: Vec<usize> = s
            .chunks()
            .iter()
            .flat_map(|c| polars_ptrs_of(c.as_ref()))
            .collect();
        let kept = wanted.iter().filter(|p| found.contains(p)).count();
        let reason = import_copy_reason(array.data_type());
        assert_eq!(
            reason.is_some(),
            kept < wanted.len(),
            "{name}: {kept}/{} buffers kept but import_copy_reason says {reason:?}",
            wanted.len()
        );
        let (_, back) = dataframe_to_record_batches(&df).unwrap();
        table.insert(
            name,
            format!(
                "{kept}/{} arrow buffers kept; polars {}; exported back as {}",
                wanted.len(),
                s.dtype(),
                back[0].column(0).data_type()
            ),
        );
    }
    for (name, line) in table {
        println!("{name:30} {line}");
    }
}

#[test]
fn decimal256_import_is_refused_with_an_error_not_a_polars_panic() {
    let array: ArrayRef = Arc::new(
        Decimal256Array::from(vec![Some(i256::from(1)), None])
            .with_precision_and_scale(20, 2)
            .unwrap(),
    );
    let field = nullable(
        "d",
        DataType::LargeList(Arc::new(nullable("item", array.data_type().clone()))),
    );
    let schema = Arc::new(Schema::new(vec![field]));
    let list = LargeListArray::new(
        Arc::new(nullable("item", array.data_type().clone())),
        arrow_buffer::OffsetBuffer::from_lengths([2]),
        array,
        None,
    );
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(list)]).unwrap();
    let err = record_batches_to_dataframe(&schema, &[batch]).unwrap_err();
    assert!(matches!(err, FfiError::Guard(_)), "{err}");
    assert!(err.to_string().contains("column `d`"), "{err}");
}

#[test]
fn float16_arrives_widened_to_float32() {
    let array: ArrayRef = Arc::new(Float16Array::from(vec![half_one()]));
    let schema = Arc::new(Schema::new(vec![nullable("h", DataType::Float16)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![array]).unwrap();
    let df = record_batches_to_dataframe(&schema, &[batch]).unwrap();
    assert_eq!(series(&df, "h").dtype(), &PlDataType::Float32);
}

fn half_one() -> <arrow_array::types::Float16Type as arrow_array::ArrowPrimitiveType>::Native {
    <arrow_array::types::Float16Type as arrow_array::ArrowPrimitiveType>::Native::from_f32(1.0)
}

// ---------------------------------------------------------------------------------------------
// Addresses: Polars -> arrow-rs
// ---------------------------------------------------------------------------------------------

fn assert_polars_buffers_in_arrow(df: &DataFrame, schema: &SchemaRef, batches: &[RecordBatch]) {
    for (i, column) in df.columns().iter().enumerate() {
        let s = column.as_materialized_series();
        assert_eq!(schema.field(i).name(), s.name().as_str());
        if s.dtype() == &PlDataType::Null {
            continue;
        }
        assert_eq!(s.n_chunks(), batches.len());
        for (b, batch) in batches.iter().enumerate() {
            let wanted = polars_ptrs_of(s.chunks()[b].as_ref());
            let found = arrow_ptrs_of(batch.column(i).as_ref());
            for ptr in &wanted {
                assert!(
                    found.contains(ptr),
                    "column `{}` ({}) chunk {b}: polars buffer {ptr:#x} not in arrow {found:x?}",
                    s.name(),
                    s.dtype()
                );
            }
        }
    }
}

#[test]
fn every_polars_buffer_is_found_unchanged_in_arrow() {
    let (schema, batches) = batches_of(native_columns, &[6, 8, 3]);
    let df = record_batches_to_dataframe(&schema, &batches).unwrap();
    let (out_schema, out) = dataframe_to_record_batches(&df).unwrap();
    assert_polars_buffers_in_arrow(&df, &out_schema, &out);
}

#[test]
fn frames_built_by_polars_export_without_a_copy() {
    let mut ints = Series::new("ints".into(), &[Some(1i64), None, Some(3)]);
    ints.append(&Series::new("ints".into(), &[4i64, 5]))
        .unwrap();
    let mut strings = Series::new("strings".into(), &[Some(LONG[0]), None, Some("s")]);
    strings
        .append(&Series::new("strings".into(), &[LONG[1], LONG[2]]))
        .unwrap();
    let df = DataFrame::new(5, vec![ints.into_column(), strings.into_column()]).unwrap();
    let (schema, batches) = dataframe_to_record_batches(&df).unwrap();
    assert_eq!(batches.len(), 2);
    assert_eq!(schema.field(1).data_type(), &DataType::Utf8View);
    assert_polars_buffers_in_arrow(&df, &schema, &batches);
}

#[test]
fn enum_export_keeps_the_keys_and_builds_the_dictionary() {
    let categories = FrozenCategories::new(["low", "mid", "high"]).unwrap();
    let dtype = PlDataType::from_frozen_categories(categories);
    let s = Series::new(
        "level".into(),
        &[Some("mid"), None, Some("high"), Some("mid")],
    )
    .cast(&dtype)
    .unwrap();
    let df = DataFrame::new(4, vec![s.into_column()]).unwrap();
    let (schema, batches) = dataframe_to_record_batches(&df).unwrap();
    let DataType::Dictionary(_, values) = schema.field(0).data_type() else {
        panic!(
            "enum exports as a dictionary, got {}",
            schema.field(0).data_type()
        );
    };
    assert_eq!(values.as_ref(), &DataType::Utf8View);
    assert!(
        schema.field(0).metadata().contains_key("_PL_ENUM_VALUES2"),
        "{:?}",
        schema.field(0).metadata()
    );
    let keys_ptr = polars_ptrs_of(series(&df, "level").chunks()[0].as_ref());
    let dict = batches[0].column(0).to_data();
    let mut key_ptrs = Vec::new();
    for b in dict.buffers() {
        key_ptrs.push(b.as_ptr() as usize);
    }
    assert!(
        keys_ptr.iter().any(|p| key_ptrs.contains(p)),
        "enum keys were copied"
    );

    // And back: the same Enum dtype and values.
    let back = record_batches_to_dataframe(&schema, &batches).unwrap();
    assert_eq!(series(&back, "level").dtype(), series(&df, "level").dtype());
    assert!(back.equals_missing(&df));
}

#[test]
fn categorical_round_trips_through_arrow_with_its_metadata() {
    let s = Series::new("c".into(), &[Some("x"), None, Some("y"), Some("x")])
        .cast(&PlDataType::from_categories(
            polars_core::prelude::Categories::global(),
        ))
        .unwrap();
    let df = DataFrame::new(4, vec![s.into_column()]).unwrap();
    let (schema, batches) = dataframe_to_record_batches(&df).unwrap();
    assert!(
        schema.field(0).metadata().contains_key("_PL_CATEGORICAL2"),
        "{:?}",
        schema.field(0).metadata()
    );
    let back = record_batches_to_dataframe(&schema, &batches).unwrap();
    assert_eq!(series(&back, "c").dtype(), series(&df, "c").dtype());
    assert!(back.equals_missing(&df));
}

// ---------------------------------------------------------------------------------------------
// Lifetimes: the owner of the arrow-rs buffers lives exactly as long as Polars uses them
// ---------------------------------------------------------------------------------------------

/// Stands for a shared-memory lease: counts how many owners are alive.
struct Owner {
    bytes: Vec<u64>,
    alive: Arc<AtomicUsize>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

fn leased_buffer(values: &[u8], alive: &Arc<AtomicUsize>) -> Buffer {
    let mut bytes = vec![0u64; values.len().div_ceil(8).max(1)];
    // SAFETY: test-only byte view of a `u64` vector at least `values.len()` bytes long.
    let dst =
        unsafe { std::slice::from_raw_parts_mut(bytes.as_mut_ptr().cast::<u8>(), values.len()) };
    dst.copy_from_slice(values);
    alive.fetch_add(1, Ordering::SeqCst);
    let owner = Arc::new(Owner {
        bytes,
        alive: alive.clone(),
    });
    let ptr = NonNull::new(owner.bytes.as_ptr().cast_mut().cast::<u8>()).unwrap();
    // SAFETY: `ptr` points to `values.len()` initialized bytes owned by `owner`, which the
    // buffer keeps alive; the vector is never written again.
    unsafe { Buffer::from_custom_allocation(ptr, values.len(), owner) }
}

fn leased_batch(alive: &Arc<AtomicUsize>) -> (SchemaRef, RecordBatch) {
    let ints: Vec<u8> = [10i64, 20, 30, 40]
        .iter()
        .flat_map(|v| v.to_ne_bytes())
        .collect();
    let ints = Int64Array::new(ScalarBuffer::new(leased_buffer(&ints, alive), 0, 4), None);
    let source = StringViewArray::from(vec![LONG[0], LONG[1], "s", LONG[2]]);
    let views = leased_buffer(source.views().inner().as_slice(), alive);
    let data = source
        .data_buffers()
        .iter()
        .map(|b| leased_buffer(b.as_slice(), alive))
        .collect::<Vec<_>>();
    let strings = StringViewArray::try_new(ScalarBuffer::new(views, 0, 4), data, None).unwrap();
    let schema = Arc::new(Schema::new(vec![
        nullable("ints", DataType::Int64),
        nullable("strings", DataType::Utf8View),
    ]));
    let batch =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(ints), Arc::new(strings)]).unwrap();
    (schema, batch)
}

#[test]
fn leased_buffers_live_until_the_last_polars_series_is_dropped() {
    let alive = Arc::new(AtomicUsize::new(0));
    let (schema, batch) = leased_batch(&alive);
    let owners = alive.load(Ordering::SeqCst);
    assert!(owners >= 3);

    let df = record_batches_to_dataframe(&schema, &[batch]).unwrap();
    drop(schema);
    // Only Polars holds the buffers now.
    assert_eq!(alive.load(Ordering::SeqCst), owners);

    let ints = series(&df, "ints").clone();
    let strings_slice = series(&df, "strings").slice(1, 2);
    drop(df);
    assert_eq!(
        alive.load(Ordering::SeqCst),
        owners,
        "dropped while a Series clone lives"
    );
    assert_eq!(ints.i64().unwrap().get(3), Some(40));

    drop(ints);
    // The strings' owners stay: the slice still uses them.
    assert!(alive.load(Ordering::SeqCst) > 0);
    assert_eq!(strings_slice.str().unwrap().get(0), Some(LONG[1]));
    drop(strings_slice);
    assert_eq!(
        alive.load(Ordering::SeqCst),
        0,
        "polars leaked the arrow-rs buffers"
    );
}

#[test]
fn leased_buffers_live_until_the_last_exported_arrow_array_is_dropped() {
    let alive = Arc::new(AtomicUsize::new(0));
    let (schema, batch) = leased_batch(&alive);
    let owners = alive.load(Ordering::SeqCst);
    let df = record_batches_to_dataframe(&schema, &[batch]).unwrap();
    let (_schema, out) = dataframe_to_record_batches(&df).unwrap();
    drop(df);
    assert_eq!(alive.load(Ordering::SeqCst), owners);
    let column = out[0].column(1).clone();
    drop(out);
    // The ints' owner went with the last array using it; the strings' owners stay.
    assert_eq!(alive.load(Ordering::SeqCst), owners - 1);
    drop(column);
    assert_eq!(alive.load(Ordering::SeqCst), 0);
}

#[test]
fn a_utf8_column_keeps_its_arrow_buffers_alive_as_its_views_point_into_them() {
    // Utf8 -> Utf8View makes new views that point into the string bytes
    // (polars-compute `binary_to_binview`).
    let alive = Arc::new(AtomicUsize::new(0));
    let offsets: Vec<u8> = [0i32, 33, 33, 34]
        .iter()
        .flat_map(|v| v.to_ne_bytes())
        .collect();
    let offsets_buffer = leased_buffer(&offsets, &alive);
    let mut bytes = LONG[0].as_bytes().to_vec();
    bytes.push(b's');
    let values = leased_buffer(&bytes, &alive);
    let array = StringArray::try_new(
        arrow_buffer::OffsetBuffer::new(ScalarBuffer::new(offsets_buffer, 0, 4)),
        values,
        Some(NullBuffer::from(vec![true, false, true])),
    )
    .unwrap();
    let schema = Arc::new(Schema::new(vec![nullable("s", DataType::Utf8)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(array)]).unwrap();
    let df = record_batches_to_dataframe(&schema, &[batch]).unwrap();
    // The views are new, but they point into the arrow-rs string bytes, and polars holds every
    // buffer of an imported array through one owner (the whole C array): nothing is released.
    assert_eq!(alive.load(Ordering::SeqCst), 2);
    assert_eq!(series(&df, "s").str().unwrap().get(0), Some(LONG[0]));
    drop(df);
    assert_eq!(alive.load(Ordering::SeqCst), 0);
}

// ---------------------------------------------------------------------------------------------
// Round trips and chunking
// ---------------------------------------------------------------------------------------------

#[test]
fn arrow_to_polars_to_arrow_keeps_every_type_and_value() {
    let (schema, batches) = batches_of(all_columns, &[9, 4, 11]);
    let df = record_batches_to_dataframe(&schema, &batches).unwrap();
    assert_eq!(df.height(), 24);
    let (out_schema, out) = dataframe_to_record_batches(&df).unwrap();
    for (expected, found) in schema.fields().iter().zip(out_schema.fields()) {
        assert_eq!(expected.name(), found.name());
        assert_eq!(
            expected.data_type(),
            found.data_type(),
            "`{}`",
            expected.name()
        );
        assert!(found.is_nullable());
    }
    assert_batches_equal(&batches, &out);
}

#[test]
fn only_polars_dtype_metadata_is_exported() {
    let (schema, batches) = batches_of(all_columns, &[3]);
    let with_user_metadata = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| {
                f.as_ref()
                    .clone()
                    .with_metadata(std::collections::HashMap::from([(
                        "owner".to_string(),
                        "desk-7".to_string(),
                    )]))
            })
            .collect::<Vec<_>>(),
    ));
    let batches: Vec<_> = batches
        .into_iter()
        .map(|b| b.with_schema(with_user_metadata.clone()).unwrap())
        .collect();
    let df = record_batches_to_dataframe(&with_user_metadata, &batches).unwrap();
    let (out_schema, _) = dataframe_to_record_batches(&df).unwrap();
    for field in out_schema.fields() {
        let keys: Vec<_> = field.metadata().keys().cloned().collect();
        if field.name() == "cat" {
            assert_eq!(keys, ["_PL_CATEGORICAL2"]);
        } else {
            assert!(keys.is_empty(), "`{}` has {keys:?}", field.name());
        }
    }
}

#[test]
fn no_batches_give_an_empty_frame_with_the_schema_columns() {
    let (schema, _) = batches_of(all_columns, &[]);
    let df = record_batches_to_dataframe(&schema, &[]).unwrap();
    assert_eq!(df.height(), 0);
    assert_eq!(df.width(), schema.fields().len());
    let (out_schema, _) = dataframe_to_record_batches(&df).unwrap();
    for (expected, found) in schema.fields().iter().zip(out_schema.fields()) {
        assert_eq!(
            expected.data_type(),
            found.data_type(),
            "`{}`",
            expected.name()
        );
    }
}

#[test]
fn empty_batches_are_kept_as_empty_chunks() {
    let (schema, batches) = batches_of(native_columns, &[0, 3, 0]);
    let df = record_batches_to_dataframe(&schema, &batches).unwrap();
    let (_, out) = dataframe_to_record_batches(&df).unwrap();
    assert_batches_equal(&batches, &out);
}

#[test]
fn misaligned_chunks_are_cut_by_slicing_not_copied() {
    let mut a = Series::new("a".into(), &[1i64, 2, 3]);
    a.append(&Series::new("a".into(), &[4i64, 5])).unwrap();
    let mut b = Series::new("b".into(), &[Some(LONG[0])]);
    b.append(&Series::new(
        "b".into(),
        &[None, Some("x"), Some(LONG[1]), Some("y")],
    ))
    .unwrap();
    let df = DataFrame::new(5, vec![a.into_column(), b.into_column()]).unwrap();
    let (_, out) = dataframe_to_record_batches(&df).unwrap();
    let rows: Vec<usize> = out.iter().map(RecordBatch::num_rows).collect();
    assert_eq!(rows, [1, 2, 2]);

    let a_values = series(&df, "a").chunks()[0].as_ref();
    let a_ptr = polars_ptrs_of(a_values)[0];
    // Batch 1 is rows 1..3 of `a`'s first chunk: same buffer, offset 1.
    let sliced = out[1].column(0).to_data();
    let first_value = sliced.buffers()[0].as_ptr() as usize + sliced.offset() * size_of::<i64>();
    assert_eq!(first_value, a_ptr + size_of::<i64>());

    let back = record_batches_to_dataframe(&out[0].schema(), &out).unwrap();
    assert!(back.equals_missing(&df));
}

#[test]
fn a_frame_without_columns_exports_one_batch_of_its_height() {
    let df = DataFrame::new(7, vec![]).unwrap();
    let (schema, out) = dataframe_to_record_batches(&df).unwrap();
    assert!(schema.fields().is_empty());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].num_rows(), 7);
}

#[test]
fn a_batch_with_a_different_type_is_refused() {
    let (schema, _) = batches_of(native_columns, &[]);
    let other = Arc::new(Schema::new(vec![nullable("x", DataType::Int64)]));
    let batch = RecordBatch::try_new(other, vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
    let err = record_batches_to_dataframe(&schema, &[batch]).unwrap_err();
    assert!(
        matches!(err, FfiError::SchemaMismatch { batch: 0, .. }),
        "{err}"
    );
}

#[test]
fn int128_export_fails_with_an_arrow_import_error() {
    let s = Series::new("big".into(), &[1i64, 2])
        .cast(&PlDataType::Int128)
        .unwrap();
    let df = DataFrame::new(2, vec![s.into_column()]).unwrap();
    let err = dataframe_to_record_batches(&df).unwrap_err();
    assert!(matches!(err, FfiError::ArrowImport { .. }), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Property: random frames of mixed dtypes with nulls round-trip exactly
// ---------------------------------------------------------------------------------------------

fn random_frame(picks: &[usize], lens: &[usize], null_mask: u64) -> (SchemaRef, Vec<RecordBatch>) {
    let template = all_columns(0, 0);
    let chosen: Vec<usize> = picks.iter().map(|p| p % template.len()).collect();
    let column_set = |seed: usize, len: usize| -> Vec<(Field, ArrayRef)> {
        let all = all_columns(seed.wrapping_add(null_mask as usize % 5), len);
        chosen
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let (field, array) = all[c].clone();
                (
                    Field::new(
                        format!("c{i}_{}", field.name()),
                        field.data_type().clone(),
                        true,
                    ),
                    array,
                )
            })
            .collect()
    };
    batches_of(column_set, lens)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_frames_of_mixed_dtypes_round_trip_exactly(
        picks in proptest::collection::vec(0usize..64, 1..8),
        lens in proptest::collection::vec(0usize..40, 0..5),
        null_mask in any::<u64>(),
    ) {
        let (schema, batches) = random_frame(&picks, &lens, null_mask);
        let df = record_batches_to_dataframe(&schema, &batches).unwrap();
        prop_assert_eq!(df.height(), lens.iter().sum::<usize>());
        let (out_schema, out) = dataframe_to_record_batches(&df).unwrap();
        for (e, f) in schema.fields().iter().zip(out_schema.fields()) {
            prop_assert_eq!(e.data_type(), f.data_type());
        }
        let only_null = schema.fields().iter().all(|f| f.data_type() == &DataType::Null);
        if batches.is_empty() {
            // An empty frame has one empty chunk per column.
            prop_assert!(out.iter().all(|b| b.num_rows() == 0));
        } else if only_null {
            // Polars keeps a Null column as one chunk: the batch boundaries are gone.
            prop_assert_eq!(out.iter().map(RecordBatch::num_rows).sum::<usize>(), df.height());
        } else {
            assert_batches_equal(&batches, &out);
        }
        let back = record_batches_to_dataframe(&out_schema, &out).unwrap();
        prop_assert!(back.equals_missing(&df));
    }
}
