//! Reliability R15, the restart soak: random SIGKILL / SIGTERM of the writer and of readers at random moments, with
//! real processes, then restart of whatever was killed (a new writer takes the segment over; new readers attach).
//!
//! Passes when no reader ever sees a torn frame or a frame older than one it already saw, the writer is never
//! wedged by a dead reader's leases, every takeover bumps the generation, no cycle hangs (a watchdog kills every
//! child and fails the test), the reader table holds no dead entry after a reclaim, and no segment is left in
//! `/dev/shm` after the clean shutdown.
//!
//! 30 cycles by default; `cargo xtask test --soak` (`QADATASWAP_SOAK=1`) runs 3,000. `QADATASWAP_SOAK_SEED=<n>`
//! replays the parent's choices (which process, which signal, when) of an earlier run; `QADATASWAP_SOAK_CYCLES=<n>`
//! overrides the cycle count, `QADATASWAP_SOAK_WATCHDOG_SECS=<n>` the per-cycle watchdog (60 s). The same seed
//! replays the choices, not the timing of the processes, so a failure may need a few replays. Children are this
//! test binary re-executed with `QADS_SOAK_ROLE` naming their role.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use arrow_array::{Array, ArrayRef, RecordBatch, UInt32Array, UInt64Array};
use qadataswap_arrow::{Error, Frame, SnapshotReader, SnapshotWriter};
use qadataswap_sync::lease::LeaseTable;
use qadataswap_sync::process::ProcessIdentity;

const ROLE: &str = "QADS_SOAK_ROLE";
const NAME: &str = "QADS_SOAK_NAME";
const SEED: &str = "QADS_SOAK_CHILD_SEED";
/// Every child line the parent looks at starts with this (libtest's own output is ignored).
const MARK: &str = "@@ ";

/// Ring slots: few, so that readers holding frames (up to 3 each) really block the writer at times and a dead
/// reader's leases must be reclaimed for the writer to go on.
const SLOTS: usize = 4;
const READERS: usize = 3;
const MAX_ROWS: u64 = 20_000;
const LEASE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one cycle (kill, reap, restart, progress check) may take before the watchdog fails the test
/// (`QADATASWAP_SOAK_WATCHDOG_SECS` overrides it).
fn cycle_watchdog() -> Duration {
    Duration::from_secs(env_u64("QADATASWAP_SOAK_WATCHDOG_SECS").unwrap_or(60))
}
/// How long the parent waits for one expected line from a child.
const LINE_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------------------------
// Frames whose every value derives from (seq, generation): a torn or mixed frame cannot pass `verify`.

/// splitmix64: the seeded generator of the soak and the per-row checksum.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
    /// Uniform-enough in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }
}

fn rows_of(seq: u64) -> usize {
    (1 + mix(seq ^ 0xABCD) % MAX_ROWS) as usize
}

fn checksum(seq: u64, generation: u64, row: u64) -> u64 {
    mix(seq.wrapping_mul(0x1_0000_0001) ^ generation.rotate_left(17) ^ row)
}

fn frame_batch(seq: u64, generation: u64) -> RecordBatch {
    let n = rows_of(seq);
    let seqs: ArrayRef = Arc::new(UInt64Array::from_value(seq, n));
    let gens: ArrayRef = Arc::new(UInt64Array::from_value(generation, n));
    let rows: ArrayRef = Arc::new(UInt32Array::from_iter_values(0..n as u32));
    let sums: ArrayRef = Arc::new(UInt64Array::from_iter_values(
        (0..n as u64).map(|r| checksum(seq, generation, r)),
    ));
    RecordBatch::try_from_iter([("seq", seqs), ("gen", gens), ("row", rows), ("sum", sums)])
        .expect("four columns of one length")
}

/// Where a reader has got to: frames must never go back in generation or sequence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Position {
    generation: u64,
    seq: u64,
}

