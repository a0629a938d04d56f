//! Stream throughput, one writer process and one reader process: `SharedDataStream` beside an Arrow IPC stream
//! (arrow-ipc `StreamWriter` / `StreamReader`) over a Unix socket, in the same run, for small (1k rows) and large
//! (1M rows) chunks of (int64, float64).
//!
//! The clock runs in the writer from the first write until the reader reports it has received the last chunk. The
//! reader checks the first and last value of every chunk (neither side scans all the data), so the numbers measure
//! the hand-off, not a computation.
//!
//! `cargo run --release -p qadataswap-stream --example stream_bench [-- --quick] [--case small|large] [--json PATH]`
//!
//! `-- --per-side` instead measures what each side costs per small chunk without a peer: one thread writes a chunk
//! and reads it back, 200k times (no waiting, no wake-ups: the encode and decode paths alone).

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch};
use qadataswap_stream::{Config, SharedDataStream};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn batch(rows: usize, seq: i64) -> RecordBatch {
    let i: ArrayRef = Arc::new(Int64Array::from_iter_values(
        (0..rows as i64).map(|v| v + seq),
    ));
    let f: ArrayRef = Arc::new(Float64Array::from_iter_values(
        (0..rows).map(|v| v as f64 * 0.5),
    ));
    RecordBatch::try_from_iter([("i64", i), ("f64", f)]).expect("valid batch")
}

/// The reader's check: first and last value of the int column carry the chunk number.
fn check(b: &RecordBatch, seq: i64) -> Res<()> {
    let a = b
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or("column 0 is not int64")?;
    let n = a.len() as i64;
    if a.value(0) != seq || a.value(a.len() - 1) != seq + n - 1 {
        return Err(format!("chunk {seq} has wrong values").into());
    }
    Ok(())
}

fn data_bytes(b: &RecordBatch) -> usize {
    b.columns()
        .iter()
        .map(|c| c.to_data().buffers().iter().map(|x| x.len()).sum::<usize>())
        .sum()
}

struct Case {
    label: &'static str,
    rows: usize,
    chunks: usize,
}

struct Row {
    case: &'static str,
    transport: &'static str,
    rows: usize,
    chunks: usize,
    chunk_bytes: usize,
    seconds: f64,
}

impl Row {
    fn chunks_per_s(&self) -> f64 {
        self.chunks as f64 / self.seconds
    }
    fn gb_per_s(&self) -> f64 {
        (self.chunks * self.chunk_bytes) as f64 / self.seconds / 1e9
    }
}

fn spawn_reader(
    args: &[String],
) -> Res<(std::process::Child, BufReader<std::process::ChildStdout>)> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let out = BufReader::new(child.stdout.take().ok_or("no stdout")?);
    Ok((child, out))
}

fn expect(out: &mut impl BufRead, what: &str) -> Res<()> {
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line)? == 0 {
            return Err(format!("reader exited before saying {what}").into());
        }
        if line.trim() == what {
            return Ok(());
        }
    }
}

fn run_shm(case: &Case) -> Res<Row> {
    let name = format!("qads-bench-stream-{}-{}", std::process::id(), case.rows);
    let sample = batch(case.rows, 0);
    let slots = 4;
    let size = slots * (data_bytes(&sample) + (64 << 10));
    let mut w = SharedDataStream::writer(&name)
        .config(Config::default())
        .size(size)
        .slots(slots)
        .timeout(Some(Duration::from_secs(60)))
        .create()?;
    let (mut child, mut out) = spawn_reader(&[
        "--role".into(),
        "shm".into(),
        name.clone(),
        case.chunks.to_string(),
    ])?;
    expect(&mut out, "READY")?;
    w.wait_for_readers(1, Duration::from_secs(30))?;
    let batches: Vec<_> = (0..case.chunks.min(16))
        .map(|i| batch(case.rows, i as i64))
        .collect();
    let t0 = Instant::now();
    for i in 0..case.chunks {
        w.write_chunk(&batches[i % batches.len()])?;
    }
    w.finish()?;
    expect(&mut out, "DONE")?;
    let seconds = t0.elapsed().as_secs_f64();
    child.wait()?;
    Ok(Row {
        case: case.label,
        transport: "SharedDataStream (shm)",
        rows: case.rows,
        chunks: case.chunks,
        chunk_bytes: data_bytes(&sample),
        seconds,
    })
}

fn read_shm(name: &str, chunks: usize) -> Res<()> {
    let mut r = SharedDataStream::reader(name)
        .config(Config::default())
        .timeout(Some(Duration::from_secs(60)))
        .open()?;
    println!("READY");
    std::io::stdout().flush()?;
    let mut n = 0;
    for c in r.iter_chunks() {
        let c = c?;
        check(&c.batches()[0], (n % chunks.min(16)) as i64)?;
        n += 1;
    }
    if n != chunks {
        return Err(format!("got {n} chunks, expected {chunks}").into());
    }
    if r.stats().copies != 0 {
        return Err("the stream reader copied".into());
    }
    println!("DONE");
    Ok(())
}

