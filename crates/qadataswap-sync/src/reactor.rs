//! Wake async tasks when a shared sequence word moves: one thread per process, for any number of pending waits.
//!
//! An async read cannot block its executor's thread on a futex. Instead it registers "wake me when this
//! [`Notifier`]'s word no longer holds `expected`" here and returns `Pending`. The process's one reactor thread
//! sleeps in `futex_waitv(2)` on every registered word at once (plus a private control word that registrations
//! bump), and wakes each task whose word moved. It is counted as a parked waiter on each word it watches, so
//! publishers wake it exactly as they wake a blocked reader, and it never spins.
//!
//! Each registration is one-shot: the task is woken once (its word moved, or [`SLICE`] passed, so that it can
//! re-check its deadline and whether the writer is still alive) and registers again if it still has to wait.
//! Dropping the [`Registration`] (a cancelled future) withdraws it.
//!
//! Limits: `futex_waitv` takes at most 128 words; the control word takes one, so registrations beyond the first
//! 127 are not watched by the kernel and are woken every [`SLICE`] instead (still correct, at most that late). A
//! process that forks gets a fresh reactor in the child on its first registration.

use std::any::Any;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Duration;

use rustix::thread::futex;
use rustix::time::{ClockId, Timespec};

use crate::notify::Notifier;

/// The longest a registered task waits before it is woken to re-check its deadline and its writer.
pub const SLICE: Duration = Duration::from_millis(100);

/// `futex_waitv`'s limit on the number of words in one call.
const MAX_WORDS: usize = 128;

/// Something that keeps the watched words' memory mapped (the segment) for as long as the registration lives.
type Keep = Arc<dyn Any + Send + Sync>;

struct Entry {
    id: u64,
    /// Keeps `word` and `waiters` valid: both point into memory this owner holds mapped.
    keep: Keep,
    word: *const AtomicU32,
    waiters: *const AtomicU32,
    expected: u32,
    waker: Waker,
}

// SAFETY: the raw pointers are only read through atomics, and they point into memory that `keep` (which is
// `Send + Sync`) keeps alive and unmoved for as long as the entry exists.
unsafe impl Send for Entry {}

impl Entry {
    fn word(&self) -> &AtomicU32 {
        // SAFETY: `word` points into the allocation or mapping that `self.keep` owns (see `register`): it stays
        // valid and is never moved while `self` (and thus `keep`) lives. Only atomic access is made.
        unsafe { &*self.word }
    }

    fn waiters(&self) -> &AtomicU32 {
        // SAFETY: as `word`.
        unsafe { &*self.waiters }
    }

    /// Stop counting the reactor as a parked waiter on this word (the entry leaves the list).
    fn leave(self) -> Waker {
        self.waiters().fetch_sub(1, Ordering::Release);
        self.waker
    }
}

struct Reactor {
    pid: u32,
    entries: Mutex<Vec<Entry>>,
    /// Bumped (and woken) by every registration, so that a sleeping reactor re-reads the list.
    control: AtomicU32,
    next_id: AtomicU64,
}

impl Reactor {
    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        // A panic while the list is held leaves it consistent (every change is one push or one swap_remove).
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn kick(&self) {
        self.control.fetch_add(1, Ordering::Release);
        // A private futex: the control word lives in this process only.
        let _ = futex::wake(&self.control, futex::Flags::PRIVATE, 1);
    }

    /// The reactor thread: sleep on every watched word, wake whoever's word moved, re-arm.
    fn run(&'static self) {
        let mut waits: Vec<futex::Wait> = Vec::with_capacity(MAX_WORDS);
        let mut keep: Vec<Keep> = Vec::with_capacity(MAX_WORDS);
        // When every registered task is next woken to re-check (a fixed point in time, so that registrations
        // arriving meanwhile do not push it back).
        let mut slice_end: Option<Timespec> = None;
        loop {
            waits.clear();
            let control = self.control.load(Ordering::Acquire);
            let mut w = futex::Wait::new();
            w.val = u64::from(control);
            w.uaddr = futex::WaitPtr::new(self.control.as_ptr().cast());
            w.flags = futex::WaitFlags::SIZE_U32 | futex::WaitFlags::PRIVATE;
            waits.push(w);
            {
                let entries = self.lock();
                for e in entries.iter().take(MAX_WORDS - 1) {
                    let mut w = futex::Wait::new();
                    w.val = u64::from(e.expected);
                    w.uaddr = futex::WaitPtr::new(e.word.cast_mut().cast());
                    // Shared (not PRIVATE): the word is in a MAP_SHARED mapping that other processes wake.
                    w.flags = futex::WaitFlags::SIZE_U32;
                    waits.push(w);
                    // The kernel reads these addresses during the call, after the lock is gone: keep them mapped
                    // until it returns even if the registration is withdrawn meanwhile.
                    keep.push(Arc::clone(&e.keep));
                }
                if entries.is_empty() {
                    slice_end = None;
                } else if slice_end.is_none() {
                    slice_end = Some(after(now(), SLICE));
                }
            }
            let outcome = futex::waitv(
                &waits,
                futex::WaitvFlags::empty(),
                slice_end.as_ref(),
                ClockId::Monotonic,
            );
            match outcome {
                Ok(_)
                | Err(
                    rustix::io::Errno::AGAIN
                    | rustix::io::Errno::TIMEDOUT
                    | rustix::io::Errno::INTR,
                ) => {}
                Err(_) => {
                    // A kernel without futex_waitv (before 5.16), or a refused call: fall back to waking every task
                    // each slice (they re-check, so this is only later, never wrong). Sleep on the control word,
                    // which registrations still bump.
                    let _ = futex::wait(
                        &self.control,
                        futex::Flags::PRIVATE,
                        control,
                        Some(&ts(SLICE)),
                    );
                    slice_end = Some(now());
                }
            }
            let slice_over = slice_end.is_some_and(|end| reached(now(), end));
            if slice_over {
                slice_end = None;
            }
            let mut woken = Vec::new();
            {
                let mut entries = self.lock();
                let mut i = 0;
                while i < entries.len() {
                    let e = &entries[i];
                    if slice_over || e.word().load(Ordering::Acquire) != e.expected {
                        woken.push(entries.swap_remove(i).leave());
                    } else {
                        i += 1;
                    }
                }
            }
            keep.clear();
            for waker in woken {
                waker.wake();
            }
        }
    }
}

