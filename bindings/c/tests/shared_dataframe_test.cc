// Tests of the C++ header over Arrow C++ (pyarrow's libarrow): round trips, zero copy, leases, lifetimes, errors.
#include "qadataswap/shared_dataframe.h"

#include <arrow/json/from_string.h>
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
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

using namespace std::chrono_literals;
using qadataswap::SharedDataFrame;

std::string UniqueName(const std::string& what) {
  static std::atomic<int> n{0};
  return "qads-cpp-" + what + "-" + std::to_string(getpid()) + "-" + std::to_string(n++);
}

std::shared_ptr<arrow::Array> Json(const std::shared_ptr<arrow::DataType>& type, const std::string& json) {
  return arrow::json::ArrayFromJSONString(type, json).ValueOrDie();
}

// A table of many types, with nulls in every column.
std::shared_ptr<arrow::Table> ManyTypes() {
  std::vector<std::shared_ptr<arrow::Field>> fields;
  std::vector<std::shared_ptr<arrow::Array>> cols;
  auto add = [&](const std::string& name, std::shared_ptr<arrow::DataType> t, const std::string& json) {
    fields.push_back(arrow::field(name, t));
    cols.push_back(Json(t, json));
  };
  add("i8", arrow::int8(), "[1, null, -3, 4]");
  add("i16", arrow::int16(), "[1, 2, null, 4]");
  add("i32", arrow::int32(), "[null, 2, 3, 4]");
  add("i64", arrow::int64(), "[1, 2, 3, null]");
  add("u8", arrow::uint8(), "[1, null, 3, 255]");
  add("u64", arrow::uint64(), "[18446744073709551615, null, 3, 4]");
  add("f32", arrow::float32(), "[1.5, null, -3.25, 4]");
  add("f64", arrow::float64(), "[1.5, 2.5, null, 1e300]");
  add("bool", arrow::boolean(), "[true, null, false, true]");
  add("str", arrow::utf8(), R"(["a", null, "ccc", "dddd"])");
  add("large_str", arrow::large_utf8(), R"(["a", "bb", null, "dddd"])");
  add("str_view", arrow::utf8_view(), R"(["short", null, "a string longer than twelve bytes", ""])");
  add("bin", arrow::binary(), R"(["YQ==", null, "", "ZGQ="])");
  add("fixed", arrow::fixed_size_binary(3), R"(["abc", null, "def", "ghi"])");
  add("list", arrow::list(arrow::int32()), "[[1, 2], null, [], [3, null]]");
  add("large_list", arrow::large_list(arrow::utf8()), R"([["x"], null, [], ["y", null]])");
  add("struct",
      arrow::struct_({arrow::field("a", arrow::int32()), arrow::field("b", arrow::utf8())}),
      R"([{"a": 1, "b": "x"}, null, {"a": null, "b": "z"}, {"a": 4, "b": null}])");
  add("ts_utc", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
      R"(["2024-01-02 03:04:05", null, "1970-01-01 00:00:00", "2030-12-31 23:59:59"])");
  add("ts_ny", arrow::timestamp(arrow::TimeUnit::NANO, "America/New_York"), "[1, 2, null, 4]");
  add("date", arrow::date32(), "[0, 19000, null, -1]");
  add("dec", arrow::decimal128(10, 2), R"(["1.25", null, "-3.50", "99999999.99"])");
  auto dict_type = arrow::dictionary(arrow::int32(), arrow::utf8());
  fields.push_back(arrow::field("dict", dict_type));
  cols.push_back(arrow::json::DictArrayFromJSONString(dict_type, "[0, 1, null, 0]", R"(["red", "green"])")
                     .ValueOrDie());
  auto schema = arrow::schema(fields, arrow::key_value_metadata({"origin"}, {"cpp-test"}));
  return arrow::Table::Make(schema, cols);
}

std::shared_ptr<arrow::Table> Numeric(int64_t rows) {
  arrow::Int64Builder ib;
  arrow::DoubleBuilder db;
  ARROW_CHECK_OK(ib.Reserve(rows));
  ARROW_CHECK_OK(db.Reserve(rows));
  for (int64_t i = 0; i < rows; ++i) {
    ib.UnsafeAppend(i);
    db.UnsafeAppend(static_cast<double>(i) * 0.5);
  }
  auto schema = arrow::schema({arrow::field("i", arrow::int64()), arrow::field("f", arrow::float64())});
  return arrow::Table::Make(schema, {ib.Finish().ValueOrDie(), db.Finish().ValueOrDie()});
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
    if (!rest.empty() && rest != " (deleted)") continue;  // another name with this one as a prefix
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream in(line);
    in >> std::hex >> lo >> dash >> hi;
    out.emplace_back(lo, hi);
  }
  return out;
}

