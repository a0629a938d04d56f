"""No input makes a reader or writer panic, crash or return wrong values (issue 16).

Every Arrow type written reaches ``read()`` (Polars) with exactly its values, or is refused before Polars sees it
with :class:`UnsupportedTypeError` naming the column; ``read_arrow()`` returns every one of them exactly. Durations
and sizes are validated; a panic never reaches Python as ``PanicException``; writer inputs are stored faithfully or
refused; errors have specific classes.
"""

from __future__ import annotations

import math
import os
from decimal import Decimal

import polars as pl
import pyarrow as pa
import pytest

import qadataswap
from qadataswap import SharedDataFrame, SharedDataStream, _native


class Label(pa.ExtensionType):
    """An extension type whose storage is a dictionary (Polars refused it with "must contain a dictionary")."""

    def __init__(self) -> None:
        super().__init__(pa.dictionary(pa.int32(), pa.string()), "qads.test.label")

    def __arrow_ext_serialize__(self) -> bytes:
        return b""

    @classmethod
    def __arrow_ext_deserialize__(cls, storage_type, serialized):  # noqa: ANN001, ANN206
        return Label()


try:
    pa.register_extension_type(Label())
except pa.ArrowKeyError:  # pragma: no cover - registered by an earlier import
    pass


def _month_day_nano(n: int) -> pa.Array:
    return pa.array([pa.MonthDayNano([1, 2, 3])] * n, pa.month_day_nano_interval())


#: One column per Arrow type pyarrow can build (values with nulls), and whether Polars must refuse it.
ARROW_COLUMNS = {
    "bool": (pa.array([True, None, False]), False),
    "int8": (pa.array([1, None, -128], pa.int8()), False),
    "uint64": (pa.array([1, None, 2**64 - 1], pa.uint64()), False),
    "float16": (pa.array([1.5, None, -2.0], pa.float16()) if hasattr(pa, "float16") else None, False),
    "float64": (pa.array([1.5, None, float("inf")]), False),
    "decimal32": (pa.array([Decimal("-2.79"), None, Decimal("999.99")], pa.decimal32(5, 2)), False),
    "decimal64": (pa.array([Decimal("-2.79"), None, Decimal("1234567890.12")], pa.decimal64(12, 2)), False),
    "decimal128": (pa.array([Decimal("-2.79"), None], pa.decimal128(30, 2)), False),
    "decimal256": (pa.array([Decimal("-2.79"), None], pa.decimal256(40, 2)), True),
    "month_day_nano": (_month_day_nano(2), True),
    "utf8": (pa.array(["a", None, "long string of more than twelve bytes"]), False),
    "large_utf8": (pa.array(["a", None], pa.large_string()), False),
    "binary": (pa.array([b"a", None], pa.binary()), False),
    "fixed_binary": (pa.array([b"ab", None], pa.binary(2)), False),
    "binary_view": (pa.array([b"a", None], pa.binary_view()), False),
    "date32": (pa.array([1, None], pa.date32()), False),
    "date64": (pa.array([86_400_000, None], pa.date64()), False),
    "time32s": (pa.array([1, None], pa.time32("s")), False),
    "time64us": (pa.array([1, None], pa.time64("us")), False),
    "timestamp_s": (pa.array([1, None], pa.timestamp("s")), False),
    "timestamp_ns_utc": (pa.array([1, None], pa.timestamp("ns", tz="UTC")), False),
    "duration_s": (pa.array([1, None], pa.duration("s")), False),
    "list": (pa.array([[1], None, []], pa.list_(pa.int32())), False),
    "list_of_decimal32": (pa.array([[Decimal("-2.79")], None], pa.list_(pa.decimal32(5, 2))), False),
    "large_list": (pa.array([[1], None], pa.large_list(pa.int8())), False),
    "fixed_list": (pa.array([[1, 2], None], pa.list_(pa.int64(), 2)), False),
    "list_view": (pa.array([[1], None], pa.list_view(pa.int32())), True),
    "struct": (pa.array([{"x": 1}, None, {"x": None}]), False),
    "struct_of_decimal64": (pa.array([{"d": Decimal("-2.79")}, None], pa.struct([("d", pa.decimal64(12, 2))])), False),
    "struct_of_interval": (pa.StructArray.from_arrays([_month_day_nano(2)], names=["i"]), True),
    "map": (pa.array([[("a", 1)], None], pa.map_(pa.string(), pa.int32())), False),
    "dictionary": (pa.array(["a", None, "b", "a"]).dictionary_encode(), False),
    "dictionary_of_ints": (pa.DictionaryArray.from_arrays(pa.array([0, 1, None], pa.int8()), pa.array([10, 20])), False),
    "dictionary_extension": (
        pa.ExtensionArray.from_storage(Label(), pa.array(["a", None, "b"]).dictionary_encode().cast(Label().storage_type)),
        False,
    ),
    "sparse_union": (
        pa.UnionArray.from_sparse(pa.array([0, 1], pa.int8()), [pa.array([1, 2]), pa.array(["a", "b"])]),
        True,
    ),
    "dense_union": (
        pa.UnionArray.from_dense(pa.array([0, 1], pa.int8()), pa.array([0, 0], pa.int32()), [pa.array([1]), pa.array(["a"])]),
        True,
    ),
    "run_end_encoded": (pa.RunEndEncodedArray.from_arrays(pa.array([2], pa.int32()), pa.array([7])), True),
    "null": (pa.nulls(2), False),
}
ARROW_COLUMNS = {k: v for k, v in ARROW_COLUMNS.items() if v[0] is not None}


