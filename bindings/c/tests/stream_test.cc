// Tests of the stream API (SharedDataStream) of the C++ header and the C ABI under it: order, end of stream,
// back-pressure through a small ring, writer death, writer closed without finish, zero-copy addresses.
#include "qadataswap/shared_dataframe.h"

#include <arrow/util/logging.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

using namespace std::chrono_literals;
using qadataswap::SharedDataStream;
using qadataswap::StreamReaderOptions;
using qadataswap::StreamWriterOptions;

constexpr const char* kRoleEnv = "QADATASWAP_STREAM_TEST_ROLE";

std::string UniqueName(const std::string& what) {
  static std::atomic<int> n{0};
  return "qads-cpps-" + what + "-" + std::to_string(getpid()) + "-" + std::to_string(n++);
}

// Chunk k: 10 + k % 3 rows; k = k; v = k * 1000 + row; s (utf8view) = "chunk-{k}-row-{row}-payload".
std::shared_ptr<arrow::RecordBatch> ChunkBatch(int64_t k) {
  const int64_t rows = 10 + k % 3;
  arrow::Int64Builder kb, vb;
  arrow::StringViewBuilder sb;
  for (int64_t r = 0; r < rows; ++r) {
    ARROW_CHECK_OK(kb.Append(k));
    ARROW_CHECK_OK(vb.Append(k * 1000 + r));
    ARROW_CHECK_OK(sb.Append("chunk-" + std::to_string(k) + "-row-" + std::to_string(r) + "-payload"));
  }
  auto schema = arrow::schema({arrow::field("k", arrow::int64(), false), arrow::field("v", arrow::int64(), false),
                               arrow::field("s", arrow::utf8_view(), false)});
  return arrow::RecordBatch::Make(schema, rows,
                                  {kb.Finish().ValueOrDie(), vb.Finish().ValueOrDie(), sb.Finish().ValueOrDie()});
}

bool TableIsChunk(const arrow::Table& t, int64_t k) {
  auto want = arrow::Table::FromRecordBatches({ChunkBatch(k)}).ValueOrDie();
  return t.schema()->Equals(*want->schema()) && t.Equals(*want);
}

// Address ranges of every mapping of /dev/shm/<name> (also "(deleted)" once unlinked) in this process.
std::vector<std::pair<uintptr_t, uintptr_t>> SegmentMappings(const std::string& name) {
  std::vector<std::pair<uintptr_t, uintptr_t>> out;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  const std::string path = "/dev/shm/" + name;
  while (std::getline(maps, line)) {
    auto pos = line.find(path);
    if (pos == std::string::npos) continue;
    auto rest = line.substr(pos + path.size());
    if (!rest.empty() && rest != " (deleted)") continue;
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream in(line);
    in >> std::hex >> lo >> dash >> hi;
    out.emplace_back(lo, hi);
  }
  return out;
}

void CollectBuffers(const arrow::ArrayData& data, std::vector<std::pair<const uint8_t*, int64_t>>* out) {
  for (const auto& b : data.buffers) {
    if (b && b->size() > 0) out->emplace_back(b->data(), b->size());
  }
  for (const auto& c : data.child_data) CollectBuffers(*c, out);
  if (data.dictionary) CollectBuffers(*data.dictionary, out);
}

// A watchdog: a test that hangs aborts the process instead of wedging ctest.
struct Watchdog {
  explicit Watchdog(std::chrono::seconds limit) {
    t = std::thread([this, limit] {
      auto end = std::chrono::steady_clock::now() + limit;
      while (!done.load()) {
        if (std::chrono::steady_clock::now() > end) {
          fprintf(stderr, "watchdog: test took longer than %lld s\n", static_cast<long long>(limit.count()));
          std::abort();
        }
        std::this_thread::sleep_for(10ms);
      }
    });
  }
  ~Watchdog() {
    done = true;
    t.join();
  }
  std::atomic<bool> done{false};
  std::thread t;
};

