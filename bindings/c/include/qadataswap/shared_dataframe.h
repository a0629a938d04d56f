// shared_dataframe.h: the C++ API of QADataSwap over Arrow C++ (header-only, on the C ABI in qadataswap.h).
//
//   auto writer = qadataswap::SharedDataFrame::CreateWriter("mydata", 100 * 1024 * 1024);
//   writer->Write(table);                                   // throws qadataswap::Error on failure
//
//   auto reader = qadataswap::SharedDataFrame::CreateReader("mydata");
//   auto result = reader->Read();                           // arrow::Result<std::shared_ptr<arrow::Table>>
//   auto table = result.ValueOrDie();                       // columns point into shared memory: no copy
//
// Streams (lossless, ordered chunks with back-pressure; every reader gets every chunk):
//
//   auto sw = qadataswap::SharedDataStream::CreateWriter("ticks", 64 * 1024 * 1024);
//   auto have = sw->WaitForReaders(1, std::chrono::seconds(10));  // optional: wait for the audience
//   sw->WriteChunk(batch);                                  // waits while the slowest reader is a ring behind
//   auto st = sw->Finish();                                 // readers drain, then see the end; check st.ok()
//
//   auto sr = qadataswap::SharedDataStream::CreateReader("ticks");
//   for (auto& chunk : sr->Chunks()) {                      // arrow::Result<qadataswap::Chunk>, in order
//     if (!chunk.ok()) { ... chunk.status() ...; break; }   // writer died, timeout...
//     use(chunk->table, chunk->info.seq);                   // zero-copy; drop it before taking many more
//   }
//
// Code that avoids exceptions uses the arrow::Result forms: SharedDataFrame::MakeWriter / MakeReader and
// Write(..., std::nothrow). Read and its variants never throw.
//
// Lifetime: a table returned by Read keeps its slot leased (the writer will not overwrite it) until the last
// arrow::Buffer of it is destroyed; it stays valid after the reader, and even the writer, are gone. Copy it
// (e.g. with ReadCopied) rather than holding it for long: the ring has only num_buffers slots.
//
// Threads: a Writer serialises its callers; a Reader may be used by many threads at once.
//
// Errors: an arrow::Status from this API carries a StatusDetail with the qds_status code; get it back with
// qadataswap::StatusCodeOf(status). Messages say what happened and what to do.
#ifndef QADATASWAP_SHARED_DATAFRAME_H
#define QADATASWAP_SHARED_DATAFRAME_H

#include <arrow/api.h>
#include <arrow/c/bridge.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

#include "qadataswap/qadataswap.h"

namespace qadataswap {

/// The qds_status of a failed call, attached to the arrow::Status it came back as.
class StatusDetail : public arrow::StatusDetail {
 public:
  explicit StatusDetail(qds_status code) : code_(code) {}
  static constexpr const char* kTypeId = "qadataswap::StatusDetail";
  const char* type_id() const override { return kTypeId; }
  std::string ToString() const override { return qds_status_string(code_); }
  qds_status code() const { return code_; }

 private:
  qds_status code_;
};

/// The qds_status carried by `st` (QDS_OK for an OK status, QDS_ERR_OTHER for a status not made by this library).
inline qds_status StatusCodeOf(const arrow::Status& st) {
  if (st.ok()) return QDS_OK;
  const auto& detail = st.detail();
  if (detail && std::string(detail->type_id()) == StatusDetail::kTypeId) {
    return static_cast<const StatusDetail&>(*detail).code();
  }
  return QDS_ERR_OTHER;
}

/// Thrown by the throwing forms (CreateWriter, CreateReader, Write).
class Error : public std::runtime_error {
 public:
  Error(qds_status code, const std::string& message) : std::runtime_error(message), code_(code) {}
  qds_status code() const { return code_; }

