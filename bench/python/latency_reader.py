#!/usr/bin/env python3
"""The Python reader process of the end-to-end latency bench (`e2e_bench latency`, transport `python`).

The Rust writer calls write() on a small frame; this process holds it as a polars.DataFrame
(`SharedDataFrame.create_reader(...).read_next()`, zero-copy) and reports how long that took, through the
bench's control mapping, with the part spent in `to_polars` (frame to DataFrame) in its `vals[0]`.

    latency_reader.py <hot|parked> <rows> <control file> <segment> <rounds>

The control mapping's layout is the bench's `Control` block (crates/qadataswap-arrow/examples/e2e_bench/
harness.rs, whose offsets are asserted there): `ready` (u32) at 0, `stamp` (u64, CLOCK_MONOTONIC ns taken just
before the writer's write()) at 384, and the first reader's `ack` (u32) at 512, `lat` (u64) at 520 and `vals[0]` (u64) at 536. Aligned
loads and stores of these widths are single instructions on the machines this runs on; the writer reads `ack` and
`lat` only after it saw `ack` change, and x86's stores are seen in order.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import signal
import sys
import time

READY, STAMP, ACK, LAT, CONVERT, MAP_LEN = 0, 384, 512, 520, 536, 64 << 10


def die_with_parent() -> None:
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:
        sys.exit("latency_reader.py: the bench process is gone")


def main() -> int:
    if len(sys.argv) != 6:
        sys.exit("usage: latency_reader.py <hot|parked> <rows> <control file> <segment> <rounds>")
    die_with_parent()
    mode, rows, ctl_path, segment, rounds = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
    if mode not in ("hot", "parked"):
        sys.exit("latency_reader.py: mode must be hot or parked")

    import qadataswap  # after the checks: a usage error should not wait for the import

    fd = os.open(ctl_path, os.O_RDWR | os.O_CLOEXEC)
    try:
        ctl = mmap.mmap(fd, MAP_LEN, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)
    words = memoryview(ctl)
    u32 = words.cast("I")
    u64 = words.cast("Q")
    clock = time.CLOCK_MONOTONIC
    now_ns = time.clock_gettime_ns

    reader = qadataswap.SharedDataFrame.create_reader(
        segment, timeout=10.0, spin=(2**32 - 1) if mode == "hot" else 0
    )
    u32[READY // 4] += 1  # the only reader of this control block: no other process adds to it
    to_polars = qadataswap.to_polars
    for i in range(1, rounds + 1):
        # read_next() is read_next_frame() then to_polars(); split, to report the conversion's share.
        frame = reader.read_next_frame(10.0)
        t_frame = now_ns(clock)
        df = to_polars(frame)
        t1 = now_ns(clock)
        del frame
        got = df.height
        del df  # the frame (and its lease) goes before the acknowledgement, as in the Rust reader
        if got != rows:
            sys.exit(f"latency_reader.py: read {got} rows, expected {rows}")
        t0 = u64[STAMP // 8]
        u64[LAT // 8] = max(t1 - t0, 0)
        u64[CONVERT // 8] = t1 - t_frame
        u32[ACK // 4] = i
    if reader.stats().get("copies", 0) != 0:
        sys.exit("latency_reader.py: the reader copied")
    reader.close()
    del u32, u64, words
    ctl.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
