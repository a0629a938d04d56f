//! One table of Arrow buffer layouts: for each `DataType`, the buffers of its record batch node in the order
//! arrow-ipc writes and reads them, their widths, its children and how their lengths follow from its own, the type
//! parameters the reader refuses, and how this library writes it.
//!
//! The one-copy encoder (`onecopy::Body::plan`), its fallback test (`onecopy::unsupported_type`), and the reader's
//! schema and layout checks (`decode::check_schema`, `decode::LayoutWalk`) all read [`of`] rather than matching on
//! `DataType` each on its own: a new type is one arm of [`of`] (plus tests). A lookup is a `match` building a small
//! `Copy` value (no allocation, no map), cheap enough for every column of every frame.

use std::fmt;

use arrow_schema::{DataType, Field, Fields, IntervalUnit, UnionFields, UnionMode};

/// The width of an offsets buffer's entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Offset {
    I32,
    I64,
}

impl Offset {
    /// Bytes per offset.
    pub(crate) fn bytes(self) -> usize {
        match self {
            Offset::I32 => 4,
            Offset::I64 => 8,
        }
    }
}

/// One buffer of a node, in IPC order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Buf {
    /// The validity bitmap: one bit per row when the node counts nulls, else possibly empty. Not one of
    /// `ArrayData::buffers` (arrow-rs keeps it apart, as `nulls`).
    Validity,
    /// A union's validity bitmap, in metadata before V5 only (always empty; V5 writers leave it out).
    UnionValidityBeforeV5,
    /// One bit per row (boolean values).
    Bits,
    /// `width` bytes per row, read as elements of `elem` bytes (a whole number of them) at a multiple of `align`:
    /// values, dictionary keys, string views, union type ids and dense offsets, list-view offsets and sizes.
    Fixed {
        what: &'static str,
        width: usize,
        elem: usize,
        align: usize,
    },
    /// Rows + 1 offsets (none for an empty node); the first and last bound the range of the next [`Buf::Data`]
    /// or of the child ([`Children::ByOffsets`]).
    Offsets(Offset),
    /// The bytes the offsets index (any length).
    Data,
    /// The data buffers string views point into: as many as the record batch's next variadic buffer count.
    VariadicData,
}

