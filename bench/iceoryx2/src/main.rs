//! iceoryx2 anchor for the QADataSwap small-frame latency bench.
//!
//! Measures one-way latency of iceoryx2 publish-subscribe (loaned `[u8]` slice
//! samples) between two processes, for the Arrow IPC byte sizes of our
//! 1/10/100/1000-row frames.
//!
//! The program runs as the publisher and re-runs itself with `--subscriber` as
//! the child process. Per round the publisher loans a slice sample, copies the
//! frame bytes into it, stores in the first 8 bytes the CLOCK_MONOTONIC (ns) taken
//! before the loan, and sends it. The subscriber spins on `receive()` (hot mode, no waitset), takes
//! CLOCK_MONOTONIC as soon as it holds the sample, records `t1 - t0` and
//! acknowledges through a second iceoryx2 service. One sample is in flight at
//! a time; the publisher busy-waits 10 µs between rounds. At the end the
//! subscriber prints its latencies on stdout, which the publisher reads.
//!
//! Usage: `qadataswap-iceoryx2-bench [--quick] [--json PATH]`

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use iceoryx2::prelude::*;

/// Arrow IPC bytes of the 1/10/100/1000-row frames.
const SIZES: [usize; 4] = [776, 968, 3464, 28552];
const WARMUP: usize = 1_000;
const MEASURED: usize = 20_000;
const MEASURED_QUICK: usize = 4_000;
const GAP_NS: u64 = 10_000;
/// Length of the sample that tells the subscriber to stop (no bench size uses it).
const STOP_LEN: usize = 8;
/// Ack value the subscriber sends once its ports exist.
const READY: u64 = u64::MAX;
/// Give up when a peer stays silent this long.
const PEER_TIMEOUT: Duration = Duration::from_secs(20);

type Error = Box<dyn std::error::Error>;

fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A private iceoryx2 domain for one run: its own file prefix (for /dev/shm)
/// and its own root directory (for /tmp), so the run can remove everything,
/// including iceoryx2's persistent per-domain node counter, without touching
/// any other iceoryx2 user on the machine.
fn bench_config(tag: &str) -> Result<Config, Error> {
    let mut config = Config::default();
    config.global.prefix = FileName::new(format!("qadsiox2_{tag}_").as_bytes())
        .map_err(|e| format!("bad prefix: {e:?}"))?;
    config.global.set_root_path(
        &Path::new(root_dir(tag).as_bytes()).map_err(|e| format!("bad root path: {e:?}"))?,
    );
    Ok(config)
}

fn root_dir(tag: &str) -> String {
    format!("/tmp/qadataswap-iceoryx2-bench-{tag}/")
}

fn service_names(tag: &str) -> Result<(ServiceName, ServiceName), Error> {
    let data = ServiceName::new(&format!("qadataswap/iceoryx2-bench/{tag}/data"))?;
    let ack = ServiceName::new(&format!("qadataswap/iceoryx2-bench/{tag}/ack"))?;
    Ok((data, ack))
}

fn node_name(role: &str, tag: &str) -> Result<NodeName, Error> {
    Ok(NodeName::new(&format!(
        "qadataswap-iceoryx2-bench-{role}-{tag}"
    ))?)
}

struct Args {
    quick: bool,
    json: Option<String>,
    /// `--subscriber TAG PARENT_PID`
    subscriber: Option<(String, i32)>,
}

fn parse_args() -> Result<Args, Error> {
    let mut args = Args {
        quick: false,
        json: None,
        subscriber: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => args.quick = true,
            "--json" => args.json = Some(it.next().ok_or("--json needs a PATH")?),
            "--subscriber" => {
                let tag = it.next().ok_or("--subscriber needs TAG PARENT_PID")?;
                let ppid = it
                    .next()
                    .ok_or("--subscriber needs TAG PARENT_PID")?
                    .parse()?;
                args.subscriber = Some((tag, ppid));
            }
            "-h" | "--help" => {
                println!("usage: qadataswap-iceoryx2-bench [--quick] [--json PATH]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument: {other}").into()),
        }
    }
    Ok(args)
}

