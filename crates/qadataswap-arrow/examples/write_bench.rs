//! Writer cost against the floor of one copy: for 1M rows x {int64, float64} (16 MB) and 10M rows x 4 numeric
//! columns (320 MB), side by side in one run:
//! - `memcpy -> warm private x3`: the columns' bytes copied into warm (already touched) private buffers, rotating
//!   over 3 like the writer's ring (the floor: the same destination footprint as the writer's);
//! - `memcpy -> warm private x1`: the same copy into one warm private buffer, for information: at 16 MB, source
//!   and destination together fit a 32 MiB L3, so this copy partly runs from cache, which no ring writer can (the
//!   slot it writes is never the one it wrote last);
//! - `memcpy -> warm shm slots`: the same copy into warm slots of a segment, rotating over 3 like the writer;
//! - `one-copy write()`: `SnapshotWriter::write` (the one-copy encoder), steady state (slots reused);
//! - `arrow-ipc StreamWriter -> slot`: arrow-ipc's own encoder writing into the same slots (the old path);
//! - `loan (fill by memcpy)`: `SnapshotWriter::loan`, each column filled in place from the same source, commit;
//! - `first write()`: the one-copy writer's first write into a fresh segment, on its own line.
//!
//! `cargo run --release -p qadataswap-arrow --example write_bench [-- --quick] [--json PATH]`

use std::io::Cursor;
use std::time::{Duration, Instant};

use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use arrow_ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow_schema::DataType;
use qadataswap_arrow::golden::numeric_batch;
use qadataswap_arrow::SnapshotWriter;

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

struct Line {
    case: &'static str,
    path: &'static str,
    bytes: usize,
    median: Duration,
    min: Duration,
    iters: usize,
    copies: Option<u64>,
}

fn median_min(mut t: Vec<Duration>) -> (Duration, Duration) {
    t.sort();
    (t[t.len() / 2], t[0])
}

fn time(
    iters: usize,
    mut f: impl FnMut(usize) -> AnyResult<()>,
) -> AnyResult<(Duration, Duration)> {
    for i in 0..3 {
        f(i)?;
    }
    let mut t = Vec::with_capacity(iters);
    for i in 0..iters {
        let s = Instant::now();
        f(i)?;
        t.push(s.elapsed());
    }
    Ok(median_min(t))
}

/// The value bytes of every column (the numeric batches have no validity bitmaps).
fn column_bytes(b: &RecordBatch) -> Vec<&[u8]> {
    b.columns()
        .iter()
        .map(|c| {
            let d = c.to_data();
            let width = d.data_type().primitive_width().unwrap_or(1);
            let buf = &d.buffers()[0];
            // SAFETY: `buf` is owned by the batch's column, which outlives the returned slice; the range is the
            // column's values (offset 0, len rows).
            unsafe { std::slice::from_raw_parts(buf.as_ptr(), c.len() * width) }
        })
        .collect()
}

fn segment_size(bytes: usize) -> usize {
    3 * (bytes + (1 << 20))
}

