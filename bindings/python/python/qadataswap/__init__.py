"""QADataSwap: zero-copy hand-off of Polars frames and Arrow data between processes through named shared memory.

Quick start (two processes)::

    from qadataswap import SharedDataFrame

    writer = SharedDataFrame.create_writer("mydata", size_mb=100)
    writer.write(df)                      # a polars DataFrame / LazyFrame, or any __arrow_c_stream__ exporter

    reader = SharedDataFrame.create_reader("mydata")
    df = reader.read()                    # a polars.DataFrame over the shared memory: no copy
    df = reader.wait_for_condition(lambda df: len(df) > 1000, timeout=5.0)
    df = await reader.read_async()

Semantics (see docs/ in the project): ``size_mb`` is the total data capacity, split across ``num_buffers`` slots
(3 by default); a slot holds one whole frame. ``read()`` returns the newest snapshot, blocking only until a first one
exists; ``read_next()`` one strictly newer than the last this reader returned. A frame's memory stays leased (the
writer will not overwrite it) while any DataFrame, Series or Arrow object made from it is alive; copy it out with
``read_copied()`` or ``df.clone()``-then-``rechunk`` if you keep it for long.

Blocking calls release the GIL and can be interrupted with Ctrl-C; a timeout raises :class:`TimeoutError` (also a
builtin ``TimeoutError``); every other failure raises a subclass of :class:`Error` whose message says what to do.
Readers and writers are context managers, and refuse to work in a child process that inherited them through
``fork()`` (:class:`ForkedError`): open new ones there.
"""

from __future__ import annotations

import inspect
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from . import _errors
from ._errors import *  # noqa: F401,F403  (the exception hierarchy is part of the public API)
from ._errors import TimeoutError as TimeoutError  # noqa: PLC0414  (re-export under the builtin's name)
from ._native import Batch, Cancel, Frame, Schema
from ._native import SnapshotReader as _NativeReader
from ._native import SnapshotWriter as _NativeWriter
from ._native import __version__
from ._native import unlink as _unlink
from ._waiter import Waiter

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

__all__ = [
    "SharedDataFrame",
    "SharedDataFrameWriter",
    "SharedDataFrameReader",
    "SharedDataStream",
    "SharedDataStreamWriter",
    "SharedDataStreamReader",
    "to_polars",
    "WriteInfo",
    "Frame",
    "Batch",
    "Schema",
    "__version__",
    *_errors.__all__,
]

MB = 1024 * 1024


class _Default:
    def __repr__(self) -> str:
        return "<reader default>"


#: Use the reader's default timeout (given to ``create_reader``; ``None`` there means wait forever).
DEFAULT: Any = _Default()


#: The longest finite wait in seconds (about 31.7 years): a timeout above it, like ``None`` or ``inf``, waits forever.
FOREVER_S = 1e9

#: The largest segment size in bytes accepted by ``create_writer`` (the system's /dev/shm limits it further).
MAX_SIZE = 2**63 - 1


def _real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_seconds(what: str, value: Any) -> None:
    """Raise InvalidConfigError unless ``value`` is None or a number of seconds >= 0 (inf and anything above
    FOREVER_S mean forever)."""
    if value is None:
        return
    if not _real(value) or value != value or value < 0:
        raise _errors.InvalidConfigError(
            f"{what} must be a number of seconds >= 0 (None, inf or anything above {FOREVER_S:g} waits forever), "
            f"not {value!r}"
        )


def _size_bytes(size_mb: Any, size: Any) -> int:
    """The segment size in bytes from ``size`` (bytes) or ``size_mb`` (MiB); InvalidConfigError with the accepted
    range otherwise."""
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_SIZE:
            raise _errors.InvalidConfigError(
                f"size must be a whole number of bytes from 1 to 2**63 - 1 (e.g. 100 * 1024 * 1024), not {size!r:.80}"
            )
        return size
    if not _real(size_mb) or not (0 < size_mb < float("inf")) or size_mb * MB > MAX_SIZE or int(size_mb * MB) < 1:
        raise _errors.InvalidConfigError(
            f"size_mb must be a number of MiB above 0 (at most 2**63 bytes in all; e.g. 100 or 0.5), not {size_mb!r:.80}"
        )
    return int(size_mb * MB)


