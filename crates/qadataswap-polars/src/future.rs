//! `read_async`: a future over the blocking futex wait, for any executor.
//!
//! The wait itself happens on a dedicated waiter thread that sleeps on the segment's futex in
//! slices of [`WAIT_SLICE`] and completes the future through its [`Waker`]: an executor thread
//! is never blocked, and no runtime is assumed (std only). When a snapshot is already there, the
//! future is ready at its first poll and no thread is started.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use polars_core::frame::DataFrame;

use crate::error::{Error, Result};
use crate::frame::ReaderInner;

/// How long the waiter thread sleeps before checking whether its future was dropped: a
/// cancelled read's thread exits within this time.
pub const WAIT_SLICE: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy)]
pub(crate) enum ReadKind {
    /// `read()`: the newest snapshot.
    Newest,
    /// `read_next(None)`: newer than the last one returned.
    Next,
}

/// The future of [`DataFrameReader::read_async`](crate::DataFrameReader::read_async) and
/// [`read_next_async`](crate::DataFrameReader::read_next_async).
///
/// Cancel-safe: dropping it before it completes drops any frame its waiter thread already got
/// (releasing the slot lease at once) and makes the thread exit within [`WAIT_SLICE`]; no
/// snapshot is "consumed" by a dropped future other than through the reader's `last_seq`.
#[must_use = "futures do nothing unless polled"]
pub struct ReadFuture {
    inner: Arc<ReaderInner>,
    kind: ReadKind,
    pending: Option<Arc<Pending>>,
    done: bool,
}

/// What the future and its waiter thread share.
struct Pending {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    result: Option<Result<DataFrame>>,
    waker: Option<Waker>,
    cancelled: bool,
    finished: bool,
}

impl Pending {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing in `State` can be left half-updated by a panic: keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ReadFuture {
    pub(crate) fn new(inner: Arc<ReaderInner>, kind: ReadKind) -> ReadFuture {
        ReadFuture {
            inner,
            kind,
            pending: None,
            done: false,
        }
    }

    /// Without waiting: a snapshot that satisfies this read, if there is one now.
    fn try_now(&self) -> Result<Option<DataFrame>> {
        let last = self.inner.reader.last_seq();
        match self.inner.reader.try_read()? {
            Some(frame) if matches!(self.kind, ReadKind::Newest) || frame.seq() > last => {
                self.inner.to_dataframe(&frame).map(Some)
            }
            _ => Ok(None),
        }
    }

    fn spawn(&mut self, waker: Waker) -> Result<()> {
        let pending = Arc::new(Pending {
            state: Mutex::new(State {
                waker: Some(waker),
                ..State::default()
            }),
        });
        let thread_pending = Arc::clone(&pending);
        let inner = Arc::clone(&self.inner);
        let kind = self.kind;
        std::thread::Builder::new()
            .name("qadataswap-read-async".into())
            .spawn(move || wait(&inner, kind, &thread_pending))
            .map_err(|source| Error::Spawn {
                name: self.inner.reader.name().to_owned(),
                source,
            })?;
        self.pending = Some(pending);
        Ok(())
    }
}

/// The waiter thread: sleep on the futex slice by slice until a frame, an error, the reader's
/// timeout or the future's drop.
fn wait(inner: &ReaderInner, kind: ReadKind, pending: &Arc<Pending>) {
    // Marks the read finished and wakes the task even if this thread panics.
    struct Finish<'a>(&'a Pending);
    impl Drop for Finish<'_> {
        fn drop(&mut self) {
            let waker = {
                let mut state = self.0.lock();
                state.finished = true;
                state.waker.take()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
    let _finish = Finish(pending);

    let start = Instant::now();
    let deadline = inner.timeout.and_then(|t| start.checked_add(t));
    let result = loop {
        if pending.lock().cancelled {
            return;
        }
        let slice = match deadline {
            Some(deadline) => {
                let remaining = deadline.saturating_duration_since(Instant::now());
                if remaining.is_zero() {
                    break Err(Error::Arrow(qadataswap_arrow::Error::Timeout {
                        name: inner.reader.name().to_owned(),
                        what: "waiting for a frame (read_async)",
                        waited: start.elapsed(),
                    }));
                }
                remaining.min(WAIT_SLICE)
            }
            None => WAIT_SLICE,
        };
        let read = match kind {
            ReadKind::Newest => inner.reader.read_timeout(slice),
            ReadKind::Next => inner.reader.read_next(Some(slice)),
        };
        match read {
            Ok(frame) => break inner.to_dataframe(&frame),
            Err(qadataswap_arrow::Error::Timeout { .. }) => continue,
            Err(e) => break Err(e.into()),
        }
    };
    let mut state = pending.lock();
    if state.cancelled {
        drop(state);
        // The future is gone: drop the frame (and its lease) now.
        drop(result);
    } else {
        state.result = Some(result);
    }
}

impl Future for ReadFuture {
    type Output = Result<DataFrame>;

    /// # Panics
    /// If polled again after it returned `Ready`.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        assert!(!this.done, "ReadFuture polled after completion");
        let Some(pending) = &this.pending else {
            let now = this.try_now();
            let ready = match now {
                Ok(Some(df)) => Ok(df),
                Err(e) => Err(e),
                Ok(None) => match this.spawn(cx.waker().clone()) {
                    Ok(()) => return Poll::Pending,
                    Err(e) => Err(e),
                },
            };
            this.done = true;
            return Poll::Ready(ready);
        };
        let mut state = pending.lock();
        if let Some(result) = state.result.take() {
            drop(state);
            this.done = true;
            this.pending = None;
            return Poll::Ready(result);
        }
        if state.finished {
            drop(state);
            this.done = true;
            this.pending = None;
            return Poll::Ready(Err(Error::WaiterLost {
                name: this.inner.reader.name().to_owned(),
            }));
        }
        match &mut state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for ReadFuture {
    fn drop(&mut self) {
        if let Some(pending) = self.pending.take() {
            let result = {
                let mut state = pending.lock();
                state.cancelled = true;
                state.waker = None;
                state.result.take()
            };
            // Drop a frame the thread already delivered (and its lease) now, outside the lock.
            drop(result);
        }
    }
}

impl std::fmt::Debug for ReadFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadFuture")
            .field("reader", &self.inner.reader.name())
            .field("kind", &self.kind)
            .field("waiting", &self.pending.is_some())
            .field("done", &self.done)
            .finish()
    }
}