fn run_case(case: &'static str, rows: usize, cols: usize, iters: usize) -> AnyResult<Vec<Line>> {
    let batch = numeric_batch(rows, cols);
    let schema = batch.schema();
    let src = column_bytes(&batch);
    let bytes: usize = src.iter().map(|s| s.len()).sum();
    let pid = std::process::id();
    let mut lines = Vec::new();
    let mut push = |path, (median, min): (Duration, Duration), copies| {
        lines.push(Line {
            case,
            path,
            bytes,
            median,
            min,
            iters,
            copies,
        })
    };

    // First write into a fresh segment (created, pre-faulted, never written).
    let name = format!("qads-wbench-{pid}-{rows}");
    let mut w = SnapshotWriter::builder(&name)
        .size(segment_size(bytes))
        .slots(3)
        .create()?;
    let s = Instant::now();
    w.write(&batch)?;
    let first = s.elapsed();

    // Floor: memcpy into warm private buffers, rotating over 3 like the writer's slots; then, for information,
    // into one buffer copied over and over (cache-resident when it fits).
    let mut dsts: Vec<Vec<u8>> = (0..3).map(|_| vec![1u8; bytes]).collect();
    for (path, rotate) in [
        ("memcpy -> warm private x3", 3),
        ("memcpy -> warm private x1", 1),
    ] {
        let t = time(iters, |i| {
            let dst = &mut dsts[i % rotate];
            let mut at = 0;
            for s in &src {
                dst[at..at + s.len()].copy_from_slice(s);
                at += s.len();
            }
            std::hint::black_box(dst);
            Ok(())
        })?;
        push(path, t, None);
    }
    drop(dsts);

    // Floor 2: memcpy into warm slots of a segment (rotating over 3 like the writer).
    let shm_name = format!("qads-wbench-shm-{pid}-{rows}");
    let shm = SnapshotWriter::builder(&shm_name)
        .size(segment_size(bytes))
        .slots(3)
        .create()?;
    let slot_cap = shm.geometry().slot_capacity;
    for slot in 0..3 {
        // SAFETY: nobody reads this segment; the slot is `slot_cap` bytes of the writer's mapping.
        unsafe { std::ptr::write_bytes(shm.shared().slot_ptr(slot), 1, slot_cap) };
    }
    let shm_floor = time(iters, |i| {
        let base = shm.shared().slot_ptr(i % 3);
        let mut at = 64;
        for s in &src {
            // SAFETY: as above; 64 + bytes <= slot_cap.
            unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), base.add(at), s.len()) };
            at += s.len();
        }
        Ok(())
    })?;
    push("memcpy -> warm shm slots", shm_floor, None);

    // The one-copy writer, steady state.
    let before = w.stats().copies;
    let one = time(iters, |_| {
        w.write(&batch)?;
        Ok(())
    })?;
    push("one-copy write()", one, Some(w.stats().copies - before));

    // The old path: arrow-ipc's StreamWriter into the same slots of the same segment.
    let opts = IpcWriteOptions::try_new(64, false, arrow_ipc::MetadataVersion::V5)?;
    let cap = w.geometry().slot_capacity;
    let old = time(iters, |i| {
        // SAFETY: no reader is attached to this segment, so writing a slot without the claim protocol races with
        // nobody; the slice is the slot's `cap` bytes inside the writer's mapping.
        let slot = unsafe { std::slice::from_raw_parts_mut(w.shared().slot_ptr(i % 3), cap) };
        let mut sw = StreamWriter::try_new_with_options(Cursor::new(slot), &schema, opts.clone())?;
        sw.write(&batch)?;
        sw.finish()?;
        Ok(())
    })?;
    push("arrow-ipc StreamWriter -> slot", old, None);

    // The loan: build in place (here: fill each column from the same source), commit.
    let before = w.stats().copies;
    let loan = time(iters, |_| {
        let mut loan = w.loan(&schema, rows)?;
        for (c, s) in src.iter().enumerate() {
            match schema.field(c).data_type() {
                DataType::Int64 => {
                    let dst = loan.column_mut::<Int64Type>(c)?;
                    // SAFETY: the source holds `rows` i64 values of this column.
                    let s = unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<i64>(), rows) };
                    dst.copy_from_slice(s);
                }
                DataType::Float64 => {
                    let dst = loan.column_mut::<Float64Type>(c)?;
                    // SAFETY: the source holds `rows` f64 values of this column.
                    let s = unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<f64>(), rows) };
                    dst.copy_from_slice(s);
                }
                _ => loan.bytes_mut(c)?.copy_from_slice(s),
            }
        }
        loan.commit()?;
        Ok(())
    })?;
    push(
        "loan (fill by memcpy)",
        loan,
        Some(w.stats().copies - before),
    );
    push("first write() (fresh segment)", (first, first), None);
    if let Some(l) = lines.last_mut() {
        l.iters = 1;
    }
    drop(shm);
    w.close()?;
    Ok(lines)
}

fn gbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e9
}

fn main() -> AnyResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let json = args
        .iter()
        .position(|a| a == "--json")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let mut lines = run_case(
        "1M x {i64,f64} (16 MB)",
        1_000_000,
        2,
        if quick { 20 } else { 60 },
    )?;
    if !quick {
        lines.extend(run_case("10M x 4 numeric (320 MB)", 10_000_000, 4, 12)?);
    }
    println!(
        "write: median time per frame; ratio = memcpy -> warm private x3 / path (1.00 = as fast as the floor)"
    );
    println!(
        "{:<26} {:<32} {:>10} {:>10} {:>8} {:>8} {:>7}",
        "case", "path", "median ms", "min ms", "GB/s", "ratio", "copies"
    );
    let mut verdicts = Vec::new();
    for case in lines.chunks(7) {
        let floor = case[0].median;
        for l in case {
            println!(
                "{:<26} {:<32} {:>10.3} {:>10.3} {:>8.2} {:>8.2} {:>7}",
                l.case,
                l.path,
                l.median.as_secs_f64() * 1e3,
                l.min.as_secs_f64() * 1e3,
                gbps(l.bytes, l.median),
                floor.as_secs_f64() / l.median.as_secs_f64(),
                l.copies.map_or("-".to_owned(), |c| c.to_string())
            );
        }
        let one = &case[3];
        let ratio = floor.as_secs_f64() / one.median.as_secs_f64();
        let vs_single = case[1].median.as_secs_f64() / one.median.as_secs_f64();
        verdicts.push(format!(
            "{}: one-copy writer at {:.0}% of warm memcpy (x3 rotating; target >= 80%: {}), {:.0}% of one reused buffer",
            one.case,
            ratio * 100.0,
            if ratio >= 0.8 { "met" } else { "NOT met" },
            vs_single * 100.0
        ));
    }
    for v in &verdicts {
        println!("{v}");
    }
    if let Some(path) = json {
        let items: Vec<String> = lines
            .iter()
            .map(|l| {
                format!(
                    "{{\"case\":\"{}\",\"path\":\"{}\",\"bytes\":{},\"iters\":{},\"median_ms\":{:.4},\"min_ms\":{:.4},\"gb_per_s\":{:.3},\"copies\":{}}}",
                    l.case,
                    l.path,
                    l.bytes,
                    l.iters,
                    l.median.as_secs_f64() * 1e3,
                    l.min.as_secs_f64() * 1e3,
                    gbps(l.bytes, l.median),
                    l.copies.map_or("null".to_owned(), |c| c.to_string())
                )
            })
            .collect();
        let verdicts: Vec<String> = verdicts.iter().map(|v| format!("\"{v}\"")).collect();
        std::fs::write(
            &path,
            format!(
                "{{\"bench\":\"write\",\"results\":[{}],\"verdicts\":[{}]}}\n",
                items.join(","),
                verdicts.join(",")
            ),
        )?;
        println!("json: {path}");
    }
    Ok(())
}
