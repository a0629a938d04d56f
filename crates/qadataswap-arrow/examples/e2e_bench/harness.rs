//! What the three suites share: a small shared control mapping, child processes that cannot outlive the bench,
//! a process-wide watchdog, CLOCK_MONOTONIC, percentiles, `/proc` readers and the frames.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use rustix::fs::{Mode, OFlags};
use rustix::mm::{MapFlags, ProtFlags};
use rustix::process::{Pid, Signal};

pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Readers a control mapping has room for (16 fan-out readers plus a stalled one, with room to spare).
pub const MAX_READERS: usize = 32;

/// One reader's words, alone on its cache lines so that readers do not slow each other down by false sharing.
#[repr(C, align(128))]
pub struct ReaderWords {
    /// The last round this reader finished (0: none).
    pub ack: AtomicU32,
    /// The reader's measured latency of its last round, in ns.
    pub lat: AtomicU64,
    /// Frames the reader saw in the throughput phase.
    pub count: AtomicU64,
    /// Measurements a reader reports (memory suite: smaps fields before and after).
    pub vals: [AtomicU64; 8],
}

/// An atomic alone on its cache lines.
#[repr(C, align(128))]
pub struct Padded<T>(pub T);

/// The control block at the start of every control mapping. Zero bytes are a valid value (atomics only), so a
/// freshly truncated file is a ready block.
#[repr(C)]
pub struct Control {
    /// Readers that have started and are ready for round 1.
    pub ready: Padded<AtomicU32>,
    /// The raw handoff's round word: the writer stores the round after copying the bytes (and wakes, when parked).
    pub go: Padded<AtomicU32>,
    /// Set to 1 when the readers are to finish their current phase.
    pub stop: Padded<AtomicU32>,
    /// CLOCK_MONOTONIC ns taken just before the writer's send of the current round.
    pub stamp: Padded<AtomicU64>,
    pub readers: [ReaderWords; MAX_READERS],
}

/// Where the raw handoff's bytes go, after the control block.
pub const DATA_OFFSET: usize = 64 << 10;
/// The raw handoff's room: more than any small frame of this bench.
pub const DATA_LEN: usize = 1 << 20;
const MAP_LEN: usize = DATA_OFFSET + DATA_LEN;
const _: () = assert!(std::mem::size_of::<Control>() <= DATA_OFFSET);
// The latency readers in other languages (bench/python/latency_reader.py, bindings/c/bench/latency_reader.cc)
// address these words by offset.
const _: () = {
    assert!(std::mem::offset_of!(Control, ready) == 0);
    assert!(std::mem::offset_of!(Control, stamp) == 384);
    assert!(std::mem::offset_of!(Control, readers) == 512);
    assert!(std::mem::offset_of!(ReaderWords, ack) == 0);
    assert!(std::mem::offset_of!(ReaderWords, lat) == 8);
    assert!(std::mem::offset_of!(ReaderWords, vals) == 24);
};

/// Paths to unlink when the watchdog ends the process (drops do not run then).
static CLEANUP: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Children the watchdog kills.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

pub fn register_cleanup(path: &Path) {
    CLEANUP
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(path.to_owned());
}

/// The control mapping: a file in /dev/shm, unlinked by its creator when dropped.
pub struct ControlMap {
    ptr: NonNull<u8>,
    pub path: String,
    owner: bool,
}

impl ControlMap {
    pub fn create(tag: &str) -> Res<ControlMap> {
        let path = format!("/dev/shm/qads-e2e-ctl-{}-{tag}", std::process::id());
        let _ = rustix::fs::unlink(&path);
        let fd = rustix::fs::open(
            &path,
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        register_cleanup(Path::new(&path));
        ControlMap::map(fd, path, true)
    }

    pub fn open(path: &str) -> Res<ControlMap> {
        let fd = rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())?;
        ControlMap::map(fd, path.to_owned(), false)
    }

    fn map(fd: rustix::fd::OwnedFd, path: String, owner: bool) -> Res<ControlMap> {
        if owner {
            rustix::fs::ftruncate(&fd, MAP_LEN as u64)?;
        }
        // SAFETY: a fresh shared mapping of a file of MAP_LEN bytes; nothing else in this process maps it.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                MAP_LEN,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &fd,
                0,
            )
        }?;
        Ok(ControlMap {
            ptr: NonNull::new(ptr.cast()).ok_or("mmap returned null")?,
            path,
            owner,
        })
    }

    pub fn ctl(&self) -> &Control {
        // SAFETY: page-aligned, MAP_LEN >= size_of::<Control>() bytes, zero-filled at creation (a valid `Control`:
        // atomics and padding only), mapped as long as `self` lives; every field is an atomic, so other processes
        // writing it is no data race.
        unsafe { self.ptr.cast::<Control>().as_ref() }
    }

    /// The raw handoff's copy: `bytes` into the data area. Only the writer writes there and readers never read it
    /// (the floor measures the copy and the flip of `go`), so there is no race to speak of.
    pub fn copy_in(&self, bytes: &[u8]) -> Res<()> {
        if bytes.len() > DATA_LEN {
            return Err(format!("{} bytes do not fit the raw area", bytes.len()).into());
        }
        // SAFETY: the destination lies inside the mapping (DATA_OFFSET + len <= MAP_LEN, checked above) and does not
        // overlap `bytes` (private memory); no reference into the data area exists.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.ptr.as_ptr().add(DATA_OFFSET),
                bytes.len(),
            );
        }
        Ok(())
    }
}

