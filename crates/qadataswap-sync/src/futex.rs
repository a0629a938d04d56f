//! Shared (cross-process) futex wait and wake on a 32-bit word.
//!
//! The futexes are *shared* (`Flags::empty()`, not `PRIVATE`), so the word may live in a
//! `MAP_SHARED` mapping that other processes wait on or wake. Not compiled under loom: the
//! models stand it in with a mutex and condition variable (see `park`).

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::io::Errno;
use rustix::thread::futex;

/// How a [`wait`] ended. Every outcome other than `TimedOut` means "re-check the word".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitOutcome {
    /// A `wake` arrived (or a spurious wake-up: futexes allow them).
    Woken,
    /// The word no longer held `expected` when the kernel looked (`EAGAIN`): nothing to wait for.
    ValueChanged,
    /// The timeout elapsed with no wake.
    TimedOut,
    /// A signal interrupted the wait (`EINTR`), or the kernel refused the call; re-check and retry.
    Interrupted,
}

/// Sleeps while `*word == expected`, at most `timeout` (`None` = no limit).
///
/// Returns at once with [`WaitOutcome::ValueChanged`] if the word already differs. The
/// comparison and the sleep are atomic with respect to [`wake`], which is what makes the
/// "check, then sleep" of a waiter safe against a publisher that changes the word and wakes
/// in between.
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> WaitOutcome {
    let ts = timeout.map(|d| futex::Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: d.subsec_nanos().into(),
    });
    match futex::wait(word, futex::Flags::empty(), expected, ts.as_ref()) {
        Ok(()) => WaitOutcome::Woken,
        Err(Errno::AGAIN) => WaitOutcome::ValueChanged,
        Err(Errno::TIMEDOUT) => WaitOutcome::TimedOut,
        // EINTR, and anything unexpected (ENOSYS on an odd kernel): the caller re-checks.
        Err(_) => WaitOutcome::Interrupted,
    }
}

/// Wakes up to `count` waiters on `word` (`u32::MAX` = all). Returns how many were woken.
///
/// The kernel reads the count as a signed int, so counts above `i32::MAX` are clamped
/// (`-1` would wake only one).
pub fn wake(word: &AtomicU32, count: u32) -> usize {
    let count = count.min(i32::MAX as u32);
    futex::wake(word, futex::Flags::empty(), count).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_on_a_changed_value_returns_at_once() {
        let w = AtomicU32::new(5);
        assert_eq!(
            wait(&w, 4, Some(Duration::from_secs(5))),
            WaitOutcome::ValueChanged
        );
    }

    #[test]
    fn wait_with_a_timeout_and_no_wake_says_it_timed_out() {
        let w = AtomicU32::new(5);
        assert_eq!(
            wait(&w, 5, Some(Duration::from_millis(10))),
            WaitOutcome::TimedOut
        );
    }

    #[test]
    fn wake_with_nobody_waiting_wakes_nobody() {
        let w = AtomicU32::new(0);
        assert_eq!(wake(&w, u32::MAX), 0);
    }
}
