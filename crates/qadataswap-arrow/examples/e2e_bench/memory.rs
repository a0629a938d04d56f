//! Suite `memory`: what reading a large frame costs a reader in memory, and how many copies of the data the machine
//! holds, for four ways to hand a frame of (int64, float64) to another process:
//! - `qadataswap loan`: the writer builds the columns in place in the segment (`SnapshotWriter::loan`), the reader
//!   `read()`s it; with the default 3 slots, and with 1 slot (a ring of 3 slots holds 3 frame-sized slots, reserved
//!   with fallocate and mapped with MAP_POPULATE by writer and readers alike);
//! - `qadataswap write`: the writer builds a `RecordBatch` and `write()`s it (one copy into the segment) and keeps
//!   its batch;
//! - `socket` (copies): arrow-ipc `StreamWriter` over a Unix socket into the reader's memory;
//! - `mmap file` (maps): an Arrow IPC file written to /dev/shm, mapped by the reader and decoded in place
//!   (`FileDecoder` over an mmap'd `Buffer`, alignment required so nothing is silently copied).
//!
//! The reader reads `/proc/self/smaps_rollup` before it attaches and after it holds the frame and has read every
//! value (so every page is mapped). Memory on the machine = (the writer's growth in anonymous memory + the reader's
//! growth in anonymous memory + the bytes tmpfs holds for the segment or file) / the frame's bytes, all measured
//! while the reader holds the frame and the writer holds whatever it built. It counts copies of the data and room
//! reserved for more (a ring's other slots) alike: the tables say which is which.

use std::io::{BufReader, BufWriter};
use std::os::unix::net::{UnixListener, UnixStream};
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch};
use arrow_buffer::Buffer;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use qadataswap_arrow::{SnapshotReader, SnapshotWriter};
use rustix::mm::{MapFlags, ProtFlags};

use crate::harness::{
    accept_within, child_command, js, push_chart, push_goals, segment_name, sibling, smaps,
    socket_path, tmpfs_bytes, wait_for, ControlMap, Kid, Mem, Pause, Res, TempPath,
};
use crate::svg;
use crate::Opts;

const LIMIT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Rival {
    Loan,
    LoanOneSlot,
    Write,
    Socket,
    Mmap,
}

impl Rival {
    const ALL: [Rival; 5] = [
        Rival::Loan,
        Rival::LoanOneSlot,
        Rival::Write,
        Rival::Socket,
        Rival::Mmap,
    ];
    fn key(self) -> &'static str {
        match self {
            Rival::Loan => "qadataswap-loan",
            Rival::LoanOneSlot => "qadataswap-loan-1-slot",
            Rival::Write => "qadataswap-write",
            Rival::Socket => "socket",
            Rival::Mmap => "mmap-file",
        }
    }
    fn label(self) -> &'static str {
        match self {
            Rival::Loan => "qadataswap, loan (built in place), 3 slots",
            Rival::LoanOneSlot => "qadataswap, loan (built in place), 1 slot",
            Rival::Write => "qadataswap, write() (writer keeps its batch), 3 slots",
            Rival::Socket => "Arrow IPC over a Unix socket (copies)",
            Rival::Mmap => "Arrow IPC file on /dev/shm + mmap (maps)",
        }
    }
    fn parse(s: &str) -> Res<Rival> {
        Rival::ALL
            .into_iter()
            .find(|r| r.key() == s)
            .ok_or_else(|| format!("unknown rival {s}").into())
    }
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("i64", DataType::Int64, false),
        Field::new("f64", DataType::Float64, false),
    ]))
}

fn batch(rows: usize) -> Res<RecordBatch> {
    let i: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows as i64));
    let f: ArrayRef = Arc::new(Float64Array::from_iter_values(
        (0..rows).map(|v| v as f64 * 0.5),
    ));
    Ok(RecordBatch::try_new(schema(), vec![i, f])?)
}

