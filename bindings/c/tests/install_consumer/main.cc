// The README's C++ lines, as printed, built against an installed qadataswap with -Wall -Wextra -Werror: the
// writer's lines, then (in process B in the README, an inner scope here) the reader's. xtask writes them to
// readme_cpp_writer.inc / readme_cpp_reader.inc, with the segment name "mydata" made unique to the run. Then a
// stream as the header's comment shows it, whose WaitForReaders() and Finish() results are [[nodiscard]].
#include <qadataswap/shared_dataframe.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>

namespace {

std::shared_ptr<arrow::RecordBatch> Numbers(int64_t n) {
  arrow::Int64Builder b;
  for (int64_t i = 0; i < n; ++i) {
    if (!b.Append(i * 3).ok()) return nullptr;
  }
  auto column = b.Finish();
  if (!column.ok()) return nullptr;
  return arrow::RecordBatch::Make(arrow::schema({arrow::field("x", arrow::int64())}), n, {*column});
}

int Fail(const std::string& what) {
  std::cerr << "install_cpp: " << what << std::endl;
  return 1;
}

}  // namespace

int main() {
  auto batch = Numbers(1000);
  if (!batch) return Fail("could not build the test table");
  const auto original = arrow::Table::FromRecordBatches({batch}).ValueOrDie();
  {
    const auto& table = original;
#include "readme_cpp_writer.inc"
    {
#include "readme_cpp_reader.inc"
      if (!table->Equals(*original)) return Fail("the README's reader read another table than its writer wrote");
      std::cout << "install_cpp: README lines: " << table->num_rows() << " rows read back" << std::endl;
    }
  }

  const std::string name = "qads-install-stream-" + std::to_string(getpid());
  auto sw = qadataswap::SharedDataStream::CreateWriter(name, 8 * 1024 * 1024);
  auto sr = qadataswap::SharedDataStream::CreateReader(name);
  auto have = sw->WaitForReaders(1, std::chrono::seconds(10));
  if (!have.ok()) return Fail("WaitForReaders: " + have.status().ToString());
  sw->WriteChunk(batch);
  sw->WriteChunk(batch);
  auto st = sw->Finish();
  if (!st.ok()) return Fail("Finish: " + st.ToString());
  int chunks = 0;
  for (auto& chunk : sr->Chunks()) {
    if (!chunk.ok()) return Fail("stream: " + chunk.status().ToString());
    if (!chunk->table->Equals(*original)) return Fail("stream: chunk " + std::to_string(chunks) + " differs");
    ++chunks;
  }
  if (chunks != 2) return Fail("stream: " + std::to_string(chunks) + " chunks instead of 2");
  std::cout << "install_cpp: stream: " << chunks << " chunks read back" << std::endl;
  return 0;
}