TEST(SharedDataStream, ChunksArriveInOrderAndTheStreamEndsCleanly) {
  Watchdog dog(60s);
  const std::string name = UniqueName("order");
  auto writer = SharedDataStream::CreateWriter(name, 4 << 20, StreamWriterOptions().NumBuffers(4));
  auto reader = SharedDataStream::CreateReader(name, StreamReaderOptions().Timeout(10s));
  for (int64_t k = 0; k < 3; ++k) EXPECT_EQ(writer->WriteChunk(ChunkBatch(k)).seq, static_cast<uint64_t>(k + 1));
  ASSERT_TRUE(writer->Finish().ok());
  int64_t k = 0;
  for (auto& chunk : reader->Chunks()) {
    ASSERT_TRUE(chunk.ok()) << chunk.status().ToString();
    EXPECT_EQ(chunk->info.seq, static_cast<uint64_t>(k + 1));
    EXPECT_TRUE(TableIsChunk(*chunk->table, k)) << chunk->table->ToString();
    ++k;
  }
  EXPECT_EQ(k, 3);
  EXPECT_TRUE(reader->finished());
  // The end stays the end.
  auto again = reader->ReadNext(1s);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, nullptr);
  EXPECT_EQ(reader->Delivered().ValueOrDie(), 3u);
  // A write after finish is refused.
  auto late = writer->WriteChunk(*ChunkBatch(9), std::nothrow);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(qadataswap::StatusCodeOf(late.status()), QDS_ERR_FINISHED);
}

TEST(SharedDataStream, EveryBufferOfAChunkPointsIntoTheSegmentAndHoldsItsLease) {
  Watchdog dog(60s);
  const std::string name = UniqueName("zc");
  auto writer = SharedDataStream::CreateWriter(name, 4 << 20, StreamWriterOptions().NumBuffers(4));
  auto reader = SharedDataStream::CreateReader(name, StreamReaderOptions().Timeout(10s));
  writer->WriteChunk(ChunkBatch(0));
  auto table = reader->ReadNext(10s).ValueOrDie();
  ASSERT_NE(table, nullptr);
  auto maps = SegmentMappings(name);
  ASSERT_FALSE(maps.empty());
  std::vector<std::pair<const uint8_t*, int64_t>> buffers;
  for (const auto& col : table->columns()) {
    for (const auto& c : col->chunks()) CollectBuffers(*c->data(), &buffers);
  }
  EXPECT_EQ(buffers.size(), 4u);  // k values, v values, s views, s data
  for (const auto& [ptr, len] : buffers) {
    auto lo = reinterpret_cast<uintptr_t>(ptr);
    bool inside = false;
    for (const auto& [mlo, mhi] : maps) inside |= lo >= mlo && lo + static_cast<uintptr_t>(len) <= mhi;
    EXPECT_TRUE(inside) << "a buffer at " << ptr << " is not in the segment";
  }
  EXPECT_EQ(reader->LeaseCount().ValueOrDie(), 1u);
  table.reset();
  EXPECT_EQ(reader->LeaseCount().ValueOrDie(), 0u);
}

TEST(SharedDataStream, ManyChunksThroughATwoSlotRingArriveInOrderUnderBackPressure) {
  Watchdog dog(120s);
  const std::string name = UniqueName("ring");
  auto writer = SharedDataStream::CreateWriter(
      name, 2 << 20, StreamWriterOptions().NumBuffers(2).Timeout(30s).RetryCount(0));
  auto reader = SharedDataStream::CreateReader(name, StreamReaderOptions().Timeout(30s).RetryCount(0));
  constexpr int64_t kChunks = 200;
  std::thread produce([&] {
    for (int64_t k = 0; k < kChunks; ++k) {
      auto info = writer->WriteChunk(*ChunkBatch(k), std::nothrow);
      ASSERT_TRUE(info.ok()) << info.status().ToString();
    }
    ASSERT_TRUE(writer->Finish().ok());
  });
  int64_t k = 0;
  for (auto& chunk : reader->Chunks()) {
    ASSERT_TRUE(chunk.ok()) << chunk.status().ToString();
    ASSERT_EQ(chunk->info.seq, static_cast<uint64_t>(k + 1));
    ASSERT_TRUE(TableIsChunk(*chunk->table, k));
    ++k;
  }
  produce.join();
  EXPECT_EQ(k, kChunks);
  EXPECT_EQ(writer->Stats().ValueOrDie().chunks_written, static_cast<uint64_t>(kChunks));
  EXPECT_EQ(reader->Stats().ValueOrDie().chunks_read, static_cast<uint64_t>(kChunks));
  EXPECT_TRUE(reader->finished());
}

