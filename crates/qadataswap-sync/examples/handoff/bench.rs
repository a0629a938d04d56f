//! The benchmark proper (not built under loom: it needs the real futex and rustix).

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use qadataswap_sync::futex;
use qadataswap_sync::notify::{Notifier, SpinBudget, WaitOptions};
use rustix::fs::{Mode, OFlags};
use rustix::mm::{MapFlags, ProtFlags};

const LEN: usize = 4096;
const WARMUP: u32 = 2000;
const WATCHDOG: Duration = Duration::from_secs(300);

#[repr(C)]
struct Shared {
    ping: CachePadded<AtomicU32>,
    ping_waiters: CachePadded<AtomicU32>,
    pong: CachePadded<AtomicU32>,
    pong_waiters: CachePadded<AtomicU32>,
    ready: CachePadded<AtomicU32>,
    /// Wake-up mode: CLOCK_MONOTONIC ns at which the sender published round i.
    stamp: CachePadded<AtomicU64>,
    /// Wake-up mode: the receiver's measured wake-up latency for the last round, in ns.
    latency: CachePadded<AtomicU64>,
    /// Wake-up mode: the last round the receiver has measured.
    ack: CachePadded<AtomicU32>,
}

const _: () = assert!(std::mem::size_of::<Shared>() <= LEN);

struct Mapping {
    ptr: NonNull<Shared>,
    path: String,
    owner: bool,
}

impl Mapping {
    fn create() -> Mapping {
        let path = format!("/dev/shm/qadataswap-handoff-{}", std::process::id());
        let _ = rustix::fs::unlink(&path);
        let fd = rustix::fs::open(
            &path,
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .expect("create the /dev/shm file");
        rustix::fs::ftruncate(&fd, LEN as u64).expect("size the /dev/shm file");
        Mapping::map(fd, path, true)
    }

    fn open(path: &str) -> Mapping {
        let fd = rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
            .expect("open the /dev/shm file");
        Mapping::map(fd, path.to_owned(), false)
    }

    fn map(fd: rustix::fd::OwnedFd, path: String, owner: bool) -> Mapping {
        // SAFETY: a fresh shared mapping of a file sized to LEN bytes.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                LEN,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &fd,
                0,
            )
        }
        .expect("mmap");
        Mapping {
            ptr: NonNull::new(ptr.cast()).expect("mmap returned null"),
            path,
            owner,
        }
    }

    fn shared(&self) -> &Shared {
        // SAFETY: page-aligned, LEN >= size_of::<Shared>() bytes, zero-filled at creation (a
        // valid `Shared`: atomics and padding only), alive as long as `self`, atomics only.
        unsafe { self.ptr.as_ref() }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `map` mapped; no reference outlives `self`.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), LEN) };
        if self.owner {
            let _ = rustix::fs::unlink(&self.path);
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Spin,
    Notifier,
    NotifierPark,
    Futex,
    Pipe,
}

impl Variant {
    const ALL: [Variant; 5] = [
        Variant::Spin,
        Variant::Notifier,
        Variant::NotifierPark,
        Variant::Futex,
        Variant::Pipe,
    ];
    fn name(self) -> &'static str {
        match self {
            Variant::Spin => "spin",
            Variant::Notifier => "notifier",
            Variant::NotifierPark => "notifier-park",
            Variant::Futex => "futex",
            Variant::Pipe => "pipe",
        }
    }
    fn label(self) -> String {
        match self {
            Variant::Spin => "spin (busy-wait on the atomic)".into(),
            Variant::Notifier => format!("Notifier, default spin ({})", SpinBudget::DEFAULT.0),
            Variant::NotifierPark => "Notifier, spin 0 (always park)".into(),
            Variant::Futex => "raw futex ping-pong".into(),
            Variant::Pipe => "pipe ping-pong (1 byte)".into(),
        }
    }
    fn parse(s: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == s)
    }
    fn spin(self) -> SpinBudget {
        if self == Variant::NotifierPark {
            SpinBudget::PARK_AT_ONCE
        } else {
            SpinBudget::DEFAULT
        }
    }
}

/// One side's "send round i" and "wait for round i" over the shared words.
struct Side<'a> {
    variant: Variant,
    out: (&'a AtomicU32, &'a AtomicU32),
    inp: (&'a AtomicU32, &'a AtomicU32),
}