/// A node's children and how their lengths follow from the node's (`len` rows at offset `eo` into the arrays).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Children<'a> {
    None,
    /// One child; its range is the first to the last offset (list, large list, map).
    ByOffsets(&'a Field),
    /// One child of any length, indexed by per-row offsets and sizes (list views).
    ByViews(&'a Field),
    /// One child of `size` values per row (fixed-size list).
    Repeated(&'a Field, usize),
    /// Children of the node's length, sliced along with it (arrow-rs slices a struct's children with it).
    Struct(&'a Fields),
    /// Sparse: children of the node's length at its offset; dense: children of any length (the offsets index them).
    Union(&'a UnionFields, UnionMode),
    /// Run ends and values, of the same length (the number of runs).
    RunEnd(&'a Field, &'a Field),
    /// Dictionary values: not in the node, they come in dictionary batches.
    Dictionary(&'a DataType),
}

impl<'a> Children<'a> {
    /// The children's types, in IPC order (dictionary values included).
    pub(crate) fn types(self) -> impl Iterator<Item = &'a DataType> {
        let (one, two, fields, union) = match self {
            Children::None => (None, None, None, None),
            Children::ByOffsets(f) | Children::ByViews(f) | Children::Repeated(f, _) => {
                (Some(f.data_type()), None, None, None)
            }
            Children::Struct(fs) => (None, None, Some(fs), None),
            Children::Union(fs, _) => (None, None, None, Some(fs)),
            Children::RunEnd(r, v) => (Some(r.data_type()), Some(v.data_type()), None, None),
            Children::Dictionary(v) => (Some(v), None, None, None),
        };
        one.into_iter()
            .chain(two)
            .chain(fields.into_iter().flatten().map(|f| f.data_type()))
            .chain(
                union
                    .into_iter()
                    .flat_map(|u| u.iter().map(|(_, f)| f.data_type())),
            )
    }
}

/// How this library writes a type (it reads every type of the table zero-copy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Support {
    /// The one-copy encoder lays it out.
    OneCopy,
    /// Frames holding it are written by arrow-ipc's `StreamWriter` (one counted copy).
    ArrowIpcWrite,
}

/// A type parameter the reader refuses in a schema: Arrow would turn it into a huge size or index tables with it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Refusal<'a> {
    FixedSizeBinaryWidth(i32),
    FixedSizeListSize(i32),
    Decimal { precision: u8, scale: i8, max: u8 },
    MapEntries(&'a DataType),
    RunEnds(&'a DataType),
    DictionaryKeys(&'a DataType),
}

impl fmt::Display for Refusal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::FixedSizeBinaryWidth(w) => write!(f, "fixed-size binary width {w}"),
            Refusal::FixedSizeListSize(n) => write!(f, "fixed-size list size {n}"),
            Refusal::Decimal {
                precision,
                scale,
                max,
            } => write!(
                f,
                "decimal precision {precision} / scale {scale} (precision 1..={max})"
            ),
            Refusal::MapEntries(t) => write!(
                f,
                "map entries of type {t} (a struct of key and value is required)"
            ),
            Refusal::RunEnds(t) => write!(f, "run ends of type {t}"),
            Refusal::DictionaryKeys(t) => write!(f, "dictionary keys of type {t}"),
        }
    }
}

/// Most buffers a node has in the table (variadic data buffers count as one entry).
const MAX_BUFFERS: usize = 3;

/// The layout of one type: see [`of`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout<'a> {
    buffers: [Buf; MAX_BUFFERS],
    count: usize,
    pub(crate) children: Children<'a>,
    /// Every row is null and the node has no buffers (the null type).
    pub(crate) all_null: bool,
    pub(crate) support: Support,
    pub(crate) refusal: Option<Refusal<'a>>,
}

impl<'a> Layout<'a> {
    fn new<const N: usize>(buffers: [Buf; N], children: Children<'a>) -> Layout<'a> {
        const { assert!(N <= MAX_BUFFERS) };
        let mut all = [Buf::Data; MAX_BUFFERS];
        all[..N].copy_from_slice(&buffers);
        Layout {
            buffers: all,
            count: N,
            children,
            all_null: false,
            support: Support::OneCopy,
            refusal: None,
        }
    }

    fn refuse_if(self, bad: bool, refusal: Refusal<'a>) -> Layout<'a> {
        Layout {
            refusal: bad.then_some(refusal),
            ..self
        }
    }

    /// The node's buffers, in IPC order.
    pub(crate) fn buffers(&self) -> &[Buf] {
        self.buffers.get(..self.count).unwrap_or(&[])
    }

    /// Whether the node takes a variadic buffer count.
    pub(crate) fn variadic(&self) -> bool {
        self.buffers().contains(&Buf::VariadicData)
    }
}

/// `width`-byte values, read as `width`-byte elements at a multiple of `align`.
fn values(width: usize, align: usize) -> Buf {
    Buf::Fixed {
        what: "values",
        width,
        elem: width,
        align,
    }
}

/// `width`-byte per-row entries named `what`, aligned to their width.
fn per_row(what: &'static str, width: usize) -> Buf {
    Buf::Fixed {
        what,
        width,
        elem: width,
        align: width,
    }
}

fn decimal<'a>(precision: u8, scale: i8, max: u8, width: usize) -> Layout<'a> {
    Layout::new(
        [Buf::Validity, values(width, width.min(16))],
        Children::None,
    )
    .refuse_if(
        precision == 0 || precision > max || (scale > 0 && scale as u8 > precision),
        Refusal::Decimal {
            precision,
            scale,
            max,
        },
    )
}

/// The layout of `dt` (arrow-ipc's `write_array_data` and `create_array` agree on it).
#[inline]
pub(crate) fn of(dt: &DataType) -> Layout<'_> {
    use Buf::{Bits, Data, Offsets, UnionValidityBeforeV5, Validity, VariadicData};
    let none = Children::None;
    match dt {
        DataType::Null => Layout {
            all_null: true,
            ..Layout::new([], none)
        },
        DataType::Boolean => Layout::new([Validity, Bits], none),
        DataType::Int8 | DataType::UInt8 => Layout::new([Validity, values(1, 1)], none),
        DataType::Int16 | DataType::UInt16 | DataType::Float16 => {
            Layout::new([Validity, values(2, 2)], none)
        }
        DataType::Int32
        | DataType::UInt32
        | DataType::Float32
        | DataType::Date32
        | DataType::Time32(_)
        | DataType::Interval(IntervalUnit::YearMonth) => {
            Layout::new([Validity, values(4, 4)], none)
        }
        DataType::Int64
        | DataType::UInt64
        | DataType::Float64
        | DataType::Date64
        | DataType::Time64(_)
        | DataType::Timestamp(_, _)
        | DataType::Duration(_)
        | DataType::Interval(IntervalUnit::DayTime) => Layout::new([Validity, values(8, 8)], none),
        // Two i32 and an i64: 16 bytes, 8-aligned.
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            Layout::new([Validity, values(16, 8)], none)
        }
        DataType::Decimal32(p, s) => decimal(*p, *s, 9, 4),
        DataType::Decimal64(p, s) => decimal(*p, *s, 18, 8),
        DataType::Decimal128(p, s) => decimal(*p, *s, 38, 16),
        DataType::Decimal256(p, s) => decimal(*p, *s, 76, 32),
        DataType::FixedSizeBinary(w) => {
            let bytes = Buf::Fixed {
                what: "values",
                width: *w as usize,
                elem: 1,
                align: 1,
            };
            Layout::new([Validity, bytes], none)
                .refuse_if(*w < 0, Refusal::FixedSizeBinaryWidth(*w))
        }
        DataType::Utf8 | DataType::Binary => {
            Layout::new([Validity, Offsets(Offset::I32), Data], none)
        }
        DataType::LargeUtf8 | DataType::LargeBinary => {
            Layout::new([Validity, Offsets(Offset::I64), Data], none)
        }
        DataType::Utf8View | DataType::BinaryView => {
            Layout::new([Validity, per_row("views", 16), VariadicData], none)
        }
        DataType::List(c) => Layout::new([Validity, Offsets(Offset::I32)], Children::ByOffsets(c)),
        DataType::LargeList(c) => {
            Layout::new([Validity, Offsets(Offset::I64)], Children::ByOffsets(c))
        }
        DataType::Map(c, _) => {
            Layout::new([Validity, Offsets(Offset::I32)], Children::ByOffsets(c)).refuse_if(
                !matches!(c.data_type(), DataType::Struct(kv) if kv.len() == 2),
                Refusal::MapEntries(c.data_type()),
            )
        }
        DataType::ListView(c) => Layout::new(
            [Validity, per_row("offsets", 4), per_row("sizes", 4)],
            Children::ByViews(c),
        ),
        DataType::LargeListView(c) => Layout::new(
            [Validity, per_row("offsets", 8), per_row("sizes", 8)],
            Children::ByViews(c),
        ),
        DataType::FixedSizeList(c, n) => {
            Layout::new([Validity], Children::Repeated(c, *n as usize))
                .refuse_if(*n < 0, Refusal::FixedSizeListSize(*n))
        }
        DataType::Struct(fs) => Layout::new([Validity], Children::Struct(fs)),
        DataType::Union(fs, UnionMode::Sparse) => Layout::new(
            [UnionValidityBeforeV5, per_row("type ids", 1)],
            Children::Union(fs, UnionMode::Sparse),
        ),
        DataType::Union(fs, UnionMode::Dense) => Layout::new(
            [
                UnionValidityBeforeV5,
                per_row("type ids", 1),
                per_row("offsets", 4),
            ],
            Children::Union(fs, UnionMode::Dense),
        ),
        DataType::Dictionary(k, v) => {
            let keys = per_row("keys", k.primitive_width().unwrap_or(8));
            Layout::new([Validity, keys], Children::Dictionary(v))
                .refuse_if(!k.is_dictionary_key_type(), Refusal::DictionaryKeys(k))
        }
        DataType::RunEndEncoded(r, v) => Layout {
            support: Support::ArrowIpcWrite,
            ..Layout::new([], Children::RunEnd(r, v)).refuse_if(
                !matches!(
                    r.data_type(),
                    DataType::Int16 | DataType::Int32 | DataType::Int64
                ),
                Refusal::RunEnds(r.data_type()),
            )
        },
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use arrow_array::{Array, ArrayRef, Int32Array, RunArray, StringArray};
    use arrow_data::{ArrayData, BufferSpec};
    use arrow_schema::{Field, TimeUnit, UnionFields};

    use super::*;
    use crate::golden::{all_types_batch, GoldenOptions};

    pub(crate) fn item(dt: DataType) -> Arc<Field> {
        Arc::new(Field::new("item", dt, true))
    }

    fn union_fields() -> UnionFields {
        UnionFields::try_new(
            [0, 1],
            [
                Field::new("a", DataType::Int32, true),
                Field::new("b", DataType::Utf8, true),
            ],
        )
        .unwrap()
    }

    fn map_entries() -> Arc<Field> {
        let kv = vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Int32, true),
        ];
        Arc::new(Field::new("entries", DataType::Struct(kv.into()), false))
    }

    /// One of every `DataType` variant (every interval unit and union mode).
    pub(crate) fn every_type() -> Vec<DataType> {
        let i = || item(DataType::Int32);
        vec![
            DataType::Null,
            DataType::Boolean,
            DataType::Int8,
            DataType::Int16,
            DataType::Int32,
            DataType::Int64,
            DataType::UInt8,
            DataType::UInt16,
            DataType::UInt32,
            DataType::UInt64,
            DataType::Float16,
            DataType::Float32,
            DataType::Float64,
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            DataType::Date32,
            DataType::Date64,
            DataType::Time32(TimeUnit::Second),
            DataType::Time64(TimeUnit::Nanosecond),
            DataType::Duration(TimeUnit::Millisecond),
            DataType::Interval(IntervalUnit::YearMonth),
            DataType::Interval(IntervalUnit::DayTime),
            DataType::Interval(IntervalUnit::MonthDayNano),
            DataType::Binary,
            DataType::FixedSizeBinary(5),
            DataType::LargeBinary,
            DataType::BinaryView,
            DataType::Utf8,
            DataType::LargeUtf8,
            DataType::Utf8View,
            DataType::List(i()),
            DataType::ListView(i()),
            DataType::FixedSizeList(i(), 3),
            DataType::LargeList(i()),
            DataType::LargeListView(i()),
            DataType::Struct(vec![Field::new("a", DataType::Int32, true)].into()),
            DataType::Union(union_fields(), UnionMode::Sparse),
            DataType::Union(union_fields(), UnionMode::Dense),
            DataType::Dictionary(Box::new(DataType::Int16), Box::new(DataType::Utf8)),
            DataType::Decimal32(9, 2),
            DataType::Decimal64(18, 2),
            DataType::Decimal128(38, 2),
            DataType::Decimal256(76, 2),
            DataType::Map(map_entries(), false),
            DataType::RunEndEncoded(
                Arc::new(Field::new("run_ends", DataType::Int32, false)),
                item(DataType::Utf8),
            ),
        ]
    }

    #[test]
    fn every_type_has_the_buffers_arrow_rs_lays_out_in_the_same_order_and_widths() {
        for dt in every_type() {
            let ours = of(&dt);
            let theirs = arrow_data::layout(&dt);
            assert!(ours.refusal.is_none(), "{dt}: a valid type refused");
            assert_eq!(
                ours.buffers().contains(&Buf::Validity),
                theirs.can_contain_null_mask,
                "{dt}: validity bitmap"
            );
            assert_eq!(ours.variadic(), theirs.variadic, "{dt}: variadic buffers");
            let fixed: Vec<Buf> = ours
                .buffers()
                .iter()
                .copied()
                .filter(|b| {
                    !matches!(
                        b,
                        Buf::Validity | Buf::UnionValidityBeforeV5 | Buf::VariadicData
                    )
                })
                .collect();
            assert_eq!(fixed.len(), theirs.buffers.len(), "{dt}: buffer count");
            for (b, spec) in fixed.iter().zip(&theirs.buffers) {
                match (*b, spec) {
                    (Buf::Bits, BufferSpec::BitMap) | (Buf::Data, BufferSpec::VariableWidth) => {}
                    (Buf::Offsets(o), BufferSpec::FixedWidth { byte_width, .. }) => {
                        assert_eq!(o.bytes(), *byte_width, "{dt}: offsets")
                    }
                    (
                        Buf::Fixed {
                            width, elem, align, ..
                        },
                        BufferSpec::FixedWidth {
                            byte_width,
                            alignment,
                        },
                    ) => {
                        assert_eq!(width, *byte_width, "{dt}: width");
                        assert_eq!(width % elem, 0, "{dt}: whole elements per row");
                        // As strict as Arrow's typed views need, or stricter (the reader's choice).
                        assert_eq!(
                            align % alignment,
                            0,
                            "{dt}: alignment {align} vs {alignment}"
                        );
                    }
                    (b, spec) => panic!("{dt}: {b:?} where arrow-rs has {spec:?}"),
                }
            }
            let children = ours.children.types().count();
            let expected = match &dt {
                DataType::List(_)
                | DataType::LargeList(_)
                | DataType::ListView(_)
                | DataType::LargeListView(_)
                | DataType::FixedSizeList(_, _)
                | DataType::Map(_, _)
                | DataType::Dictionary(_, _) => 1,
                DataType::Struct(fs) => fs.len(),
                DataType::Union(fs, _) => fs.len(),
                DataType::RunEndEncoded(_, _) => 2,
                _ => 0,
            };
            assert_eq!(children, expected, "{dt}: children");
        }
    }

    /// The buffers `data` holds besides its validity bitmap against the table, recursively (dictionary values too).
    fn assert_matches_array_data(data: &ArrayData) {
        let dt = data.data_type();
        let layout = of(dt);
        let fixed = layout
            .buffers()
            .iter()
            .filter(|b| {
                !matches!(
                    b,
                    Buf::Validity | Buf::UnionValidityBeforeV5 | Buf::VariadicData
                )
            })
            .count();
        if layout.variadic() {
            assert!(data.buffers().len() >= fixed, "{dt}: buffers");
        } else {
            assert_eq!(data.buffers().len(), fixed, "{dt}: buffers");
        }
        if !layout.buffers().contains(&Buf::Validity) {
            assert!(
                data.nulls().is_none(),
                "{dt}: a bitmap the table has no place for"
            );
        }
        assert_eq!(
            data.child_data().len(),
            layout.children.types().count(),
            "{dt}: children"
        );
        for (c, t) in data.child_data().iter().zip(layout.children.types()) {
            assert_eq!(c.data_type(), t, "{dt}: child type");
            assert_matches_array_data(c);
        }
    }

    #[test]
    fn every_column_the_round_trip_tests_generate_holds_the_buffers_and_children_of_its_entry() {
        for nulls in [false, true] {
            let batch = all_types_batch(GoldenOptions {
                rows: 17,
                seed: 3,
                nulls,
            });
            for c in batch.columns() {
                assert_matches_array_data(&c.to_data());
            }
        }
        let run: ArrayRef = Arc::new(
            RunArray::try_new(
                &Int32Array::from(vec![2, 5]),
                &StringArray::from(vec![Some("a"), None]),
            )
            .unwrap(),
        );
        assert_matches_array_data(&run.to_data());
    }
}
