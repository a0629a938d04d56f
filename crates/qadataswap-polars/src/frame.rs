//! `SharedDataFrame`: one Polars frame at a time in a named segment, newest wins.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer};
use arrow_data::{ArrayData, ArrayDataBuilder};
use arrow_schema::SchemaRef;
use polars_core::frame::DataFrame;
use polars_core::prelude::SchemaRef as PolarsSchemaRef;
use qadataswap_arrow::{
    Attachment, ReaderBuilder, SnapshotReader, SnapshotWriter, Validation, WriteInfo, WriterBuilder,
};

use crate::error::{Error, Result};
use crate::ffi::{dataframe_to_record_batches, record_batches_to_dataframe};
use crate::future::{ReadFuture, ReadKind, ReaderInner};

/// Anything [`DataFrameWriter::write`] accepts: a [`DataFrame`] (owned or borrowed) or a Polars
/// result of one.
///
/// A `LazyFrame` is written by collecting it first (`writer.write(lf.collect()?)`): this crate
/// does not depend on `polars-lazy` (it would roughly double the build of the adapter), so the
/// collect happens in the caller's Polars, which is the one that owns the query anyway.
pub trait IntoDataFrame<'a> {
    /// The frame to write, borrowed when possible.
    ///
    /// # Errors
    /// [`Error::Polars`] when producing the frame failed.
    fn into_dataframe(self) -> Result<Cow<'a, DataFrame>>;
}

impl<'a> IntoDataFrame<'a> for &'a DataFrame {
    fn into_dataframe(self) -> Result<Cow<'a, DataFrame>> {
        Ok(Cow::Borrowed(self))
    }
}

impl<'a> IntoDataFrame<'a> for &'a mut DataFrame {
    fn into_dataframe(self) -> Result<Cow<'a, DataFrame>> {
        Ok(Cow::Borrowed(self))
    }
}

impl IntoDataFrame<'static> for DataFrame {
    fn into_dataframe(self) -> Result<Cow<'static, DataFrame>> {
        Ok(Cow::Owned(self))
    }
}

impl IntoDataFrame<'static> for polars_core::error::PolarsResult<DataFrame> {
    fn into_dataframe(self) -> Result<Cow<'static, DataFrame>> {
        self.map(Cow::Owned)
            .map_err(|source| Error::Polars { source })
    }
}

/// Entry point: share Polars [`DataFrame`]s between processes through a named shared-memory
/// segment. A writer publishes whole frames; readers get the newest one without a copy.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use polars_core::prelude::*;
/// use qadataswap_polars::SharedDataFrame;
///
/// # let name = format!("qads-doc-sdf-{}", std::process::id());
/// let df = DataFrame::new(3, vec![Column::new("x".into(), [1i64, 2, 3])])?;
/// let mut writer = SharedDataFrame::create_writer(&name, 1 << 20)?;
/// writer.write(&df)?;
///
/// let reader = SharedDataFrame::create_reader(&name)?;
/// let read = reader.read()?;
/// assert!(read.equals_missing(&df));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SharedDataFrame;

impl SharedDataFrame {
    /// Create the segment `name` with `size` bytes of data capacity (split across 3 slots: a
    /// frame must fit in a third of it) and become its writer.
    ///
    /// # Errors
    /// [`Error::Arrow`]: name invalid or taken by a live writer, permissions, out of memory.
    pub fn create_writer(name: &str, size: usize) -> Result<DataFrameWriter> {
        Self::writer(name).size(size).create()
    }

    /// Attach to the segment `name` as a reader.
    ///
    /// # Errors
    /// [`Error::Arrow`]: no such segment, not initialised, wrong version or mode, reader table full.
    pub fn create_reader(name: &str) -> Result<DataFrameReader> {
        Self::reader(name).open()
    }

    /// [`create_reader`](Self::create_reader) as a future, for async code: the wait for the writer to create
    /// `name` never blocks the executor, and dropping the future cancels it (see [`OpenFuture`]).
    pub fn create_reader_async(name: &str) -> OpenFuture {
        Self::reader(name).open_async()
    }

    /// The writer's options, for everything optional
    /// (`SharedDataFrame::writer(name).size(..).slots(3).create()`). What is not set comes from the
    /// configuration (`qadataswap.yaml`, `QADATASWAP_*` variables, defaults: see
    /// [`qadataswap_arrow::config::Config`]), loaded by [`create`](DataFrameWriterBuilder::create).
    pub fn writer(name: &str) -> DataFrameWriterBuilder {
        DataFrameWriterBuilder {
            inner: SnapshotWriter::builder(name),
        }
    }

