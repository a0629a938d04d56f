// The C++ reader process of the end-to-end latency bench (`e2e_bench latency`, transport `cpp`): the Rust writer
// calls write() on a small frame; this process holds it as an arrow::Table (Reader::ReadNext) and reports how long
// that took, through the bench's control mapping.
//
//   latency_reader <hot|parked> <rows> <control file> <segment> <rounds>
//
// The control mapping's layout is the bench's `Control` block (crates/qadataswap-arrow/examples/e2e_bench/
// harness.rs, whose offsets are asserted there): `ready` (u32) at 0, `stamp` (u64, CLOCK_MONOTONIC ns taken just
// before the writer's write()) at 384, and the first reader's `ack` (u32) at 512 and `lat` (u64) at 520.
#include "qadataswap/shared_dataframe.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

constexpr size_t kReady = 0, kStamp = 384, kAck = 512, kLat = 520, kMapLen = 64 << 10;

uint64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

template <typename T>
std::atomic<T>* Word(void* base, size_t off) {
  static_assert(std::atomic<T>::is_always_lock_free, "the control words are lock-free atomics");
  return reinterpret_cast<std::atomic<T>*>(static_cast<char*>(base) + off);
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "latency_reader: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) return Fail("usage: latency_reader <hot|parked> <rows> <control file> <segment> <rounds>");
  // Die with the bench, whatever kills it.
  pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) return Fail("the bench process is gone");
  const std::string mode = argv[1];
  const int64_t rows = std::atoll(argv[2]);
  const std::string segment = argv[4];
  const long rounds = std::atol(argv[5]);
  if (mode != "hot" && mode != "parked") return Fail("mode must be hot or parked");

  int fd = open(argv[3], O_RDWR | O_CLOEXEC);
  if (fd < 0) return Fail(std::string("cannot open the control file ") + argv[3]);
  void* ctl = mmap(nullptr, kMapLen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (ctl == MAP_FAILED) return Fail("cannot map the control file");

  try {
    qadataswap::ReaderOptions opts;
    opts.Spin(mode == "hot" ? UINT32_MAX : 0).Timeout(std::chrono::seconds(10));
    auto reader = qadataswap::SharedDataFrame::CreateReader(segment, opts);
    Word<uint32_t>(ctl, kReady)->fetch_add(1, std::memory_order_acq_rel);
    for (long i = 1; i <= rounds; ++i) {
      uint64_t t1 = 0;
      int64_t got = 0;
      {
        auto table = reader->ReadNext(std::chrono::seconds(10));
        t1 = MonoNs();
        if (!table.ok()) return Fail(table.status().ToString());
        got = (*table)->num_rows();
      }  // the table (and its lease) is dropped before the acknowledgement, as the Rust reader does
      if (got != rows) return Fail("read " + std::to_string(got) + " rows, expected " + std::to_string(rows));
      const uint64_t t0 = Word<uint64_t>(ctl, kStamp)->load(std::memory_order_acquire);
      Word<uint64_t>(ctl, kLat)->store(t1 > t0 ? t1 - t0 : 0, std::memory_order_relaxed);
      Word<uint32_t>(ctl, kAck)->store(static_cast<uint32_t>(i), std::memory_order_release);
    }
  } catch (const std::exception& e) {
    return Fail(e.what());
  }
  return 0;
}
