//! Suite `latency`: a small frame from `write()` in one process to a `RecordBatch` in another.
//!
//! Three transports, each with its own reader process, one frame in flight at a time:
//! - `qadataswap`: `SnapshotWriter::write`, then the reader's `read_next` returns the frame.
//! - `raw handoff` (the floor): the writer copies the frame's Arrow IPC bytes into a shared mapping and stores the
//!   round number in an atomic word (and `FUTEX_WAKE`s it when the reader is parked); the reader sees the word
//!   change. No encoding, no decoding, no lease: what any shared-memory transport must pay at least.
//! - `socket`: arrow-ipc's `StreamWriter` over a Unix socket (one `write` per frame through a `BufWriter`), the
//!   reader's `StreamReader` returns the batch. The reader blocks in `recv`, in both modes.
//! - `python` and `cpp`: the same `write()`, read by a Python process into a `polars.DataFrame`
//!   (`bench/python/latency_reader.py`, run by the interpreter `QADATASWAP_BENCH_PYTHON` names) and by a C++
//!   process into an `arrow::Table` (`bindings/c/bench/latency_reader.cc`, the binary `QADATASWAP_BENCH_CPP_LATENCY`
//!   names). `cargo xtask bench` sets both; a run without them measures the other three.
//!
//! Two modes: `hot`, the reader spinning when the frame comes (spin budget u32::MAX; the writer's gap between
//! rounds is a 10 µs busy wait), and `parked`, the reader asleep in the futex (spin budget 0; the writer sleeps
//! 300 µs before each round, far longer than the reader needs to fall asleep).

use std::io::{BufReader, BufWriter};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::Ordering;
use std::time::Duration;

use qadataswap_arrow::{SnapshotReader, SnapshotWriter};
use qadataswap_sync::futex;

use crate::harness::{
    accept_within, arg, child_command, fmt_ns, frame, ipc_bytes, js, mono_ns, pct, push_chart,
    push_goals, segment_name, sibling, socket_path, spin_for, wait_for, ControlMap, Kid, Pause,
    Pct, Res,
};
use crate::svg;
use crate::Opts;

const ROWS: [usize; 4] = [1, 10, 100, 1000];
const HOT_GAP: Duration = Duration::from_micros(10);
const PARKED_GAP: Duration = Duration::from_micros(300);
/// Any single wait of a round: far beyond a slow machine, short enough to fail a hung run soon.
const ROUND_LIMIT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Transport {
    Ours,
    Raw,
    Socket,
    Python,
    Cpp,
}

/// The interpreter that runs the Python reader (a venv's, with qadataswap and polars).
const PYTHON_ENV: &str = "QADATASWAP_BENCH_PYTHON";
/// The C++ reader binary (CMake target `latency_reader`).
const CPP_ENV: &str = "QADATASWAP_BENCH_CPP_LATENCY";
/// This run's iceoryx2 results (`bench/iceoryx2`, run by `cargo xtask bench` just before this suite).
const ICEORYX2_ENV: &str = "QADATASWAP_BENCH_ICEORYX2_JSON";
const PYTHON_READER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../bench/python/latency_reader.py"
);

