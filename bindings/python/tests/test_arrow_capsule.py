"""Readers and streams are Arrow PyCapsule producers (issue 17): pyarrow, Polars and DuckDB consume them directly,
zero-copy, and a requested schema is honoured or refused clearly."""

from __future__ import annotations

import gc

import duckdb
import polars as pl
import pyarrow as pa
import pytest

import qadataswap
from conftest import shm_ranges
from qadataswap import SharedDataFrame, SharedDataStream


def buffer_addresses(arrays) -> list[int]:
    out = []
    for arr in arrays:
        for b in arr.buffers():
            if b is not None and b.size > 0:
                out.append(b.address)
    return out


def inside(addr: int, ranges: list[tuple[int, int]]) -> bool:
    return any(lo <= addr < hi for lo, hi in ranges)


def table_arrays(table: pa.Table) -> list[pa.Array]:
    return [chunk for col in table.columns for chunk in col.chunks]


def sample(rows: int = 10_000) -> pl.DataFrame:
    return pl.DataFrame({"i": range(rows), "f": [i / 4 for i in range(rows)], "s": [f"v{i}" for i in range(rows)]})


def test_pa_table_of_a_snapshot_reader_is_the_newest_frame_inside_the_segment(name):
    writer = SharedDataFrame.create_writer(name, size_mb=16)
    writer.write(sample(10))
    writer.write(sample())
    reader = SharedDataFrame.create_reader(name)
    table = pa.table(reader)
    assert table.num_rows == 10_000 and table.column("i").to_pylist()[-1] == 9_999
    addrs = buffer_addresses(table_arrays(table))
    assert len(addrs) >= 3  # one per column at least (short string views are inline)
    ranges = shm_ranges(name)
    assert ranges and all(inside(a, ranges) for a in addrs), "a buffer lies outside the segment: a copy was made"
    assert reader.stats()["copies"] == 0


def test_the_exported_arrays_hold_the_lease_until_the_consumer_drops_them(name):
    writer = SharedDataFrame.create_writer(name, size_mb=4)
    writer.write(sample(100))
    reader = SharedDataFrame.create_reader(name)
    table = pa.table(reader)
    assert reader._lease_count() == 1
    del table
    gc.collect()
    assert reader._lease_count() == 0


def test_polars_dataframe_of_a_snapshot_reader_has_the_values_and_points_into_the_segment(name):
    writer = SharedDataFrame.create_writer(name, size_mb=16)
    src = sample()
    writer.write(src)
    reader = SharedDataFrame.create_reader(name)
    df = pl.DataFrame(reader)  # polars 2.1 takes any __arrow_c_stream__ exporter
    assert df.equals(src)
    ranges = shm_ranges(name)
    table = df.select("i", "f").to_arrow()  # numeric columns: zero-copy back to Arrow
    assert all(inside(a, ranges) for a in buffer_addresses(table_arrays(table)))
    assert pl.from_arrow(pa.table(reader)).equals(src)


def test_duckdb_queries_a_snapshot_reader_by_its_variable_name(name):
    writer = SharedDataFrame.create_writer(name, size_mb=16)
    writer.write(sample())
    reader = SharedDataFrame.create_reader(name)
    got = duckdb.sql("select count(*), sum(i), max(s) from reader where i % 2 = 0").fetchall()
    assert got == [(5_000, sum(range(0, 10_000, 2)), "v9998")]
    del got
    gc.collect()
    assert reader._lease_count() == 0  # DuckDB released what it imported


def test_a_requested_schema_equal_to_the_data_or_castable_without_loss_is_honoured(name):
    writer = SharedDataFrame.create_writer(name, size_mb=4)
    writer.write(pa.table({"i": pa.array([1, 2, 3], pa.int64()), "s": ["a", "b", None], "f": [1.0, 2.0, 3.0]}))
    reader = SharedDataFrame.create_reader(name)
    same = pa.table(reader, schema=reader.schema())
    assert same.schema.equals(reader.schema())
    wanted = pa.schema([("i", pa.int32()), ("s", pa.large_string()), ("f", pa.int16())])
    cast = pa.table(reader, schema=wanted)
    assert cast.schema.equals(wanted)
    assert cast.to_pydict() == {"i": [1, 2, 3], "s": ["a", "b", None], "f": [1, 2, 3]}
    rbr = pa.RecordBatchReader.from_stream(reader, schema=wanted)
    assert rbr.read_all().equals(cast)


@pytest.mark.parametrize(
    "wanted, column",
    [
        (pa.schema([("i", pa.int8()), ("s", pa.string()), ("f", pa.float64())]), '"i"'),  # 1000 does not fit
        (pa.schema([("i", pa.int64()), ("s", pa.string()), ("f", pa.int64())]), '"f"'),  # 0.5 is not integral
        (pa.schema([("i", pa.int64()), ("s", pa.string(), False), ("f", pa.float64())]), '"s"'),  # has nulls
        (pa.schema([("i", pa.int64()), ("t", pa.string()), ("f", pa.float64())]), '"t"'),  # renamed
        (pa.schema([("i", pa.int64())]), "column"),  # fewer columns
        (pa.schema([("i", pa.int64()), ("s", pa.list_(pa.int8())), ("f", pa.float64())]), '"s"'),  # no cast
    ],
)
def test_a_requested_schema_that_would_lose_or_change_data_is_refused_naming_the_column(name, wanted, column):
    writer = SharedDataFrame.create_writer(name, size_mb=4)
    writer.write(pa.table({"i": [1, 1000], "s": ["a", None], "f": [0.5, 2.0]}))
    reader = SharedDataFrame.create_reader(name)
    with pytest.raises(qadataswap.SchemaMismatchError, match=column) as e:
        reader.__arrow_c_stream__(wanted.__arrow_c_schema__())
    assert "request" in str(e.value)  # says what to do
    with pytest.raises(qadataswap.SchemaMismatchError):
        pa.table(reader, schema=wanted)
    gc.collect()
    assert reader._lease_count() == 0


