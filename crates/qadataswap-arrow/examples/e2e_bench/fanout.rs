//! Suite `fanout`: one writer, N reader processes on one snapshot segment, beside the same frame sent to N socket
//! readers.
//!
//! Each case has two phases:
//! - latency: paced rounds (the writer sleeps 200 µs, stamps the clock, writes one frame and waits until every
//!   reader has acknowledged it); each reader reports its own write-start-to-`RecordBatch` latency, pooled over
//!   readers, and the slowest reader of each round is kept apart;
//! - throughput: the writer writes back to back for a fixed time while the readers keep reading the newest frame
//!   (snapshots: a reader may skip frames); frames/s of the writer, and the share of frames each reader saw.
//!
//! Readers run with the library's default spin budget (they park when idle, so a paced round wakes them), or hot
//! (spin budget u32::MAX). The stall case adds one more reader that reads a frame, keeps it (holding its lease) and
//! is stopped with SIGSTOP before the others start: `/proc/<pid>/stat` must show `T` before the case runs and still
//! after it. With more readers than cores, the numbers measure the scheduler as much as the transport.

use std::io::{BufReader, BufWriter};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use qadataswap_arrow::{Error as QdsError, SnapshotReader, SnapshotWriter};
use rustix::process::Signal;

use crate::harness::{
    accept_within, arg, child_command, cores, fmt_ns, frame, ipc_bytes, js, mono_ns, pct,
    proc_state, push_chart, push_goals, segment_name, sibling, socket_path, wait_for, Control,
    ControlMap, Kid, Pause, Pct, Res,
};
use crate::svg;
use crate::Opts;

const ROWS: usize = 1000;
const GAP: Duration = Duration::from_micros(200);
const LIMIT: Duration = Duration::from_secs(20);
/// The library's default reader spin budget (`ReaderOptions::default().spin`).
const DEFAULT_SPIN: u32 = 1000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// qadataswap readers with this spin budget.
    Ours {
        spin: u32,
    },
    Socket,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Group {
    Alone,
    Default,
    Hot,
    Stalled,
    Socket,
}

impl Group {
    fn name(self) -> &'static str {
        match self {
            Group::Alone => "writer alone",
            Group::Default => "qadataswap, default spin",
            Group::Hot => "qadataswap, hot (spin u32::MAX)",
            Group::Stalled => "qadataswap, default spin, + 1 stopped reader holding a lease",
            Group::Socket => "Arrow IPC to N Unix sockets",
        }
    }
    fn key(self) -> &'static str {
        match self {
            Group::Alone => "alone",
            Group::Default => "default",
            Group::Hot => "hot",
            Group::Stalled => "stalled",
            Group::Socket => "socket",
        }
    }
}

struct Case {
    group: Group,
    kind: Kind,
    readers: usize,
}

/// One run of a case: the samples, before they are pooled with the case's other runs.
struct Run {
    all: Vec<u64>,
    slowest: Vec<u64>,
    frames_per_s: f64,
    seen: f64,
    stayed_stopped: Option<bool>,
}

struct Outcome {
    group: Group,
    readers: usize,
    runs: usize,
    all: Pct,
    slowest: Pct,
    /// Mean over the runs.
    frames_per_s: f64,
    /// Mean share of the throughput phase's frames a reader saw (1.0 for the lossless socket).
    seen: f64,
    /// Stall case: the stopped reader was still stopped (state T) when the case ended.
    stayed_stopped: Option<bool>,
}

/// The cases in the order they run. The 4-reader case and its stalled twin alternate `pairs` times (pooled), so
/// that a drift in the machine's load does not pass for the stopped reader's effect.
fn cases(pairs: usize) -> Vec<Case> {
    let ours = |group, spin, readers| Case {
        group,
        kind: Kind::Ours { spin },
        readers,
    };
    let mut v = vec![ours(Group::Alone, DEFAULT_SPIN, 0)];
    v.push(ours(Group::Default, DEFAULT_SPIN, 1));
    for _ in 0..pairs.max(1) {
        v.push(ours(Group::Default, DEFAULT_SPIN, 4));
        v.push(ours(Group::Stalled, DEFAULT_SPIN, 4));
    }
    v.push(ours(Group::Default, DEFAULT_SPIN, 16));
    let mut hot = vec![1, cores(), 4];
    hot.sort_unstable();
    hot.dedup();
    for n in hot {
        v.push(ours(Group::Hot, u32::MAX, n));
    }
    for n in [1, 4, 16] {
        v.push(Case {
            group: Group::Socket,
            kind: Kind::Socket,
            readers: n,
        });
    }
    v
}

