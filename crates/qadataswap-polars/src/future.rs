//! `read_async`: a future over the segment's publish word, for any executor, with no thread per read.
//!
//! The future polls the reader without blocking; when nothing is there it registers with the process's one
//! reactor thread ([`qadataswap_sync::reactor`]), which sleeps in `futex_waitv` on every pending read's word at
//! once and wakes the task when the writer publishes (or after [`WAIT_SLICE`], so that the task re-checks its
//! timeout and the writer's liveness). When a snapshot is already there, the future is ready at its first poll.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use polars_core::frame::DataFrame;
use qadataswap_arrow::NewerPoll;
use qadataswap_sync::reactor::{self, Registration};

use crate::error::{Error, Result};
use crate::frame::ReaderInner;

/// The longest a pending read sleeps before it re-checks its timeout and whether the writer is still alive: a
/// timeout or a dead writer is reported at most this late.
pub const WAIT_SLICE: Duration = reactor::SLICE;

#[derive(Debug, Clone, Copy)]
pub(crate) enum ReadKind {
    /// `read()`: the newest snapshot.
    Newest,
    /// `read_next(None)`: newer than the last one returned when the future was first polled.
    Next,
}

/// The future of [`DataFrameReader::read_async`](crate::DataFrameReader::read_async) and
/// [`read_next_async`](crate::DataFrameReader::read_next_async).
///
/// Cancel-safe: a pending future holds no lease (a frame is only leased in the poll that returns it), and
/// dropping it withdraws its registration with the reactor.
#[must_use = "futures do nothing unless polled"]
pub struct ReadFuture {
    inner: Arc<ReaderInner>,
    kind: ReadKind,
    /// Set by the first poll: when the wait began, and which sequence the frame must be newer than.
    started: Option<(Instant, u64)>,
    registration: Option<Registration>,
    done: bool,
}

impl ReadFuture {
    pub(crate) fn new(inner: Arc<ReaderInner>, kind: ReadKind) -> ReadFuture {
        ReadFuture {
            inner,
            kind,
            started: None,
            registration: None,
            done: false,
        }
    }

    fn step(&mut self, cx: &mut Context<'_>) -> Poll<Result<DataFrame>> {
        // A wake-up (or a spurious poll): the old registration has fired or is withdrawn now.
        self.registration = None;
        let reader = &self.inner.reader;
        let (start, newer_than) = *self.started.get_or_insert_with(|| {
            let newer_than = match self.kind {
                ReadKind::Newest => 0,
                ReadKind::Next => reader.last_seq(),
            };
            (Instant::now(), newer_than)
        });
        let registration = match reader.poll_newer_or_register(newer_than, cx.waker()) {
            NewerPoll::Ready(Ok(frame)) => return Poll::Ready(self.inner.to_dataframe(&frame)),
            NewerPoll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
            NewerPoll::Registered(r) => r,
            NewerPoll::NoReactor(source) => {
                return Poll::Ready(Err(Error::Spawn {
                    name: reader.name().to_owned(),
                    source,
                }))
            }
        };
        if let Some(timeout) = self.inner.timeout {
            let waited = start.elapsed();
            if waited >= timeout {
                return Poll::Ready(Err(Error::Arrow(qadataswap_arrow::Error::Timeout {
                    name: reader.name().to_owned(),
                    what: "waiting for a frame (read_async)",
                    waited,
                })));
            }
        }
        self.registration = Some(registration);
        Poll::Pending
    }
}

impl Future for ReadFuture {
    type Output = Result<DataFrame>;

    /// # Panics
    /// If polled again after it returned `Ready`.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        assert!(!this.done, "ReadFuture polled after completion");
        let r = this.step(cx);
        if r.is_ready() {
            this.done = true;
        }
        r
    }
}

impl std::fmt::Debug for ReadFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadFuture")
            .field("reader", &self.inner.reader.name())
            .field("kind", &self.kind)
            .field("waiting", &self.registration.is_some())
            .field("done", &self.done)
            .finish()
    }
}