fn run_socket(case: &Case) -> Res<Row> {
    let path = std::env::temp_dir().join(format!(
        "qads-bench-{}-{}.sock",
        std::process::id(),
        case.rows
    ));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    let (mut child, mut out) = spawn_reader(&[
        "--role".into(),
        "socket".into(),
        path.display().to_string(),
        case.chunks.to_string(),
    ])?;
    let (sock, _) = listener.accept()?;
    expect(&mut out, "READY")?;
    let sample = batch(case.rows, 0);
    let batches: Vec<_> = (0..case.chunks.min(16))
        .map(|i| batch(case.rows, i as i64))
        .collect();
    let t0 = Instant::now();
    let mut w = arrow_ipc::writer::StreamWriter::try_new(
        BufWriter::with_capacity(1 << 20, sock),
        &sample.schema(),
    )?;
    for i in 0..case.chunks {
        w.write(&batches[i % batches.len()])?;
    }
    w.finish()?;
    drop(w);
    expect(&mut out, "DONE")?;
    let seconds = t0.elapsed().as_secs_f64();
    child.wait()?;
    let _ = std::fs::remove_file(&path);
    Ok(Row {
        case: case.label,
        transport: "Arrow IPC stream over a Unix socket",
        rows: case.rows,
        chunks: case.chunks,
        chunk_bytes: data_bytes(&sample),
        seconds,
    })
}

fn read_socket(path: &str, chunks: usize) -> Res<()> {
    let sock = UnixStream::connect(path)?;
    println!("READY");
    std::io::stdout().flush()?;
    let r =
        arrow_ipc::reader::StreamReader::try_new(BufReader::with_capacity(1 << 20, sock), None)?;
    let mut n = 0;
    for b in r {
        check(&b?, (n % chunks.min(16)) as i64)?;
        n += 1;
    }
    if n != chunks {
        return Err(format!("got {n} chunks, expected {chunks}").into());
    }
    println!("DONE");
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--role") {
        let (role, target, chunks) = (&args[1], &args[2], args[3].parse::<usize>()?);
        return match role.as_str() {
            "shm" => read_shm(target, chunks),
            _ => read_socket(target, chunks),
        };
    }
    if args.first().map(String::as_str) == Some("--per-side") {
        return per_side();
    }
    let quick = args.iter().any(|a| a == "--quick");
    let json = args
        .iter()
        .position(|a| a == "--json")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let cases = [
        Case {
            label: "small",
            rows: 1_000,
            chunks: if quick { 5_000 } else { 50_000 },
        },
        Case {
            label: "large",
            rows: 1_000_000,
            chunks: if quick { 20 } else { 200 },
        },
    ];
    let only = args
        .iter()
        .position(|a| a == "--case")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let mut rows = Vec::new();
    for case in cases
        .iter()
        .filter(|c| only.as_deref().is_none_or(|o| o == c.label))
    {
        rows.push(run_shm(case)?);
        rows.push(run_socket(case)?);
    }
    println!(
        "\nStream throughput, 1 writer process -> 1 reader process, chunks of (int64, float64); {} cores; \
         SharedDataStream ring: 4 slots, default spin\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<6} {:>9} {:<36} {:>7} {:>10} {:>8} {:>12} {:>8} {:>9}",
        "case", "rows", "transport", "chunks", "chunk KiB", "seconds", "chunks/s", "GB/s", "vs IPC"
    );
    for pair in rows.chunks(2) {
        let ipc = pair[1].gb_per_s();
        for r in pair {
            println!(
                "{:<6} {:>9} {:<36} {:>7} {:>10.1} {:>8.3} {:>12.0} {:>8.2} {:>8.2}x",
                r.case,
                r.rows,
                r.transport,
                r.chunks,
                r.chunk_bytes as f64 / 1024.0,
                r.seconds,
                r.chunks_per_s(),
                r.gb_per_s(),
                r.gb_per_s() / ipc
            );
        }
    }
    if let Some(path) = json {
        let items: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{{\"case\":\"{}\",\"transport\":\"{}\",\"rows\":{},\"chunks\":{},\"chunk_bytes\":{},\"seconds\":{:.6},\"chunks_per_s\":{:.1},\"gb_per_s\":{:.4}}}",
                    r.case, r.transport, r.rows, r.chunks, r.chunk_bytes, r.seconds, r.chunks_per_s(), r.gb_per_s()
                )
            })
            .collect();
        std::fs::write(&path, format!("{{\"results\":[{}]}}\n", items.join(",")))?;
        println!("\nJSON written to {path}");
    }
    Ok(())
}

/// `--per-side`: the write and the read of a small chunk, timed separately, in one thread.
fn per_side() -> Res<()> {
    let name = format!("qads-bench-per-side-{}", std::process::id());
    let sample = batch(1_000, 0);
    let slots = 4;
    let size = slots * (data_bytes(&sample) + (64 << 10));
    let mut w = SharedDataStream::writer(&name)
        .config(Config::default())
        .size(size)
        .slots(slots)
        .create()?;
    let mut r = SharedDataStream::reader(&name)
        .config(Config::default())
        .open()?;
    let batches: Vec<_> = (0..16).map(|i| batch(1_000, i as i64)).collect();
    let n = 200_000;
    let (mut tw, mut tr) = (Duration::ZERO, Duration::ZERO);
    for i in 0..n {
        let t0 = Instant::now();
        w.write_chunk(&batches[i % 16])?;
        let t1 = Instant::now();
        let c = r.next_chunk(None)?.ok_or("the stream ended early")?;
        check(&c.batches()[0], (i % 16) as i64)?;
        drop(c);
        tr += t1.elapsed();
        tw += t1 - t0;
    }
    w.finish()?;
    println!(
        "per small chunk (1000 rows), one thread: write {:.2} us, read {:.2} us",
        tw.as_secs_f64() * 1e6 / n as f64,
        tr.as_secs_f64() * 1e6 / n as f64
    );
    Ok(())
}
