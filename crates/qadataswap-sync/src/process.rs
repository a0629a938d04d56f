//! Process identity that survives pid reuse: pid + start time (field 22 of `/proc/<pid>/stat`,
//! clock ticks since boot).
//!
//! A `start_time` of 0 means "unknown" (an entry being claimed, or `/proc` unreadable): such
//! an identity is judged by whether the pid exists at all.

use std::sync::atomic::{AtomicU32 as StdAtomicU32, AtomicU64 as StdAtomicU64, Ordering};

/// A process: its pid and its start time. `Send + Sync + Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProcessIdentity {
    /// The process id.
    pub pid: u32,
    /// Field 22 of `/proc/<pid>/stat` (clock ticks after boot); 0 = unknown.
    pub start_time: u64,
}

/// What `/proc/<pid>/stat` says about a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stat {
    state: u8,
    start_time: u64,
}

/// Parses the contents of `/proc/<pid>/stat`. The command name (field 2) is in parentheses
/// and may itself contain spaces and `)`, so fields are counted from the *last* `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After the comm: field 3 (state) is index 0, so field 22 (starttime) is index 19.
    let state = *fields.next()?.as_bytes().first()?;
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(Stat { state, start_time })
}

enum Lookup {
    Found(Stat),
    Missing,
    /// `/proc` could not tell (not mounted, hidden by `hidepid`, ...).
    Unknown,
}

fn lookup(pid: u32) -> Lookup {
    if pid == 0 || pid > i32::MAX as u32 {
        return Lookup::Missing;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => parse_stat(&text).map_or(Lookup::Unknown, Lookup::Found),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match pid_exists(pid) {
            // /proc hides it (hidepid) or is not mounted, but the pid is there.
            Some(true) => Lookup::Unknown,
            _ => Lookup::Missing,
        },
        Err(_) => Lookup::Unknown,
    }
}

/// `kill(pid, 0)`: `Some(true)` if the pid exists (even if we may not signal it).
#[cfg(not(qadataswap_loom))]
fn pid_exists(pid: u32) -> Option<bool> {
    let raw = i32::try_from(pid).ok()?;
    let pid = rustix::process::Pid::from_raw(raw)?;
    match rustix::process::test_kill_process(pid) {
        Ok(()) | Err(rustix::io::Errno::PERM) => Some(true),
        Err(rustix::io::Errno::SRCH) => Some(false),
        Err(_) => None,
    }
}

#[cfg(qadataswap_loom)]
fn pid_exists(_pid: u32) -> Option<bool> {
    None
}

fn is_dead_state(state: u8) -> bool {
    // Z = zombie (exited, not reaped), X = dead.
    matches!(state, b'Z' | b'X' | b'x')
}

/// This process's pid, normally without a system call: `getpid` once, then a word in a private page the kernel
/// zeroes in a `fork()` child (`MADV_WIPEONFORK`), so a child re-reads its own pid on its first call. Where that
/// advice is unavailable (kernels before 4.14), every call is a `getpid`.
///
/// For fork checks on hot paths (a handle refusing to work in a child, a lease drop that must not release its
/// parent's lease): the answer is always the pid of the calling process.
pub fn current_pid() -> u32 {
    #[cfg(not(qadataswap_loom))]
    {
        if let Some(word) = wipe_on_fork_word() {
            let pid = word.load(Ordering::Relaxed);
            if pid != 0 {
                return pid;
            }
            let pid = std::process::id();
            word.store(pid, Ordering::Relaxed);
            return pid;
        }
    }
    std::process::id()
}

/// The pid word of [`current_pid`]: a private anonymous page marked wipe-on-fork, mapped once per process (and
/// inherited, zeroed, by children).
#[cfg(not(qadataswap_loom))]
fn wipe_on_fork_word() -> Option<&'static StdAtomicU32> {
    use std::sync::atomic::AtomicUsize;
    // 0: not tried yet; 1: unavailable (use getpid); else the page's address. Published by compare-and-swap rather
    // than a `OnceLock`, so that a fork in the middle of the first call cannot leave the child a lock it would
    // wait on forever.
    static WORD: AtomicUsize = AtomicUsize::new(0);
    let mut addr = WORD.load(Ordering::Acquire);
    if addr == 0 {
        let fresh = map_wipe_on_fork_page().unwrap_or(1);
        addr = match WORD.compare_exchange(0, fresh, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => fresh,
            Err(winner) => {
                if fresh > 1 {
                    // SAFETY: the page this call mapped lost the race and was never published: nothing refers to it.
                    let _ =
                        unsafe { rustix::mm::munmap(fresh as *mut _, rustix::param::page_size()) };
                }
                winner
            }
        };
    }
    if addr <= 1 {
        return None;
    }
    // SAFETY: the published page is mapped read-write for the life of the process (never unmapped once
    // published), page aligned (so 4-aligned), and accessed only through this atomic; a fork child gets its own
    // zeroed copy.
    Some(unsafe { &*(addr as *const StdAtomicU32) })
}