 private:
  qds_status code_;
};

namespace detail {

/// The arrow::Status for a qds_status, with this thread's message and the code as detail.
inline arrow::Status ToStatus(qds_status code) {
  if (code == QDS_OK) return arrow::Status::OK();
  std::string msg = std::string(qds_status_string(code)) + ": " + qds_last_error_message();
  auto detail = std::make_shared<StatusDetail>(code);
  arrow::StatusCode sc;
  switch (code) {
    case QDS_ERR_INVALID_ARGUMENT:
      sc = arrow::StatusCode::Invalid;
      break;
    case QDS_ERR_ALREADY_EXISTS:
    case QDS_ERR_WRITER_ALIVE:
    case QDS_ERR_IN_USE:
      sc = arrow::StatusCode::AlreadyExists;
      break;
    case QDS_ERR_SLOT_TOO_SMALL:
    case QDS_ERR_SCHEMA_TOO_LARGE:
    case QDS_ERR_TOO_MANY_READERS:
    case QDS_ERR_ALL_SLOTS_LEASED:
    case QDS_ERR_READERS_BEHIND:
    case QDS_ERR_RING_HELD:
      sc = arrow::StatusCode::CapacityError;
      break;
    case QDS_ERR_ARROW:
      sc = arrow::StatusCode::TypeError;
      break;
    case QDS_ERR_FINISHED:
    case QDS_ERR_CHUNKS_MISSED:
      sc = arrow::StatusCode::Invalid;
      break;
    case QDS_ERR_PANIC:
    case QDS_ERR_OTHER:
      sc = arrow::StatusCode::UnknownError;
      break;
    default:
      sc = arrow::StatusCode::IOError;
      break;
  }
  return arrow::Status(sc, std::move(msg), std::move(detail));
}

[[noreturn]] inline void Throw(const arrow::Status& st) { throw Error(StatusCodeOf(st), st.ToString()); }

template <typename Rep, typename Period>
int64_t ToMillis(std::chrono::duration<Rep, Period> d) {
  if (d < std::chrono::duration<Rep, Period>::zero()) return 0;
  return static_cast<int64_t>(std::chrono::ceil<std::chrono::milliseconds>(d).count());
}

inline struct ArrowArrayStream ReleasedStream() {
  struct ArrowArrayStream s;
  s.get_schema = nullptr;
  s.get_next = nullptr;
  s.get_last_error = nullptr;
  s.release = nullptr;
  s.private_data = nullptr;
  return s;
}

}  // namespace detail

/// What a write published.
using WriteInfo = qds_write_info;
/// What a read returned.
using FrameInfo = qds_frame_info;
/// Counters of a stream writer or reader.
using StreamStats = qds_stream_stats;

/// Writer options (defaults from the library; chain the setters).
struct WriterOptions {
  WriterOptions() { qds_writer_options_init(&c); }
  WriterOptions& NumBuffers(size_t n) { c.num_buffers = n; return *this; }
  WriterOptions& ReaderCapacity(size_t n) { c.reader_capacity = n; return *this; }
  WriterOptions& SchemaCapacity(size_t n) { c.schema_capacity = n; return *this; }
  WriterOptions& Permissions(uint32_t mode) { c.permissions = mode; return *this; }
  WriterOptions& Persistent(bool yes) { c.persistent = yes ? 1u : 0u; return *this; }
  WriterOptions& Spin(uint32_t n) { c.spin = n; return *this; }
  template <typename Rep, typename Period>
  WriterOptions& LeaseTimeout(std::chrono::duration<Rep, Period> d) {
    c.lease_timeout_ms = static_cast<uint64_t>(detail::ToMillis(d));
    return *this;
  }
  qds_writer_options c;
};

/// Reader options (defaults from the library; chain the setters).
struct ReaderOptions {
  ReaderOptions() { qds_reader_options_init(&c); }
  /// Default timeout of blocking reads (the default is to wait until data arrives or the writer goes away).
  template <typename Rep, typename Period>
  ReaderOptions& Timeout(std::chrono::duration<Rep, Period> d) {
    c.timeout_ms = detail::ToMillis(d);
    return *this;
  }
  template <typename Rep, typename Period>
  ReaderOptions& OpenTimeout(std::chrono::duration<Rep, Period> d) {
    c.open_timeout_ms = static_cast<uint64_t>(detail::ToMillis(d));
    return *this;
  }
  ReaderOptions& Spin(uint32_t n) { c.spin = n; return *this; }
  /// Full Arrow validation of the bodies (O(rows)) instead of trusting them.
  ReaderOptions& FullValidation(bool yes) {
    c.validation = yes ? QDS_VALIDATION_FULL : QDS_VALIDATION_TRUSTED;
    return *this;
  }
  ReaderOptions& AllowSharedMode(bool yes) { c.allow_shared_mode = yes ? 1u : 0u; return *this; }
  qds_reader_options c;
};

/// Publishes snapshots into the named segment it created. Not copyable; closes on destruction.
class Writer {
 public:
  ~Writer() { qds_snapshot_writer_free(w_); }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  /// Publish `table` as the newest frame (its chunks become the frame's batches; not rechunked). Throws Error.
  WriteInfo Write(const arrow::Table& table) { return Unwrap(Write(table, std::nothrow)); }
  WriteInfo Write(const std::shared_ptr<arrow::Table>& table) { return Write(*Checked(table)); }
  /// Publish one record batch as the newest frame. Throws Error.
  WriteInfo Write(const arrow::RecordBatch& batch) { return Unwrap(Write(batch, std::nothrow)); }
  WriteInfo Write(const std::shared_ptr<arrow::RecordBatch>& batch) { return Write(*Checked(batch)); }
  /// Publish every batch of `reader` as one frame. Throws Error.
  WriteInfo Write(std::shared_ptr<arrow::RecordBatchReader> reader) {
    return Unwrap(Write(std::move(reader), std::nothrow));
  }

  /// Non-throwing forms.
  arrow::Result<WriteInfo> Write(const arrow::Table& table, const std::nothrow_t&) {
    auto batches = std::make_shared<arrow::TableBatchReader>(table);
    return Write(std::shared_ptr<arrow::RecordBatchReader>(std::move(batches)), std::nothrow);
  }
  arrow::Result<WriteInfo> Write(const arrow::RecordBatch& batch, const std::nothrow_t&) {
    struct ArrowArray array;
    struct ArrowSchema schema;
    ARROW_RETURN_NOT_OK(arrow::ExportRecordBatch(batch, &array, &schema));
    WriteInfo info{};
    qds_status st = qds_snapshot_writer_write_batch(w_, &array, &schema, &info);
    schema.release(&schema);
    ARROW_RETURN_NOT_OK(detail::ToStatus(st));
    return info;
  }
  arrow::Result<WriteInfo> Write(std::shared_ptr<arrow::RecordBatchReader> reader, const std::nothrow_t&) {
    struct ArrowArrayStream stream;
    ARROW_RETURN_NOT_OK(arrow::ExportRecordBatchReader(std::move(reader), &stream));
    WriteInfo info{};
    ARROW_RETURN_NOT_OK(detail::ToStatus(qds_snapshot_writer_write_stream(w_, &stream, &info)));
    return info;
  }