def _config_path(config: Any) -> str | None:
    """``config=`` as a path string (None: the usual search); InvalidConfigError for anything else."""
    if config is None:
        return None
    try:
        return os.fspath(config)
    except TypeError:
        raise _errors.InvalidConfigError(
            f"config must be a path to a qadataswap.yaml file (str or os.PathLike), not {config!r:.80}"
        ) from None


def _check_count(what: str, value: Any, low: int, high: int = 2**32 - 1) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _errors.InvalidConfigError(f"{what} must be a whole number from {low} to {high}, not {value!r:.80}")


def _timeout_args(timeout: Any) -> dict[str, Any]:
    if timeout is DEFAULT:
        return {}
    _check_seconds("timeout", timeout)
    return {"timeout": timeout, "has_timeout": True}


def _polars_importer() -> Callable[[Any], pl.DataFrame]:
    """How a frame becomes a polars.DataFrame: one struct Series from the C stream, unnested (both O(columns),
    zero-copy), which is what ``pl.DataFrame(obj)`` does for a stream exporter, minus the type dispatch."""
    import polars as pl

    try:
        from polars._plr import PySeries
        from polars._utils.wrap import wrap_df

        def fast(obj: Any) -> pl.DataFrame:
            return wrap_df(PySeries.from_arrow_c_stream(obj).struct_unnest())

        return fast
    except (ImportError, AttributeError):  # pragma: no cover - other polars versions

        def portable(obj: Any) -> pl.DataFrame:
            out = pl.DataFrame(obj)
            return out

        return portable


_to_polars_impl: Callable[[Any], pl.DataFrame] | None = None


def to_polars(data: Any) -> pl.DataFrame:
    """A polars.DataFrame over any ``__arrow_c_stream__`` exporter (a :class:`Frame`, ...), without copying.

    A :class:`Frame` first goes through the same type rules as the Rust adapter (``qadataswap_polars::guard``):
    decimal32/64 columns are widened to decimal128 (a copy, counted in the reader's ``polars_copied_columns``),
    and a column Polars cannot take with its exact values (decimal256, intervals, unions, run-end encoded, list
    views) raises :class:`UnsupportedTypeError` naming it, before Polars sees anything: read such frames with
    ``read_arrow()``. Other exporters are handed to Polars as they are."""
    global _to_polars_impl
    if _to_polars_impl is None:
        _to_polars_impl = _polars_importer()
    if isinstance(data, Frame):
        data = data.for_polars()
    return _to_polars_impl(data)


#: The column name a single array gets when written on its own (see :meth:`SharedDataFrameWriter.write`).
SINGLE_COLUMN_NAME = "values"


def _exportable(data: Any) -> Any:
    """What the native writer can import, by one rule: a frame or table is written as it is; a single array (a
    polars Series, a pyarrow Array or ChunkedArray, or any other exporter of a non-struct array) becomes a
    one-column table named after it, or ``"values"`` when it has no name. Polars Object columns are refused (their
    Arrow export is the writer's raw pointers)."""
    mod = type(data).__module__ or ""
    if mod.startswith("polars"):
        import polars as pl

        if isinstance(data, pl.LazyFrame):
            data = data.collect()
        elif isinstance(data, pl.Series):
            data = data.to_frame(data.name or SINGLE_COLUMN_NAME)
        if isinstance(data, pl.DataFrame):
            for column, dtype in data.schema.items():
                if _has_dtype(dtype, lambda t: t == pl.Object):
                    raise _errors.InvalidFrameError(
                        f"column {column!r} has the polars dtype {dtype}, which holds Python objects that cannot be "
                        "shared between processes (its Arrow form would be this process's raw pointers); convert it "
                        "first, e.g. df.with_columns(pl.col(name).map_elements(str, return_dtype=pl.String))"
                    )
            if any(_has_dtype(t, lambda t: t == pl.Null) for t in data.schema.dtypes()):
                # polars exports Null columns with one (absent) buffer, which arrow-rs's C import rejects; pyarrow's
                # export, in polars' newest layout, carries the same types the way the C interface spells them.
                return data.to_arrow(compat_level=pl.CompatLevel.newest())
    elif mod.startswith("pyarrow"):
        import pyarrow as pa

        if isinstance(data, (pa.Array, pa.ChunkedArray)):
            # A struct array would otherwise be read as a table of its fields, and its null rows refused.
            return pa.table({SINGLE_COLUMN_NAME: data})
    return data