fn now() -> Timespec {
    rustix::time::clock_gettime(ClockId::Monotonic)
}

fn ts(d: Duration) -> Timespec {
    Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

/// `t + d` (CLOCK_MONOTONIC; futex_waitv's timeouts are absolute).
fn after(t: Timespec, d: Duration) -> Timespec {
    let nanos = t.tv_nsec + i64::from(d.subsec_nanos());
    Timespec {
        tv_sec: t.tv_sec + i64::try_from(d.as_secs()).unwrap_or(0) + nanos / 1_000_000_000,
        tv_nsec: nanos % 1_000_000_000,
    }
}

fn reached(now: Timespec, end: Timespec) -> bool {
    (now.tv_sec, now.tv_nsec) >= (end.tv_sec, end.tv_nsec)
}

/// This process's reactor, if it has one (a forked child's parent's does not count).
fn current(pid: u32) -> Option<&'static Reactor> {
    static_current().filter(|r| r.pid == pid)
}

static CURRENT: AtomicPtr<Reactor> = AtomicPtr::new(std::ptr::null_mut());

fn static_current() -> Option<&'static Reactor> {
    let p = CURRENT.load(Ordering::Acquire);
    // SAFETY: a non-null CURRENT was made from `Box::leak` in `reactor` and is never freed.
    unsafe { p.as_ref() }
}

/// This process's reactor, started on first use (and again in a forked child, whose parent's thread is gone).
fn reactor() -> Result<&'static Reactor, std::io::Error> {
    static START: Mutex<()> = Mutex::new(());
    let pid = std::process::id();
    if let Some(r) = current(pid) {
        return Ok(r);
    }
    // One starter at a time. A fork can leave START held by a thread that does not exist in the child: after a
    // second of finding it held (and no reactor appearing), go on without it.
    let since = std::time::Instant::now();
    let _guard = loop {
        match START.try_lock() {
            Ok(g) => break Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => break Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => {
                if let Some(r) = current(pid) {
                    return Ok(r);
                }
                if since.elapsed() > Duration::from_secs(1) {
                    break None;
                }
                std::thread::yield_now();
            }
        }
    };
    if let Some(r) = current(pid) {
        return Ok(r);
    }
    // Leaked on purpose: the thread runs for the life of the process, and a parent's reactor inherited by a fork
    // may hold a lock that nobody will release, so it is never touched again.
    let r: &'static Reactor = Box::leak(Box::new(Reactor {
        pid,
        entries: Mutex::new(Vec::new()),
        control: AtomicU32::new(0),
        next_id: AtomicU64::new(1),
    }));
    std::thread::Builder::new()
        .name("qadataswap-reactor".into())
        .spawn(move || r.run())?;
    CURRENT.store(std::ptr::from_ref(r).cast_mut(), Ordering::Release);
    Ok(r)
}

/// A pending "wake me when the word moves" (see the module's doc). Dropping it withdraws it.
#[must_use = "dropping the registration withdraws it"]
pub struct Registration {
    reactor: &'static Reactor,
    id: u64,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("id", &self.id)
            .finish()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut entries = self.reactor.lock();
        if let Some(i) = entries.iter().position(|e| e.id == self.id) {
            let waker = entries.swap_remove(i).leave();
            drop(entries);
            drop(waker);
        }
    }
}