  /// Close cleanly: readers keep what they hold, then ReadNext fails with QDS_ERR_WRITER_CLOSED; the name is
  /// unlinked unless persistent. The destructor does the same, silently.
  arrow::Status Close() { return detail::ToStatus(qds_snapshot_writer_close(w_)); }

  const std::string& name() const { return name_; }
  /// The C handle, for the C API.
  qds_snapshot_writer* handle() const { return w_; }

 private:
  friend class SharedDataFrame;
  Writer(qds_snapshot_writer* w, std::string name) : w_(w), name_(std::move(name)) {}
  static WriteInfo Unwrap(arrow::Result<WriteInfo> r) {
    if (!r.ok()) detail::Throw(r.status());
    return *r;
  }
  template <typename T>
  static const std::shared_ptr<T>& Checked(const std::shared_ptr<T>& p) {
    if (!p) throw Error(QDS_ERR_INVALID_ARGUMENT, "QDS_ERR_INVALID_ARGUMENT: Write was given a null pointer");
    return p;
  }
  qds_snapshot_writer* w_;
  std::string name_;
};

/// A table read from shared memory and what the library knows about it.
struct Frame {
  std::shared_ptr<arrow::Table> table;
  FrameInfo info;
};

/// Reads snapshots of a named segment. Not copyable; detaches on destruction (tables already read stay valid).
class Reader {
 public:
  ~Reader() { qds_snapshot_reader_free(r_); }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  /// The newest snapshot as a table pointing into shared memory; blocks (up to the reader's default timeout)
  /// only until a first one exists.
  arrow::Result<std::shared_ptr<arrow::Table>> Read() const { return TableOf(ReadFrame()); }
  /// As Read, with a timeout.
  template <typename Rep, typename Period>
  arrow::Result<std::shared_ptr<arrow::Table>> Read(std::chrono::duration<Rep, Period> timeout) const {
    return TableOf(ReadFrame(timeout));
  }
  /// The newest snapshot strictly newer than the last one this reader returned; after the writer closed and
  /// everything was read: QDS_ERR_WRITER_CLOSED.
  template <typename Rep, typename Period>
  arrow::Result<std::shared_ptr<arrow::Table>> ReadNext(std::chrono::duration<Rep, Period> timeout) const {
    return TableOf(ReadNextFrame(timeout));
  }
  arrow::Result<std::shared_ptr<arrow::Table>> ReadNext() const { return TableOf(ReadNextFrame()); }
  /// The newest snapshot without blocking; nullptr if none was published yet.
  arrow::Result<std::shared_ptr<arrow::Table>> TryRead() const {
    struct ArrowArrayStream s = detail::ReleasedStream();
    qds_status st = qds_snapshot_reader_try_read(r_, &s, nullptr);
    if (st == QDS_NO_FRAME) return std::shared_ptr<arrow::Table>();
    ARROW_RETURN_NOT_OK(detail::ToStatus(st));
    return ToTable(&s);
  }
  /// The newest snapshot, fully validated and copied into private memory.
  arrow::Result<std::shared_ptr<arrow::Table>> ReadCopied() const {
    struct ArrowArrayStream s = detail::ReleasedStream();
    ARROW_RETURN_NOT_OK(detail::ToStatus(qds_snapshot_reader_read_copied(r_, &s, nullptr)));
    return ToTable(&s);
  }

  /// Forms that also return the frame's sequence number and sizes.
  arrow::Result<Frame> ReadFrame() const { return Framed(QDS_TIMEOUT_DEFAULT, false); }
  template <typename Rep, typename Period>
  arrow::Result<Frame> ReadFrame(std::chrono::duration<Rep, Period> timeout) const {
    return Framed(detail::ToMillis(timeout), false);
  }
  arrow::Result<Frame> ReadNextFrame() const { return Framed(QDS_TIMEOUT_DEFAULT, true); }
  template <typename Rep, typename Period>
  arrow::Result<Frame> ReadNextFrame(std::chrono::duration<Rep, Period> timeout) const {
    return Framed(detail::ToMillis(timeout), true);
  }

  /// The newest frame as a lazy batch reader (each batch imported on demand).
  arrow::Result<std::shared_ptr<arrow::RecordBatchReader>> ReadBatches() const {
    struct ArrowArrayStream s = detail::ReleasedStream();
    ARROW_RETURN_NOT_OK(detail::ToStatus(qds_snapshot_reader_read(r_, &s, nullptr)));
    return arrow::ImportRecordBatchReader(&s);
  }

