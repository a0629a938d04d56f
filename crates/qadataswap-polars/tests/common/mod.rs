//! Test data and buffer-address helpers shared by the integration tests (a copy of the helpers
//! of `tests/ffi.rs`).
#![allow(dead_code)]

use std::sync::Arc;

use arrow_array::builder::{GenericListBuilder, StringViewBuilder};
use arrow_array::types::{Float64Type, Int16Type, Int32Type};
use arrow_array::{
    Array, ArrayRef, BinaryViewArray, BooleanArray, Date32Array, Decimal128Array, DictionaryArray,
    DurationMicrosecondArray, DurationMillisecondArray, DurationNanosecondArray,
    FixedSizeListArray, Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, Int8Array,
    LargeListArray, NullArray, RecordBatch, StringViewArray, StructArray, Time64NanosecondArray,
    TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray, UInt16Array,
    UInt32Array, UInt64Array, UInt8Array,
};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use polars_arrow::array::{
    Array as PlArray, BinaryArray as PlBinaryArray, BinaryViewArray as PlBinaryViewArray,
    BooleanArray as PlBooleanArray, DictionaryArray as PlDictionaryArray,
    FixedSizeListArray as PlFixedSizeListArray, ListArray as PlListArray,
    PrimitiveArray as PlPrimitiveArray, StructArray as PlStructArray, Utf8Array as PlUtf8Array,
    Utf8ViewArray as PlUtf8ViewArray,
};
use polars_arrow::datatypes::PhysicalType;

macro_rules! primitive_ptr {
    ($array:expr, $($t:ty),*) => {{
        let any = $array.as_any();
        let mut found = None;
        $(
            if let Some(a) = any.downcast_ref::<PlPrimitiveArray<$t>>() {
                found = Some(a.values().as_ptr() as usize);
            }
        )*
        found.expect("a primitive type this test knows")
    }};
}

/// Start addresses of every buffer of a polars-arrow array, children and dictionary included.
pub fn polars_ptrs(array: &dyn PlArray, out: &mut Vec<usize>) {
    polars_ptrs_but(array, out, false);
}

/// As [`polars_ptrs`], leaving out the validity bitmaps of the fields of a struct that has
/// nulls (Polars rebuilds them on import: see the crate docs).
pub fn polars_ptrs_lenient(array: &dyn PlArray, out: &mut Vec<usize>) {
    polars_ptrs_but(array, out, true);
}

fn polars_ptrs_but(array: &dyn PlArray, out: &mut Vec<usize>, lenient: bool) {
    polars_ptrs_inner(array, out, lenient, false);
}

