"""Helper processes for the tests: `python roles.py ROLE ARGS...`. They print lines the tests wait for."""

from __future__ import annotations

import signal
import sys
import time

import polars as pl

from qadataswap import SharedDataFrame


def say(*parts: object) -> None:
    print(*parts, flush=True)


def quickstart_writer(name: str, rows: str) -> None:
    # The seed's quick start, as written.
    df = pl.DataFrame({"a": range(int(rows)), "b": [float(i) / 2 for i in range(int(rows))]})
    writer = SharedDataFrame.create_writer(name, size_mb=100)
    writer.write(df)
    say("ready")
    sys.stdin.readline()  # hold the segment until the test is done
    writer.close()


def quickstart_reader(name: str) -> None:
    reader = SharedDataFrame.create_reader(name, timeout=30)
    df = reader.read()
    say("read", len(df), int(df["a"].sum()), ",".join(df.columns))


def growing_writer(name: str) -> None:
    writer = SharedDataFrame.create_writer(name, size_mb=10)
    say("ready")
    n = 100
    while n < 100_000:
        writer.write(pl.DataFrame({"a": range(n)}))
        n += 250
        time.sleep(0.01)
    sys.stdin.readline()
    writer.close()


def condition_reader(name: str) -> None:
    reader = SharedDataFrame.create_reader(name, open_timeout=30)
    df = reader.wait_for_condition(lambda df: len(df) > 1000, timeout=30)
    say("met", len(df))


def blocked_reader(name: str) -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    reader = SharedDataFrame.create_reader(name)
    reader.read()
    say("waiting")
    try:
        reader.read_next()  # no timeout: only Ctrl-C ends it
    except KeyboardInterrupt:
        say("interrupted", reader._lease_count())


def writer_then_hang(name: str) -> None:
    writer = SharedDataFrame.create_writer(name, size_mb=1)
    writer.write(pl.DataFrame({"a": [1, 2, 3]}))
    say("ready")
    time.sleep(600)  # killed by the test


def stream_reader(name: str) -> None:
    from qadataswap import SharedDataStream

    reader = SharedDataStream.create_reader(name, timeout=60)
    say("attached")
    seen = []
    for chunk in reader.iter_chunks():
        seen.append(int(chunk["i"][0]))
        del chunk
    say("chunks", ",".join(map(str, seen)))


def live_writer(name: str) -> None:
    writer = SharedDataFrame.create_writer(name, size_mb=1, persistent=True)
    writer.write(pl.DataFrame({"a": [1, 2, 3]}))
    say("ready")
    sys.stdin.readline()
    writer.close()


def recreate(name: str) -> None:
    # Another program removed the name by hand; a new writer makes it again.
    import os

    os.unlink(f"/dev/shm/{name}")
    writer = SharedDataFrame.create_writer(name, size_mb=1)
    writer.write(pl.DataFrame({"a": [2] * 100}))
    say("ready")
    sys.stdin.readline()
    writer.close()


def huge_writer(name: str) -> None:
    # Killed by the test while it reserves 4 GiB.
    SharedDataFrame.create_writer(name, size_mb=4096)
    say("created")
    sys.stdin.readline()


def stream_writer(name: str, chunks: str) -> None:
    # A live stream for the consumers of tests/test_arrow_capsule.py and test_asyncio.py: waits for one reader,
    # then writes chunk i = 0..chunks-1 (three rows each, "i" and "s" columns) and finishes.
    from qadataswap import SharedDataStream

    with SharedDataStream.create_writer(name, size_mb=4, num_buffers=4, timeout=60) as writer:
        say("ready")
        assert writer.wait_for_readers(1, 60) >= 1
        for i in range(int(chunks)):
            writer.write_chunk(pl.DataFrame({"i": [i] * 3, "s": [f"chunk {i}"] * 3}))
    say("finished")


if __name__ == "__main__":
    role, *args = sys.argv[1:]
    globals()[role](*args)
