"""Arrow Flight on loopback: the gateway (`qadataswap serve`) against pyarrow.flight serving the same table from memory,
and the relay's end-to-end latency against the loopback Flight transfer it is built on.

  flight_bench.py --cli target/release/qadataswap [--json out.json] [--quick]

1. DoGet throughput, 16 MB (1M rows x {int64, float64}) and 320 MB (10M rows x 4 numeric) frames, one batch each:
   a pyarrow.flight client reads the whole table (`read_all`) from (a) the gateway, which sends the newest frame of a
   snapshot segment straight from shared memory, and (b) a pyarrow `FlightServerBase` in another process holding the
   same table in memory (what a user would otherwise run). Median of the reps; ratio = gateway GB/s / pyarrow GB/s.
2. Latency, stream chunks of 1k rows (and 1M rows without --quick): `write_chunk` on segment A to a polars
   DataFrame in the reader, (a) through the gateway to a pyarrow.flight client (`DoGet` following A: the loopback
   Flight transfer), and (b) through gateway A -> `qadataswap relay` -> local segment B -> a qadataswap reader of B
   (host A to host B, here on one machine). Added latency = (b) - (a); ratio = added / (a).

Goals: gateway throughput >= pyarrow's in-memory server; relay's added latency <= the Flight transfer itself.
Every process runs on this machine over 127.0.0.1; nothing is measured in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import threading
import time
import uuid

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.flight as fl

from qadataswap import SharedDataFrame, SharedDataStream


def table(rows: int, cols: int) -> pa.Table:
    data = {}
    for c in range(cols):
        a = np.arange(rows, dtype=np.int64) * (c + 1)
        data[f"c{c}"] = a if c % 2 == 0 else a.astype(np.float64)
    return pa.table(data)


class AnchorServer(fl.FlightServerBase):
    """pyarrow.flight serving one table from memory (DoGet of any ticket)."""

    def __init__(self, tbl: pa.Table) -> None:
        super().__init__("grpc://127.0.0.1:0")
        self.tbl = tbl

    def do_get(self, context, ticket):
        return fl.RecordBatchStream(self.tbl)


def serve_anchor(rows: int, cols: int) -> None:
    tbl = table(rows, cols).combine_chunks()
    srv = AnchorServer(tbl)
    print(f"listening on grpc://127.0.0.1:{srv.port}", flush=True)
    srv.serve()


class Proc:
    def __init__(self, cmd: list[str], ready: str) -> None:
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        r, _, _ = select.select([self.proc.stdout], [], [], 120)
        line = self.proc.stdout.readline().strip() if r else ""
        if not line.startswith(ready):
            self.proc.kill()
            raise SystemExit(f"{cmd[:2]} said {line!r}; stderr: {self.proc.stderr.read()}")
        self.line = line

    @property
    def port(self) -> int:
        return int(self.line.rsplit(":", 1)[1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def time_get(location: str, ticket: bytes, reps: int) -> list[float]:
    c = fl.connect(location)
    c.do_get(fl.Ticket(ticket)).read_all()  # warm-up (connection, first touch)
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        t = c.do_get(fl.Ticket(ticket)).read_all()
        out.append(time.perf_counter() - t0)
        del t
    c.close()
    return out


def throughput(cli: str, rows: int, cols: int, reps: int) -> dict:
    tbl = table(rows, cols).combine_chunks()
    nbytes = tbl.nbytes
    name = f"qads-flightbench-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    w = SharedDataFrame.create_writer(name, size=int(nbytes * 2.2) + (8 << 20), num_buffers=2)
    w.write(tbl)
    g = Proc([cli, "serve", "--no-auth", "--bind", "127.0.0.1:0"], "listening on")
    a = Proc([sys.executable, __file__, "--serve-anchor", str(rows), str(cols)], "listening on")
    try:
        # Interleaved rounds, so that a burst of load on the machine hits both sides alike.
        ours, theirs = [], []
        for _ in range(2):
            ours += time_get(f"grpc://127.0.0.1:{g.port}", name.encode(), max(1, reps // 2))
            theirs += time_get(f"grpc://127.0.0.1:{a.port}", b"t", max(1, reps // 2))
    finally:
        g.stop()
        a.stop()
        w.close()
    mo, mt = statistics.median(ours), statistics.median(theirs)
    return {
        "bytes": nbytes,
        "rows": rows,
        "gateway_s": mo,
        "pyarrow_s": mt,
        "gateway_gbps": nbytes / mo / 1e9,
        "pyarrow_gbps": nbytes / mt / 1e9,
        "ratio": mt / mo,
    }


def latency(cli: str, rows: int, reps: int) -> dict:
    base = f"qads-flightlat-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    a_name, b_name = f"{base}-a", f"{base}-b"
    chunk = pl.DataFrame({"i": np.arange(rows, dtype=np.int64), "x": np.zeros(rows)})
    size = max(16 << 20, chunk.estimated_size() * 8)
    g = Proc([cli, "serve", "--no-auth", "--bind", "127.0.0.1:0"], "listening on")
    results = {}
    try:
        # (a) the loopback Flight transfer: gateway -> pyarrow.flight client -> polars
        w = SharedDataStream.create_writer(a_name, size=size, num_buffers=4, timeout=30.0)
        first = threading.Thread(target=lambda: w.write_chunk(chunk))
        first.start()  # waits for its first reader: the gateway, once the client calls DoGet
        c = fl.connect(f"grpc://127.0.0.1:{g.port}")
        r = c.do_get(fl.Ticket(a_name.encode()))
        r.read_chunk()
        first.join()
        direct = []
        for _ in range(reps):
            t0 = time.perf_counter()
            w.write_chunk(chunk)
            df = pl.from_arrow(r.read_chunk().data)
            direct.append(time.perf_counter() - t0)
            del df
        w.finish()
        del r
        c.close()

        # (b) through the relay into a local segment, read by a qadataswap reader as a polars DataFrame
        a2 = f"{a_name}2"
        w = SharedDataStream.create_writer(a2, size=size, num_buffers=4, timeout=30.0)
        relay = Proc([cli, "relay", f"flight://127.0.0.1:{g.port}/{a2}", b_name, "--give-up-after", "60"], "relaying")
        try:
            first = threading.Thread(target=lambda: w.write_chunk(chunk))
            first.start()
            rb = SharedDataStream.create_reader(b_name, open_timeout=60, timeout=60)
            rb.next_chunk()
            first.join()
            relayed = []
            for _ in range(reps):
                t0 = time.perf_counter()
                w.write_chunk(chunk)
                df = rb.next_chunk()
                relayed.append(time.perf_counter() - t0)
                del df
            w.finish()
            for _ in rb.iter_chunks():
                pass
            relay.proc.wait(60)  # it finishes B once the remote stream ended
        finally:
            relay.stop()
        md, mr = statistics.median(direct), statistics.median(relayed)
        results = {
            "rows": rows,
            "bytes": chunk.estimated_size(),
            "flight_s": md,
            "relay_s": mr,
            "added_s": mr - md,
            "ratio": (mr - md) / md,
        }
    finally:
        g.stop()
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", default=os.environ.get("QADATASWAP_CLI", "qadataswap"))
    ap.add_argument("--json")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--serve-anchor", nargs=2, type=int)
    a = ap.parse_args()
    if a.serve_anchor:
        serve_anchor(*a.serve_anchor)
        return
    sizes = [(1_000_000, 2, 10 if a.quick else 20)] + ([] if a.quick else [(10_000_000, 4, 6)])
    tp = [throughput(a.cli, rows, cols, reps) for rows, cols, reps in sizes]
    lat_sizes = [(1_000, 100 if a.quick else 300)] + ([] if a.quick else [(1_000_000, 20)])
    lat = [latency(a.cli, rows, reps) for rows, reps in lat_sizes]

    print("\nDoGet throughput on loopback, one batch per frame, median (pyarrow.flight client read_all)")
    print(f"{'frame':>8} | {'gateway':>16} | {'pyarrow in-memory':>18} | ratio (goal >= 1.0)")
    for t in tp:
        print(f"{t['bytes'] / 1e6:>6.0f} MB | {t['gateway_s'] * 1e3:>7.1f} ms {t['gateway_gbps']:>4.2f} GB/s | "
              f"{t['pyarrow_s'] * 1e3:>7.1f} ms {t['pyarrow_gbps']:>4.2f} GB/s | {t['ratio']:.2f}x")
    print("\nLatency, write_chunk on A to a polars DataFrame, median")
    print(f"{'chunk':>10} | {'Flight transfer':>15} | {'via relay to B':>14} | {'added':>9} | added / transfer (goal <= 1.0)")
    for lt in lat:
        print(f"{lt['rows']:>5} rows | {lt['flight_s'] * 1e3:>12.2f} ms | {lt['relay_s'] * 1e3:>11.2f} ms | "
              f"{lt['added_s'] * 1e3:>6.2f} ms | {lt['ratio']:.2f}")
    for t in tp:
        print(f"RATIO gateway/pyarrow DoGet throughput at {t['bytes'] / 1e6:.0f} MB: {t['ratio']:.2f}")
    for lt in lat:
        print(f"RATIO relay added latency / Flight transfer at {lt['rows']} rows: {lt['ratio']:.2f}")
    out = {"throughput": tp, "latency": lat, "quick": a.quick}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
