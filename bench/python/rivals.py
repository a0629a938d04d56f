#!/usr/bin/env python3
"""The transports a Python user would pick to hand a Polars frame to another process, measured in
one run on this machine against the physical floor (a warm memcpy of the same bytes, into 3 rotating
destinations like a 3-slot ring; one reused destination is shown beside it).

Writer and reader are separate processes: this process writes, one persistent reader process (started
once, 'spawn' context) reads. Each transport is measured in steady state: warm-up first, then N
repetitions (adaptive), reporting median and p90 of

  end to end   the writer starts (it holds the frame) -> the reader holds a polars DataFrame
  reader side  the reader is notified (data readable on its pipe/socket, or a message saying the file or
               shared memory is ready) -> the reader holds a polars DataFrame. For the pipe and socket
               transports this includes receiving the bytes, which the writer streams meanwhile.

Both ends read CLOCK_MONOTONIC, which is one clock for every process on the machine.

    python bench/python/rivals.py [--quick] [--json PATH] [--only KEY,KEY] [--list]

Adding a transport (the Python binding adds `qadataswap`): write one more `Transport` subclass with
its writer half (runs here) and reader half (runs in the reader process), and list it in
`transports()`. Nothing else changes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import multiprocessing.connection
import os
import platform
import select
import shutil
import socket
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing import shared_memory
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.ipc  # noqa: F401  (pa.ipc)

CLOCK = time.CLOCK_MONOTONIC
ACK_TIMEOUT_S = 300.0  # watchdog: no single repetition here takes anywhere near this long


def now_ns() -> int:
    return time.clock_gettime_ns(CLOCK)


# --------------------------------------------------------------------------------------------------
# Workloads


@dataclass
class Workload:
    key: str
    label: str
    rows: int
    ncols: int  # alternating int64, float64
    max_reps: int
    warmup: int
    budget_s: float  # per transport, for choosing N between MIN_REPS and max_reps


MIN_REPS = 5

WORKLOADS = [
    Workload("1M", "1M rows x {int64, float64}", 1_000_000, 2, max_reps=30, warmup=2, budget_s=4.0),
    Workload("10M", "10M rows x 4 numeric (int64, float64, int64, float64)", 10_000_000, 4,
             max_reps=7, warmup=1, budget_s=12.0),
]


@dataclass
class Frame:
    """The writer's data: one pyarrow Table and the polars DataFrame over the same buffers."""

    workload: Workload
    table: pa.Table
    df: pl.DataFrame
    nbytes: int
    check_sum: int  # sum of the first (int64) column, checked by the reader once per transport
    columns: list[np.ndarray] = field(repr=False, default_factory=list)


def make_frame(w: Workload, seed: int = 42) -> Frame:
    rng = np.random.default_rng(seed)
    columns = []
    names = []
    for i in range(w.ncols):
        if i % 2 == 0:
            columns.append(rng.integers(0, 1_000_000, w.rows, dtype=np.int64))
            names.append(f"i{i}")
        else:
            columns.append(rng.random(w.rows))
            names.append(f"f{i}")
    table = pa.table(dict(zip(names, columns)))  # zero-copy over the numpy arrays
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    nbytes = sum(c.nbytes for c in columns)
    return Frame(w, table, df, nbytes, int(columns[0].sum()), columns)


# --------------------------------------------------------------------------------------------------
# Channels between the writer (this process) and the reader process, made before the reader starts


@dataclass
class Channels:
    ctrl: Any  # duplex multiprocessing Connection: commands, notifications, acks
    pickle_conn: Any  # multiprocessing.Pipe() end (duplex socketpair, as users get by default)
    pipe_conn: Any  # multiprocessing.Pipe(duplex=False) end: an os.pipe()


def make_channels(ctx) -> tuple[Channels, Channels]:
    ctrl_w, ctrl_r = ctx.Pipe()
    pickle_w, pickle_r = ctx.Pipe()
    pipe_r, pipe_w = ctx.Pipe(duplex=False)  # (receiving end, sending end) over os.pipe()
    return Channels(ctrl_w, pickle_w, pipe_w), Channels(ctrl_r, pickle_r, pipe_r)