    /// A reader's options, for everything optional
    /// (`SharedDataFrame::reader(name).timeout(..).open()`). What is not set comes from the
    /// configuration, loaded by [`open`](DataFrameReaderBuilder::open).
    pub fn reader(name: &str) -> DataFrameReaderBuilder {
        DataFrameReaderBuilder {
            name: name.to_owned(),
            inner: SnapshotReader::builder(name),
        }
    }
}

/// Options of a [`DataFrameWriter`], from [`SharedDataFrame::writer`]: only what a writer uses.
/// Unset options come from the configuration, loaded when the writer is created.
#[derive(Debug, Clone)]
pub struct DataFrameWriterBuilder {
    inner: WriterBuilder,
}

impl DataFrameWriterBuilder {
    forward! {
        /// Total data size of the segment in bytes, split across the slots (default: the
        /// configuration's `memory.size_mb`, 64 MiB).
        size(bytes: usize);
        /// Number of slots (default: `memory.num_buffers`, 3; 1 makes the writer wait for readers to
        /// let go).
        slots(n: usize);
        /// Reader-table capacity (default 64).
        reader_capacity(n: usize);
        /// Schema-area capacity in bytes (default 64 KiB).
        schema_capacity(bytes: usize);
        /// File permissions of the segment (default 0o600).
        permissions(mode: u32);
        /// Keep the segment after the writer closes (default false).
        persistent(yes: bool);
        /// How long a write waits for a slot leased by readers (default: the configuration's
        /// `sync.timeout_ms`, 5 s).
        lease_timeout(d: Duration);
        /// Body compression (default: the configuration's `compression.*`, none).
        compression(c: Option<qadataswap_arrow::Compression>);
        /// Spin iterations before parking on the futex (default 1000).
        spin(n: u32);
        /// Take unset options from this configuration file (which must exist) instead of the usual
        /// search (`$QADATASWAP_CONFIG`, then `./qadataswap.yaml`).
        config_file(path: impl Into<std::path::PathBuf>);
        /// Take unset options from this configuration instead of loading one.
        config(cfg: qadataswap_arrow::Config);
    }

    /// Create the segment and become its writer.
    ///
    /// # Errors
    /// As [`SharedDataFrame::create_writer`], and [`qadataswap_arrow::Error::Config`] for a bad
    /// configuration file or variable.
    pub fn create(self) -> Result<DataFrameWriter> {
        let inner = self.inner.create()?;
        Ok(DataFrameWriter { inner })
    }
}

/// Options of a [`DataFrameReader`], from [`SharedDataFrame::reader`]: only what a reader uses.
/// Unset options come from the configuration, loaded when the reader attaches.
#[derive(Debug, Clone)]
pub struct DataFrameReaderBuilder {
    name: String,
    inner: ReaderBuilder,
}

impl DataFrameReaderBuilder {
    forward! {
        /// Default timeout of blocking reads (default `None`: until a frame arrives or the writer goes
        /// away).
        timeout(t: Option<Duration>);
        /// How long to wait for the segment to be created (default: the configuration's
        /// `sync.timeout_ms`, 5 s).
        open_timeout(t: Duration);
        /// Body validation level (default [`Validation::Trusted`]).
        validation(v: Validation);
        /// Accept a segment whose mode lets group/others in (default false).
        allow_shared_mode(yes: bool);
        /// Spin iterations before parking on the futex (default 1000).
        spin(n: u32);
        /// Take unset options from this configuration file (which must exist) instead of the usual
        /// search (`$QADATASWAP_CONFIG`, then `./qadataswap.yaml`).
        config_file(path: impl Into<std::path::PathBuf>);
    }

    /// Attach as a reader.
    ///
    /// # Errors
    /// As [`SharedDataFrame::create_reader`].
    pub fn open(self) -> Result<DataFrameReader> {
        let timeout = self.inner.current().timeout;
        let reader = self.inner.open()?;
        Ok(DataFrameReader {
            inner: Arc::new(ReaderInner {
                reader,
                timeout,
                polars_copied_columns: AtomicU64::new(0),
            }),
        })
    }

    /// Attach as a reader without blocking: see [`OpenFuture`]. Cancel-safe.
    pub fn open_async(self) -> OpenFuture {
        OpenFuture {
            builder: Some(self),
            shared: None,
        }
    }

    fn wait_for_writer(&self, cancelled: &dyn Fn() -> bool) -> Result<bool> {
        Ok(self.inner.wait_for_writer(cancelled)?)
    }