TEST(SharedDataStream, AReaderHoldingTheWholeRingGetsRingHeldAndTheWriterReadersBehind) {
  Watchdog dog(60s);
  const std::string name = UniqueName("held");
  auto writer = SharedDataStream::CreateWriter(
      name, 2 << 20, StreamWriterOptions().NumBuffers(2).Timeout(100ms).RetryCount(0));
  auto reader = SharedDataStream::CreateReader(name, StreamReaderOptions().Timeout(10s));
  writer->WriteChunk(ChunkBatch(0));
  writer->WriteChunk(ChunkBatch(1));
  auto first = reader->ReadNext(1s).ValueOrDie();
  auto second = reader->ReadNext(1s).ValueOrDie();
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  // Chunk 3 goes to the slot `first` still holds.
  auto blocked = writer->WriteChunk(*ChunkBatch(2), std::nothrow);
  ASSERT_FALSE(blocked.ok());
  EXPECT_EQ(qadataswap::StatusCodeOf(blocked.status()), QDS_ERR_READERS_BEHIND) << blocked.status().ToString();
  auto held = reader->ReadNext(1s);
  ASSERT_FALSE(held.ok());
  EXPECT_EQ(qadataswap::StatusCodeOf(held.status()), QDS_ERR_RING_HELD) << held.status().ToString();
  // Once the reader lets go, the stream moves on, nothing lost.
  first.reset();
  EXPECT_EQ(writer->WriteChunk(ChunkBatch(2)).seq, 3u);
  auto third = reader->ReadNextChunk(1s).ValueOrDie();
  EXPECT_EQ(third.info.seq, 3u);
  EXPECT_TRUE(TableIsChunk(*third.table, 2));
  EXPECT_TRUE(TableIsChunk(*second, 1));
}

TEST(SharedDataStream, AReaderStartingAtNextSkipsWhatWasPublishedBefore) {
  Watchdog dog(60s);
  const std::string name = UniqueName("next");
  // Chunk 1 goes out before any reader attaches: a broadcast (min_readers 0).
  auto writer =
      SharedDataStream::CreateWriter(name, 4 << 20, StreamWriterOptions().NumBuffers(4).MinReaders(0));
  writer->WriteChunk(ChunkBatch(0));
  auto oldest = SharedDataStream::CreateReader(name, StreamReaderOptions().Timeout(10s));
  auto next = SharedDataStream::CreateReader(name, StreamReaderOptions().Timeout(10s).StartAtNext());
  writer->WriteChunk(ChunkBatch(1));
  ASSERT_TRUE(writer->Finish().ok());
  EXPECT_EQ(oldest->ReadNextChunk(1s).ValueOrDie().info.seq, 1u);
  EXPECT_EQ(oldest->ReadNextChunk(1s).ValueOrDie().info.seq, 2u);
  auto c = next->ReadNextChunk(1s).ValueOrDie();
  EXPECT_EQ(c.info.seq, 2u);
  EXPECT_TRUE(TableIsChunk(*c.table, 1));
  EXPECT_FALSE(next->ReadNextChunk(1s).ValueOrDie());
  EXPECT_TRUE(next->finished());
}