fn polars_ptrs_inner(
    array: &dyn PlArray,
    out: &mut Vec<usize>,
    lenient: bool,
    skip_validity: bool,
) {
    // A Null array's "validity" is Polars' shared all-zero bitmap, not a buffer of the data.
    let is_null = array.dtype().to_physical_type() == PhysicalType::Null;
    if array.null_count() > 0 && !skip_validity && !is_null {
        if let Some(validity) = array.validity() {
            out.push(validity.as_slice().0.as_ptr() as usize);
        }
    }
    let any = array.as_any();
    match array.dtype().to_physical_type() {
        PhysicalType::Null => {}
        PhysicalType::Boolean => {
            let a = any.downcast_ref::<PlBooleanArray>().unwrap();
            out.push(a.values().as_slice().0.as_ptr() as usize);
        }
        PhysicalType::Primitive(_) => {
            if !array.is_empty() {
                out.push(primitive_ptr!(
                    array, i8, i16, i32, i64, i128, u8, u16, u32, u64, f32, f64
                ));
            }
        }
        PhysicalType::BinaryView => {
            let a = any.downcast_ref::<PlBinaryViewArray>().unwrap();
            out.push(a.views().as_ptr() as usize);
            out.extend(a.data_buffers().iter().map(|b| b.as_ptr() as usize));
        }
        PhysicalType::Utf8View => {
            let a = any.downcast_ref::<PlUtf8ViewArray>().unwrap();
            out.push(a.views().as_ptr() as usize);
            out.extend(a.data_buffers().iter().map(|b| b.as_ptr() as usize));
        }
        PhysicalType::Utf8 => {
            let a = any.downcast_ref::<PlUtf8Array<i32>>().unwrap();
            out.push(a.offsets().buffer().as_ptr() as usize);
            out.push(a.values().as_ptr() as usize);
        }
        PhysicalType::Binary => {
            let a = any.downcast_ref::<PlBinaryArray<i32>>().unwrap();
            out.push(a.offsets().buffer().as_ptr() as usize);
            out.push(a.values().as_ptr() as usize);
        }
        PhysicalType::LargeList => {
            let a = any.downcast_ref::<PlListArray<i64>>().unwrap();
            out.push(a.offsets().buffer().as_ptr() as usize);
            polars_ptrs_inner(a.values().as_ref(), out, lenient, false);
        }
        PhysicalType::FixedSizeList => {
            let a = any.downcast_ref::<PlFixedSizeListArray>().unwrap();
            polars_ptrs_inner(a.values().as_ref(), out, lenient, false);
        }
        PhysicalType::Struct => {
            let a = any.downcast_ref::<PlStructArray>().unwrap();
            let skip = lenient && a.null_count() > 0;
            for child in a.values() {
                polars_ptrs_inner(child.as_ref(), out, lenient, skip);
            }
        }
        PhysicalType::Dictionary(_) => {
            if let Some(a) = any.downcast_ref::<PlDictionaryArray<u32>>() {
                polars_ptrs_inner(a.keys(), out, lenient, false);
                polars_ptrs_inner(a.values().as_ref(), out, lenient, false);
            } else if let Some(a) = any.downcast_ref::<PlDictionaryArray<u8>>() {
                polars_ptrs_inner(a.keys(), out, lenient, false);
                polars_ptrs_inner(a.values().as_ref(), out, lenient, false);
            }
        }
        other => panic!("test does not know physical type {other:?}"),
    }
}

