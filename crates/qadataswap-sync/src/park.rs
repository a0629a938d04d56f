//! The futex the waiter parks on: the real one, or under loom a model of it.
//!
//! The model is one mutex and condition variable for every word. `wait` re-checks the word
//! under the lock and `wake` takes the same lock, which is exactly the atomicity a futex gives
//! (its hash-bucket lock). Timeouts are ignored in the model, so a lost wake-up shows up as a
//! deadlock that loom reports instead of being papered over by the next slice.

#[cfg(not(qadataswap_loom))]
pub(crate) use crate::futex::{wait, wake};

#[cfg(qadataswap_loom)]
pub(crate) use model::{wait, wake};

#[cfg(qadataswap_loom)]
mod model {
    use crate::primitive::{AtomicU32, Ordering};
    use loom::sync::{Condvar, Mutex};
    use std::time::Duration;

    /// Same meaning as `futex::WaitOutcome` (that module is not built under loom).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum WaitOutcome {
        Woken,
        ValueChanged,
    }

    loom::lazy_static! {
        static ref PARKING: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());
    }

    pub(crate) fn wait(word: &AtomicU32, expected: u32, _timeout: Option<Duration>) -> WaitOutcome {
        let (lock, cv) = &*PARKING;
        let guard = lock.lock().unwrap();
        if word.load(Ordering::Relaxed) != expected {
            return WaitOutcome::ValueChanged;
        }
        drop(cv.wait(guard).unwrap());
        WaitOutcome::Woken
    }

    pub(crate) fn wake(_word: &AtomicU32, _count: u32) -> usize {
        let (lock, cv) = &*PARKING;
        let _guard = lock.lock().unwrap();
        cv.notify_all();
        1
    }
}