/// Reads every value (every page of the columns gets mapped) and checks the sum, so the bytes are really there.
fn touch(b: &RecordBatch) -> Res<()> {
    let i = b
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or("column 0 is not int64")?;
    let f = b
        .column(1)
        .as_any()
        .downcast_ref::<Float64Array>()
        .ok_or("column 1 is not float64")?;
    let si: i64 = i.values().iter().copied().fold(0i64, i64::wrapping_add);
    let sf: f64 = f.values().iter().sum();
    let n = i.len() as i64;
    if si != n.wrapping_mul(n - 1) / 2
        || (sf - (n as f64) * (n as f64 - 1.0) / 4.0).abs() > 1e-3 * sf.abs().max(1.0)
    {
        return Err("the frame's values are wrong".into());
    }
    Ok(())
}

struct Outcome {
    rival: Rival,
    frame_bytes: u64,
    before: Mem,
    after: Mem,
    writer_anon: i64,
    tmpfs: u64,
}

impl Outcome {
    fn d(&self, f: fn(&Mem) -> u64) -> i64 {
        f(&self.after) as i64 - f(&self.before) as i64
    }
    fn pct(&self, bytes: i64) -> f64 {
        bytes as f64 * 100.0 / self.frame_bytes as f64
    }
    /// Memory on the machine for the data, in frames.
    fn held(&self) -> f64 {
        (self.writer_anon.max(0) + self.d(|m| m.anon).max(0) + self.tmpfs as i64) as f64
            / self.frame_bytes as f64
    }

    /// Copies of the frame's bytes: each process's anonymous growth in whole frames, plus one for a segment or file
    /// that holds the frame (a ring's other slots are room reserved for later frames, not copies).
    fn copies(&self) -> u64 {
        let frames = |b: i64| (b.max(0) as f64 / self.frame_bytes as f64).round() as u64;
        frames(self.writer_anon) + frames(self.d(|m| m.anon)) + u64::from(self.tmpfs > 0)
    }
}

fn measure(rival: Rival, rows: usize) -> Res<Outcome> {
    let tag = format!("mem-{}", rival.key());
    let map = ControlMap::create(&tag)?;
    let ctl = map.ctl();
    let frame_bytes = (rows * 16) as u64;
    let spawn = |target: &str| {
        Kid::spawn(&mut child_command(&[
            "memory".into(),
            rival.key().into(),
            map.path.clone(),
            target.to_owned(),
            rows.to_string(),
        ])?)
    };
    let reported = || {
        wait_for(
            "the reader's measurement",
            LIMIT,
            Pause::Sleep(Duration::from_millis(2)),
            || ctl.readers[0].ack.load(Ordering::Acquire) >= 1,
        )
    };
    let w0 = smaps()?;
    let (writer_after, tmpfs, kid);
    match rival {
        Rival::Loan | Rival::LoanOneSlot | Rival::Write => {
            let seg = segment_name(&tag);
            let slots = if rival == Rival::LoanOneSlot { 1 } else { 3 };
            let mut w = SnapshotWriter::builder(&seg)
                .slots(slots)
                .size(slots * (frame_bytes as usize + (1 << 20)))
                .create()?;
            let kept = if rival != Rival::Write {
                let mut loan = w.loan(&schema(), rows)?;
                for (k, v) in loan.column_mut::<Int64Type>(0)?.iter_mut().enumerate() {
                    *v = k as i64;
                }
                for (k, v) in loan.column_mut::<Float64Type>(1)?.iter_mut().enumerate() {
                    *v = k as f64 * 0.5;
                }
                loan.commit()?;
                None
            } else {
                let b = batch(rows)?;
                w.write(&b)?;
                Some(b)
            };
            kid = spawn(&seg)?;
            reported()?;
            writer_after = smaps()?;
            tmpfs = tmpfs_bytes(&format!("/dev/shm/{seg}"))?;
            ctl.stop.0.store(1, Ordering::Release);
            kid.finish(LIMIT)?;
            drop(kept);
            w.close()?;
        }
        Rival::Socket => {
            let b = batch(rows)?;
            let path = socket_path(&tag);
            let listener = UnixListener::bind(&path.0)?;
            kid = spawn(&path.display())?;
            let sock = accept_within(&listener, LIMIT)?;
            let mut sw =
                arrow_ipc::writer::StreamWriter::try_new(BufWriter::new(sock), &b.schema())?;
            sw.write(&b)?;
            sw.finish()?;
            drop(sw);
            reported()?;
            writer_after = smaps()?;
            tmpfs = 0;
            ctl.stop.0.store(1, Ordering::Release);
            kid.finish(LIMIT)?;
            drop(b);
        }
        Rival::Mmap => {
            let b = batch(rows)?;
            let path = TempPath::new(
                format!("/dev/shm/qads-e2e-{}-{tag}.arrow", std::process::id()).into(),
            );
            let file = std::fs::File::create(&path.0)?;
            let mut fw = arrow_ipc::writer::FileWriter::try_new(BufWriter::new(file), &b.schema())?;
            fw.write(&b)?;
            fw.finish()?;
            drop(fw);
            kid = spawn(&path.display())?;
            reported()?;
            writer_after = smaps()?;
            tmpfs = tmpfs_bytes(&path.display())?;
            ctl.stop.0.store(1, Ordering::Release);
            kid.finish(LIMIT)?;
            drop(b);
        }
    }
    let v = |i: usize| ctl.readers[0].vals[i].load(Ordering::Relaxed);
    Ok(Outcome {
        rival,
        frame_bytes,
        before: Mem {
            pss: v(0),
            private: v(2),
            anon: v(4),
            rss: v(6),
        },
        after: Mem {
            pss: v(1),
            private: v(3),
            anon: v(5),
            rss: v(7),
        },
        writer_anon: writer_after.anon as i64 - w0.anon as i64,
        tmpfs,
    })
}