impl Transport {
    const ALL: [Transport; 5] = [
        Transport::Raw,
        Transport::Ours,
        Transport::Socket,
        Transport::Python,
        Transport::Cpp,
    ];
    /// The transports this run measures: the Rust three always, Python and C++ when their reader is given.
    fn measured() -> Vec<Transport> {
        Transport::ALL
            .into_iter()
            .filter(|t| {
                t.external()
                    .is_none_or(|(env, _)| std::env::var_os(env).is_some())
            })
            .collect()
    }
    /// For a reader in another language: the variable naming its program, and the program's first argument.
    fn external(self) -> Option<(&'static str, Option<&'static str>)> {
        match self {
            Transport::Python => Some((PYTHON_ENV, Some(PYTHON_READER))),
            Transport::Cpp => Some((CPP_ENV, None)),
            _ => None,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Transport::Ours => "qadataswap",
            Transport::Raw => "raw",
            Transport::Socket => "socket",
            Transport::Python => "python",
            Transport::Cpp => "cpp",
        }
    }
    fn parse(s: &str) -> Res<Transport> {
        Transport::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| format!("unknown transport {s}").into())
    }
    fn label(self, mode: Mode) -> &'static str {
        match (self, mode) {
            (Transport::Ours, Mode::Hot) => "qadataswap write() -> read_next(), reader spinning",
            (Transport::Ours, Mode::Parked) => {
                "qadataswap write() -> read_next(), reader parked (spin 0)"
            }
            (Transport::Raw, Mode::Hot) => "raw handoff: memcpy + atomic flip, reader spinning",
            (Transport::Raw, Mode::Parked) => {
                "raw handoff: memcpy + atomic flip + FUTEX_WAKE, reader in FUTEX_WAIT"
            }
            (Transport::Socket, _) => "Arrow IPC StreamWriter -> StreamReader over a Unix socket",
            (Transport::Python, Mode::Hot) => {
                "qadataswap write() -> Python read_next() polars.DataFrame, reader spinning"
            }
            (Transport::Python, Mode::Parked) => {
                "qadataswap write() -> Python read_next() polars.DataFrame, reader parked"
            }
            (Transport::Cpp, Mode::Hot) => {
                "qadataswap write() -> C++ ReadNext() arrow::Table, reader spinning"
            }
            (Transport::Cpp, Mode::Parked) => {
                "qadataswap write() -> C++ ReadNext() arrow::Table, reader parked"
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Hot,
    Parked,
}

impl Mode {
    const ALL: [Mode; 2] = [Mode::Hot, Mode::Parked];
    fn name(self) -> &'static str {
        match self {
            Mode::Hot => "hot",
            Mode::Parked => "parked",
        }
    }
    fn parse(s: &str) -> Res<Mode> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown mode {s}").into())
    }
    fn ack_pause(self) -> Pause {
        match self {
            Mode::Hot => Pause::Spin,
            // A parked-mode writer leaves its core to the reader being woken (a busy writer could keep the reader
            // queued behind it on a 2-core machine).
            Mode::Parked => Pause::Sleep(Duration::from_micros(20)),
        }
    }
}

/// One case's raw samples, in ns.
struct Measured {
    lat: Vec<u64>,
    /// The Python reader's share of each latency spent turning the frame into a polars.DataFrame (`to_polars`),
    /// reported in its `vals[0]`; empty for the other readers.
    convert: Vec<u64>,
    send: Vec<u64>,
    rest: Vec<u64>,
    bytes: usize,
}

struct Row {
    mode: Mode,
    rows: usize,
    bytes: usize,
    transport: Transport,
    pct: Pct,
    /// How long the writer's send call took (`write()` for qadataswap): the part of the latency spent before the
    /// frame is published.
    send: Pct,
    /// Latency minus the send call, per round: the reader's side once the frame is published (wake-up, lease,
    /// decode), roughly.
    rest: Pct,
    /// The Python reader's `to_polars` part.
    convert: Option<Pct>,
    samples: usize,
}

