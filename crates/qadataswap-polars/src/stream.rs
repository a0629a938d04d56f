//! The Polars `SharedDataStream`: an ordered, lossless stream of DataFrames from one writer to
//! any number of readers, over [`qadataswap_stream`].
//!
//! Each [`write_chunk`](DataFrameStreamWriter::write_chunk) exports the frame in Polars' Arrow
//! layout without a copy (one record batch per chunk of the frame) and writes it as one stream
//! chunk; each chunk read comes back as a DataFrame whose buffers point into shared memory and
//! hold the slot lease (see [`qadataswap_stream`] for back-pressure, late readers and the end of
//! the stream). Drop each frame (or [`to_owned`](crate::to_owned) it) before reading many more.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use polars_core::prelude::*;
//! use qadataswap_polars::SharedDataStream;
//!
//! # let name = format!("qads-doc-plstream-{}", std::process::id());
//! let mut writer = SharedDataStream::create_writer(&name, 1 << 20)?;
//! let mut reader = SharedDataStream::create_reader(&name)?; // usually in another process
//! for x in 0..2i64 {
//!     writer.write_chunk(&DataFrame::new(1, vec![Column::new("x".into(), [x])])?)?;
//! }
//! writer.finish()?;
//! let mut rows = 0;
//! for df in reader.iter_chunks() {
//!     rows += df?.height();
//! }
//! assert_eq!(rows, 2);
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use polars_core::frame::DataFrame;
use qadataswap_arrow::{Compression, Config, Frame, Stats, Validation, WriteInfo};
use qadataswap_stream::{
    StartAt, StreamReader, StreamReaderBuilder, StreamWriter, StreamWriterBuilder,
};

use crate::error::Result;
use crate::ffi::{dataframe_to_record_batches, import_copy_reason, record_batches_to_dataframe};
use crate::frame::IntoDataFrame;

/// Entry point of the Polars stream (the Arrow-level one is [`qadataswap_stream::SharedDataStream`]).
#[derive(Debug, Clone, Copy)]
pub struct SharedDataStream;

impl SharedDataStream {
    /// Create the stream `name` with `size` bytes of data capacity and become its writer.
    ///
    /// # Errors
    /// [`Error::Stream`](crate::Error::Stream): name taken, configuration, permissions.
    pub fn create_writer(name: &str, size: usize) -> Result<DataFrameStreamWriter> {
        Self::writer(name).size(size).create()
    }

    /// Attach to the stream `name` as a reader (from the oldest retained chunk).
    ///
    /// # Errors
    /// [`Error::Stream`](crate::Error::Stream): no such stream, reader table full.
    pub fn create_reader(name: &str) -> Result<DataFrameStreamReader> {
        Self::reader(name).open()
    }

    /// The writer's options, for everything optional
    /// (`SharedDataStream::writer(name).size(..).slots(4).create()`).
    pub fn writer(name: &str) -> DataFrameStreamWriterBuilder {
        DataFrameStreamWriterBuilder {
            inner: qadataswap_stream::SharedDataStream::writer(name),
        }
    }

    /// A reader's options, for everything optional
    /// (`SharedDataStream::reader(name).start_at(StartAt::Newest).open()`).
    pub fn reader(name: &str) -> DataFrameStreamReaderBuilder {
        DataFrameStreamReaderBuilder {
            inner: qadataswap_stream::SharedDataStream::reader(name),
        }
    }
}

/// Options of a [`DataFrameStreamWriter`], from [`SharedDataStream::writer`]: only what a writer
/// uses (each as in [`StreamWriterBuilder`]).
#[derive(Debug, Clone)]
pub struct DataFrameStreamWriterBuilder {
    inner: StreamWriterBuilder,
}

