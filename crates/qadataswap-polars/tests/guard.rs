//! Every Arrow type on the way to Polars either arrives with exactly the written values, or is
//! refused before Polars sees it with an error naming the column (`qadataswap_polars::guard`).

use std::sync::Arc;

use arrow_array::types::{Int16Type, Int32Type, Int8Type, UInt32Type};
use arrow_array::{
    Array, ArrayRef, DictionaryArray, FixedSizeBinaryArray, FixedSizeListArray, Int32Array,
    Int64Array, IntervalDayTimeArray, IntervalMonthDayNanoArray, IntervalYearMonthArray,
    LargeListArray, ListArray, ListViewArray, RecordBatch, RunArray, StructArray, UnionArray,
};
use arrow_buffer::{IntervalDayTime, IntervalMonthDayNano, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema, TimeUnit, UnionFields};
use proptest::prelude::*;
use qadataswap_polars::ffi::{dataframe_to_record_batches, record_batches_to_dataframe, FfiError};
use qadataswap_polars::guard::GuardError;

/// The leaf types: every scalar Arrow type, built from small integers by a cast.
fn leaf_types() -> Vec<DataType> {
    use DataType::*;
    vec![
        Boolean,
        Int8,
        Int16,
        Int32,
        Int64,
        UInt8,
        UInt16,
        UInt32,
        UInt64,
        Float16,
        Float32,
        Float64,
        Utf8,
        LargeUtf8,
        Utf8View,
        Binary,
        LargeBinary,
        BinaryView,
        Date32,
        Date64,
        Time32(TimeUnit::Second),
        Time32(TimeUnit::Millisecond),
        Time64(TimeUnit::Microsecond),
        Time64(TimeUnit::Nanosecond),
        Timestamp(TimeUnit::Second, None),
        Timestamp(TimeUnit::Millisecond, Some("+01:00".into())),
        Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Timestamp(TimeUnit::Nanosecond, None),
        Duration(TimeUnit::Second),
        Duration(TimeUnit::Millisecond),
        Duration(TimeUnit::Microsecond),
        Duration(TimeUnit::Nanosecond),
        Decimal32(9, 2),
        Decimal64(18, 3),
        Decimal128(38, 4),
        Decimal256(40, 2),
        Null,
    ]
}

/// `values` (small, with nulls) as an array of the leaf type `data_type`.
fn leaf(data_type: &DataType, values: &[Option<i16>]) -> ArrayRef {
    // Times of day are never negative (a negative one is not a valid Arrow value).
    let time = matches!(data_type, DataType::Time32(_) | DataType::Time64(_));
    if data_type == &DataType::Null {
        return arrow_array::new_null_array(data_type, values.len());
    }
    let ints: Int64Array = values
        .iter()
        .map(|v| {
            v.map(|v| {
                if time {
                    i64::from(v).abs()
                } else {
                    i64::from(v)
                }
            })
        })
        .collect();
    let source: ArrayRef = Arc::new(ints);
    let via = match data_type {
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            arrow_cast::cast(&source, &DataType::Utf8).unwrap()
        }
        DataType::Time32(_) | DataType::Date32 => {
            arrow_cast::cast(&source, &DataType::Int32).unwrap()
        }
        _ => source,
    };
    let out = arrow_cast::cast(&via, data_type).unwrap();
    assert_eq!(out.data_type(), data_type);
    out
}

/// The non-leaf shapes a test column takes around a leaf array.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Plain,
    List,
    LargeList,
    FixedSizeList,
    Struct,
    StructWithNulls,
    Dictionary,
    Map,
}

const SHAPES: [Shape; 8] = [
    Shape::Plain,
    Shape::List,
    Shape::LargeList,
    Shape::FixedSizeList,
    Shape::Struct,
    Shape::StructWithNulls,
    Shape::Dictionary,
    Shape::Map,
];