/// An mmap'd file, unmapped when the last `Buffer` that points into it is dropped.
struct Mapped {
    addr: usize,
    len: usize,
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `read_mapped`; this runs when the last Buffer into it is gone.
        let _ = unsafe { rustix::mm::munmap(self.addr as *mut std::ffi::c_void, self.len) };
    }
}

/// The mapping rival's reader: the IPC file mapped read-only and decoded in place.
fn read_mapped(path: &str) -> Res<RecordBatch> {
    let file = std::fs::File::open(path)?;
    let len = usize::try_from(file.metadata()?.len())?;
    if len < 10 {
        return Err("IPC file too short".into());
    }
    // SAFETY: a fresh read-only shared mapping of the whole file; the writer finished it before this reader was
    // started and nobody changes it while it is mapped.
    let ptr = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ,
            MapFlags::SHARED,
            &file,
            0,
        )
    }?;
    let owner = Arc::new(Mapped {
        addr: ptr as usize,
        len,
    });
    let ptr = NonNull::new(ptr.cast::<u8>()).ok_or("mmap returned null")?;
    // SAFETY: `ptr` is valid for reads of `len` bytes for as long as `owner` lives (it unmaps on drop), and the
    // Buffer keeps `owner` alive; the bytes do not change while mapped (see above).
    let buf = unsafe { Buffer::from_custom_allocation(ptr, len, owner) };
    let trailer = len - 10;
    let footer_len = arrow_ipc::reader::read_footer_length(buf[trailer..].try_into()?)?;
    let start = trailer
        .checked_sub(footer_len)
        .ok_or("footer longer than the file")?;
    let footer =
        arrow_ipc::root_as_footer(&buf[start..trailer]).map_err(|e| format!("footer: {e}"))?;
    let schema =
        arrow_ipc::convert::try_fb_to_schema(footer.schema().ok_or("no schema in the footer")?)?;
    let decoder = arrow_ipc::reader::FileDecoder::new(Arc::new(schema), footer.version())
        .with_require_alignment(true);
    let blocks = footer
        .recordBatches()
        .ok_or("no record batches in the footer")?;
    if blocks.is_empty() {
        return Err("no record batches in the file".into());
    }
    let block = blocks.get(0);
    let block_len = usize::try_from(block.bodyLength())? + usize::try_from(block.metaDataLength())?;
    let data = buf.slice_with_length(usize::try_from(block.offset())?, block_len);
    let batch = decoder
        .read_record_batch(block, &data)?
        .ok_or("the block holds no record batch")?;
    // Zero copy: the columns must point into the mapping.
    let base = buf.as_ptr() as usize;
    for c in batch.columns() {
        let p = c.to_data().buffers()[0].as_ptr() as usize;
        if p < base || p >= base + len {
            return Err("the mapped IPC file was copied on read".into());
        }
    }
    Ok(batch)
}

