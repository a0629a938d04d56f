"""asyncio done properly (issue 17): waits run on the library's own waiter thread, never on the event loop's default
executor; cancelling stops the wait and leaves no lease and no thread; streams are async iterators. Ordering and
completion are asserted, never wall-clock times; every wait has a generous timeout as a watchdog."""

from __future__ import annotations

import asyncio
import concurrent.futures

import polars as pl
import pytest

from qadataswap import SharedDataFrame, SharedDataStream

WATCHDOG_S = 60


async def started(*tasks: asyncio.Task) -> None:
    """Let each task run up to its first real wait (no time involved: one pass of the loop per task)."""
    for _ in tasks:
        await asyncio.sleep(0)


def no_waiter_thread_left(reader) -> bool:
    t = reader._waiter_thread()
    if t is not None:
        t.join(WATCHDOG_S)  # watchdog: the thread ends right after its last wait
    return t is None or not t.is_alive()


@pytest.mark.asyncio
async def test_eight_pending_read_async_leave_the_default_executor_free(name):
    writer = SharedDataFrame.create_writer(name, size_mb=1)
    # One worker: a single wait parked on the default executor would starve to_thread below.
    asyncio.get_running_loop().set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=1))
    readers = [SharedDataFrame.create_reader(name) for _ in range(4)]
    reads = [asyncio.create_task(r.read_async(timeout=None)) for r in readers for _ in range(2)]  # 2 per reader
    await started(*reads)
    other = await asyncio.wait_for(asyncio.to_thread(lambda: "ran"), WATCHDOG_S)
    assert other == "ran"
    assert not any(t.done() for t in reads), "the unrelated to_thread ran while all 8 reads were still pending"
    writer.write(pl.DataFrame({"a": [7, 8]}))
    dfs = await asyncio.wait_for(asyncio.gather(*reads), WATCHDOG_S)
    assert [df["a"].to_list() for df in dfs] == [[7, 8]] * 8
    del dfs, reads  # the tasks hold their results too
    # No lease outlives the frames, even before the waiter threads are gone (they must not keep a result alive).
    assert [r._lease_count() for r in readers] == [0] * 4
    assert all(no_waiter_thread_left(r) for r in readers)


@pytest.mark.asyncio
async def test_a_cancelled_read_async_has_stopped_and_left_no_lease_and_no_thread_when_the_await_returns(name):
    writer = SharedDataFrame.create_writer(name, size_mb=1)
    writer.write(pl.DataFrame({"a": [1]}))
    reader = SharedDataFrame.create_reader(name)
    reader.read()
    task = asyncio.create_task(reader.read_next_async(timeout=None))  # nothing newer: waits
    await started(task)
    assert reader._waiter_thread() is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert reader._lease_count() == 0
    assert no_waiter_thread_left(reader)
    writer.write(pl.DataFrame({"a": [2]}))
    assert (await reader.read_next_async(timeout=WATCHDOG_S))["a"].to_list() == [2]


@pytest.mark.asyncio
async def test_cancelling_as_a_frame_arrives_leaves_no_lease(name):
    writer = SharedDataFrame.create_writer(name, size_mb=1)
    reader = SharedDataFrame.create_reader(name)
    for i in range(20):  # the frame lands before, during or after the cancel: no lease in any case
        task = asyncio.create_task(reader.read_next_async(timeout=None))
        await started(task)
        writer.write(pl.DataFrame({"a": [i]}))
        task.cancel()
        try:
            df = await task
            del df
        except asyncio.CancelledError:
            pass
        assert reader._lease_count() == 0
    assert no_waiter_thread_left(reader)


@pytest.mark.asyncio
async def test_wait_for_condition_async_returns_the_first_frame_that_satisfies_a_plain_or_async_predicate(name):
    writer = SharedDataFrame.create_writer(name, size_mb=1)
    reader = SharedDataFrame.create_reader(name)
    task = asyncio.create_task(reader.wait_for_condition_async(lambda df: len(df) >= 3, timeout=WATCHDOG_S))
    for n in range(1, 4):
        await started(task)
        assert not task.done()
        writer.write(pl.DataFrame({"a": range(n)}))
    assert len(await task) == 3

    async def has_five(df: pl.DataFrame) -> bool:
        await asyncio.sleep(0)
        return len(df) == 5

    task = asyncio.create_task(reader.wait_for_condition_async(has_five, timeout=WATCHDOG_S))
    await started(task)
    writer.write(pl.DataFrame({"a": range(5)}))
    assert len(await task) == 5


@pytest.mark.asyncio
async def test_wait_for_condition_async_times_out_with_timeout_error(name):
    writer = SharedDataFrame.create_writer(name, size_mb=1)
    writer.write(pl.DataFrame({"a": [1]}))
    reader = SharedDataFrame.create_reader(name)
    with pytest.raises(TimeoutError):
        await reader.wait_for_condition_async(lambda df: False, timeout=0.2)
    assert reader._lease_count() == 0


@pytest.mark.asyncio
async def test_async_for_reads_every_chunk_of_a_stream_written_by_another_process(name, spawn):
    w = spawn("stream_writer", name, 25)
    w.expect("ready")
    reader = SharedDataStream.create_reader(name, timeout=WATCHDOG_S)
    seen = []
    async for chunk in reader:
        seen.append(chunk["i"].to_list())
        del chunk
    assert seen == [[i] * 3 for i in range(25)]
    assert reader.finished
    assert no_waiter_thread_left(reader)
    assert w.finish() == 0


@pytest.mark.asyncio
async def test_a_cancelled_next_chunk_async_loses_no_chunk(name):
    with SharedDataStream.create_writer(name, size_mb=1, num_buffers=4) as writer:
        reader = SharedDataStream.create_reader(name, timeout=WATCHDOG_S)
        for i in range(10):  # the chunk lands before, during or after the cancel: it is never lost
            task = asyncio.create_task(reader.next_chunk_async())
            await started(task)
            writer.write_chunk(pl.DataFrame({"i": [i]}))
            task.cancel()
            try:
                got = await task
                assert got["i"].to_list() == [i]
                del got
            except asyncio.CancelledError:
                again = await reader.next_chunk_async()
                assert again["i"].to_list() == [i]
                del again
    assert await reader.next_chunk_async() is None
    assert no_waiter_thread_left(reader)