/// The writer's side of one (transport, mode, rows) case: spawns the reader, runs `warm + rounds` rounds, returns
/// the reader's one-way latencies of the measured rounds, how long the writer's send call took in each, how much
/// of each latency came after the send call returned, and the frame's IPC bytes.
fn measure(t: Transport, mode: Mode, rows: usize, warm: u32, rounds: u32) -> Res<Measured> {
    let tag = format!("lat-{}-{}-{rows}", t.name(), mode.name());
    let map = ControlMap::create(&tag)?;
    let ctl = map.ctl();
    let batch = frame(rows);
    let payload = ipc_bytes(&batch)?;
    let total = warm + rounds;
    let seg = segment_name(&tag);
    let child_args = |target: &str| -> Vec<String> {
        vec![
            "latency".into(),
            t.name().into(),
            mode.name().into(),
            rows.to_string(),
            map.path.clone(),
            target.to_owned(),
            total.to_string(),
        ]
    };
    let mut samples = Vec::with_capacity(rounds as usize);
    let mut sends = Vec::with_capacity(rounds as usize);
    let mut rests = Vec::with_capacity(rounds as usize);
    let mut converts = Vec::new();
    let mut run_rounds = |send: &mut dyn FnMut(u32) -> Res<()>| -> Res<()> {
        for i in 1..=total {
            match mode {
                Mode::Hot => spin_for(HOT_GAP),
                Mode::Parked => std::thread::sleep(PARKED_GAP),
            }
            let t0 = mono_ns();
            ctl.stamp.0.store(t0, Ordering::Release);
            send(i)?;
            let sent = mono_ns().saturating_sub(t0);
            let me = &ctl.readers[0];
            wait_for(
                "the reader's acknowledgement",
                ROUND_LIMIT,
                mode.ack_pause(),
                || me.ack.load(Ordering::Acquire) >= i,
            )?;
            if i > warm {
                let lat = me.lat.load(Ordering::Relaxed);
                samples.push(lat);
                sends.push(sent);
                // 0 when the reader held the batch before the send call had returned (woken inside it).
                rests.push(lat.saturating_sub(sent));
                if t == Transport::Python {
                    converts.push(me.vals[0].load(Ordering::Relaxed));
                }
            }
        }
        Ok(())
    };
    let ready = |what: &str| {
        wait_for(
            what,
            ROUND_LIMIT,
            Pause::Sleep(Duration::from_micros(200)),
            || ctl.ready.0.load(Ordering::Acquire) >= 1,
        )
    };
    match t {
        Transport::Ours | Transport::Python | Transport::Cpp => {
            let mut w = SnapshotWriter::builder(&seg)
                .size(3 * (payload.len() + (64 << 10)))
                .create()?;
            let mut cmd = match t.external() {
                // The other languages' readers take the Rust child's arguments after its transport name.
                Some((env, script)) => {
                    let program =
                        std::env::var_os(env).ok_or_else(|| format!("{env} is not set"))?;
                    let mut cmd = std::process::Command::new(program);
                    cmd.args(script).args(&child_args(&seg)[2..]);
                    cmd
                }
                None => child_command(&child_args(&seg))?,
            };
            let kid = Kid::spawn(&mut cmd)?;
            ready(&format!("the {} reader", t.name()))?;
            run_rounds(&mut |_| w.write(&batch).map(drop).map_err(Into::into))?;
            kid.finish(ROUND_LIMIT)?;
            w.close()?;
        }
        Transport::Raw => {
            let kid = Kid::spawn(&mut child_command(&child_args("-"))?)?;
            ready("the raw reader")?;
            let go = &ctl.go.0;
            run_rounds(&mut |i| {
                map.copy_in(&payload)?;
                go.store(i, Ordering::Release);
                if mode == Mode::Parked {
                    futex::wake(go, 1);
                }
                Ok(())
            })?;
            kid.finish(ROUND_LIMIT)?;
        }
        Transport::Socket => {
            let path = socket_path(&tag);
            let listener = UnixListener::bind(&path.0)?;
            let kid = Kid::spawn(&mut child_command(&child_args(&path.display()))?)?;
            let sock = accept_within(&listener, ROUND_LIMIT)?;
            let mut w = arrow_ipc::writer::StreamWriter::try_new(
                BufWriter::with_capacity(1 << 20, sock),
                &batch.schema(),
            )?;
            w.flush()?;
            ready("the socket reader")?;
            run_rounds(&mut |_| {
                w.write(&batch)?;
                w.flush()?;
                Ok(())
            })?;
            // No end-of-stream marker: the reader stops after `total` frames and may be gone already.
            drop(w);
            kid.finish(ROUND_LIMIT)?;
        }
    }
    Ok(Measured {
        lat: samples,
        send: sends,
        rest: rests,
        convert: converts,
        bytes: payload.len(),
    })
}