impl Drop for ControlMap {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `map` mapped; `ctl()` borrows end with `self`.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), MAP_LEN) };
        if self.owner {
            let _ = rustix::fs::unlink(&self.path);
        }
    }
}

/// CLOCK_MONOTONIC in ns: one clock for every process on the machine, so a stamp taken in the writer can be
/// compared with the time the reader holds the batch.
pub fn mono_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64)
}

/// A child process that is killed (and reaped) when dropped: on every error path and on panics. The watchdog kills
/// the registered ones when it fires.
pub struct Kid {
    child: Option<Child>,
    pub pid: u32,
}

impl Kid {
    pub fn spawn(cmd: &mut Command) -> Res<Kid> {
        let child = cmd.spawn()?;
        let pid = child.id();
        CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
        Ok(Kid {
            child: Some(child),
            pid,
        })
    }

    /// Waits up to `within` for a clean exit; kills the child and fails if it does not come.
    pub fn finish(mut self, within: Duration) -> Res<()> {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut().ok_or("child already reaped")?;
        loop {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!("child {} failed: {status}", self.pid).into())
                };
            }
            if Instant::now() >= deadline {
                return Err(format!("child {} did not exit within {within:?}", self.pid).into());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    pub fn signal(&self, sig: Signal) -> Res<()> {
        let pid = Pid::from_raw(self.pid as i32).ok_or("bad pid")?;
        rustix::process::kill_process(pid, sig)?;
        Ok(())
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        CHILDREN
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|p| *p != self.pid);
    }
}

/// A command that re-runs this binary as a child with the given role arguments.
pub fn child_command(args: &[String]) -> Res<Command> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("--child").args(args);
    Ok(cmd)
}

/// Called first in every child: die with the parent, whatever kills it.
pub fn child_init() -> Res<()> {
    let parent = rustix::process::getppid();
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
    // The parent may have died before the line above: then we were re-parented already.
    if rustix::process::getppid() != parent {
        return Err("the bench process is gone".into());
    }
    Ok(())
}

/// Ends the whole bench if it runs longer than `limit`: kills every child, unlinks the control files and exits 2.
pub fn watchdog(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("e2e_bench: watchdog fired after {limit:?}; killing the children");
        for pid in CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            if let Some(pid) = Pid::from_raw(*pid as i32) {
                let _ = rustix::process::kill_process(pid, Signal::KILL);
            }
        }
        for path in CLEANUP.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = std::fs::remove_file(path);
        }
        std::process::exit(2);
    });
}

/// How a waiter waits between checks.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    /// Busy: the hot path.
    Spin,
    /// Sleep this long between checks: leaves the core to the processes being measured.
    Sleep(Duration),
}

/// Waits until `done()` holds, failing after `within`.
pub fn wait_for(
    what: &str,
    within: Duration,
    pause: Pause,
    mut done: impl FnMut() -> bool,
) -> Res<()> {
    let deadline = Instant::now() + within;
    let mut n = 0u32;
    loop {
        if done() {
            return Ok(());
        }
        n = n.wrapping_add(1);
        match pause {
            Pause::Spin => {
                std::hint::spin_loop();
                if !n.is_multiple_of(4096) {
                    continue;
                }
            }
            Pause::Sleep(d) => std::thread::sleep(d),
        }
        if Instant::now() >= deadline {
            return Err(format!("timed out after {within:?} waiting for {what}").into());
        }
    }
}

/// Busy-waits `d` (the hot writer's gap between rounds: the reader is spinning by the time the next one comes).
pub fn spin_for(d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

/// p50 and p99 of a sample set, in ns.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pct {
    pub p50: f64,
    pub p99: f64,
}

pub fn pct(samples: &mut [u64]) -> Pct {
    if samples.is_empty() {
        return Pct::default();
    }
    samples.sort_unstable();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize] as f64;
    Pct {
        p50: pick(0.5),
        p99: pick(0.99),
    }
}