fn wrap(shape: Shape, inner: ArrayRef, nulls: &[bool]) -> Option<ArrayRef> {
    let len = inner.len();
    let item = |a: &ArrayRef| Arc::new(Field::new("item", a.data_type().clone(), true));
    Some(match shape {
        Shape::Plain => inner,
        Shape::List => Arc::new(ListArray::new(
            item(&inner),
            OffsetBuffer::from_lengths([len / 2, len - len / 2]),
            inner,
            None,
        )),
        Shape::LargeList => Arc::new(LargeListArray::new(
            item(&inner),
            OffsetBuffer::from_lengths([len, 0]),
            inner,
            Some(NullBuffer::from(vec![true, false])),
        )),
        Shape::FixedSizeList => {
            let even = inner.slice(0, len - len % 2);
            Arc::new(FixedSizeListArray::new(item(&even), 2, even, None))
        }
        Shape::Struct | Shape::StructWithNulls => {
            let validity = matches!(shape, Shape::StructWithNulls)
                .then(|| NullBuffer::from(nulls.iter().map(|n| !n).collect::<Vec<_>>()));
            let field = Arc::new(Field::new("f", inner.data_type().clone(), true));
            Arc::new(StructArray::new(vec![field].into(), vec![inner], validity))
        }
        Shape::Dictionary => {
            // Polars takes string dictionaries (categoricals) and the values of other ones.
            let keys: Vec<Option<i16>> = (0..len)
                .map(|i| (!nulls[i]).then_some(((i * 7) % len.max(1)) as i16))
                .collect();
            let keys = arrow_array::PrimitiveArray::<Int16Type>::from(keys);
            Arc::new(DictionaryArray::<Int16Type>::try_new(keys, inner).ok()?)
        }
        Shape::Map => {
            let keys: ArrayRef = Arc::new(arrow_array::StringArray::from(
                (0..len).map(|i| format!("k{i}")).collect::<Vec<_>>(),
            ));
            let entries = StructArray::new(
                vec![
                    Arc::new(Field::new("keys", DataType::Utf8, false)),
                    Arc::new(Field::new("values", inner.data_type().clone(), true)),
                ]
                .into(),
                vec![keys, inner],
                None,
            );
            let field = Arc::new(Field::new("entries", entries.data_type().clone(), false));
            Arc::new(
                arrow_array::MapArray::try_new(
                    field,
                    OffsetBuffer::from_lengths([len, 0]),
                    entries,
                    None,
                    false,
                )
                .ok()?,
            )
        }
    })
}

/// Types built by hand (no cast reaches them): intervals, unions, run-end encoding, views.
fn special_columns(len: usize) -> Vec<ArrayRef> {
    let ints = Int32Array::from((0..len as i32).collect::<Vec<_>>());
    vec![
        Arc::new(IntervalYearMonthArray::from(vec![Some(3); len])),
        Arc::new(IntervalDayTimeArray::from(vec![
            IntervalDayTime::new(1, 2);
            len
        ])),
        Arc::new(IntervalMonthDayNanoArray::from(vec![
            IntervalMonthDayNano::new(1, 2, 3);
            len
        ])),
        Arc::new(
            UnionArray::try_new(
                UnionFields::try_new(vec![0], vec![Field::new("a", DataType::Int32, true)])
                    .unwrap(),
                ScalarBuffer::from(vec![0i8; len]),
                None,
                vec![Arc::new(ints.clone()) as ArrayRef],
            )
            .unwrap(),
        ),
        Arc::new(
            RunArray::<Int32Type>::try_new(
                &Int32Array::from(vec![len.max(1) as i32]),
                &Int32Array::from(vec![7]),
            )
            .unwrap()
            .slice(0, len),
        ),
        Arc::new(ListViewArray::new(
            Arc::new(Field::new("item", DataType::Int32, true)),
            ScalarBuffer::from(vec![0i32; len]),
            ScalarBuffer::from(vec![0i32; len]),
            Arc::new(ints),
            None,
        )),
        Arc::new(FixedSizeBinaryArray::try_from_iter((0..len).map(|i| [i as u8, 1])).unwrap()),
        Arc::new(DictionaryArray::<Int8Type>::new(
            arrow_array::PrimitiveArray::from(vec![0i8; len]),
            Arc::new(arrow_array::StringArray::from(vec!["x"])),
        )),
        Arc::new(DictionaryArray::<UInt32Type>::new(
            arrow_array::PrimitiveArray::from(vec![0u32; len]),
            Arc::new(arrow_array::StringViewArray::from(vec!["y"])),
        )),
    ]
}

/// Whether `data_type` holds a type the guard refuses (anywhere inside).
fn refused(data_type: &DataType) -> bool {
    qadataswap_polars::guard::check_schema(&Schema::new(vec![Field::new(
        "c",
        data_type.clone(),
        true,
    )]))
    .is_err()
}

fn contains(data_type: &DataType, wanted: &dyn Fn(&DataType) -> bool) -> bool {
    if wanted(data_type) {
        return true;
    }
    match data_type {
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::FixedSizeList(f, _)
        | DataType::Map(f, _) => contains(f.data_type(), wanted),
        DataType::Struct(fs) => fs.iter().any(|f| contains(f.data_type(), wanted)),
        DataType::Dictionary(_, v) => contains(v, wanted),
        _ => false,
    }
}

