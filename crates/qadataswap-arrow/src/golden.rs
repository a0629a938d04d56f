//! Deterministic test frames covering every type the format carries (used by this crate's tests, the other
//! crates' tests, the cross-language matrix and the benches).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{
    BinaryViewBuilder, FixedSizeBinaryBuilder, FixedSizeListBuilder, Int32Builder,
    LargeListBuilder, ListBuilder, MapBuilder, StringBuilder, StringDictionaryBuilder,
    StringViewBuilder,
};
use arrow_array::types::{Int16Type, Int32Type};
use arrow_array::*;
use arrow_buffer::{i256, IntervalDayTime, IntervalMonthDayNano, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit, UnionFields, UnionMode};

/// A small deterministic generator (no external randomness, so golden bytes are reproducible).
#[derive(Clone, Debug)]
pub struct Lcg(u64);

impl Lcg {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Lcg(seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407))
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let x = self.0;
        (x ^ (x >> 33)).wrapping_mul(0xff51afd7ed558ccd) ^ (x >> 29)
    }
    /// True with probability 1/n.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.next_u64().is_multiple_of(n)
    }
}

/// Options for [`all_types_batch`].
#[derive(Clone, Copy, Debug)]
pub struct GoldenOptions {
    /// Rows.
    pub rows: usize,
    /// Seed of the values.
    pub seed: u64,
    /// Put nulls in (about one in 5 values).
    pub nulls: bool,
}

fn valid(r: &mut Lcg, nulls: bool) -> bool {
    !(nulls && r.one_in(5))
}

fn words(r: &mut Lcg) -> String {
    const W: [&str; 8] = [
        "alpha",
        "beta",
        "γάμμα",
        "delta-long-enough-to-not-be-inlined",
        "",
        "e",
        "zeta🙂",
        "eta",
    ];
    W[(r.next_u64() % 8) as usize].to_owned()
}