  /// The newest frame's schema (nullptr before the first write).
  arrow::Result<std::shared_ptr<arrow::Schema>> schema() const {
    struct ArrowSchema c;
    qds_status st = qds_snapshot_reader_schema(r_, &c);
    if (st == QDS_NO_FRAME) return std::shared_ptr<arrow::Schema>();
    ARROW_RETURN_NOT_OK(detail::ToStatus(st));
    return arrow::ImportSchema(&c);
  }
  /// Slot leases this reader holds right now (non-zero while tables it returned are alive).
  arrow::Result<uint64_t> LeaseCount() const {
    uint64_t n = 0;
    ARROW_RETURN_NOT_OK(detail::ToStatus(qds_snapshot_reader_lease_count(r_, &n)));
    return n;
  }
  /// Sequence number of the last frame returned (0: none yet).
  arrow::Result<uint64_t> LastSeq() const {
    uint64_t n = 0;
    ARROW_RETURN_NOT_OK(detail::ToStatus(qds_snapshot_reader_last_seq(r_, &n)));
    return n;
  }
  /// Detach now (the destructor does it too).
  arrow::Status Close() { return detail::ToStatus(qds_snapshot_reader_close(r_)); }

  const std::string& name() const { return name_; }
  /// The C handle, for the C API.
  const qds_snapshot_reader* handle() const { return r_; }

 private:
  friend class SharedDataFrame;
  Reader(qds_snapshot_reader* r, std::string name) : r_(r), name_(std::move(name)) {}

  static arrow::Result<std::shared_ptr<arrow::Table>> ToTable(struct ArrowArrayStream* s) {
    ARROW_ASSIGN_OR_RAISE(auto batches, arrow::ImportRecordBatchReader(s));
    return batches->ToTable();
  }
  static arrow::Result<std::shared_ptr<arrow::Table>> TableOf(arrow::Result<Frame> f) {
    ARROW_ASSIGN_OR_RAISE(auto frame, std::move(f));
    return std::move(frame.table);
  }
  arrow::Result<Frame> Framed(int64_t timeout_ms, bool next) const {
    struct ArrowArrayStream s = detail::ReleasedStream();
    Frame frame{};
    qds_status st = next ? qds_snapshot_reader_read_next(r_, timeout_ms, &s, &frame.info)
                         : (timeout_ms == QDS_TIMEOUT_DEFAULT
                                ? qds_snapshot_reader_read(r_, &s, &frame.info)
                                : qds_snapshot_reader_read_timeout(r_, timeout_ms, &s, &frame.info));
    ARROW_RETURN_NOT_OK(detail::ToStatus(st));
    ARROW_ASSIGN_OR_RAISE(frame.table, ToTable(&s));
    return frame;
  }

  qds_snapshot_reader* r_;
  std::string name_;
};

/// Entry points, with the seed's names.
class SharedDataFrame {
 public:
  /// Create the snapshot segment `name` with `size_bytes` of data capacity (split across the slots). Throws Error.
  static std::unique_ptr<Writer> CreateWriter(const std::string& name, size_t size_bytes,
                                              const WriterOptions& options = WriterOptions()) {
    auto r = MakeWriter(name, size_bytes, options);
    if (!r.ok()) detail::Throw(r.status());
    return std::move(r).ValueUnsafe();
  }
  /// Attach to the snapshot segment `name`. Throws Error.
  static std::unique_ptr<Reader> CreateReader(const std::string& name,
                                              const ReaderOptions& options = ReaderOptions()) {
    auto r = MakeReader(name, options);
    if (!r.ok()) detail::Throw(r.status());
    return std::move(r).ValueUnsafe();
  }
  /// Non-throwing forms.
  static arrow::Result<std::unique_ptr<Writer>> MakeWriter(const std::string& name, size_t size_bytes,
                                                           const WriterOptions& options = WriterOptions()) {
    qds_snapshot_writer* w = nullptr;
    ARROW_RETURN_NOT_OK(detail::ToStatus(qds_snapshot_writer_create(name.c_str(), size_bytes, &options.c, &w)));
    return std::unique_ptr<Writer>(new Writer(w, name));
  }
  static arrow::Result<std::unique_ptr<Reader>> MakeReader(const std::string& name,
                                                           const ReaderOptions& options = ReaderOptions()) {
    qds_snapshot_reader* r = nullptr;
    ARROW_RETURN_NOT_OK(detail::ToStatus(qds_snapshot_reader_open(name.c_str(), &options.c, &r)));
    return std::unique_ptr<Reader>(new Reader(r, name));
  }
  /// Remove the segment `name` if it is ours and no live process uses it (the rule of `qadataswap rm`); `force`
  /// also removes one that dead processes are still registered in. Anything else is refused and left alone.
  static arrow::Status Remove(const std::string& name, bool force = false) {
    return detail::ToStatus(qds_remove(name.c_str(), force ? 1 : 0));
  }
};

// ---- streams ----

/// Stream writer options (defaults from the configuration; chain the setters).
struct StreamWriterOptions {
  StreamWriterOptions() { qds_stream_writer_options_init(&c); }
  StreamWriterOptions& NumBuffers(size_t n) { c.num_buffers = n; return *this; }
  StreamWriterOptions& ReaderCapacity(size_t n) { c.reader_capacity = n; return *this; }
  /// One attempt of a write waiting for the slowest reader.
  template <typename Rep, typename Period>
  StreamWriterOptions& Timeout(std::chrono::duration<Rep, Period> d) {
    c.timeout_ms = detail::ToMillis(d);
    return *this;
  }
  /// Writes wait for slow readers without limit (death of a reader still frees the writer).
  StreamWriterOptions& NoTimeout() { c.timeout_ms = QDS_TIMEOUT_INFINITE; return *this; }
  StreamWriterOptions& RetryCount(uint32_t n) { c.retry_count = n; return *this; }
  StreamWriterOptions& Persistent(bool yes) { c.persistent = yes ? 1u : 0u; return *this; }
  StreamWriterOptions& Spin(uint32_t n) { c.spin = n; return *this; }
  /// Readers attached before the first chunk is written (default 1; 0: broadcast to whoever is there).
  StreamWriterOptions& MinReaders(uint32_t n) { c.min_readers = n; return *this; }
  /// How long Finish() keeps the name for attached readers that have not read the end.
  template <typename Rep, typename Period>
  StreamWriterOptions& Linger(std::chrono::duration<Rep, Period> d) {
    c.linger_ms = static_cast<uint64_t>(detail::ToMillis(d));
    return *this;
  }
  qds_stream_writer_options c;
};

/// Stream reader options (defaults from the configuration; chain the setters).
struct StreamReaderOptions {
  StreamReaderOptions() { qds_stream_reader_options_init(&c); }
  /// One attempt of a read with the default timeout.
  template <typename Rep, typename Period>
  StreamReaderOptions& Timeout(std::chrono::duration<Rep, Period> d) {
    c.timeout_ms = detail::ToMillis(d);
    return *this;
  }
  StreamReaderOptions& NoTimeout() { c.timeout_ms = QDS_TIMEOUT_INFINITE; return *this; }
  StreamReaderOptions& RetryCount(uint32_t n) { c.retry_count = n; return *this; }
  /// Start at the first chunk published after attaching instead of the oldest one still in the ring.
  StreamReaderOptions& StartAtNext(bool yes = true) { c.start = yes ? QDS_START_NEXT : QDS_START_OLDEST; return *this; }
  StreamReaderOptions& Spin(uint32_t n) { c.spin = n; return *this; }
  StreamReaderOptions& FullValidation(bool yes) {
    c.validation = yes ? QDS_VALIDATION_FULL : QDS_VALIDATION_TRUSTED;
    return *this;
  }
  qds_stream_reader_options c;
};

/// Writes the chunks of a named stream it created. Not copyable; closes (without finishing) on destruction, so
/// readers of a stream whose writer forgot Finish() get QDS_ERR_WRITER_CLOSED, not a clean end.
class StreamWriter {
 public:
  ~StreamWriter() { qds_stream_writer_free(w_); }
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;

