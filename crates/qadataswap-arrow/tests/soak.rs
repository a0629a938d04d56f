//! Reliability R15 and R17, the restart soak: random SIGKILL / SIGTERM of the writer and of readers at random
//! moments, with real processes, then restart of whatever was struck; in some cycles two or three writers created
//! at once for the same name.
//!
//! SIGKILL and SIGTERM differ: every child installs a SIGTERM handler (`sigaction`; it only sets an atomic flag)
//! and then closes cleanly. The soak writer is not persistent (the default), so:
//! - a writer killed with SIGKILL leaves its segment: the next writer takes it over (generation + 1, sequence
//!   numbers continue) and readers stay attached (they see `WriterDied` meanwhile);
//! - a writer struck with SIGTERM closes: the name is unlinked, readers (Rust, Python and the parent) get
//!   `WriterClosed` and reopen the name, and the next writer creates a new segment (generation 1, sequence 1).
//!   That exercises more than a persistent writer would: unlink-on-close under attached readers, readers
//!   reattaching, and, in concurrent cycles, the private-build + no-replace-publish race of fresh creators beside
//!   the role-word takeover race after a SIGKILL;
//! - a reader struck with SIGTERM drops its frames and closes, so its reader-table entry is gone at once, while a
//!   SIGKILLed reader's entry and leases stay until the library reclaims them.
//!
//! A SIGTERM that arrives before the handler is installed (the process is still starting) kills; the parent
//! accepts that only from a child that had not yet said `ARMED`.
//!
//! Concurrent creators: the old writer is struck first, or only while 2-3 new writers are already starting. While
//! the old writer lives they are refused with `WriterAlive` naming it and retry; then exactly one must become the
//! writer and every other one must be refused with `WriterAlive` naming the winner's pid. The generation goes up
//! by exactly one (a takeover) or starts at 1 (after a clean close); losers bump nothing.
//!
//! Passes when no reader (Rust, Python or the parent, each checking every frame it reads, row by row) ever sees a
//! torn frame or a frame older than one it already saw on the same segment, the writer is never wedged by a dead
//! reader's leases, generations go up by the takeovers only, no cycle hangs (a watchdog kills every child and fails
//! the test), the reader table holds no dead entry after a reclaim, every leftover a killed creator left under
//! `/dev/shm/.qads-new.*` is swept by the next creator, and no segment is left in `/dev/shm` after the clean
//! shutdown.
//!
//! Python readers (tests/python/soak_reader.py) run beside the Rust ones when the `.venv` interpreter can import
//! the `qadataswap` package and read this build's segments; otherwise the soak says loudly that it runs without
//! them (`cargo xtask test` runs `cargo test` before it builds the Python package, so a clean clone has none yet).
//! The summary line counts the cycles with a Python reader.
//!
//! 30 cycles by default; `cargo xtask test --soak` (`QADATASWAP_SOAK=1`) runs 3,000. `QADATASWAP_SOAK_SEED=<n>`
//! replays the parent's choices (which process, which signal, when) of an earlier run; `QADATASWAP_SOAK_CYCLES=<n>`
//! overrides the cycle count, `QADATASWAP_SOAK_WATCHDOG_SECS=<n>` the per-cycle watchdog (60 s). The same seed
//! replays the choices, not the timing of the processes, so a failure may need a few replays. Rust children are
//! this test binary re-executed with `QADS_SOAK_ROLE` naming their role.

use std::collections::{HashSet, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use arrow_array::{Array, ArrayRef, RecordBatch, UInt32Array, UInt64Array};
use qadataswap_arrow::status::{classify, SegmentStatus};
use qadataswap_arrow::{Error, Frame, SnapshotReader, SnapshotWriter};
use qadataswap_shm::{ShmError, PRIVATE_PREFIX};
use qadataswap_sync::lease::LeaseTable;
use qadataswap_sync::process::ProcessIdentity;

const ROLE: &str = "QADS_SOAK_ROLE";
const NAME: &str = "QADS_SOAK_NAME";
const SEED: &str = "QADS_SOAK_CHILD_SEED";
/// The pid of the writer a new writer replaces: while `WriterAlive` names it, the new writer retries.
const OLD: &str = "QADS_SOAK_OLD_WRITER";
/// Every child line the parent looks at starts with this (libtest's own output is ignored).
const MARK: &str = "@@ ";

/// Ring slots: few, so that readers holding frames (up to 3 each) really block the writer at times and a dead
/// reader's leases must be reclaimed for the writer to go on.
const SLOTS: usize = 4;
const READERS: usize = 3;
/// Python readers beside the Rust ones (when the package is importable).
const PY_READERS: usize = 1;
const MAX_ROWS: u64 = 20_000;
const SIZE: usize = 4 << 20;
const LEASE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one cycle (kill, reap, restart, progress check) may take before the watchdog fails the test
/// (`QADATASWAP_SOAK_WATCHDOG_SECS` overrides it).
fn cycle_watchdog() -> Duration {
    Duration::from_secs(env_u64("QADATASWAP_SOAK_WATCHDOG_SECS").unwrap_or(60))
}
/// How long the parent waits for one expected line from a child.
const LINE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a reader waits for the name to reappear after a clean close, and a new writer for the writer it
/// replaces to go (tests/python/soak_reader.py has the same).
const REOPEN_TIMEOUT: Duration = Duration::from_secs(20);

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

/// Set by the SIGTERM handler.
static TERM: AtomicBool = AtomicBool::new(false);
/// Set once the parent closes our stdin (its request for a clean shutdown, or its death).
static STDIN_CLOSED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigterm(_signal: libc::c_int) {
    // A lock-free atomic store is async-signal-safe; everything else happens in the main loop.
    TERM.store(true, Ordering::Release);
}

/// Make SIGTERM a request to close cleanly. Without `SA_RESTART`, as in programs that stop on a flag: a blocking
/// call interrupted by the signal sees `EINTR`, which the library must ride out.
fn install_sigterm_handler() {
    // SAFETY: `sigaction` is given a zeroed (valid) struct with an empty mask and a handler that only performs an
    // atomic store, which is async-signal-safe; the old action is not asked for.
    let rc = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigterm as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = 0;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut())
    };
    if rc != 0 {
        fail(format!(
            "sigaction(SIGTERM): {}",
            std::io::Error::last_os_error()
        ));
    }
}