/// The reader process of one case.
pub fn child(args: &[String]) -> Res<()> {
    let t = Transport::parse(args.first().ok_or("transport")?)?;
    let mode = Mode::parse(args.get(1).ok_or("mode")?)?;
    let rows: usize = arg(args, 2)?;
    let map = ControlMap::open(args.get(3).ok_or("control path")?)?;
    let target = args.get(4).ok_or("target")?;
    let total: u32 = arg(args, 5)?;
    let ctl = map.ctl();
    let me = &ctl.readers[0];
    let done = |i: u32, t1: u64| {
        me.lat.store(
            t1.saturating_sub(ctl.stamp.0.load(Ordering::Acquire)),
            Ordering::Relaxed,
        );
        me.ack.store(i, Ordering::Release);
    };
    let check = |got: usize| -> Res<()> {
        if got == rows {
            Ok(())
        } else {
            Err(format!("read {got} rows, expected {rows}").into())
        }
    };
    match t {
        Transport::Python | Transport::Cpp => {
            return Err(format!("the {} reader is not this program", t.name()).into())
        }
        Transport::Ours => {
            let spin = match mode {
                Mode::Hot => u32::MAX,
                Mode::Parked => 0,
            };
            let r = SnapshotReader::builder(target)
                .spin(spin)
                .timeout(Some(ROUND_LIMIT))
                .open()?;
            ctl.ready.0.fetch_add(1, Ordering::AcqRel);
            for i in 1..=total {
                let f = r.read_next(Some(ROUND_LIMIT))?;
                let t1 = mono_ns();
                let got = f.batches().first().map_or(0, |b| b.num_rows());
                drop(f);
                check(got)?;
                done(i, t1);
            }
            if r.stats().copies != 0 {
                return Err("the qadataswap reader copied".into());
            }
        }
        Transport::Raw => {
            let go = &ctl.go.0;
            ctl.ready.0.fetch_add(1, Ordering::AcqRel);
            for i in 1..=total {
                match mode {
                    Mode::Hot => wait_for("the raw round", ROUND_LIMIT, Pause::Spin, || {
                        go.load(Ordering::Acquire) >= i
                    })?,
                    Mode::Parked => {
                        let deadline = std::time::Instant::now() + ROUND_LIMIT;
                        loop {
                            let v = go.load(Ordering::Acquire);
                            if v >= i {
                                break;
                            }
                            if std::time::Instant::now() >= deadline {
                                return Err("timed out waiting for the raw round".into());
                            }
                            futex::wait(go, v, Some(Duration::from_secs(1)));
                        }
                    }
                }
                done(i, mono_ns());
            }
        }
        Transport::Socket => {
            let sock = UnixStream::connect(target)?;
            ctl.ready.0.fetch_add(1, Ordering::AcqRel);
            let mut r = arrow_ipc::reader::StreamReader::try_new(
                BufReader::with_capacity(1 << 20, sock),
                None,
            )?;
            for i in 1..=total {
                let b = r.next().ok_or("the socket stream ended early")??;
                let t1 = mono_ns();
                check(b.num_rows())?;
                drop(b);
                done(i, t1);
            }
        }
    }
    Ok(())
}