impl DataFrameStreamWriterBuilder {
    forward! {
        /// Total data size of the segment in bytes, split across the slots.
        size(bytes: usize);
        /// Slots in the ring.
        slots(n: usize);
        /// The timeout of one wait attempt (for room in the ring, for readers).
        timeout(t: Option<Duration>);
        /// How many times a timed-out wait is retried.
        retry_count(n: u32);
        /// Reader-table capacity.
        reader_capacity(n: usize);
        /// Keep the segment after the writer closes.
        persistent(yes: bool);
        /// Spin iterations before parking.
        spin(n: u32);
        /// Body compression (chunks then cost a copy to read).
        compression(c: Option<Compression>);
        /// Readers that must be attached before the first chunk is written (default 1).
        min_readers(n: usize);
        /// How long `finish` keeps a finished stream's name for readers still attaching.
        linger(d: Duration);
        /// Take unset options from this configuration file instead of the usual search.
        config_file(path: impl Into<std::path::PathBuf>);
        /// Take unset options from this configuration instead of loading one.
        config(cfg: Config);
    }
    /// Create the stream and become its writer.
    ///
    /// # Errors
    /// As [`SharedDataStream::create_writer`].
    pub fn create(self) -> Result<DataFrameStreamWriter> {
        Ok(DataFrameStreamWriter {
            inner: self.inner.create()?,
        })
    }
}

/// Options of a [`DataFrameStreamReader`], from [`SharedDataStream::reader`]: only what a reader
/// uses (each as in [`StreamReaderBuilder`]).
#[derive(Debug, Clone)]
pub struct DataFrameStreamReaderBuilder {
    inner: StreamReaderBuilder,
}

impl DataFrameStreamReaderBuilder {
    forward! {
        /// The timeout of one wait attempt for the next chunk.
        timeout(t: Option<Duration>);
        /// How many times a timed-out wait is retried.
        retry_count(n: u32);
        /// How long opening waits for the stream to be created (`None`: without limit).
        open_timeout(t: Option<Duration>);
        /// Spin iterations before parking.
        spin(n: u32);
        /// Where the reader starts.
        start_at(start: StartAt);
        /// Body validation level.
        validation(v: Validation);
        /// Take unset options from this configuration file instead of the usual search.
        config_file(path: impl Into<std::path::PathBuf>);
        /// Take unset options from this configuration instead of loading one.
        config(cfg: Config);
    }
    /// Attach as a reader.
    ///
    /// # Errors
    /// As [`SharedDataStream::create_reader`].
    pub fn open(self) -> Result<DataFrameStreamReader> {
        Ok(DataFrameStreamReader {
            inner: self.inner.open()?,
            polars_copied_columns: 0,
        })
    }
}

/// The writing end of a Polars stream. `Send`; one thread at a time.
pub struct DataFrameStreamWriter {
    inner: StreamWriter,
}

impl std::fmt::Debug for DataFrameStreamWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataFrameStreamWriter")
            .field("inner", &self.inner)
            .finish()
    }
}

impl DataFrameStreamWriter {
    /// Write `frame` as the next chunk (its Polars chunks become the chunk's record batches, not
    /// rechunked), waiting while the slowest reader is a whole ring behind.
    ///
    /// # Errors
    /// [`Error::Ffi`](crate::Error::Ffi) for a dtype without a standard Arrow form;
    /// [`Error::Stream`](crate::Error::Stream) with `ReadersBehind`, `Finished`, `SlotTooSmall`...
    pub fn write_chunk<'a>(&mut self, frame: impl IntoDataFrame<'a>) -> Result<WriteInfo> {
        let df = frame.into_dataframe()?;
        let (schema, batches) = dataframe_to_record_batches(&df)?;
        Ok(self.inner.write_frame(&schema, &batches)?)
    }

    /// End the stream cleanly: readers drain every chunk, then their iteration ends.
    ///
    /// # Errors
    /// As [`StreamWriter::finish`].
    pub fn finish(&mut self) -> Result<()> {
        Ok(self.inner.finish()?)
    }

    /// Wait until at least `n` readers are attached (or `timeout`); returns how many are.
    ///
    /// # Errors
    /// As [`StreamWriter::wait_for_readers`].
    pub fn wait_for_readers(&self, n: usize, timeout: Duration) -> Result<usize> {
        Ok(self.inner.wait_for_readers(n, timeout)?)
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// Counters of this writer.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// The Arrow-level writer.
    pub fn as_arrow(&mut self) -> &mut StreamWriter {
        &mut self.inner
    }
}

/// The reading end of a Polars stream. `Send`; one thread at a time.
pub struct DataFrameStreamReader {
    inner: StreamReader,
    polars_copied_columns: u64,
}

impl std::fmt::Debug for DataFrameStreamReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataFrameStreamReader")
            .field("inner", &self.inner)
            .field("polars_copied_columns", &self.polars_copied_columns)
            .finish()
    }
}

