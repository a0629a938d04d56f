"""SharedDataStream: the seed's quick start, order across several reader processes, end of stream."""

from __future__ import annotations

import polars as pl
import pytest

import qadataswap
from qadataswap import SharedDataStream


def test_every_reader_process_gets_every_chunk_in_order(name, spawn):
    # The seed's quick start, as written (plus waiting for the audience):
    with SharedDataStream.create_writer(name) as writer:
        readers = [spawn("stream_reader", name) for _ in range(3)]
        assert writer.wait_for_readers(3, 60) == 3
        for i in range(50):
            chunk = pl.DataFrame({"i": [i] * 100, "s": [str(i)] * 100})
            writer.write_chunk(chunk)
    expected = ",".join(str(i) for i in range(50))
    for r in readers:
        r.expect("attached")
        assert r.expect("chunks") == expected
        assert r.finish() == 0


def test_iter_chunks_ends_at_finish_and_chunks_are_zero_copy(name):
    with SharedDataStream.create_writer(name, size_mb=4) as writer:
        reader = SharedDataStream.create_reader(name)
        writer.write_chunk(pl.DataFrame({"i": [1, 2]}))
        writer.write_chunk(pl.DataFrame({"i": [3]}))
    got = [c["i"].to_list() for c in reader.iter_chunks(timeout=10)]
    assert got == [[1, 2], [3]]
    assert reader.finished and reader.stats()["copies"] == 0


def test_a_stream_writer_that_raised_closes_without_finishing(name):
    reader = None
    with pytest.raises(RuntimeError):
        with SharedDataStream.create_writer(name, size_mb=4) as writer:
            reader = SharedDataStream.create_reader(name)
            writer.write_chunk(pl.DataFrame({"i": [1]}))
            raise RuntimeError("boom")
    assert reader.next_chunk(timeout=10)["i"][0] == 1
    with pytest.raises(qadataswap.WriterClosedError):
        reader.next_chunk(timeout=10)


def test_a_stream_read_times_out_with_timeout_error(name):
    with SharedDataStream.create_writer(name, size_mb=1):
        reader = SharedDataStream.create_reader(name)
        with pytest.raises(TimeoutError):
            reader.next_chunk(timeout=0.2)


def test_writing_after_finish_raises_finished(name):
    writer = SharedDataStream.create_writer(name, size_mb=1)
    writer.finish()
    with pytest.raises(qadataswap.FinishedError):
        writer.write_chunk(pl.DataFrame({"i": [1]}))
    writer.close()