/// The paced rounds of the latency phase; `send` delivers round i to every reader.
fn rounds(
    ctl: &Control,
    n: usize,
    warm: u32,
    total: u32,
    send: &mut dyn FnMut() -> Res<()>,
) -> Res<(Vec<u64>, Vec<u64>)> {
    let (mut all, mut slowest) = (Vec::new(), Vec::new());
    if n == 0 {
        return Ok((all, slowest));
    }
    for i in 1..=total {
        std::thread::sleep(GAP);
        ctl.stamp.0.store(mono_ns(), Ordering::Release);
        send()?;
        wait_for(
            "every reader's acknowledgement",
            LIMIT,
            Pause::Sleep(Duration::from_micros(10)),
            || {
                ctl.readers[..n]
                    .iter()
                    .all(|r| r.ack.load(Ordering::Acquire) >= i)
            },
        )?;
        if i > warm {
            let lats = ctl.readers[..n]
                .iter()
                .map(|r| r.lat.load(Ordering::Relaxed));
            let mut max = 0;
            for l in lats {
                all.push(l);
                max = max.max(l);
            }
            slowest.push(max);
        }
    }
    Ok((all, slowest))
}

fn wait_ready(ctl: &Control, n: usize) -> Res<()> {
    wait_for(
        "the readers to start",
        LIMIT,
        Pause::Sleep(Duration::from_millis(1)),
        || ctl.ready.0.load(Ordering::Acquire) as usize >= n,
    )
}

/// After the throughput phase: tell the readers to stop, wait for their last acknowledgement (`total + 1`), and
/// return the mean frame count they report.
fn stop_readers(ctl: &Control, n: usize, total: u32) -> Res<f64> {
    ctl.stop.0.store(1, Ordering::Release);
    wait_for(
        "the readers' counts",
        LIMIT,
        Pause::Sleep(Duration::from_millis(1)),
        || {
            ctl.readers[..n]
                .iter()
                .all(|r| r.ack.load(Ordering::Acquire) > total)
        },
    )?;
    let sum: u64 = ctl.readers[..n]
        .iter()
        .map(|r| r.count.load(Ordering::Relaxed))
        .sum();
    Ok(if n == 0 { 0.0 } else { sum as f64 / n as f64 })
}