/// A chunk as a DataFrame, counting the columns Polars copies on import.
fn convert(copied: &mut u64, frame: &Frame) -> Result<DataFrame> {
    *copied += frame
        .schema()
        .fields()
        .iter()
        .filter(|f| import_copy_reason(f.data_type()).is_some())
        .count() as u64;
    Ok(record_batches_to_dataframe(
        frame.schema(),
        frame.batches(),
    )?)
}

impl DataFrameStreamReader {
    fn convert(&mut self, frame: &Frame) -> Result<DataFrame> {
        convert(&mut self.polars_copied_columns, frame)
    }

    /// The chunks as an async [`Stream`](futures_core::Stream) of DataFrames, for any executor: see
    /// [`StreamReader::chunks_async`] (no thread per reader, never blocks the executor, cancel-safe).
    pub fn chunks_async(&mut self) -> DataFrameChunksAsync<'_> {
        DataFrameChunksAsync {
            chunks: self.inner.chunks_async(),
            copied: &mut self.polars_copied_columns,
        }
    }

    /// The next chunk as a DataFrame, waiting up to `timeout` (one attempt; `None`: the configured
    /// timeout and retries). `Ok(None)` once the stream was finished and every chunk read.
    ///
    /// # Errors
    /// As [`StreamReader::next_chunk`], plus [`Error::Ffi`](crate::Error::Ffi).
    pub fn next_chunk(&mut self, timeout: Option<Duration>) -> Result<Option<DataFrame>> {
        match self.inner.next_chunk(timeout)? {
            Some(chunk) => self.convert(chunk.frame()).map(Some),
            None => Ok(None),
        }
    }

    /// The next chunk if one is ready now.
    ///
    /// # Errors
    /// As [`DataFrameStreamReader::next_chunk`].
    pub fn try_next_chunk(&mut self) -> Result<Option<DataFrame>> {
        match self.inner.try_next_chunk()? {
            Some(chunk) => self.convert(chunk.frame()).map(Some),
            None => Ok(None),
        }
    }

    /// Iterate over the chunks as DataFrames until the clean end of the stream; an error is
    /// yielded once and ends the iteration.
    pub fn iter_chunks(&mut self) -> DataFrameChunks<'_> {
        DataFrameChunks {
            reader: self,
            failed: false,
        }
    }

    /// Whether the stream was finished and every chunk read.
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }

    /// Chunks returned so far.
    pub fn delivered(&self) -> u64 {
        self.inner.delivered()
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// Counters of the Arrow layer.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// Columns Polars converted (copied) on import: Categorical and Enum columns.
    pub fn polars_copied_columns(&self) -> u64 {
        self.polars_copied_columns
    }

    /// The Arrow-level reader.
    pub fn as_arrow(&mut self) -> &mut StreamReader {
        &mut self.inner
    }
}

/// The async stream of [`DataFrameStreamReader::chunks_async`].
#[derive(Debug)]
pub struct DataFrameChunksAsync<'a> {
    chunks: qadataswap_stream::AsyncChunks<'a>,
    copied: &'a mut u64,
}

impl futures_core::Stream for DataFrameChunksAsync<'_> {
    type Item = Result<DataFrame>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<DataFrame>>> {
        let this = self.get_mut();
        std::pin::Pin::new(&mut this.chunks)
            .poll_next(cx)
            .map(|item| {
                item.map(|r| {
                    r.map_err(crate::Error::from)
                        .and_then(|c| convert(this.copied, c.frame()))
                })
            })
    }
}

/// Iterator of [`DataFrameStreamReader::iter_chunks`].
pub struct DataFrameChunks<'a> {
    reader: &'a mut DataFrameStreamReader,
    failed: bool,
}

impl std::fmt::Debug for DataFrameChunks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataFrameChunks")
            .field("stream", &self.reader.name())
            .field("failed", &self.failed)
            .finish()
    }
}

impl Iterator for DataFrameChunks<'_> {
    type Item = Result<DataFrame>;

    fn next(&mut self) -> Option<Result<DataFrame>> {
        if self.failed || self.reader.is_finished() {
            return None;
        }
        match self.reader.next_chunk(None) {
            Ok(Some(df)) => Some(Ok(df)),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
