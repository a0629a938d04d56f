//! The Rust role of the cross-language matrix (`cargo xtask cross-lang`).
//!
//! ```text
//! crosslang golden OUT.arrows            write the golden frame (every type, nulls, 3 batches, dictionaries) as an IPC stream
//! crosslang write NAME IN.arrows         publish IN's batches as one frame, print READY, wait for a line on stdin, close
//! crosslang read NAME OUT.arrows         read the newest frame, check every buffer is in the mapping, dump it to OUT
//! crosslang compare A.arrows B.arrows    exit 0 if the two streams hold the same batches, schema and metadata
//! ```

use std::fs::File;
use std::io::{BufRead, Write};
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::SchemaRef;
use qadataswap_arrow::golden::{all_types_batch, GoldenOptions};
use qadataswap_arrow::{buffer_ranges, SnapshotReader, SnapshotWriter};

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
            let (mut inside, mut outside) = (0, 0);
            for b in f.batches() {
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
        other => return Err(format!("unknown role {other}").into()),
    }
    Ok(())
}