pub fn run(opts: &Opts) -> Res<()> {
    // Full runs split each case's rounds over `repeat` runs, the transports interleaved, and pool them: a change in
    // the machine's load during the run then falls on every transport alike.
    let (hot_rounds, parked_rounds, repeat) = if opts.quick {
        (4_000, 400, 1)
    } else {
        (20_000, 2_000, 2)
    };
    let cores = crate::harness::cores();
    let transports = Transport::measured();
    println!(
        "small-frame latency, one way: writer write() start -> reader holds the RecordBatch; {} cores; \
         hot: {hot_rounds} rounds, parked: {parked_rounds} rounds, each in {repeat} run(s), transports interleaved",
        cores
    );
    let mut rows_out = Vec::new();
    for &rows in &ROWS {
        for mode in Mode::ALL {
            let (warm, rounds) = match mode {
                Mode::Hot => (1_000, hot_rounds / repeat),
                Mode::Parked => (50, parked_rounds / repeat),
            };
            let mut pooled: Vec<Measured> = Vec::new();
            for _ in 0..repeat {
                for (i, &t) in transports.iter().enumerate() {
                    let m = measure(t, mode, rows, warm, rounds)?;
                    match pooled.get_mut(i) {
                        Some(p) => {
                            p.lat.extend(m.lat);
                            p.send.extend(m.send);
                            p.rest.extend(m.rest);
                            p.convert.extend(m.convert);
                        }
                        None => pooled.push(m),
                    }
                }
            }
            for (&t, mut m) in transports.iter().zip(pooled) {
                let convert = (!m.convert.is_empty()).then(|| pct(&mut m.convert));
                let (pct, send, rest, bytes) =
                    (pct(&mut m.lat), pct(&mut m.send), pct(&mut m.rest), m.bytes);
                println!(
                    "  {:>6} {:>5} rows {:>7} B  {:<11} p50 {:>9}  p99 {:>9}   (send call p50 {:>9}, after it {:>9})",
                    mode.name(),
                    rows,
                    bytes,
                    t.name(),
                    fmt_ns(pct.p50),
                    fmt_ns(pct.p99),
                    fmt_ns(send.p50),
                    fmt_ns(rest.p50)
                );
                rows_out.push(Row {
                    mode,
                    rows,
                    bytes,
                    transport: t,
                    pct,
                    send,
                    rest,
                    convert,
                    samples: m.lat.len(),
                });
            }
        }
    }
    report(&rows_out, &transports, opts, hot_rounds, parked_rounds)
}

/// iceoryx2's hot p50 (ns) per payload size, from the JSON the iceoryx2 bench wrote (`{"bytes":N,"p50_ns":X,...}`
/// items); empty when it did not run.
fn iceoryx2_p50() -> Vec<(usize, f64)> {
    let Some(text) = std::env::var_os(ICEORYX2_ENV).and_then(|p| std::fs::read_to_string(p).ok())
    else {
        return Vec::new();
    };
    let field = |item: &str, key: &str| -> Option<f64> {
        let rest = &item[item.find(&format!("\"{key}\":"))? + key.len() + 3..];
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        rest[..end].trim().parse().ok()
    };
    text.split("{\"bytes\":")
        .skip(1)
        .filter_map(|item| {
            let item = format!("{{\"bytes\":{item}");
            Some((field(&item, "bytes")? as usize, field(&item, "p50_ns")?))
        })
        .collect()
}

fn find(rows: &[Row], mode: Mode, n: usize, t: Transport) -> Pct {
    rows.iter()
        .find(|r| r.mode == mode && r.rows == n && r.transport == t)
        .map_or(Pct::default(), |r| r.pct)
}