  /// Write `table` as the next chunk (its chunks become the chunk's batches; not rechunked). Throws Error.
  WriteInfo WriteChunk(const arrow::Table& table) { return Unwrap(WriteChunk(table, std::nothrow)); }
  WriteInfo WriteChunk(const std::shared_ptr<arrow::Table>& table) { return WriteChunk(*Checked(table)); }
  /// Write one record batch as the next chunk. Throws Error.
  WriteInfo WriteChunk(const arrow::RecordBatch& batch) { return Unwrap(WriteChunk(batch, std::nothrow)); }
  WriteInfo WriteChunk(const std::shared_ptr<arrow::RecordBatch>& batch) { return WriteChunk(*Checked(batch)); }

  /// Non-throwing forms.
  arrow::Result<WriteInfo> WriteChunk(const arrow::Table& table, const std::nothrow_t&) {
    auto batches = std::make_shared<arrow::TableBatchReader>(table);
    struct ArrowArrayStream stream;
    ARROW_RETURN_NOT_OK(
        arrow::ExportRecordBatchReader(std::shared_ptr<arrow::RecordBatchReader>(std::move(batches)), &stream));
    WriteInfo info{};
    ARROW_RETURN_NOT_OK(detail::ToStatus(qds_stream_writer_write_stream(w_, &stream, &info)));
    return info;
  }
  arrow::Result<WriteInfo> WriteChunk(const arrow::RecordBatch& batch, const std::nothrow_t&) {
    struct ArrowArray array;
    struct ArrowSchema schema;
    ARROW_RETURN_NOT_OK(arrow::ExportRecordBatch(batch, &array, &schema));
    WriteInfo info{};
    qds_status st = qds_stream_writer_write_batch(w_, &array, &schema, &info);
    schema.release(&schema);
    ARROW_RETURN_NOT_OK(detail::ToStatus(st));
    return info;
  }

  /// Wait until at least `n` readers are attached (QDS_ERR_TIMEOUT if fewer did within `timeout`); returns how
  /// many are.
  template <typename Rep, typename Period>
  arrow::Result<size_t> WaitForReaders(size_t n, std::chrono::duration<Rep, Period> timeout) const {
    size_t have = 0;
    ARROW_RETURN_NOT_OK(
        detail::ToStatus(qds_stream_writer_wait_for_readers(w_, n, detail::ToMillis(timeout), &have)));
    return have;
  }
  /// Readers attached now.
  arrow::Result<size_t> Readers() const {
    size_t n = 0;
    ARROW_RETURN_NOT_OK(detail::ToStatus(qds_stream_writer_readers(w_, &n)));
    return n;
  }
  /// Counters (lease_waits: writes that waited for the slowest reader).
  arrow::Result<StreamStats> Stats() const {
    StreamStats s{};
    ARROW_RETURN_NOT_OK(detail::ToStatus(qds_stream_writer_stats(w_, &s)));
    return s;
  }
  /// End the stream cleanly: readers drain every chunk, then see the end. Later writes fail (QDS_ERR_FINISHED).
  arrow::Status Finish() { return detail::ToStatus(qds_stream_writer_finish(w_)); }
  /// Close without finishing (if not finished): readers drain, then get QDS_ERR_WRITER_CLOSED.
  arrow::Status Close() { return detail::ToStatus(qds_stream_writer_close(w_)); }

