//! Leases across `fork()`: a child that inherits frames holds leases of its own.
//!
//! A `fork()` child gets a copy of every frame its parent holds (Python's `multiprocessing` forks by default on
//! Linux). Those frames point into shared memory that the parent's reader entry protects; once the parent drops its
//! copies, the writer could reuse the slots under the child. So, around every `fork()` (`pthread_atfork`):
//!
//! 1. *prepare* (parent, before the fork): new leases are held off (a gate every lease acquisition passes), and for
//!    each attachment whose frames hold leases, a new reader entry is registered in the parent's name, flagged
//!    [`ENTRY_INHERITED`], holding exactly the leases this process's frames hold (counted per slot in
//!    [`crate::reader::Attachment`]).
//! 2. *child*: each such entry is handed over to the child's identity ([`ReaderEntry::hand_over`]), and the child's
//!    copy of the attachment releases its frames' leases through that entry from then on.
//! 3. *parent*: the gate opens again; the parent keeps its own entry and leases.
//!
//! The reader and stream objects themselves keep refusing to work in the child ([`crate::Error::Forked`]): only the
//! frames it inherited stay valid, for as long as it holds them. A child that calls `exec` drops its mappings but
//! keeps its pid and start time; an [`ENTRY_INHERITED`] entry whose owner no longer maps the segment is reclaimed
//! like a dead reader's ([`still_maps`]).
//!
//! Limits: if the reader table is full at the fork, the child's inherited frames are protected only as long as the
//! parent holds its own copies; if `fork()` itself fails, the entries registered for the child stay with the parent
//! until it exits.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Once, Weak};

use qadataswap_shm::FileId;
use qadataswap_sync::lease::{EntryOwner, ENTRY_INHERITED};
use qadataswap_sync::process::{pid_namespace, Liveness, ProcessIdentity};

/// Lease acquisitions in flight (low bits) and the "fork in progress" bit.
static GATE: AtomicU64 = AtomicU64::new(0);
const FORKING: u64 = 1 << 63;

/// Held while a lease is taken and counted, so that a fork never copies a frame whose lease it did not count.
pub(crate) struct LeaseGate(());

impl LeaseGate {
    pub(crate) fn enter() -> LeaseGate {
        let mut current = GATE.load(Ordering::Acquire);
        loop {
            if current & FORKING != 0 {
                std::hint::spin_loop();
                std::thread::yield_now();
                current = GATE.load(Ordering::Acquire);
                continue;
            }
            match GATE.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return LeaseGate(()),
                Err(now) => current = now,
            }
        }
    }
}

impl Drop for LeaseGate {
    fn drop(&mut self) {
        GATE.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Every attachment of this process (weakly), guarded by a spin lock that the fork handlers hold across the fork,
/// so the child finds the list in a consistent state. (A `std::sync::Mutex` cannot be left locked by one handler
/// and unlocked by another.)
struct Registry {
    locked: AtomicBool,
    list: UnsafeCell<Vec<Weak<dyn ForkHandoff>>>,
}

// SAFETY: `list` is only accessed between `lock()` and `unlock()`, which exclude each other through `locked`
// (acquire on lock, release on unlock), so no two threads touch it at once.
unsafe impl Sync for Registry {}

static REGISTRY: Registry = Registry {
    locked: AtomicBool::new(false),
    list: UnsafeCell::new(Vec::new()),
};

impl Registry {
    fn lock(&self) {
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
            std::thread::yield_now();
        }
    }

    fn unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }

    /// Run `f` on the list under the lock.
    fn with<R>(&self, f: impl FnOnce(&mut Vec<Weak<dyn ForkHandoff>>) -> R) -> R {
        self.lock();
        // SAFETY: the lock is held (see `Sync` above); the reference does not outlive `f`.
        let r = f(unsafe { &mut *self.list.get() });
        self.unlock();
        r
    }
}