fn run_case(
    case: &Case,
    batch: &RecordBatch,
    warm: u32,
    measured: u32,
    tput: Duration,
) -> Res<Run> {
    let n = case.readers;
    let tag = format!("fan-{}-{n}", case.group.key());
    let map = ControlMap::create(&tag)?;
    let ctl = map.ctl();
    let total = warm + measured;
    let payload = ipc_bytes(batch)?.len();
    let mut stayed_stopped = None;
    let (all, slowest, frames, secs, mean_count);
    match case.kind {
        Kind::Ours { spin } => {
            let seg = segment_name(&tag);
            let mut w = SnapshotWriter::builder(&seg)
                .size(3 * (payload + (64 << 10)))
                .create()?;
            // Frame 1: what the stopped reader holds. The others start after it and wait for newer frames.
            w.write(batch)?;
            let staller = if case.group == Group::Stalled {
                let k = n.to_string();
                let kid = Kid::spawn(&mut child_command(&[
                    "fanout-staller".into(),
                    k,
                    map.path.clone(),
                    seg.clone(),
                ])?)?;
                wait_for(
                    "the stalled reader's lease",
                    LIMIT,
                    Pause::Sleep(Duration::from_millis(1)),
                    || ctl.readers[n].ack.load(Ordering::Acquire) >= 1,
                )?;
                kid.signal(Signal::STOP)?;
                wait_for(
                    "state T of the stopped reader",
                    LIMIT,
                    Pause::Sleep(Duration::from_millis(1)),
                    || proc_state(kid.pid).is_ok_and(|s| s == 'T'),
                )?;
                Some(kid)
            } else {
                None
            };
            let mut kids = Vec::new();
            for k in 0..n {
                kids.push(Kid::spawn(&mut child_command(&[
                    "fanout".into(),
                    k.to_string(),
                    spin.to_string(),
                    map.path.clone(),
                    seg.clone(),
                    total.to_string(),
                ])?)?);
            }
            wait_ready(ctl, n)?;
            (all, slowest) = rounds(ctl, n, warm, total, &mut || {
                w.write(batch).map(drop).map_err(Into::into)
            })?;
            let t0 = Instant::now();
            let mut count = 0u64;
            while t0.elapsed() < tput {
                w.write(batch)?;
                count += 1;
            }
            secs = t0.elapsed().as_secs_f64();
            frames = count;
            mean_count = stop_readers(ctl, n, total)?;
            if let Some(kid) = &staller {
                stayed_stopped = Some(proc_state(kid.pid)? == 'T');
            }
            for kid in kids {
                kid.finish(LIMIT)?;
            }
            drop(staller);
            w.close()?;
        }
        Kind::Socket => {
            let path = socket_path(&tag);
            let listener = UnixListener::bind(&path.0)?;
            let mut kids = Vec::new();
            for k in 0..n {
                kids.push(Kid::spawn(&mut child_command(&[
                    "fanout-socket".into(),
                    k.to_string(),
                    map.path.clone(),
                    path.display(),
                    total.to_string(),
                ])?)?);
            }
            let mut writers = Vec::new();
            for _ in 0..n {
                let sock = accept_within(&listener, LIMIT)?;
                let mut w = arrow_ipc::writer::StreamWriter::try_new(
                    BufWriter::with_capacity(1 << 20, sock),
                    &batch.schema(),
                )?;
                w.flush()?;
                writers.push(w);
            }
            wait_ready(ctl, n)?;
            let mut send_all = || -> Res<()> {
                for w in &mut writers {
                    w.write(batch)?;
                    w.flush()?;
                }
                Ok(())
            };
            (all, slowest) = rounds(ctl, n, warm, total, &mut send_all)?;
            let t0 = Instant::now();
            let mut count = 0u64;
            while t0.elapsed() < tput {
                send_all()?;
                count += 1;
            }
            secs = t0.elapsed().as_secs_f64();
            frames = count;
            for mut w in writers {
                w.finish()?;
            }
            mean_count = stop_readers(ctl, n, total)?;
            for kid in kids {
                kid.finish(LIMIT)?;
            }
        }
    }
    Ok(Run {
        all,
        slowest,
        frames_per_s: frames as f64 / secs,
        seen: if frames == 0 {
            0.0
        } else {
            mean_count / frames as f64
        },
        stayed_stopped,
    })
}