    /// After [`wait_for_writer`](Self::wait_for_writer): attach without waiting again.
    fn open_now(mut self) -> Result<DataFrameReader> {
        self.inner = self.inner.open_timeout(Duration::ZERO);
        self.open()
    }
}

/// Publishes Polars frames; each [`write`](Self::write) makes a new newest snapshot.
///
/// `Send`, one writer thread at a time (`&mut self`). Dropping it closes the segment like
/// [`close`](Self::close).
pub struct DataFrameWriter {
    inner: SnapshotWriter,
}

impl std::fmt::Debug for DataFrameWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataFrameWriter")
            .field("inner", &self.inner)
            .finish()
    }
}

impl DataFrameWriter {
    /// Publish `frame` as the newest snapshot: its columns are exported in Polars' own Arrow
    /// layout without a copy, one record batch per chunk (not rechunked), and encoded into one
    /// slot with a single copy.
    ///
    /// # Errors
    /// [`Error::Ffi`] for a dtype without a standard Arrow form (`Int128`), [`Error::Arrow`] when
    /// the frame does not fit a slot ([`qadataswap_arrow::Error::SlotTooSmall`]) or every slot
    /// stays leased past the lease timeout, [`Error::Polars`] from a failed `collect`.
    pub fn write<'a>(&mut self, frame: impl IntoDataFrame<'a>) -> Result<WriteInfo> {
        let df = frame.into_dataframe()?;
        let (schema, batches) = dataframe_to_record_batches(&df)?;
        Ok(self.inner.write_frame(&schema, &batches)?)
    }

    /// The segment's name.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// Counters of this writer.
    pub fn stats(&self) -> qadataswap_arrow::Stats {
        self.inner.stats()
    }

    /// The sequence number the next write will get.
    pub fn next_seq(&self) -> u64 {
        self.inner.next_seq()
    }

    /// The Arrow-level writer (to publish record batches directly).
    pub fn as_arrow(&mut self) -> &mut SnapshotWriter {
        &mut self.inner
    }

    /// Close cleanly: readers keep what they hold and then get
    /// [`qadataswap_arrow::Error::WriterClosed`]; the name is unlinked unless persistent.
    ///
    /// # Errors
    /// An unlink failure.
    pub fn close(self) -> Result<()> {
        Ok(self.inner.close()?)
    }
}

/// Counters of a [`DataFrameReader`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReaderStats {
    /// The Arrow layer's counters (`copies` counts buffers found outside the mapping).
    pub arrow: qadataswap_arrow::Stats,
    /// Columns Polars had to convert on import, hence copy (Categorical and Enum columns: see
    /// the crate docs), summed over every read.
    pub polars_copied_columns: u64,
}

/// Reads Polars frames: the newest snapshot, zero-copy.
///
/// `Send + Sync` and cheap to share: each read takes its own lease on a slot, which travels with
/// the returned frame's columns (clones and slices included) and is released when the last of
/// them is dropped. Hold frames briefly: the writer cannot reuse a leased slot.
pub struct DataFrameReader {
    inner: Arc<ReaderInner>,
}

