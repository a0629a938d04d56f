//! The handle the C and Python bindings keep each reader and writer in: a value behind a lock that can be closed
//! (taken out) while other threads still hold the handle, and that says so afterwards.
//!
//! ```
//! use qadataswap_handle::{Closable, Closed};
//!
//! # fn main() -> Result<(), Closed> {
//! let counter = Closable::new("counter", 0u64);
//! counter.with_mut(|n| *n += 1)?;
//! assert_eq!(counter.with(|n| *n)?, 1);
//!
//! assert_eq!(counter.close(), Some(1)); // the caller finishes the value (a writer's clean close, say)
//! assert!(counter.is_closed());
//! assert!(matches!(counter.with(|n| *n), Err(Closed { what: "counter", .. })));
//! # Ok(())
//! # }
//! ```
//!
//! A panic while a handle is used poisons its lock; the bindings catch the panic at their boundary and the handle
//! stays usable: a poisoned lock is taken over as it is. The value was left by code that panicked between two of
//! its own steps, which the value's own checks (the segment's protocol) already have to survive, since a process
//! can die at the same point.
//!
//! [`Closed`] is all a binding has to turn into its own error (a C status code and message, a Python exception).
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::{LockResult, Mutex, RwLock};

/// A use of a handle after it was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Closed {
    /// What the handle holds, as given to [`Closable::new`] ("writer", "stream reader", ...).
    pub what: &'static str,
}

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "this {} was closed; open a new one", self.what)
    }
}

impl std::error::Error for Closed {}

