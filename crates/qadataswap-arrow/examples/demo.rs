//! Demo: one writer process publishes frames; two reader processes read them zero-copy and say what they got and how
//! long it took. Run with `cargo run --release -p qadataswap-arrow --example demo` (or `cargo xtask demo`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use qadataswap_arrow::golden::numeric_batch;
use qadataswap_arrow::{SnapshotReader, SnapshotWriter};

const ROWS: usize = 1_000_000;
const FRAMES: u64 = 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("writer") => writer(&args[2]),
        Some("reader") => reader(&args[2], &args[3]),
        _ => orchestrate(),
    }
}

fn orchestrate() -> Result<(), Box<dyn std::error::Error>> {
    let name = format!("qads-demo-{}", std::process::id());
    let exe = std::env::current_exe()?;
    println!("demo: segment '{name}': 1 writer process, 2 reader processes, {FRAMES} frames of {ROWS} rows x (int64, float64)");
    let mut w = Command::new(&exe)
        .args(["writer", &name])
        .stdout(Stdio::inherit())
        .spawn()?;
    // Give the writer a moment to create the segment.
    let t0 = Instant::now();
    while !std::path::Path::new(&format!("/dev/shm/{name}")).exists() {
        if t0.elapsed() > Duration::from_secs(10) {
            return Err("writer did not create the segment".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let readers: Vec<_> = ["A", "B"]
        .iter()
        .map(|tag| {
            Command::new(&exe)
                .args(["reader", &name, tag])
                .stdout(Stdio::inherit())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    for mut r in readers {
        if !r.wait()?.success() {
            return Err("a reader failed".into());
        }
    }
    if !w.wait()?.success() {
        return Err("the writer failed".into());
    }
    println!("demo: done");
    Ok(())
}

fn writer(name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let batch = numeric_batch(ROWS, 2);
    let mut w = SnapshotWriter::builder(name).size(60 << 20).create()?;
    std::thread::sleep(Duration::from_millis(300));
    let mut times = Vec::new();
    for _ in 0..FRAMES {
        let t = Instant::now();
        let info = w.write(&batch)?;
        times.push(t.elapsed());
        if info.seq == 1 {
            println!(
                "[writer pid {}] frame 1: {} bytes into slot {} in {:?} (first write)",
                std::process::id(),
                info.bytes,
                info.slot,
                t.elapsed()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    times.sort();
    println!(
        "[writer pid {}] wrote {FRAMES} frames; median write {:?} ({:.1} GB/s)",
        std::process::id(),
        times[times.len() / 2],
        (ROWS * 16) as f64 / times[times.len() / 2].as_secs_f64() / 1e9
    );
    std::thread::sleep(Duration::from_millis(300));
    w.close()?;
    Ok(())
}

fn reader(name: &str, tag: &str) -> Result<(), Box<dyn std::error::Error>> {
    let r = SnapshotReader::builder(name)
        .timeout(Some(Duration::from_secs(10)))
        .open()?;
    let mut times = Vec::new();
    let mut latencies = Vec::new();
    let mut seen = 0;
    loop {
        let t = Instant::now();
        let f = match r.read_next(Some(Duration::from_secs(2))) {
            Ok(f) => f,
            Err(qadataswap_arrow::Error::WriterClosed { .. }) => break,
            Err(e) => return Err(e.into()),
        };
        let waited = t.elapsed();
        // Time to get the newest frame on an open reader with a frame already published.
        let t2 = Instant::now();
        let again = r.try_read()?.ok_or("frame vanished")?;
        times.push(t2.elapsed());
        drop(again);
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos() as u64;
        latencies.push(Duration::from_nanos(
            now_ns.saturating_sub(f.write_time_ns()),
        ));
        seen += 1;
        if seen == 1 {
            println!(
                "[reader {tag} pid {}] first frame seq {} rows {} columns {:?} (waited {:?})",
                std::process::id(),
                f.seq(),
                f.num_rows(),
                f.schema()
                    .fields()
                    .iter()
                    .map(|x| x.name().as_str())
                    .collect::<Vec<_>>(),
                waited
            );
        }
    }
    times.sort();
    latencies.sort();
    let st = r.stats();
    println!("[reader {tag} pid {}] read {seen} frames; median read() {:?}; median commit-to-read latency {:?}; copies {}, zero-copy buffers {}",
        std::process::id(), times[times.len() / 2], latencies[latencies.len() / 2], st.copies, st.zero_copy_buffers);
    Ok(())
}