def _has_dtype(dtype: Any, wanted: Callable[[Any], bool]) -> bool:
    if wanted(dtype):
        return True
    inner = getattr(dtype, "inner", None)
    if inner is not None and _has_dtype(inner, wanted):
        return True
    fields = getattr(dtype, "fields", None)
    return bool(fields) and any(_has_dtype(f.dtype, wanted) for f in fields)


class WriteInfo(NamedTuple):
    """What one write published."""

    seq: int
    """The frame's sequence number (1, 2, ...)."""
    slot: int
    """The slot it went into."""
    bytes: int
    """Encoded size in the slot."""
    rows: int
    """Rows over all batches."""


class SharedDataFrameWriter:
    """Publishes frames to a named snapshot segment. Make one with :meth:`SharedDataFrame.create_writer`."""

    def __init__(self, native: _NativeWriter) -> None:
        self._native = native

    def write(self, data: Any) -> WriteInfo:
        """Publish ``data`` as the newest snapshot.

        ``data``: a polars DataFrame or LazyFrame (collected first), or any object exporting ``__arrow_c_stream__``
        / ``__arrow_c_array__`` (pyarrow Table, RecordBatch, RecordBatchReader, a DuckDB result...). Types are
        stored as given, chunks are not merged. One copy, straight into the slot, with the GIL released.

        A single array (a polars Series, a pyarrow Array or ChunkedArray, a pandas Series, any exporter of a
        non-struct array) is written as a one-column table named after it, or ``"values"`` if it has no name. A
        struct array with null rows that is not wrapped this way is refused (:class:`InvalidFrameError`): a table
        row cannot be null. Polars Object columns are refused.

        Raises :class:`SlotTooSmallError` if the frame does not fit a slot, :class:`AllSlotsLeasedError` if readers
        hold every slot past the lease timeout, :class:`ForkedError` in a forked child.
        """
        return WriteInfo(*self._native.write(_exportable(data)))

    def close(self) -> None:
        """Close: readers keep what they hold, then get :class:`WriterClosedError`. Unlinks the name unless the
        segment is persistent. Idempotent."""
        self._native.close()

    @property
    def closed(self) -> bool:
        return self._native.closed

    @property
    def name(self) -> str:
        """The segment's name."""
        return self._native.name

    @property
    def generation(self) -> int:
        """The writer generation (bumped each time a writer takes the segment over)."""
        return self._native.generation

    @property
    def next_seq(self) -> int:
        """The sequence number the next write gets."""
        return self._native.next_seq

    @property
    def slot_capacity(self) -> int:
        """Bytes per slot: the largest encoded frame that fits."""
        return self._native.slot_capacity

    @property
    def num_buffers(self) -> int:
        """Slots in the ring."""
        return self._native.num_buffers

    def stats(self) -> dict[str, int]:
        """Counters: frames_written, bytes_written, lease_waits, copies..."""
        return self._native.stats()

    def _segment_range(self) -> tuple[int, int]:
        return self._native.segment_range()

    def __enter__(self) -> SharedDataFrameWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"next_seq={self.next_seq}"
        return f"SharedDataFrameWriter({self.name!r}, {state})"


