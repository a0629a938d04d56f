//! Spin-then-park waiting on a shared 32-bit sequence word, with a waiter count so that a
//! publisher makes no system call while nobody sleeps.
//!
//! Both words live in shared memory; a [`Notifier`] is only a pair of references to them.
//! Readers spin first (a wake-up by futex costs ~25 µs across vCPUs, spinning on a shared
//! atomic 0.03-0.5 µs), then park on the futex in slices of at most [`MAX_SLICE`] so the
//! caller's `poll` can check writer liveness or Ctrl-C.

use std::time::{Duration, Instant};

use crate::park;
use crate::primitive::{fence, spin_loop, AtomicU32, Ordering};

/// The longest single futex sleep; a parked waiter re-runs its `poll` at least this often.
pub const MAX_SLICE: Duration = Duration::from_millis(100);

/// Growing-spin steps after the spin budget, before parking (crossbeam's `Backoff::spin` doubles its spins up to
/// step 6: 1 + 2 + ... + 64 pause instructions).
#[cfg(not(qadataswap_loom))]
const SPIN_BACKOFF_STEPS: u32 = 7;

/// How many times a waiter polls in a tight spin before parking. `SpinBudget(0)` parks at once.
///
/// After a non-zero budget the waiter also runs a short `crossbeam_utils::Backoff` phase
/// (a few growing spins, then a few `yield_now`) before it parks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpinBudget(pub u32);

impl SpinBudget {
    /// Park at once (after one poll): no CPU burnt, ~futex latency.
    pub const PARK_AT_ONCE: SpinBudget = SpinBudget(0);
    /// The default: ~25 µs of spinning (~25 ns per poll), the cost of a futex sleep + wake-up
    /// under load on the benchmark VM. Much shorter budgets let a ping-pong fall into a
    /// self-sustaining "both sides parked" mode (each side's wait then exceeds the budget).
    pub const DEFAULT: SpinBudget = SpinBudget(1000);
}

impl Default for SpinBudget {
    fn default() -> Self {
        SpinBudget::DEFAULT
    }
}

/// Options of [`Notifier::wait_until`].
#[derive(Clone, Debug)]
pub struct WaitOptions {
    /// Spin iterations before parking.
    pub spin: SpinBudget,
    /// Give up at this instant (`None` = wait forever, still in slices).
    pub deadline: Option<Instant>,
    /// Longest single sleep between two polls while parked; clamped to `1 µs ..= MAX_SLICE`.
    pub slice: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            spin: SpinBudget::DEFAULT,
            deadline: None,
            slice: MAX_SLICE,
        }
    }
}

impl WaitOptions {
    /// Default options that give up after `timeout` from now.
    pub fn timeout(timeout: Duration) -> Self {
        WaitOptions {
            deadline: Instant::now().checked_add(timeout),
            ..WaitOptions::default()
        }
    }

    /// The same options with another spin budget.
    pub fn with_spin(mut self, spin: SpinBudget) -> Self {
        self.spin = spin;
        self
    }

    /// The same options with another deadline.
    pub fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// The same options with another slice.
    pub fn with_slice(mut self, slice: Duration) -> Self {
        self.slice = slice;
        self
    }
}

/// Why [`Notifier::wait_until`] returned without a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError<E> {
    /// The deadline passed before `poll` reported ready.
    #[error(
        "timed out after {waited:?} waiting for a publish: the writer may be slow or gone; \
         retry with a longer timeout or check that the writer is running"
    )]
    TimedOut {
        /// How long the call waited in total.
        waited: Duration,
    },
    /// `poll` returned an error (writer dead, signal pending, ...); it is passed through.
    #[error("the wait was aborted by its poll check: {0}")]
    Aborted(#[source] E),
}

/// Spin-then-park waiting and waking over two words in shared memory: a sequence `word` that
/// [`notify`](Notifier::notify) bumps and futex waiters sleep on, and a `waiters` count that
/// lets `notify` skip the system call when nobody sleeps.
///
/// `Notifier` is `Send + Sync + Copy`: it only borrows the two atomics.
#[derive(Clone, Copy, Debug)]
pub struct Notifier<'a> {
    word: &'a AtomicU32,
    waiters: &'a AtomicU32,
}

/// Decrements the waiter count however the parked section is left (including a panic in `poll`).
struct Parked<'a>(&'a AtomicU32);