def _storage(a: pa.Array) -> pa.Array:
    return a.storage if isinstance(a, pa.ExtensionArray) else a


def _same_values(written: pa.Array, back: pa.Array) -> bool:
    """Whether ``back`` (Polars' column as Arrow) holds the values of ``written``: equal after casting either one to
    the other's type, or equal as Python values."""
    written = _storage(written)
    if written.type == back.type and written.equals(back):
        return True
    for a, b in ((back, written), (written, back)):
        try:
            if a.cast(b.type).equals(b):
                return True
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            pass
    if pa.types.is_map(written.type):
        written = pa.array(
            [None if m is None else [{"key": k, "value": v} for k, v in m] for m in written.to_pylist()],
        )
        back = pa.array([None if m is None else [dict(zip(("key", "value"), e.values())) for e in m] for m in back.to_pylist()])
    return written.to_pylist() == back.to_pylist()


@pytest.mark.parametrize("column", sorted(ARROW_COLUMNS))
def test_every_arrow_type_reaches_polars_with_its_values_or_is_refused_naming_the_column(name, column):
    array, refused = ARROW_COLUMNS[column]
    table = pa.table({column: array})
    with SharedDataFrame.create_writer(name, size_mb=1) as writer, SharedDataFrame.create_reader(name) as reader:
        writer.write(table)
        assert reader.read_arrow().column(column).combine_chunks().equals(table.column(column).combine_chunks())
        if refused:
            with pytest.raises(qadataswap.UnsupportedTypeError, match=f"column `{column}`.*read_arrow") as e:
                reader.read()
            assert isinstance(e.value, qadataswap.Error) and isinstance(e.value, TypeError)
            assert e.value.column == column
            return
        df = reader.read()
        back = df.to_arrow().column(column).combine_chunks()
        assert _same_values(table.column(column).combine_chunks(), back), (column, back)


@pytest.mark.parametrize("width", ["decimal32", "decimal64"])
def test_narrow_decimals_arrive_widened_and_their_copy_is_counted(name, width):
    array = ARROW_COLUMNS[width][0]
    with SharedDataFrame.create_writer(name, size_mb=1) as writer, SharedDataFrame.create_reader(name) as reader:
        writer.write(pa.table({"px": array}))
        df = reader.read()
        assert df["px"].to_list() == array.to_pylist()
        assert df["px"].min() == Decimal("-2.79")
        assert reader.stats()["polars_copied_columns"] == 1


def test_a_dictionary_of_an_extension_type_arrives_as_its_categories(name):
    array = ARROW_COLUMNS["dictionary_extension"][0]
    with SharedDataFrame.create_writer(name, size_mb=1) as writer, SharedDataFrame.create_reader(name) as reader:
        writer.write(pa.table({"label": array}))
        assert reader.read()["label"].to_list() == ["a", None, "b"]


def test_a_refused_stream_chunk_names_the_column_too(name):
    with SharedDataStream.create_writer(name, size_mb=1) as writer, SharedDataStream.create_reader(name) as reader:
        writer.write_chunk(pa.table({"u": ARROW_COLUMNS["sparse_union"][0]}))
        with pytest.raises(qadataswap.UnsupportedTypeError, match="column `u`"):
            reader.next_chunk(timeout=10)