fn main() {
    // Keep iceoryx2 quiet unless asked otherwise (IOX2_LOG_LEVEL).
    set_log_level_from_env_or(LogLevel::Warn);
    let result = parse_args().and_then(|args| match args.subscriber {
        Some((tag, ppid)) => run_subscriber(&tag, ppid),
        None => run_publisher(args.quick, args.json.as_deref()),
    });
    if let Err(e) = result {
        eprintln!("qadataswap-iceoryx2-bench: error: {e}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------- subscriber

fn run_subscriber(tag: &str, parent_pid: i32) -> Result<(), Error> {
    // Die with the parent. Also set in pre_exec; repeated here for clarity, and
    // check the parent did not already exit before the flag took effect.
    // SAFETY: plain prctl/getppid calls.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
        if libc::getppid() != parent_pid {
            return Err("parent already gone".into());
        }
    }

    let latencies = {
        let node = NodeBuilder::new()
            .name(&node_name("sub", tag)?)
            .config(&bench_config(tag)?)
            .create::<ipc::Service>()?;
        let (data_name, ack_name) = service_names(tag)?;
        let data = node
            .service_builder(&data_name)
            .publish_subscribe::<[u8]>()
            .open()?;
        let ack = node
            .service_builder(&ack_name)
            .publish_subscribe::<u64>()
            .open()?;
        let subscriber = data.subscriber_builder().create()?;
        let ack_pub = ack.publisher_builder().create()?;

        ack_pub.send_copy(READY)?;

        let mut lat: Vec<(u32, u64)> = Vec::with_capacity(SIZES.len() * (WARMUP + MEASURED));
        let mut seq: u64 = 0;
        loop {
            // Hot mode: spin on receive().
            let sample = loop {
                if let Some(s) = subscriber.receive()? {
                    break s;
                }
                core::hint::spin_loop();
            };
            let t1 = mono_ns();
            let payload = sample.payload();
            let len = payload.len();
            if len == STOP_LEN {
                break;
            }
            let t0 = u64::from_le_bytes(payload[..8].try_into()?);
            drop(sample);
            lat.push((len as u32, t1.saturating_sub(t0)));
            seq += 1;
            ack_pub.send_copy(seq)?;
        }
        lat
        // ports, services and the node drop here, removing their resources
    };

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (len, ns) in latencies {
        writeln!(out, "{len} {ns}")?;
    }
    out.flush()?;
    Ok(())
}

// ----------------------------------------------------------------- publisher

struct Row {
    bytes: usize,
    p50: u64,
    p99: u64,
    samples: usize,
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    // nearest-rank
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

fn check_child(child: &mut Child, since: Instant, what: &str) -> Result<(), Error> {
    if let Some(status) = child.try_wait()? {
        return Err(format!("subscriber exited ({status}) while {what}").into());
    }
    if since.elapsed() > PEER_TIMEOUT {
        return Err(format!("timed out while {what}").into());
    }
    Ok(())
}

/// Kills and reaps the subscriber if the publisher leaves early.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn run_publisher(quick: bool, json: Option<&str>) -> Result<(), Error> {
    let measured = if quick { MEASURED_QUICK } else { MEASURED };
    let pid = std::process::id() as i32;
    let tag = format!("{pid}");
    let config = bench_config(&tag)?;
    sweep_stale_runs();

    // All iceoryx2 objects live (and drop) inside measure().
    let result = measure(&config, &tag, pid, measured);
    cleanup_domain(&config, &tag);
    let rows = result?;

    println!("iceoryx2 0.10 publish-subscribe, loaned [u8] slice, hot (spin) receive, separate processes");
    println!("one-way latency, {WARMUP} warm-up + {measured} measured rounds per size, 10 us gap");
    println!(
        "{:>8}  {:>10}  {:>10}  {:>8}",
        "bytes", "p50", "p99", "samples"
    );
    for r in &rows {
        println!(
            "{:>8}  {:>10}  {:>10}  {:>8}",
            r.bytes,
            fmt_ns(r.p50),
            fmt_ns(r.p99),
            r.samples
        );
    }

    if let Some(path) = json {
        let mut s = String::from("{\"bench\":\"iceoryx2\",\"unit\":\"one-way ns\",\"results\":[");
        for (i, r) in rows.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&format!(
                "{{\"bytes\":{},\"p50_ns\":{},\"p99_ns\":{},\"samples\":{}}}",
                r.bytes, r.p50, r.p99, r.samples
            ));
        }
        s.push_str("]}\n");
        std::fs::write(path, s)?;
    }
    Ok(())
}