impl std::fmt::Debug for DataFrameReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataFrameReader")
            .field("reader", &self.inner.reader)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl DataFrameReader {
    /// The newest snapshot; blocks (up to the reader's timeout) only until a first one exists.
    ///
    /// Zero-copy: every buffer of every column points into the shared mapping, except for the
    /// dtypes listed in the crate docs.
    ///
    /// # Errors
    /// [`Error::Arrow`]: timeout, writer closed or died before publishing anything, corruption;
    /// [`Error::Ffi`] for a column Polars cannot hold (only frames not written by Polars).
    pub fn read(&self) -> Result<DataFrame> {
        let frame = self.inner.reader.read()?;
        self.inner.to_dataframe(&frame)
    }

    /// As [`read`](Self::read) with an explicit timeout.
    ///
    /// # Errors
    /// As [`read`](Self::read).
    pub fn read_timeout(&self, timeout: Duration) -> Result<DataFrame> {
        let frame = self.inner.reader.read_timeout(timeout)?;
        self.inner.to_dataframe(&frame)
    }

    /// The newest snapshot if one exists, without blocking.
    ///
    /// # Errors
    /// As [`read`](Self::read), without the timeout.
    pub fn try_read(&self) -> Result<Option<DataFrame>> {
        match self.inner.reader.try_read()? {
            Some(frame) => self.inner.to_dataframe(&frame).map(Some),
            None => Ok(None),
        }
    }

    /// The newest snapshot strictly newer than the last one this reader returned, waiting up to
    /// `timeout` (`None`: the reader's default).
    ///
    /// # Errors
    /// As [`read`](Self::read).
    pub fn read_next(&self, timeout: Option<Duration>) -> Result<DataFrame> {
        let frame = self.inner.reader.read_next(timeout)?;
        self.inner.to_dataframe(&frame)
    }

    /// The newest snapshot copied into private memory: holds no lease, so it can be kept for
    /// long without holding the writer back; fully validated (for untrusted writers).
    ///
    /// # Errors
    /// As [`read`](Self::read), plus validation failures.
    pub fn read_owned(&self) -> Result<DataFrame> {
        let frame = self.inner.reader.read_copied()?;
        self.inner.to_dataframe(&frame)
    }

    /// The first snapshot for which `predicate` holds, waiting up to `timeout` (`None`: the
    /// reader's default). The newest frame is converted and tested at each publish (frames
    /// published in between may be skipped); it sleeps on the segment's futex between publishes,
    /// it never polls.
    ///
    /// # Errors
    /// [`Error::Arrow`] with [`qadataswap_arrow::Error::Timeout`] if no snapshot satisfied it in
    /// time; as [`read`](Self::read).
    pub fn wait_for_condition(
        &self,
        mut predicate: impl FnMut(&DataFrame) -> bool,
        timeout: Option<Duration>,
    ) -> Result<DataFrame> {
        let mut found: Option<DataFrame> = None;
        let mut failed: Option<Error> = None;
        let frame = self.inner.reader.wait_for_condition(
            |frame| match self.inner.to_dataframe(frame) {
                Ok(df) if predicate(&df) => {
                    found = Some(df);
                    true
                }
                Ok(_) => false,
                Err(e) => {
                    failed = Some(e);
                    true
                }
            },
            timeout.or(self.inner.timeout),
        )?;
        if let Some(e) = failed {
            return Err(e);
        }
        match found {
            Some(df) => Ok(df),
            None => self.inner.to_dataframe(&frame),
        }
    }

    /// A future of [`read`](Self::read): ready at once when a snapshot exists, otherwise the
    /// process's one reactor thread (`qadataswap_sync::reactor`, shared by every pending read)
    /// watches the segment's futex word and wakes the task when the writer publishes. Works on
    /// any executor, never blocks an executor thread, starts no thread per read, and is
    /// cancel-safe: dropping it withdraws the wait and holds no lease. The reader's default
    /// timeout applies (checked at least every 100 ms while pending).
    pub fn read_async(&self) -> ReadFuture {
        ReadFuture::new(Arc::clone(&self.inner), ReadKind::Newest)
    }

    /// A future of [`read_next`](Self::read_next)`(None)`: the next snapshot newer than the last
    /// one this reader returned. Same guarantees as [`read_async`](Self::read_async).
    pub fn read_next_async(&self) -> ReadFuture {
        ReadFuture::new(Arc::clone(&self.inner), ReadKind::Next)
    }

    /// The Polars schema of the newest snapshot (`None` before the first write), read from the
    /// segment's schema area without leasing a slot.
    ///
    /// # Errors
    /// [`Error::Arrow`] if the schema area is corrupt, [`Error::Ffi`] if Polars cannot hold one of
    /// its types.
    pub fn schema(&self) -> Result<Option<PolarsSchemaRef>> {
        match self.inner.reader.schema()? {
            Some(schema) => Ok(Some(
                record_batches_to_dataframe(&schema, &[])?.schema().clone(),
            )),
            None => Ok(None),
        }
    }

    /// The Arrow schema of the newest snapshot (`None` before the first write).
    ///
    /// # Errors
    /// [`Error::Arrow`] if the schema area is corrupt.
    pub fn arrow_schema(&self) -> Result<Option<SchemaRef>> {
        Ok(self.inner.reader.schema()?)
    }

    /// Counters of this reader.
    pub fn stats(&self) -> ReaderStats {
        ReaderStats {
            arrow: self.inner.reader.stats(),
            polars_copied_columns: self.inner.polars_copied_columns.load(Ordering::Relaxed),
        }
    }

    /// The sequence number of the last snapshot this reader returned (0: none yet).
    pub fn last_seq(&self) -> u64 {
        self.inner.reader.last_seq()
    }

    /// The segment's name.
    pub fn name(&self) -> &str {
        self.inner.reader.name()
    }

    /// The attachment (mapping and reader-table entry), for address and lease checks.
    pub fn attachment(&self) -> &Arc<Attachment> {
        self.inner.reader.attachment()
    }

    /// The Arrow-level reader (to read record batches directly).
    pub fn as_arrow(&self) -> &SnapshotReader {
        &self.inner.reader
    }
}

