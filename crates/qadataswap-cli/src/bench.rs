//! `qadataswap bench`: a quick measurement of this machine with the library's own writer and reader.
//!
//! The same calls as `cargo xtask bench` (SnapshotWriter::write, SnapshotReader::read on an open reader, a
//! cross-process handoff), on the same data (`golden::numeric_batch`), in a couple of seconds.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use indicatif::{ProgressBar, ProgressStyle};
use qadataswap_arrow::{golden, SnapshotReader, SnapshotWriter};
use serde::Serialize;

use crate::error::{CliError, Result};
use crate::render::{bytes, duration, Table};

/// Options of `bench`.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Rows of the numeric frame.
    pub rows: usize,
    /// Columns (alternating int64 / float64).
    pub cols: usize,
    /// Timed iterations of each of write and read.
    pub iters: usize,
    /// Round trips of the cross-process handoff (0: skip it).
    pub pings: usize,
}

#[derive(Serialize)]
struct Measure {
    what: &'static str,
    iterations: usize,
    median_s: f64,
    p90_s: f64,
    min_s: f64,
    bytes_per_s: Option<f64>,
}

#[derive(Serialize)]
struct BenchReport {
    rows: usize,
    cols: usize,
    frame_bytes: usize,
    results: Vec<Measure>,
}