// Every buffer of `data` (children and dictionaries too), skipping absent and empty ones.
void CollectBuffers(const arrow::ArrayData& data, std::vector<std::pair<const uint8_t*, int64_t>>* out) {
  for (const auto& b : data.buffers) {
    if (b && b->size() > 0) out->emplace_back(b->data(), b->size());
  }
  for (const auto& c : data.child_data) CollectBuffers(*c, out);
  if (data.dictionary) CollectBuffers(*data.dictionary, out);
}

size_t BuffersOutside(const arrow::Table& table, const std::vector<std::pair<uintptr_t, uintptr_t>>& maps,
                      size_t* total) {
  std::vector<std::pair<const uint8_t*, int64_t>> buffers;
  for (const auto& col : table.columns()) {
    for (const auto& chunk : col->chunks()) CollectBuffers(*chunk->data(), &buffers);
  }
  size_t outside = 0;
  for (const auto& [ptr, len] : buffers) {
    auto lo = reinterpret_cast<uintptr_t>(ptr);
    bool inside = false;
    for (const auto& [mlo, mhi] : maps) inside |= lo >= mlo && lo + static_cast<uintptr_t>(len) <= mhi;
    if (!inside) ++outside;
  }
  *total = buffers.size();
  return outside;
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

// The README's C++ lines, as printed (crates/qadataswap/tests/readme.rs checks that the marked regions below are the
// README's blocks): the writer's in process A, the reader's in process B; here two scopes of one process.
TEST(SharedDataFrame, TheReadmeLinesCompileAndRunAsPrinted) {
  Watchdog dog(30s);
  const auto original = Numeric(10);
  {
    const auto& table = original;
    // README cpp writer begin
    auto writer = qadataswap::SharedDataFrame::CreateWriter("mydata", 100 * 1024 * 1024);
    writer->Write(table);
    // README cpp writer end
    {
      // README cpp reader begin
      auto reader = qadataswap::SharedDataFrame::CreateReader("mydata");
      auto result = reader->Read();
      auto table = result.ValueOrDie();
      // README cpp reader end
      EXPECT_TRUE(table->Equals(*original));
    }
  }
}

TEST(SharedDataFrame, SeedLinesCompileAndRoundTripATable) {
  Watchdog dog(30s);
  auto original = Numeric(1000);
  const std::string name = UniqueName("seed");
  {
    auto writer = qadataswap::SharedDataFrame::CreateWriter(name, 100 * 1024 * 1024);
    writer->Write(original);
    auto reader = qadataswap::SharedDataFrame::CreateReader(name);
    auto result = reader->Read();
    auto table = result.ValueOrDie();
    EXPECT_TRUE(table->Equals(*original));
  }
}

TEST(SharedDataFrame, ATableOfManyTypesWithNullsRoundTripsExactly) {
  Watchdog dog(30s);
  auto original = ManyTypes();
  ASSERT_TRUE(original->ValidateFull().ok());
  const std::string name = UniqueName("types");
  auto writer = SharedDataFrame::CreateWriter(name, 4 << 20);
  auto info = writer->Write(original);
  EXPECT_EQ(info.seq, 1u);
  EXPECT_EQ(info.rows, 4u);
  auto reader = SharedDataFrame::CreateReader(name);
  auto table = reader->Read().ValueOrDie();
  ASSERT_TRUE(table->ValidateFull().ok());
  EXPECT_TRUE(table->schema()->Equals(*original->schema(), /*check_metadata=*/true))
      << table->schema()->ToString(true) << "\nvs\n" << original->schema()->ToString(true);
  EXPECT_TRUE(table->Equals(*original)) << table->ToString();
  // The schema alone, from the header.
  auto schema = reader->schema().ValueOrDie();
  ASSERT_NE(schema, nullptr);
  EXPECT_TRUE(schema->Equals(*original->schema()));
}

TEST(SharedDataFrame, AChunkedTableKeepsItsChunks) {
  Watchdog dog(30s);
  auto a = Numeric(10);
  auto b = Numeric(7);
  auto original = arrow::ConcatenateTables({a, b}).ValueOrDie();
  ASSERT_EQ(original->column(0)->num_chunks(), 2);
  const std::string name = UniqueName("chunks");
  auto writer = SharedDataFrame::CreateWriter(name, 1 << 20);
  writer->Write(original);
  auto reader = SharedDataFrame::CreateReader(name);
  auto frame = reader->ReadFrame().ValueOrDie();
  EXPECT_EQ(frame.info.num_batches, 2u);
  EXPECT_EQ(frame.table->column(0)->num_chunks(), 2);
  EXPECT_TRUE(frame.table->Equals(*original));
  // A single record batch and a batch reader are accepted too.
  auto batch = a->CombineChunksToBatch().ValueOrDie();
  EXPECT_EQ(writer->Write(batch).seq, 2u);
  auto next = reader->ReadNext(5s).ValueOrDie();
  EXPECT_TRUE(next->Equals(*a));
}

TEST(SharedDataFrame, EveryImportedBufferPointsIntoTheSegmentMapping) {
  Watchdog dog(30s);
  auto original = ManyTypes();
  const std::string name = UniqueName("zerocopy");
  auto writer = SharedDataFrame::CreateWriter(name, 4 << 20);
  writer->Write(original);
  auto reader = SharedDataFrame::CreateReader(name);
  // Close the writer first: the only mapping of the segment left is the reader's.
  ASSERT_TRUE(writer->Close().ok());
  auto table = reader->Read().ValueOrDie();
  auto maps = SegmentMappings(name);
  ASSERT_FALSE(maps.empty()) << "no mapping of /dev/shm/" << name << " in /proc/self/maps";
  size_t total = 0;
  EXPECT_EQ(BuffersOutside(*table, maps, &total), 0u);
  EXPECT_GT(total, 30u);
  // And a large numeric table.
  const std::string big = UniqueName("zerocopy-big");
  auto w2 = SharedDataFrame::CreateWriter(big, 64 << 20);
  w2->Write(Numeric(1 << 20));
  auto r2 = SharedDataFrame::CreateReader(big);
  auto t2 = r2->Read().ValueOrDie();
  EXPECT_EQ(BuffersOutside(*t2, SegmentMappings(big), &total), 0u);
  EXPECT_EQ(total, 2u);
}

TEST(SharedDataFrame, ATableHoldsItsLeaseUntilItsLastBufferIsGone) {
  Watchdog dog(30s);
  const std::string name = UniqueName("lease");
  auto writer = SharedDataFrame::CreateWriter(name, 1 << 20);
  writer->Write(ManyTypes());
  auto reader = SharedDataFrame::CreateReader(name);
  EXPECT_EQ(reader->LeaseCount().ValueOrDie(), 0u);
  auto table = reader->Read().ValueOrDie();
  EXPECT_EQ(reader->LeaseCount().ValueOrDie(), 1u);
  // Keep one nested child buffer only.
  auto child = table->GetColumnByName("struct")->chunk(0)->data()->child_data[1]->buffers[2];
  table.reset();
  EXPECT_EQ(reader->LeaseCount().ValueOrDie(), 1u);
  child.reset();
  EXPECT_EQ(reader->LeaseCount().ValueOrDie(), 0u);
}

TEST(SharedDataFrame, ARawChildMovedOutOfTheStreamKeepsTheLease) {
  Watchdog dog(30s);
  const std::string name = UniqueName("moved");
  auto writer = SharedDataFrame::CreateWriter(name, 1 << 20);
  writer->Write(ManyTypes());
  auto reader = SharedDataFrame::CreateReader(name);
  struct ArrowArrayStream stream;
  ASSERT_EQ(qds_snapshot_reader_read(reader->handle(), &stream, nullptr), QDS_OK);
  struct ArrowArray batch;
  ASSERT_EQ(stream.get_next(&stream, &batch), 0);
  stream.release(&stream);
  // Move out the dictionary column and the struct column's child, then release the batch.
  ASSERT_GE(batch.n_children, 22);
  struct ArrowArray dict_col = *batch.children[21];
  batch.children[21]->release = nullptr;
  struct ArrowArray struct_child = *batch.children[16]->children[1];
  batch.children[16]->children[1]->release = nullptr;
  batch.release(&batch);
  EXPECT_EQ(reader->LeaseCount().ValueOrDie(), 1u);
  dict_col.release(&dict_col);
  EXPECT_EQ(reader->LeaseCount().ValueOrDie(), 1u);
  struct_child.release(&struct_child);
  EXPECT_EQ(reader->LeaseCount().ValueOrDie(), 0u);
}

TEST(SharedDataFrame, AReaderOutlivesItsWriterAndThenGetsWriterClosed) {
  Watchdog dog(30s);
  const std::string name = UniqueName("outlive");
  auto original = ManyTypes();
  auto writer = SharedDataFrame::CreateWriter(name, 1 << 20);
  writer->Write(original);
  auto reader = SharedDataFrame::CreateReader(name);
  auto table = reader->Read().ValueOrDie();
  ASSERT_TRUE(writer->Close().ok());
  writer.reset();
  // The table read before the close stays valid and unchanged.
  EXPECT_TRUE(table->Equals(*original));
  ASSERT_TRUE(table->ValidateFull().ok());
  // Nothing newer will come.
  auto next = reader->ReadNext(5s);
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(qadataswap::StatusCodeOf(next.status()), QDS_ERR_WRITER_CLOSED);
  EXPECT_NE(next.status().message().find("closed"), std::string::npos) << next.status().ToString();
  // The name is gone: new readers cannot attach; the reader itself can go before the table.
  EXPECT_THROW(SharedDataFrame::CreateReader(name), qadataswap::Error);
  reader.reset();
  EXPECT_TRUE(table->Equals(*original));
}

TEST(SharedDataFrame, AMissingSegmentIsAnErrorWithAMessage) {
  const std::string name = UniqueName("missing");
  const auto at_once = qadataswap::ReaderOptions().OpenTimeout(0ms);
  try {
    SharedDataFrame::CreateReader(name, at_once);
    FAIL() << "CreateReader of a missing segment did not throw";
  } catch (const qadataswap::Error& e) {
    EXPECT_EQ(e.code(), QDS_ERR_NOT_FOUND);
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
  }
  // Waiting for it says how long it waited.
  auto r = SharedDataFrame::MakeReader(name, qadataswap::ReaderOptions().OpenTimeout(200ms));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(qadataswap::StatusCodeOf(r.status()), QDS_ERR_NOT_FOUND);
  EXPECT_NE(r.status().message().find("did not appear within"), std::string::npos) << r.status().ToString();
}

TEST(SharedDataFrame, AReaderStartedBeforeItsWriterWaitsForTheName) {
  Watchdog dog(60s);
  const std::string name = UniqueName("reader-first");
  std::promise<void> read_done;
  auto done = read_done.get_future();
  // Whichever comes first, the reader waits (up to its open timeout) for the writer to create the name.
  std::thread writer_thread([&name, &done] {
    auto writer = SharedDataFrame::CreateWriter(name, 1 << 20);
    writer->Write(Numeric(10));
    done.wait();
  });
  auto reader = SharedDataFrame::CreateReader(name, qadataswap::ReaderOptions().OpenTimeout(30s));
  auto table = reader->Read().ValueOrDie();
  EXPECT_EQ(table->num_rows(), 10);
  read_done.set_value();
  writer_thread.join();
}

TEST(SharedDataFrame, AReadWithNothingPublishedTimesOutAndTryReadReturnsNull) {
  Watchdog dog(30s);
  const std::string name = UniqueName("timeout");
  auto writer = SharedDataFrame::CreateWriter(name, 1 << 20);
  auto reader = SharedDataFrame::CreateReader(name, qadataswap::ReaderOptions().Timeout(50ms));
  auto r = reader->Read();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(qadataswap::StatusCodeOf(r.status()), QDS_ERR_TIMEOUT);
  EXPECT_NE(r.status().message().find("timed out"), std::string::npos) << r.status().ToString();
  auto r2 = reader->Read(20ms);
  EXPECT_EQ(qadataswap::StatusCodeOf(r2.status()), QDS_ERR_TIMEOUT);
  auto t = reader->TryRead();
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, nullptr);
  EXPECT_EQ(reader->schema().ValueOrDie(), nullptr);
}