  const std::string& name() const { return name_; }
  /// The C handle, for the C API.
  qds_stream_writer* handle() const { return w_; }

 private:
  friend class SharedDataStream;
  StreamWriter(qds_stream_writer* w, std::string name) : w_(w), name_(std::move(name)) {}
  static WriteInfo Unwrap(arrow::Result<WriteInfo> r) {
    if (!r.ok()) detail::Throw(r.status());
    return *r;
  }
  template <typename T>
  static const std::shared_ptr<T>& Checked(const std::shared_ptr<T>& p) {
    if (!p) throw Error(QDS_ERR_INVALID_ARGUMENT, "QDS_ERR_INVALID_ARGUMENT: WriteChunk was given a null pointer");
    return p;
  }
  qds_stream_writer* w_;
  std::string name_;
};

/// One chunk of a stream: a table over the shared memory (nullptr at the end of the stream) and its number.
struct Chunk {
  std::shared_ptr<arrow::Table> table;
  FrameInfo info;
  /// False at the end of the stream.
  explicit operator bool() const { return table != nullptr; }
};

class StreamReader;

/// Input iterator over a reader's chunks (StreamReader::Chunks()): yields arrow::Result<Chunk> in order until the
/// clean end of the stream; an error is yielded once and then the iteration ends. Advancing drops the iterator's
/// reference to the previous chunk.
class ChunkIterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = arrow::Result<Chunk>;
  using difference_type = std::ptrdiff_t;
  using pointer = value_type*;
  using reference = value_type&;

  ChunkIterator() = default;
  reference operator*() { return current_; }
  pointer operator->() { return &current_; }
  inline ChunkIterator& operator++();
  void operator++(int) { ++*this; }
  bool operator==(const ChunkIterator& o) const { return r_ == o.r_; }
  bool operator!=(const ChunkIterator& o) const { return r_ != o.r_; }

 private:
  friend class ChunkRange;
  ChunkIterator(StreamReader* r, int64_t timeout_ms) : r_(r), timeout_ms_(timeout_ms) { ++*this; }
  StreamReader* r_ = nullptr;
  int64_t timeout_ms_ = QDS_TIMEOUT_DEFAULT;
  bool failed_ = false;
  value_type current_ = Chunk{};
};

/// A range over the chunks of a reader, for range-for.
class ChunkRange {
 public:
  ChunkIterator begin() { return ChunkIterator(r_, timeout_ms_); }
  ChunkIterator end() { return ChunkIterator(); }

 private:
  friend class StreamReader;
  ChunkRange(StreamReader* r, int64_t timeout_ms) : r_(r), timeout_ms_(timeout_ms) {}
  StreamReader* r_;
  int64_t timeout_ms_;
};

/// Reads every chunk of a named stream, in order. Not copyable; detaches on destruction (chunks already read stay
/// valid). One thread at a time.
class StreamReader {
 public:
  ~StreamReader() { qds_stream_reader_free(r_); }
  StreamReader(const StreamReader&) = delete;
  StreamReader& operator=(const StreamReader&) = delete;

  /// The next chunk as a table pointing into shared memory, or nullptr at the clean end of the stream. Waits with
  /// the reader's default timeout (and retries); fails with QDS_ERR_WRITER_DIED / QDS_ERR_WRITER_CLOSED once every
  /// published chunk was read, QDS_ERR_TIMEOUT, QDS_ERR_RING_HELD (release older chunks).
  arrow::Result<std::shared_ptr<arrow::Table>> ReadNext() { return TableOf(NextChunkMs(QDS_TIMEOUT_DEFAULT)); }
  template <typename Rep, typename Period>
  arrow::Result<std::shared_ptr<arrow::Table>> ReadNext(std::chrono::duration<Rep, Period> timeout) {
    return TableOf(NextChunkMs(detail::ToMillis(timeout)));
  }
  /// As ReadNext, with the chunk's number and sizes (Chunk::table is nullptr at the end).
  arrow::Result<Chunk> ReadNextChunk() { return NextChunkMs(QDS_TIMEOUT_DEFAULT); }
  template <typename Rep, typename Period>
  arrow::Result<Chunk> ReadNextChunk(std::chrono::duration<Rep, Period> timeout) {
    return NextChunkMs(detail::ToMillis(timeout));
  }
  /// The next chunk if one is ready now; nullptr table if not (then finished() tells whether it is the end).
  arrow::Result<Chunk> TryReadNextChunk() {
    struct ArrowArrayStream s = detail::ReleasedStream();
    Chunk chunk{};
    qds_status st = qds_stream_reader_try_next_chunk(r_, &s, &chunk.info);
    if (st == QDS_NO_FRAME) return chunk;
    if (st == QDS_END_OF_STREAM) {
      finished_ = true;
      return chunk;
    }
    ARROW_RETURN_NOT_OK(detail::ToStatus(st));
    ARROW_ASSIGN_OR_RAISE(chunk.table, ToTable(&s));
    return chunk;
  }

  /// Range-for over the chunks until the end of the stream, each read with the default timeout (or `timeout`).
  ChunkRange Chunks() { return ChunkRange(this, QDS_TIMEOUT_DEFAULT); }
  template <typename Rep, typename Period>
  ChunkRange Chunks(std::chrono::duration<Rep, Period> timeout) {
    return ChunkRange(this, detail::ToMillis(timeout));
  }

