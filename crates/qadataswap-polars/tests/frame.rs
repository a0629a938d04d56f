//! `SharedDataFrame` through real segments: zero-copy reads, lease lifetime, every dtype,
//! blocking reads, `wait_for_condition`, and a writer in another process.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use polars_core::frame::DataFrame;
use polars_core::prelude::{
    Column, DataType as PlDataType, FrozenCategories, IntoColumn, NamedFrom, Series,
};
use proptest::prelude::*;
use qadataswap_polars::ffi::record_batches_to_dataframe;
use qadataswap_polars::{to_owned, DataFrameReader, Error, SharedDataFrame};

use common::{all_columns, batches_of, native_columns, polars_ptrs_lenient, LONG};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A segment name unique to this process and call.
fn unique(tag: &str) -> String {
    format!(
        "qads-pl-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn small_frame(x: i64) -> DataFrame {
    DataFrame::new(
        3,
        vec![
            Column::new("x".into(), [x, x + 1, x + 2]),
            Column::new("s".into(), [LONG[0], "b", LONG[1]]),
        ],
    )
    .unwrap()
}

/// Every column of every dtype Polars holds natively, with nulls, in three chunks.
fn native_frame() -> DataFrame {
    let (schema, batches) = batches_of(native_columns, &[7, 5, 9]);
    record_batches_to_dataframe(&schema, &batches).unwrap()
}

fn mapping_range(reader: &DataFrameReader) -> (usize, usize) {
    let map = reader.attachment().shared().mapping();
    let start = map.as_ptr() as usize;
    (start, start + map.len())
}

fn leases(reader: &DataFrameReader) -> u32 {
    let att = reader.attachment();
    (0..att.shared().geometry().slot_count)
        .map(|slot| att.entry().lease_count(slot))
        .sum()
}

/// Asserts every buffer of every chunk of `df` lies inside `[start, end)`; returns how many.
fn assert_all_buffers_inside(df: &DataFrame, (start, end): (usize, usize)) -> usize {
    let mut checked = 0;
    for column in df.columns() {
        let s = column.as_materialized_series();
        for (chunk_index, chunk) in s.chunks().iter().enumerate() {
            let mut ptrs = Vec::new();
            polars_ptrs_lenient(chunk.as_ref(), &mut ptrs);
            for ptr in ptrs {
                assert!(
                    (start..end).contains(&ptr),
                    "column `{}` ({}) chunk {chunk_index}: buffer {ptr:#x} is outside the mapping \
                     {start:#x}..{end:#x}",
                    s.name(),
                    s.dtype()
                );
                checked += 1;
            }
        }
    }
    checked
}

#[test]
fn the_quick_start_writes_and_reads_a_frame() {
    let name = unique("quick");
    let df = small_frame(1);
    let mut writer = SharedDataFrame::create_writer(&name, 100 * 1024 * 1024).unwrap();
    writer.write(&df).unwrap();
    let reader = SharedDataFrame::create_reader(&name).unwrap();
    let read = reader.read().unwrap();
    println!("{}", read);
    assert!(read.equals_missing(&df));
    assert_eq!(reader.stats().arrow.copies, 0);
    assert_eq!(reader.stats().polars_copied_columns, 0);
}

#[test]
fn read_returns_a_frame_whose_every_buffer_points_into_the_mapping() {
    let name = unique("zc");
    let df = native_frame();
    let mut writer = SharedDataFrame::create_writer(&name, 1 << 20).unwrap();
    writer.write(&df).unwrap();
    let reader = SharedDataFrame::create_reader(&name).unwrap();
    let read = reader.read().unwrap();

    assert!(read.equals_missing(&df));
    assert_eq!(
        read.schema(),
        df.schema(),
        "every dtype comes back as written"
    );
    for column in read.columns() {
        if column.dtype() != &PlDataType::Null {
            assert_eq!(
                column.as_materialized_series().n_chunks(),
                3,
                "column `{}` keeps its chunks",
                column.name()
            );
        }
    }
    let checked = assert_all_buffers_inside(&read, mapping_range(&reader));
    assert!(checked > 3 * df.width(), "only {checked} buffers checked");
    assert_eq!(reader.stats().arrow.copies, 0);
    assert_eq!(reader.stats().polars_copied_columns, 0);
}

#[test]
fn the_lease_travels_with_the_columns_until_the_last_one_is_dropped() {
    let name = unique("lease");
    let mut writer = SharedDataFrame::create_writer(&name, 1 << 20).unwrap();
    writer.write(native_frame()).unwrap();
    let reader = SharedDataFrame::create_reader(&name).unwrap();
    assert_eq!(leases(&reader), 0);

    let df = reader.read().unwrap();
    assert_eq!(leases(&reader), 1);
    let column = df.column("str").unwrap().clone();
    let sliced = df.slice(2, 3);
    drop(df);
    assert_eq!(
        leases(&reader),
        1,
        "a cloned column and a slice still hold the lease"
    );
    drop(sliced);
    assert_eq!(
        leases(&reader),
        1,
        "the cloned column still holds the lease"
    );
    drop(column);
    assert_eq!(leases(&reader), 0, "the last column released the lease");
}

#[test]
fn to_owned_copies_every_buffer_out_of_the_mapping_and_holds_no_lease() {
    let name = unique("owned");
    let df = native_frame();
    let mut writer = SharedDataFrame::create_writer(&name, 1 << 20).unwrap();
    writer.write(&df).unwrap();
    let reader = SharedDataFrame::create_reader(&name).unwrap();
    let read = reader.read().unwrap();
    let owned = to_owned(&read).unwrap();
    drop(read);
    assert_eq!(leases(&reader), 0);
    assert!(owned.equals_missing(&df));
    let (start, end) = mapping_range(&reader);
    for column in owned.columns() {
        for chunk in column.as_materialized_series().chunks() {
            let mut ptrs = Vec::new();
            polars_ptrs_lenient(chunk.as_ref(), &mut ptrs);
            assert!(ptrs.iter().all(|p| !(start..end).contains(p)));
        }
    }

    let owned = reader.read_owned().unwrap();
    assert_eq!(leases(&reader), 0);
    assert!(owned.equals_missing(&df));
}

#[test]
fn categorical_and_enum_columns_are_read_with_a_counted_copy() {
    let name = unique("cat");
    let categories = FrozenCategories::new(["low", "mid", "high"]).unwrap();
    let enum_dtype = PlDataType::from_frozen_categories(categories);
    let level = Series::new("level".into(), &[Some("mid"), None, Some("high")])
        .cast(&enum_dtype)
        .unwrap();
    let (schema, batches) = batches_of(|_, len| vec![common::categorical_column(len)], &[3]);
    let mut df = record_batches_to_dataframe(&schema, &batches).unwrap();
    df.with_column(level.into_column()).unwrap();

    let mut writer = SharedDataFrame::create_writer(&name, 1 << 20).unwrap();
    writer.write(&df).unwrap();
    let reader = SharedDataFrame::create_reader(&name).unwrap();
    let read = reader.read().unwrap();
    assert!(read.equals_missing(&df));
    assert_eq!(read.schema(), df.schema());
    assert_eq!(reader.stats().polars_copied_columns, 2);
}

#[test]
fn try_read_is_none_before_the_first_write_and_schema_follows_the_writes() {
    let name = unique("try");
    let mut writer = SharedDataFrame::writer(&name)
        .size(1 << 20)
        .slots(2)
        .create()
        .unwrap();
    let reader = SharedDataFrame::reader(&name)
        .timeout(Some(Duration::from_secs(30)))
        .open()
        .unwrap();
    assert!(reader.try_read().unwrap().is_none());
    assert!(reader.schema().unwrap().is_none());
    let df = small_frame(5);
    writer.write(&df).unwrap();
    assert!(reader.try_read().unwrap().unwrap().equals_missing(&df));
    assert_eq!(reader.schema().unwrap().as_deref(), Some(&**df.schema()));
}

#[test]
fn read_next_returns_only_newer_snapshots() {
    let name = unique("next");
    let mut writer = SharedDataFrame::create_writer(&name, 1 << 20).unwrap();
    writer.write(small_frame(1)).unwrap();
    let reader = SharedDataFrame::create_reader(&name).unwrap();
    assert!(reader.read().unwrap().equals_missing(&small_frame(1)));
    let err = reader
        .read_next(Some(Duration::from_millis(50)))
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Arrow(qadataswap_arrow::Error::Timeout { .. })
    ));

    let publisher = std::thread::spawn(move || {
        writer.write(small_frame(2)).unwrap();
        writer
    });
    let next = reader.read_next(Some(Duration::from_secs(30))).unwrap();
    assert!(next.equals_missing(&small_frame(2)));
    drop(publisher.join().unwrap());
}

