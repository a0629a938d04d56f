// C++ reader cost: median Reader::Read() to an arrow::Table on an open reader with a frame already published, for
// 1M and 10M rows of (int64, float64, utf8view) (the columns of the Rust arrow-read bench). The import through the
// C Data Interface is O(columns): the 10M-row frame should cost what the 1M-row one does.
//
//   read_bench [--quick] [--json PATH] [--iters N]
#include "qadataswap/shared_dataframe.h"

#include <arrow/util/logging.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace {

std::shared_ptr<arrow::Table> MakeTable(int64_t rows) {
  arrow::Int64Builder ib;
  arrow::DoubleBuilder db;
  arrow::StringViewBuilder sb;
  ARROW_CHECK_OK(ib.Reserve(rows));
  ARROW_CHECK_OK(db.Reserve(rows));
  ARROW_CHECK_OK(sb.Reserve(rows));
  char buf[32];
  for (int64_t v = 0; v < rows; ++v) {
    ib.UnsafeAppend(v);
    db.UnsafeAppend(static_cast<double>(v) * 0.25);
    int n = std::snprintf(buf, sizeof buf, "sym%07lld-%lld", static_cast<long long>(v % 5000),
                          static_cast<long long>(v % 7));
    ARROW_CHECK_OK(sb.Append(buf, n));
  }
  auto schema = arrow::schema({arrow::field("i64", arrow::int64()), arrow::field("f64", arrow::float64()),
                               arrow::field("utf8view", arrow::utf8_view())});
  return arrow::Table::Make(schema, {ib.Finish().ValueOrDie(), db.Finish().ValueOrDie(), sb.Finish().ValueOrDie()});
}

struct Row {
  int64_t rows;
  uint64_t bytes;
  double median_us;
  double p99_us;
};

Row Measure(int64_t rows, int iters) {
  using clock = std::chrono::steady_clock;
  const std::string name = "qads-cpp-readbench-" + std::to_string(getpid()) + "-" + std::to_string(rows);
  auto table = MakeTable(rows);
  int64_t bytes = 0;
  for (const auto& col : table->columns())
    for (const auto& chunk : col->chunks())
      for (const auto& b : chunk->data()->buffers) bytes += b ? b->size() : 0;
  auto writer = qadataswap::SharedDataFrame::CreateWriter(name, 3 * (bytes + rows * 20 + (1 << 20)));
  auto info = writer->Write(table);
  table.reset();
  auto reader = qadataswap::SharedDataFrame::CreateReader(name);
  for (int i = 0; i < 20; ++i) (void)reader->Read().ValueOrDie();
  std::vector<double> t;
  t.reserve(iters);
  for (int i = 0; i < iters; ++i) {
    auto s = clock::now();
    auto result = reader->Read();
    auto got = result.ValueOrDie();
    auto e = clock::now() - s;
    if (got->num_rows() != rows) std::abort();
    got.reset();
    t.push_back(std::chrono::duration<double, std::micro>(e).count());
  }
  std::sort(t.begin(), t.end());
  return Row{rows, info.bytes, t[t.size() / 2], t[t.size() * 99 / 100]};
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string json;
  int iters = 2000;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--json" && i + 1 < argc) json = argv[++i];
    else if (a == "--iters" && i + 1 < argc) iters = std::stoi(argv[++i]);
  }
  std::vector<int64_t> sizes = quick ? std::vector<int64_t>{1000000} : std::vector<int64_t>{1000000, 10000000};
  std::printf("C++ Reader::Read() -> arrow::Table: open reader, frame already published, columns (int64, float64, utf8view)\n");
  std::printf("%12s %12s %12s %12s\n", "rows", "frame MB", "median", "p99");
  std::vector<Row> rows;
  for (auto n : sizes) {
    Row r = Measure(n, iters);
    char med[32], p99[32];
    std::snprintf(med, sizeof med, "%.2f µs", r.median_us);
    std::snprintf(p99, sizeof p99, "%.2f µs", r.p99_us);
    std::printf("%12lld %12.1f %13s %13s\n", static_cast<long long>(r.rows), r.bytes / 1e6, med, p99);
    std::fflush(stdout);
    rows.push_back(r);
  }
  bool met = std::all_of(rows.begin(), rows.end(), [](const Row& r) { return r.median_us <= 10.0; });
  if (rows.size() == 2) {
    std::printf("10M / 1M median ratio: %.2fx for 10x the rows (O(columns): ~1x expected); target <= 10 µs each: %s\n",
                rows[1].median_us / rows[0].median_us, met ? "met" : "NOT met");
  } else {
    std::printf("target <= 10 µs: %s\n", met ? "met" : "NOT met");
  }
  if (!json.empty()) {
    std::ofstream out(json);
    out << "{\"bench\":\"cpp-read\",\"results\":[";
    for (size_t i = 0; i < rows.size(); ++i) {
      char item[256];
      std::snprintf(item, sizeof item, "%s{\"rows\":%lld,\"bytes\":%llu,\"median_us\":%.3f,\"p99_us\":%.3f}",
                    i ? "," : "", static_cast<long long>(rows[i].rows),
                    static_cast<unsigned long long>(rows[i].bytes), rows[i].median_us, rows[i].p99_us);
      out << item;
    }
    out << "]}\n";
  }
  return 0;
}