# --------------------------------------------------------------------------------------------------
# Transports. Each has a writer half (this process) and a reader half (the reader process); a fresh
# instance is made on each side.


class Transport:
    key = ""
    label = ""

    # writer half -------------------------------------------------------------------------------
    def writer_open(self, frame: Frame, ch: Channels, scratch: str) -> dict:
        """Prepare to write `frame`; return the parameters the reader half needs (picklable)."""
        return {}

    def writer_ready(self) -> None:
        """Called once the reader half has opened (e.g. accept its connection)."""

    def write(self, frame: Frame) -> None:
        """Hand `frame` over; notify the reader over `ch.ctrl` if the data does not notify it itself."""
        raise NotImplementedError

    def after_ack(self) -> None:
        """Untimed, after the reader has dropped the frame (e.g. free the previous frame's memory)."""

    def writer_close(self) -> None:
        pass

    # reader half -------------------------------------------------------------------------------
    def reader_open(self, params: dict, ch: Channels) -> None:
        pass

    def read(self) -> tuple[int, pl.DataFrame]:
        """Wait for the next frame; return (the time the reader was notified, the DataFrame)."""
        raise NotImplementedError

    def reader_close(self) -> None:
        pass


def wait_readable(fileobj) -> int:
    select.select([fileobj], [], [])
    return now_ns()


class PicklePipe(Transport):
    key = "pickle-pipe"
    label = "pickle of the polars frame over multiprocessing.Pipe"

    def writer_open(self, frame, ch, scratch):
        self.conn = ch.pickle_conn
        return {}

    def write(self, frame):
        self.conn.send(frame.df)

    def reader_open(self, params, ch):
        self.conn = ch.pickle_conn

    def read(self):
        mp.connection.wait([self.conn])
        t = now_ns()
        return t, self.conn.recv()


class IpcStreamFile(Transport):
    """Arrow IPC stream written to / read from a file object (pipe or socket), one stream per frame."""

    def write(self, frame):
        with pa.ipc.new_stream(self.wfile, frame.table.schema) as w:
            w.write_table(frame.table)
        self.wfile.flush()

    def read(self):
        t = wait_readable(self.rfile)
        table = pa.ipc.open_stream(self.rfile).read_all()
        return t, pl.from_arrow(table)


class IpcStreamPipe(IpcStreamFile):
    key = "ipc-pipe"
    label = "Arrow IPC stream over a pipe (os.pipe)"

    def writer_open(self, frame, ch, scratch):
        self.wfile = os.fdopen(os.dup(ch.pipe_conn.fileno()), "wb")
        return {}

    def writer_close(self):
        self.wfile.close()

    def reader_open(self, params, ch):
        self.rfile = os.fdopen(os.dup(ch.pipe_conn.fileno()), "rb")

    def reader_close(self):
        self.rfile.close()