def test_a_stream_reader_is_a_record_batch_reader_over_a_live_stream_of_another_process(name, spawn):
    w = spawn("stream_writer", name, 12)
    w.expect("ready")
    reader = SharedDataStream.create_reader(name, timeout=60)
    rbr = pa.RecordBatchReader.from_stream(reader)
    assert rbr.schema.names == ["i", "s"]
    seen = []
    ranges = shm_ranges(name)
    for batch in rbr:  # each batch dropped before the next: the ring of 4 is never held
        seen.append(batch.column("i").to_pylist())
        assert all(inside(a, ranges) for a in buffer_addresses(batch.columns)), "a chunk was copied"
        del batch
    assert seen == [[i] * 3 for i in range(12)]
    assert reader.finished
    w.expect("finished")
    assert w.finish() == 0


def test_a_one_thread_duckdb_aggregates_a_live_stream_of_another_process_zero_copy(name, spawn):
    # DuckDB with one thread drops each batch before pulling the next, so a 20-chunk stream passes a 4-slot ring.
    w = spawn("stream_writer", name, 20)
    w.expect("ready")
    stream = SharedDataStream.create_reader(name, timeout=60)
    con = duckdb.connect()
    con.execute("set threads = 1")
    got = con.sql("select count(*), sum(i), count(distinct s) from stream").fetchall()
    assert got == [(60, 3 * sum(range(20)), 20)]
    assert stream.finished
    assert w.finish() == 0


def test_a_many_thread_duckdb_consumes_a_live_stream_longer_than_the_ring_through_copying(name, spawn):
    # DuckDB with several threads keeps the batches of a scan until the query ends: zero-copy, a stream longer
    # than the ring would hold the whole ring (RingHeldError). copying() hands it private copies instead.
    w = spawn("stream_writer", name, 20)
    w.expect("ready")
    reader = SharedDataStream.create_reader(name, timeout=60)
    copies = reader.copying()
    con = duckdb.connect()
    con.execute("set threads = 4")
    got = con.sql("select count(*), sum(i), count(distinct s) from copies").fetchall()
    assert got == [(60, 3 * sum(range(20)), 20)]
    assert reader.finished
    assert w.finish() == 0


def test_batches_a_consumer_did_not_pull_stay_with_the_stream_reader(name):
    with SharedDataStream.create_writer(name, size_mb=4, num_buffers=4) as writer:
        reader = SharedDataStream.create_reader(name, timeout=30)
        writer.write_chunk(pa.table({"i": [0]}))
        writer.write_chunk(pa.table({"i": [1]}))
        # The export peeks at the first chunk for the schema; dropping it unread gives that chunk back.
        rbr = pa.RecordBatchReader.from_stream(reader)
        del rbr
        assert reader.next_chunk()["i"].to_list() == [0]
        rbr = pa.RecordBatchReader.from_stream(reader)
        assert rbr.read_next_batch().column("i").to_pylist() == [1]
        writer.write_chunk(pa.table({"i": [2]}))
    assert [b.column("i").to_pylist() for b in rbr] == [[2]]
    assert reader.finished


def test_a_stream_chunk_with_another_schema_ends_the_export_with_an_error_and_stays_readable(name):
    with SharedDataStream.create_writer(name, size_mb=4, num_buffers=4) as writer:
        reader = SharedDataStream.create_reader(name, timeout=30)
        writer.write_chunk(pa.table({"i": [0]}))
        writer.write_chunk(pa.table({"x": ["other"]}))
    rbr = pa.RecordBatchReader.from_stream(reader)
    assert rbr.read_next_batch().column("i").to_pylist() == [0]
    with pytest.raises(Exception, match="differs from the first"):
        rbr.read_next_batch()
    assert reader.next_chunk()["x"].to_list() == ["other"]


def test_a_stream_reader_honours_a_lossless_requested_schema_and_refuses_a_lossy_one(name):
    with SharedDataStream.create_writer(name, size_mb=4, num_buffers=4) as writer:
        reader = SharedDataStream.create_reader(name, timeout=30)
        writer.write_chunk(pa.table({"i": [1, 2]}))
        writer.write_chunk(pa.table({"i": [3]}))
    with pytest.raises(qadataswap.SchemaMismatchError, match='"j"'):
        pa.RecordBatchReader.from_stream(reader, schema=pa.schema([("j", pa.int64())]))
    wanted = pa.schema([("i", pa.int16())])
    table = pa.RecordBatchReader.from_stream(reader, schema=wanted).read_all()
    assert table.schema.equals(wanted) and table.column("i").to_pylist() == [1, 2, 3]
