"""SharedDataStream: a lossless, ordered stream of chunks from one writer process to any number of readers."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterator

from . import DEFAULT, _check_seconds, _timeout_args  # defined before the package imports this module
from ._native import Frame
from ._native import StreamReader as _NativeStreamReader
from ._native import StreamWriter as _NativeStreamWriter
from ._waiter import Waiter

if TYPE_CHECKING:
    import polars as pl

MB = 1024 * 1024


class SharedDataStreamWriter:
    """Writes chunks; a context manager that finishes the stream cleanly on a normal exit (readers drain it, then
    their iteration ends) and only closes it when the block raised (readers then get WriterClosedError)."""

    def __init__(self, native: _NativeStreamWriter) -> None:
        self._native = native

    def write_chunk(self, data: Any):  # -> WriteInfo
        """Write ``data`` (polars DataFrame/LazyFrame or any Arrow PyCapsule exporter) as the next chunk. Waits
        while the slowest reader is a whole ring behind; raises ReadersBehindError if it does not catch up."""
        from . import WriteInfo, _exportable

        return WriteInfo(*self._native.write_chunk(_exportable(data)))

    def wait_for_readers(self, n: int, timeout: float) -> int:
        """Wait until ``n`` readers are attached (or ``timeout`` s); returns how many are."""
        _check_seconds("timeout", timeout)
        return self._native.wait_for_readers(n, timeout)

    def readers(self) -> int:
        return self._native.readers()

    def finish(self) -> None:
        """End the stream cleanly."""
        self._native.finish()

    def close(self) -> None:
        self._native.close()

    @property
    def closed(self) -> bool:
        return self._native.closed

    @property
    def name(self) -> str:
        return self._native.name

    @property
    def next_seq(self) -> int:
        return self._native.next_seq

    def stats(self) -> dict[str, int]:
        return self._native.stats()

    def __enter__(self) -> SharedDataStreamWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        try:
            if exc_type is None and not self.closed:
                self.finish()
        finally:
            self.close()


class SharedDataStreamReader:
    """Reads every chunk, in order, each as a polars.DataFrame over the shared memory (drop chunks you are done
    with: a reader may keep at most ``num_buffers - 1`` alive)."""

    def __init__(self, native: _NativeStreamReader) -> None:
        self._native = native

    def next_chunk(self, timeout: Any = DEFAULT) -> pl.DataFrame | None:
        """The next chunk, or None at the clean end of the stream. ``timeout`` in s; omitted: the reader's;
        ``None``: wait forever (the same rule as the snapshot reader's ``read``)."""
        from . import to_polars

        f = self._native.next_chunk(**_timeout_args(timeout))
        return None if f is None else to_polars(f)

    def next_frame(self, timeout: Any = DEFAULT) -> Frame | None:
        """As :meth:`next_chunk`, as a native :class:`Frame` (``seq``, ``__arrow_c_stream__``)."""
        return self._native.next_chunk(**_timeout_args(timeout))

    def iter_chunks(self, timeout: Any = DEFAULT) -> Iterator[pl.DataFrame]:
        """Every chunk until the clean end of the stream."""
        while True:
            df = self.next_chunk(timeout)
            if df is None:
                return
            yield df

    def __iter__(self) -> Iterator[pl.DataFrame]:
        return self.iter_chunks()

    # -- asyncio (waits run on this reader's own waiter thread: see qadataswap._waiter) ---------------------
    async def next_chunk_async(self, timeout: Any = DEFAULT) -> pl.DataFrame | None:
        """As :meth:`next_chunk`, awaitable, on this reader's own waiter thread (never the event loop's default
        executor). Cancel-safe and lossless: a chunk that arrives as the await is cancelled stays with the reader
        and is the next one returned."""
        frame = await self.next_frame_async(timeout)
        if frame is None:
            return None
        from . import to_polars

        return to_polars(frame)

    async def next_frame_async(self, timeout: Any = DEFAULT) -> Frame | None:
        """As :meth:`next_chunk_async`, as a native :class:`Frame`."""
        args = _timeout_args(timeout)
        native = self._native
        w = self.__dict__.get("_waiter_obj")
        if w is None:
            w = self.__dict__["_waiter_obj"] = Waiter(f"stream reader {self.name}")
        # The thread only waits until a chunk is ready; the chunk is taken here, on the loop, so a cancelled await
        # leaves it with the reader instead of losing it.
        ready = await w.run(lambda cancel: native.wait_chunk(cancel=cancel, **args))
        if ready == "end":
            return None
        return native.try_next_chunk()

    async def iter_chunks_async(self, timeout: Any = DEFAULT) -> AsyncIterator[pl.DataFrame]:
        """Every chunk until the clean end of the stream, awaitable: ``async for chunk in reader``."""
        while True:
            df = await self.next_chunk_async(timeout)
            if df is None:
                return
            yield df

    def __aiter__(self) -> AsyncIterator[pl.DataFrame]:
        return self.iter_chunks_async()

    def _waiter_thread(self) -> threading.Thread | None:
        """The waiter thread while async waits are pending, else None (tests)."""
        w = self.__dict__.get("_waiter_obj")
        return None if w is None else w.thread()

    # -- Arrow PyCapsule producer -------------------------------------------------------------------
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """The stream as an Arrow C stream (a RecordBatchReader: ``pa.RecordBatchReader.from_stream(reader)``,
        DuckDB's ``select ... from reader``): each chunk's batches in order, ending at the end of the stream,
        zero-copy (each batch holds its chunk's lease: a consumer that keeps every batch of a stream longer than
        the ring gets :class:`RingHeldError`; aggregate or copy as you go).

        Blocks until the first chunk (or the end) with the reader's timeout, to know the schema; later chunks are
        waited for as the consumer pulls them. The consumer's thread waits without the GIL; a wait ends at the
        reader's timeout, or when the reader is closed. A chunk with another schema ends the export with an error
        (it stays with the reader). Batches the consumer did not pull stay with the reader: nothing is lost.
        ``requested_schema`` is honoured as for a snapshot (same schema, or lossless casts) or refused with
        :class:`SchemaMismatchError`."""
        return self._native.__arrow_c_stream__(requested_schema)

    def copying(self) -> _CopyingStream:
        """This reader as an Arrow C stream of private copies: each batch is copied out of shared memory as the
        consumer pulls it and holds no lease. For consumers that keep every batch until they are done, over a
        stream longer than the ring: DuckDB with more than one thread does
        (``copies = reader.copying(); duckdb.sql("select ... from copies")``). A one-thread DuckDB connection, or
        any consumer that drops batches as it goes, can use the reader itself, zero-copy."""
        return _CopyingStream(self)

    @property
    def finished(self) -> bool:
        return self._native.finished

    @property
    def delivered(self) -> int:
        return self._native.delivered

    @property
    def name(self) -> str:
        return self._native.name

    def stats(self) -> dict[str, int]:
        return self._native.stats()

    def close(self) -> None:
        self._native.close()

    def __enter__(self) -> SharedDataStreamReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _CopyingStream:
    """:meth:`SharedDataStreamReader.copying`: the reader's chunks exported as private copies."""

    def __init__(self, reader: SharedDataStreamReader) -> None:
        self._reader = reader

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        return self._reader._native.__arrow_c_stream__(requested_schema, copy=True)


class SharedDataStream:
    """Named shared-memory streams: lossless, ordered, with back-pressure; ``finish()`` ends them cleanly."""

    @staticmethod
    def create_writer(
        name: str,
        size_mb: float | None = None,
        *,
        num_buffers: int | None = None,
        size: int | None = None,
        timeout: float | None = None,
        retry_count: int | None = None,
        persistent: bool | None = None,
        reader_capacity: int | None = None,
        spin: int | None = None,
        min_readers: int = 1,
        linger: float | None = None,
        config: str | os.PathLike[str] | None = None,
    ) -> SharedDataStreamWriter:
        """Create the stream ``name``. ``size_mb`` (or ``size`` in bytes) is the total data capacity split across
        ``num_buffers`` slots; ``timeout``/``retry_count``: how long a write waits for slow readers per attempt, and
        how many more attempts. What is not given comes from the configuration (the file ``config``, else
        ``$QADATASWAP_CONFIG``, else ``./qadataswap.yaml``, then ``QADATASWAP_*`` variables; built-in defaults
        64 MiB, 3 slots, 5 s, 3 retries).

        Nothing is lost by default: the first ``write_chunk`` waits (up to the timeout, all attempts) until
        ``min_readers`` readers are attached, and raises :class:`NoReadersError` if none come; ``min_readers=0``
        broadcasts to whoever is attached (a reader that attaches after chunks were dropped gets
        :class:`ChunksMissedError` naming them). ``finish()`` (and leaving a ``with`` block) keeps the name until every
        attached reader has read the end, or ``linger`` seconds (default: the timeout) have passed."""
        from . import _check_count, _check_seconds, _config_path, _size_bytes

        nbytes = None if size_mb is None and size is None else _size_bytes(size_mb, size)
        _check_count("num_buffers", num_buffers, 1)
        _check_count("retry_count", retry_count, 0)
        _check_count("reader_capacity", reader_capacity, 1)
        _check_count("spin", spin, 0)
        _check_count("min_readers", min_readers, 0)
        _check_seconds("timeout", timeout)
        _check_seconds("linger", linger)
        return SharedDataStreamWriter(
            _NativeStreamWriter(
                name,
                nbytes,
                num_buffers,
                timeout=timeout,
                retry_count=retry_count,
                persistent=persistent,
                reader_capacity=reader_capacity,
                spin=spin,
                min_readers=min_readers,
                linger=linger,
                config=_config_path(config),
            )
        )

    @staticmethod
    def create_reader(
        name: str,
        *,
        timeout: float | None = None,
        start: str = "oldest",
        validation: str = "trusted",
        spin: int | None = None,
        open_timeout: float | None = 5.0,
    ) -> SharedDataStreamReader:
        """Attach to the stream ``name`` from the oldest chunk still in the ring (``start="next"``: from the next
        one published). ``timeout``: default wait for a chunk in s (None: forever). ``open_timeout``: how long to
        wait for the writer to create ``name`` (default 5 s, the configuration's ``sync.timeout_ms``; 0: fail at
        once; None: forever). If chunks were dropped before this reader attached, its first read raises
        :class:`ChunksMissedError` naming them; reading on continues from the oldest retained chunk."""
        _check_seconds("timeout", timeout)
        _check_seconds("open_timeout", open_timeout)
        return SharedDataStreamReader(
            _NativeStreamReader(
                name, timeout=timeout, start=start, validation=validation, spin=spin, open_timeout=open_timeout
            )
        )