class SharedDataFrameReader:
    """Reads snapshots of a named segment. Make one with :meth:`SharedDataFrame.create_reader`.

    Every ``timeout`` is in seconds; ``None``, ``inf`` or anything above ``FOREVER_S`` (1e9 s, about 31.7 years)
    waits forever; a negative number or NaN raises :class:`InvalidConfigError`; leaving it out uses the reader's
    default (the ``timeout`` given to ``create_reader``). Waits release the GIL and are interrupted by Ctrl-C.
    """

    def __init__(self, native: _NativeReader) -> None:
        self._native = native

    # -- frames (native, PyCapsule exporters) -------------------------------------------------------
    def read_frame(self, timeout: float | None = DEFAULT) -> Frame:
        """The newest frame as a native :class:`Frame` (``__arrow_c_stream__``, ``seq``, ``num_rows``...)."""
        f = self._native.read(**_timeout_args(timeout))
        assert f is not None
        return f

    def read_next_frame(self, timeout: float | None = DEFAULT) -> Frame:
        """As :meth:`read_next`, as a native :class:`Frame`."""
        f = self._native.read_next(**_timeout_args(timeout))
        assert f is not None
        return f

    # -- polars -------------------------------------------------------------------------------------
    def read(self, timeout: float | None = DEFAULT) -> pl.DataFrame:
        """The newest snapshot as a polars.DataFrame over the shared memory (no copy), blocking only until a
        first snapshot exists. Raises :class:`TimeoutError`, or :class:`WriterClosedError` /
        :class:`WriterDiedError` if none was ever published."""
        return to_polars(self.read_frame(timeout))

    def read_next(self, timeout: float | None = DEFAULT) -> pl.DataFrame:
        """The newest snapshot strictly newer than the last one this reader returned (intermediate ones may be
        skipped). Raises :class:`TimeoutError`, :class:`WriterClosedError`, :class:`WriterDiedError`."""
        return to_polars(self.read_next_frame(timeout))

    def try_read(self) -> pl.DataFrame | None:
        """The newest snapshot, or None if none was published yet. Never blocks."""
        f = self._native.try_read()
        return None if f is None else to_polars(f)

    def read_copied(self, timeout: float | None = DEFAULT) -> pl.DataFrame:
        """The newest snapshot copied into private memory and fully validated there: holds no lease, safe
        against a writer you do not trust."""
        return to_polars(self._native.read_copied(**_timeout_args(timeout)))

    def read_arrow(self, timeout: float | None = DEFAULT) -> pa.Table:
        """The newest snapshot as a pyarrow.Table over the shared memory (no copy; needs pyarrow)."""
        import pyarrow as pa

        return pa.table(self.read_frame(timeout))

    def wait_for_condition(
        self, predicate: Callable[[pl.DataFrame], bool], timeout: float | None = DEFAULT
    ) -> pl.DataFrame:
        """The first snapshot (the newest, then each newer one as it is published) for which ``predicate(df)``
        is true. Frames published while the predicate runs may be skipped. Raises :class:`TimeoutError`."""
        if timeout is DEFAULT:
            timeout = self._native.default_timeout
        _check_seconds("timeout", timeout)
        deadline = None if timeout is None or timeout > FOREVER_S else time.monotonic() + timeout

        def remaining() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        df = self.read(remaining())
        while not predicate(df):
            del df
            df = self.read_next(remaining())
        return df

    # -- asyncio -----------------------------------------------------------------------------------
    # Waits run on this reader's own waiter thread (qadataswap._waiter), never on the loop's default executor.

    def _waiter(self) -> Waiter:
        w = self.__dict__.get("_waiter_obj")
        if w is None:
            w = self.__dict__["_waiter_obj"] = Waiter(f"reader {self.name}")
        return w

    def _remaining(self, timeout: Any) -> Callable[[], float | None]:
        """Seconds left of ``timeout`` counted from now (the call, not the start of the wait), None: forever."""
        if timeout is DEFAULT:
            timeout = self._native.default_timeout
        _check_seconds("timeout", timeout)
        if timeout is None or timeout > FOREVER_S:
            return lambda: None
        deadline = time.monotonic() + timeout
        return lambda: max(0.0, deadline - time.monotonic())

    async def _wait(self, call: Callable[..., Frame | None], timeout: Any) -> pl.DataFrame:
        remaining = self._remaining(timeout)

        def blocking(cancel: Cancel) -> pl.DataFrame | None:
            f = call(remaining(), cancel=cancel, has_timeout=True)
            return None if f is None else to_polars(f)

        df = await self._waiter().run(blocking)
        assert df is not None  # None only when cancelled, and then this await raised CancelledError
        return df

    async def read_async(self, timeout: float | None = DEFAULT) -> pl.DataFrame:
        """As :meth:`read`, awaitable. The wait runs on this reader's own waiter thread (GIL released), not on the
        event loop's default executor, so any number of pending reads leave ``asyncio.to_thread`` and
        ``run_in_executor`` free. Cancelling the await stops the wait (within 50 ms); the cancelled await returns
        only once it has stopped, and leaves no lease and no thread behind."""
        return await self._wait(self._native.read, timeout)

    async def read_next_async(self, timeout: float | None = DEFAULT) -> pl.DataFrame:
        """As :meth:`read_next`, awaitable and cancel-safe (see :meth:`read_async`)."""
        return await self._wait(self._native.read_next, timeout)

    async def wait_for_condition_async(
        self, predicate: Callable[[pl.DataFrame], Any], timeout: float | None = DEFAULT
    ) -> pl.DataFrame:
        """As :meth:`wait_for_condition`, awaitable and cancel-safe: the first snapshot (the newest, then each newer
        one) for which ``predicate(df)`` is true; ``predicate`` may also be a coroutine function. It runs on the
        event loop. ``timeout`` covers the whole wait. Raises :class:`TimeoutError`."""
        remaining = self._remaining(timeout)
        df = await self.read_async(remaining())
        while True:
            verdict = predicate(df)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if verdict:
                return df
            del df
            df = await self.read_next_async(remaining())

    def _waiter_thread(self) -> threading.Thread | None:
        """The waiter thread while async waits are pending, else None (tests)."""
        w = self.__dict__.get("_waiter_obj")
        return None if w is None else w.thread()

    # -- Arrow PyCapsule producer -------------------------------------------------------------------
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """The newest frame as an Arrow C stream (``pa.table(reader)``, ``pl.DataFrame(reader)``, DuckDB's
        ``select ... from reader``), zero-copy: the exported arrays hold the frame's lease until the consumer
        releases them. Waits, with the reader's default timeout, only until a first frame exists.

        ``requested_schema`` (an ``arrow_schema`` capsule) is honoured when it is the frame's schema, or when the
        columns that differ cast to the requested types and back unchanged (those columns are then copies);
        anything else raises :class:`SchemaMismatchError` naming the column."""
        return self.read_frame().__arrow_c_stream__(requested_schema)

    # -- metadata -----------------------------------------------------------------------------------
    def schema(self) -> pa.Schema | Schema | None:
        """The schema of the newest frame (None before the first write): a pyarrow.Schema if pyarrow is
        installed, else a native :class:`Schema` (``__arrow_c_schema__``)."""
        s = self._native.schema()
        if s is None:
            return None
        try:
            import pyarrow as pa
        except ImportError:  # pragma: no cover
            return s
        return pa.schema(s)

    def stats(self) -> dict[str, int]:
        """Counters: frames_read, bytes_read, zero_copy_buffers, copies, timeouts, retries..."""
        return self._native.stats()

    @property
    def last_seq(self) -> int:
        """The sequence number of the last frame this reader returned (0: none yet)."""
        return self._native.last_seq

    @property
    def name(self) -> str:
        """The segment's name."""
        return self._native.name

    @property
    def closed(self) -> bool:
        return self._native.closed

    def close(self) -> None:
        """Detach. DataFrames already read stay valid (they keep the mapping alive) until dropped."""
        self._native.close()

    def _lease_count(self) -> int:
        """Leases this reader holds right now (debugging, tests)."""
        return self._native.lease_count()

    def _segment_range(self) -> tuple[int, int]:
        return self._native.segment_range()

    def __enter__(self) -> SharedDataFrameReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SharedDataFrameReader({self.name!r}, last_seq={self.last_seq if not self.closed else 'closed'})"