fn measure(config: &Config, tag: &str, pid: i32, measured: usize) -> Result<Vec<Row>, Error> {
    let node = NodeBuilder::new()
        .name(&node_name("pub", tag)?)
        .config(config)
        .create::<ipc::Service>()?;
    let (data_name, ack_name) = service_names(tag)?;
    let data = node
        .service_builder(&data_name)
        .publish_subscribe::<[u8]>()
        .max_publishers(1)
        .max_subscribers(1)
        .history_size(0)
        .create()?;
    let ack = node
        .service_builder(&ack_name)
        .publish_subscribe::<u64>()
        .max_publishers(1)
        .max_subscribers(1)
        .history_size(0)
        .create()?;
    let max_len = *SIZES.iter().max().unwrap();
    let publisher = data
        .publisher_builder()
        .initial_max_slice_len(max_len)
        .create()?;
    let ack_sub = ack.subscriber_builder().create()?;

    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg("--subscriber")
        .arg(tag)
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            Ok(())
        });
    }
    let mut child = ChildGuard(cmd.spawn()?);

    drive(&mut child.0, &node, &publisher, &ack_sub, measured)?;

    // The subscriber now prints its latencies and exits.
    let stdout = child.0.stdout.take().ok_or("no child stdout")?;
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        lines.push(line?);
    }
    let status = child.0.wait()?;
    if !status.success() {
        return Err(format!("subscriber failed: {status}").into());
    }
    drop((publisher, ack_sub, data, ack, node));

    let mut per_size: Vec<Vec<u64>> = vec![Vec::new(); SIZES.len()];
    for line in &lines {
        let mut f = line.split_whitespace();
        let len: usize = f.next().ok_or("bad line")?.parse()?;
        let ns: u64 = f.next().ok_or("bad line")?.parse()?;
        let idx = SIZES
            .iter()
            .position(|&s| s == len)
            .ok_or("unexpected payload length")?;
        per_size[idx].push(ns);
    }

    let mut rows = Vec::new();
    for (i, &bytes) in SIZES.iter().enumerate() {
        let all = &per_size[i];
        if all.len() != WARMUP + measured {
            return Err(format!(
                "size {bytes}: got {} latencies, expected {}",
                all.len(),
                WARMUP + measured
            )
            .into());
        }
        let mut v = all[WARMUP..].to_vec();
        v.sort_unstable();
        rows.push(Row {
            bytes,
            p50: percentile(&v, 50.0),
            p99: percentile(&v, 99.0),
            samples: v.len(),
        });
    }
    Ok(rows)
}

fn fmt_ns(ns: u64) -> String {
    if ns >= 10_000 {
        format!("{:.1} us", ns as f64 / 1000.0)
    } else {
        format!("{ns} ns")
    }
}