/// Check that `f` is one whole frame as written and not older than `last`; returns its position.
fn verify(f: &Frame, last: Position) -> Result<Position, String> {
    let seq = f.seq();
    if f.batches().len() != 1 {
        return Err(format!(
            "frame {seq}: {} batches, wrote 1",
            f.batches().len()
        ));
    }
    let b = &f.batches()[0];
    let col = |i: usize| b.column(i).as_any().downcast_ref::<UInt64Array>();
    let (Some(seqs), Some(gens), Some(sums)) = (col(0), col(1), col(3)) else {
        return Err(format!("frame {seq}: column types changed"));
    };
    let Some(rows) = b.column(2).as_any().downcast_ref::<UInt32Array>() else {
        return Err(format!("frame {seq}: column types changed"));
    };
    if b.num_rows() != rows_of(seq) || f.num_rows() != b.num_rows() {
        return Err(format!(
            "torn frame {seq}: {} rows (descriptor {}), wrote {}",
            b.num_rows(),
            f.num_rows(),
            rows_of(seq)
        ));
    }
    let generation = gens.value(0);
    for i in 0..b.num_rows() {
        let ok = seqs.value(i) == seq
            && gens.value(i) == generation
            && rows.value(i) as usize == i
            && sums.value(i) == checksum(seq, generation, i as u64);
        if !ok {
            return Err(format!(
                "torn frame {seq} (generation {generation}) at row {i}: seq {} gen {} row {} sum {:#x}",
                seqs.value(i),
                gens.value(i),
                rows.value(i),
                sums.value(i)
            ));
        }
    }
    let pos = Position { generation, seq };
    if generation < last.generation || seq < last.seq {
        return Err(format!("went backwards: read {pos:?} after {last:?}"));
    }
    Ok(pos)
}

// ---------------------------------------------------------------------------------------------------------------
// Child roles.

fn role() -> Option<(String, String)> {
    Some((std::env::var(ROLE).ok()?, std::env::var(NAME).ok()?))
}

/// Report a failure to the parent and exit with a code the parent never mistakes for a kill.
fn fail(msg: impl std::fmt::Display) -> ! {
    println!("{MARK}FAIL {msg}");
    std::process::exit(3);
}

/// Set once the parent closes our stdin (its request for a clean shutdown, or its death).
fn stop_on_stdin_eof() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    std::thread::spawn(move || {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        s.store(true, Ordering::Release);
    });
    stop
}

/// Child roles live inside this test so that `--exact` selects them; without the role variable it does nothing.
#[test]
fn soak_child_roles() {
    let Some((role, name)) = role() else { return };
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag of this process; if the parent test dies we die too.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let seed: u64 = std::env::var(SEED)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let stop = stop_on_stdin_eof();
    match role.as_str() {
        "writer" => run_writer(&name, Rng(seed), &stop),
        "reader" => run_reader(&name, Rng(seed), &stop),
        other => fail(format!("unknown role {other}")),
    }
    std::process::exit(0);
}

fn run_writer(name: &str, mut rng: Rng, stop: &AtomicBool) {
    let start = Instant::now();
    let mut w = loop {
        match SnapshotWriter::builder(name)
            .size(4 << 20)
            .slots(SLOTS)
            .lease_timeout(LEASE_TIMEOUT)
            .create()
        {
            Ok(w) => break w,
            // The parent reaps a killed writer before starting the next, so a live-looking old writer is a bug;
            // retry briefly in case a process table lookup lags, then say so.
            Err(Error::WriterAlive { .. }) if start.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => fail(format!("writer could not create or take over: {e}")),
        }
    };
    let generation = w.generation();
    println!("{MARK}WRITING gen={generation} next_seq={}", w.next_seq());
    while !stop.load(Ordering::Acquire) {
        let seq = w.next_seq();
        match w.write(&frame_batch(seq, generation)) {
            Ok(info) if info.seq == seq => {}
            Ok(info) => fail(format!("wrote seq {} where next_seq said {seq}", info.seq)),
            // Live readers hold leases for milliseconds only: a lease timeout means dead leases were not reclaimed.
            Err(e) => fail(format!("writer gen {generation} seq {seq}: {e}")),
        }
        if rng.chance(10) {
            std::thread::sleep(rng.millis(0, 2));
        }
    }
    if let Err(e) = w.close() {
        fail(format!("clean close: {e}"));
    }
    println!("{MARK}CLOSED");
}