/// The future of [`SharedDataFrame::create_reader_async`](crate::SharedDataFrame::create_reader_async) and
/// [`SharedDataFrameBuilder::create_reader_async`](crate::SharedDataFrameBuilder::create_reader_async): attach
/// as a reader, waiting (up to the open timeout) for a writer to create the name.
///
/// The wait is an inotify watch on `/dev/shm` on a thread of this open's own (opens are one-off; the reads after
/// share the one reactor), so the executor is never blocked. Dropping the future cancels the wait: its thread stops
/// within 100 ms and nothing is attached.
#[must_use = "futures do nothing unless polled"]
pub struct OpenFuture {
    builder: Option<crate::frame::SharedDataFrameBuilder>,
    shared: Option<Arc<OpenShared>>,
}

#[derive(Default)]
struct OpenShared {
    state: std::sync::Mutex<OpenState>,
    cancelled: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct OpenState {
    result: Option<Result<crate::DataFrameReader>>,
    waker: Option<std::task::Waker>,
}

impl OpenShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, OpenState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl OpenFuture {
    pub(crate) fn new(builder: crate::frame::SharedDataFrameBuilder) -> OpenFuture {
        OpenFuture {
            builder: Some(builder),
            shared: None,
        }
    }
}

impl Future for OpenFuture {
    type Output = Result<crate::DataFrameReader>;

    /// # Panics
    /// If polled again after it returned `Ready`.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        use std::sync::atomic::Ordering;
        let this = self.get_mut();
        if let Some(builder) = this.builder.take() {
            // Already there (the usual case once the writer runs): attach now, no thread. (A wait that is
            // cancelled before it starts only looks once; a bad name or configuration is answered here too.)
            match builder.wait_for_writer(&|| true) {
                Ok(true) => return Poll::Ready(builder.create_reader()),
                Ok(false) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            let shared = Arc::new(OpenShared::default());
            shared.lock().waker = Some(cx.waker().clone());
            let theirs = Arc::clone(&shared);
            let name = builder.name().to_owned();
            let spawned = std::thread::Builder::new()
                .name("qadataswap-open".into())
                .spawn(move || {
                    let cancelled = || theirs.cancelled.load(Ordering::Acquire);
                    let start = Instant::now();
                    let result = match builder.wait_for_writer(&cancelled) {
                        Err(e) => Err(e),
                        Ok(_) if cancelled() => return,
                        Ok(true) => builder.create_reader_now(),
                        // The time ran out: the error a blocking open gives (a zero timeout's "does not
                        // exist" comes from opening now).
                        Ok(false) if start.elapsed() >= Duration::from_millis(1) => {
                            Err(Error::Arrow(qadataswap_arrow::Error::NotCreated {
                                name: builder.name().to_owned(),
                                waited: start.elapsed(),
                            }))
                        }
                        Ok(false) => builder.create_reader_now(),
                    };
                    let waker = {
                        let mut st = theirs.lock();
                        st.result = Some(result);
                        st.waker.take()
                    };
                    if let Some(w) = waker {
                        w.wake();
                    }
                });
            if let Err(source) = spawned {
                return Poll::Ready(Err(Error::Spawn { name, source }));
            }
            this.shared = Some(shared);
            return Poll::Pending;
        }
        let shared = this
            .shared
            .as_ref()
            .expect("OpenFuture polled after completion");
        let mut st = shared.lock();
        if let Some(r) = st.result.take() {
            drop(st);
            this.shared = None;
            return Poll::Ready(r);
        }
        st.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for OpenFuture {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared
                .cancelled
                .store(true, std::sync::atomic::Ordering::Release);
            // A reader the thread attached just before the cancel is dropped here (it detaches).
            let late = shared.lock().result.take();
            drop(late);
        }
    }
}

impl std::fmt::Debug for OpenFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenFuture")
            .field("waiting", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}
