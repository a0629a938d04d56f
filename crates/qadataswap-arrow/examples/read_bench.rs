//! Reader cost: median `read()` on an open reader with a frame already published, for 1M and 10M rows of
//! (int64, float64, utf8view). The point: the cost is O(columns), not O(rows).
//!
//! `cargo run --release -p qadataswap-arrow --example read_bench [-- --quick] [--json PATH]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringViewArray};
use qadataswap_arrow::{SnapshotReader, SnapshotWriter};

fn batch(rows: usize) -> RecordBatch {
    let i: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows as i64));
    let f: ArrayRef = Arc::new(Float64Array::from_iter_values(
        (0..rows).map(|v| v as f64 * 0.25),
    ));
    let s: ArrayRef = Arc::new(StringViewArray::from_iter_values(
        (0..rows).map(|v| format!("sym{:07}-{}", v % 5000, v % 7)),
    ));
    RecordBatch::try_from_iter([("i64", i), ("f64", f), ("utf8view", s)]).expect("valid batch")
}

struct Row {
    rows: usize,
    bytes: usize,
    median: Duration,
    p99: Duration,
    copies: u64,
}

fn measure(rows: usize, iters: usize) -> Result<Row, Box<dyn std::error::Error>> {
    let name = format!("qads-readbench-{}-{rows}", std::process::id());
    let b = batch(rows);
    let size = 3 * (b.get_array_memory_size() + (rows * 20) + (1 << 20));
    let mut w = SnapshotWriter::builder(&name).size(size).create()?;
    let info = w.write(&b)?;
    let r = SnapshotReader::open(&name)?;
    for _ in 0..10 {
        drop(r.read()?);
    }
    let mut t = Vec::with_capacity(iters);
    for _ in 0..iters {
        let s = Instant::now();
        let f = r.read()?;
        let e = s.elapsed();
        std::hint::black_box(&f);
        drop(f);
        t.push(e);
    }
    t.sort();
    Ok(Row {
        rows,
        bytes: info.bytes,
        median: t[t.len() / 2],
        p99: t[t.len() * 99 / 100],
        copies: r.stats().copies,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let json = args
        .iter()
        .position(|a| a == "--json")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let sizes: &[usize] = if quick {
        &[1_000_000]
    } else {
        &[1_000_000, 10_000_000]
    };
    println!("read(): open reader, frame already published, columns (int64, float64, utf8view)");
    println!(
        "{:>12} {:>12} {:>12} {:>12} {:>8}",
        "rows", "frame MB", "median", "p99", "copies"
    );
    let mut rows = Vec::new();
    for &n in sizes {
        let r = measure(n, 2000)?;
        println!(
            "{:>12} {:>12.1} {:>12} {:>12} {:>8}",
            r.rows,
            r.bytes as f64 / 1e6,
            format!("{:.2} µs", r.median.as_secs_f64() * 1e6),
            format!("{:.2} µs", r.p99.as_secs_f64() * 1e6),
            r.copies
        );
        rows.push(r);
    }
    if rows.len() == 2 {
        println!(
            "10M / 1M median ratio: {:.2}x for {:.0}x the rows (O(columns): ~1x expected); target <= 10 µs each: {}",
            rows[1].median.as_secs_f64() / rows[0].median.as_secs_f64(),
            rows[1].rows as f64 / rows[0].rows as f64,
            if rows.iter().all(|r| r.median <= Duration::from_micros(10)) { "met" } else { "NOT met" }
        );
    }
    if let Some(path) = json {
        let items: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{{\"rows\":{},\"bytes\":{},\"median_us\":{:.3},\"p99_us\":{:.3},\"copies\":{}}}",
                    r.rows,
                    r.bytes,
                    r.median.as_secs_f64() * 1e6,
                    r.p99.as_secs_f64() * 1e6,
                    r.copies
                )
            })
            .collect();
        std::fs::write(
            path,
            format!(
                "{{\"bench\":\"arrow-read\",\"results\":[{}]}}\n",
                items.join(",")
            ),
        )?;
    }
    Ok(())
}
