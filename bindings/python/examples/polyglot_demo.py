"""Writers and readers in different processes and languages (run by `cargo xtask demo`).

1. A Python writer publishes polars frames; a Rust reader and a C++ reader (separate processes) read them zero-copy.
2. A Rust writer publishes Arrow frames; this Python process reads them as polars DataFrames zero-copy.

Usage: polyglot_demo.py RUST_DEMO_BIN CPP_ROLE_BIN
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import polars as pl

import qadataswap
from qadataswap import SharedDataFrame

ROWS = 1_000_000


def segment_range_of(name):
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            if f"/dev/shm/{name}" in line:
                lo, hi = line.split()[0].split("-")
                out.append((int(lo, 16), int(hi, 16)))
    return out


def python_writes_rust_and_cpp_read(rust_demo, cpp_role):
    name = f"qads-polyglot-py-{os.getpid()}"
    df = pl.DataFrame({
        "i0": np.arange(ROWS, dtype=np.int64),
        "f1": np.arange(ROWS, dtype=np.float64) * 0.5,
        "sym": pl.Series(["AAPL", "MSFT", "NVDA", "AMZN"] * (ROWS // 4)),
    })
    print(f"[python writer pid {os.getpid()}] segment '{name}': {ROWS} rows x (int64, float64, str)")
    with SharedDataFrame.create_writer(name, size_mb=3 * 40) as writer:
        rust = subprocess.Popen([rust_demo, "reader", name, "Rust"])
        time.sleep(0.5)
        times = []
        for i in range(10):
            t = time.perf_counter()
            info = writer.write(df)
            times.append(time.perf_counter() - t)
            if i == 0:
                with tempfile.NamedTemporaryFile(suffix=".arrows") as out:
                    cpp = subprocess.run([cpp_role, "read", name, out.name], capture_output=True, text=True, timeout=60)
                    print(f"[C++ reader] {cpp.stdout.strip() or cpp.stderr.strip()}")
            time.sleep(0.05)
        print(f"[python writer pid {os.getpid()}] wrote 10 frames of {info.bytes / 1e6:.1f} MB; median write "
              f"{statistics.median(times) * 1e3:.2f} ms")
        time.sleep(0.3)
    rust.wait(timeout=60)


def rust_writes_python_reads(rust_demo):
    name = f"qads-polyglot-rs-{os.getpid()}"
    writer = subprocess.Popen([rust_demo, "writer", name])
    deadline = time.time() + 30
    while not os.path.exists(f"/dev/shm/{name}"):
        if time.time() > deadline:
            raise SystemExit("the Rust writer did not create its segment")
        time.sleep(0.01)
    reader = SharedDataFrame.create_reader(name, timeout=10)
    read_times, seen, df = [], 0, None
    while True:
        try:
            df = reader.read_next(timeout=5)
        except qadataswap.WriterClosedError:
            break
        t = time.perf_counter()
        again = reader.read()
        read_times.append(time.perf_counter() - t)
        del again
        seen += 1
        if seen == 1:
            lo_hi = segment_range_of(name)
            bufs = [b for col in df.to_arrow().columns for chunk in col.chunks for b in chunk.buffers() if b is not None and b.size]
            inside = sum(any(lo <= b.address and b.address + b.size <= hi for lo, hi in lo_hi) for b in bufs)
            print(f"[python reader pid {os.getpid()}] first frame: shape {df.shape}, columns {df.columns}; "
                  f"{inside}/{len(bufs)} buffers point into the segment")
        del df
    writer.wait(timeout=60)
    print(f"[python reader pid {os.getpid()}] read {seen} frames from the Rust writer; median read() to a polars "
          f"DataFrame {statistics.median(read_times) * 1e6:.1f} µs")


def main():
    rust_demo, cpp_role = sys.argv[1], sys.argv[2]
    print("== Python writer -> Rust reader + C++ reader ==")
    python_writes_rust_and_cpp_read(rust_demo, cpp_role)
    print("\n== Rust writer -> Python reader ==")
    rust_writes_python_reads(rust_demo)


if __name__ == "__main__":
    main()