TEST(SharedDataStream, TryReadNextChunkReturnsNothingUntilAChunkIsThere) {
  Watchdog dog(60s);
  const std::string name = UniqueName("try");
  auto writer = SharedDataStream::CreateWriter(name, 4 << 20, StreamWriterOptions().NumBuffers(4));
  auto reader = SharedDataStream::CreateReader(name);
  auto none = reader->TryReadNextChunk().ValueOrDie();
  EXPECT_FALSE(none);
  EXPECT_FALSE(reader->finished());
  writer->WriteChunk(ChunkBatch(5));
  auto one = reader->TryReadNextChunk().ValueOrDie();
  ASSERT_TRUE(one);
  EXPECT_EQ(one.info.seq, 1u);
  EXPECT_TRUE(TableIsChunk(*one.table, 5));
  ASSERT_TRUE(writer->Finish().ok());
  auto end = reader->TryReadNextChunk().ValueOrDie();
  EXPECT_FALSE(end);
  EXPECT_TRUE(reader->finished());
}

TEST(SharedDataStream, AWriterClosedWithoutFinishIsNotAnEndOfStream) {
  Watchdog dog(60s);
  const std::string name = UniqueName("closed");
  auto writer = SharedDataStream::CreateWriter(name, 4 << 20, StreamWriterOptions().NumBuffers(4));
  auto reader = SharedDataStream::CreateReader(name, StreamReaderOptions().Timeout(10s));
  writer->WriteChunk(ChunkBatch(0));
  writer.reset();  // destroyed without Finish()
  auto first = reader->ReadNext(10s);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(TableIsChunk(**first, 0));
  auto next = reader->ReadNext(10s);
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(qadataswap::StatusCodeOf(next.status()), QDS_ERR_WRITER_CLOSED) << next.status().ToString();
  EXPECT_FALSE(reader->finished());
}

TEST(SharedDataStream, TheCApiReportsTheEndOfTheStreamWithItsOwnStatus) {
  Watchdog dog(60s);
  const std::string name = UniqueName("c");
  qds_stream_writer* w = nullptr;
  qds_stream_writer_options wo;
  qds_stream_writer_options_init(&wo);
  wo.num_buffers = 4;
  ASSERT_EQ(qds_stream_writer_create(name.c_str(), 4 << 20, &wo, &w), QDS_OK) << qds_last_error_message();
  qds_stream_reader* r = nullptr;
  ASSERT_EQ(qds_stream_reader_open(name.c_str(), nullptr, &r), QDS_OK) << qds_last_error_message();
  struct ArrowArray array;
  struct ArrowSchema schema;
  ASSERT_TRUE(arrow::ExportRecordBatch(*ChunkBatch(0), &array, &schema).ok());
  qds_write_info wi{};
  ASSERT_EQ(qds_stream_writer_write_batch(w, &array, &schema, &wi), QDS_OK) << qds_last_error_message();
  schema.release(&schema);
  EXPECT_EQ(wi.seq, 1u);
  ASSERT_EQ(qds_stream_writer_finish(w), QDS_OK);
  struct ArrowArrayStream s;
  qds_frame_info info{};
  ASSERT_EQ(qds_stream_reader_next_chunk(r, 1000, &s, &info), QDS_OK) << qds_last_error_message();
  EXPECT_EQ(info.seq, 1u);
  EXPECT_EQ(info.num_rows, 10u);
  ASSERT_NE(s.release, nullptr);
  s.release(&s);
  EXPECT_EQ(qds_stream_reader_next_chunk(r, 1000, &s, &info), QDS_END_OF_STREAM);
  EXPECT_EQ(s.release, nullptr);
  EXPECT_EQ(qds_stream_reader_try_next_chunk(r, &s, &info), QDS_END_OF_STREAM);
  EXPECT_STREQ(qds_status_string(QDS_END_OF_STREAM), "QDS_END_OF_STREAM");
  EXPECT_EQ(qds_stream_reader_next_chunk(r, -7, &s, &info), QDS_ERR_INVALID_ARGUMENT);
  qds_stream_reader_free(r);
  qds_stream_writer_free(w);
}