/// One record batch with a column of every type the format carries, nulls optional.
pub fn all_types_batch(o: GoldenOptions) -> RecordBatch {
    let n = o.rows;
    let mut r = Lcg::new(o.seed);
    let nl = o.nulls;
    macro_rules! prim {
        ($arr:ty, $gen:expr) => {{
            let v: $arr = (0..n)
                .map(|_| {
                    if valid(&mut r, nl) {
                        Some($gen(&mut r))
                    } else {
                        None
                    }
                })
                .collect();
            Arc::new(v) as ArrayRef
        }};
    }
    let mut cols: Vec<(String, ArrayRef, bool)> = Vec::new();
    let mut push = |name: &str, a: ArrayRef| cols.push((name.to_owned(), a, true));
    push("i8", prim!(Int8Array, |r: &mut Lcg| r.next_u64() as i8));
    push("i16", prim!(Int16Array, |r: &mut Lcg| r.next_u64() as i16));
    push("i32", prim!(Int32Array, |r: &mut Lcg| r.next_u64() as i32));
    push("i64", prim!(Int64Array, |r: &mut Lcg| r.next_u64() as i64));
    push("u8", prim!(UInt8Array, |r: &mut Lcg| r.next_u64() as u8));
    push("u16", prim!(UInt16Array, |r: &mut Lcg| r.next_u64() as u16));
    push("u32", prim!(UInt32Array, |r: &mut Lcg| r.next_u64() as u32));
    push("u64", prim!(UInt64Array, |r: &mut Lcg| r.next_u64()));
    push(
        "f16",
        prim!(Float16Array, |r: &mut Lcg| half::f16::from_f32(
            (r.next_u64() % 1000) as f32 / 8.0
        )),
    );
    push(
        "f32",
        prim!(Float32Array, |r: &mut Lcg| (r.next_u64() % 100000) as f32
            / 3.0),
    );
    push(
        "f64",
        prim!(Float64Array, |r: &mut Lcg| (r.next_u64() % 1_000_000)
            as f64
            / 7.0),
    );
    push("bool", prim!(BooleanArray, |r: &mut Lcg| r.one_in(2)));
    let d128: Decimal128Array = (0..n)
        .map(|_| {
            if valid(&mut r, nl) {
                Some((r.next_u64() % 10_000_000) as i128 - 5_000_000)
            } else {
                None
            }
        })
        .collect();
    push(
        "decimal128",
        Arc::new(
            d128.with_precision_and_scale(18, 3)
                .expect("valid precision"),
        ),
    );
    let d256: Decimal256Array = (0..n)
        .map(|_| {
            if valid(&mut r, nl) {
                Some(i256::from_i128((r.next_u64() % 1_000_000) as i128))
            } else {
                None
            }
        })
        .collect();
    push(
        "decimal256",
        Arc::new(
            d256.with_precision_and_scale(40, 5)
                .expect("valid precision"),
        ),
    );
    push(
        "date32",
        prim!(Date32Array, |r: &mut Lcg| (r.next_u64() % 30000) as i32),
    );
    push(
        "date64",
        prim!(Date64Array, |r: &mut Lcg| (r.next_u64() % 30000) as i64
            * 86_400_000),
    );
    push(
        "time32s",
        prim!(Time32SecondArray, |r: &mut Lcg| (r.next_u64() % 86400)
            as i32),
    );
    push(
        "time32ms",
        prim!(
            Time32MillisecondArray,
            |r: &mut Lcg| (r.next_u64() % 86_400_000) as i32
        ),
    );
    push(
        "time64us",
        prim!(
            Time64MicrosecondArray,
            |r: &mut Lcg| (r.next_u64() % 86_400_000_000) as i64
        ),
    );
    push(
        "time64ns",
        prim!(
            Time64NanosecondArray,
            |r: &mut Lcg| (r.next_u64() % 86_400_000_000_000) as i64
        ),
    );
    let ts = |r: &mut Lcg| (r.next_u64() % 2_000_000_000_000) as i64;
    push("ts_s", prim!(TimestampSecondArray, ts));
    push(
        "ts_ms_utc",
        Arc::new(
            (0..n)
                .map(|_| {
                    if valid(&mut r, nl) {
                        Some(ts(&mut r))
                    } else {
                        None
                    }
                })
                .collect::<TimestampMillisecondArray>()
                .with_timezone("UTC"),
        ),
    );
    push(
        "ts_us_tz",
        Arc::new(
            (0..n)
                .map(|_| {
                    if valid(&mut r, nl) {
                        Some(ts(&mut r))
                    } else {
                        None
                    }
                })
                .collect::<TimestampMicrosecondArray>()
                .with_timezone("Europe/Paris"),
        ),
    );
    push("ts_ns", prim!(TimestampNanosecondArray, ts));
    push(
        "dur_s",
        prim!(DurationSecondArray, |r: &mut Lcg| (r.next_u64() % 100000)
            as i64),
    );
    push(
        "dur_ms",
        prim!(
            DurationMillisecondArray,
            |r: &mut Lcg| (r.next_u64() % 100000) as i64
        ),
    );
    push(
        "dur_us",
        prim!(
            DurationMicrosecondArray,
            |r: &mut Lcg| (r.next_u64() % 100000) as i64
        ),
    );
    push(
        "dur_ns",
        prim!(
            DurationNanosecondArray,
            |r: &mut Lcg| (r.next_u64() % 100000) as i64
        ),
    );
    push(
        "interval_ym",
        prim!(IntervalYearMonthArray, |r: &mut Lcg| (r.next_u64() % 240)
            as i32),
    );
    push(
        "interval_dt",
        prim!(IntervalDayTimeArray, |r: &mut Lcg| IntervalDayTime::new(
            (r.next_u64() % 365) as i32,
            (r.next_u64() % 86_400_000) as i32
        )),
    );
    push(
        "interval_mdn",
        prim!(IntervalMonthDayNanoArray, |r: &mut Lcg| {
            IntervalMonthDayNano::new(
                (r.next_u64() % 12) as i32,
                (r.next_u64() % 28) as i32,
                (r.next_u64() % 1_000_000) as i64,
            )
        }),
    );
    push("utf8", prim!(StringArray, words));
    push("large_utf8", prim!(LargeStringArray, words));
    let mut sv = StringViewBuilder::new();
    for _ in 0..n {
        if valid(&mut r, nl) {
            sv.append_value(words(&mut r))
        } else {
            sv.append_null()
        }
    }
    push("utf8view", Arc::new(sv.finish()));
    let bytes =
        |r: &mut Lcg| -> Vec<u8> { (0..(r.next_u64() % 20)).map(|i| i as u8 ^ 0x5a).collect() };
    push(
        "binary",
        Arc::new(
            (0..n)
                .map(|_| {
                    if valid(&mut r, nl) {
                        Some(bytes(&mut r))
                    } else {
                        None
                    }
                })
                .collect::<Vec<_>>()
                .iter()
                .map(|o| o.as_deref())
                .collect::<BinaryArray>(),
        ),
    );
    push(
        "large_binary",
        Arc::new(
            (0..n)
                .map(|_| {
                    if valid(&mut r, nl) {
                        Some(bytes(&mut r))
                    } else {
                        None
                    }
                })
                .collect::<Vec<_>>()
                .iter()
                .map(|o| o.as_deref())
                .collect::<LargeBinaryArray>(),
        ),
    );
    let mut bv = BinaryViewBuilder::new();
    for _ in 0..n {
        if valid(&mut r, nl) {
            bv.append_value(bytes(&mut r))
        } else {
            bv.append_null()
        }
    }
    push("binaryview", Arc::new(bv.finish()));
    let mut fsb = FixedSizeBinaryBuilder::new(4);
    for _ in 0..n {
        if valid(&mut r, nl) {
            fsb.append_value((r.next_u64() as u32).to_le_bytes())
                .expect("4 bytes");
        } else {
            fsb.append_null();
        }
    }
    push("fixed_binary", Arc::new(fsb.finish()));
    let mut lb = ListBuilder::new(Int32Builder::new());
    let mut llb = LargeListBuilder::new(StringBuilder::new());
    let mut fsl = FixedSizeListBuilder::new(Int32Builder::new(), 3);
    for _ in 0..n {
        if valid(&mut r, nl) {
            for _ in 0..(r.next_u64() % 4) {
                lb.values().append_value(r.next_u64() as i32)
            }
            lb.append(true);
        } else {
            lb.append(false);
        }
        if valid(&mut r, nl) {
            for _ in 0..(r.next_u64() % 3) {
                llb.values().append_value(words(&mut r))
            }
            llb.append(true);
        } else {
            llb.append(false);
        }
        for _ in 0..3 {
            fsl.values().append_value(r.next_u64() as i32)
        }
        fsl.append(valid(&mut r, nl));
    }
    push("list_i32", Arc::new(lb.finish()));
    push("large_list_utf8", Arc::new(llb.finish()));
    push("fixed_list_i32", Arc::new(fsl.finish()));
    let sa: ArrayRef = prim!(Int64Array, |r: &mut Lcg| r.next_u64() as i64);
    let sb: ArrayRef = prim!(StringArray, words);
    let st = StructArray::from(vec![
        (Arc::new(Field::new("a", DataType::Int64, true)), sa),
        (Arc::new(Field::new("b", DataType::Utf8, true)), sb),
    ]);
    push("struct", Arc::new(st));
    let mut mb = MapBuilder::new(None, StringBuilder::new(), Int32Builder::new());
    for _ in 0..n {
        if valid(&mut r, nl) {
            for k in 0..(r.next_u64() % 3) {
                mb.keys().append_value(format!("k{k}"));
                mb.values().append_value(r.next_u64() as i32);
            }
            mb.append(true).expect("map entry");
        } else {
            mb.append(false).expect("map entry");
        }
    }
    push("map", Arc::new(mb.finish()));
    let mut db = StringDictionaryBuilder::<Int32Type>::new();
    for _ in 0..n {
        if valid(&mut r, nl) {
            db.append_value(["red", "green", "blue"][(r.next_u64() % 3) as usize])
        } else {
            db.append_null()
        }
    }
    push("dict_utf8", Arc::new(db.finish()));
    let mut db16 = StringDictionaryBuilder::<Int16Type>::new();
    for _ in 0..n {
        db16.append_value(["x", "y"][(r.next_u64() % 2) as usize]);
    }
    push("dict_i16_utf8", Arc::new(db16.finish()));
    // Unions: sparse and dense over (int32, utf8).
    let type_ids: Vec<i8> = (0..n).map(|_| (r.next_u64() % 2) as i8).collect();
    let ufields = UnionFields::try_new(
        vec![0, 1],
        vec![
            Field::new("i", DataType::Int32, true),
            Field::new("s", DataType::Utf8, true),
        ],
    )
    .expect("valid union fields");
    let sparse_i: ArrayRef = Arc::new(Int32Array::from_iter_values((0..n).map(|i| i as i32)));
    let sparse_s: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..n).map(|i| format!("s{i}")),
    ));
    let sparse = UnionArray::try_new(
        ufields.clone(),
        ScalarBuffer::from(type_ids.clone()),
        None,
        vec![sparse_i, sparse_s],
    )
    .expect("valid sparse union");
    push("sparse_union", Arc::new(sparse));
    let (mut ni, mut ns) = (0i32, 0i32);
    let offsets: Vec<i32> = type_ids
        .iter()
        .map(|t| {
            if *t == 0 {
                ni += 1;
                ni - 1
            } else {
                ns += 1;
                ns - 1
            }
        })
        .collect();
    let dense_i: ArrayRef = Arc::new(Int32Array::from_iter_values(0..ni));
    let dense_s: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..ns).map(|i| format!("d{i}")),
    ));
    let dense = UnionArray::try_new(
        ufields,
        ScalarBuffer::from(type_ids),
        Some(ScalarBuffer::from(offsets)),
        vec![dense_i, dense_s],
    )
    .expect("valid dense union");
    push("dense_union", Arc::new(dense));
    push("null", Arc::new(NullArray::new(n)));

    let fields: Vec<Field> = cols
        .iter()
        .map(|(name, a, nullable)| {
            let f = Field::new(name, a.data_type().clone(), *nullable);
            if name == "i64" {
                f.with_metadata(HashMap::from([("unit".to_owned(), "ticks".to_owned())]))
            } else {
                f
            }
        })
        .collect();
    let schema = Schema::new(fields).with_metadata(HashMap::from([(
        "producer".to_owned(),
        "qadataswap-golden".to_owned(),
    )]));
    RecordBatch::try_new(
        Arc::new(schema),
        cols.into_iter().map(|(_, a, _)| a).collect(),
    )
    .expect("golden batch is valid")
}

/// The golden frame's schema.
pub fn all_types_schema() -> SchemaRef {
    all_types_batch(GoldenOptions {
        rows: 1,
        seed: 0,
        nulls: false,
    })
    .schema()
}

/// A numeric batch: `cols` float64/int64 columns alternating, `rows` rows (for benches).
pub fn numeric_batch(rows: usize, cols: usize) -> RecordBatch {
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for c in 0..cols {
        if c % 2 == 0 {
            fields.push(Field::new(format!("i{c}"), DataType::Int64, false));
            arrays.push(Arc::new(Int64Array::from_iter_values(
                (0..rows as i64).map(|v| v.wrapping_mul(31 + c as i64)),
            )));
        } else {
            fields.push(Field::new(format!("f{c}"), DataType::Float64, false));
            arrays.push(Arc::new(Float64Array::from_iter_values(
                (0..rows).map(|v| v as f64 * 0.5),
            )));
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("numeric batch is valid")
}

#[allow(dead_code)]
fn _unused(_: TimeUnit, _: UnionMode) {}
