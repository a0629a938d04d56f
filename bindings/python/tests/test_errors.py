"""Every error path raises a class of the qadataswap hierarchy whose message says what to do."""

from __future__ import annotations

import builtins
import multiprocessing as mp
import os
import re

import polars as pl
import pytest

import qadataswap
from qadataswap import SharedDataFrame


def test_opening_a_name_nobody_created_raises_segment_not_found(name):
    with pytest.raises(qadataswap.SegmentNotFoundError, match="start the writer first") as e:
        SharedDataFrame.create_reader(name, open_timeout=0)
    assert isinstance(e.value, qadataswap.Error) and isinstance(e.value, FileNotFoundError)
    # Waiting for it: the error says which name it waited for, and how long.
    with pytest.raises(qadataswap.SegmentNotFoundError, match=f"'{name}'.*did not appear within") as e:
        SharedDataFrame.create_reader(name, open_timeout=0.2)
    assert 0.2 <= e.value.waited


def test_an_invalid_name_raises_invalid_name():
    with pytest.raises(qadataswap.InvalidNameError):
        SharedDataFrame.create_writer("bad/name", size_mb=1)


def test_a_read_that_times_out_raises_a_timeout_error_that_is_also_the_builtin(name):
    writer = SharedDataFrame.create_writer(name, size_mb=1)
    reader = SharedDataFrame.create_reader(name)
    with pytest.raises(builtins.TimeoutError) as e:
        reader.read(timeout=0.2)
    assert isinstance(e.value, qadataswap.TimeoutError) and isinstance(e.value, qadataswap.Error)
    assert e.value.name == name and e.value.waited >= 0.2
    writer.write(pl.DataFrame({"a": [1]}))
    reader.read()
    with pytest.raises(qadataswap.TimeoutError):
        reader.read_next(timeout=0.1)
    with pytest.raises(qadataswap.TimeoutError):
        reader.wait_for_condition(lambda df: len(df) > 5, timeout=0.2)
    assert reader.stats()["timeouts"] == 3


def test_the_reader_default_timeout_applies_when_none_is_given(name):
    writer = SharedDataFrame.create_writer(name, size_mb=1)  # noqa: F841  (kept alive)
    reader = SharedDataFrame.create_reader(name, timeout=0.1)
    with pytest.raises(qadataswap.TimeoutError):
        reader.read()


def test_try_read_returns_none_before_the_first_write(name):
    writer = SharedDataFrame.create_writer(name, size_mb=1)
    reader = SharedDataFrame.create_reader(name)
    assert reader.try_read() is None
    assert reader.schema() is None
    writer.write(pl.DataFrame({"a": [1]}))
    assert reader.try_read()["a"].to_list() == [1]


def test_a_second_writer_while_the_first_is_alive_raises_writer_alive(name):
    first = SharedDataFrame.create_writer(name, size_mb=1)
    with pytest.raises(qadataswap.WriterAliveError, match="only one writer per name") as e:
        SharedDataFrame.create_writer(name, size_mb=1)
    assert e.value.pid == os.getpid()
    first.close()


def test_a_frame_larger_than_a_slot_raises_slot_too_small(name):
    writer = SharedDataFrame.create_writer(name, size_mb=1, num_buffers=4)
    with pytest.raises(qadataswap.SlotTooSmallError, match="larger size") as e:
        writer.write(pl.DataFrame({"a": range(200_000)}))
    assert e.value.needed > e.value.capacity == writer.slot_capacity


def test_writing_something_that_is_not_arrow_raises_invalid_frame(name):
    writer = SharedDataFrame.create_writer(name, size_mb=1)
    with pytest.raises(qadataswap.InvalidFrameError, match="__arrow_c_stream__"):
        writer.write({"a": [1, 2]})


def test_a_closed_writer_ends_blocking_reads_with_writer_closed(name):
    writer = SharedDataFrame.create_writer(name, size_mb=1)
    writer.write(pl.DataFrame({"a": [1]}))
    reader = SharedDataFrame.create_reader(name)
    assert reader.read()["a"][0] == 1
    writer.close()
    with pytest.raises(qadataswap.WriterClosedError):
        reader.read_next(timeout=10)
    assert reader.read()["a"][0] == 1, "what was published stays readable"
    with pytest.raises(qadataswap.ReleasedError):
        writer.write(pl.DataFrame({"a": [2]}))


