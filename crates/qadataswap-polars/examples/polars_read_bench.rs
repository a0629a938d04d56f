//! Reader cost through Polars: median `read()` to a Polars `DataFrame` on an open reader with a
//! snapshot already published, for 1M and 10M rows of (int64, float64, string). The point: the
//! cost is O(columns), not O(rows) — the frame is imported from the mapping without a copy.
//!
//! `cargo run --release -p qadataswap-polars --example polars_read_bench [-- --quick] [--json PATH]`

use std::time::{Duration, Instant};

use polars_core::frame::DataFrame;
use polars_core::prelude::Column;
use qadataswap_polars::SharedDataFrame;

fn frame(rows: usize) -> Result<DataFrame, Box<dyn std::error::Error>> {
    let ints: Vec<i64> = (0..rows as i64).collect();
    let floats: Vec<f64> = (0..rows).map(|v| v as f64 * 0.25).collect();
    let strings: Vec<String> = (0..rows)
        .map(|v| format!("sym{:07}-{}", v % 5000, v % 7))
        .collect();
    Ok(DataFrame::new(
        rows,
        vec![
            Column::new("i64".into(), ints),
            Column::new("f64".into(), floats),
            Column::new("str".into(), strings),
        ],
    )?)
}

struct Row {
    rows: usize,
    bytes: usize,
    median: Duration,
    p99: Duration,
    copies: u64,
    polars_copies: u64,
}

fn measure(rows: usize, iters: usize) -> Result<Row, Box<dyn std::error::Error>> {
    let name = format!("qads-plbench-{}-{rows}", std::process::id());
    let df = frame(rows)?;
    let size = 3 * (df.estimated_size() + rows * 20 + (1 << 20));
    let mut writer = SharedDataFrame::writer(&name).size(size).create()?;
    let info = writer.write(&df)?;
    drop(df);
    let reader = SharedDataFrame::create_reader(&name)?;
    for _ in 0..20 {
        drop(reader.read()?);
    }
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let start = Instant::now();
        let df = reader.read()?;
        let elapsed = start.elapsed();
        std::hint::black_box(&df);
        drop(df);
        times.push(elapsed);
    }
    times.sort();
    let stats = reader.stats();
    Ok(Row {
        rows,
        bytes: info.bytes,
        median: times[times.len() / 2],
        p99: times[times.len() * 99 / 100],
        copies: stats.arrow.copies,
        polars_copies: stats.polars_copied_columns,
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
    println!("read() -> polars DataFrame: open reader, snapshot already published, columns (int64, float64, string)");
    println!(
        "{:>12} {:>10} {:>12} {:>12} {:>8} {:>14}",
        "rows", "frame MB", "median", "p99", "copies", "polars copies"
    );
    let mut rows = Vec::new();
    for &n in sizes {
        let r = measure(n, 2000)?;
        println!(
            "{:>12} {:>10.1} {:>12} {:>12} {:>8} {:>14}",
            r.rows,
            r.bytes as f64 / 1e6,
            format!("{:.2} µs", r.median.as_secs_f64() * 1e6),
            format!("{:.2} µs", r.p99.as_secs_f64() * 1e6),
            r.copies,
            r.polars_copies
        );
        rows.push(r);
    }
    let met = rows.iter().all(|r| r.median <= Duration::from_micros(10));
    if rows.len() == 2 {
        println!(
            "10M / 1M median ratio: {:.2}x for {:.0}x the rows (O(columns): ~1x expected)",
            rows[1].median.as_secs_f64() / rows[0].median.as_secs_f64(),
            rows[1].rows as f64 / rows[0].rows as f64,
        );
    }
    println!(
        "target: median <= 10 µs for each size: {}",
        if met { "met" } else { "NOT met" }
    );
    if let Some(path) = json {
        let items: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{{\"rows\":{},\"bytes\":{},\"median_us\":{:.3},\"p99_us\":{:.3},\"copies\":{},\"polars_copied_columns\":{}}}",
                    r.rows,
                    r.bytes,
                    r.median.as_secs_f64() * 1e6,
                    r.p99.as_secs_f64() * 1e6,
                    r.copies,
                    r.polars_copies
                )
            })
            .collect();
        std::fs::write(
            path,
            format!(
                "{{\"bench\":\"polars-read\",\"target_us\":10,\"met\":{met},\"results\":[{}]}}\n",
                items.join(",")
            ),
        )?;
    }
    Ok(())
}