/// Imports `array` as column `c` of one batch and checks the promise: refused with an error
/// naming `c` (by the guard for what it refuses, by Polars' own clean error otherwise), or the
/// same values back.
fn check(array: ArrayRef) -> Result<(), TestCaseError> {
    let data_type = array.data_type().clone();
    let schema = Arc::new(Schema::new(vec![Field::new("c", data_type.clone(), true)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![array.clone()]).unwrap();
    match record_batches_to_dataframe(&schema, &[batch]) {
        Err(FfiError::Guard(GuardError::UnsupportedType { column, .. })) => {
            prop_assert_eq!(column, "c");
            prop_assert!(
                refused(&data_type),
                "{} refused but not by the rules",
                data_type
            );
        }
        Err(e @ FfiError::PolarsImport { .. }) => {
            prop_assert!(!refused(&data_type), "{} reached Polars: {}", data_type, e);
            prop_assert!(e.to_string().contains("column `c`"), "{}", e);
            // Only dictionaries whose values Polars cannot key by may get here.
            prop_assert!(
                contains(&data_type, &|t| matches!(t, DataType::Dictionary(..))),
                "{} rejected by Polars: {}",
                data_type,
                e
            );
        }
        Err(e) => prop_assert!(false, "{}: unexpected error {}", data_type, e),
        Ok(df) => {
            prop_assert!(
                !refused(&data_type),
                "{} should have been refused",
                data_type
            );
            let (_, back) = dataframe_to_record_batches(&df).unwrap();
            let back = back
                .first()
                .map(|b| b.column(0).clone())
                .unwrap_or_else(|| arrow_array::new_empty_array(&data_type));
            prop_assert!(
                same_values(&array, &back),
                "{} changed on its way through Polars: wrote {:?}, Polars holds {:?}",
                data_type,
                array,
                back
            );
        }
    }
    Ok(())
}

/// Whether `back` (what Polars exported, in its own types) holds the values of `written`:
/// equal after casting either one to the other's type, or printed the same row by row.
fn same_values(written: &ArrayRef, back: &ArrayRef) -> bool {
    if let DataType::Map(entries, _) = written.data_type() {
        // Polars holds a map as the list of entries it physically is.
        let as_list = written
            .to_data()
            .into_builder()
            .data_type(DataType::List(entries.clone()))
            .build()
            .unwrap();
        return same_values(&arrow_array::make_array(as_list), back);
    }
    if let Ok(cast) = arrow_cast::cast(back, written.data_type()) {
        if cast.to_data() == written.to_data() {
            return true;
        }
    }
    if let Ok(cast) = arrow_cast::cast(written, back.data_type()) {
        if cast.to_data() == back.to_data() {
            return true;
        }
    }
    rows(written).is_some() && rows(written) == rows(back)
}

fn rows(array: &ArrayRef) -> Option<Vec<String>> {
    use arrow_cast::display::{ArrayFormatter, FormatOptions};
    let options = FormatOptions::default().with_null("<null>");
    let formatter = ArrayFormatter::try_new(array.as_ref(), &options).ok()?;
    Some(
        (0..array.len())
            .map(|i| formatter.value(i).to_string())
            .collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_arrow_type_reaches_polars_with_its_values_or_is_refused_naming_the_column(
        leaf_index in 0usize..leaf_types().len(),
        shape_index in 0usize..SHAPES.len(),
        values in proptest::collection::vec(proptest::option::weighted(0.8, -999i16..999), 1..12),
    ) {
        let data_type = &leaf_types()[leaf_index];
        let nulls: Vec<bool> = values.iter().map(Option::is_none).collect();
        let inner = leaf(data_type, &values);
        if let Some(array) = wrap(SHAPES[shape_index], inner, &nulls) {
            check(array)?;
        }
    }

    #[test]
    fn hand_built_types_reach_polars_with_their_values_or_are_refused(
        which in 0usize..9,
        len in 1usize..6,
        shape_index in 0usize..SHAPES.len(),
    ) {
        let inner = special_columns(len).swap_remove(which);
        let nulls = vec![false; len];
        if len > 0 {
            if let Some(array) = wrap(SHAPES[shape_index], inner, &nulls) {
                check(array)?;
            }
        }
    }
}

#[test]
fn decimal32_and_decimal64_arrive_widened_with_their_exact_values() {
    for data_type in [DataType::Decimal32(5, 2), DataType::Decimal64(12, 2)] {
        let array = leaf(&data_type, &[Some(-279), None, Some(999)]);
        let schema = Arc::new(Schema::new(vec![Field::new("d", data_type.clone(), true)]));
        let batch = RecordBatch::try_new(schema.clone(), vec![array.clone()]).unwrap();
        let df = record_batches_to_dataframe(&schema, &[batch]).unwrap();
        let (_, back) = dataframe_to_record_batches(&df).unwrap();
        let widened = back[0].column(0);
        assert!(matches!(widened.data_type(), DataType::Decimal128(_, 2)));
        assert_eq!(
            arrow_cast::cast(widened, &data_type).unwrap().to_data(),
            array.to_data()
        );
    }
}
