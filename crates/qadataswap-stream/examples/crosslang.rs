//! The Rust role of the cross-language matrix (`cargo xtask cross-lang`).
//!
//! ```text
//! crosslang golden OUT.arrows            write the golden frame (every type, nulls, 3 batches, dictionaries) as an IPC stream
//! crosslang write NAME IN.arrows         publish IN's batches as one frame, print READY, wait for a line on stdin, close
//! crosslang read NAME OUT.arrows         read the newest frame, check every buffer is in the mapping, dump it to OUT
//! crosslang compare A.arrows B.arrows    exit 0 if the two streams hold the same batches, schema and metadata
//! crosslang stream-write NAME N [SLOTS]  create stream NAME (SLOTS slots, default 4), print READY, wait for 3
//!                                        readers (30 s), write chunks 0..N (see `stream_chunk`), finish
//! crosslang stream-read NAME             read every chunk in order, check number, content and zero-copy, print
//!                                        `STREAM chunks=N ok`
//! ```
//!
//! The stream roles use this crate's protocol halves (`qadataswap_stream::protocol`, what `SharedDataStream` is built
//! on); the Python and C++ roles use their `SharedDataStream` APIs.

use std::fs::File;
use std::io::{BufRead, Write};
use std::time::Duration;

use std::sync::Arc;
use std::time::Instant;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringViewArray};
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::SchemaRef;
use qadataswap_arrow::golden::{all_types_batch, GoldenOptions};
use qadataswap_arrow::{
    buffer_ranges, ReaderOptions, SnapshotReader, SnapshotWriter, WriterOptions,
};
use qadataswap_stream::protocol::{ChunkWrite, Poll, StartAt, StreamReaderCore, StreamWriterCore};

type R<T> = Result<T, Box<dyn std::error::Error>>;

fn load(path: &str) -> R<(SchemaRef, Vec<RecordBatch>)> {
    let r = StreamReader::try_new(File::open(path)?, None)?;
    let schema = r.schema();
    let batches = r.collect::<Result<Vec<_>, _>>()?;
    Ok((schema, batches))
}

fn dump(path: &str, schema: &SchemaRef, batches: &[RecordBatch]) -> R<()> {
    let mut w = StreamWriter::try_new(File::create(path)?, schema)?;
    for b in batches {
        w.write(b)?;
    }
    w.finish()?;
    Ok(())
}

/// Chunk `k` (0-based; its stream number is k + 1) of the stream roles, the same in every language: 100 + k % 5
/// rows; `k` int64 = k; `v` int64 = k * 1000 + row; `s` utf8view = "chunk-{k}-row-{row}-payload" (longer than 12
/// bytes, so the strings live in a data buffer, not inline in the views); no field is nullable.
fn stream_chunk(k: i64) -> R<RecordBatch> {
    let rows = 100 + k % 5;
    let kc: ArrayRef = Arc::new(Int64Array::from(vec![k; rows as usize]));
    let vc: ArrayRef = Arc::new(Int64Array::from_iter_values(
        (0..rows).map(|r| k * 1000 + r),
    ));
    let sc: ArrayRef = Arc::new(StringViewArray::from_iter_values(
        (0..rows).map(|r| format!("chunk-{k}-row-{r}-payload")),
    ));
    Ok(RecordBatch::try_from_iter([
        ("k", kc),
        ("v", vc),
        ("s", sc),
    ])?)
}

/// Buffers of `batches` inside and outside `map`.
fn count_buffers(batches: &[RecordBatch], map: &qadataswap_shm::Mapping) -> (usize, usize) {
    let (mut inside, mut outside) = (0, 0);
    for b in batches {
        for c in b.columns() {
            for (addr, len) in buffer_ranges(c.as_ref()) {
                if len == 0 {
                    continue;
                }
                if map.contains(addr) && map.contains(addr + len - 1) {
                    inside += 1;
                } else {
                    outside += 1;
                }
            }
        }
    }
    (inside, outside)
}