impl Side<'_> {
    fn send(&self, i: u32) {
        match self.variant {
            Variant::Spin => self.out.0.store(i, Ordering::Release),
            Variant::Notifier | Variant::NotifierPark => {
                Notifier::new(self.out.0, self.out.1).notify()
            }
            Variant::Futex => {
                self.out.0.store(i, Ordering::Release);
                futex::wake(self.out.0, 1);
            }
            Variant::Pipe => unreachable!(),
        }
    }

    fn recv(&self, i: u32) {
        let word = self.inp.0;
        match self.variant {
            Variant::Spin => {
                while word.load(Ordering::Acquire) != i {
                    std::hint::spin_loop();
                }
            }
            Variant::Notifier | Variant::NotifierPark => {
                let opts = WaitOptions::default().with_spin(self.variant.spin());
                let _ = Notifier::new(word, self.inp.1).wait_until(&opts, || {
                    Ok::<_, std::convert::Infallible>(
                        (word.load(Ordering::Acquire) == i).then_some(()),
                    )
                });
            }
            Variant::Futex => loop {
                let v = word.load(Ordering::Acquire);
                if v == i {
                    break;
                }
                futex::wait(word, v, Some(Duration::from_secs(1)));
            },
            Variant::Pipe => unreachable!(),
        }
    }
}

fn child(variant: Variant, path: &str, total: u32) {
    if variant == Variant::Pipe {
        let (mut stdin, mut stdout) = (std::io::stdin().lock(), std::io::stdout().lock());
        let mut b = [0u8; 1];
        for _ in 0..total {
            stdin.read_exact(&mut b).expect("read ping");
            stdout.write_all(&b).expect("write pong");
            stdout.flush().expect("flush pong");
        }
        return;
    }
    let mapping = Mapping::open(path);
    let s = mapping.shared();
    let side = Side {
        variant,
        out: (&s.pong, &s.pong_waiters),
        inp: (&s.ping, &s.ping_waiters),
    };
    s.ready.store(1, Ordering::Release);
    for i in 1..=total {
        side.recv(i);
        side.send(i);
    }
}

/// CLOCK_MONOTONIC in ns: one clock for every process on the machine (unlike `Instant`, whose values
/// cannot be compared across processes).
fn mono_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Wake-up mode, receiving side: wait for round i (asleep by then), then report how long after the
/// sender's publish this process was running again.
fn child_wake(variant: Variant, path: &str, total: u32) {
    let mapping = Mapping::open(path);
    let s = mapping.shared();
    let side = Side {
        variant,
        out: (&s.pong, &s.pong_waiters),
        inp: (&s.ping, &s.ping_waiters),
    };
    s.ready.store(1, Ordering::Release);
    for i in 1..=total {
        side.recv(i);
        let now = mono_ns();
        s.latency.store(
            now.saturating_sub(s.stamp.load(Ordering::Acquire)),
            Ordering::Relaxed,
        );
        s.ack.store(i, Ordering::Release);
    }
}

/// Time between the sender's gap and its publish in wake-up mode: far longer than any spin budget
/// and than the time the receiver needs to fall asleep, so every round wakes a sleeping process.
const WAKE_GAP: Duration = Duration::from_micros(300);

/// Wake-up mode, sending side: before each round, sleep [`WAKE_GAP`] so the receiver is parked in
/// the kernel, collect the receiver's measured latency of the round before, stamp the clock, publish.
fn run_wake(variant: Variant, rounds: u32) -> Vec<u64> {
    let warmup = 50;
    let total = warmup + rounds;
    let mapping = Mapping::create();
    let child: Child = Command::new(std::env::current_exe().expect("current exe"))
        .args([
            "--child-wake",
            variant.name(),
            &mapping.path,
            &total.to_string(),
        ])
        .spawn()
        .expect("spawn the child");
    CHILDREN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(child.id());
    let s = mapping.shared();
    while s.ready.load(Ordering::Acquire) == 0 {
        std::thread::yield_now();
    }
    let side = Side {
        variant,
        out: (&s.ping, &s.ping_waiters),
        inp: (&s.pong, &s.pong_waiters),
    };
    let mut samples = Vec::with_capacity(rounds as usize);
    // The sender behaves like a writer that publishes and goes on with other work (here: sleeping until the next
    // round), not like one that busy-waits for the reader: a busy sender would keep its core, and the kernel's
    // wake-affine placement could queue the woken receiver behind it until the next tick.
    let collect = |i: u32, samples: &mut Vec<u64>| {
        while s.ack.load(Ordering::Acquire) != i {
            std::thread::sleep(Duration::from_micros(20));
        }
        if i > warmup {
            samples.push(s.latency.load(Ordering::Relaxed));
        }
    };
    for i in 1..=total {
        std::thread::sleep(WAKE_GAP);
        if i > 1 {
            collect(i - 1, &mut samples);
        }
        s.stamp.store(mono_ns(), Ordering::Release);
        side.send(i);
    }
    collect(total, &mut samples);
    reap(child, variant);
    samples
}