pub fn polars_ptrs_of(array: &dyn PlArray) -> Vec<usize> {
    let mut out = Vec::new();
    polars_ptrs(array, &mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// Test data: one column per dtype Polars holds natively, with nulls
// ---------------------------------------------------------------------------------------------

pub const LONG: [&str; 4] = [
    "a string longer than twelve bytes",
    "another string that is not inlined",
    "third long string, also out of line",
    "x",
];

pub fn nullable(name: &str, data_type: DataType) -> Field {
    Field::new(name, data_type, true)
}

/// `(field, array)` for every dtype Polars stores without a copy; `seed` varies the values.
pub fn native_columns(seed: usize, len: usize) -> Vec<(Field, ArrayRef)> {
    let pick = |i: usize| (i + seed) % 5 != 1; // roughly one null in five
    let ints = |m: i64| -> Vec<Option<i64>> {
        (0..len)
            .map(|i| pick(i).then_some((i as i64 + seed as i64) * m))
            .collect()
    };
    let strings: Vec<Option<&str>> = (0..len)
        .map(|i| pick(i).then_some(LONG[(i + seed) % LONG.len()]))
        .collect();
    let binaries: Vec<Option<&[u8]>> = strings.iter().map(|s| s.map(str::as_bytes)).collect();

    let mut columns: Vec<(Field, ArrayRef)> = vec![
        (
            nullable("null", DataType::Null),
            Arc::new(NullArray::new(len)),
        ),
        (
            nullable("bool", DataType::Boolean),
            Arc::new(BooleanArray::from(
                (0..len)
                    .map(|i| pick(i).then_some(i % 3 == 0))
                    .collect::<Vec<_>>(),
            )),
        ),
        (
            nullable("i8", DataType::Int8),
            Arc::new(Int8Array::from_iter(
                ints(1).iter().map(|v| v.map(|v| v as i8)),
            )),
        ),
        (
            nullable("i16", DataType::Int16),
            Arc::new(Int16Array::from_iter(
                ints(-7).iter().map(|v| v.map(|v| v as i16)),
            )),
        ),
        (
            nullable("i32", DataType::Int32),
            Arc::new(Int32Array::from_iter(
                ints(-1001).iter().map(|v| v.map(|v| v as i32)),
            )),
        ),
        (
            nullable("i64", DataType::Int64),
            Arc::new(Int64Array::from(ints(1 << 40))),
        ),
        (
            nullable("u8", DataType::UInt8),
            Arc::new(UInt8Array::from_iter(
                ints(3).iter().map(|v| v.map(|v| v as u8)),
            )),
        ),
        (
            nullable("u16", DataType::UInt16),
            Arc::new(UInt16Array::from_iter(
                ints(300).iter().map(|v| v.map(|v| v as u16)),
            )),
        ),
        (
            nullable("u32", DataType::UInt32),
            Arc::new(UInt32Array::from_iter(
                ints(70_000).iter().map(|v| v.map(|v| v as u32)),
            )),
        ),
        (
            nullable("u64", DataType::UInt64),
            Arc::new(UInt64Array::from_iter(
                ints(1 << 50).iter().map(|v| v.map(|v| v as u64)),
            )),
        ),
        (
            nullable("f32", DataType::Float32),
            Arc::new(Float32Array::from_iter(
                ints(1).iter().map(|v| v.map(|v| v as f32 / 3.0)),
            )),
        ),
        (
            nullable("f64", DataType::Float64),
            Arc::new(Float64Array::from_iter(
                ints(1).iter().map(|v| v.map(|v| v as f64 / 7.0)),
            )),
        ),
        (
            nullable("str", DataType::Utf8View),
            Arc::new(StringViewArray::from(strings.clone())),
        ),
        (
            nullable("bin", DataType::BinaryView),
            Arc::new(BinaryViewArray::from(binaries)),
        ),
        (
            nullable("date", DataType::Date32),
            Arc::new(Date32Array::from_iter(
                ints(365).iter().map(|v| v.map(|v| v as i32)),
            )),
        ),
        (
            nullable("ts_ms_paris", timestamp_ms_paris()),
            Arc::new(
                TimestampMillisecondArray::from(ints(86_400_000)).with_timezone("Europe/Paris"),
            ),
        ),
        (
            nullable(
                "ts_us",
                DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, None),
            ),
            Arc::new(TimestampMicrosecondArray::from(ints(1_000_001))),
        ),
        (
            nullable(
                "ts_ns_utc",
                DataType::Timestamp(arrow_schema::TimeUnit::Nanosecond, Some("UTC".into())),
            ),
            Arc::new(TimestampNanosecondArray::from(ints(1_000_000_007)).with_timezone("UTC")),
        ),
        (
            nullable(
                "dur_ms",
                DataType::Duration(arrow_schema::TimeUnit::Millisecond),
            ),
            Arc::new(DurationMillisecondArray::from(ints(-13))),
        ),
        (
            nullable(
                "dur_us",
                DataType::Duration(arrow_schema::TimeUnit::Microsecond),
            ),
            Arc::new(DurationMicrosecondArray::from(ints(17))),
        ),
        (
            nullable(
                "dur_ns",
                DataType::Duration(arrow_schema::TimeUnit::Nanosecond),
            ),
            Arc::new(DurationNanosecondArray::from(ints(19))),
        ),
        (
            nullable("time", DataType::Time64(arrow_schema::TimeUnit::Nanosecond)),
            Arc::new(Time64NanosecondArray::from(ints(1_000_000_000))),
        ),
        (
            nullable("dec", DataType::Decimal128(12, 3)),
            Arc::new(
                Decimal128Array::from_iter(ints(12_345).iter().map(|v| v.map(i128::from)))
                    .with_precision_and_scale(12, 3)
                    .unwrap(),
            ),
        ),
    ];

    // LargeList<Int32>: null entries are empty (as Polars writes them).
    let lists: Vec<Option<Vec<Option<i32>>>> = (0..len)
        .map(|i| {
            pick(i).then(|| {
                (0..(i + seed) % 4)
                    .map(|j| (j != 1).then_some((i * 10 + j) as i32))
                    .collect()
            })
        })
        .collect();
    let list = LargeListArray::from_iter_primitive::<Int32Type, _, _>(lists);
    columns.push((
        nullable("list_i32", list.data_type().clone()),
        Arc::new(list),
    ));

    // LargeList<Utf8View>
    let mut builder = GenericListBuilder::<i64, _>::new(StringViewBuilder::new());
    for i in 0..len {
        if pick(i) {
            for (j, value) in LONG.iter().enumerate().take((i + seed) % 3) {
                builder.values().append_option((j != 2).then_some(*value));
            }
            builder.append(true);
        } else {
            builder.append(false);
        }
    }
    let list = builder.finish();
    columns.push((
        nullable("list_str", list.data_type().clone()),
        Arc::new(list),
    ));

    // FixedSizeList<Float64, 2> = Polars Array(Float64, 2)
    let fixed = FixedSizeListArray::from_iter_primitive::<Float64Type, _, _>(
        (0..len).map(|i| pick(i).then(|| vec![Some(i as f64), (i % 2 == 0).then_some(0.5)])),
        2,
    );
    columns.push((
        nullable("arr_f64", fixed.data_type().clone()),
        Arc::new(fixed),
    ));

    // FixedSizeList<Int16, 3>
    let fixed = FixedSizeListArray::from_iter_primitive::<Int16Type, _, _>(
        (0..len).map(|i| pick(i).then(|| vec![Some(i as i16), None, Some(-(i as i16))])),
        3,
    );
    columns.push((
        nullable("arr_i16", fixed.data_type().clone()),
        Arc::new(fixed),
    ));

    // Struct{a: Int32, b: Utf8View}: fields null wherever the struct is (Polars' canonical form).
    let outer: Vec<bool> = (0..len).map(|i| (i + seed) % 4 != 2).collect();
    let a = Int32Array::from_iter((0..len).map(|i| (outer[i] && i % 3 != 0).then_some(i as i32)));
    let b = StringViewArray::from_iter((0..len).map(|i| outer[i].then_some(LONG[i % 4])));
    let fields = Fields::from(vec![
        nullable("a", DataType::Int32),
        nullable("b", DataType::Utf8View),
    ]);
    let strukt = StructArray::try_new(
        fields.clone(),
        vec![Arc::new(a), Arc::new(b)],
        Some(NullBuffer::from(outer)),
    )
    .unwrap();
    columns.push((
        nullable("struct", DataType::Struct(fields)),
        Arc::new(strukt),
    ));
    columns
}

pub fn timestamp_ms_paris() -> DataType {
    DataType::Timestamp(
        arrow_schema::TimeUnit::Millisecond,
        Some("Europe/Paris".into()),
    )
}

/// Dictionary<UInt32, Utf8View> in the form Polars exports a Categorical: keys numbered in order
/// of first appearance, only used values.
pub fn categorical_column(len: usize) -> (Field, ArrayRef) {
    const PATTERN: [Option<u32>; 8] = [
        Some(0),
        None,
        Some(1),
        Some(0),
        Some(2),
        Some(1),
        None,
        Some(2),
    ];
    let keys: Vec<Option<u32>> = (0..len).map(|i| PATTERN[i % PATTERN.len()]).collect();
    let used = keys.iter().flatten().max().map_or(0, |m| m + 1) as usize;
    let values =
        StringViewArray::from(vec!["red", "green", "a rather long category name"][..used].to_vec());
    let dict =
        DictionaryArray::try_new(UInt32Array::from(keys), Arc::new(values) as ArrayRef).unwrap();
    (nullable("cat", dict.data_type().clone()), Arc::new(dict))
}

pub fn all_columns(seed: usize, len: usize) -> Vec<(Field, ArrayRef)> {
    let mut columns = native_columns(seed, len);
    columns.push(categorical_column(len));
    columns
}

pub fn batches_of(
    columns: impl Fn(usize, usize) -> Vec<(Field, ArrayRef)>,
    lens: &[usize],
) -> (SchemaRef, Vec<RecordBatch>) {
    let fields: Vec<Field> = columns(0, 0).into_iter().map(|(f, _)| f).collect();
    let schema = Arc::new(Schema::new(fields));
    let batches = lens
        .iter()
        .enumerate()
        .map(|(seed, &len)| {
            let arrays = columns(seed, len).into_iter().map(|(_, a)| a).collect();
            RecordBatch::try_new(schema.clone(), arrays).unwrap()
        })
        .collect();
    (schema, batches)
}
