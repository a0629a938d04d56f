#!/usr/bin/env python3
"""qadataswap from Python, measured in one run:

  read()        the Python reader reaching a polars.DataFrame: median over many calls of `reader.read()` on an
                open reader with the frame already published (1M rows x {int64, float64}; 10M rows x 4 numeric)
  end to end    Python writer -> Python reader process, steady state over a long-lived segment, beside a warm
                memcpy of the same bytes (rivals.py's harness, which also measures the rival transports)
  cold write    the first write into a freshly created segment, and the creation itself

    python bench/python/qadataswap_bench.py [--quick] [--json PATH] [--no-rivals]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rivals  # noqa: E402
from qadataswap import SharedDataFrame  # noqa: E402


def measure_read(frame: rivals.Frame, reps: int) -> dict:
    name = f"qadataswap-bench-read-{os.getpid()}"
    with SharedDataFrame.create_writer(name, size=3 * (frame.nbytes + (1 << 20))) as writer:
        writer.write(frame.df)
        with SharedDataFrame.create_reader(name) as reader:
            for _ in range(20):
                df = reader.read()
                del df
            samples = []
            for _ in range(reps):
                t0 = time.perf_counter_ns()
                df = reader.read()
                t1 = time.perf_counter_ns()
                samples.append(t1 - t0)
                del df
            assert reader.stats()["copies"] == 0
    s = sorted(samples)
    return {"median_us": statistics.median(s) / 1e3, "p90_us": s[int(len(s) * 0.9)] / 1e3, "n": len(s)}


def measure_cold(frame: rivals.Frame) -> dict:
    name = f"qadataswap-bench-cold-{os.getpid()}"
    t0 = time.perf_counter_ns()
    writer = SharedDataFrame.create_writer(name, size=3 * (frame.nbytes + (1 << 20)))
    t1 = time.perf_counter_ns()
    writer.write(frame.df)
    t2 = time.perf_counter_ns()
    warm = []
    for _ in range(5):
        a = time.perf_counter_ns()
        writer.write(frame.df)
        warm.append(time.perf_counter_ns() - a)
    writer.close()
    return {"create_ms": (t1 - t0) / 1e6, "first_write_ms": (t2 - t1) / 1e6,
            "steady_write_ms": statistics.median(warm) / 1e6}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="only 1M rows")
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--no-rivals", action="store_true", help="only qadataswap in the end-to-end table")
    args = ap.parse_args()
    workloads = rivals.WORKLOADS[:1] if args.quick else rivals.WORKLOADS
    results = []
    for w in workloads:
        frame = rivals.make_frame(w)
        r = measure_read(frame, reps=2000 if w.rows <= 1_000_000 else 500)
        c = measure_cold(frame)
        mem = rivals.measure_memcpy(frame)
        print(f"{w.label} ({frame.nbytes / 1e6:.0f} MB)")
        print(f"  reader.read() -> polars.DataFrame, open reader, frame published: median {r['median_us']:.1f} us,"
              f" p90 {r['p90_us']:.1f} us (n={r['n']}; target <= 50 us)")
        print(f"  warm memcpy of the same bytes (3 rotating buffers, as rivals.py): {mem['median']:.2f} ms")
        print(f"  writer, in process: create segment {c['create_ms']:.1f} ms, cold first write"
              f" {c['first_write_ms']:.2f} ms, steady write {c['steady_write_ms']:.2f} ms"
              f" ({c['steady_write_ms'] / mem['median']:.2f}x memcpy)")
        results.append({"workload": w.key, "read": r, "cold": c, "memcpy_ms": mem})
        del frame
        gc.collect()
    argv = ["--quick"] if args.quick else []
    if args.no_rivals:
        argv += ["--only", "qadataswap"]
    if args.json:
        argv += ["--json", args.json + ".rivals.json"]
        with open(args.json, "w") as f:
            json.dump({"bench": "qadataswap-python", "workloads": results}, f, indent=2)
    sys.stdout.flush()
    return rivals.main(argv)


if __name__ == "__main__":
    sys.exit(main())