#[test]
fn a_lazy_query_result_can_be_written() {
    let name = unique("lazy");
    let mut writer = SharedDataFrame::create_writer(&name, 1 << 20).unwrap();
    // What `lazy_frame.collect()` returns.
    let collected: polars_core::error::PolarsResult<DataFrame> = Ok(small_frame(7));
    writer.write(collected).unwrap();
    let failed: polars_core::error::PolarsResult<DataFrame> = Err(
        polars_core::error::PolarsError::ComputeError("the query failed".into()),
    );
    assert!(matches!(writer.write(failed), Err(Error::Polars { .. })));
    let reader = SharedDataFrame::create_reader(&name).unwrap();
    assert!(reader.read().unwrap().equals_missing(&small_frame(7)));
}

#[test]
fn wait_for_condition_returns_the_first_snapshot_the_predicate_accepts() {
    let name = unique("cond");
    let mut writer = SharedDataFrame::create_writer(&name, 1 << 20).unwrap();
    writer.write(small_frame(0)).unwrap();
    let reader = SharedDataFrame::create_reader(&name).unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let publisher = std::thread::spawn(move || {
        for x in 1..=20 {
            writer.write(small_frame(x * 10)).unwrap();
        }
        writer
    });
    let first_x = |df: &DataFrame| df.column("x").unwrap().i64().unwrap().get(0).unwrap();
    let counter = Arc::clone(&seen);
    let df = reader
        .wait_for_condition(
            |df| {
                counter.fetch_add(1, Ordering::Relaxed);
                first_x(df) >= 100
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap();
    assert!(first_x(&df) >= 100);
    assert!(seen.load(Ordering::Relaxed) >= 1);
    drop(publisher.join().unwrap());
}

#[test]
fn wait_for_condition_times_out_when_no_snapshot_satisfies_it() {
    let name = unique("condto");
    let mut writer = SharedDataFrame::create_writer(&name, 1 << 20).unwrap();
    writer.write(small_frame(0)).unwrap();
    let reader = SharedDataFrame::create_reader(&name).unwrap();
    let err = reader
        .wait_for_condition(|_| false, Some(Duration::from_millis(100)))
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Arrow(qadataswap_arrow::Error::Timeout { .. })
    ));
    assert_eq!(leases(&reader), 0);
}

