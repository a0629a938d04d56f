// The C++ role of the cross-language matrix (`cargo xtask cross-lang`); same command line as the Rust role
// (crates/qadataswap-stream/examples/crosslang.rs):
//   crosslang_role write NAME IN.arrows   publish IN's batches as one frame, print READY, close on a stdin line
//   crosslang_role read NAME OUT.arrows   read the newest frame, check every buffer is in the segment, dump to OUT
//   crosslang_role stream-write NAME N [SLOTS]  create stream NAME, print READY, wait for 3 readers, write N chunks
//                                               (see StreamChunk), finish
//   crosslang_role stream-read NAME             read every chunk in order, check number, content and zero-copy;
//                                               print "STREAM chunks=N ok"
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

// Chunk k (0-based; stream number k + 1), as in the Rust role: 100 + k % 5 rows, k = k, v = k * 1000 + row,
// s (utf8view) = "chunk-{k}-row-{row}-payload"; no field nullable.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> StreamChunk(int64_t k) {
  const int64_t rows = 100 + k % 5;
  arrow::Int64Builder kb, vb;
  arrow::StringViewBuilder sb;
  for (int64_t r = 0; r < rows; ++r) {
    ARROW_RETURN_NOT_OK(kb.Append(k));
    ARROW_RETURN_NOT_OK(vb.Append(k * 1000 + r));
    ARROW_RETURN_NOT_OK(sb.Append("chunk-" + std::to_string(k) + "-row-" + std::to_string(r) + "-payload"));
  }
  ARROW_ASSIGN_OR_RAISE(auto kc, kb.Finish());
  ARROW_ASSIGN_OR_RAISE(auto vc, vb.Finish());
  ARROW_ASSIGN_OR_RAISE(auto sc, sb.Finish());
  auto schema = arrow::schema({arrow::field("k", arrow::int64(), false), arrow::field("v", arrow::int64(), false),
                               arrow::field("s", arrow::utf8_view(), false)});
  return arrow::RecordBatch::Make(schema, rows, {kc, vc, sc});
}

arrow::Status StreamWrite(const std::string& name, int64_t n, size_t slots) {
  auto writer = qadataswap::SharedDataStream::CreateWriter(
      name, slots << 20,
      qadataswap::StreamWriterOptions().NumBuffers(slots).Timeout(std::chrono::seconds(30)).RetryCount(0));
  std::cout << "READY" << std::endl;
  ARROW_ASSIGN_OR_RAISE(size_t have, writer->WaitForReaders(3, std::chrono::seconds(30)));
  auto start = std::chrono::steady_clock::now();
  for (int64_t k = 0; k < n; ++k) {
    ARROW_ASSIGN_OR_RAISE(auto batch, StreamChunk(k));
    ARROW_ASSIGN_OR_RAISE(auto info, writer->WriteChunk(*batch, std::nothrow));
    if (info.seq != static_cast<uint64_t>(k + 1)) {
      return arrow::Status::Invalid("chunk ", k, " got number ", info.seq, ", expected ", k + 1);
    }
  }
  ARROW_RETURN_NOT_OK(writer->Finish());
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  ARROW_ASSIGN_OR_RAISE(auto stats, writer->Stats());
  std::cout << "STREAM-WRITE chunks=" << n << " readers=" << have << " lease_waits=" << stats.lease_waits << " ("
            << ms.count() << " ms)" << std::endl;
  return arrow::Status::OK();
}

arrow::Status StreamRead(const std::string& name) {
  auto reader = qadataswap::SharedDataStream::CreateReader(
      name, qadataswap::StreamReaderOptions().Timeout(std::chrono::seconds(30)).RetryCount(0));
  auto maps = SegmentMappings(name);
  int64_t expected = 0;
  size_t inside = 0, outside = 0;
  for (auto& chunk : reader->Chunks()) {
    ARROW_RETURN_NOT_OK(chunk.status());
    const auto& table = chunk->table;
    if (chunk->info.seq != static_cast<uint64_t>(expected + 1)) {
      return arrow::Status::Invalid("got chunk number ", chunk->info.seq, ", expected ", expected + 1);
    }
    ARROW_ASSIGN_OR_RAISE(auto want, StreamChunk(expected));
    ARROW_ASSIGN_OR_RAISE(auto want_table, arrow::Table::FromRecordBatches({want}));
    if (!table->schema()->Equals(*want->schema()) || !table->Equals(*want_table)) {
      return arrow::Status::Invalid("chunk ", chunk->info.seq, " differs: ", table->ToString().substr(0, 400));
    }
    if (chunk->info.num_batches != 1) {
      return arrow::Status::Invalid("chunk ", chunk->info.seq, ": ", chunk->info.num_batches, " batches");
    }
    std::vector<std::pair<const uint8_t*, int64_t>> buffers;
    for (const auto& col : table->columns()) {
      for (const auto& c : col->chunks()) CollectBuffers(*c->data(), &buffers);
    }
    for (const auto& [ptr, len] : buffers) {
      auto lo = reinterpret_cast<uintptr_t>(ptr);
      bool in = false;
      for (const auto& [mlo, mhi] : maps) in |= lo >= mlo && lo + static_cast<uintptr_t>(len) <= mhi;
      in ? ++inside : ++outside;
    }
    ++expected;
  }
  if (!reader->finished()) return arrow::Status::Invalid("the stream did not end cleanly");
  std::cout << "STREAM chunks=" << expected << " ok zero_copy_buffers=" << inside << " copied_buffers=" << outside
            << std::endl;
  if (outside != 0) return arrow::Status::Invalid(outside, " buffers do not point into the segment");
  return arrow::Status::OK();
}

arrow::Status Run(int argc, char** argv) {
  if (argc >= 4 && std::string(argv[1]) == "stream-write") {
    return StreamWrite(argv[2], std::stoll(argv[3]), argc > 4 ? std::stoul(argv[4]) : 4);
  }
  if (argc >= 3 && std::string(argv[1]) == "stream-read") return StreamRead(argv[2]);
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