# -- durations --------------------------------------------------------------------------------------------------


BAD_SECONDS = [-1, -0.5, float("nan"), float("-inf")]
HUGE_SECONDS = [1e10, 1e19, 1e300, float("inf")]


@pytest.mark.parametrize("value", BAD_SECONDS, ids=str)
def test_negative_and_nan_timeouts_are_invalid_config_everywhere(name, value):
    with SharedDataFrame.create_writer(name, size_mb=1) as writer:
        writer.write(pl.DataFrame({"a": [1]}))
        with pytest.raises(qadataswap.InvalidConfigError):
            SharedDataFrame.create_reader(name, timeout=value)
        with pytest.raises(qadataswap.InvalidConfigError):
            SharedDataFrame.create_reader(name, open_timeout=value)
        with SharedDataFrame.create_reader(name) as reader:
            for call in (reader.read, reader.read_next, reader.read_copied, reader.read_frame):
                with pytest.raises(qadataswap.InvalidConfigError):
                    call(value)
            with pytest.raises(qadataswap.InvalidConfigError):
                reader.wait_for_condition(lambda df: True, timeout=value)
    with pytest.raises(qadataswap.InvalidConfigError):
        SharedDataFrame.create_writer(name + "-l", size_mb=1, lease_timeout=value)
    with pytest.raises(qadataswap.InvalidConfigError):
        SharedDataStream.create_writer(name + "-s", size_mb=1, timeout=value)
    with pytest.raises(qadataswap.InvalidConfigError):
        SharedDataStream.create_writer(name + "-s", size_mb=1, linger=value)
    with pytest.raises(qadataswap.InvalidConfigError):
        SharedDataStream.create_reader(name + "-s", open_timeout=value)


@pytest.mark.parametrize("value", HUGE_SECONDS, ids=str)
def test_huge_timeouts_mean_forever_and_never_panic(name, value):
    with SharedDataFrame.create_writer(name, size_mb=1, lease_timeout=value) as writer:
        writer.write(pl.DataFrame({"a": [1]}))
        writer.write(pl.DataFrame({"a": [2]}))
        with SharedDataFrame.create_reader(name, timeout=value, open_timeout=value) as reader:
            assert reader.read(value)["a"].to_list() == [2]
            assert reader.read_copied(value)["a"].to_list() == [2]
            assert reader.wait_for_condition(lambda df: True, timeout=value)["a"].to_list() == [2]
            writer.write(pl.DataFrame({"a": [3]}))
            assert reader.read_next(value)["a"].to_list() == [3]
    stream = name + "-s"
    with SharedDataStream.create_writer(stream, size_mb=1, timeout=value, linger=value) as writer:
        with SharedDataStream.create_reader(stream, timeout=value, open_timeout=value) as reader:
            assert writer.wait_for_readers(1, value) == 1
            writer.write_chunk(pl.DataFrame({"a": [1]}))
            assert reader.next_chunk(value)["a"].to_list() == [1]


@pytest.mark.parametrize("count", [-1, 1.5, "1", True, 2**40])
def test_a_bad_min_readers_is_invalid_config(name, count):
    with pytest.raises(qadataswap.InvalidConfigError):
        SharedDataStream.create_writer(name, size_mb=1, min_readers=count)


def test_a_stream_reader_refuses_a_negative_timeout(name):
    with SharedDataStream.create_writer(name, size_mb=1) as writer:
        with SharedDataStream.create_reader(name) as reader:
            for value in BAD_SECONDS:
                with pytest.raises(qadataswap.InvalidConfigError):
                    reader.next_chunk(value)
                with pytest.raises(qadataswap.InvalidConfigError):
                    writer.wait_for_readers(1, value)
        with pytest.raises(qadataswap.InvalidConfigError):
            SharedDataStream.create_reader(name, timeout=-1)


# -- no panic crosses into Python --------------------------------------------------------------------------------