fn report(
    rows: &[Row],
    transports: &[Transport],
    opts: &Opts,
    hot_rounds: u32,
    parked_rounds: u32,
) -> Res<()> {
    // Ratios first.
    let mut md = String::new();
    md.push_str(
        "One way, from the writer's `write()` call starting to the reader process holding the `RecordBatch` \
         (CLOCK_MONOTONIC stamp in a shared control word, read by the reader as soon as it holds the batch; one frame \
         in flight). Columns (int64, float64, utf8). *raw* = the frame's Arrow IPC bytes memcpy'd into a shared \
         mapping and an atomic flipped (plus `FUTEX_WAKE` when the reader is parked): the floor. *socket* = arrow-ipc \
         `StreamWriter`/`StreamReader` over a Unix socket (its reader blocks in `recv` in both modes).\n\n",
    );
    md.push_str("| rows | IPC bytes | hot p50: ours / raw | hot p50: socket / ours | parked p50: ours / raw futex | parked p50: socket / ours |\n|---:|---:|---:|---:|---:|---:|\n");
    let mut ratio_json = Vec::new();
    for &n in &ROWS {
        let bytes = rows.iter().find(|r| r.rows == n).map_or(0, |r| r.bytes);
        let h = |t| find(rows, Mode::Hot, n, t);
        let p = |t| find(rows, Mode::Parked, n, t);
        let hot_vs_raw = h(Transport::Ours).p50 / h(Transport::Raw).p50;
        let hot_socket = h(Transport::Socket).p50 / h(Transport::Ours).p50;
        let park_vs_raw = p(Transport::Ours).p50 / p(Transport::Raw).p50;
        let park_socket = p(Transport::Socket).p50 / p(Transport::Ours).p50;
        md.push_str(&format!(
            "| {n} | {bytes} | {hot_vs_raw:.2}x | {hot_socket:.2}x | {park_vs_raw:.2}x | {park_socket:.2}x |\n"
        ));
        ratio_json.push(format!(
            "{{\"rows\":{n},\"hot_ours_vs_raw\":{hot_vs_raw:.3},\"hot_socket_vs_ours\":{hot_socket:.3},\
             \"parked_ours_vs_raw_futex\":{park_vs_raw:.3},\"parked_socket_vs_ours\":{park_socket:.3}}}"
        ));
    }
    let iox = iceoryx2_p50();
    if !iox.is_empty() {
        md.push_str(
            "\niceoryx2 (`bench/iceoryx2`, this run): publish-subscribe of the same bytes as a loaned `[u8]` sample \
             between two processes, subscriber spinning: a zero-copy transport that moves bytes, with no Arrow \
             encoding or decoding and no schema.\n\n| rows | bytes | iceoryx2 hot p50 | ours hot p50 | ours / iceoryx2 | raw / iceoryx2 |\n\
             |---:|---:|---:|---:|---:|---:|\n",
        );
        for &n in &ROWS {
            let bytes = rows.iter().find(|r| r.rows == n).map_or(0, |r| r.bytes);
            if let Some(&(_, p)) = iox.iter().find(|(b, _)| *b == bytes) {
                let ours = find(rows, Mode::Hot, n, Transport::Ours).p50;
                let raw = find(rows, Mode::Hot, n, Transport::Raw).p50;
                md.push_str(&format!(
                    "| {n} | {bytes} | {} | {} | {:.2}x | {:.2}x |\n",
                    fmt_ns(p),
                    fmt_ns(ours),
                    ours / p,
                    raw / p
                ));
            }
        }
    }
    md.push_str(
        "\nWhere the time goes: *write()* = p50 of the writer's `write()` call (stamp to return), *after* = p50 of each \
         round's latency minus its `write()` (the reader's side once the frame is published: wake-up, lease, decode); \
         the raw handoff's copy + flip (+ wake) call, and what follows it, in brackets.\n\n\
         | mode | rows | qadataswap p50 | p99 | write() | after | raw p50 | p99 | raw call, after | socket p50 | p99 |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for mode in Mode::ALL {
        for &n in &ROWS {
            let (o, r, s) = (
                find(rows, mode, n, Transport::Ours),
                find(rows, mode, n, Transport::Raw),
                find(rows, mode, n, Transport::Socket),
            );
            let parts = |t| {
                rows.iter()
                    .find(|r| r.mode == mode && r.rows == n && r.transport == t)
                    .map_or((0.0, 0.0), |r| (r.send.p50, r.rest.p50))
            };
            let (ow, oa) = parts(Transport::Ours);
            let (rw, ra) = parts(Transport::Raw);
            md.push_str(&format!(
                "| {} | {n} | {} | {} | {} | {} | {} | {} | ({}, {}) | {} | {} |\n",
                mode.name(),
                fmt_ns(o.p50),
                fmt_ns(o.p99),
                fmt_ns(ow),
                fmt_ns(oa),
                fmt_ns(r.p50),
                fmt_ns(r.p99),
                fmt_ns(rw),
                fmt_ns(ra),
                fmt_ns(s.p50),
                fmt_ns(s.p99)
            ));
        }
    }
    let others: Vec<Transport> = transports
        .iter()
        .copied()
        .filter(|t| t.external().is_some())
        .collect();
    if !others.is_empty() {
        md.push_str(
            "\nThe same `write()` (Rust writer) read in other languages: *python* = `read_next()` returning a \
             `polars.DataFrame` (zero-copy) in a Python process, *cpp* = `Reader::ReadNext()` returning an \
             `arrow::Table` in a C++ process; beside the Rust reader's `RecordBatch`.\n\n\
             | mode | rows | Rust p50 | p99 |",
        );
        for t in &others {
            md.push_str(&format!(" {} p50 | p99 | / Rust |", t.name()));
        }
        let python = others.contains(&Transport::Python);
        if python {
            md.push_str(" python: of which `to_polars` p50 |");
        }
        md.push_str("\n|---|---:|---:|---:|");
        md.push_str(&"---:|---:|---:|".repeat(others.len()));
        if python {
            md.push_str("---:|");
        }
        md.push('\n');
        for mode in Mode::ALL {
            for &n in &ROWS {
                let o = find(rows, mode, n, Transport::Ours);
                md.push_str(&format!(
                    "| {} | {n} | {} | {} |",
                    mode.name(),
                    fmt_ns(o.p50),
                    fmt_ns(o.p99)
                ));
                for &t in &others {
                    let x = find(rows, mode, n, t);
                    md.push_str(&format!(
                        " {} | {} | {:.2}x |",
                        fmt_ns(x.p50),
                        fmt_ns(x.p99),
                        x.p50 / o.p50
                    ));
                }
                if let Some(c) = rows
                    .iter()
                    .find(|r| r.mode == mode && r.rows == n && r.transport == Transport::Python)
                    .and_then(|r| r.convert)
                {
                    md.push_str(&format!(" {} |", fmt_ns(c.p50)));
                }
                md.push('\n');
            }
        }
    }
    // Goals of issue 21.
    let hot_max = ROWS
        .iter()
        .map(|&n| find(rows, Mode::Hot, n, Transport::Ours).p50)
        .fold(0.0, f64::max);
    let hot_ratio_max = ROWS
        .iter()
        .map(|&n| {
            find(rows, Mode::Hot, n, Transport::Ours).p50
                / find(rows, Mode::Hot, n, Transport::Raw).p50
        })
        .fold(0.0, f64::max);
    let park_ratio_max = ROWS
        .iter()
        .map(|&n| {
            find(rows, Mode::Parked, n, Transport::Ours).p50
                / find(rows, Mode::Parked, n, Transport::Raw).p50
        })
        .fold(0.0, f64::max);
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let python_max = transports.contains(&Transport::Python).then(|| {
        ROWS.iter()
            .map(|&n| find(rows, Mode::Hot, n, Transport::Python).p50)
            .fold(0.0, f64::max)
    });
    let mut goals = vec![
        format!(
            "hot p50 <= 1 µs for 1..1000 rows: worst {} ({})",
            fmt_ns(hot_max),
            verdict(hot_max <= 1000.0)
        ),
        format!(
            "hot p50 <= 2x the raw handoff: worst {hot_ratio_max:.2}x ({})",
            verdict(hot_ratio_max <= 2.0)
        ),
        format!(
            "parked p50 <= 1.2x the raw futex handoff: worst {park_ratio_max:.2}x ({})",
            verdict(park_ratio_max <= 1.2)
        ),
    ];
    goals.push(match python_max {
        Some(p) => format!(
            "hot p50 <= 5 µs to a Python polars.DataFrame for 1..1000 rows: worst {} ({})",
            fmt_ns(p),
            verdict(p <= 5000.0)
        ),
        None => {
            format!("hot p50 to a Python polars.DataFrame: not measured ({PYTHON_ENV} not set)")
        }
    });
    push_goals(&mut md, &goals);
    md.push_str(
        "\nWhat bounds the hot path: the instructions each call runs, counted in the e2e-profile section of this \
         report (`write()` and `read_next()` of the same frames under callgrind, with the functions that run them). \
         The raw handoff runs a memcpy and one store; ours encodes and checks Arrow IPC metadata, takes and returns a \
         lease, and builds the arrays.\n",
    );
    println!();
    println!("ratios (p50): ");
    for line in md
        .lines()
        .filter(|l| l.starts_with('|'))
        .take(2 + ROWS.len())
    {
        println!("  {line}");
    }
    println!("goals:");
    for g in &goals {
        println!("  {g}");
    }

    if let Some(json) = &opts.json {
        let chart = sibling(json, "-rows.svg");
        let series: Vec<svg::Series> = Mode::ALL
            .into_iter()
            .flat_map(|m| transports.iter().map(move |&t| (m, t)))
            .map(|(m, t)| svg::Series {
                name: format!("{} {}", t.name(), m.name()),
                dashed: m == Mode::Parked,
                points: ROWS
                    .iter()
                    .map(|&n| (n as f64, find(rows, m, n, t).p50 / 1000.0))
                    .collect(),
            })
            .collect();
        std::fs::write(
            &chart,
            svg::lines(
                "Small-frame latency (p50, one way)",
                "rows (log)",
                "µs (log)",
                &series,
            ),
        )?;
        push_chart(&mut md, "latency against rows", &chart);
        std::fs::write(sibling(json, ".md"), &md)?;
        let items: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{{\"mode\":{},\"rows\":{},\"ipc_bytes\":{},\"transport\":{},\"label\":{},\"p50_ns\":{:.1},\"p99_ns\":{:.1},\"send_p50_ns\":{:.1},\"send_p99_ns\":{:.1},\"after_send_p50_ns\":{:.1},\"samples\":{}}}",
                    js(r.mode.name()),
                    r.rows,
                    r.bytes,
                    js(r.transport.name()),
                    js(r.transport.label(r.mode)),
                    r.pct.p50,
                    r.pct.p99,
                    r.send.p50,
                    r.send.p99,
                    r.rest.p50,
                    r.samples
                )
            })
            .collect();
        std::fs::write(
            json,
            format!(
                "{{\"bench\":\"e2e-latency\",\"unit\":\"one-way ns, write() start to RecordBatch in the reader\",\
                 \"hot_rounds\":{hot_rounds},\"parked_rounds\":{parked_rounds},\"results\":[{}],\"ratios\":[{}],\
                 \"goals\":{{\"hot_p50_max_ns\":{hot_max:.1},\"hot_ok\":{},\"hot_vs_raw_max\":{hot_ratio_max:.3},\
                 \"hot_vs_raw_ok\":{},\"parked_vs_raw_futex_max\":{park_ratio_max:.3},\"parked_ok\":{},\
                 \"python_hot_p50_max_ns\":{}}}}}\n",
                items.join(","),
                ratio_json.join(","),
                hot_max <= 1000.0,
                hot_ratio_max <= 2.0,
                park_ratio_max <= 1.2,
                python_max.map_or("null".to_owned(), |p| format!("{p:.1}"))
            ),
        )?;
        println!("JSON written to {}", json.display());
    }
    Ok(())
}