/// The guard of a lock, poisoned or not.
fn recover<G>(r: LockResult<G>) -> G {
    r.unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A value used by one caller at a time until it is closed.
#[derive(Debug)]
pub struct Closable<T> {
    what: &'static str,
    value: Mutex<Option<T>>,
}

impl<T> Closable<T> {
    /// An open handle holding `value`; `what` names it in [`Closed`].
    pub fn new(what: &'static str, value: T) -> Closable<T> {
        Closable {
            what,
            value: Mutex::new(Some(value)),
        }
    }

    /// Runs `f` on the value, holding the lock for the call.
    ///
    /// # Errors
    /// [`Closed`] once [`close`](Self::close) took the value (`f` is not run).
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> Result<R, Closed> {
        let guard = recover(self.value.lock());
        guard.as_ref().map(f).ok_or(Closed { what: self.what })
    }

    /// Runs `f` on the value mutably, holding the lock for the call.
    ///
    /// # Errors
    /// [`Closed`] once [`close`](Self::close) took the value (`f` is not run).
    pub fn with_mut<R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R, Closed> {
        let mut guard = recover(self.value.lock());
        guard.as_mut().map(f).ok_or(Closed { what: self.what })
    }

    /// Takes the value out (waiting for a call in progress), leaving the handle closed: `None` if it already was.
    /// The caller finishes the value: drops it, or calls its own clean close to see that close's errors.
    pub fn close(&self) -> Option<T> {
        recover(self.value.lock()).take()
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        recover(self.value.lock()).is_none()
    }
}

/// A value used by many callers at once (shared access) until it is closed; closing waits for them.
#[derive(Debug)]
pub struct RwClosable<T> {
    what: &'static str,
    value: RwLock<Option<T>>,
}

impl<T> RwClosable<T> {
    /// An open handle holding `value`; `what` names it in [`Closed`].
    pub fn new(what: &'static str, value: T) -> RwClosable<T> {
        RwClosable {
            what,
            value: RwLock::new(Some(value)),
        }
    }

    /// Runs `f` on the value, holding a shared lock for the call (other `with` calls run at the same time).
    ///
    /// # Errors
    /// [`Closed`] once [`close`](Self::close) took the value (`f` is not run).
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> Result<R, Closed> {
        let guard = recover(self.value.read());
        guard.as_ref().map(f).ok_or(Closed { what: self.what })
    }

    /// Takes the value out (waiting for every call in progress), leaving the handle closed: `None` if it already
    /// was.
    pub fn close(&self) -> Option<T> {
        recover(self.value.write()).take()
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        recover(self.value.read()).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::{mpsc, Arc};
    use std::thread;
    use std::time::Duration;

    #[test]
    fn a_handle_is_usable_after_a_panic_poisoned_its_lock() {
        let h = Closable::new("writer", vec![1]);
        let panicked = catch_unwind(AssertUnwindSafe(|| {
            h.with_mut(|v| {
                v.push(2);
                panic!("in the middle of a call");
            })
        }));
        assert!(panicked.is_err());
        assert!(h.value.is_poisoned());
        assert_eq!(h.with(|v| v.clone()), Ok(vec![1, 2]));
        assert_eq!(h.with_mut(|v| v.len()), Ok(2));
        assert!(!h.is_closed());
        assert_eq!(h.close(), Some(vec![1, 2]));
    }

    #[test]
    fn a_shared_handle_is_usable_after_a_panic_poisoned_its_lock() {
        let h = Arc::new(RwClosable::new("reader", 7));
        let h2 = Arc::clone(&h);
        // Only a panic under the write lock poisons a RwLock; the handle's own write (close) cannot panic, so
        // poison it from outside.
        let panicked = thread::spawn(move || {
            let _guard = h2.value.write();
            panic!("while holding the write lock");
        })
        .join();
        assert!(panicked.is_err());
        assert!(h.value.is_poisoned());
        assert_eq!(h.with(|v| *v), Ok(7));
        assert!(!h.is_closed());
        assert_eq!(h.close(), Some(7));
        assert!(h.is_closed());
    }

    #[test]
    fn closing_twice_gives_the_value_once() {
        let h = Closable::new("writer", String::from("w"));
        assert_eq!(h.close().as_deref(), Some("w"));
        assert_eq!(h.close(), None);
        assert!(h.is_closed());

        let r = RwClosable::new("reader", 1u8);
        assert_eq!(r.close(), Some(1));
        assert_eq!(r.close(), None);
        assert!(r.is_closed());
    }

    #[test]
    fn a_use_after_close_is_refused_without_running_the_call() {
        let h = Closable::new("stream writer", 0);
        let _ = h.close();
        let mut ran = false;
        assert_eq!(
            h.with(|_| ran = true),
            Err(Closed {
                what: "stream writer"
            })
        );
        assert_eq!(
            h.with_mut(|_| ran = true),
            Err(Closed {
                what: "stream writer"
            })
        );
        assert!(!ran);

        let r = RwClosable::new("reader", 0);
        let _ = r.close();
        assert_eq!(r.with(|_| ran = true), Err(Closed { what: "reader" }));
        assert!(!ran);
        assert_eq!(
            Closed { what: "reader" }.to_string(),
            "this reader was closed; open a new one"
        );
    }

    #[test]
    fn shared_users_run_at_the_same_time() {
        let h = Arc::new(RwClosable::new("reader", 5));
        let (tx, rx) = mpsc::channel();
        let (inside_tx, inside_rx) = mpsc::channel();
        let h2 = Arc::clone(&h);
        // The other user waits inside `with` until this one got in too; the timeout is the watchdog, and a
        // shared access that were exclusive would show as its `Err`.
        let other = thread::spawn(move || {
            h2.with(|v| {
                let _ = inside_tx.send(());
                rx.recv_timeout(Duration::from_secs(10)).map(|()| *v)
            })
        });
        assert_eq!(inside_rx.recv_timeout(Duration::from_secs(10)), Ok(()));
        assert_eq!(
            h.with(|v| {
                let _ = tx.send(());
                *v
            }),
            Ok(5)
        );
        assert_eq!(other.join().ok(), Some(Ok(Ok(5))));
        assert_eq!(h.close(), Some(5));
    }
}
