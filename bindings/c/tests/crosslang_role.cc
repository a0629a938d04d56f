// The C++ role of the cross-language matrix (`cargo xtask cross-lang`); same command line as the Rust role
// (crates/qadataswap-arrow/examples/crosslang.rs):
//   crosslang_role write NAME IN.arrows   publish IN's batches as one frame, print READY, close on a stdin line
//   crosslang_role read NAME OUT.arrows   read the newest frame, check every buffer is in the segment, dump to OUT
#include <arrow/api.h>
#include <arrow/io/file.h>
#include <arrow/ipc/api.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "qadataswap/shared_dataframe.h"

namespace {

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

arrow::Status Run(int argc, char** argv) {
  if (argc < 4) return arrow::Status::Invalid("usage: crosslang_role write|read NAME FILE");
  const std::string role = argv[1], name = argv[2], path = argv[3];
  if (role == "write") {
    ARROW_ASSIGN_OR_RAISE(auto in, arrow::io::ReadableFile::Open(path));
    ARROW_ASSIGN_OR_RAISE(auto stream, arrow::ipc::RecordBatchStreamReader::Open(in));
    ARROW_ASSIGN_OR_RAISE(auto table, stream->ToTable());
    auto writer = qadataswap::SharedDataFrame::CreateWriter(name, size_t{3} << 24);
    auto info = writer->Write(table);
    std::cout << "READY seq=" << info.seq << " bytes=" << info.bytes << std::endl;
    std::string line;
    std::getline(std::cin, line);
    return arrow::Status::OK();
  }
  if (role == "read") {
    auto reader = qadataswap::SharedDataFrame::CreateReader(name);
    ARROW_ASSIGN_OR_RAISE(auto frame, reader->ReadFrame(std::chrono::seconds(20)));
    const auto& table = frame.table;
    auto maps = SegmentMappings(name);
    std::vector<std::pair<const uint8_t*, int64_t>> buffers;
    for (const auto& col : table->columns()) {
      for (const auto& chunk : col->chunks()) CollectBuffers(*chunk->data(), &buffers);
    }
    size_t inside = 0, outside = 0;
    for (const auto& [ptr, len] : buffers) {
      auto lo = reinterpret_cast<uintptr_t>(ptr);
      bool in = false;
      for (const auto& [mlo, mhi] : maps) in |= lo >= mlo && lo + static_cast<uintptr_t>(len) <= mhi;
      in ? ++inside : ++outside;
    }
    ARROW_ASSIGN_OR_RAISE(auto out, arrow::io::FileOutputStream::Open(path));
    ARROW_ASSIGN_OR_RAISE(auto w, arrow::ipc::MakeStreamWriter(out, table->schema()));
    arrow::TableBatchReader batches(*table);
    std::shared_ptr<arrow::RecordBatch> b;
    size_t n = 0;
    while (true) {
      ARROW_RETURN_NOT_OK(batches.ReadNext(&b));
      if (!b) break;
      ARROW_RETURN_NOT_OK(w->WriteRecordBatch(*b));
      ++n;
    }
    ARROW_RETURN_NOT_OK(w->Close());
    std::cout << "READ seq=" << frame.info.seq << " batches=" << n << " rows=" << table->num_rows()
              << " zero_copy_buffers=" << inside << " copied_buffers=" << outside << std::endl;
    if (outside != 0) return arrow::Status::Invalid(outside, " buffers do not point into the segment");
    return arrow::Status::OK();
  }
  return arrow::Status::Invalid("unknown role ", role);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    auto st = Run(argc, argv);
    if (!st.ok()) {
      std::cerr << "crosslang_role: " << st.ToString() << std::endl;
      return 1;
    }
  } catch (const std::exception& e) {
    std::cerr << "crosslang_role: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