TEST(SharedDataFrame, TooLargeAFrameAndASecondWriterAreErrors) {
  Watchdog dog(30s);
  const std::string name = UniqueName("errors");
  auto writer = SharedDataFrame::CreateWriter(name, 64 * 1024);
  auto big = writer->Write(*Numeric(100000), std::nothrow);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(qadataswap::StatusCodeOf(big.status()), QDS_ERR_SLOT_TOO_SMALL);
  EXPECT_TRUE(big.status().IsCapacityError());
  EXPECT_THROW(writer->Write(Numeric(100000)), qadataswap::Error);
  auto second = SharedDataFrame::MakeWriter(name, 64 * 1024);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find(name), std::string::npos) << second.status().ToString();
}

TEST(SharedDataFrame, RemoveRefusesALiveSegmentAndAForeignFileAndRemovesAClosedOne) {
  Watchdog dog(30s);
  const std::string name = UniqueName("remove");
  {
    auto writer = SharedDataFrame::CreateWriter(name, 64 * 1024);
    auto live = SharedDataFrame::Remove(name);
    EXPECT_EQ(qadataswap::StatusCodeOf(live), QDS_ERR_IN_USE) << live.ToString();
    EXPECT_EQ(qadataswap::StatusCodeOf(SharedDataFrame::Remove(name, /*force=*/true)), QDS_ERR_IN_USE);
    ASSERT_TRUE(SharedDataFrame::MakeReader(name).ok()) << "a refused removal left the segment readable";
  }
  // The writer closed and unlinked it.
  EXPECT_EQ(qadataswap::StatusCodeOf(SharedDataFrame::Remove(name)), QDS_ERR_NOT_FOUND);
  // Another program's zero-filled file under a name: never ours.
  const std::string other = UniqueName("otherapp");
  {
    std::ofstream f("/dev/shm/" + other, std::ios::binary);
    std::string zeros(65536, '\0');
    f.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
  }
  EXPECT_EQ(qadataswap::StatusCodeOf(SharedDataFrame::Remove(other, true)), QDS_ERR_NOT_OURS);
  EXPECT_EQ(std::string(qds_status_string(QDS_ERR_NOT_OURS)), "QDS_ERR_NOT_OURS");
  EXPECT_EQ(unlink(("/dev/shm/" + other).c_str()), 0) << "the foreign file must still be there";
}