pub fn fmt_ns(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 10_000.0 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns >= 1_000.0 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// The small frames: `rows` rows of (int64, float64, utf8).
pub fn frame(rows: usize) -> RecordBatch {
    let i: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows as i64));
    let f: ArrayRef = Arc::new(Float64Array::from_iter_values(
        (0..rows).map(|v| v as f64 * 0.25),
    ));
    let s: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..rows).map(|v| format!("SYM{:05}", v % 5000)),
    ));
    RecordBatch::try_from_iter([("i64", i), ("f64", f), ("utf8", s)]).expect("valid batch")
}

/// The frame as one Arrow IPC stream (schema, batch, end): the bytes the raw handoff copies, the same number our
/// writer puts in its slot give or take alignment.
pub fn ipc_bytes(batch: &RecordBatch) -> Res<Vec<u8>> {
    let mut out = Vec::new();
    let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut out, &batch.schema())?;
    w.write(batch)?;
    w.finish()?;
    drop(w);
    Ok(out)
}

/// Fields of `/proc/self/smaps_rollup`, in bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mem {
    pub rss: u64,
    pub pss: u64,
    /// Private_Clean + Private_Dirty.
    pub private: u64,
    /// Anonymous: memory that is this process's alone (heap, private copies).
    pub anon: u64,
}

/// This process's `/proc/self/smaps_rollup`.
pub fn smaps() -> Res<Mem> {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup")?;
    let mut m = Mem::default();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(key), Some(kb)) = (it.next(), it.next()) else {
            continue;
        };
        let Ok(kb) = kb.parse::<u64>() else { continue };
        let bytes = kb * 1024;
        match key {
            "Rss:" => m.rss = bytes,
            "Pss:" => m.pss = bytes,
            "Private_Clean:" | "Private_Dirty:" => m.private += bytes,
            "Anonymous:" => m.anon = bytes,
            _ => {}
        }
    }
    Ok(m)
}

/// The state letter of `/proc/<pid>/stat` (`T`: stopped).
pub fn proc_state(pid: u32) -> Res<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name is in parentheses and may hold spaces: the state follows the last ')'.
    let after = stat.rsplit_once(')').ok_or("odd /proc stat")?.1;
    after
        .trim_start()
        .chars()
        .next()
        .ok_or_else(|| "empty /proc stat".into())
}

/// Bytes a tmpfs file really holds (its allocated blocks, not its size).
pub fn tmpfs_bytes(path: &str) -> Res<u64> {
    let st = rustix::fs::stat(path)?;
    Ok(st.st_blocks as u64 * 512)
}

/// Cores this process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A JSON string literal (the names here are plain ASCII; quotes and backslashes escaped all the same).
pub fn js(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Appends the goals (issue 21) as a list to the report fragment.
pub fn push_goals(md: &mut String, goals: &[String]) {
    md.push_str("\nGoals (issue 21):\n\n");
    for g in goals {
        md.push_str(&format!("- {g}\n"));
    }
}

/// Appends a link to `chart` (a file beside the report) to the report fragment.
pub fn push_chart(md: &mut String, alt: &str, chart: &Path) {
    let file = chart
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    md.push_str(&format!("\n![{alt}]({file})\n"));
}

/// Writes a report fragment next to the JSON file: `X.json` -> `X.md`, and charts `X-<name>.svg`.
pub fn sibling(json: &Path, suffix: &str) -> PathBuf {
    let stem = json
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bench".into());
    json.with_file_name(format!("{stem}{suffix}"))
}

/// A file path removed when dropped (on error paths too) and, if the watchdog fires, by the watchdog.
pub struct TempPath(pub PathBuf);

impl TempPath {
    pub fn new(path: PathBuf) -> TempPath {
        let _ = std::fs::remove_file(&path);
        register_cleanup(&path);
        TempPath(path)
    }

    pub fn display(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A segment name for this run, registered so that the watchdog unlinks it too (a writer unlinks its segment when
/// dropped; the watchdog's exit runs no drops).
pub fn segment_name(tag: &str) -> String {
    let name = format!("qads-e2e-{}-{tag}", std::process::id());
    register_cleanup(&Path::new("/dev/shm").join(&name));
    name
}

/// A Unix socket path in the temp directory.
pub fn socket_path(tag: &str) -> TempPath {
    TempPath::new(std::env::temp_dir().join(format!("qads-e2e-{}-{tag}.sock", std::process::id())))
}

/// `accept()` with a deadline: a child that died before connecting must not hang the bench.
pub fn accept_within(
    listener: &std::os::unix::net::UnixListener,
    within: Duration,
) -> Res<std::os::unix::net::UnixStream> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + within;
    loop {
        match listener.accept() {
            Ok((sock, _)) => {
                sock.set_nonblocking(false)?;
                return Ok(sock);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(format!("no reader connected within {within:?}").into());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Parses argument `i` of a child's role arguments.
pub fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> Res<T> {
    args.get(i)
        .ok_or_else(|| format!("missing child argument {i}"))?
        .parse::<T>()
        .map_err(|_| format!("bad child argument {i}: {:?}", args.get(i)).into())
}
