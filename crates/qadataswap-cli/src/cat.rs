//! `qadataswap cat`: print the newest snapshot, or follow new frames, as tables.
//!
//! Every frame is copied into private memory and its lease released *before* anything is formatted or printed, so
//! a slow terminal (or a paused pipe) never keeps the writer off a slot.

use std::io::Write;
use std::time::Duration;

use arrow_array::RecordBatch;
use qadataswap_arrow::{Error as A, Frame, Mode, SnapshotReader};

use crate::error::{CliError, Result};
use crate::listing::refusal;
use crate::render::age;
use crate::status;

/// Options of `cat`.
#[derive(Clone, Debug)]
pub struct CatOptions {
    /// Rows to print per frame (0: all).
    pub rows: usize,
    /// Keep printing new frames.
    pub follow: bool,
    /// With `follow`: stop after this many frames.
    pub count: Option<u64>,
    /// How long to wait for a first frame.
    pub first_timeout: Duration,
    /// Following: how long to wait for each next frame (`None`: until the writer closes or dies).
    pub next_timeout: Option<Duration>,
}

fn first_rows(batches: &[RecordBatch], limit: usize) -> Vec<RecordBatch> {
    if limit == 0 {
        return batches.to_vec();
    }
    let mut left = limit;
    let mut out = Vec::new();
    for b in batches {
        if left == 0 {
            break;
        }
        let n = b.num_rows().min(left);
        out.push(b.slice(0, n));
        left -= n;
    }
    out
}

fn print_frame(
    name: &str,
    f: &Frame,
    opts: &CatOptions,
    skipped: u64,
    out: &mut dyn Write,
) -> Result<()> {
    let shown = first_rows(f.batches(), opts.rows);
    let shown_rows: usize = shown.iter().map(RecordBatch::num_rows).sum();
    let mut line = format!(
        "# {name} frame {}: {} rows in {} batch(es), {} bytes, written {}",
        f.seq(),
        f.num_rows(),
        f.batches().len(),
        f.num_bytes(),
        age(f.write_time_ns()),
    );
    if shown_rows < f.num_rows() {
        line.push_str(&format!("; first {shown_rows} rows (--rows 0 shows all)"));
    }
    if skipped > 0 {
        line.push_str(&format!(
            "; {skipped} newer-than-last frame(s) skipped while printing"
        ));
    }
    writeln!(out, "{line}")?;
    if shown.is_empty() {
        writeln!(out, "(schema: {})", f.schema())?;
    } else {
        writeln!(
            out,
            "{}",
            arrow_cast::pretty::pretty_format_batches(&shown)?
        )?;
    }
    out.flush()?;
    Ok(())
}

fn no_data(name: &str, e: A) -> CliError {
    match e {
        A::Timeout { waited, .. } => CliError::NoData {
            name: name.to_owned(),
            why: format!("no frame was published within {waited:?} (use --timeout to wait longer)"),
        },
        A::WriterClosed { .. } => CliError::NoData {
            name: name.to_owned(),
            why: "the writer closed without publishing a frame".into(),
        },
        A::WriterDied { pid, .. } => CliError::NoData {
            name: name.to_owned(),
            why: format!("the writer (pid {pid}) died without publishing a frame"),
        },
        e => e.into(),
    }
}

/// `cat NAME`.
///
/// # Errors
/// [`CliError::NotFound`] (3), [`CliError::Foreign`]/[`CliError::Incompatible`] (5), [`CliError::NoData`] (6),
/// [`CliError::Unsupported`] for stream segments, reader errors.
pub fn cat(name: &str, opts: &CatOptions, out: &mut dyn Write) -> Result<()> {
    let s = match status::classify(name, None) {
        Ok(s) => s,
        Err(A::Shm(
            qadataswap_shm::ShmError::NotFound { .. }
            | qadataswap_shm::ShmError::InvalidName { .. },
        )) => {
            return Err(CliError::NotFound {
                name: name.to_owned(),
            })
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(e) = refusal(&s) {
        return Err(e);
    }
    if s.mode() == Some(Mode::Stream) {
        return Err(CliError::Unsupported {
            what: format!(
                "segment '{name}' is a stream; `cat` of streams needs the qadataswap-stream reader, which this \
                 build does not have yet: `qadataswap inspect {name}` shows its state"
            ),
        });
    }
    let reader = SnapshotReader::builder(name).timeout(None).open()?;
    // Copy out, then release the lease (dropping the leased frame), then print.
    let copy = |f: Frame| -> Result<Frame> {
        let owned = f.to_owned()?;
        drop(f);
        Ok(owned)
    };
    let first = reader
        .read_timeout(opts.first_timeout)
        .map_err(|e| no_data(name, e))
        .and_then(copy)?;
    print_frame(name, &first, opts, 0, out)?;
    if !opts.follow {
        return Ok(());
    }
    let mut printed = 1u64;
    let mut last = first.seq();
    drop(first);
    while opts.count.is_none_or(|c| printed < c) {
        let f = match reader.read_next(opts.next_timeout) {
            Ok(f) => copy(f)?,
            Err(A::WriterClosed { .. }) => {
                eprintln!("qadataswap: the writer of '{name}' closed; stopping");
                return Ok(());
            }
            Err(A::WriterDied { pid, .. }) => {
                eprintln!("qadataswap: the writer of '{name}' (pid {pid}) died; stopping");
                return Ok(());
            }
            Err(e) => return Err(no_data(name, e)),
        };
        let skipped = f.seq().saturating_sub(last + 1);
        last = f.seq();
        print_frame(name, &f, opts, skipped, out)?;
        printed += 1;
    }
    Ok(())
}