def test_a_panic_inside_any_entry_point_arrives_as_the_librarys_internal_error(name):
    with SharedDataFrame.create_writer(name, size_mb=1) as writer, SharedDataFrame.create_reader(name) as reader:
        writer.write(pl.DataFrame({"a": [1]}))
        frame = reader.read_frame()
        calls = {
            "write": lambda: writer.write(pl.DataFrame({"a": [2]})),
            "writer.stats": writer.stats,
            "read": reader.read,
            "read_next": lambda: reader.read_next(0),
            "try_read": reader.try_read,
            "read_copied": reader.read_copied,
            "schema": reader.schema,
            "reader.stats": reader.stats,
            "frame.to_owned": frame.to_owned,
            "frame.for_polars": frame.for_polars,
            "frame.__arrow_c_stream__": frame.__arrow_c_stream__,
            "create_reader": lambda: SharedDataFrame.create_reader(name),
        }
        for what, call in calls.items():
            _native._panic_on_next_call()
            try:
                call()
            except qadataswap.InternalError as e:
                assert isinstance(e, Exception) and "forced panic" in str(e), what
            except BaseException as e:  # noqa: BLE001 - the point is what class arrives
                pytest.fail(f"{what}: a panic arrived as {type(e).__module__}.{type(e).__name__}: {e}")
            else:
                pytest.fail(f"{what}: the forced panic did not happen (the call is not guarded)")
        # Everything still works afterwards.
        writer.write(pl.DataFrame({"a": [5]}))
        assert reader.read()["a"].to_list() == [5]


# -- writer inputs: stored faithfully or refused -----------------------------------------------------------------


def test_a_struct_array_with_null_rows_is_stored_as_one_column_with_its_nulls(name):
    array = pa.array([{"x": 1}, None, {"x": None}])
    for data in (array, pa.chunked_array([array, array])):
        with SharedDataFrame.create_writer(name, size_mb=1) as writer, SharedDataFrame.create_reader(name) as reader:
            writer.write(data)
            back = reader.read_arrow()
            assert back.column_names == ["values"]
            assert back.column("values").to_pylist() == pa.chunked_array(data).to_pylist()


class _OnlyCArray:
    """An exporter with nothing but ``__arrow_c_array__`` (no pyarrow type to recognise)."""

    def __init__(self, array: pa.Array) -> None:
        self.array = array

    def __arrow_c_array__(self, requested_schema=None):  # noqa: ANN001, ANN204
        return self.array.__arrow_c_array__(requested_schema)


class _OnlyCStream:
    def __init__(self, data) -> None:  # noqa: ANN001
        self.data = data

    def __arrow_c_stream__(self, requested_schema=None):  # noqa: ANN001, ANN204
        return self.data.__arrow_c_stream__(requested_schema)


def test_a_bare_struct_exporter_with_null_rows_is_refused_not_changed(name):
    array = pa.array([{"x": 1}, None])
    with SharedDataFrame.create_writer(name, size_mb=1) as writer:
        for data in (_OnlyCArray(array), _OnlyCStream(pa.chunked_array([array]))):
            with pytest.raises(qadataswap.InvalidFrameError, match="null row"):
                writer.write(data)
        assert writer.next_seq == 1


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: pa.chunked_array([[1, 2], [3]]), id="pyarrow-chunked-array"),
        pytest.param(lambda: pa.array([1, 2, 3]), id="pyarrow-array"),
        pytest.param(lambda: _OnlyCStream(pa.chunked_array([[1, 2], [3]])), id="bare-array-stream"),
        pytest.param(lambda: _OnlyCArray(pa.array([1, 2, 3])), id="bare-array"),
        pytest.param(lambda: pl.Series([1, 2, 3]), id="unnamed-polars-series"),
    ],
)
def test_a_single_array_becomes_a_one_column_table_named_values(name, make):
    with SharedDataFrame.create_writer(name, size_mb=1) as writer, SharedDataFrame.create_reader(name) as reader:
        writer.write(make())
        df = reader.read()
        assert df.columns == ["values"] and df["values"].to_list() == [1, 2, 3]


def test_a_named_series_keeps_its_name(name):
    with SharedDataFrame.create_writer(name, size_mb=1) as writer, SharedDataFrame.create_reader(name) as reader:
        writer.write(pl.Series("px", [1.5]))
        assert reader.read().columns == ["px"]


def test_a_polars_object_column_is_refused(name):
    df = pl.DataFrame({"o": pl.Series([object(), object()], dtype=pl.Object), "i": [1, 2]})
    with SharedDataFrame.create_writer(name, size_mb=1) as writer:
        with pytest.raises(qadataswap.InvalidFrameError, match="column 'o'"):
            writer.write(df)
        assert writer.next_seq == 1