/// The reader process: args `rival control target rows`.
pub fn child(args: &[String]) -> Res<()> {
    let rival = Rival::parse(args.first().ok_or("rival")?)?;
    let map = ControlMap::open(args.get(1).ok_or("control path")?)?;
    let target = args.get(2).ok_or("target")?;
    let rows: usize = crate::harness::arg(args, 3)?;
    let ctl = map.ctl();
    let me = &ctl.readers[0];
    let before = smaps()?;
    // What the reader holds while it reports: the frame (and its lease, mapping or private buffers).
    let mut held: Vec<Box<dyn std::any::Any>> = Vec::new();
    let batch = match rival {
        Rival::Loan | Rival::LoanOneSlot | Rival::Write => {
            let r = SnapshotReader::builder(target)
                .timeout(Some(LIMIT))
                .open()?;
            let f = r.read()?;
            if r.stats().copies != 0 {
                return Err("the qadataswap reader copied".into());
            }
            let b = f.batches().first().cloned().ok_or("empty frame")?;
            held.push(Box::new(f));
            held.push(Box::new(r));
            b
        }
        Rival::Socket => {
            let sock = UnixStream::connect(target)?;
            let mut r = arrow_ipc::reader::StreamReader::try_new(BufReader::new(sock), None)?;
            let b = r.next().ok_or("the socket stream ended early")??;
            // The socket stays open until the end: the writer finishes its stream after the batch.
            held.push(Box::new(r));
            b
        }
        Rival::Mmap => read_mapped(target)?,
    };
    if batch.num_rows() != rows {
        return Err(format!("read {} rows, expected {rows}", batch.num_rows()).into());
    }
    touch(&batch)?;
    let after = smaps()?;
    for (i, v) in [
        before.pss,
        after.pss,
        before.private,
        after.private,
        before.anon,
        after.anon,
        before.rss,
        after.rss,
    ]
    .into_iter()
    .enumerate()
    {
        me.vals[i].store(v, Ordering::Relaxed);
    }
    me.ack.store(1, Ordering::Release);
    let deadline = Instant::now() + LIMIT;
    while ctl.stop.0.load(Ordering::Acquire) == 0 {
        if Instant::now() >= deadline {
            return Err("the bench never said stop".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(batch);
    drop(held);
    Ok(())
}

/// glibc raises its mmap threshold (up to 32 MB) each time a mapped chunk is freed, so a rival measured after
/// another could get its columns from a heap that never shrinks, and the writer's growth would depend on the order
/// of the rivals. A fixed threshold keeps every large buffer in its own mapping, returned to the kernel on free.
fn fixed_mmap_threshold() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator parameter; called before the suite allocates its frames.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

pub fn run(opts: &Opts) -> Res<()> {
    let mb = if opts.quick { 64 } else { 320 };
    let rows = mb * 1_000_000 / 16;
    println!(
        "memory: one frame of {rows} rows x (int64, float64) = {mb} MB handed to a reader process; the reader reads \
         every value; /proc/self/smaps_rollup before attaching and while holding the frame"
    );
    fixed_mmap_threshold();
    let mut out = Vec::new();
    for rival in Rival::ALL {
        let o = measure(rival, rows)?;
        println!(
            "  {:<54} reader: Private {:+6.1}%  Pss {:+6.1}%  Anonymous {:+6.1}%   writer Anonymous {:+6.1}%  tmpfs \
             {:5.1}%   on the machine {:.2}x, {} copies",
            rival.label(),
            o.pct(o.d(|m| m.private)),
            o.pct(o.d(|m| m.pss)),
            o.pct(o.d(|m| m.anon)),
            o.pct(o.writer_anon),
            o.pct(o.tmpfs as i64),
            o.held(),
            o.copies()
        );
        out.push(o);
    }
    report(&out, mb, opts)
}

fn report(out: &[Outcome], mb: usize, opts: &Opts) -> Res<()> {
    let mut md = format!(
        "A {mb} MB frame of (int64, float64) handed to a reader process that reads every value. Reader growth from \
         `/proc/self/smaps_rollup` before it attaches to while it holds the frame, as % of the frame's bytes: \
         *Private* = Private_Clean + Private_Dirty (pages only this process maps: a file or segment mapped by the \
         reader alone counts here although it is no copy), *Pss* (shared pages split between the processes that map \
         them), *Anonymous* (memory that is the reader's own: a copy). *On the machine* = (writer's anonymous growth + \
         reader's anonymous growth + bytes tmpfs holds for the segment or file) / frame bytes, while the reader holds \
         the frame and the writer holds what it built (arrow-ipc's writers also encode into a transient buffer, freed \
         before the measurement: not counted). *Copies* = each process's anonymous growth in whole frames + 1 for the \
         segment or file holding the frame: a ring's other slots are room for the next frames, not copies, but they \
         are resident (the segment is reserved with fallocate and mapped with MAP_POPULATE), and a reader's RSS \
         includes them.\n\n\
         | way | reader Private growth | reader Pss growth | reader Anonymous growth | on the machine | copies |\n\
         |---|---:|---:|---:|---:|---:|\n"
    );
    for o in out {
        md.push_str(&format!(
            "| {} | {:.1}% | {:.1}% | {:.1}% | {:.2}x | {} |\n",
            o.rival.label(),
            o.pct(o.d(|m| m.private)),
            o.pct(o.d(|m| m.pss)),
            o.pct(o.d(|m| m.anon)),
            o.held(),
            o.copies()
        ));
    }
    md.push_str("\n| way | frame MB | reader ΔRSS MB | ΔPss MB | ΔPrivate MB | ΔAnonymous MB | writer ΔAnonymous MB | tmpfs MB |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    let m = |b: i64| b as f64 / 1e6;
    for o in out {
        md.push_str(&format!(
            "| {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
            o.rival.label(),
            m(o.frame_bytes as i64),
            m(o.d(|x| x.rss)),
            m(o.d(|x| x.pss)),
            m(o.d(|x| x.private)),
            m(o.d(|x| x.anon)),
            m(o.writer_anon),
            m(o.tmpfs as i64)
        ));
    }
    let get = |r: Rival| out.iter().find(|o| o.rival == r);
    let worst_private = [Rival::Loan, Rival::LoanOneSlot, Rival::Write]
        .into_iter()
        .filter_map(get)
        .map(|o| o.pct(o.d(|m| m.private)))
        .fold(f64::MIN, f64::max);
    let socket_private = get(Rival::Socket).map_or(f64::NAN, |o| o.pct(o.d(|m| m.private)));
    let loan_copies = get(Rival::Loan).map_or(0, Outcome::copies);
    let write_copies = get(Rival::Write).map_or(0, Outcome::copies);
    let loan_held = get(Rival::Loan).map_or(f64::NAN, Outcome::held);
    let one_slot_held = get(Rival::LoanOneSlot).map_or(f64::NAN, Outcome::held);
    let private_ok = worst_private <= 2.0;
    let copies_ok = loan_copies == 1;
    let held_ok = loan_held <= 1.05;
    let goals = [
        format!(
            "a qadataswap reader's private memory grows by <= 2% of the frame: worst {worst_private:.2}% ({}); the \
             copying rival: {socket_private:.1}%",
            if private_ok { "met" } else { "MISSED" }
        ),
        format!(
            "the machine holds one copy of the data: {loan_copies} with a loan ({}); {write_copies} with write() while \
             the writer keeps its own batch",
            if copies_ok { "met" } else { "MISSED" }
        ),
        format!(
            "memory use 1x the frame (the seed's table): {loan_held:.2}x with the default 3 slots ({}: the ring's \
             other two slots are resident), {one_slot_held:.2}x with 1 slot",
            if held_ok { "met" } else { "MISSED" }
        ),
    ];
    push_goals(&mut md, &goals);
    println!("\ngoals:");
    for g in &goals {
        println!("  {g}");
    }
    if let Some(json) = &opts.json {
        let chart = sibling(json, "-rivals.svg");
        let cats: Vec<String> = out
            .iter()
            .map(|o| match o.rival {
                Rival::Loan => "qds loan".into(),
                Rival::LoanOneSlot => "qds loan, 1 slot".into(),
                Rival::Write => "qds write()".into(),
                Rival::Socket => "IPC socket".into(),
                Rival::Mmap => "IPC file mmap".into(),
            })
            .collect();
        let series = vec![
            (
                "reader Private growth".to_owned(),
                out.iter().map(|o| o.pct(o.d(|m| m.private))).collect(),
            ),
            (
                "reader Anonymous growth".to_owned(),
                out.iter().map(|o| o.pct(o.d(|m| m.anon))).collect(),
            ),
            (
                "data on the machine".to_owned(),
                out.iter().map(|o| o.held() * 100.0).collect(),
            ),
        ];
        std::fs::write(
            &chart,
            svg::bars(
                &format!("Memory, {mb} MB frame"),
                "% of the frame",
                &cats,
                &series,
            ),
        )?;
        push_chart(&mut md, "memory against rivals", &chart);
        std::fs::write(sibling(json, ".md"), &md)?;
        let items: Vec<String> = out
            .iter()
            .map(|o| {
                format!(
                    "{{\"way\":{},\"frame_bytes\":{},\"reader_rss_delta\":{},\"reader_pss_delta\":{},\
                     \"reader_private_delta\":{},\"reader_anon_delta\":{},\"writer_anon_delta\":{},\"tmpfs_bytes\":{},\
                     \"reader_private_pct\":{:.3},\"reader_pss_pct\":{:.3},\"held_frames\":{:.3},\"copies\":{}}}",
                    js(o.rival.key()),
                    o.frame_bytes,
                    o.d(|x| x.rss),
                    o.d(|x| x.pss),
                    o.d(|x| x.private),
                    o.d(|x| x.anon),
                    o.writer_anon,
                    o.tmpfs,
                    o.pct(o.d(|x| x.private)),
                    o.pct(o.d(|x| x.pss)),
                    o.held(),
                    o.copies()
                )
            })
            .collect();
        let num = |x: f64| {
            if x.is_finite() {
                format!("{x:.3}")
            } else {
                "null".into()
            }
        };
        std::fs::write(
            json,
            format!(
                "{{\"bench\":\"e2e-memory\",\"frame_mb\":{mb},\"results\":[{}],\"goals\":{{\"reader_private_pct_max\":{},\
                 \"private_ok\":{private_ok},\"loan_copies\":{loan_copies},\"copies_ok\":{copies_ok},\
                 \"loan_held_frames\":{},\"held_ok\":{held_ok},\"one_slot_held_frames\":{}}}}}\n",
                items.join(","),
                num(worst_private),
                num(loan_held),
                num(one_slot_held)
            ),
        )?;
        println!("JSON written to {}", json.display());
    }
    Ok(())
}