/// Waits for a child and fails the bench if it did not finish cleanly.
fn reap(mut child: Child, variant: Variant) {
    let status = child.wait().expect("wait for the child");
    assert!(
        status.success(),
        "{} child failed: {status:?}",
        variant.name()
    );
}

static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

struct Stats {
    median_ns: f64,
    p99_ns: f64,
}

fn run(variant: Variant, round_trips: u32) -> Vec<u64> {
    let total = WARMUP + round_trips;
    let mapping = Mapping::create();
    let mut cmd = Command::new(std::env::current_exe().expect("current exe"));
    cmd.args(["--child", variant.name(), &mapping.path, &total.to_string()]);
    if variant == Variant::Pipe {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    }
    let mut child: Child = cmd.spawn().expect("spawn the child");
    CHILDREN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(child.id());
    let mut samples = Vec::with_capacity(round_trips as usize);

    if variant == Variant::Pipe {
        let mut to = child.stdin.take().expect("child stdin");
        let mut from = child.stdout.take().expect("child stdout");
        let mut b = [7u8; 1];
        for i in 0..total {
            let t0 = Instant::now();
            to.write_all(&b).expect("write ping");
            from.read_exact(&mut b).expect("read pong");
            if i >= WARMUP {
                samples.push(t0.elapsed().as_nanos() as u64);
            }
        }
    } else {
        let s = mapping.shared();
        while s.ready.load(Ordering::Acquire) == 0 {
            std::thread::yield_now();
        }
        let side = Side {
            variant,
            out: (&s.ping, &s.ping_waiters),
            inp: (&s.pong, &s.pong_waiters),
        };
        for i in 1..=total {
            let t0 = Instant::now();
            side.send(i);
            side.recv(i);
            if i > WARMUP {
                samples.push(t0.elapsed().as_nanos() as u64);
            }
        }
    }
    reap(child, variant);
    samples
}

/// Median and p99 of `samples / per_sample` (2 for round trips reported one way, 1 for one-way samples).
fn stats(mut samples: Vec<u64>, per_sample: f64) -> Stats {
    samples.sort_unstable();
    let pick =
        |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize] as f64 / per_sample;
    Stats {
        median_ns: pick(0.5),
        p99_ns: pick(0.99),
    }
}

fn print_table(rows: &[(Variant, Stats)]) {
    println!("{:<36} {:>10} {:>10}", "variant", "median", "p99");
    for (v, s) in rows {
        println!(
            "{:<36} {:>10} {:>10}",
            v.label(),
            fmt_ns(s.median_ns),
            fmt_ns(s.p99_ns)
        );
    }
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 10_000.0 {
        format!("{:.1} µs", ns / 1000.0)
    } else {
        format!("{ns:.0} ns")
    }
}