impl<'a> Parked<'a> {
    fn enter(waiters: &'a AtomicU32) -> Self {
        waiters.fetch_add(1, Ordering::Relaxed);
        // Store-then-load handshake with `notify` (bump, fence, load waiters): either the
        // notifier sees us counted, or our next poll sees its publish.
        fence(Ordering::SeqCst);
        Parked(waiters)
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

impl<'a> Notifier<'a> {
    /// Borrows the sequence word and the waiter count (both normally in shared memory).
    pub fn new(word: &'a AtomicU32, waiters: &'a AtomicU32) -> Self {
        Notifier { word, waiters }
    }

    /// The two words (the sequence word and the waiter count), for the reactor.
    #[cfg(not(qadataswap_loom))]
    pub(crate) fn words(&self) -> (&'a AtomicU32, &'a AtomicU32) {
        (self.word, self.waiters)
    }

    /// The current value of the sequence word.
    pub fn sequence(&self) -> u32 {
        self.word.load(Ordering::Acquire)
    }

    /// How many waiters are currently registered as (about to be) parked.
    ///
    /// A waiter killed while parked stays counted; that only costs publishers a needless
    /// (cheap) wake call, never a missed wake-up.
    pub fn waiting(&self) -> u32 {
        self.waiters.load(Ordering::Acquire)
    }

    /// Bumps the word and, only if some waiter is parked, wakes them all.
    ///
    /// Publish the data first: whatever `poll` of a waiter checks must be stored before this
    /// call. No system call is made when the waiter count is zero.
    pub fn notify(&self) {
        self.word.fetch_add(1, Ordering::Release);
        // Pairs with the fence in `Parked::enter` (loom treats SeqCst RMWs as AcqRel, and so
        // does the real memory model for this store-then-load pattern: the fence is needed).
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) > 0 {
            park::wake(self.word, u32::MAX);
        }
    }

    /// For a publisher that skips wake-ups on purpose (hysteresis): after its data is published,
    /// a sequentially consistent fence, then [`notify`](Self::notify) only if some waiter is
    /// parked *and* `due()` says the wake-up is worth a system call and a context switch now.
    /// Returns whether it notified.
    ///
    /// The fence pairs with the one in the waiter's registration (store-then-load both ways):
    /// either this call sees the waiter counted, or the waiter's next `poll` sees the published
    /// data. A skipped wake-up (`due()` false) is therefore never lost by a race, only deferred
    /// on purpose: the protocol built on this must guarantee that whoever comes to need the
    /// waiter wakes it later (see [`Notifier::wait_until_then`]'s `before_sleep`). The waiter's
    /// slices bound the delay in any case.
    pub fn notify_parked_if(&self, due: impl FnOnce() -> bool) -> bool {
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) > 0 && due() {
            self.notify();
            true
        } else {
            false
        }
    }

    /// Waits until `poll` returns `Ok(Some(t))`, `Err(e)`, or the deadline passes.
    ///
    /// `poll` runs first, on every spin iteration, after every wake-up and at least every
    /// `opts.slice` while parked, so it can also check writer liveness or pending signals
    /// (return `Err` to stop waiting).
    ///
    /// # Errors
    ///
    /// [`WaitError::TimedOut`] when `opts.deadline` passes, [`WaitError::Aborted`] with the
    /// error `poll` returned.
    pub fn wait_until<T, E>(
        &self,
        opts: &WaitOptions,
        poll: impl FnMut() -> Result<Option<T>, E>,
    ) -> Result<T, WaitError<E>> {
        self.wait_until_then(opts, poll, || {})
    }