/// What an attachment does at each step of a `fork()` (the reader's `Attachment` implements it): the registry
/// below holds attachments by this trait, so this file needs nothing from the reader's.
pub(crate) trait ForkHandoff: Send + Sync {
    /// *prepare*: register an entry in this process's name holding the leases its frames hold, for the child.
    fn prepare_handoff(&self, me: ProcessIdentity, pidns: u64);
    /// *parent*: the entry now belongs to the child.
    fn forget_handoff(&self);
    /// *child*: take over the entry registered for us.
    fn complete_handoff(&self, me: ProcessIdentity);
}

/// Record `att` so that a later `fork()` hands its frames' leases to the child.
pub(crate) fn register(att: &Arc<impl ForkHandoff + 'static>) {
    install();
    REGISTRY.with(|list| {
        list.retain(|w| w.strong_count() > 0);
        let weak: Weak<dyn ForkHandoff> = Arc::downgrade(att) as Weak<dyn ForkHandoff>;
        list.push(weak);
    });
}

fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: the three handlers are `extern "C" fn()` items that live for the whole program; pthread_atfork only
        // stores them. A failure (ENOMEM) leaves fork without the handoff, which is the old behaviour.
        let _ = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    });
}

extern "C" fn prepare() {
    // Catch any panic: unwinding out of an `extern "C"` handler would abort the program inside fork().
    let _ = std::panic::catch_unwind(|| {
        GATE.fetch_or(FORKING, Ordering::AcqRel);
        while GATE.load(Ordering::Acquire) & !FORKING != 0 {
            std::hint::spin_loop();
        }
        REGISTRY.lock();
        // SAFETY: the lock is held until `parent` or `child` releases it.
        let list = unsafe { &*REGISTRY.list.get() };
        let me = ProcessIdentity::current();
        let ns = pid_namespace();
        for att in list.iter().filter_map(Weak::upgrade) {
            att.prepare_handoff(me, ns);
        }
    });
}

extern "C" fn parent() {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: `prepare` took the lock for us.
        let list = unsafe { &*REGISTRY.list.get() };
        for att in list.iter().filter_map(Weak::upgrade) {
            att.forget_handoff();
        }
        REGISTRY.unlock();
        GATE.fetch_and(!FORKING, Ordering::AcqRel);
    });
}

extern "C" fn child() {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: `prepare` took the lock before the fork; the child has its own copy of it, held.
        let list = unsafe { &*REGISTRY.list.get() };
        let me = ProcessIdentity::current();
        for att in list.iter().filter_map(Weak::upgrade) {
            att.complete_handoff(me);
        }
        REGISTRY.unlock();
        // No lease acquisition was in flight at the fork (prepare waited for them): only the bit is left.
        GATE.store(0, Ordering::Release);
    });
}

/// What can be told about a reader entry's owner, the way the reclaimer judges it: its liveness (another PID
/// namespace is unknown), and an [`ENTRY_INHERITED`] owner that no longer maps the segment counts as dead.
pub(crate) fn owner_liveness(owner: &EntryOwner, file: Option<FileId>) -> Liveness {
    match owner.identity.liveness(owner.pidns) {
        Liveness::Alive if !still_maps(owner, file) => Liveness::Dead,
        other => other,
    }
}

/// For a reclaimer: whether the owner of an [`ENTRY_INHERITED`] entry still maps the segment `file` (it has not
/// called `exec`). Reads `/proc/<pid>/maps`; when that cannot be read, says yes (keep the entry).
pub(crate) fn still_maps(owner: &EntryOwner, file: Option<FileId>) -> bool {
    if owner.flags & ENTRY_INHERITED == 0 {
        return true;
    }
    let Some(file) = file else { return true };
    let Ok(maps) = std::fs::read_to_string(format!("/proc/{}/maps", owner.identity.pid)) else {
        return true;
    };
    let dev = format!(
        "{:02x}:{:02x}",
        rustix::fs::major(file.dev),
        rustix::fs::minor(file.dev)
    );
    let ino = file.ino.to_string();
    maps.lines().any(|line| {
        let mut fields = line.split_ascii_whitespace().skip(3);
        fields.next() == Some(dev.as_str()) && fields.next() == Some(ino.as_str())
    })
}