pub fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        let variant = Variant::parse(&args[2]).expect("known variant");
        child(variant, &args[3], args[4].parse().expect("round count"));
        return;
    }
    if args.get(1).map(String::as_str) == Some("--child-wake") {
        let variant = Variant::parse(&args[2]).expect("known variant");
        child_wake(variant, &args[3], args[4].parse().expect("round count"));
        return;
    }
    let json = args.iter().any(|a| a == "--json");
    let round_trips: u32 = args
        .iter()
        .position(|a| a == "--round-trips")
        .and_then(|i| args.get(i + 1))
        .map_or(20_000, |n| n.parse().expect("--round-trips takes a number"));

    std::thread::spawn(|| {
        std::thread::sleep(WATCHDOG);
        eprintln!("handoff: watchdog fired after {WATCHDOG:?}, killing children");
        for pid in CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            if let Some(pid) = rustix::process::Pid::from_raw(*pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        std::process::exit(2);
    });

    let repeat: u32 = args
        .iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1))
        .map_or(3, |n| n.parse().expect("--repeat takes a number"));
    let mut pooled: Vec<(Variant, Vec<u64>)> = Variant::ALL.map(|v| (v, Vec::new())).into();
    for _ in 0..repeat.max(1) {
        for (v, samples) in &mut pooled {
            samples.extend(run(*v, round_trips));
        }
    }
    let results: Vec<(Variant, Stats)> = pooled
        .into_iter()
        .map(|(v, s)| (v, stats(s, 2.0)))
        .collect();
    let get = |v: Variant| &results.iter().find(|(x, _)| *x == v).expect("ran").1;
    let pingpong_parked_vs_futex =
        get(Variant::NotifierPark).median_ns / get(Variant::Futex).median_ns;

    // Wake-up of a receiver that is really asleep: the fair test of "parked reader vs raw futex".
    // In the ping-pong above a raw futex waiter often finds the word already changed (EAGAIN) and
    // never sleeps, while the Notifier (which skips the wake syscall when nobody is parked) lets
    // its partner fall asleep first, so the two medians measure different things.
    const WAKE_VARIANTS: [Variant; 3] = [Variant::NotifierPark, Variant::Notifier, Variant::Futex];
    let wake_rounds = (round_trips / 10).clamp(200, 2000);
    let mut wake_pooled: Vec<(Variant, Vec<u64>)> = WAKE_VARIANTS.map(|v| (v, Vec::new())).into();
    for _ in 0..repeat.max(1) {
        for (v, samples) in &mut wake_pooled {
            samples.extend(run_wake(*v, wake_rounds));
        }
    }
    let wake: Vec<(Variant, Stats)> = wake_pooled
        .into_iter()
        .map(|(v, s)| (v, stats(s, 1.0)))
        .collect();
    let wget = |v: Variant| &wake.iter().find(|(x, _)| *x == v).expect("ran").1;
    let parked_vs_futex = wget(Variant::NotifierPark).median_ns / wget(Variant::Futex).median_ns;
    let hot_vs_spin = get(Variant::Notifier).median_ns / get(Variant::Spin).median_ns;
    let hot_median = get(Variant::Notifier).median_ns;

    if json {
        let json_rows = |rows: &[(Variant, Stats)]| -> Vec<String> {
            rows.iter()
                .map(|(v, s)| {
                    format!(
                        "{{\"variant\":\"{}\",\"median_ns\":{:.1},\"p99_ns\":{:.1}}}",
                        v.name(),
                        s.median_ns,
                        s.p99_ns
                    )
                })
                .collect()
        };
        let (rows, wake_rows) = (json_rows(&results), json_rows(&wake));
        println!(
            "{{\"bench\":\"handoff\",\"unit\":\"one-way ns (round trip / 2)\",\"round_trips\":{round_trips},\"repeat\":{repeat},\
             \"default_spin\":{},\"results\":[{}],\"wake_unit\":\"one-way ns from publish to a sleeping receiver running\",\
             \"wake_rounds\":{wake_rounds},\"wake_results\":[{}],\"ratios\":{{\"parked_vs_raw_futex\":{parked_vs_futex:.3},\
             \"pingpong_parked_vs_raw_futex\":{pingpong_parked_vs_futex:.3},\
             \"hot_vs_spin\":{hot_vs_spin:.3}}},\"targets\":{{\"hot_median_ns_max\":400,\"hot_median_ns\":{hot_median:.1},\
             \"hot_ok\":{},\"parked_vs_raw_futex_max\":1.2,\"parked_ok\":{}}}}}",
            SpinBudget::DEFAULT.0,
            rows.join(","),
            wake_rows.join(","),
            hot_median <= 400.0,
            parked_vs_futex <= 1.2,
        );
        return;
    }
    println!("handoff between two processes: one-way latency (round trip / 2), {round_trips} round trips, {repeat} runs pooled");
    print_table(&results);
    println!();
    println!(
        "wake-up of a sleeping receiver (sender sleeps {WAKE_GAP:?} first, so the receiver is parked): \
         publish -> receiver running, {wake_rounds} rounds, {repeat} runs pooled"
    );
    print_table(&wake);
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    println!();
    println!(
        "hot handoff (Notifier, default spin): {} median, {hot_vs_spin:.2}x spin   [target <= 400 ns: {}]",
        fmt_ns(hot_median),
        verdict(hot_median <= 400.0)
    );
    println!(
        "parked reader woken (Notifier, spin 0): {parked_vs_futex:.2}x a raw futex wake-up   [target <= 1.2x: {}]",
        verdict(parked_vs_futex <= 1.2)
    );
    println!(
        "(ping-pong above, for information: Notifier spin 0 {pingpong_parked_vs_futex:.2}x raw futex; a raw futex \
         ping-pong mostly never sleeps: FUTEX_WAIT finds the word already changed)"
    );
}
