//! `read_async`: a future over the segment's publish word, for any executor, with no thread per read.
//!
//! The future polls the reader without blocking; when nothing is there it registers with the process's one
//! reactor thread ([`qadataswap_sync::reactor`]), which sleeps in `futex_waitv` on every pending read's word at
//! once and wakes the task when the writer publishes (or after [`WAIT_SLICE`], so that the task re-checks its
//! timeout and the writer's liveness). When a snapshot is already there, the future is ready at its first poll.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use polars_core::frame::DataFrame;
use qadataswap_arrow::{Frame, NewerPoll, SnapshotReader};
use qadataswap_sync::reactor::{self, Registration};

use crate::error::{Error, Result};
use crate::ffi::{import_copy_reason, record_batches_to_dataframe};

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

/// A reader as its futures share it.
pub(crate) struct ReaderInner {
    pub(crate) reader: SnapshotReader,
    pub(crate) timeout: Option<Duration>,
    pub(crate) polars_copied_columns: AtomicU64,
}

impl ReaderInner {
    /// A frame's batches as a Polars frame: the columns share the leased buffers.
    pub(crate) fn to_dataframe(&self, frame: &Frame) -> Result<DataFrame> {
        let copied = frame
            .schema()
            .fields()
            .iter()
            .filter(|f| import_copy_reason(f.data_type()).is_some())
            .count() as u64;
        if copied > 0 {
            self.polars_copied_columns
                .fetch_add(copied, Ordering::Relaxed);
        }
        Ok(record_batches_to_dataframe(
            frame.schema(),
            frame.batches(),
        )?)
    }
}