    /// [`Notifier::wait_until`], running `before_sleep` each time the waiter is about to sleep on
    /// the futex: after it is counted as parked (and the fence) and `poll` found nothing, just
    /// before the system call. A waiter that others skip waking on purpose
    /// ([`Notifier::notify_parked_if`]) uses it to wake *them* first when it comes to need
    /// them, so that two parties never sleep on each other.
    ///
    /// # Errors
    ///
    /// As [`Notifier::wait_until`].
    pub fn wait_until_then<T, E>(
        &self,
        opts: &WaitOptions,
        mut poll: impl FnMut() -> Result<Option<T>, E>,
        mut before_sleep: impl FnMut(),
    ) -> Result<T, WaitError<E>> {
        // The clock is read only when there is a deadline (keeps the loom models deterministic).
        let start = opts.deadline.map(|_| Instant::now());
        let timed_out = |now: Instant| WaitError::TimedOut {
            waited: start.map_or(Duration::ZERO, |s| now.saturating_duration_since(s)),
        };
        if let Some(t) = poll().map_err(WaitError::Aborted)? {
            return Ok(t);
        }

        if opts.spin.0 > 0 {
            for i in 0..opts.spin.0 {
                spin_loop();
                if let Some(t) = poll().map_err(WaitError::Aborted)? {
                    return Ok(t);
                }
                if i % 1024 == 1023 {
                    if let Some(deadline) = opts.deadline {
                        let now = Instant::now();
                        if now >= deadline {
                            return Err(timed_out(now));
                        }
                    }
                }
            }
            // Then a few growing spins (~130 pause instructions in all), but no `sched_yield`: measured on this
            // project's 2-vCPU VM, a waiter that yielded before parking was woken 13 µs after the publish instead
            // of 3 µs (tail 3.6 ms when the waker kept its core), and a yield on a loaded machine hands the core
            // away for a whole time slice. The stream throughput bench showed no difference either way.
            #[cfg(not(qadataswap_loom))]
            {
                let backoff = crossbeam_utils::Backoff::new();
                for _ in 0..SPIN_BACKOFF_STEPS {
                    backoff.spin();
                    if let Some(t) = poll().map_err(WaitError::Aborted)? {
                        return Ok(t);
                    }
                }
            }
        }

        let slice = opts.slice.clamp(Duration::from_micros(1), MAX_SLICE);
        loop {
            let seen = self.word.load(Ordering::Acquire);
            let parked = Parked::enter(self.waiters);
            if let Some(t) = poll().map_err(WaitError::Aborted)? {
                return Ok(t);
            }
            let sleep = match opts.deadline {
                None => slice,
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(timed_out(now));
                    }
                    (deadline - now).min(slice)
                }
            };
            before_sleep();
            // Every outcome (woken, value changed, slice over, EINTR) leads back to `poll`.
            let _ = park::wait(self.word, seen, Some(sleep));
            drop(parked);
        }
    }
}

#[cfg(all(test, not(qadataswap_loom)))]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[test]
    fn notify_with_nobody_waiting_only_bumps_the_word() {
        let (w, n) = (AtomicU32::new(0), AtomicU32::new(0));
        let notifier = Notifier::new(&w, &n);
        notifier.notify();
        notifier.notify();
        assert_eq!(notifier.sequence(), 2);
        assert_eq!(notifier.waiting(), 0);
    }

    #[test]
    fn wait_that_nobody_publishes_times_out_and_says_so() {
        let (w, n) = (AtomicU32::new(0), AtomicU32::new(0));
        let notifier = Notifier::new(&w, &n);
        let opts =
            WaitOptions::timeout(Duration::from_millis(30)).with_slice(Duration::from_millis(5));
        let err = notifier
            .wait_until(&opts, || Ok::<Option<()>, Infallible>(None))
            .unwrap_err();
        match &err {
            WaitError::TimedOut { waited } => assert!(*waited >= Duration::from_millis(30)),
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(err.to_string().contains("timed out"));
        assert_eq!(notifier.waiting(), 0, "the waiter count is restored");
    }

    #[test]
    fn a_poll_error_aborts_the_wait_and_is_passed_through() {
        let (w, n) = (AtomicU32::new(0), AtomicU32::new(0));
        let notifier = Notifier::new(&w, &n);
        let mut calls = 0;
        let err = notifier
            .wait_until(&WaitOptions::default().with_spin(SpinBudget(0)), || {
                calls += 1;
                if calls == 3 {
                    Err("writer died")
                } else {
                    Ok(None::<()>)
                }
            })
            .unwrap_err();
        assert!(matches!(err, WaitError::Aborted("writer died")));
        assert_eq!(n.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn parked_thread_is_woken_by_notify() {
        for spin in [SpinBudget(0), SpinBudget::DEFAULT] {
            let shared = Arc::new((AtomicU32::new(0), AtomicU32::new(0), AtomicBool::new(false)));
            let s2 = Arc::clone(&shared);
            let waiter = std::thread::spawn(move || {
                let notifier = Notifier::new(&s2.0, &s2.1);
                let opts = WaitOptions::timeout(Duration::from_secs(20)).with_spin(spin);
                notifier.wait_until(&opts, || {
                    Ok::<_, Infallible>(s2.2.load(Ordering::Acquire).then_some(()))
                })
            });
            let notifier = Notifier::new(&shared.0, &shared.1);
            let watchdog = Instant::now() + Duration::from_secs(10);
            while notifier.waiting() == 0 && Instant::now() < watchdog {
                std::thread::yield_now();
            }
            shared.2.store(true, Ordering::Release);
            notifier.notify();
            assert!(waiter.join().unwrap().is_ok());
        }
    }
}