fn run_reader(name: &str, mut rng: Rng, stop: &AtomicBool) {
    let r = match SnapshotReader::builder(name)
        .open_timeout(Duration::from_secs(5))
        .open()
    {
        Ok(r) => r,
        Err(e) => fail(format!("reader open: {e}")),
    };
    println!("{MARK}OPEN");
    let mut last = Position::default();
    let mut verified = 0u64;
    let mut reported = 0u64;
    let wait = Some(Duration::from_millis(250));
    while !stop.load(Ordering::Acquire) {
        // Frames held at once by this reader (each holds a lease on its slot until dropped).
        let mut held: Vec<Frame> = Vec::new();
        let (want, hold_for) = match rng.below(10) {
            0..=3 => (1, Duration::ZERO),
            4..=6 => (1, rng.millis(0, 20)),
            _ => (1 + rng.below(3) as usize, rng.millis(0, 30)),
        };
        let mut gone = false;
        while held.len() < want {
            let got = if rng.chance(20) {
                r.try_read().map(|f| f.filter(|f| f.seq() > last.seq))
            } else {
                r.read_next(wait).map(Some)
            };
            match got {
                Ok(Some(f)) => match verify(&f, last) {
                    Ok(pos) => {
                        last = pos;
                        verified += 1;
                        held.push(f);
                    }
                    Err(e) => fail(format!("reader: {e}")),
                },
                Ok(None) => break,
                // The writer was killed (or is being replaced), or holds back because every slot is leased. (No
                // writer closes before the readers are gone, so WriterClosed is a failure like any other error.)
                Err(Error::WriterDied { .. } | Error::Timeout { .. }) => {
                    gone = true;
                    break;
                }
                Err(e) => fail(format!("reader: {e}")),
            }
        }
        if !held.is_empty() && !hold_for.is_zero() {
            std::thread::sleep(hold_for);
        }
        drop(held);
        if gone {
            std::thread::sleep(Duration::from_millis(2));
        }
        if verified >= reported + 16 {
            reported = verified;
            println!("{MARK}V {verified}");
        }
    }
    println!("{MARK}DONE {verified}");
}

// ---------------------------------------------------------------------------------------------------------------
// The parent: children, their output, the watchdog.

/// Set when the watchdog fired (so a child it killed is not reported as having died on its own).
static WATCHDOG_FIRED: AtomicBool = AtomicBool::new(false);

/// Pids of children not yet reaped, for the watchdog.
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, Vec<u32>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a child said so far (only lines starting with [`MARK`]).
#[derive(Default)]
struct Log {
    recent: VecDeque<String>,
    verified: u64,
    open: bool,
    writing: Option<(u64, u64)>,
    done: Option<u64>,
    closed: bool,
    fail: Option<String>,
    eof: bool,
}

type SharedLog = Arc<(Mutex<Log>, Condvar)>;

struct Kid {
    role: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    log: SharedLog,
    reaped: bool,
}