def test_a_killed_writer_shows_as_writer_died(name, spawn):
    w = spawn("writer_then_hang", name)
    w.expect("ready")
    reader = SharedDataFrame.create_reader(name)
    reader.read()
    w.kill()
    with pytest.raises(qadataswap.WriterDiedError, match="died without closing") as e:
        reader.read_next(timeout=10)
    assert e.value.pid == w.proc.pid
    # A new writer takes the dead one's segment over.
    with SharedDataFrame.create_writer(name, size_mb=1) as writer:
        assert writer.generation >= 2


def test_a_persistent_segment_outlives_its_writer_until_unlinked(name):
    writer = SharedDataFrame.create_writer(name, size_mb=1, persistent=True)
    writer.write(pl.DataFrame({"a": [7]}))
    writer.close()
    reader = SharedDataFrame.create_reader(name)
    assert reader.read()["a"][0] == 7
    reader.close()
    SharedDataFrame.unlink(name)
    with pytest.raises(qadataswap.SegmentNotFoundError):
        SharedDataFrame.create_reader(name)


def test_a_closed_reader_raises_released(name):
    writer = SharedDataFrame.create_writer(name, size_mb=1)  # noqa: F841  (kept alive)
    reader = SharedDataFrame.create_reader(name)
    reader.close()
    with pytest.raises(qadataswap.ReleasedError):
        reader.try_read()


def test_every_handle_closes_twice_and_then_raises_released_naming_itself(name):
    stream = f"{name}-s"
    writer = SharedDataFrame.create_writer(name, size_mb=1)
    reader = SharedDataFrame.create_reader(name)
    stream_writer = qadataswap.SharedDataStream.create_writer(stream, size_mb=1)
    stream_reader = qadataswap.SharedDataStream.create_reader(stream)
    frame = pl.DataFrame({"a": [1]})
    for handle, what, segment, use in [
        (reader, "reader", name, reader.try_read),
        (writer, "writer", name, lambda: writer.write(frame)),
        (stream_reader, "stream reader", stream, stream_reader.stats),
        (stream_writer, "stream writer", stream, lambda: stream_writer.write_chunk(frame)),
    ]:
        assert not handle._native.closed
        handle.close()
        handle.close()
        assert handle._native.closed
        with pytest.raises(qadataswap.ReleasedError, match=re.escape(f"this {what} of '{segment}' is closed")):
            use()


def test_a_negative_timeout_is_refused(name):
    writer = SharedDataFrame.create_writer(name, size_mb=1)  # noqa: F841  (kept alive)
    reader = SharedDataFrame.create_reader(name)
    with pytest.raises(qadataswap.InvalidConfigError):
        reader.read(timeout=-1)


def _use_inherited(reader, writer, q):
    out = []
    for call in (reader.try_read, reader.read, lambda: writer.write(pl.DataFrame({"a": [2]}))):
        try:
            call()
            out.append("worked")
        except qadataswap.ForkedError as e:
            out.append(f"ForkedError {e.owner_pid} {e.pid} {e}")
        except Exception as e:  # noqa: BLE001
            out.append(f"{type(e).__name__}: {e}")
    q.put(out)


def test_objects_inherited_through_fork_refuse_to_work_in_the_child(name):
    writer = SharedDataFrame.create_writer(name, size_mb=1)
    writer.write(pl.DataFrame({"a": [1]}))
    reader = SharedDataFrame.create_reader(name)
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_use_inherited, args=(reader, writer, q))
    p.start()
    out = q.get(timeout=30)
    p.join(30)
    assert len(out) == 3
    for line in out:
        assert line.startswith(f"ForkedError {os.getpid()} "), line
        assert "open a new one in this process" in line
    # The parent's objects still work, and the child's exit did not close or unlink anything.
    writer.write(pl.DataFrame({"a": [3]}))
    assert reader.read_next(timeout=5)["a"][0] == 3