/// A deep copy of `df` in private memory: shares no buffer with `df`, so it holds no lease on a
/// shared-memory slot (a frame from [`DataFrameReader::read`] can be kept this way without
/// holding the writer back). Chunks are kept.
///
/// # Errors
/// [`Error::Ffi`] for a dtype without a standard Arrow form (`Int128`); Arrow errors do not
/// happen for valid frames.
pub fn to_owned(df: &DataFrame) -> Result<DataFrame> {
    let (schema, batches) = dataframe_to_record_batches(df)?;
    let copied = batches
        .iter()
        .map(|batch| {
            let columns = batch
                .columns()
                .iter()
                .map(|c| deep_copy(&c.to_data()).map(arrow_array::make_array))
                .collect::<std::result::Result<Vec<ArrayRef>, _>>()?;
            RecordBatch::try_new_with_options(
                batch.schema(),
                columns,
                &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
            )
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(qadataswap_arrow::Error::from)?;
    Ok(record_batches_to_dataframe(&schema, &copied)?)
}

/// Copy every buffer (children, dictionaries and validity included) into fresh memory.
fn deep_copy(data: &ArrayData) -> std::result::Result<ArrayData, arrow_schema::ArrowError> {
    let buffers = data
        .buffers()
        .iter()
        .map(|b| Buffer::from_slice_ref(b.as_slice()))
        .collect::<Vec<_>>();
    let children = data
        .child_data()
        .iter()
        .map(deep_copy)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let nulls = data.nulls().map(|n| {
        let bits = Buffer::from_slice_ref(n.buffer().as_slice());
        NullBuffer::new(BooleanBuffer::new(bits, n.offset(), n.len()))
    });
    ArrayDataBuilder::new(data.data_type().clone())
        .len(data.len())
        .offset(data.offset())
        .buffers(buffers)
        .child_data(children)
        .nulls(nulls)
        .build()
}

/// The future of [`SharedDataFrame::create_reader_async`] and [`DataFrameReaderBuilder::open_async`]: attach
/// as a reader, waiting (up to the open timeout) for a writer to create the name.
///
/// The wait is an inotify watch on `/dev/shm` on a thread of this open's own (opens are one-off; the reads after
/// share the one reactor), so the executor is never blocked. Dropping the future cancels the wait: its thread stops
/// within 100 ms and nothing is attached.
#[must_use = "futures do nothing unless polled"]
pub struct OpenFuture {
    builder: Option<DataFrameReaderBuilder>,
    shared: Option<Arc<OpenShared>>,
}

#[derive(Default)]
struct OpenShared {
    state: std::sync::Mutex<OpenState>,
    cancelled: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct OpenState {
    result: Option<Result<DataFrameReader>>,
    waker: Option<std::task::Waker>,
}

impl OpenShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, OpenState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Future for OpenFuture {
    type Output = Result<DataFrameReader>;

    /// # Panics
    /// If polled again after it returned `Ready`.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        use std::sync::atomic::Ordering;
        let this = self.get_mut();
        if let Some(builder) = this.builder.take() {
            // Already there (the usual case once the writer runs): attach now, no thread. (A wait that is
            // cancelled before it starts only looks once; a bad name or configuration is answered here too.)
            match builder.wait_for_writer(&|| true) {
                Ok(true) => return Poll::Ready(builder.open()),
                Ok(false) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            let shared = Arc::new(OpenShared::default());
            shared.lock().waker = Some(cx.waker().clone());
            let theirs = Arc::clone(&shared);
            let name = builder.name.clone();
            let spawned = std::thread::Builder::new()
                .name("qadataswap-open".into())
                .spawn(move || {
                    let cancelled = || theirs.cancelled.load(Ordering::Acquire);
                    let start = Instant::now();
                    let result = match builder.wait_for_writer(&cancelled) {
                        Err(e) => Err(e),
                        Ok(_) if cancelled() => return,
                        Ok(true) => builder.open_now(),
                        // The time ran out: the error a blocking open gives (a zero timeout's "does not
                        // exist" comes from opening now).
                        Ok(false) if start.elapsed() >= Duration::from_millis(1) => {
                            Err(Error::Arrow(qadataswap_arrow::Error::NotCreated {
                                name: builder.name.clone(),
                                waited: start.elapsed(),
                            }))
                        }
                        Ok(false) => builder.open_now(),
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