// Child role: create the stream, wait for one reader, write two chunks, then hang until killed.
int WriterChild(const std::string& name) {
  auto writer = SharedDataStream::CreateWriter(name, 4 << 20, StreamWriterOptions().NumBuffers(4));
  if (!writer->WaitForReaders(1, 30s).ok()) return 3;
  writer->WriteChunk(ChunkBatch(0));
  writer->WriteChunk(ChunkBatch(1));
  for (int i = 0; i < 600; ++i) std::this_thread::sleep_for(100ms);  // killed long before this ends
  return 0;
}

TEST(SharedDataStream, AReaderGetsEveryChunkAndThenTheWritersDeath) {
  Watchdog dog(60s);
  const std::string name = UniqueName("died");
  std::string role = std::string(kRoleEnv) + "=writer:" + name;
  std::vector<char*> env;
  for (char** e = environ; *e; ++e) env.push_back(*e);
  env.push_back(role.data());
  env.push_back(nullptr);
  char self[] = "/proc/self/exe";
  char* argv[] = {self, nullptr};
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv, env.data()), 0);
  std::unique_ptr<qadataswap::StreamReader> reader;
  for (int i = 0; i < 500 && !reader; ++i) {
    auto r = SharedDataStream::MakeReader(name, StreamReaderOptions().Timeout(10s).RetryCount(0));
    if (r.ok()) {
      reader = std::move(r).ValueUnsafe();
    } else {
      std::this_thread::sleep_for(10ms);
    }
  }
  ASSERT_NE(reader, nullptr) << "the writer child never created " << name;
  for (int64_t k = 0; k < 2; ++k) {
    auto c = reader->ReadNextChunk(10s);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ(c->info.seq, static_cast<uint64_t>(k + 1));
    EXPECT_TRUE(TableIsChunk(*c->table, k));
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  auto next = reader->ReadNext(10s);
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(qadataswap::StatusCodeOf(next.status()), QDS_ERR_WRITER_DIED) << next.status().ToString();
  // Clean the orphaned segment up: a new writer takes it over, then finishes (unlinks) it.
  auto w = SharedDataStream::CreateWriter(name, 4 << 20, StreamWriterOptions().NumBuffers(4));
  EXPECT_TRUE(w->Finish().ok());
}

// Issue 17: a stream reader is an arrow::RecordBatchReader over its chunks, read while a writer thread is still
// writing (a ring of 4 slots, 30 chunks: each batch is dropped before the next is pulled).
TEST(SharedDataStream, AStreamReaderIsARecordBatchReaderOverEveryChunkOfALiveStreamZeroCopy) {
  Watchdog dog(120s);
  const std::string name = UniqueName("rbr");
  auto writer = SharedDataStream::CreateWriter(name, 4 << 20, StreamWriterOptions().NumBuffers(4).Timeout(30s));
  auto reader = SharedDataStream::CreateReader(name, StreamReaderOptions().Timeout(30s));
  constexpr int64_t kChunks = 30;
  std::thread producer([&] {
    for (int64_t k = 0; k < kChunks; ++k) writer->WriteChunk(ChunkBatch(k));
    ASSERT_TRUE(writer->Finish().ok());
  });
  auto batches = reader->AsRecordBatchReader();
  ASSERT_TRUE(batches.ok()) << batches.status().ToString();
  std::shared_ptr<arrow::RecordBatchReader> rbr = *batches;
  EXPECT_TRUE(rbr->schema()->Equals(*ChunkBatch(0)->schema()));
  auto maps = SegmentMappings(name);
  ASSERT_FALSE(maps.empty());
  int64_t k = 0;
  while (true) {
    std::shared_ptr<arrow::RecordBatch> batch;
    ASSERT_TRUE(rbr->ReadNext(&batch).ok());
    if (!batch) break;
    EXPECT_TRUE(batch->Equals(*ChunkBatch(k))) << "chunk " << k << ": " << batch->ToString();
    std::vector<std::pair<const uint8_t*, int64_t>> buffers;
    for (const auto& c : batch->columns()) CollectBuffers(*c->data(), &buffers);
    for (const auto& [ptr, len] : buffers) {
      auto lo = reinterpret_cast<uintptr_t>(ptr);
      bool inside = false;
      for (const auto& [mlo, mhi] : maps) inside |= lo >= mlo && lo + static_cast<uintptr_t>(len) <= mhi;
      EXPECT_TRUE(inside) << "chunk " << k << ": a buffer at " << ptr << " is not in the segment";
    }
    ++k;
  }
  producer.join();
  EXPECT_EQ(k, kChunks);
  EXPECT_TRUE(reader->finished());
  // The end stays the end.
  std::shared_ptr<arrow::RecordBatch> after;
  ASSERT_TRUE(rbr->ReadNext(&after).ok());
  EXPECT_EQ(after, nullptr);
  ASSERT_TRUE(rbr->Close().ok());
  EXPECT_EQ(reader->LeaseCount().ValueOrDie(), 0u);
}