TEST(SharedDataFrame, ReadCopiedGivesPrivateMemory) {
  Watchdog dog(30s);
  const std::string name = UniqueName("copied");
  auto original = ManyTypes();
  auto writer = SharedDataFrame::CreateWriter(name, 1 << 20);
  writer->Write(original);
  auto reader = SharedDataFrame::CreateReader(name);
  auto table = reader->ReadCopied().ValueOrDie();
  EXPECT_TRUE(table->Equals(*original));
  EXPECT_EQ(reader->LeaseCount().ValueOrDie(), 0u);
  size_t total = 0;
  EXPECT_EQ(BuffersOutside(*table, SegmentMappings(name), &total), total);
}

// ---- a writer in another process ----

constexpr const char* kRoleEnv = "QADATASWAP_CPP_TEST_ROLE";

// Child role: write ManyTypes under the given name, then wait to be killed.
int WriterChild(const std::string& name) {
  auto writer = SharedDataFrame::CreateWriter(name, 1 << 20);
  writer->Write(ManyTypes());
  for (int i = 0; i < 600; ++i) std::this_thread::sleep_for(100ms);  // killed long before this ends
  return 0;
}

TEST(SharedDataFrame, AReaderInAnotherProcessSeesTheFrameAndThenTheWritersDeath) {
  Watchdog dog(60s);
  const std::string name = UniqueName("proc");
  std::string role = std::string(kRoleEnv) + "=writer:" + name;
  std::vector<char*> env;
  for (char** e = environ; *e; ++e) env.push_back(*e);
  env.push_back(role.data());
  env.push_back(nullptr);
  char self[] = "/proc/self/exe";
  char* argv[] = {self, nullptr};
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv, env.data()), 0);
  std::unique_ptr<qadataswap::Reader> reader;
  for (int i = 0; i < 500 && !reader; ++i) {
    auto r = SharedDataFrame::MakeReader(name);
    if (r.ok()) reader = std::move(r).ValueUnsafe();
    else std::this_thread::sleep_for(10ms);
  }
  ASSERT_NE(reader, nullptr) << "the writer child never created " << name;
  auto table = reader->Read(10s).ValueOrDie();
  EXPECT_TRUE(table->Equals(*ManyTypes()));
  size_t total = 0;
  EXPECT_EQ(BuffersOutside(*table, SegmentMappings(name), &total), 0u);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  auto next = reader->ReadNext(10s);
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(qadataswap::StatusCodeOf(next.status()), QDS_ERR_WRITER_DIED) << next.status().ToString();
  EXPECT_TRUE(table->Equals(*ManyTypes()));
  // Clean the orphaned segment up: a new writer takes it over, then closes (unlinks) it.
  auto w = SharedDataFrame::CreateWriter(name, 1 << 20);
  EXPECT_TRUE(w->Close().ok());
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
