"""Every polars dtype round-trips exactly (types stored as given), and every kind of input is accepted."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import pyarrow as pa
import pytest

from qadataswap import SharedDataFrame

COLUMNS = {
    "int8": pl.Series([1, -2, None], dtype=pl.Int8),
    "int16": pl.Series([1, 2, 3], dtype=pl.Int16),
    "int32": pl.Series([1, None, 3], dtype=pl.Int32),
    "int64": pl.Series([1, None, -(2**62)], dtype=pl.Int64),
    "uint8": pl.Series([1, 2, 255], dtype=pl.UInt8),
    "uint16": pl.Series([1, 2, 3], dtype=pl.UInt16),
    "uint32": pl.Series([1, 2, 3], dtype=pl.UInt32),
    "uint64": pl.Series([1, 2, 2**63], dtype=pl.UInt64),
    "float32": pl.Series([1.5, None, 3.0], dtype=pl.Float32),
    "float64": pl.Series([1.5, 2.0, float("inf")], dtype=pl.Float64),
    "bool": pl.Series([True, None, False]),
    "str": pl.Series(["a", None, "a string longer than twelve bytes"]),
    "binary": pl.Series([b"x", None, b"\x00" * 40]),
    "date": pl.Series([dt.date(2020, 1, 1), None, dt.date(1969, 7, 20)]),
    "datetime_tz": pl.Series([dt.datetime(2020, 1, 1, 12), None, dt.datetime(2021, 5, 5)]).dt.replace_time_zone(
        "Europe/Paris"
    ),
    "datetime_ns": pl.Series([dt.datetime(2020, 1, 1, 12), None, dt.datetime(2021, 5, 5)], dtype=pl.Datetime("ns")),
    "duration": pl.Series([dt.timedelta(seconds=1), None, dt.timedelta(days=3)]),
    "time": pl.Series([dt.time(1, 2, 3), None, dt.time(23, 59)]),
    "decimal": pl.Series([Decimal("1.23"), None, Decimal("-4.56")], dtype=pl.Decimal(10, 2)),
    "list": pl.Series([[1, 2], None, []], dtype=pl.List(pl.Int64)),
    "list_of_str": pl.Series([["a"], ["b", None], None]),
    "array": pl.Series([[1, 2], [3, 4], None], dtype=pl.Array(pl.Int32, 2)),
    "struct": pl.Series([{"x": 1, "y": "a"}, None, {"x": 3, "y": None}]),
    "categorical": pl.Series(["a", "b", None], dtype=pl.Categorical),
    "enum": pl.Series(["lo", "hi", None], dtype=pl.Enum(["lo", "hi"])),
    "null": pl.Series([None, None, None], dtype=pl.Null),
}


@pytest.mark.parametrize("column", list(COLUMNS))
def test_every_dtype_round_trips_exactly(name, column):
    df = pl.DataFrame({column: COLUMNS[column]})
    with SharedDataFrame.create_writer(name, size_mb=1) as writer, SharedDataFrame.create_reader(name) as reader:
        writer.write(df)
        out = reader.read()
        assert out.schema == df.schema
        assert out.equals(df)


def test_a_frame_of_every_dtype_round_trips_and_copies_nothing(name):
    df = pl.DataFrame(COLUMNS)
    with SharedDataFrame.create_writer(name, size_mb=4) as writer, SharedDataFrame.create_reader(name) as reader:
        writer.write(df)
        out = reader.read()
        assert out.equals(df)
        assert reader.stats()["copies"] == 0
        assert reader.read_copied().equals(df)


def test_chunks_are_not_merged(name):
    # (polars' own exporter merges a DataFrame's chunks before they reach us; pyarrow's keeps them)
    df = pa.Table.from_batches([pa.record_batch({"a": range(5)}), pa.record_batch({"a": range(5, 9)})])
    with SharedDataFrame.create_writer(name, size_mb=1) as writer, SharedDataFrame.create_reader(name) as reader:
        writer.write(df)
        frame = reader.read_frame()
        assert frame.num_batches == 2
        out = reader.read()
        assert out.n_chunks() == 2 and out["a"].to_list() == list(range(9))


def test_strings_from_polars_are_stored_as_utf8view(name):
    with SharedDataFrame.create_writer(name, size_mb=1) as writer, SharedDataFrame.create_reader(name) as reader:
        writer.write(pl.DataFrame({"s": ["a", "b"]}))
        assert reader.schema().field("s").type == pa.string_view()


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: pa.table({"a": [1, 2, 3], "s": ["x", "y", "z"]}), id="pyarrow-table"),
        pytest.param(lambda: pa.record_batch({"a": [1, 2, 3], "s": ["x", "y", "z"]}), id="pyarrow-record-batch"),
        pytest.param(
            lambda: pa.RecordBatchReader.from_batches(
                pa.schema([("a", pa.int64()), ("s", pa.string())]),
                [pa.record_batch({"a": [1, 2, 3], "s": ["x", "y", "z"]})],
            ),
            id="pyarrow-record-batch-reader",
        ),
        pytest.param(lambda: pl.DataFrame({"a": [1, 2, 3], "s": ["x", "y", "z"]}).lazy(), id="polars-lazyframe"),
        pytest.param(lambda: pl.Series("a", [1, 2, 3]), id="polars-series"),
    ],
)
def test_write_accepts_any_arrow_exporter(name, make):
    with SharedDataFrame.create_writer(name, size_mb=1) as writer, SharedDataFrame.create_reader(name) as reader:
        info = writer.write(make())
        assert info.rows == 3 and info.seq == 1
        out = reader.read()
        assert out["a"].to_list() == [1, 2, 3]


def test_pyarrow_types_are_stored_as_given(name):
    table = pa.table({"s": pa.array(["x", "y"], pa.string()), "l": pa.array([[1], [2, 3]], pa.list_(pa.int32()))})
    with SharedDataFrame.create_writer(name, size_mb=1) as writer, SharedDataFrame.create_reader(name) as reader:
        writer.write(table)
        assert reader.schema() == table.schema
        assert reader.read_arrow().equals(table)


def test_an_empty_frame_round_trips(name):
    df = pl.DataFrame({"a": pl.Series([], dtype=pl.Int64), "s": pl.Series([], dtype=pl.String)})
    with SharedDataFrame.create_writer(name, size_mb=1) as writer, SharedDataFrame.create_reader(name) as reader:
        writer.write(df)
        out = reader.read()
        assert out.schema == df.schema and out.height == 0