# (None is not here: it means "the configuration's size", see test_config.py.)
@pytest.mark.parametrize("size_mb", [-1, 0, "10", float("nan"), float("inf"), True, 1e30])
def test_a_bad_size_is_invalid_config_with_the_accepted_range(name, size_mb):
    for create in (SharedDataFrame.create_writer, SharedDataStream.create_writer):
        with pytest.raises(qadataswap.InvalidConfigError, match="above 0") as e:
            create(name, size_mb=size_mb)
        assert len(str(e.value)) < 300


@pytest.mark.parametrize("count", [-1, "3", 1.5])
def test_a_bad_slot_count_is_invalid_config(name, count):
    with pytest.raises(qadataswap.InvalidConfigError, match="num_buffers"):
        SharedDataFrame.create_writer(name, size_mb=1, num_buffers=count)


# -- specific error classes --------------------------------------------------------------------------------------


def test_a_foreign_file_is_a_foreign_segment_error_not_corruption(name):
    fd = os.open(f"/dev/shm/{name}", os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, b"NOT-QADS" * 1024)
    os.close(fd)
    with pytest.raises(qadataswap.ForeignSegmentError) as e:
        SharedDataFrame.create_reader(name, open_timeout=0.2)
    assert not isinstance(e.value, qadataswap.CorruptSegmentError)


def test_a_segment_never_initialised_is_a_not_initialised_error(name):
    # What a version-1 creator left while building (FORMAT.md §3): our magic, its identity (this live process, start
    # time unknown), state 0. (A version-2 creator never publishes a name before the segment is built.)
    header = bytearray(8192)
    header[0:8] = b"QADSWAP\0"
    header[8:12] = (1).to_bytes(4, "little")
    header[112:116] = os.getpid().to_bytes(4, "little")
    fd = os.open(f"/dev/shm/{name}", os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, bytes(header))
    os.close(fd)
    with pytest.raises(qadataswap.NotInitialisedError) as e:
        SharedDataFrame.create_reader(name, open_timeout=0.2)
    assert not isinstance(e.value, qadataswap.CorruptSegmentError)


def test_a_zero_filled_file_under_the_name_is_someone_elses(name):
    fd = os.open(f"/dev/shm/{name}", os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, b"\0" * 8192)
    os.close(fd)
    with pytest.raises(qadataswap.ForeignSegmentError):
        SharedDataFrame.create_reader(name, open_timeout=0.2)


def test_a_symlink_is_a_not_a_regular_file_error_and_a_permission_error(name):
    os.symlink("/etc/hostname", f"/dev/shm/{name}")
    with pytest.raises(qadataswap.NotARegularFileError) as e:
        SharedDataFrame.create_reader(name, open_timeout=0.2)
    assert isinstance(e.value, PermissionError) and isinstance(e.value, qadataswap.PermissionError)


def test_a_segment_larger_than_dev_shm_is_a_segment_too_large_error(name):
    free = os.statvfs("/dev/shm")
    too_much = free.f_bavail * free.f_frsize + 2**40
    with pytest.raises(qadataswap.SegmentTooLargeError) as e:
        SharedDataFrame.create_writer(name, size=too_much)
    assert isinstance(e.value, OSError) and math.isfinite(too_much)


@pytest.mark.parametrize("value", ["5", True, b"1"], ids=repr)
def test_a_timeout_that_is_not_a_number_is_invalid_config_not_a_type_error_from_the_binding(name, value):
    with SharedDataFrame.create_writer(name, size_mb=1) as writer, SharedDataFrame.create_reader(name) as reader:
        writer.write(pl.DataFrame({"a": [1]}))
        with pytest.raises(qadataswap.InvalidConfigError, match="seconds"):
            reader.read(value)
    with pytest.raises(qadataswap.InvalidConfigError, match="seconds"):
        SharedDataStream.create_reader(name, timeout=value)
    with pytest.raises(qadataswap.InvalidConfigError, match="seconds"):
        SharedDataStream.create_reader(name, open_timeout=value)
    with pytest.raises(qadataswap.InvalidConfigError, match="seconds"):
        SharedDataFrame.create_reader(name, open_timeout=value)
    with pytest.raises(qadataswap.InvalidConfigError, match="seconds"):
        SharedDataStream.create_writer(name + "-s", size_mb=1, linger=value)