  /// This reader as an arrow::RecordBatchReader over the chunks: each chunk's batches in order (zero-copy: each
  /// batch holds its chunk's lease), then nullptr at the clean end of the stream. Reads the first chunk now (with
  /// the default timeout, or `timeout`) to know the schema; a later chunk with another schema is an Invalid
  /// status. Borrows this reader: keep it alive, and do not read from it otherwise, while the adapter is in use
  /// (or hand it over with the static FromReader). Drop each batch before pulling many more (QDS_ERR_RING_HELD).
  inline arrow::Result<std::shared_ptr<arrow::RecordBatchReader>> AsRecordBatchReader();
  template <typename Rep, typename Period>
  arrow::Result<std::shared_ptr<arrow::RecordBatchReader>> AsRecordBatchReader(
      std::chrono::duration<Rep, Period> timeout) {
    return MakeBatchReader(this, nullptr, detail::ToMillis(timeout));
  }
  /// As AsRecordBatchReader, owning the reader (e.g. to hand to arrow::ExportRecordBatchReader).
  static inline arrow::Result<std::shared_ptr<arrow::RecordBatchReader>> FromReader(
      std::unique_ptr<StreamReader> reader);

  /// Whether the stream was finished and this reader read every chunk.
  bool finished() const { return finished_; }
  /// The number of the next chunk this reader will return.
  arrow::Result<uint64_t> NextSeq() const {
    uint64_t n = 0;
    ARROW_RETURN_NOT_OK(detail::ToStatus(qds_stream_reader_position(r_, &n, nullptr)));
    return n;
  }
  /// Chunks returned so far.
  arrow::Result<uint64_t> Delivered() const {
    uint64_t n = 0;
    ARROW_RETURN_NOT_OK(detail::ToStatus(qds_stream_reader_position(r_, nullptr, &n)));
    return n;
  }
  /// Counters.
  arrow::Result<StreamStats> Stats() const {
    StreamStats s{};
    ARROW_RETURN_NOT_OK(detail::ToStatus(qds_stream_reader_stats(r_, &s)));
    return s;
  }
  /// Slot leases this reader holds right now (one per chunk still alive).
  arrow::Result<uint64_t> LeaseCount() const {
    uint64_t n = 0;
    ARROW_RETURN_NOT_OK(detail::ToStatus(qds_stream_reader_lease_count(r_, &n)));
    return n;
  }
  /// Detach now (the destructor does it too).
  arrow::Status Close() { return detail::ToStatus(qds_stream_reader_close(r_)); }

  const std::string& name() const { return name_; }
  /// The C handle, for the C API.
  const qds_stream_reader* handle() const { return r_; }

 private:
  friend class SharedDataStream;
  friend class ChunkIterator;
  friend class ChunkBatchReader;
  StreamReader(qds_stream_reader* r, std::string name) : r_(r), name_(std::move(name)) {}
  static inline arrow::Result<std::shared_ptr<arrow::RecordBatchReader>> MakeBatchReader(
      StreamReader* r, std::unique_ptr<StreamReader> owned, int64_t timeout_ms);

  static arrow::Result<std::shared_ptr<arrow::Table>> ToTable(struct ArrowArrayStream* s) {
    ARROW_ASSIGN_OR_RAISE(auto batches, arrow::ImportRecordBatchReader(s));
    return batches->ToTable();
  }
  static arrow::Result<std::shared_ptr<arrow::Table>> TableOf(arrow::Result<Chunk> c) {
    ARROW_ASSIGN_OR_RAISE(auto chunk, std::move(c));
    return std::move(chunk.table);
  }
  arrow::Result<Chunk> NextChunkMs(int64_t timeout_ms) {
    struct ArrowArrayStream s = detail::ReleasedStream();
    Chunk chunk{};
    qds_status st = qds_stream_reader_next_chunk(r_, timeout_ms, &s, &chunk.info);
    if (st == QDS_END_OF_STREAM) {
      finished_ = true;
      return chunk;
    }
    ARROW_RETURN_NOT_OK(detail::ToStatus(st));
    ARROW_ASSIGN_OR_RAISE(chunk.table, ToTable(&s));
    return chunk;
  }

  qds_stream_reader* r_;
  std::string name_;
  bool finished_ = false;
};

inline ChunkIterator& ChunkIterator::operator++() {
  if (r_ == nullptr) return *this;
  if (failed_) {
    r_ = nullptr;
    return *this;
  }
  current_ = Chunk{};  // drop our reference to the previous chunk (and its lease) before reading on
  auto next = r_->NextChunkMs(timeout_ms_);
  if (next.ok() && !next->table) {
    r_ = nullptr;
    return *this;
  }
  failed_ = !next.ok();
  current_ = std::move(next);
  return *this;
}

/// StreamReader::AsRecordBatchReader: a stream's chunks as one arrow::RecordBatchReader.
class ChunkBatchReader : public arrow::RecordBatchReader {
 public:
  std::shared_ptr<arrow::Schema> schema() const override { return schema_; }

  arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* out) override {
    *out = nullptr;
    while (true) {
      if (batches_) {
        ARROW_RETURN_NOT_OK(batches_->ReadNext(out));
        if (*out) return arrow::Status::OK();
        batches_.reset();
        chunk_.reset();  // drop this adapter's hold on the finished chunk (and its lease) before reading on
      }
      if (r_ == nullptr) return arrow::Status::OK();
      ARROW_ASSIGN_OR_RAISE(auto chunk, r_->NextChunkMs(timeout_ms_));
      if (!chunk.table) {
        r_ = nullptr;  // the end stays the end
        return arrow::Status::OK();
      }
      ARROW_RETURN_NOT_OK(Take(std::move(chunk)));
    }
  }

  arrow::Status Close() override {
    batches_.reset();
    chunk_.reset();
    r_ = nullptr;
    owned_.reset();
    return arrow::Status::OK();
  }

 private:
  friend class StreamReader;
  ChunkBatchReader(StreamReader* r, std::unique_ptr<StreamReader> owned, int64_t timeout_ms)
      : r_(r), owned_(std::move(owned)), timeout_ms_(timeout_ms), name_(r->name()) {}

  arrow::Status Take(Chunk chunk) {
    if (!schema_) {
      schema_ = chunk.table->schema();
    } else if (!chunk.table->schema()->Equals(*schema_)) {
      r_ = nullptr;
      return arrow::Status::Invalid("stream '", name_, "': chunk ", chunk.info.seq,
                                    " has the schema ", chunk.table->schema()->ToString(),
                                    ", which differs from the first chunk's ", schema_->ToString(),
                                    "; an arrow::RecordBatchReader has one schema: read such streams chunk by "
                                    "chunk with ReadNextChunk()");
    }
    chunk_ = std::move(chunk.table);
    batches_ = std::make_shared<arrow::TableBatchReader>(*chunk_);
    return arrow::Status::OK();
  }

  StreamReader* r_;
  std::unique_ptr<StreamReader> owned_;
  int64_t timeout_ms_;
  std::string name_;
  std::shared_ptr<arrow::Schema> schema_;
  std::shared_ptr<arrow::Table> chunk_;
  std::shared_ptr<arrow::TableBatchReader> batches_;
};

inline arrow::Result<std::shared_ptr<arrow::RecordBatchReader>> StreamReader::MakeBatchReader(
    StreamReader* r, std::unique_ptr<StreamReader> owned, int64_t timeout_ms) {
  if (r == nullptr) return arrow::Status::Invalid("FromReader was given a null StreamReader");
  std::shared_ptr<ChunkBatchReader> out(new ChunkBatchReader(r, std::move(owned), timeout_ms));
  // The first chunk gives the schema; a stream that ends before any chunk has an empty one.
  ARROW_ASSIGN_OR_RAISE(auto first, r->NextChunkMs(timeout_ms));
  if (first.table) {
    ARROW_RETURN_NOT_OK(out->Take(std::move(first)));
  } else {
    out->schema_ = arrow::schema({});
    out->r_ = nullptr;
  }
  return out;
}

inline arrow::Result<std::shared_ptr<arrow::RecordBatchReader>> StreamReader::AsRecordBatchReader() {
  return MakeBatchReader(this, nullptr, QDS_TIMEOUT_DEFAULT);
}

inline arrow::Result<std::shared_ptr<arrow::RecordBatchReader>> StreamReader::FromReader(
    std::unique_ptr<StreamReader> reader) {
  StreamReader* r = reader.get();
  return MakeBatchReader(r, std::move(reader), QDS_TIMEOUT_DEFAULT);
}

/// Entry points of streams.
class SharedDataStream {
 public:
  /// Create the stream `name` with `size_bytes` of data capacity (split across the slots). Throws Error.
  static std::unique_ptr<StreamWriter> CreateWriter(const std::string& name, size_t size_bytes,
                                                    const StreamWriterOptions& options = StreamWriterOptions()) {
    auto r = MakeWriter(name, size_bytes, options);
    if (!r.ok()) detail::Throw(r.status());
    return std::move(r).ValueUnsafe();
  }
  /// Attach a reader to the stream `name`. Throws Error.
  static std::unique_ptr<StreamReader> CreateReader(const std::string& name,
                                                    const StreamReaderOptions& options = StreamReaderOptions()) {
    auto r = MakeReader(name, options);
    if (!r.ok()) detail::Throw(r.status());
    return std::move(r).ValueUnsafe();
  }
  /// Non-throwing forms.
  static arrow::Result<std::unique_ptr<StreamWriter>> MakeWriter(
      const std::string& name, size_t size_bytes, const StreamWriterOptions& options = StreamWriterOptions()) {
    qds_stream_writer* w = nullptr;
    ARROW_RETURN_NOT_OK(detail::ToStatus(qds_stream_writer_create(name.c_str(), size_bytes, &options.c, &w)));
    return std::unique_ptr<StreamWriter>(new StreamWriter(w, name));
  }
  static arrow::Result<std::unique_ptr<StreamReader>> MakeReader(
      const std::string& name, const StreamReaderOptions& options = StreamReaderOptions()) {
    qds_stream_reader* r = nullptr;
    ARROW_RETURN_NOT_OK(detail::ToStatus(qds_stream_reader_open(name.c_str(), &options.c, &r)));
    return std::unique_ptr<StreamReader>(new StreamReader(r, name));
  }
};

}  // namespace qadataswap

#endif  // QADATASWAP_SHARED_DATAFRAME_H