fn stopping() -> bool {
    TERM.load(Ordering::Acquire) || STDIN_CLOSED.load(Ordering::Acquire)
}

fn watch_stdin() {
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        STDIN_CLOSED.store(true, Ordering::Release);
    });
}

/// Child roles live inside this test so that `--exact` selects them; without the role variable it does nothing.
#[test]
fn soak_child_roles() {
    let Some((role, name)) = role() else { return };
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag of this process; if the parent test dies we die too.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    install_sigterm_handler();
    // From here on a SIGTERM means "close cleanly"; the parent holds us to it.
    println!("{MARK}ARMED");
    let seed: u64 = std::env::var(SEED)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    watch_stdin();
    match role.as_str() {
        "writer" => run_writer(&name, Rng(seed), env_u64(OLD).unwrap_or(0) as u32),
        "reader" => run_reader(&name, Rng(seed)),
        other => fail(format!("unknown role {other}")),
    }
    std::process::exit(0);
}

/// Create or take over `name`. While a live writer is named `old` (the one this writer replaces, possibly not yet
/// struck), retry; refused by any other live writer, report `LOST winner=<pid>` (another of several concurrent
/// creators won) and end.
fn run_writer(name: &str, mut rng: Rng, old: u32) {
    let deadline = Instant::now() + REOPEN_TIMEOUT;
    let mut w = loop {
        match SnapshotWriter::builder(name)
            .size(SIZE)
            .slots(SLOTS)
            .lease_timeout(LEASE_TIMEOUT)
            .create()
        {
            Ok(w) => break w,
            Err(Error::WriterAlive { pid, .. }) if pid == old && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(Error::WriterAlive { pid, .. }) if pid != old => {
                println!("{MARK}LOST winner={pid}");
                return;
            }
            Err(e) => fail(format!("writer could not create or take over: {e}")),
        }
    };
    let generation = w.generation();
    // Printed even when a SIGTERM came during the create: the parent learns the generation of every writer.
    println!("{MARK}WRITING gen={generation} next_seq={}", w.next_seq());
    while !stopping() {
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
    // Not persistent: this unlinks the name (it still names our segment: nobody can take over a live writer's).
    if let Err(e) = w.close() {
        fail(format!("clean close: {e}"));
    }
    println!("{MARK}CLOSED");
}

/// Attach to `name`, waiting while it does not exist (between a clean close, which unlinks it, and the next
/// writer's create). `None` if asked to stop meanwhile.
fn open_reader(name: &str) -> Option<SnapshotReader> {
    let deadline = Instant::now() + REOPEN_TIMEOUT;
    loop {
        match SnapshotReader::builder(name)
            .open_timeout(Duration::from_secs(5))
            .open()
        {
            Ok(r) => return Some(r),
            Err(Error::Shm(ShmError::NotFound { .. })) if Instant::now() < deadline => {
                if stopping() {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => fail(format!("reader open: {e}")),
        }
    }
}

fn run_reader(name: &str, mut rng: Rng) {
    let Some(mut r) = open_reader(name) else {
        println!("{MARK}DONE 0");
        return;
    };
    println!("{MARK}OPEN");
    let mut last = Position::default();
    let mut verified = 0u64;
    let mut reported = 0u64;
    let wait = Some(Duration::from_millis(250));
    while !stopping() {
        // Frames held at once by this reader (each holds a lease on its slot until dropped).
        let mut held: Vec<Frame> = Vec::new();
        let (want, hold_for) = match rng.below(10) {
            0..=3 => (1, Duration::ZERO),
            4..=6 => (1, rng.millis(0, 20)),
            _ => (1 + rng.below(3) as usize, rng.millis(0, 30)),
        };
        let mut gone = false;
        let mut closed = false;
        while held.len() < want {
            let newest = rng.chance(20);
            let got = if newest {
                r.try_read()
            } else {
                r.read_next(wait).map(Some)
            };
            match got {
                // Every frame read is checked, also the newest one again when nothing newer came.
                Ok(Some(f)) => match verify(&f, last) {
                    Ok(pos) => {
                        verified += 1;
                        if pos.seq <= last.seq {
                            break;
                        }
                        last = pos;
                        held.push(f);
                    }
                    Err(e) => fail(format!("reader: {e}")),
                },
                Ok(None) => break,
                // The writer was killed (or is being replaced), or holds back because every slot is leased.
                Err(Error::WriterDied { .. } | Error::Timeout { .. }) => {
                    gone = true;
                    break;
                }
                // A clean close (SIGTERM): the name is gone; the next writer creates a new segment.
                Err(Error::WriterClosed { .. }) => {
                    closed = true;
                    break;
                }
                Err(e) => fail(format!("reader: {e}")),
            }
        }
        if !held.is_empty() && !hold_for.is_zero() {
            std::thread::sleep(hold_for);
        }
        drop(held);
        if closed {
            drop(r);
            r = match open_reader(name) {
                Some(r) => r,
                None => {
                    println!("{MARK}DONE {verified}");
                    return;
                }
            };
            last = Position::default();
            println!("{MARK}REOPEN");
        } else if gone {
            std::thread::sleep(Duration::from_millis(2));
        }
        if verified >= reported + 16 {
            reported = verified;
            println!("{MARK}V {verified}");
        }
    }
    // Dropping the reader (after its frames) gives its reader-table entry back.
    drop(r);
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
    /// It installed its SIGTERM handler: a SIGTERM from now on must end in a clean close.
    armed: bool,
    verified: u64,
    open: bool,
    reopens: u64,
    writing: Option<(u64, u64)>,
    lost: Option<u32>,
    done: Option<u64>,
    closed: bool,
    probe: Option<String>,
    fail: Option<String>,
    eof: bool,
}

type SharedLog = Arc<(Mutex<Log>, Condvar)>;

/// How a struck child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Struck {
    /// Died of the signal: SIGKILL, or a SIGTERM that came before its handler was installed.
    Killed,
    /// Handled SIGTERM: closed cleanly (writer: `CLOSED`; reader: `DONE`) and exited 0.
    Closed,
}

struct Kid {
    role: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    log: SharedLog,
    reaped: bool,
}

impl Kid {
    /// This test binary in `role` (writer or reader).
    fn spawn(role: &'static str, name: &str, seed: u64, old_writer: u32) -> Kid {
        let mut cmd = Command::new(std::env::current_exe().expect("test binary path"));
        cmd.args([
            "--exact",
            "soak_child_roles",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env(OLD, old_writer.to_string());
        Kid::start(role, cmd, name, seed)
    }

    /// tests/python/soak_reader.py under `python` (`args`: `--probe` for the probe).
    fn spawn_python(
        role: &'static str,
        python: &Path,
        name: &str,
        seed: u64,
        args: &[&str],
    ) -> Kid {
        let mut cmd = Command::new(python);
        cmd.arg("-u").arg(py_script()).args(args);
        Kid::start(role, cmd, name, seed)
    }

    fn start(role: &'static str, mut cmd: Command, name: &str, seed: u64) -> Kid {
        let mut child = cmd
            .env(NAME, name)
            .env(SEED, seed.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn a {role}: {e}"));
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

    fn is_python(&self) -> bool {
        self.role.starts_with("py")
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn describe(&self) -> String {
        format!(
            "{} pid {}: last lines {:?}",
            self.role,
            self.pid(),
            self.log().recent
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

    /// After the child is reaped: wait until its whole output has been read, so that its log is complete.
    fn wait_eof(&self) {
        let deadline = Instant::now() + LINE_TIMEOUT;
        let (m, cv) = &*self.log;
        let mut l = m.lock().unwrap_or_else(|p| p.into_inner());
        while !l.eof {
            let now = Instant::now();
            assert!(
                now < deadline,
                "{} pid {}: output still open {LINE_TIMEOUT:?} after it was reaped",
                self.role,
                self.pid()
            );
            l = cv
                .wait_timeout(l, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn check_not_failed(&mut self) {
        if let Some(f) = &self.log().fail {
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

    /// Send `sig`, reap, and tell how the child ended: SIGKILL kills; SIGTERM must end in a clean close (exit 0
    /// with `CLOSED` or `DONE`) unless it came before the child said `ARMED`, when it may also kill.
    fn strike(&mut self, sig: i32) -> Struck {
        self.check_not_failed();
        // SAFETY: kill(2) on our own unreaped child: the pid cannot have been recycled.
        let rc = unsafe { libc::kill(self.pid() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.pid());
        let status = self.reap();
        self.wait_eof();
        let l = self.log();
        if let Some(f) = &l.fail {
            panic!("{} pid {} failed: {f}", self.role, self.pid());
        }
        let how = if status.signal() == Some(sig) {
            Struck::Killed
        } else if sig == libc::SIGTERM && status.success() {
            Struck::Closed
        } else {
            drop(l);
            panic!(
                "{} was sent signal {sig} but ended with {status}; {}",
                self.role,
                self.describe()
            );
        };
        let clean = if self.role == "writer" {
            l.closed && l.writing.is_some()
        } else {
            l.done.is_some()
        };
        let ok = match how {
            Struck::Killed => sig == libc::SIGKILL || !l.armed,
            Struck::Closed => l.armed && clean,
        };
        drop(l);
        assert!(
            ok,
            "{} struck with signal {sig} ended {how:?} ({status}), which its SIGTERM handler rules out; {}",
            self.role,
            self.describe()
        );
        how
    }

    /// Ask for a clean shutdown (close stdin) and require exit status 0.
    fn shut_down(&mut self) {
        self.stdin.take();
        let status = self.reap();
        self.wait_eof();
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
        let field = |w: Option<&str>, key: &str| {
            w.and_then(|w| w.strip_prefix(key))
                .and_then(|v| v.parse::<u64>().ok())
        };
        match words.next() {
            Some("ARMED") => l.armed = true,
            Some("V") => l.verified = words.next().and_then(|n| n.parse().ok()).unwrap_or(0),
            Some("OPEN") => l.open = true,
            Some("REOPEN") => l.reopens += 1,
            Some("CLOSED") => l.closed = true,
            Some("DONE") => {
                let n = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                l.verified = n;
                l.done = Some(n);
            }
            Some("WRITING") => {
                let g = field(words.next(), "gen=");
                let s = field(words.next(), "next_seq=");
                if let (Some(g), Some(s)) = (g, s) {
                    l.writing = Some((g, s));
                }
            }
            Some("LOST") => l.lost = field(words.next(), "winner=").map(|p| p as u32),
            Some("PROBE") => l.probe = Some(msg[5..].trim().to_owned()),
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
    /// Writers that handled SIGTERM: closed cleanly, unlinking the name.
    writer_closed: u64,
    reader_kill: u64,
    reader_term: u64,
    /// Readers that handled SIGTERM: closed cleanly, their entry gone at once.
    reader_closed: u64,
    /// Writer changes that took the same segment over (generation + 1).
    takeovers: u64,
    /// Writer changes that ended on a new segment (after a clean close unlinked the name).
    fresh_segments: u64,
    concurrent_cycles: u64,
    /// ... of which the old writer was struck only after the new ones had started.
    concurrent_with_old_alive: u64,
    contenders: u64,
    contenders_lost: u64,
    parent_verified: u64,
    parent_reattaches: u64,
    /// Readers (of all kinds) that reopened the name after a clean close.
    reader_reopens: u64,
    /// Killed readers without an entry in the parent's segment when it looked (reclaimed at once, struck before
    /// registering, or attached to a segment the name no longer refers to).
    entries_gone_at_once: u64,
    dead_entries: u64,
    dead_leases: u64,
    reclaimed_entries: u64,
    reclaimed_leases: u64,
    /// Dead entries still unreclaimed when their segment was unlinked by a clean close (freed with it).
    dead_entries_unlinked: u64,
    /// Processes struck while starting (before their first line).
    startup_kills: u64,
    /// Frames verified by Rust / Python readers that are gone (their last report; exact for a clean close).
    verified_rust: u64,
    verified_py: u64,
    /// Cycles with at least one Python reader running, and Python readers started.
    py_cycles: u64,
    py_started: u64,
    py_struck: u64,
    /// Leftovers of killed creators swept by the next creator within the cycles / by the last one at the end.
    leftovers_swept: u64,
    leftovers_at_end: u64,
}

impl Tally {
    fn count_writer(&mut self, sig: i32) {
        if sig == libc::SIGKILL {
            self.writer_kill += 1;
        } else {
            self.writer_term += 1;
        }
    }

    /// What a reader that is gone had verified (and how often it reopened).
    fn count_reader_done(&mut self, kid: &Kid) {
        let l = kid.log();
        if kid.is_python() {
            self.verified_py += l.verified;
        } else {
            self.verified_rust += l.verified;
        }
        self.reader_reopens += l.reopens;
    }
}

fn pick_signal(rng: &mut Rng) -> i32 {
    if rng.chance(50) {
        libc::SIGKILL
    } else {
        libc::SIGTERM
    }
}

/// The parent's own reader, checking every frame it reads: always attached to the segment the name refers to by
/// the end of a cycle (reattached after a clean close unlinked the old one).
struct Tap {
    name: String,
    reader: SnapshotReader,
    last: Position,
    /// Killed readers' entries in this segment's reader table, followed until someone reclaims them.
    dead: Vec<DeadEntry>,
}

impl Tap {
    fn attach(name: &str) -> Tap {
        let deadline = Instant::now() + REOPEN_TIMEOUT;
        let reader = loop {
            match SnapshotReader::open(name) {
                Ok(r) => break r,
                Err(Error::Shm(ShmError::NotFound { .. })) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => panic!("parent attaches to {name}: {e}"),
            }
        };
        Tap {
            name: name.to_owned(),
            reader,
            last: Position::default(),
            dead: Vec::new(),
        }
    }

    fn table(&self) -> LeaseTable<'_> {
        self.reader.attachment().shared().lease_table()
    }

    /// Whether the name still refers to the very file this reader maps.
    fn on_current_segment(&self) -> bool {
        let Ok(id) = self.reader.attachment().shared().segment().file_id() else {
            return false;
        };
        std::fs::metadata(format!("/dev/shm/{}", self.name))
            .is_ok_and(|m| m.dev() == id.dev && m.ino() == id.ino)
    }
}

/// Strike a writer and note what the parent now knows about the generation.
fn strike_writer(writer: &mut Kid, sig: i32, lineage: &mut Lineage, tally: &mut Tally) {
    let how = writer.strike(sig);
    tally.count_writer(sig);
    if how == Struck::Closed {
        tally.writer_closed += 1;
    }
    lineage.struck(writer, how);
}

/// What the parent knows about the segment the name refers to, from the writers it struck since the last writer
/// whose generation it checked.
#[derive(Debug)]
struct Lineage {
    /// Generation of the segment the name refers to; 0 when a clean close unlinked the name.
    base: u64,
    /// Struck writers that never said WRITING: each may have taken the segment over (or created it) first.
    unsure: u64,
    /// A clean close unlinked the parent's segment: the next writer's segment is another one.
    replaced: bool,
}

impl Lineage {
    fn new(generation: u64) -> Lineage {
        Lineage {
            base: generation,
            unsure: 0,
            replaced: false,
        }
    }

    fn struck(&mut self, kid: &Kid, how: Struck) {
        let writing = kid.log().writing;
        match (how, writing) {
            // Not persistent: the close unlinked the name.
            (Struck::Closed, _) => {
                self.base = 0;
                self.unsure = 0;
                self.replaced = true;
            }
            (Struck::Killed, Some((g, _))) => {
                self.base = g;
                self.unsure = 0;
            }
            (Struck::Killed, None) => self.unsure += 1,
        }
    }

    /// The writer that got the name after these strikes says generation `g`, next sequence number `next_seq`.
    fn check(&self, g: u64, next_seq: u64, parent_last: Position) {
        assert!(
            g > self.base && g <= self.base + 1 + self.unsure,
            "generation {g}: each takeover adds one and nothing else does, so it must lie in {}..={} ({self:?})",
            self.base + 1,
            self.base + 1 + self.unsure
        );
        if self.base == 0 && self.unsure == 0 {
            assert_eq!(
                (g, next_seq),
                (1, 1),
                "after a clean close the next writer creates a new segment: generation 1, sequence 1"
            );
        }
        if !self.replaced {
            assert!(
                next_seq > parent_last.seq,
                "the new writer continues after the last frame we saw ({next_seq} <= {})",
                parent_last.seq
            );
        }
    }
}

/// Strike a reader with `sig`, reap it, and start following its reader-table entry if a kill left one; a reader
/// that closed cleanly must have left none.
fn strike_reader(mut kid: Kid, sig: i32, tap: &mut Tap, tally: &mut Tally) {
    let pid = kid.pid();
    let how = kid.strike(sig);
    if sig == libc::SIGKILL {
        tally.reader_kill += 1;
    } else {
        tally.reader_term += 1;
    }
    if kid.is_python() {
        tally.py_struck += 1;
    }
    tally.count_reader_done(&kid);
    let found = tap
        .table()
        .entries()
        .iter()
        .enumerate()
        .find_map(|(index, e)| {
            let owner = e.identity().filter(|id| id.pid == pid)?;
            let leases = (0..SLOTS).map(|s| u64::from(e.lease_count(s))).sum();
            Some(DeadEntry {
                index,
                owner,
                leases,
            })
        });
    match (how, found) {
        (Struck::Closed, None) => tally.reader_closed += 1,
        (Struck::Closed, Some(d)) => panic!(
            "{} pid {pid} closed cleanly on SIGTERM but left its reader entry {} holding {} leases; {}",
            kid.role,
            d.index,
            d.leases,
            kid.describe()
        ),
        (Struck::Killed, Some(d)) => {
            tally.dead_entries += 1;
            tally.dead_leases += d.leases;
            tap.dead.push(d);
        }
        (Struck::Killed, None) => tally.entries_gone_at_once += 1,
    }
}

/// Read (verifying each frame) until `done` says so on the segment the name refers to; the watchdog bounds how
/// long.
fn read_until(
    tap: &mut Tap,
    writer: &mut Kid,
    tally: &mut Tally,
    mut done: impl FnMut(Position) -> bool,
) {
    loop {
        match tap.reader.read_next(Some(Duration::from_secs(2))) {
            Ok(f) => {
                tap.last = verify(&f, tap.last).unwrap_or_else(|e| panic!("parent reader: {e}"));
                tally.parent_verified += 1;
                if done(tap.last) && tap.on_current_segment() {
                    return;
                }
            }
            // A clean close unlinked the name: attach to the next writer's segment (a new one).
            Err(Error::WriterClosed { .. }) => {
                tally.dead_entries_unlinked += tap.dead.len() as u64;
                *tap = Tap::attach(&tap.name);
                tally.parent_reattaches += 1;
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
fn follow_dead(tap: &mut Tap, tally: &mut Tally) {
    let table = tap.reader.attachment().shared().lease_table();
    tap.dead.retain(|d| {
        if table.entries()[d.index].identity() == Some(d.owner) {
            return true;
        }
        tally.reclaimed_entries += 1;
        tally.reclaimed_leases += d.leases;
        false
    });
}

/// Unpublished segments (`/dev/shm/.qads-new.<pid>.*`) left by writers of this soak that are gone (not being built
/// right now by a live process that reused one of their pids): what the next creator must sweep.
fn leftovers(writers: &HashSet<u32>) -> Vec<String> {
    qadataswap_shm::list(PRIVATE_PREFIX)
        .expect("list /dev/shm")
        .into_iter()
        .filter(|e| {
            e.name
                .strip_prefix(PRIVATE_PREFIX)
                .and_then(|rest| rest.split('.').next())
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| writers.contains(&pid))
        })
        .filter(|e| !matches!(classify(&e.name), Ok(SegmentStatus::Initialising { .. })))
        .map(|e| e.name)
        .collect()
}

/// How process `pid` maps segment `name`, from /proc/<pid>/maps: a writer whose mapping is "(deleted)" writes into
/// a file that nobody can open any more (an orphan).
fn mapping_of(pid: u32, name: &str) -> String {
    let path = format!("/dev/shm/{name}");
    match std::fs::read_to_string(format!("/proc/{pid}/maps")) {
        Ok(maps) => {
            let lines: Vec<&str> = maps.lines().filter(|l| l.contains(&path)).collect();
            match lines.first() {
                None => "none".to_owned(),
                Some(l) if l.ends_with("(deleted)") => {
                    format!("UNLINKED, an orphan (inode {})", inode_of(l))
                }
                Some(l) => format!("the named file (inode {})", inode_of(l)),
            }
        }
        Err(e) => format!("unknown ({e})"),
    }
}

fn inode_of(maps_line: &str) -> &str {
    maps_line.split_whitespace().nth(4).unwrap_or("?")
}

/// Every leftover of `before` (listed before the creator started) is gone now that a creator ran.
fn assert_swept(before: &[String], tally: &mut Tally) {
    for n in before {
        assert!(
            !Path::new(&format!("/dev/shm/{n}")).exists(),
            "{n}, left by a killed creator, survived the next creator's sweep ({:?})",
            classify(n)
        );
    }
    tally.leftovers_swept += before.len() as u64;
}

fn env_u64(key: &str) -> Option<u64> {
    std::env::var(key).ok().and_then(|v| v.trim().parse().ok())
}

/// The `.venv` interpreter that `cargo xtask test` sets up (as tests/format_doc.rs finds it).
fn venv_python() -> Option<PathBuf> {
    let py = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    py.exists().then_some(py)
}

fn py_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/soak_reader.py")
}

/// The interpreter for Python readers if it imports `qadataswap` and reads and checks a frame of the live segment
/// `name` (a package built before the current format version fails here), else why not.
fn python_for_readers(name: &str) -> Result<PathBuf, String> {
    let python = venv_python().ok_or("no .venv/bin/python (`cargo xtask setup` makes it)")?;
    let mut probe = Kid::spawn_python("py-probe", &python, name, 0, &["--probe"]);
    let said = probe.wait_for("PROBE", |l| l.probe.clone());
    probe.shut_down();
    let expected = format!("ok {}", checksum(7, 3, 11));
    if said == expected {
        Ok(python)
    } else if said.starts_with("ok ") {
        panic!("the Python port of the checksum differs: {said:?}, expected {expected:?}");
    } else {
        Err(format!("{} probe: {said}", python.display()))
    }
}

#[test]
fn readers_never_see_a_torn_frame_and_exactly_one_writer_wins_across_random_kills_terminations_and_concurrent_creators(
) {
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
    // Every writer process started: their unpublished leftovers are what the next creator must sweep.
    let mut writer_pids: HashSet<u32> = HashSet::new();

    watchdog.arm();
    let mut writer = Kid::spawn("writer", &name, rng.next(), 0);
    writer_pids.insert(writer.pid());
    let (mut generation, _) = writer.wait_for("WRITING", |l| l.writing);
    let python = match python_for_readers(&name) {
        Ok(py) => Some(py),
        Err(why) => {
            let bar = "!".repeat(100);
            println!(
                "{bar}\nR15 soak: RUNNING WITHOUT PYTHON READERS: {why}\n(`cargo xtask test` builds the package after \
                 `cargo test`; `maturin develop` in bindings/python, or a second `cargo xtask test`, enables them)\n{bar}"
            );
            eprintln!("R15 soak: RUNNING WITHOUT PYTHON READERS: {why}");
            None
        }
    };
    let py_readers = if python.is_some() { PY_READERS } else { 0 };
    let spawn_reader = |python_reader: bool, seed: u64| match (&python, python_reader) {
        (Some(py), true) => Kid::spawn_python("py-reader", py, &name, seed, &[]),
        _ => Kid::spawn("reader", &name, seed, 0),
    };
    let mut tap = Tap::attach(&name);
    read_until(&mut tap, &mut writer, &mut tally, |_| true);
    let mut readers: Vec<Kid> = (0..READERS + py_readers)
        .map(|i| spawn_reader(i >= READERS, rng.next()))
        .collect();
    tally.py_started += py_readers as u64;
    for r in &readers {
        r.wait_for("OPEN", |l| l.open.then_some(()));
    }

    for _ in 0..cycles {
        watchdog.arm();
        tally.cycles += 1;
        if readers.iter().any(Kid::is_python) {
            tally.py_cycles += 1;
        }
        // Let everyone run for a random while, then strike at whatever they are doing.
        std::thread::sleep(rng.millis(1, 60));
        writer.check_not_failed();
        for r in &mut readers {
            r.check_not_failed();
        }
        let sig = pick_signal(&mut rng);
        if rng.chance(40) {
            // Leftovers of creators killed so far (all reaped): the next creator sweeps them before it creates.
            let before = leftovers(&writer_pids);
            let mut lineage = Lineage::new(generation);
            let old = writer.pid();
            let (g, next_seq) = if rng.chance(35) {
                // Two or three writers for the same name at once, after the old writer was struck or while it
                // still runs (they retry while WriterAlive names it).
                let n = 2 + rng.below(2) as usize;
                let old_alive = rng.chance(50);
                if !old_alive {
                    strike_writer(&mut writer, sig, &mut lineage, &mut tally);
                }
                let mut contenders: Vec<Kid> = (0..n)
                    .map(|_| Kid::spawn("writer", &name, rng.next(), old))
                    .collect();
                writer_pids.extend(contenders.iter().map(Kid::pid));
                if old_alive {
                    std::thread::sleep(rng.millis(0, 40));
                    strike_writer(&mut writer, sig, &mut lineage, &mut tally);
                    tally.concurrent_with_old_alive += 1;
                }
                let outcomes: Vec<Result<(u64, u64), u32>> = contenders
                    .iter()
                    .map(|c| {
                        c.wait_for("WRITING or LOST", |l| {
                            l.writing.map(Ok).or_else(|| l.lost.map(Err))
                        })
                    })
                    .collect();
                let winners: Vec<usize> = (0..n).filter(|&i| outcomes[i].is_ok()).collect();
                assert_eq!(
                    winners.len(),
                    1,
                    "exactly one of {n} concurrent creators becomes the writer (old writer {old} struck with signal \
                     {sig} {}); outcomes {outcomes:?}; {:?}",
                    if old_alive { "after they started" } else { "before" },
                    contenders
                        .iter()
                        .map(|c| format!("{}; its mapping of the name: {}", c.describe(), mapping_of(c.pid(), &name)))
                        .collect::<Vec<_>>()
                );
                let winner = contenders.swap_remove(winners[0]);
                for (i, o) in outcomes.iter().enumerate() {
                    if let Err(named) = o {
                        assert_eq!(
                            *named,
                            winner.pid(),
                            "creator {i} was refused with WriterAlive naming pid {named}, not the winner {}",
                            winner.pid()
                        );
                    }
                }
                for mut loser in contenders {
                    loser.shut_down();
                }
                tally.concurrent_cycles += 1;
                tally.contenders += n as u64;
                tally.contenders_lost += n as u64 - 1;
                writer = winner;
                writer.wait_for("WRITING", |l| l.writing)
            } else {
                strike_writer(&mut writer, sig, &mut lineage, &mut tally);
                writer = Kid::spawn("writer", &name, rng.next(), old);
                writer_pids.insert(writer.pid());
                // Sometimes the replacement is struck too, at a random moment of its start or takeover.
                while rng.chance(15) {
                    std::thread::sleep(rng.millis(0, 40));
                    let sig = pick_signal(&mut rng);
                    let old = writer.pid();
                    strike_writer(&mut writer, sig, &mut lineage, &mut tally);
                    tally.startup_kills += 1;
                    writer = Kid::spawn("writer", &name, rng.next(), old);
                    writer_pids.insert(writer.pid());
                }
                writer.wait_for("WRITING", |l| l.writing)
            };
            lineage.check(g, next_seq, tap.last);
            if lineage.replaced {
                tally.fresh_segments += 1;
            } else {
                tally.takeovers += 1;
            }
            generation = g;
            assert_swept(&before, &mut tally);
            // Frames continue from the new writer (on a new segment after a clean close).
            read_until(&mut tap, &mut writer, &mut tally, |p| p.generation == g);
        } else {
            let n = 1 + rng.below(readers.len() as u64) as usize;
            for _ in 0..n {
                let i = rng.below(readers.len() as u64) as usize;
                let kid = readers.swap_remove(i);
                strike_reader(kid, sig, &mut tap, &mut tally);
            }
            loop {
                let rust = readers.iter().filter(|k| !k.is_python()).count();
                let python_reader = match (rust < READERS, readers.len() - rust < py_readers) {
                    (true, _) => false,
                    (false, true) => true,
                    (false, false) => break,
                };
                let kid = spawn_reader(python_reader, rng.next());
                if python_reader {
                    tally.py_started += 1;
                }
                if rng.chance(15) {
                    // Struck while starting: before, during or after registering in the reader table.
                    std::thread::sleep(rng.millis(0, 40));
                    tally.startup_kills += 1;
                    strike_reader(kid, pick_signal(&mut rng), &mut tap, &mut tally);
                    continue;
                }
                readers.push(kid);
            }
            for r in &readers {
                r.wait_for("OPEN", |l| l.open.then_some(()));
            }
            // The writer goes on past the dead readers' leases: a full turn of the ring and more.
            let from = tap.last.seq;
            read_until(&mut tap, &mut writer, &mut tally, |p| {
                p.seq >= from + 2 * SLOTS as u64
            });
        }
        // Follow the dead readers' entries: reclaimed by the writer (stuck on their leases, or at takeover) or by
        // a registering reader when the table was full.
        follow_dead(&mut tap, &mut tally);
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
    for r in &mut readers {
        r.shut_down();
        r.wait_for("DONE", |l| l.done);
        tally.count_reader_done(r);
    }
    writer.shut_down();
    writer.wait_for("CLOSED", |l| l.closed.then_some(()));
    follow_dead(&mut tap, &mut tally);
    let table = tap.table();
    let mut dead_left: Vec<_> = table
        .registered_entries()
        .filter_map(|(_, e)| e.identity().filter(|id| !id.is_alive()))
        .collect();
    let mut tracked: Vec<_> = tap.dead.iter().map(|d| d.owner).collect();
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
    drop(tap);
    let segments = qadataswap_shm::list(&prefix).expect("list /dev/shm");
    assert!(
        segments.is_empty(),
        "no segment is left after a clean shutdown: {segments:?}"
    );
    // What creators killed after the last creator's sweep left: still there, and swept by the next creator.
    let left = leftovers(&writer_pids);
    tally.leftovers_at_end = left.len() as u64;
    SnapshotWriter::builder(&name)
        .size(SIZE)
        .slots(SLOTS)
        .create()
        .and_then(SnapshotWriter::close)
        .expect("one more creator (it sweeps the leftovers), closed at once");
    assert_swept(&left, &mut tally);
    let left: Vec<_> = leftovers(&writer_pids);
    assert!(
        left.is_empty(),
        "no unpublished segment of a dead creator is left: {left:?}"
    );
    let segments = qadataswap_shm::list(&prefix).expect("list /dev/shm");
    assert!(segments.is_empty(), "nothing is left: {segments:?}");
    drop(watchdog);
    let python_note = match &python {
        Some(_) => format!(
            "python_reader_cycles={} (python readers started {}, struck {}, frames verified >= {})",
            tally.py_cycles, tally.py_started, tally.py_struck, tally.verified_py
        ),
        None => "python_reader_cycles=0 (NO PYTHON READERS: qadataswap not importable or stale)"
            .to_owned(),
    };
    println!(
        "R15 soak summary: seed={seed} cycles={} writer_strikes={} (KILL {} / TERM {}, of which closed cleanly {}) \
         reader_strikes={} (KILL {} / TERM {}, of which closed cleanly {}) frames_verified={} (rust readers >= {}, \
         python readers >= {}, parent {}) takeovers={} fresh_segments={} (parent reattached {}, readers reopened \
         {}) concurrent_creator_cycles={} ({} with the old writer still alive; {} creators, {} refused with \
         WriterAlive naming the winner) {python_note} startup_strikes={} dead_reader_entries={} holding {} leases \
         (+{} readers without an entry in the parent's segment by then); reclaimed by the library: {} entries, {} \
         leases; freed with an unlinked segment: {}; by the final reclaim: {} entries; creator leftovers swept: {} \
         in cycles, {} at the end; elapsed {:.1?}",
        tally.cycles,
        tally.writer_kill + tally.writer_term,
        tally.writer_kill,
        tally.writer_term,
        tally.writer_closed,
        tally.reader_kill + tally.reader_term,
        tally.reader_kill,
        tally.reader_term,
        tally.reader_closed,
        tally.verified_rust + tally.verified_py + tally.parent_verified,
        tally.verified_rust,
        tally.verified_py,
        tally.parent_verified,
        tally.takeovers,
        tally.fresh_segments,
        tally.parent_reattaches,
        tally.reader_reopens,
        tally.concurrent_cycles,
        tally.concurrent_with_old_alive,
        tally.contenders,
        tally.contenders_lost,
        tally.startup_kills,
        tally.dead_entries,
        tally.dead_leases,
        tally.entries_gone_at_once,
        tally.reclaimed_entries,
        tally.reclaimed_leases,
        tally.dead_entries_unlinked,
        gc.len(),
        tally.leftovers_swept - tally.leftovers_at_end,
        tally.leftovers_at_end,
        t0.elapsed()
    );
}