#[test]
fn a_frame_too_large_for_a_slot_is_refused_with_an_arrow_error() {
    let name = unique("big");
    let mut writer = SharedDataFrame::create_writer(&name, 64 * 1024).unwrap();
    let big = DataFrame::new(
        100_000,
        vec![Column::new("x".into(), (0..100_000i64).collect::<Vec<_>>())],
    )
    .unwrap();
    assert!(matches!(writer.write(&big), Err(Error::Arrow(_))));
}

// ---------------------------------------------------------------------------------------------
// A writer in another process
// ---------------------------------------------------------------------------------------------

const ROLE: &str = "QADS_POLARS_TEST_WRITER";

/// Child role: write the native frame to the segment named in the environment, say so, and
/// keep the segment until stdin closes.
#[test]
fn child_role_writer() {
    let Ok(name) = std::env::var(ROLE) else {
        return;
    };
    let mut writer = SharedDataFrame::create_writer(&name, 1 << 20).unwrap();
    writer.write(native_frame()).unwrap();
    println!("QADS-READY");
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut rest);
}

#[test]
fn a_frame_written_by_another_process_is_read_without_a_copy() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let name = unique("proc");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_role_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, &name)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Watchdog: the child is killed if this test hangs.
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(120));
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.unwrap().contains("QADS-READY")));

    let reader = SharedDataFrame::reader(&name)
        .timeout(Some(Duration::from_secs(30)))
        .open()
        .unwrap();
    let read = reader.read().unwrap();
    assert!(read.equals_missing(&native_frame()));
    assert_all_buffers_inside(&read, mapping_range(&reader));
    drop(read);
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    drop(watchdog);
}

// ---------------------------------------------------------------------------------------------
// Property: frames of every dtype, with nulls and several chunks, round-trip through a segment
// ---------------------------------------------------------------------------------------------

fn enum_column(height: usize, seed: usize) -> Column {
    let categories = FrozenCategories::new(["low", "mid", "high"]).unwrap();
    let dtype = PlDataType::from_frozen_categories(categories);
    let values: Vec<Option<&str>> = (0..height)
        .map(|i| match (i + seed) % 4 {
            0 => None,
            1 => Some("low"),
            2 => Some("mid"),
            _ => Some("high"),
        })
        .collect();
    Series::new("enum".into(), values)
        .cast(&dtype)
        .unwrap()
        .into_column()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn frames_of_every_dtype_round_trip_through_a_segment(
        picks in proptest::collection::vec(0usize..64, 1..8),
        lens in proptest::collection::vec(0usize..30, 1..5),
        seed in 0usize..5,
        with_enum in any::<bool>(),
    ) {
        let template = all_columns(0, 0);
        let chosen: Vec<usize> = picks.iter().map(|p| p % template.len()).collect();
        let columns = |batch_seed: usize, len: usize| {
            let all = all_columns(batch_seed + seed, len);
            chosen
                .iter()
                .enumerate()
                .map(|(i, &c)| {
                    let (field, array) = all[c].clone();
                    (
                        arrow_schema::Field::new(
                            format!("c{i}_{}", field.name()),
                            field.data_type().clone(),
                            true,
                        ),
                        array,
                    )
                })
                .collect::<Vec<_>>()
        };
        let (schema, batches) = batches_of(columns, &lens);
        let mut df = record_batches_to_dataframe(&schema, &batches).unwrap();
        if with_enum {
            let height = df.height();
            df.with_column(enum_column(height, seed)).unwrap();
        }

        let name = unique("prop");
        let mut writer = SharedDataFrame::create_writer(&name, 4 << 20).unwrap();
        writer.write(&df).unwrap();
        let reader = SharedDataFrame::create_reader(&name).unwrap();
        let read = reader.read().unwrap();
        prop_assert_eq!(read.schema(), df.schema());
        prop_assert_eq!(read.height(), df.height());
        prop_assert!(read.equals_missing(&df));
        if !with_enum {
            for (a, b) in read.columns().iter().zip(df.columns()) {
                if a.dtype() != &PlDataType::Null {
                    prop_assert_eq!(
                        a.as_materialized_series().n_chunks(),
                        b.as_materialized_series().n_chunks()
                    );
                }
            }
        }
    }
}