TEST(SharedDataStream, AnOwningRecordBatchReaderReadsToTheEndAndMakesATable) {
  Watchdog dog(60s);
  const std::string name = UniqueName("rbr-own");
  auto writer = SharedDataStream::CreateWriter(name, 4 << 20, StreamWriterOptions().NumBuffers(4));
  auto reader = SharedDataStream::CreateReader(name, StreamReaderOptions().Timeout(10s));
  for (int64_t k = 0; k < 3; ++k) writer->WriteChunk(ChunkBatch(k));
  ASSERT_TRUE(writer->Finish().ok());
  auto rbr = qadataswap::StreamReader::FromReader(std::move(reader));
  ASSERT_TRUE(rbr.ok()) << rbr.status().ToString();
  auto table = (*rbr)->ToTable();
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  auto want = arrow::Table::FromRecordBatches({ChunkBatch(0), ChunkBatch(1), ChunkBatch(2)}).ValueOrDie();
  EXPECT_TRUE((*table)->Equals(*want));
}

TEST(SharedDataStream, AChunkWithAnotherSchemaEndsTheRecordBatchReaderWithInvalid) {
  Watchdog dog(60s);
  const std::string name = UniqueName("rbr-schema");
  auto writer = SharedDataStream::CreateWriter(name, 4 << 20, StreamWriterOptions().NumBuffers(4));
  auto reader = SharedDataStream::CreateReader(name, StreamReaderOptions().Timeout(10s));
  writer->WriteChunk(ChunkBatch(0));
  arrow::Int32Builder b;
  ARROW_CHECK_OK(b.Append(1));
  writer->WriteChunk(arrow::RecordBatch::Make(arrow::schema({arrow::field("x", arrow::int32())}), 1,
                                              {b.Finish().ValueOrDie()}));
  ASSERT_TRUE(writer->Finish().ok());
  auto rbr = reader->AsRecordBatchReader().ValueOrDie();
  std::shared_ptr<arrow::RecordBatch> batch;
  ASSERT_TRUE(rbr->ReadNext(&batch).ok());
  ASSERT_NE(batch, nullptr);
  auto st = rbr->ReadNext(&batch);
  EXPECT_TRUE(st.IsInvalid()) << st.ToString();
  EXPECT_NE(st.message().find("differs from the first chunk"), std::string::npos) << st.ToString();
}

}  // namespace

int main(int argc, char** argv) {
  if (const char* role = std::getenv(kRoleEnv)) {
    std::string r(role);
    if (r.rfind("writer:", 0) == 0) return WriterChild(r.substr(7));
    fprintf(stderr, "unknown role %s\n", role);
    return 2;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