/// Wake `waker` once the notifier that `words` finds in `owner` no longer holds `expected` as its sequence, or
/// after at most [`SLICE`]. The reactor counts itself as a parked waiter on the word meanwhile, so the publisher's
/// [`Notifier::notify`] wakes it.
///
/// Read `expected` with [`Notifier::sequence`] *before* the last check for whatever the task waits for: a publish
/// after that read then wakes the task however the two race (the kernel compares the word with `expected`
/// atomically with going to sleep).
///
/// # Errors
/// The reactor thread could not be started (first use in this process only).
pub fn wake_on_change<T: Send + Sync + 'static>(
    owner: &Arc<T>,
    words: fn(&T) -> Notifier<'_>,
    expected: u32,
    waker: &Waker,
) -> Result<Registration, std::io::Error> {
    let reactor = reactor()?;
    let notifier = words(owner);
    let (word, waiters) = notifier.words();
    let keep: Keep = Arc::clone(owner) as Keep;
    let id = reactor.next_id.fetch_add(1, Ordering::Relaxed);
    // Counted before the reactor re-reads the word (the kernel's compare in futex_waitv): the same store-then-load
    // handshake as a blocking waiter's (`Notifier::wait_until`).
    waiters.fetch_add(1, Ordering::Relaxed);
    crate::primitive::fence(Ordering::SeqCst);
    reactor.lock().push(Entry {
        id,
        keep,
        word: std::ptr::from_ref(word),
        waiters: std::ptr::from_ref(waiters),
        expected,
        waker: waker.clone(),
    });
    reactor.kick();
    Ok(Registration { reactor, id })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::task::Wake;
    use std::time::Instant;

    struct Words {
        word: AtomicU32,
        waiters: AtomicU32,
    }

    /// A sequence word holding `seq`, nobody waiting.
    fn words(seq: u32) -> Arc<Words> {
        Arc::new(Words {
            word: AtomicU32::new(seq),
            waiters: AtomicU32::new(0),
        })
    }

    fn notifier(w: &Words) -> Notifier<'_> {
        Notifier::new(&w.word, &w.waiters)
    }

    struct Flag(AtomicBool, std::thread::Thread);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::Release);
            self.1.unpark();
        }
    }

    fn flag() -> (Arc<Flag>, Waker) {
        let f = Arc::new(Flag(AtomicBool::new(false), std::thread::current()));
        (Arc::clone(&f), Waker::from(f))
    }

    fn wait_for(f: &Flag) {
        let deadline = Instant::now() + Duration::from_secs(30); // watchdog only
        while !f.0.load(Ordering::Acquire) {
            assert!(Instant::now() < deadline, "never woken");
            std::thread::park_timeout(Duration::from_secs(1));
        }
    }

    #[test]
    fn a_notify_wakes_the_registered_task_and_the_reactor_stops_counting_itself() {
        let w = words(7);
        let (f, waker) = flag();
        let reg = wake_on_change(&w, notifier, 7, &waker).unwrap();
        assert_eq!(
            w.waiters.load(Ordering::Acquire),
            1,
            "counted as parked, so notify makes the system call"
        );
        notifier(&w).notify();
        wait_for(&f);
        assert_eq!(w.waiters.load(Ordering::Acquire), 0);
        drop(reg);
        assert_eq!(
            w.waiters.load(Ordering::Acquire),
            0,
            "a fired registration is not counted twice"
        );
    }

    #[test]
    fn a_word_that_moved_before_registering_wakes_at_once() {
        let w = words(8);
        let (f, waker) = flag();
        let _reg = wake_on_change(&w, notifier, 7, &waker).unwrap();
        wait_for(&f);
    }

    #[test]
    fn a_withdrawn_registration_is_never_woken_and_uncounts_itself() {
        let w = words(1);
        let (f, waker) = flag();
        let reg = wake_on_change(&w, notifier, 1, &waker).unwrap();
        drop(reg);
        assert_eq!(w.waiters.load(Ordering::Acquire), 0);
        notifier(&w).notify();
        // A later registration on another word fires: the withdrawn one still has not.
        let w2 = words(5);
        let (f2, waker2) = flag();
        let _r2 = wake_on_change(&w2, notifier, 4, &waker2).unwrap();
        wait_for(&f2);
        assert!(!f.0.load(Ordering::Acquire));
    }

    #[test]
    fn without_a_publish_the_task_is_woken_after_one_slice_to_recheck() {
        let w = words(3);
        let (f, waker) = flag();
        let _reg = wake_on_change(&w, notifier, 3, &waker).unwrap();
        wait_for(&f);
        assert_eq!(
            w.word.load(Ordering::Acquire),
            3,
            "nothing was published: this was the slice"
        );
    }

    #[test]
    fn two_hundred_registrations_on_one_reactor_thread_all_fire() {
        let words: Vec<Arc<Words>> = (0..200).map(|_| words(0)).collect();
        let flags: Vec<(Arc<Flag>, Registration)> = words
            .iter()
            .map(|w| {
                let (f, waker) = flag();
                (f, wake_on_change(w, notifier, 0, &waker).unwrap())
            })
            .collect();
        for w in &words {
            notifier(w).notify();
        }
        for (f, _) in &flags {
            wait_for(f);
        }
    }
}