class IpcStreamUnixSocket(IpcStreamFile):
    key = "ipc-unix-socket"
    label = "Arrow IPC stream over a Unix socket"

    def writer_open(self, frame, ch, scratch):
        path = self.path = os.path.join(scratch, f"rivals-{frame.workload.key}.sock")
        if os.path.exists(path):
            os.unlink(path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(1)
        return {"path": path}

    def writer_ready(self):
        self.sock, _ = self.listener.accept()
        self.wfile = self.sock.makefile("wb")

    def writer_close(self):
        self.wfile.close()
        self.sock.close()
        self.listener.close()
        os.unlink(self.path)

    def reader_open(self, params, ch):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(params["path"])
        self.rfile = self.sock.makefile("rb")

    def reader_close(self):
        self.rfile.close()
        self.sock.close()


class IpcFileDevShm(Transport):
    key = "ipc-file-shm"
    label = "Arrow IPC file on /dev/shm, reader pa.memory_map"

    def writer_open(self, frame, ch, scratch):
        self.ctrl = ch.ctrl
        self.path = f"/dev/shm/qadataswap-rivals-{os.getpid()}.arrow"
        return {}

    def write(self, frame):
        with pa.OSFile(self.path, "wb") as f, pa.ipc.new_file(f, frame.table.schema) as w:
            w.write_table(frame.table)
        self.ctrl.send(("data", self.path))

    def writer_close(self):
        if os.path.exists(self.path):
            os.unlink(self.path)

    def reader_open(self, params, ch):
        self.ctrl = ch.ctrl

    def read(self):
        _, path = self.ctrl.recv()
        t = now_ns()
        table = pa.ipc.open_file(pa.memory_map(path)).read_all()
        return t, pl.from_arrow(table)


class IpcStreamSharedMemory(Transport):
    key = "ipc-shared-memory"
    label = "Arrow IPC stream in multiprocessing.shared_memory (one warm segment, reused)"

    def writer_open(self, frame, ch, scratch):
        self.ctrl = ch.ctrl
        sink = pa.MockOutputStream()
        with pa.ipc.new_stream(sink, frame.table.schema) as w:
            w.write_table(frame.table)
        size = sink.size() + (1 << 20)
        self.shm = shared_memory.SharedMemory(create=True, size=size)
        np.frombuffer(self.shm.buf, dtype=np.uint8)[:] = 0  # touch every page once: steady state
        self.target = pa.py_buffer(self.shm.buf)
        return {"name": self.shm.name}

    def write(self, frame):
        sink = pa.FixedSizeBufferWriter(self.target)
        with pa.ipc.new_stream(sink, frame.table.schema) as w:
            w.write_table(frame.table)
        self.ctrl.send(("data", sink.tell()))

    def writer_close(self):
        del self.target
        self.shm.close()
        self.shm.unlink()

    def reader_open(self, params, ch):
        self.ctrl = ch.ctrl
        self.shm = shared_memory.SharedMemory(name=params["name"])
        self.source = pa.py_buffer(self.shm.buf)  # zero-copy view of the whole segment

    def read(self):
        _, nbytes = self.ctrl.recv()
        t = now_ns()
        table = pa.ipc.open_stream(self.source.slice(0, nbytes)).read_all()
        return t, pl.from_arrow(table)

    def reader_close(self):
        del self.source
        self.shm.close()


class IpcStreamFreshSharedMemory(Transport):
    """What a first attempt looks like: a new segment per frame, so every write lands on fresh pages."""

    key = "ipc-shared-memory-fresh"
    label = "Arrow IPC stream in a new multiprocessing.shared_memory per frame"

    def writer_open(self, frame, ch, scratch):
        self.ctrl = ch.ctrl
        sink = pa.MockOutputStream()
        with pa.ipc.new_stream(sink, frame.table.schema) as w:
            w.write_table(frame.table)
        self.size = sink.size()
        self.previous = None
        return {}

    def write(self, frame):
        shm = shared_memory.SharedMemory(create=True, size=self.size)
        target = pa.py_buffer(shm.buf)
        sink = pa.FixedSizeBufferWriter(target)
        with pa.ipc.new_stream(sink, frame.table.schema) as w:
            w.write_table(frame.table)
        nbytes = sink.tell()
        del sink, target
        self.previous = shm
        self.ctrl.send(("data", shm.name, nbytes))

    def after_ack(self):
        if self.previous is not None:
            self.previous.close()
            self.previous.unlink()
            self.previous = None

    def writer_close(self):
        self.after_ack()

    def reader_open(self, params, ch):
        self.ctrl = ch.ctrl
        self.shm = None

    def read(self):
        self.reader_close()  # the previous frame's DataFrame is gone by now
        _, name, nbytes = self.ctrl.recv()
        t = now_ns()
        self.shm = shared_memory.SharedMemory(name=name)
        self.source = pa.py_buffer(self.shm.buf)
        table = pa.ipc.open_stream(self.source.slice(0, nbytes)).read_all()
        return t, pl.from_arrow(table)

    def reader_close(self):
        if self.shm is not None:
            del self.source
            self.shm.close()
            self.shm = None


class ParquetDevShm(Transport):
    key = "parquet-shm"
    label = "Parquet file on /dev/shm (polars write/read_parquet)"

    def writer_open(self, frame, ch, scratch):
        self.ctrl = ch.ctrl
        self.path = f"/dev/shm/qadataswap-rivals-{os.getpid()}.parquet"
        return {}

    def write(self, frame):
        frame.df.write_parquet(self.path)
        self.ctrl.send(("data", self.path))

    def writer_close(self):
        if os.path.exists(self.path):
            os.unlink(self.path)

    def reader_open(self, params, ch):
        self.ctrl = ch.ctrl

    def read(self):
        _, path = self.ctrl.recv()
        t = now_ns()
        return t, pl.read_parquet(path)


class QadataswapSnapshot(Transport):
    """Ours: a long-lived snapshot segment (sized once for the frame); the writer publishes the polars frame, the
    reader, blocked in read_next, gets a polars DataFrame over the shared memory. The frame's commit wakes the
    reader, so 'notified' is the writer's commit time (the frame's write_time_ns, moved to CLOCK_MONOTONIC)."""

    key = "qadataswap"
    label = "qadataswap SharedDataFrame (long-lived segment)"

    def writer_open(self, frame, ch, scratch):
        from qadataswap import SharedDataFrame

        self.name = f"qadataswap-rivals-{os.getpid()}-{frame.workload.key}"
        self.writer = SharedDataFrame.create_writer(
            self.name, size=3 * (frame.nbytes + (1 << 20)), num_buffers=3)
        return {"name": self.name}

    def write(self, frame):
        self.writer.write(frame.df)

    def writer_close(self):
        self.writer.close()

    def reader_open(self, params, ch):
        from qadataswap import SharedDataFrame, to_polars

        self.to_polars = to_polars
        self.reader = SharedDataFrame.create_reader(params["name"], open_timeout=30)

    def read(self):
        f = self.reader.read_next_frame(timeout=ACK_TIMEOUT_S)
        df = self.to_polars(f)
        committed = now_ns() - (time.time_ns() - f.write_time_ns)
        del f
        return committed, df

    def reader_close(self):
        self.reader.close()


def transports() -> list[type[Transport]]:
    """Every transport measured, in table order (ours last when the binding is installed)."""
    out: list[type[Transport]] = [PicklePipe, IpcStreamPipe, IpcStreamUnixSocket, IpcFileDevShm,
                                  IpcStreamSharedMemory, IpcStreamFreshSharedMemory, ParquetDevShm]
    try:
        import qadataswap  # noqa: F401
    except ImportError:
        return out
    return [*out, QadataswapSnapshot]


def registry() -> dict[str, type[Transport]]:
    return {t.key: t for t in transports()}


# --------------------------------------------------------------------------------------------------
# The reader process


def reader_main(ch: Channels) -> None:
    ctrl = ch.ctrl
    transport: Transport | None = None
    try:
        while True:
            msg = ctrl.recv()
            kind = msg[0]
            if kind == "open":
                _, key, params = msg
                transport = registry()[key]()
                transport.reader_open(params, ch)
                ctrl.send(("ready",))
            elif kind == "run":
                _, reps, checked = msg
                assert transport is not None
                for i in range(reps):
                    t_notified, df = transport.read()
                    t_done = now_ns()
                    rows, cols = df.shape
                    check = int(df[df.columns[0]].sum()) if i < checked else None
                    del df  # the writer may reuse the memory once we ack
                    ctrl.send(("ack", t_notified, t_done, rows, cols, check))
            elif kind == "close":
                if transport is not None:
                    transport.reader_close()
                transport = None
                ctrl.send(("closed",))
            elif kind == "quit":
                return
            else:
                raise ValueError(f"unknown command {kind!r}")
    except Exception:
        # Report, then exit: our pipe ends close, so a writer blocked on them fails instead of hanging.
        try:
            ctrl.send(("error", traceback.format_exc()))
        except OSError:
            pass


class Reader:
    """The writer's handle on the reader process."""

    def __init__(self, ctx):
        self.mine, theirs = make_channels(ctx)
        self.proc = ctx.Process(target=reader_main, args=(theirs,), name="rivals-reader", daemon=True)
        self.proc.start()
        # Drop our copies of the reader's ends: if it dies, a writer blocked on a pipe gets EPIPE.
        for conn in (theirs.ctrl, theirs.pickle_conn, theirs.pipe_conn):
            conn.close()

    def recv(self, expected: str):
        if not self.mine.ctrl.poll(ACK_TIMEOUT_S):
            self.proc.terminate()
            raise RuntimeError(f"reader process sent nothing for {ACK_TIMEOUT_S:.0f} s (waiting for {expected})")
        msg = self.mine.ctrl.recv()
        if msg[0] == "error":
            raise RuntimeError(f"reader process failed:\n{msg[1]}")
        if msg[0] != expected:
            raise RuntimeError(f"reader process sent {msg[0]!r}, expected {expected!r}")
        return msg

    def send(self, *msg):
        self.mine.ctrl.send(msg)

    def quit(self):
        try:
            self.send("quit")
        except OSError:
            pass
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.terminate()


# --------------------------------------------------------------------------------------------------
# Measuring


def stats_ms(samples_ns: list[int]) -> dict:
    a = np.asarray(samples_ns, dtype=np.float64) / 1e6
    return {"median": float(np.median(a)), "p90": float(np.percentile(a, 90)), "min": float(a.min()), "n": len(a)}


MEMCPY_ROTATE = 3  # destinations the floor rotates over: the footprint of a 3-slot ring


def measure_memcpy(frame: Frame, rotate: int = MEMCPY_ROTATE) -> dict:
    """np.copyto of every column into preallocated, already-touched buffers: the floor for one copy.

    With rotate=3 (the floor used for the ratios) each copy goes to the next of 3 destination sets, as a writer of a
    3-slot ring does: a writer never writes the slot it wrote last. With rotate=1 the same destination is reused,
    and at 16 MB source and destination fit a 32 MiB L3, so that copy partly runs from cache; it is reported beside
    the floor for information."""
    dsts = [[np.empty_like(c) for c in frame.columns] for _ in range(rotate)]
    for dst in dsts:
        for d, c in zip(dst, frame.columns):
            np.copyto(d, c)  # touch + warm
    reps = max(frame.workload.max_reps, 15)
    samples = []
    for i in range(reps):
        dst = dsts[i % rotate]
        t0 = now_ns()
        for d, c in zip(dst, frame.columns):
            np.copyto(d, c)
        samples.append(now_ns() - t0)
    return stats_ms(samples)


def measure_transport(cls: type[Transport], frame: Frame, reader: Reader, scratch: str) -> dict:
    w = frame.workload
    writer = cls()
    params = writer.writer_open(frame, reader.mine, scratch)
    try:
        reader.send("open", cls.key, params)
        reader.recv("ready")
        writer.writer_ready()

        def one_rep():
            t0 = now_ns()
            writer.write(frame)
            _, t_notified, t_done, rows, cols, check = reader.recv("ack")
            writer.after_ack()
            if (rows, cols) != (w.rows, w.ncols):
                raise RuntimeError(f"{cls.key}: reader got shape {(rows, cols)}, expected {(w.rows, w.ncols)}")
            if check is not None and check != frame.check_sum:
                raise RuntimeError(f"{cls.key}: reader's column sum {check} != writer's {frame.check_sum}")
            return t_done - t0, t_done - t_notified

        reader.send("run", w.warmup, w.warmup)  # warm-up repetitions also check the data
        warm = [one_rep() for _ in range(w.warmup)]
        per_rep_s = max(min(e for e, _ in warm) / 1e9, 1e-6)
        reps = int(min(w.max_reps, max(MIN_REPS, w.budget_s / per_rep_s)))
        reader.send("run", reps, 0)
        samples = [one_rep() for _ in range(reps)]
        reader.send("close")
        reader.recv("closed")
    finally:
        writer.writer_close()
    return {
        "key": cls.key,
        "label": cls.label,
        "end_to_end_ms": stats_ms([e for e, _ in samples]),
        "reader_side_ms": stats_ms([r for _, r in samples]),
    }


# --------------------------------------------------------------------------------------------------
# Output


def print_table(result: dict) -> None:
    mem = result["memcpy_ms"]
    mb = result["bytes"] / 1e6
    print()
    print(f"{result['label']} = {mb:.0f} MB")
    print(f"  warm memcpy of the same bytes into {MEMCPY_ROTATE} rotating buffers (floor): median {mem['median']:.2f} ms,"
          f" p90 {mem['p90']:.2f} ms ({result['bytes'] / mem['median'] / 1e6:.1f} GB/s)")
    one = result.get("memcpy_one_buffer_ms")
    if one:
        print(f"  (into one reused buffer, for information: median {one['median']:.2f} ms,"
              f" {result['bytes'] / one['median'] / 1e6:.1f} GB/s)")
    name_w = max(len(t["label"]) for t in result["transports"])
    head = f"  {'transport':<{name_w}}  {'n':>3}  {'end-to-end ms':>19}  {'reader-side ms':>19}  {'e2e/memcpy':>10}"
    print(head)
    print(f"  {'':<{name_w}}  {'':>3}  {'median':>9} {'p90':>9}  {'median':>9} {'p90':>9}  {'(median)':>10}")
    print("  " + "-" * (len(head) - 2))
    for t in result["transports"]:
        e, r = t["end_to_end_ms"], t["reader_side_ms"]
        print(f"  {t['label']:<{name_w}}  {e['n']:>3}  {e['median']:>9.2f} {e['p90']:>9.2f}"
              f"  {r['median']:>9.3f} {r['p90']:>9.3f}  {t['ratio_to_memcpy']:>9.1f}x")
    sys.stdout.flush()


def chart_svg(results: list[dict]) -> str:
    """Horizontal bars, one panel per workload: each transport's end-to-end median as a multiple of the warm memcpy
    of the same bytes (log axis from 0.1x to 100x: the floor is 1x)."""
    lo, hi = 0.1, 100.0
    left, right, bar, gap, top = 520.0, 140.0, 16.0, 4.0, 40.0
    width = 1100.0
    plot = width - left - right
    rows = sum(len(r["transports"]) + 2 for r in results)
    height = top + rows * (bar + gap) + 40.0

    def x(v: float) -> float:
        import math
        v = min(max(v, lo), hi)
        return left + (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * plot

    def esc(t: str) -> str:
        return t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{width / 2:.0f}" y="20" text-anchor="middle" font-size="15">'
           f'End to end, writer to a polars DataFrame in another process (median, x a warm memcpy; lower is better)'
           f'</text>']
    for v in (0.1, 1.0, 10.0, 100.0):
        out.append(f'<line x1="{x(v):.1f}" y1="{top:.0f}" x2="{x(v):.1f}" y2="{height - 30:.0f}" '
                   f'stroke="{"#888" if v == 1.0 else "#ddd"}"/>')
        out.append(f'<text x="{x(v):.1f}" y="{height - 14:.0f}" text-anchor="middle">{v:g}x</text>')
    y = top
    for r in results:
        out.append(f'<text x="8" y="{y + bar - 3:.0f}" font-weight="bold">'
                   f'{esc(r["label"])} ({r["bytes"] / 1e6:.0f} MB)</text>')
        y += bar + gap
        for t in sorted(r["transports"], key=lambda t: t["ratio_to_memcpy"]):
            ratio = t["ratio_to_memcpy"]
            ours = t["key"] == "qadataswap"
            out.append(f'<text x="{left - 6:.0f}" y="{y + bar - 4:.0f}" text-anchor="end">{esc(t["label"])}</text>')
            out.append(f'<rect x="{left:.0f}" y="{y:.0f}" width="{max(x(ratio) - left, 1):.1f}" height="{bar:.0f}" '
                       f'fill="{"#1f77b4" if ours else "#bbb"}"/>')
            out.append(f'<text x="{x(ratio) + 4:.1f}" y="{y + bar - 4:.0f}">{ratio:.1f}x '
                       f'({t["end_to_end_ms"]["median"]:.1f} ms)</text>')
            y += bar + gap
        y += bar + gap
    out.append("</svg>")
    return "\n".join(out) + "\n"


def environment() -> dict:
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pyarrow": pa.__version__,
        "polars": pl.__version__,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "clock": "CLOCK_MONOTONIC",
    }


