//! The boundary between Python and Rust: no panic crosses it.
//!
//! PyO3 turns a panic into `pyo3_runtime.PanicException`, which derives from `BaseException`, so `except Exception`
//! (and `except qadataswap.Error`) would not catch it. Every entry point of the binding runs its body through
//! [`guarded`], which catches a panic and raises `qadataswap.InternalError` (a subclass of `qadataswap.Error`) with
//! the panic's message instead.
//!
//! Test hook: [`panic_on_next_call`] (exposed as `_native._panic_on_next_call()`) makes the next guarded call panic
//! inside its guard, so the tests can prove, entry point by entry point, that the panic arrives as the library's
//! error. It costs one relaxed atomic load per call.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::prelude::*;

use crate::error::raise;

/// Set by the test hook: the next guarded call panics.
static PANIC_NEXT: AtomicBool = AtomicBool::new(false);

/// Runs `body`, turning a panic into `qadataswap.InternalError`.
pub fn guarded<T>(py: Python<'_>, body: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(|| {
        if PANIC_NEXT.swap(false, Ordering::Relaxed) {
            panic!("test hook: forced panic (qadataswap._native._panic_on_next_call)");
        }
        body()
    })) {
        Ok(result) => result,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            Err(raise(
                py,
                "InternalError",
                format!(
                    "qadataswap hit a bug and stopped this call safely (a Rust panic was caught at the Python \
                     boundary: {what}); close the object it happened on and open a new one, and please report \
                     this with the call that caused it"
                ),
                &[],
            ))
        }
    }
}

/// Test hook: the next guarded call of this process panics inside its guard.
#[pyfunction]
#[pyo3(name = "_panic_on_next_call")]
pub fn panic_on_next_call() {
    PANIC_NEXT.store(true, Ordering::Relaxed);
}