/// A qadataswap reader: args `k spin control segment total`.
pub fn child(args: &[String]) -> Res<()> {
    let k: usize = arg(args, 0)?;
    let spin: u32 = arg(args, 1)?;
    let map = ControlMap::open(args.get(2).ok_or("control path")?)?;
    let seg = args.get(3).ok_or("segment")?;
    let total: u32 = arg(args, 4)?;
    let ctl = map.ctl();
    let me = ctl.readers.get(k).ok_or("reader index out of range")?;
    let r = SnapshotReader::builder(seg)
        .spin(spin)
        .timeout(Some(LIMIT))
        .open()?;
    // Start after what is there already (the stopped reader's frame): round 1 is the next one written.
    drop(r.try_read()?);
    ctl.ready.0.fetch_add(1, Ordering::AcqRel);
    for i in 1..=total {
        let f = r.read_next(Some(LIMIT))?;
        let t1 = mono_ns();
        let rows = f.batches().first().map_or(0, |b| b.num_rows());
        drop(f);
        if rows != ROWS {
            return Err(format!("reader {k} read {rows} rows").into());
        }
        me.lat.store(
            t1.saturating_sub(ctl.stamp.0.load(Ordering::Acquire)),
            Ordering::Relaxed,
        );
        me.ack.store(i, Ordering::Release);
    }
    let mut seen = 0u64;
    while ctl.stop.0.load(Ordering::Acquire) == 0 {
        match r.read_next(Some(Duration::from_millis(20))) {
            Ok(f) => {
                seen += 1;
                drop(f);
            }
            Err(QdsError::Timeout { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    me.count.store(seen, Ordering::Relaxed);
    me.ack.store(total + 1, Ordering::Release);
    Ok(())
}

/// The reader that gets stopped: reads the newest frame, keeps it (and its lease), says so, and waits to be
/// stopped and then killed. Args `k control segment`.
pub fn child_staller(args: &[String]) -> Res<()> {
    let k: usize = arg(args, 0)?;
    let map = ControlMap::open(args.get(1).ok_or("control path")?)?;
    let seg = args.get(2).ok_or("segment")?;
    let ctl = map.ctl();
    let me = ctl.readers.get(k).ok_or("reader index out of range")?;
    let r = SnapshotReader::builder(seg).timeout(Some(LIMIT)).open()?;
    let held = r.read()?;
    me.ack.store(1, Ordering::Release);
    let deadline = Instant::now() + Duration::from_secs(300);
    while ctl.stop.0.load(Ordering::Acquire) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(held);
    Ok(())
}

/// A socket reader: args `k control socket total`; reads the paced rounds, then counts frames until the end.
pub fn child_socket(args: &[String]) -> Res<()> {
    let k: usize = arg(args, 0)?;
    let map = ControlMap::open(args.get(1).ok_or("control path")?)?;
    let path = args.get(2).ok_or("socket")?;
    let total: u32 = arg(args, 3)?;
    let ctl = map.ctl();
    let me = ctl.readers.get(k).ok_or("reader index out of range")?;
    let sock = UnixStream::connect(path)?;
    ctl.ready.0.fetch_add(1, Ordering::AcqRel);
    let mut r =
        arrow_ipc::reader::StreamReader::try_new(BufReader::with_capacity(1 << 20, sock), None)?;
    for i in 1..=total {
        let b = r.next().ok_or("the socket stream ended early")??;
        let t1 = mono_ns();
        if b.num_rows() != ROWS {
            return Err(format!("socket reader {k} read {} rows", b.num_rows()).into());
        }
        drop(b);
        me.lat.store(
            t1.saturating_sub(ctl.stamp.0.load(Ordering::Acquire)),
            Ordering::Relaxed,
        );
        me.ack.store(i, Ordering::Release);
    }
    let mut seen = 0u64;
    for b in r {
        drop(b?);
        seen += 1;
    }
    me.count.store(seen, Ordering::Relaxed);
    me.ack.store(total + 1, Ordering::Release);
    Ok(())
}

pub fn run(opts: &Opts) -> Res<()> {
    let (measured, tput, pairs) = if opts.quick {
        (500, Duration::from_millis(300), 2)
    } else {
        (2_000, Duration::from_secs(1), 3)
    };
    let warm = 30;
    let batch = frame(ROWS);
    println!(
        "fan-out: 1 writer, N reader processes, {ROWS}-row frames of (int64, float64, utf8), {} IPC bytes; {} cores \
         (more readers than cores: a scheduling test); latency: {measured} paced rounds; throughput: {tput:?}",
        ipc_bytes(&batch)?.len(),
        cores()
    );
    println!(
        "  {:<62} {:>3}  {:>9} {:>9}  {:>14} {:>12} {:>6}",
        "case", "N", "p50", "p99", "slowest p50", "writes/s", "seen"
    );
    let mut runs: Vec<(Group, usize, Run)> = Vec::new();
    for case in cases(pairs) {
        let r = run_case(&case, &batch, warm, measured, tput)?;
        let p = pct(&mut r.all.clone());
        let ps = pct(&mut r.slowest.clone());
        println!(
            "  {:<62} {:>3}  {:>9} {:>9}  {:>14} {:>12.0} {:>5.0}%{}",
            case.group.name(),
            case.readers,
            cell(case.readers, p.p50),
            cell(case.readers, p.p99),
            cell(case.readers, ps.p50),
            r.frames_per_s,
            r.seen * 100.0,
            match r.stayed_stopped {
                Some(true) => "  (stopped reader: state T throughout)",
                Some(false) => "  (stopped reader NOT in state T at the end)",
                None => "",
            }
        );
        runs.push((case.group, case.readers, r));
    }
    // Pool the runs of each case, in the order the cases first ran.
    let mut out: Vec<Outcome> = Vec::new();
    let mut keys: Vec<(Group, usize)> = Vec::new();
    for (g, n, _) in &runs {
        if !keys.contains(&(*g, *n)) {
            keys.push((*g, *n));
        }
    }
    println!("\npooled over runs:");
    for (g, n) in keys {
        let mine: Vec<&Run> = runs
            .iter()
            .filter(|(rg, rn, _)| *rg == g && *rn == n)
            .map(|(_, _, r)| r)
            .collect();
        let k = mine.len() as f64;
        let mut all: Vec<u64> = mine.iter().flat_map(|r| r.all.iter().copied()).collect();
        let mut slowest: Vec<u64> = mine
            .iter()
            .flat_map(|r| r.slowest.iter().copied())
            .collect();
        let o = Outcome {
            group: g,
            readers: n,
            runs: mine.len(),
            all: pct(&mut all),
            slowest: pct(&mut slowest),
            frames_per_s: mine.iter().map(|r| r.frames_per_s).sum::<f64>() / k,
            seen: mine.iter().map(|r| r.seen).sum::<f64>() / k,
            stayed_stopped: mine
                .iter()
                .filter_map(|r| r.stayed_stopped)
                .reduce(|a, b| a && b),
        };
        println!(
            "  {:<62} {:>3}  {:>9} {:>9}  {:>14} {:>12.0} {:>5.0}%{}",
            o.group.name(),
            o.readers,
            cell(o.readers, o.all.p50),
            cell(o.readers, o.all.p99),
            cell(o.readers, o.slowest.p50),
            o.frames_per_s,
            o.seen * 100.0,
            match o.stayed_stopped {
                Some(true) => "  (stopped reader: state T throughout)",
                Some(false) => "  (stopped reader NOT in state T at the end)",
                None => "",
            }
        );
        out.push(o);
    }
    report(&out, opts)
}

/// A latency cell: "-" for the writer alone (no reader, no latency).
fn cell(readers: usize, ns: f64) -> String {
    if readers == 0 {
        "-".into()
    } else {
        fmt_ns(ns)
    }
}

fn get(out: &[Outcome], g: Group, n: usize) -> Option<&Outcome> {
    out.iter().find(|o| o.group == g && o.readers == n)
}

fn report(out: &[Outcome], opts: &Opts) -> Res<()> {
    let cores = cores();
    let mut md = format!(
        "One writer, N reader processes on one snapshot segment, {ROWS}-row frames of (int64, float64, utf8). Latency: \
         paced rounds (200 µs apart), from the writer's `write()` starting to each reader holding the `RecordBatch` \
         (pooled over readers; *slowest* = the last reader of each round). Throughput: the writer writes back to back \
         while the readers read the newest frame. The anchor sends the same frame to N Unix sockets (arrow-ipc \
         `StreamWriter` per socket, written one after the other). **This machine has {cores} cores: with more \
         readers than cores (16 always, 4 hot), the numbers measure the scheduler as much as the transport.**\n\n"
    );
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    };
    let p = |g, n, f: fn(&Outcome) -> f64| get(out, g, n).map(f);
    let p50 = |o: &Outcome| o.all.p50;
    let p99 = |o: &Outcome| o.all.p99;
    let fps = |o: &Outcome| o.frames_per_s;
    md.push_str("| readers | default spin: p99 / 1-reader p99 | hot: p99 / 1-reader p99 | socket p50 / qadataswap p50 (default) | qadataswap writes/s / writer alone | socket writes/s / qadataswap |\n|---:|---:|---:|---:|---:|---:|\n");
    let mut ns: Vec<usize> = out
        .iter()
        .filter(|o| o.readers > 0)
        .map(|o| o.readers)
        .collect();
    ns.sort_unstable();
    ns.dedup();
    for &n in &ns {
        md.push_str(&format!(
            "| {n} | {} | {} | {} | {} | {} |\n",
            ratio(p(Group::Default, n, p99), p(Group::Default, 1, p99)),
            ratio(p(Group::Hot, n, p99), p(Group::Hot, 1, p99)),
            ratio(p(Group::Socket, n, p50), p(Group::Default, n, p50)),
            ratio(p(Group::Default, n, fps), p(Group::Alone, 0, fps)),
            ratio(p(Group::Socket, n, fps), p(Group::Default, n, fps)),
        ));
    }
    let stall_p50 = ratio(p(Group::Stalled, 4, p50), p(Group::Default, 4, p50));
    let stall_p99 = ratio(p(Group::Stalled, 4, p99), p(Group::Default, 4, p99));
    let stall_fps = ratio(p(Group::Stalled, 4, fps), p(Group::Default, 4, fps));
    let stayed = get(out, Group::Stalled, 4).and_then(|o| o.stayed_stopped);
    md.push_str(&format!(
        "\nA 5th reader stopped (SIGSTOP, state T checked in /proc before and after) while it holds a lease, beside 4 \
         running readers, against the same 4 readers without it: p50 {stall_p50}, p99 {stall_p99}, writer writes/s \
         {stall_fps}; stayed stopped throughout: {}. (3 slots: the stopped reader pins one; the lease timeout, 5 s, \
         only matters when every slot is leased.)\n\n",
        match stayed {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        }
    ));
    md.push_str("| case | N | runs | p50 | p99 | slowest p50 | slowest p99 | writer frames/s | frames seen per reader |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for o in out {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.0}% |\n",
            o.group.name(),
            o.readers,
            o.runs,
            cell(o.readers, o.all.p50),
            cell(o.readers, o.all.p99),
            cell(o.readers, o.slowest.p50),
            cell(o.readers, o.slowest.p99),
            o.frames_per_s,
            o.seen * 100.0
        ));
    }
    let hot4 = match (p(Group::Hot, 4, p99), p(Group::Hot, 1, p99)) {
        (Some(a), Some(b)) if b > 0.0 => a / b,
        _ => f64::NAN,
    };
    let stall = match (
        p(Group::Stalled, 4, p50),
        p(Group::Default, 4, p50),
        p(Group::Stalled, 4, p99),
        p(Group::Default, 4, p99),
    ) {
        (Some(a), Some(b), Some(c), Some(d)) if b > 0.0 && d > 0.0 => (a / b, c / d),
        _ => (f64::NAN, f64::NAN),
    };
    let hot_ok = hot4 <= 1.5;
    let stall_ok = stall.0 <= 1.2 && stall.1 <= 1.5 && stayed == Some(true);
    let goals = [
        format!(
            "hot p99 with 4 readers <= 1.5x 1 reader: {hot4:.2}x ({}; {cores} cores, so 4 spinning readers plus the \
             writer share them)",
            if hot_ok { "met" } else { "MISSED" }
        ),
        format!(
            "a stopped reader holding a lease changes nothing for the others (read as: p50 within 1.2x, p99 within \
             1.5x of the same run without it): p50 {:.2}x, p99 {:.2}x ({})",
            stall.0,
            stall.1,
            if stall_ok { "met" } else { "MISSED" }
        ),
    ];
    push_goals(&mut md, &goals);
    println!("\ngoals:");
    for g in &goals {
        println!("  {g}");
    }
    if let Some(json) = &opts.json {
        let chart = sibling(json, "-readers.svg");
        let line = |name: &str, g: Group, f: fn(&Outcome) -> f64, dashed| svg::Series {
            name: name.into(),
            dashed,
            points: out
                .iter()
                .filter(|o| o.group == g)
                .map(|o| (o.readers as f64, f(o) / 1000.0))
                .collect(),
        };
        let series = [
            line("qadataswap p50", Group::Default, p50, false),
            line("qadataswap p99", Group::Default, p99, true),
            line("hot p50", Group::Hot, p50, false),
            line("hot p99", Group::Hot, p99, true),
            line("socket p50", Group::Socket, p50, false),
            line("socket p99", Group::Socket, p99, true),
        ];
        std::fs::write(
            &chart,
            svg::lines(
                "Write-to-read latency against readers",
                "reader processes (log)",
                "µs (log)",
                &series,
            ),
        )?;
        push_chart(&mut md, "latency against readers", &chart);
        std::fs::write(sibling(json, ".md"), &md)?;
        let items: Vec<String> = out
            .iter()
            .map(|o| {
                format!(
                    "{{\"case\":{},\"readers\":{},\"runs\":{},\"p50_ns\":{:.1},\"p99_ns\":{:.1},\"slowest_p50_ns\":{:.1},\
                     \"slowest_p99_ns\":{:.1},\"writer_frames_per_s\":{:.1},\"seen\":{:.4}{}}}",
                    js(o.group.key()),
                    o.readers,
                    o.runs,
                    o.all.p50,
                    o.all.p99,
                    o.slowest.p50,
                    o.slowest.p99,
                    o.frames_per_s,
                    o.seen,
                    o.stayed_stopped
                        .map(|s| format!(",\"stayed_stopped\":{s}"))
                        .unwrap_or_default()
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
                "{{\"bench\":\"e2e-fanout\",\"rows\":{ROWS},\"cores\":{cores},\"results\":[{}],\"goals\":{{\
                 \"hot_p99_4_vs_1\":{},\"hot_ok\":{hot_ok},\"stalled_p50_ratio\":{},\"stalled_p99_ratio\":{},\
                 \"stalled_ok\":{stall_ok}}}}}\n",
                items.join(","),
                num(hot4),
                num(stall.0),
                num(stall.1)
            ),
        )?;
        println!("JSON written to {}", json.display());
    }
    Ok(())
}
