//! What each validation level costs a reader: median `read()` time at `Validation::Trusted` and
//! `Validation::Full`, and of `read_copied()`, on one frame of (int64, float64, utf8view) columns.
//!
//! ```text
//! cargo run --release -p qadataswap-arrow --example validation_bench -- [--rows N] [--iters N] [--quick] [--json PATH]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringViewArray};
use qadataswap_arrow::{SnapshotReader, SnapshotWriter, Validation};

struct Args {
    rows: usize,
    iters: usize,
    json: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        rows: 1_000_000,
        iters: 31,
        json: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--rows" => a.rows = value().parse().expect("--rows N"),
            "--iters" => a.iters = value().parse().expect("--iters N"),
            "--json" => a.json = Some(value()),
            "--quick" => a.iters = 9,
            other => panic!("unknown flag {other}; see the header of examples/validation_bench.rs"),
        }
    }
    a
}

fn batch(rows: usize) -> RecordBatch {
    let id: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows as i64));
    let price: ArrayRef = Arc::new(Float64Array::from_iter_values(
        (0..rows).map(|i| 100.0 + (i % 1000) as f64 * 0.01),
    ));
    // Half inline (<= 12 bytes), half in data buffers: both view kinds are validated.
    let name: ArrayRef = Arc::new(StringViewArray::from_iter_values((0..rows).map(|i| {
        if i % 2 == 0 {
            format!("s{}", i % 100_000)
        } else {
            format!("instrument-{:08}-XSHG", i % 100_000)
        }
    })));
    RecordBatch::try_from_iter([("id", id), ("price", price), ("name", name)]).unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time(iters: usize, mut f: impl FnMut()) -> Duration {
    for _ in 0..2 {
        f();
    }
    median(
        (0..iters)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args();
    let name = format!("qads-validation-bench-{}", std::process::id());
    let b = batch(a.rows);
    let bytes: usize = b.get_array_memory_size();
    let mut w = SnapshotWriter::builder(&name)
        .size(2 * (bytes + (16 << 20)))
        .slots(2)
        .create()?;
    w.write(&b)?;

    let open = |v| {
        SnapshotReader::builder(&name)
            .validation(v)
            .timeout(Some(Duration::from_secs(10)))
            .open()
    };
    let trusted = open(Validation::Trusted)?;
    let full = open(Validation::Full)?;
    let check = |rows: usize| assert_eq!(rows, a.rows);

    let t_trusted = time(a.iters, || check(trusted.read().unwrap().num_rows()));
    let t_full = time(a.iters, || check(full.read().unwrap().num_rows()));
    let t_copied = time(a.iters, || check(trusted.read_copied().unwrap().num_rows()));
    let frame_bytes = trusted.read()?.num_bytes();
    w.close()?;

    let gbps = |d: Duration| frame_bytes as f64 / d.as_secs_f64() / 1e9;
    let rows = [
        (
            "read() Trusted",
            t_trusted,
            "metadata only, O(columns); zero-copy",
        ),
        (
            "read() Full",
            t_full,
            "+ offsets, UTF-8, views, keys: O(rows); zero-copy",
        ),
        (
            "read_copied()",
            t_copied,
            "copy to private memory + full validation of the copy",
        ),
    ];
    println!(
        "validation cost: one frame of {} rows (int64, float64, utf8view), {:.1} MB encoded, median of {} reads",
        a.rows,
        frame_bytes as f64 / 1e6,
        a.iters
    );
    println!();
    println!("| level            | median      | GB/s     | x Trusted | what it does");
    println!("|------------------|-------------|----------|-----------|------------------------------------------");
    for (label, d, what) in rows {
        println!(
            "| {label:<16} | {:>8.3} ms | {:>8.1} | {:>9.1} | {what}",
            d.as_secs_f64() * 1e3,
            gbps(d),
            d.as_secs_f64() / t_trusted.as_secs_f64()
        );
    }
    let json = format!(
        "{{\"rows\": {}, \"frame_bytes\": {frame_bytes}, \"iters\": {}, \"median_ns\": {{\"trusted\": {}, \
         \"full\": {}, \"read_copied\": {}}}}}",
        a.rows,
        a.iters,
        t_trusted.as_nanos(),
        t_full.as_nanos(),
        t_copied.as_nanos()
    );
    if let Some(path) = a.json {
        std::fs::write(&path, format!("{json}\n"))?;
        println!("\nJSON written to {path}");
    }
    Ok(())
}