/// Runs all rounds; leaves the subscriber about to print its results.
fn drive(
    child: &mut Child,
    node: &Node<ipc::Service>,
    publisher: &iceoryx2::port::publisher::Publisher<ipc::Service, [u8], ()>,
    ack_sub: &iceoryx2::port::subscriber::Subscriber<ipc::Service, u64, ()>,
    measured: usize,
) -> Result<(), Error> {
    // Wait until the subscriber's ports exist.
    let start = Instant::now();
    let mut spins: u64 = 0;
    loop {
        if let Some(s) = ack_sub.receive()? {
            if *s.payload() == READY {
                break;
            }
        }
        spins += 1;
        if spins % 1024 == 0 {
            check_child(child, start, "waiting for the subscriber to start")?;
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    let frame: Vec<u8> = (0..*SIZES.iter().max().unwrap())
        .map(|i| (i * 31 + 7) as u8)
        .collect();
    let mut seq: u64 = 0;
    for &size in &SIZES {
        for _ in 0..WARMUP + measured {
            // t0 before the loan and the copy, as the other transports of the latency suite stamp it before
            // their send call (ours: before write(), which encodes and copies; raw: before its memcpy).
            let t0 = mono_ns();
            let sample = publisher.loan_slice_uninit(size)?;
            let mut sample = sample.write_from_slice(&frame[..size]);
            sample.payload_mut()[..8].copy_from_slice(&t0.to_le_bytes());
            sample.send()?;
            seq += 1;

            // One in flight: spin until the subscriber acknowledges this round.
            let round_start = Instant::now();
            let mut spins: u64 = 0;
            loop {
                if let Some(s) = ack_sub.receive()? {
                    if *s.payload() == seq {
                        break;
                    }
                }
                spins += 1;
                if spins % (1 << 16) == 0 {
                    check_child(child, round_start, "waiting for an ack")?;
                }
                core::hint::spin_loop();
            }

            // iceoryx2 catches SIGINT/SIGTERM for the node; honour them now
            // and then (outside the measured path) so Ctrl-C still works.
            if seq % 256 == 0 && node.wait(Duration::ZERO).is_err() {
                return Err("interrupted".into());
            }

            let until = mono_ns() + GAP_NS;
            while mono_ns() < until {
                core::hint::spin_loop();
            }
        }
    }

    let sample = publisher.loan_slice_uninit(STOP_LEN)?;
    sample.write_from_slice(&[0u8; STOP_LEN]).send()?;
    Ok(())
}

/// Removes everything this run's private iceoryx2 domain put on disk. Runs
/// after all nodes of the run are gone (the subscriber has exited or was
/// killed, the publisher's objects are dropped).
fn cleanup_domain(config: &Config, tag: &str) {
    // A killed subscriber leaves its node and port resources: remove them.
    let _ = Node::<ipc::Service>::list(config, |state| {
        if let NodeState::<ipc::Service>::Dead(view) = state {
            let _ = view.try_remove_stale_resources();
        }
        CallbackProgression::Continue
    });
    // iceoryx2 keeps a small persistent segment (node counter) per domain; it
    // is only removable through its `testing` module.
    // SAFETY: the domain's prefix is unique to this run and no process of the
    // run is alive any more.
    let _ = unsafe { iceoryx2::testing::remove_global_mgmt_segment::<ipc::Service>(config) };
    let _ = std::fs::remove_dir_all(root_dir(tag));
}

/// Cleans the domains of earlier runs whose publisher was killed (SIGKILL
/// leaves no chance to clean up): their root directory names a dead pid.
fn sweep_stale_runs() {
    let Ok(entries) = std::fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(tag) = name
            .to_str()
            .and_then(|n| n.strip_prefix("qadataswap-iceoryx2-bench-"))
        else {
            continue;
        };
        let Ok(pid) = tag.parse::<i32>() else {
            continue;
        };
        // SAFETY: signal 0 only probes whether the pid exists.
        let dead = unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if dead {
            if let Ok(config) = bench_config(tag) {
                eprintln!("qadataswap-iceoryx2-bench: removing leftovers of killed run {pid}");
                cleanup_domain(&config, tag);
            }
        }
    }
}