DEFINITIONS = {
    "end_to_end_ms": "writer starts (holding the polars frame / Arrow table) -> reader holds a polars DataFrame",
    "reader_side_ms": "reader notified (bytes readable on its pipe/socket, or the ready message for file and "
                      "shared-memory transports) -> reader holds a polars DataFrame; pipe/socket include receiving",
    "memcpy_ms": "np.copyto of every column into preallocated, already-touched buffers, rotating over 3 destination "
                 "sets (a 3-slot ring's footprint), in one process",
    "memcpy_one_buffer_ms": "the same copy into one reused destination (partly cache-resident at 16 MB)",
    "ratio_to_memcpy": "median end-to-end / median memcpy",
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="only the 1M-row workload")
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON here")
    ap.add_argument("--only", metavar="KEYS", help="comma-separated transport keys (see --list)")
    ap.add_argument("--list", action="store_true", help="list the transports and exit")
    args = ap.parse_args(argv)

    if args.list:
        for t in transports():
            print(f"{t.key:<20} {t.label}")
        return 0
    chosen = transports()
    if args.only:
        wanted = [k.strip() for k in args.only.split(",") if k.strip()]
        unknown = [k for k in wanted if k not in registry()]
        if unknown:
            ap.error(f"unknown transport(s) {', '.join(unknown)}; --list shows the keys")
        chosen = [t for t in chosen if t.key in wanted]
    workloads = WORKLOADS[:1] if args.quick else WORKLOADS

    started = time.monotonic()
    env = environment()
    print(f"Python rivals: python {env['python']}, numpy {env['numpy']}, pyarrow {env['pyarrow']}, "
          f"polars {env['polars']}, {env['cpus']} cpus")
    print("end-to-end: writer starts -> reader holds a polars DataFrame; reader-side: reader notified -> "
          "DataFrame (pipe/socket: includes receiving the bytes)")
    print("writer = this process, reader = one persistent process ('spawn'); medians and p90 over n steady-state runs")
    sys.stdout.flush()

    ctx = mp.get_context("spawn")
    reader = Reader(ctx)
    scratch = tempfile.mkdtemp(prefix="qadataswap-rivals-")
    results = []
    try:
        for w in workloads:
            frame = make_frame(w)
            memcpy = measure_memcpy(frame)
            memcpy_one = measure_memcpy(frame, rotate=1)
            rows = []
            for cls in chosen:
                r = measure_transport(cls, frame, reader, scratch)
                r["ratio_to_memcpy"] = r["end_to_end_ms"]["median"] / memcpy["median"]
                rows.append(r)
            result = {"workload": w.key, "label": w.label, "rows": w.rows, "columns": w.ncols,
                      "bytes": frame.nbytes, "memcpy_ms": memcpy, "memcpy_one_buffer_ms": memcpy_one,
                      "transports": rows}
            results.append(result)
            print_table(result)
            del frame
    finally:
        reader.quit()
        shutil.rmtree(scratch, ignore_errors=True)

    elapsed = time.monotonic() - started
    print(f"\ntotal {elapsed:.1f} s")
    if args.json:
        doc = {"bench": "python-rivals", "environment": env, "definitions": DEFINITIONS,
               "seconds": elapsed, "workloads": results}
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        # A chart and a report fragment linking it, beside the JSON (`cargo xtask bench` puts both in its report).
        stem = os.path.splitext(args.json)[0]
        with open(f"{stem}-e2e.svg", "w") as f:
            f.write(chart_svg(results))
        with open(f"{stem}.md", "w") as f:
            f.write(f"![end to end against every rival]({os.path.basename(stem)}-e2e.svg)\n")
        print(f"JSON written to {args.json}, chart to {stem}-e2e.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
