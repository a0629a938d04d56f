"""asyncio, cancellation and Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
import threading
import time

import polars as pl
import pytest

from qadataswap import SharedDataFrame


@pytest.mark.asyncio
async def test_read_async_returns_a_frame_published_while_it_waits(name):
    writer = SharedDataFrame.create_writer(name, size_mb=1)
    reader = SharedDataFrame.create_reader(name)
    task = asyncio.create_task(reader.read_async(timeout=30))
    await asyncio.sleep(0.1)
    assert not task.done()
    writer.write(pl.DataFrame({"a": [1, 2]}))
    df = await task
    assert df["a"].to_list() == [1, 2]
    writer.write(pl.DataFrame({"a": [3]}))
    df2 = await reader.read_next_async(timeout=30)
    assert df2["a"].to_list() == [3]


@pytest.mark.asyncio
async def test_cancelling_read_async_leaves_no_lease_and_the_reader_usable(name):
    writer = SharedDataFrame.create_writer(name, size_mb=1)
    writer.write(pl.DataFrame({"a": [1]}))
    reader = SharedDataFrame.create_reader(name)
    reader.read()
    task = asyncio.create_task(reader.read_next_async())  # nothing newer: waits
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.2)  # the worker stops at its next slice
    assert reader._lease_count() == 0
    writer.write(pl.DataFrame({"a": [2]}))
    assert (await reader.read_next_async(timeout=10))["a"][0] == 2


@pytest.mark.asyncio
async def test_read_async_timeout_raises_timeout_error(name):
    writer = SharedDataFrame.create_writer(name, size_mb=1)  # noqa: F841  (kept alive)
    reader = SharedDataFrame.create_reader(name)
    with pytest.raises(TimeoutError):
        await reader.read_async(timeout=0.1)


def test_ctrl_c_interrupts_a_blocking_read_in_another_process(name, spawn):
    writer = SharedDataFrame.create_writer(name, size_mb=1)
    writer.write(pl.DataFrame({"a": [1]}))
    r = spawn("blocked_reader", name)
    r.expect("waiting")
    time.sleep(0.2)
    r.proc.send_signal(signal.SIGINT)
    assert r.expect("interrupted") == "0"
    assert r.finish() == 0


def test_ctrl_c_interrupts_a_blocking_read_in_this_process(name):
    writer = SharedDataFrame.create_writer(name, size_mb=1)  # noqa: F841  (kept alive)
    reader = SharedDataFrame.create_reader(name)
    timer = threading.Timer(0.2, signal.raise_signal, args=(signal.SIGINT,))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        reader.read()  # no timeout
    timer.join()


def test_other_threads_run_while_a_read_waits(name):
    writer = SharedDataFrame.create_writer(name, size_mb=1)
    reader = SharedDataFrame.create_reader(name)

    def publish_later():
        time.sleep(0.2)
        writer.write(pl.DataFrame({"a": [5]}))  # needs the GIL while the reader waits

    t = threading.Thread(target=publish_later)
    t.start()
    assert reader.read(timeout=30)["a"][0] == 5
    t.join()