/// A fresh private page marked `MADV_WIPEONFORK`, or `None` where the kernel refuses that advice.
#[cfg(not(qadataswap_loom))]
fn map_wipe_on_fork_page() -> Option<usize> {
    use rustix::mm::{madvise, mmap_anonymous, munmap, Advice, MapFlags, ProtFlags};
    let len = rustix::param::page_size();
    // SAFETY: a fresh private anonymous mapping at an address of the kernel's choosing: it aliases nothing.
    let ptr = unsafe {
        mmap_anonymous(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::PRIVATE,
        )
    }
    .ok()?;
    // SAFETY: `ptr..ptr+len` is the mapping just created, used by nothing else yet.
    if unsafe { madvise(ptr, len, Advice::LinuxWipeOnFork) }.is_err() {
        // SAFETY: as above; nothing refers to the mapping.
        let _ = unsafe { munmap(ptr, len) };
        return None;
    }
    Some(ptr as usize)
}

static CACHED_PID: StdAtomicU32 = StdAtomicU32::new(0);
static CACHED_START: StdAtomicU64 = StdAtomicU64::new(0);
static CACHED_NS_PID: StdAtomicU32 = StdAtomicU32::new(0);
static CACHED_NS: StdAtomicU64 = StdAtomicU64::new(0);
static CACHED_NS_OWN_PROC: StdAtomicU32 = StdAtomicU32::new(0);

/// What this process can tell about another one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Liveness {
    /// Running (same pid and start time, not a zombie).
    Alive,
    /// Gone: no such pid, a zombie, or the pid was reused by a process with another start time.
    Dead,
    /// Cannot be judged from here: the process lives in another PID namespace, or this process's `/proc` belongs
    /// to another PID namespace than its own. Whoever asks must treat it as alive (never reclaim, never displace).
    Unknown,
}

impl Liveness {
    /// True unless the process is known to be gone: what reclaiming and takeover decisions must use.
    pub fn may_be_alive(self) -> bool {
        self != Liveness::Dead
    }
}

/// This process's PID namespace: the inode number of `/proc/self/ns/pid`, or 0 when it cannot be read (no `/proc`,
/// a kernel without namespaces). Two processes with the same non-zero value see the same pids. Cached, re-read
/// in a `fork()` child (a child of `unshare --pid` lives in a new namespace).
pub fn pid_namespace() -> u64 {
    namespace_facts().0
}

/// Whether this process's `/proc` shows its own PID namespace (`/proc/self` names the pid `getpid` returns). It does
/// not inside `unshare --pid --fork` without `--mount-proc`: such a process cannot look its peers up in `/proc`, so
/// it judges every other process [`Liveness::Unknown`].
pub fn proc_is_own_namespace() -> bool {
    namespace_facts().1
}

#[cfg(not(qadataswap_loom))]
fn namespace_facts() -> (u64, bool) {
    use std::os::unix::fs::MetadataExt;
    let pid = std::process::id();
    if CACHED_NS_PID.load(Ordering::Acquire) == pid {
        return (
            CACHED_NS.load(Ordering::Relaxed),
            CACHED_NS_OWN_PROC.load(Ordering::Relaxed) == 1,
        );
    }
    let ns = std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino());
    let own = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse::<u32>().ok()))
        == Some(pid);
    CACHED_NS.store(ns, Ordering::Relaxed);
    CACHED_NS_OWN_PROC.store(u32::from(own), Ordering::Relaxed);
    CACHED_NS_PID.store(pid, Ordering::Release);
    (ns, own)
}

#[cfg(qadataswap_loom)]
fn namespace_facts() -> (u64, bool) {
    (0, true)
}

