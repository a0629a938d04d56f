// shared_dataframe.h: the C++ API of QADataSwap over Arrow C++ (header-only, on the C ABI in qadataswap.h).
//
//   auto writer = qadataswap::SharedDataFrame::CreateWriter("mydata", 100 * 1024 * 1024);
//   writer->Write(table);                                   // throws qadataswap::Error on failure
//
//   auto reader = qadataswap::SharedDataFrame::CreateReader("mydata");
//   auto result = reader->Read();                           // arrow::Result<std::shared_ptr<arrow::Table>>
//   auto table = result.ValueOrDie();                       // columns point into shared memory: no copy
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
#include <cstdint>
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
      sc = arrow::StatusCode::AlreadyExists;
      break;
    case QDS_ERR_SLOT_TOO_SMALL:
    case QDS_ERR_SCHEMA_TOO_LARGE:
    case QDS_ERR_TOO_MANY_READERS:
    case QDS_ERR_ALL_SLOTS_LEASED:
      sc = arrow::StatusCode::CapacityError;
      break;
    case QDS_ERR_ARROW:
      sc = arrow::StatusCode::TypeError;
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
};

}  // namespace qadataswap

#endif  // QADATASWAP_SHARED_DATAFRAME_H
