//! `qadataswap cat`: print the newest snapshot (or stream chunk), or follow new frames (or chunks), as tables.
//!
//! Every frame is copied into private memory and its lease released *before* anything is formatted or printed, so
//! a slow terminal (or a paused pipe) never keeps the writer off a slot. On a stream, `cat` is a
//! [`StreamFollower`]: the writer's back-pressure ignores it, and chunks it could not keep up with are reported as
//! skipped instead of being waited for.

use std::io::Write;
use std::time::Duration;

use arrow_array::RecordBatch;
use qadataswap_arrow::{Error as A, Frame, Mode, ReaderOptions, SnapshotReader};
use qadataswap_stream::protocol::{FollowEvent, StartAt, StreamFollower};

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
    print_item(name, "frame", f, opts, skipped, out)
}

fn print_item(
    name: &str,
    kind: &str,
    f: &Frame,
    opts: &CatOptions,
    skipped: u64,
    out: &mut dyn Write,
) -> Result<()> {
    let shown = first_rows(f.batches(), opts.rows);
    let shown_rows: usize = shown.iter().map(RecordBatch::num_rows).sum();
    let mut line = format!(
        "# {name} {kind} {}: {} rows in {} batch(es), {} bytes, written {}",
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
/// reader errors; on a stream, the writer's death while following (1).
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
        return cat_stream(name, opts, out);
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

fn no_chunk(name: &str, e: A) -> CliError {
    match e {
        A::Timeout { waited, .. } => CliError::NoData {
            name: name.to_owned(),
            why: format!("no chunk was published within {waited:?} (use --timeout to wait longer)"),
        },
        A::WriterClosed { .. } => CliError::NoData {
            name: name.to_owned(),
            why: "the writer closed the stream without publishing a chunk".into(),
        },
        A::WriterDied { pid, .. } => CliError::NoData {
            name: name.to_owned(),
            why: format!("the writer (pid {pid}) died without publishing a chunk"),
        },
        e => e.into(),
    }
}

/// `cat NAME` on a stream: the newest chunk, then (with `--follow`) every chunk as it arrives, skips reported.
fn cat_stream(name: &str, opts: &CatOptions, out: &mut dyn Write) -> Result<()> {
    let mut f = StreamFollower::open(name, &ReaderOptions::default(), StartAt::Newest)?;
    // The first chunk: the newest one. Skips before it are not news (we asked for the newest anyway).
    let first = loop {
        match f.next(Some(opts.first_timeout)) {
            Ok(FollowEvent::Chunk(c)) => break c,
            Ok(FollowEvent::End) => {
                return Err(CliError::NoData {
                    name: name.to_owned(),
                    why: "the stream ended without a chunk".into(),
                })
            }
            Ok(_) => continue,
            Err(e) => return Err(no_chunk(name, e)),
        }
    };
    print_item(name, "chunk", &first, opts, 0, out)?;
    if !opts.follow {
        return Ok(());
    }
    let mut printed = 1u64;
    drop(first);
    while opts.count.is_none_or(|c| printed < c) {
        match f.next(opts.next_timeout) {
            Ok(FollowEvent::Chunk(c)) => {
                print_item(name, "chunk", &c, opts, 0, out)?;
                printed += 1;
            }
            Ok(FollowEvent::Skipped { from, to }) => {
                writeln!(
                    out,
                    "# skipped chunks {from}..{to} (the follower fell behind; the writer never waits for it)"
                )?;
                out.flush()?;
            }
            Ok(FollowEvent::End) => {
                writeln!(out, "# {name}: end of stream")?;
                out.flush()?;
                return Ok(());
            }
            Ok(_) => {}
            Err(A::WriterClosed { .. }) => {
                eprintln!(
                    "qadataswap: the writer of '{name}' closed the stream without finishing it; stopping"
                );
                return Ok(());
            }
            // WriterDied (exit 1, with the arrow layer's message), timeouts and the rest.
            Err(e) => return Err(no_chunk_after_first(name, e)),
        }
    }
    Ok(())
}

fn no_chunk_after_first(name: &str, e: A) -> CliError {
    match e {
        A::Timeout { waited, .. } => CliError::NoData {
            name: name.to_owned(),
            why: format!("no new chunk within {waited:?} (use --timeout to wait longer)"),
        },
        e => e.into(),
    }
}