impl ProcessIdentity {
    /// This process. Cached, but re-read after `fork` (the cache is keyed by `getpid`).
    /// If `/proc/self/stat` cannot be read, `start_time` is 0 (unknown).
    /// Inside a PID namespace whose `/proc` is another namespace's, `/proc/<pid>` is some other process: the start
    /// time is then 0 (unknown), never a stranger's.
    pub fn current() -> Self {
        let pid = std::process::id();
        if CACHED_PID.load(Ordering::Acquire) == pid {
            return ProcessIdentity {
                pid,
                start_time: CACHED_START.load(Ordering::Relaxed),
            };
        }
        let start_time = match lookup(pid) {
            Lookup::Found(stat) if proc_is_own_namespace() => stat.start_time,
            _ => 0,
        };
        CACHED_START.store(start_time, Ordering::Relaxed);
        CACHED_PID.store(pid, Ordering::Release);
        ProcessIdentity { pid, start_time }
    }

    /// The identity of the running process `pid`; `None` if there is no such process or it
    /// is a zombie (exited but not yet reaped by its parent). If `/proc` cannot tell but the
    /// pid exists, the start time is 0 (unknown).
    pub fn of(pid: u32) -> Option<Self> {
        match lookup(pid) {
            Lookup::Found(stat) if is_dead_state(stat.state) => None,
            Lookup::Found(stat) => Some(ProcessIdentity {
                pid,
                start_time: stat.start_time,
            }),
            Lookup::Missing => None,
            Lookup::Unknown => Some(ProcessIdentity { pid, start_time: 0 }),
        }
    }

    /// What can be told about this process from here, given the PID namespace it recorded (`pidns`, 0 = not
    /// recorded, judged as if it were ours). A process of another namespace, or any process when this one's
    /// `/proc` is not its own namespace's, is [`Liveness::Unknown`]; this process itself is always alive.
    pub fn liveness(&self, pidns: u64) -> Liveness {
        let (my_ns, own_proc) = namespace_facts();
        if pidns != 0 && my_ns != 0 && pidns != my_ns {
            return Liveness::Unknown;
        }
        if *self == ProcessIdentity::current() {
            return Liveness::Alive;
        }
        if !own_proc {
            return Liveness::Unknown;
        }
        if self.is_alive() {
            Liveness::Alive
        } else {
            Liveness::Dead
        }
    }

    /// True if this process is still running: the pid exists, is not a zombie, and has the
    /// same start time (so a recycled pid is not mistaken for it). With an unknown start
    /// time (0) on either side, only the existence of the pid is checked.
    pub fn is_alive(&self) -> bool {
        match ProcessIdentity::of(self.pid) {
            None => false,
            Some(now) => {
                self.start_time == 0 || now.start_time == 0 || now.start_time == self.start_time
            }
        }
    }
}

#[cfg(all(test, not(qadataswap_loom)))]
mod tests {
    use super::*;

    #[test]
    fn current_pid_is_this_process_pid_every_time() {
        for _ in 0..3 {
            assert_eq!(current_pid(), std::process::id());
        }
    }

    #[test]
    fn stat_with_spaces_and_parentheses_in_the_command_name_parses() {
        let line = "4242 (evil) name) (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                    987654 1000 100 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                state: b'S',
                start_time: 987654
            })
        );
    }

    #[test]
    fn truncated_stat_is_rejected_not_misread() {
        assert_eq!(parse_stat("12 (x) S 1 2 3"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn current_process_is_alive_and_matches_its_own_lookup() {
        let me = ProcessIdentity::current();
        assert_eq!(me.pid, std::process::id());
        assert_ne!(me.start_time, 0);
        assert_eq!(ProcessIdentity::of(me.pid), Some(me));
        assert!(me.is_alive());
    }

    #[test]
    fn live_pid_with_a_different_start_time_is_not_alive() {
        let me = ProcessIdentity::current();
        let recycled = ProcessIdentity {
            pid: me.pid,
            start_time: me.start_time + 1,
        };
        assert!(!recycled.is_alive());
    }

    #[test]
    fn pid_zero_and_huge_pids_are_no_process() {
        assert_eq!(ProcessIdentity::of(0), None);
        assert_eq!(ProcessIdentity::of(u32::MAX), None);
    }
}
