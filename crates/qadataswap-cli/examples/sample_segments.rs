//! Leaves a few segments in /dev/shm to try the `qadataswap` commands on (the README's sample output comes from
//! this): a live snapshot writer publishing a small price table every second with one reader attached, a segment
//! whose writer was SIGKILLed, one of another format version, and a foreign file. Removes them when it ends.
//!
//! `cargo run -p qadataswap-cli --example sample_segments -- [SECONDS]` (default 120).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use qadataswap_arrow::{SnapshotReader, SnapshotWriter};

fn prices(tick: i64) -> Result<RecordBatch, Box<dyn std::error::Error>> {
    let syms = [
        "AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AMD",
    ];
    let n = 1000;
    let sym: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..n).map(|i| syms[i % syms.len()]),
    ));
    let px: ArrayRef =
        Arc::new(Float64Array::from_iter_values((0..n).map(|i| {
            100.0 + ((i as i64 * 7 + tick * 13) % 1000) as f64 / 100.0
        })));
    let qty: ArrayRef = Arc::new(Int64Array::from_iter_values(
        (0..n as i64).map(|i| (i * 37 + tick) % 500),
    ));
    let ts: ArrayRef = Arc::new(Int64Array::from_iter_values(
        (0..n as i64).map(|i| 1_700_000_000_000 + tick * 1000 + i),
    ));
    Ok(RecordBatch::try_from_iter([
        ("symbol", sym),
        ("price", px),
        ("qty", qty),
        ("ts_ms", ts),
    ])?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("dead-writer") {
        let mut w = SnapshotWriter::create("demo-crashed", 4 << 20)?;
        w.write(&prices(0)?)?;
        println!("READY");
        std::thread::sleep(Duration::from_secs(600));
        return Ok(());
    }
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(120);

    // A writer that dies by SIGKILL.
    let mut child = Command::new(std::env::current_exe()?)
        .arg("dead-writer")
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().ok_or("no stdout")?),
        &mut line,
    )?;
    child.kill()?;
    child.wait()?;

    // Another format version: a real segment with format_version patched to a future 3.
    let mut old = SnapshotWriter::builder("demo-oldversion")
        .size(1 << 20)
        .persistent(true)
        .create()?;
    old.write(&prices(0)?)?;
    old.close()?;
    let mut bytes = std::fs::read("/dev/shm/demo-oldversion")?;
    bytes[8..12].copy_from_slice(&3u32.to_le_bytes());
    std::fs::write("/dev/shm/demo-oldversion", bytes)?;

    // Someone else's shared memory.
    std::fs::write("/dev/shm/demo-foreign", vec![0x5a; 8192])?;

    let mut w = SnapshotWriter::builder("demo-prices")
        .size(4 << 20)
        .slots(3)
        .create()?;
    w.write(&prices(0)?)?;
    let reader = SnapshotReader::open("demo-prices")?;
    let held = reader.read()?;
    println!("sample segments ready for {seconds}s: demo-prices (live, 1 reader holding frame {}), demo-crashed, demo-oldversion, demo-foreign", held.seq());
    let start = Instant::now();
    let mut tick = 1;
    while start.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_secs(1));
        w.write(&prices(tick)?)?;
        tick += 1;
    }
    drop(held);
    for n in ["demo-crashed", "demo-oldversion", "demo-foreign"] {
        let _ = std::fs::remove_file(format!("/dev/shm/{n}"));
    }
    Ok(())
}
