"""The seed's quick starts, as written, with writer and reader in separate processes."""

from __future__ import annotations

import asyncio

import polars as pl
import pytest

from qadataswap import SharedDataFrame


def test_python_reader_gets_the_frame_a_writer_process_published(name, spawn):
    w = spawn("quickstart_writer", name, 5000)
    w.expect("ready")
    reader = SharedDataFrame.create_reader(name)
    df = reader.read()
    assert isinstance(df, pl.DataFrame)
    assert df.shape == (5000, 2)
    assert df["a"].sum() == sum(range(5000))
    assert reader.stats()["copies"] == 0
    del df
    reader.close()
    assert w.finish() == 0


def test_reader_process_gets_the_frame_this_process_published(name, spawn):
    df = pl.DataFrame({"a": range(1000), "s": [str(i) for i in range(1000)]})
    writer = SharedDataFrame.create_writer(name, size_mb=100)
    writer.write(df)
    r = spawn("quickstart_reader", name)
    assert r.expect("read") == f"1000 {sum(range(1000))} a,s"
    assert r.finish() == 0
    writer.close()


def test_wait_for_condition_returns_the_first_frame_that_satisfies_it_across_processes(name, spawn):
    w = spawn("growing_writer", name)
    w.expect("ready")
    reader = SharedDataFrame.create_reader(name)
    df = reader.wait_for_condition(lambda df: len(df) > 1000, timeout=30)
    assert len(df) > 1000
    del df
    w.send("done")
    assert w.finish() == 0


def test_wait_for_condition_in_a_reader_process(name, spawn):
    r = spawn("condition_reader", name)
    writer = SharedDataFrame.create_writer(name, size_mb=10)
    for n in (10, 500, 2000):
        writer.write(pl.DataFrame({"a": range(n)}))
    assert int(r.expect("met")) == 2000
    assert r.finish() == 0
    writer.close()


def test_read_async_awaits_a_frame_from_a_writer_process(name, spawn):
    w = spawn("quickstart_writer", name, 10)
    w.expect("ready")

    async def main():
        reader = SharedDataFrame.create_reader(name)
        df = await reader.read_async()
        return df

    df = asyncio.run(main())
    assert df.height == 10
    w.send("done")
    assert w.finish() == 0


def test_writer_and_reader_are_context_managers(name):
    with SharedDataFrame.create_writer(name, size_mb=1) as writer:
        writer.write(pl.DataFrame({"x": [1, 2]}))
        with SharedDataFrame.create_reader(name) as reader:
            assert reader.read()["x"].to_list() == [1, 2]
        assert reader.closed
    assert writer.closed