impl Kid {
    fn spawn(role: &'static str, name: &str, seed: u64) -> Kid {
        let mut child = Command::new(std::env::current_exe().expect("test binary path"))
            .args([
                "--exact",
                "soak_child_roles",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE, role)
            .env(NAME, name)
            .env(SEED, seed.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn a child");
        live().push(child.id());
        let stdin = child.stdin.take();
        let out = BufReader::new(child.stdout.take().expect("piped stdout"));
        let log: SharedLog = Arc::default();
        let l2 = Arc::clone(&log);
        std::thread::spawn(move || drain(out, &l2));
        Kid {
            role,
            child,
            stdin,
            log,
            reaped: false,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn describe(&self) -> String {
        let l = self.log.0.lock().unwrap_or_else(|p| p.into_inner());
        format!(
            "{} pid {}: last lines {:?}",
            self.role,
            self.pid(),
            l.recent
        )
    }

    /// Wait until `pred` holds on the child's log; panics (the test fails) if the child reports a failure, closes
    /// its output first, or says nothing for [`LINE_TIMEOUT`].
    fn wait_for<T>(&self, what: &str, mut pred: impl FnMut(&Log) -> Option<T>) -> T {
        let deadline = Instant::now() + LINE_TIMEOUT;
        let (m, cv) = &*self.log;
        let mut l = m.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(f) = &l.fail {
                panic!("{} pid {} failed: {f}", self.role, self.pid());
            }
            if let Some(v) = pred(&l) {
                return v;
            }
            let now = Instant::now();
            if l.eof || now >= deadline {
                let recent = l.recent.clone();
                drop(l);
                panic!(
                    "{} pid {} never reported {what} (output closed: {}); last lines {recent:?}",
                    self.role,
                    self.pid(),
                    now < deadline
                );
            }
            l = cv
                .wait_timeout(l, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn check_not_failed(&mut self) {
        if let Some(f) = &self.log.0.lock().unwrap_or_else(|p| p.into_inner()).fail {
            panic!("{} pid {} failed: {f}", self.role, self.child.id());
        }
        if let Ok(Some(status)) = self.child.try_wait() {
            self.reaped = true;
            live().retain(|&p| p != self.child.id());
            let why = if WATCHDOG_FIRED.load(Ordering::Acquire) {
                "was killed by the watchdog: a cycle hung"
            } else {
                "exited on its own"
            };
            panic!("{} {why} ({status}); {}", self.role, self.describe());
        }
    }

    fn reap(&mut self) -> ExitStatus {
        let status = self.child.wait().expect("wait for a child");
        self.reaped = true;
        live().retain(|&p| p != self.child.id());
        status
    }

    /// Send `sig` and reap; the child must have died of it (not exited on its own before).
    fn signal(&mut self, sig: i32) {
        self.check_not_failed();
        // SAFETY: kill(2) on our own unreaped child: the pid cannot have been recycled.
        let rc = unsafe { libc::kill(self.pid() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.pid());
        let status = self.reap();
        if status.signal() != Some(sig) {
            panic!(
                "{} was sent signal {sig} but ended with {status}; {}",
                self.role,
                self.describe()
            );
        }
    }

    /// Ask for a clean shutdown (close stdin) and require exit status 0.
    fn shut_down(&mut self) {
        self.stdin.take();
        let status = self.reap();
        if !status.success() {
            panic!(
                "{} did not shut down cleanly: {status}; {}",
                self.role,
                self.describe()
            );
        }
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.reap();
        }
    }
}

fn drain(out: BufReader<std::process::ChildStdout>, log: &SharedLog) {
    let (m, cv) = &**log;
    for line in out.lines() {
        let Ok(line) = line else { break };
        let Some(at) = line.find(MARK) else { continue };
        let msg = line[at + MARK.len()..].trim().to_owned();
        let mut l = m.lock().unwrap_or_else(|p| p.into_inner());
        let mut words = msg.split_whitespace();
        match words.next() {
            Some("V") => l.verified = words.next().and_then(|n| n.parse().ok()).unwrap_or(0),
            Some("OPEN") => l.open = true,
            Some("CLOSED") => l.closed = true,
            Some("DONE") => {
                let n = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                l.verified = n;
                l.done = Some(n);
            }
            Some("WRITING") => {
                let field = |w: Option<&str>, key: &str| {
                    w.and_then(|w| w.strip_prefix(key))
                        .and_then(|v| v.parse::<u64>().ok())
                };
                let g = field(words.next(), "gen=");
                let s = field(words.next(), "next_seq=");
                if let (Some(g), Some(s)) = (g, s) {
                    l.writing = Some((g, s));
                }
            }
            Some("FAIL") => l.fail = Some(msg.clone()),
            _ => {}
        }
        if l.recent.len() >= 8 {
            l.recent.pop_front();
        }
        l.recent.push_back(msg);
        cv.notify_all();
    }
    m.lock().unwrap_or_else(|p| p.into_inner()).eof = true;
    cv.notify_all();
}

/// Fails the test instead of letting it hang: if a cycle overruns [`cycle_watchdog`], every child is killed (which
/// unblocks the parent with an error), and if the parent is still stuck 10 s later the test binary exits.
struct Watchdog {
    started: Instant,
    /// Milliseconds since `started` at which the current phase must be over; 0 = disarmed.
    deadline_ms: Arc<AtomicU64>,
    finished: Arc<AtomicBool>,
}

impl Watchdog {
    fn start() -> Watchdog {
        let started = Instant::now();
        let deadline_ms = Arc::new(AtomicU64::new(0));
        let finished = Arc::new(AtomicBool::new(false));
        let (d, f) = (Arc::clone(&deadline_ms), Arc::clone(&finished));
        let limit = cycle_watchdog();
        std::thread::spawn(move || {
            while !f.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(100));
                let due = d.load(Ordering::Acquire);
                if due == 0 || (started.elapsed().as_millis() as u64) < due {
                    continue;
                }
                WATCHDOG_FIRED.store(true, Ordering::Release);
                eprintln!(
                    "R15 soak watchdog: a cycle took longer than {limit:?}; killing every child"
                );
                for &pid in live().iter() {
                    // SAFETY: kill(2) on a child pid this test spawned and has not reaped.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                }
                std::thread::sleep(Duration::from_secs(10));
                if !f.load(Ordering::Acquire) {
                    eprintln!(
                        "R15 soak watchdog: the parent is still stuck; failing the test binary"
                    );
                    std::process::exit(101);
                }
            }
        });
        Watchdog {
            started,
            deadline_ms,
            finished,
        }
    }

    fn arm(&self) {
        let due = self.started.elapsed() + cycle_watchdog();
        self.deadline_ms
            .store(due.as_millis() as u64, Ordering::Release);
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.finished.store(true, Ordering::Release);
    }
}

struct Unlink(String);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/dev/shm/{}", self.0));
    }
}

/// A killed reader's entry in the reader table, followed until someone reclaims it.
struct DeadEntry {
    index: usize,
    owner: ProcessIdentity,
    leases: u64,
}

#[derive(Default, Debug)]
struct Tally {
    cycles: u64,
    writer_kill: u64,
    writer_term: u64,
    reader_kill: u64,
    reader_term: u64,
    takeovers: u64,
    parent_verified: u64,
    /// Killed readers whose entry was already gone when the parent looked (reclaimed at once).
    entries_gone_at_once: u64,
    dead_entries: u64,
    dead_leases: u64,
    reclaimed_entries: u64,
    reclaimed_leases: u64,
    /// Processes struck while starting (before their first line).
    startup_kills: u64,
    /// Frames verified by readers that were killed (their last progress report).
    verified_by_dead: u64,
}

impl Tally {
    fn count_writer(&mut self, sig: i32) {
        if sig == libc::SIGKILL {
            self.writer_kill += 1;
        } else {
            self.writer_term += 1;
        }
    }
}

fn pick_signal(rng: &mut Rng) -> i32 {
    if rng.chance(50) {
        libc::SIGKILL
    } else {
        libc::SIGTERM
    }
}

/// Strike a reader with `sig`, reap it, and start following its reader-table entry if it left one.
fn kill_reader(
    mut kid: Kid,
    sig: i32,
    table: &LeaseTable<'_>,
    dead: &mut Vec<DeadEntry>,
    tally: &mut Tally,
) {
    let pid = kid.pid();
    kid.signal(sig);
    if sig == libc::SIGKILL {
        tally.reader_kill += 1;
    } else {
        tally.reader_term += 1;
    }
    tally.verified_by_dead += kid.log.0.lock().unwrap_or_else(|p| p.into_inner()).verified;
    let found = table.entries().iter().enumerate().find_map(|(index, e)| {
        let owner = e.identity().filter(|id| id.pid == pid)?;
        let leases = (0..SLOTS).map(|s| u64::from(e.lease_count(s))).sum();
        Some(DeadEntry {
            index,
            owner,
            leases,
        })
    });
    match found {
        Some(d) => {
            tally.dead_entries += 1;
            tally.dead_leases += d.leases;
            dead.push(d);
        }
        None => tally.entries_gone_at_once += 1,
    }
}

/// Read (verifying each frame) until `done` says so; the watchdog bounds how long.
fn read_until(
    r: &SnapshotReader,
    writer: &mut Kid,
    last: &mut Position,
    tally: &mut Tally,
    mut done: impl FnMut(Position) -> bool,
) {
    loop {
        match r.read_next(Some(Duration::from_secs(2))) {
            Ok(f) => {
                *last = verify(&f, *last).unwrap_or_else(|e| panic!("parent reader: {e}"));
                tally.parent_verified += 1;
                if done(*last) {
                    return;
                }
            }
            // Between a kill and the takeover, or while a live reader holds every free slot.
            // A writer that failed (say, timed out on leases) ends the test with its own message.
            Err(Error::WriterDied { .. } | Error::Timeout { .. }) => {
                writer.check_not_failed();
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("parent reader: {e}"),
        }
    }
}

/// Drop the dead readers' entries someone has reclaimed since the last look (the writer when stuck on their leases
/// or at takeover, a registering reader when the table was full), counting them.
fn follow_dead(table: &LeaseTable<'_>, dead: &mut Vec<DeadEntry>, tally: &mut Tally) {
    dead.retain(|d| {
        if table.entries()[d.index].identity() == Some(d.owner) {
            return true;
        }
        tally.reclaimed_entries += 1;
        tally.reclaimed_leases += d.leases;
        false
    });
}

fn env_u64(key: &str) -> Option<u64> {
    std::env::var(key).ok().and_then(|v| v.trim().parse().ok())
}

#[test]
fn readers_never_see_a_torn_frame_and_nothing_leaks_across_random_kills_of_writers_and_readers() {
    if role().is_some() {
        return;
    }
    let soak = std::env::var_os("QADATASWAP_SOAK").is_some();
    let cycles = env_u64("QADATASWAP_SOAK_CYCLES").unwrap_or(if soak { 3000 } else { 30 });
    let seed = env_u64("QADATASWAP_SOAK_SEED").unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        mix(t ^ u64::from(std::process::id()))
    });
    println!("R15 soak: seed {seed} ({cycles} cycles); replay with QADATASWAP_SOAK_SEED={seed}");
    let mut rng = Rng(seed);
    let prefix = format!("qads-soak-{}-", std::process::id());
    let name = format!("{prefix}seg");
    let _unlink = Unlink(name.clone());
    let watchdog = Watchdog::start();
    let t0 = Instant::now();
    let mut tally = Tally::default();

    watchdog.arm();
    let mut writer = Kid::spawn("writer", &name, rng.next());
    let (mut generation, _) = writer.wait_for("WRITING", |l| l.writing);
    let parent = SnapshotReader::open(&name).expect("parent attaches");
    let mut last = Position::default();
    read_until(&parent, &mut writer, &mut last, &mut tally, |_| true);
    let mut readers: Vec<Kid> = (0..READERS)
        .map(|_| Kid::spawn("reader", &name, rng.next()))
        .collect();
    for r in &readers {
        r.wait_for("OPEN", |l| l.open.then_some(()));
    }
    let mut dead: Vec<DeadEntry> = Vec::new();
    let table = parent.attachment().shared().lease_table();

    for _ in 0..cycles {
        watchdog.arm();
        tally.cycles += 1;
        // Let everyone run for a random while, then strike at whatever they are doing.
        std::thread::sleep(rng.millis(1, 60));
        writer.check_not_failed();
        for r in &mut readers {
            r.check_not_failed();
        }
        let sig = pick_signal(&mut rng);
        if rng.chance(40) {
            writer.signal(sig);
            tally.count_writer(sig);
            writer = Kid::spawn("writer", &name, rng.next());
            // Sometimes the replacement is struck too, at a random moment of its start or takeover.
            let mut struck = 0;
            while rng.chance(15) {
                std::thread::sleep(rng.millis(0, 40));
                let sig = pick_signal(&mut rng);
                writer.signal(sig);
                tally.count_writer(sig);
                tally.startup_kills += 1;
                struck += 1;
                writer = Kid::spawn("writer", &name, rng.next());
            }
            let (g, next_seq) = writer.wait_for("WRITING", |l| l.writing);
            // Each takeover bumps the generation by one: one more than the last writer that wrote, plus one for
            // each struck replacement that got as far as its takeover.
            assert!(
                g > generation && g <= generation + 1 + struck,
                "generation {g} after {generation} with {struck} struck replacements"
            );
            assert!(
                next_seq > last.seq,
                "the new writer continues after the last frame we saw ({next_seq} <= {})",
                last.seq
            );
            generation = g;
            tally.takeovers += 1;
            // Frames continue from the new writer.
            read_until(&parent, &mut writer, &mut last, &mut tally, |p| {
                p.generation == g
            });
        } else {
            let n = 1 + rng.below(READERS as u64) as usize;
            for _ in 0..n {
                let i = rng.below(readers.len() as u64) as usize;
                let kid = readers.swap_remove(i);
                kill_reader(kid, sig, &table, &mut dead, &mut tally);
            }
            while readers.len() < READERS {
                let kid = Kid::spawn("reader", &name, rng.next());
                if rng.chance(15) {
                    // Struck while starting: before, during or after registering in the reader table.
                    std::thread::sleep(rng.millis(0, 40));
                    tally.startup_kills += 1;
                    kill_reader(kid, pick_signal(&mut rng), &table, &mut dead, &mut tally);
                    continue;
                }
                readers.push(kid);
            }
            for r in &readers {
                r.wait_for("OPEN", |l| l.open.then_some(()));
            }
            // The writer goes on past the dead readers' leases: a full turn of the ring and more.
            let from = last.seq;
            read_until(&parent, &mut writer, &mut last, &mut tally, |p| {
                p.seq >= from + 2 * SLOTS as u64
            });
        }
        // Follow the dead readers' entries: reclaimed by the writer (stuck on their leases, or at takeover) or by
        // a registering reader when the table was full.
        follow_dead(&table, &mut dead, &mut tally);
        let segments = qadataswap_shm::list(&prefix).expect("list /dev/shm");
        assert_eq!(
            segments.len(),
            1,
            "exactly one segment while running: {segments:?}"
        );
    }

    // Clean shutdown: readers first (they must exit 0 and report), then the writer (its close unlinks the name);
    // then, with nobody else touching it, the reader table through the parent's mapping.
    watchdog.arm();
    let mut verified_by_readers = tally.verified_by_dead;
    for r in &mut readers {
        r.shut_down();
        verified_by_readers += r.wait_for("DONE", |l| l.done);
    }
    writer.shut_down();
    writer.wait_for("CLOSED", |l| l.closed.then_some(()));
    follow_dead(&table, &mut dead, &mut tally);
    let mut dead_left: Vec<_> = table
        .registered_entries()
        .filter_map(|(_, e)| e.identity().filter(|id| !id.is_alive()))
        .collect();
    let mut tracked: Vec<_> = dead.iter().map(|d| d.owner).collect();
    tracked.sort_by_key(|id| id.pid);
    dead_left.sort_by_key(|id| id.pid);
    assert_eq!(
        dead_left, tracked,
        "every dead entry left is one of the killed readers"
    );
    let mut gc = table.reclaim_dead();
    gc.sort_by_key(|id| id.pid);
    assert_eq!(gc, tracked, "a reclaim frees every dead reader's entry");
    let me = ProcessIdentity::current();
    let registered: Vec<_> = table
        .registered_entries()
        .map(|(_, e)| e.identity())
        .collect();
    assert_eq!(
        registered,
        vec![Some(me)],
        "only the parent is left in the reader table"
    );
    for slot in 0..SLOTS {
        assert_eq!(
            table.holders(slot),
            Vec::new(),
            "no lease is left on slot {slot}"
        );
    }
    drop(parent);
    let segments = qadataswap_shm::list(&prefix).expect("list /dev/shm");
    assert!(
        segments.is_empty(),
        "no segment is left after a clean shutdown: {segments:?}"
    );
    drop(watchdog);
    println!(
        "R15 soak summary: seed={seed} cycles={} writer_kills={} (KILL {} / TERM {}) reader_kills={} (KILL {} / TERM \
         {}) frames_verified={} (readers >= {verified_by_readers}, parent {}) takeovers={} startup_kills={} \
         dead_reader_entries={} holding {} leases (+{} readers without an entry by then: struck before registering \
         or reclaimed at once); reclaimed by the library: {} entries, {} leases; by the final reclaim: {} entries; \
         elapsed {:.1?}",
        tally.cycles,
        tally.writer_kill + tally.writer_term,
        tally.writer_kill,
        tally.writer_term,
        tally.reader_kill + tally.reader_term,
        tally.reader_kill,
        tally.reader_term,
        verified_by_readers + tally.parent_verified,
        tally.parent_verified,
        tally.takeovers,
        tally.startup_kills,
        tally.dead_entries,
        tally.dead_leases,
        tally.entries_gone_at_once,
        tally.reclaimed_entries,
        tally.reclaimed_leases,
        gc.len(),
        t0.elapsed()
    );
}