class SharedDataFrame:
    """Named shared-memory snapshots of data frames: one writer, many readers, newest frame wins."""

    @staticmethod
    def create_writer(
        name: str,
        size_mb: float | None = None,
        *,
        num_buffers: int | None = None,
        size: int | None = None,
        persistent: bool = False,
        reader_capacity: int | None = None,
        schema_capacity: int | None = None,
        lease_timeout: float | None = None,
        spin: int | None = None,
        permissions: int | None = None,
        config: str | os.PathLike[str] | None = None,
    ) -> SharedDataFrameWriter:
        """Create the segment ``name`` (or take it over from a dead writer).

        ``size_mb`` (or ``size`` in bytes) is the total data capacity, split across ``num_buffers`` slots: the
        largest frame is ``size / num_buffers``. ``persistent=True`` keeps the segment (and its last frame) after
        the writer closes; remove it with :meth:`SharedDataFrame.unlink`. ``lease_timeout`` (s): how long a write
        waits for readers to release a slot. Raises :class:`WriterAliveError` if a live writer owns the name.

        What is not given comes from the configuration, as for streams: the file ``config`` (a path), else the one
        named by ``$QADATASWAP_CONFIG``, else ``./qadataswap.yaml`` if present, then the ``QADATASWAP_*``
        variables; the built-in defaults are 64 MiB, 3 slots, no compression and a lease timeout of 5 s
        (``sync.timeout_ms``). A broken file raises :class:`InvalidConfigError` naming it.
        """
        nbytes = None if size_mb is None and size is None else _size_bytes(size_mb, size)
        _check_count("num_buffers", num_buffers, 1)
        _check_count("reader_capacity", reader_capacity, 1)
        _check_count("schema_capacity", schema_capacity, 1, MAX_SIZE)
        _check_count("spin", spin, 0)
        _check_seconds("lease_timeout", lease_timeout)
        return SharedDataFrameWriter(
            _NativeWriter(
                name,
                nbytes,
                num_buffers,
                persistent=persistent,
                reader_capacity=reader_capacity,
                schema_capacity=schema_capacity,
                lease_timeout=lease_timeout,
                spin=spin,
                permissions=permissions,
                config=_config_path(config),
            )
        )

    @staticmethod
    def create_reader(
        name: str,
        *,
        timeout: float | None = None,
        open_timeout: float | None = 5.0,
        validation: str = "trusted",
        spin: int | None = None,
        allow_shared_mode: bool = False,
    ) -> SharedDataFrameReader:
        """Attach to the segment ``name``.

        ``timeout``: default timeout of blocking reads in seconds (None: wait forever). ``open_timeout``: how long
        to wait for a writer to create ``name`` if it does not exist yet (default 5 s, the configuration's
        ``sync.timeout_ms``; 0: fail at once; None: wait forever); the wait watches ``/dev/shm`` (no polling) and
        Ctrl-C ends it. ``validation``: ``"trusted"`` (metadata checked, O(columns)) or ``"full"`` (plus Arrow's full
        validation of the bodies). Raises :class:`SegmentNotFoundError` (saying which name it waited for and how
        long) if no writer created ``name`` in time.
        """
        _check_seconds("timeout", timeout)
        _check_seconds("open_timeout", open_timeout)
        _check_count("spin", spin, 0)
        return SharedDataFrameReader(
            _NativeReader(
                name,
                timeout=timeout,
                open_timeout=open_timeout,
                spin=spin,
                validation=validation,
                allow_shared_mode=allow_shared_mode,
            )
        )

    @staticmethod
    def unlink(name: str, force: bool = False) -> None:
        """Remove the segment ``name`` (a persistent one, or one left behind), by the rule of ``qadataswap rm``.

        Only a segment of this library, of this user, that no live process uses is removed; anything else raises and
        is left alone: :class:`SegmentInUseError` (live writer or readers; or dead ones still registered, which
        ``force=True`` accepts), :class:`NotOursError` (another program's file, another user's segment),
        :class:`SegmentNotFoundError`. Attached readers keep reading what they have.
        """
        _unlink(name, force)


from ._stream import SharedDataStream, SharedDataStreamReader, SharedDataStreamWriter  # noqa: E402