fn summarise(what: &'static str, mut samples: Vec<f64>, bytes: Option<usize>) -> Measure {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    let at = |q: f64| {
        samples
            .get(((n as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let median = at(0.5);
    Measure {
        what,
        iterations: n,
        median_s: median,
        p90_s: at(0.9),
        min_s: at(0.0),
        bytes_per_s: bytes.filter(|_| median > 0.0).map(|b| b as f64 / median),
    }
}

fn bar(len: usize, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template("{msg:28} [{bar:30}] {pos}/{len} {elapsed}") {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_owned());
    pb
}

fn names(tag: &str) -> String {
    format!("qads-bench-{}-{tag}", std::process::id())
}

/// Run the bench and print a table (or JSON).
///
/// # Errors
/// Any writer/reader error, or a failed handoff peer.
pub fn bench(opts: &BenchOptions, json: bool, out: &mut dyn Write) -> Result<()> {
    let batch = golden::numeric_batch(opts.rows, opts.cols);
    let frame_bytes = batch.get_array_memory_size();
    let slot = frame_bytes + frame_bytes / 8 + (1 << 20);
    let name = names("frame");
    let mut writer = SnapshotWriter::builder(&name)
        .size(3 * slot)
        .slots(3)
        .create()?;
    let mut results = Vec::new();

    // Warm up: fault the slots in, prime the schema area.
    for _ in 0..3 {
        writer.write(&batch)?;
    }
    let pb = bar(opts.iters, "write 1 frame");
    let mut samples = Vec::with_capacity(opts.iters);
    let mut encoded = 0;
    for _ in 0..opts.iters {
        let t = Instant::now();
        let info = writer.write(&batch)?;
        samples.push(t.elapsed().as_secs_f64());
        encoded = info.bytes;
        pb.inc(1);
    }
    pb.finish_and_clear();
    results.push(summarise("write (encode + commit)", samples, Some(encoded)));

    let reader = SnapshotReader::builder(&name)
        .timeout(Some(Duration::from_secs(10)))
        .open()?;
    drop(reader.read()?);
    let pb = bar(opts.iters, "read() zero-copy");
    let mut samples = Vec::with_capacity(opts.iters);
    for _ in 0..opts.iters {
        let t = Instant::now();
        let f = reader.read()?;
        samples.push(t.elapsed().as_secs_f64());
        drop(f);
        pb.inc(1);
    }
    pb.finish_and_clear();
    // Nothing is moved by a zero-copy read: a bytes/s figure would only measure the clock.
    results.push(summarise("read() zero-copy", samples, None));

    let pb = bar(opts.iters, "read_copied()");
    let mut samples = Vec::with_capacity(opts.iters);
    for _ in 0..opts.iters {
        let t = Instant::now();
        let f = reader.read_copied()?;
        samples.push(t.elapsed().as_secs_f64());
        drop(f);
        pb.inc(1);
    }
    pb.finish_and_clear();
    results.push(summarise(
        "read_copied() (private copy)",
        samples,
        Some(encoded),
    ));
    drop(reader);
    drop(writer);

    if opts.pings > 0 {
        results.push(handoff(opts.pings)?);
    }

    let report = BenchReport {
        rows: opts.rows,
        cols: opts.cols,
        frame_bytes: encoded,
        results,
    };
    if json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "qadataswap bench: {} rows x {} columns (int64/float64), {} per frame, {} iterations",
        opts.rows,
        opts.cols,
        bytes(encoded as u64),
        opts.iters
    )?;
    let mut t = Table::new(&["WHAT", "MEDIAN", "P90", "MIN", "THROUGHPUT"]);
    for m in &report.results {
        t.row(vec![
            m.what.into(),
            duration(m.median_s),
            duration(m.p90_s),
            duration(m.min_s),
            m.bytes_per_s
                .map_or("-".into(), |b| format!("{}/s", bytes(b as u64))),
        ]);
    }
    out.write_all(t.render().as_bytes())?;
    Ok(())
}

fn one(v: i64) -> Result<RecordBatch> {
    let col: ArrayRef = Arc::new(Int64Array::from(vec![v]));
    Ok(RecordBatch::try_from_iter([("v", col)])?)
}

fn value(f: &qadataswap_arrow::Frame) -> Option<i64> {
    let b = f.batches().first()?;
    let a = b.columns().first()?.as_primitive_opt::<Int64Type>()?;
    (!a.is_empty()).then(|| a.value(0))
}

/// Cross-process ping-pong over two snapshot segments: one-way latency = round trip / 2.
fn handoff(pings: usize) -> Result<Measure> {
    let ping = names("ping");
    let pong = names("pong");
    let mut writer = SnapshotWriter::builder(&ping).size(3 << 16).create()?;
    let mut child = crate::self_command()?
        .args(["bench-peer", "--ping", &ping, "--pong", &pong])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()?;
    let fail = |what: String| CliError::Bench { what };
    let result = (|| -> Result<Measure> {
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| fail("peer has no stdout".into()))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if line.trim() != "READY" {
            return Err(fail(format!("peer did not start (said {line:?})")));
        }
        let reader = SnapshotReader::builder(&pong)
            .timeout(Some(Duration::from_secs(10)))
            .open()?;
        let pb = bar(pings, "cross-process handoff");
        let mut samples = Vec::with_capacity(pings);
        for i in 1..=pings as i64 {
            let b = one(i)?;
            let t = Instant::now();
            writer.write(&b)?;
            loop {
                let f = reader.read_next(None)?;
                if value(&f) == Some(i) {
                    break;
                }
            }
            samples.push(t.elapsed().as_secs_f64() / 2.0);
            pb.inc(1);
        }
        pb.finish_and_clear();
        Ok(summarise("handoff, one way (1-row frame)", samples, None))
    })();
    // Tell the peer to stop (a negative value), then reap it; kill it only if it does not stop.
    let _ = writer.write(&one(-1)?);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match child.try_wait()? {
            Some(_) => break,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    result
}

/// The other end of the handoff: echo every value from `ping` to `pong` until a negative one.
///
/// # Errors
/// Reader/writer errors; a 10 s silence from the parent ends it.
pub fn peer(ping: &str, pong: &str) -> Result<()> {
    let reader = SnapshotReader::builder(ping)
        .timeout(Some(Duration::from_secs(10)))
        .open()?;
    let mut writer = SnapshotWriter::builder(pong).size(3 << 16).create()?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "READY")?;
    stdout.flush()?;
    loop {
        let f = reader.read_next(None)?;
        let Some(v) = value(&f) else { continue };
        drop(f);
        if v < 0 {
            return Ok(());
        }
        writer.write(&one(v)?)?;
    }
}