fn stream_write(name: &str, n: i64, slots: usize) -> R<()> {
    let opts = WriterOptions {
        size: slots << 20,
        num_buffers: slots,
        spin: 0,
        ..WriterOptions::default()
    };
    let mut w = StreamWriterCore::create(name, opts)?;
    println!("READY");
    std::io::stdout().flush()?;
    let have = w.wait_for_readers(3, Duration::from_secs(30))?;
    if have < 3 {
        return Err(format!("only {have} of 3 readers attached within 30 s").into());
    }
    let start = Instant::now();
    for k in 0..n {
        let batch = stream_chunk(k)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        match w.write_chunk(batch.schema_ref(), std::slice::from_ref(&batch), deadline)? {
            ChunkWrite::Written(info) if info.seq == (k + 1) as u64 => {}
            ChunkWrite::Written(info) => {
                return Err(format!("chunk {k} got number {}, expected {}", info.seq, k + 1).into())
            }
            ChunkWrite::Blocked { .. } => {
                return Err(format!("chunk {k}: readers did not move for 30 s").into())
            }
        }
    }
    w.finish()?;
    println!(
        "STREAM-WRITE chunks={n} readers={have} lease_waits={} ({:.0} ms)",
        w.stats().lease_waits,
        start.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}

fn stream_read(name: &str) -> R<()> {
    let opts = ReaderOptions {
        timeout: Some(Duration::from_secs(30)),
        spin: 0,
        ..ReaderOptions::default()
    };
    let mut r = StreamReaderCore::open(name, &opts, StartAt::Oldest)?;
    let mut expected: i64 = 0;
    let (mut inside, mut outside) = (0, 0);
    loop {
        let p = r.wait(Some(Instant::now() + Duration::from_secs(30)))?;
        let frame = match p {
            Poll::Chunk(f) => f,
            Poll::End => break,
            Poll::Pending => return Err(format!("no chunk {} within 30 s", expected + 1).into()),
            other => return Err(format!("after {expected} chunks: {other:?}").into()),
        };
        if frame.seq() != (expected + 1) as u64 {
            return Err(format!(
                "got chunk number {}, expected {}",
                frame.seq(),
                expected + 1
            )
            .into());
        }
        let want = stream_chunk(expected)?;
        if frame.batches().len() != 1 {
            return Err(format!(
                "chunk {}: {} batches, expected 1",
                frame.seq(),
                frame.batches().len()
            )
            .into());
        }
        let got = &frame.batches()[0];
        if got.schema() != want.schema() {
            return Err(format!("chunk {}: schema {:?}", frame.seq(), got.schema()).into());
        }
        for (c, (x, y)) in got.columns().iter().zip(want.columns()).enumerate() {
            if x.to_data() != y.to_data() {
                return Err(format!("chunk {}: column {c} differs", frame.seq()).into());
            }
        }
        let kcol = got.column(0).as_primitive::<Int64Type>();
        if kcol.value(0) != expected || kcol.null_count() != 0 {
            return Err(format!("chunk {}: k = {}", frame.seq(), kcol.value(0)).into());
        }
        let (i, o) = count_buffers(frame.batches(), r.shared().mapping());
        inside += i;
        outside += o;
        expected += 1;
    }
    println!("STREAM chunks={expected} ok zero_copy_buffers={inside} copied_buffers={outside}");
    if outside != 0 {
        return Err(format!("{outside} buffers do not point into the segment").into());
    }
    Ok(())
}

fn main() -> R<()> {
    let a: Vec<String> = std::env::args().collect();
    let arg = |i: usize| {
        a.get(i)
            .map(String::as_str)
            .ok_or("missing argument (see the file's docs)")
    };
    match arg(1)? {
        "golden" => {
            let batches: Vec<RecordBatch> = [(50, 1, true), (1, 2, false), (33, 3, true)]
                .iter()
                .map(|&(rows, seed, nulls)| all_types_batch(GoldenOptions { rows, seed, nulls }))
                .collect();
            dump(arg(2)?, &batches[0].schema(), &batches)?;
        }
        "write" => {
            let (schema, batches) = load(arg(3)?)?;
            let mut w = SnapshotWriter::builder(arg(2)?).size(3 << 24).create()?;
            let info = w.write_frame(&schema, &batches)?;
            println!("READY seq={} bytes={}", info.seq, info.bytes);
            std::io::stdout().flush()?;
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            w.close()?;
        }
        "read" => {
            let r = SnapshotReader::builder(arg(2)?)
                .timeout(Some(Duration::from_secs(20)))
                .open()?;
            let f = r.read()?;
            let map = r.attachment().shared().mapping();
            let (inside, outside) = count_buffers(f.batches(), map);
            dump(arg(3)?, f.schema(), f.batches())?;
            println!("READ seq={} batches={} rows={} zero_copy_buffers={inside} copied_buffers={outside}", f.seq(), f.batches().len(), f.num_rows());
            if outside != 0 {
                return Err(format!("{outside} buffers do not point into the segment").into());
            }
        }
        "compare" => {
            let (sa, ba) = load(arg(2)?)?;
            let (sb, bb) = load(arg(3)?)?;
            if sa != sb {
                return Err(format!("schemas differ:\n{sa:#?}\nvs\n{sb:#?}").into());
            }
            if ba.len() != bb.len() {
                return Err(format!("{} batches vs {}", ba.len(), bb.len()).into());
            }
            for (i, (x, y)) in ba.iter().zip(&bb).enumerate() {
                for (c, (cx, cy)) in x.columns().iter().zip(y.columns()).enumerate() {
                    if cx.to_data() != cy.to_data() {
                        return Err(format!(
                            "batch {i} column {} ({}) differs",
                            sa.field(c).name(),
                            cx.data_type()
                        )
                        .into());
                    }
                }
            }
            println!("SAME {} batches, {} columns", ba.len(), sa.fields().len());
        }
        "stream-write" => {
            let slots = match a.get(4) {
                Some(s) => s.parse()?,
                None => 4,
            };
            stream_write(arg(2)?, arg(3)?.parse()?, slots)?;
        }
        "stream-read" => stream_read(arg(2)?)?,
        other => return Err(format!("unknown role {other}").into()),
    }
    Ok(())
}
