"""The exception hierarchy of qadataswap.

Every failure of the Rust core surfaces as a subclass of :class:`Error`, with the core's message (which says what to
do) and, where the core has them, structured attributes (``name``, ``pid``, ``needed``, ``capacity``...). Classes that
mean the same as a builtin also derive from it, so ``except TimeoutError`` and ``except FileNotFoundError`` work.

This module imports nothing native: the extension raises these classes directly.
"""

from __future__ import annotations

import builtins

__all__ = [
    "Error",
    "TimeoutError",
    "SegmentNotFoundError",
    "SegmentExistsError",
    "PermissionError",
    "InvalidNameError",
    "WriterAliveError",
    "SegmentInUseError",
    "NotOursError",
    "WriterClosedError",
    "WriterDiedError",
    "SlotTooSmallError",
    "SchemaTooLargeError",
    "AllSlotsLeasedError",
    "TooManyReadersError",
    "ForkedError",
    "WrongModeError",
    "VersionMismatchError",
    "CorruptSegmentError",
    "InvalidConfigError",
    "InvalidFrameError",
    "ArrowError",
    "ReleasedError",
    "ReadersBehindError",
    "RingHeldError",
    "ChunksLostError",
    "FinishedError",
    "NotInitialisedError",
    "ForeignSegmentError",
    "SegmentTooLargeError",
    "NotARegularFileError",
    "UnsupportedTypeError",
    "SchemaMismatchError",
    "InternalError",
]


class Error(Exception):
    """Base class of every qadataswap error. ``str(e)`` is the core's message; ``e.name`` the segment, if known."""

    name: str | None = None


class TimeoutError(Error, builtins.TimeoutError):  # noqa: A001 - deliberately shadows the builtin inside the package
    """A blocking call reached its timeout. Also a builtin :class:`TimeoutError`."""


class SegmentNotFoundError(Error, builtins.FileNotFoundError):
    """No segment of that name exists (no writer created it, or it was unlinked)."""


class SegmentExistsError(Error, builtins.FileExistsError):
    """A segment of that name already exists."""


class PermissionError(Error, builtins.PermissionError):  # noqa: A001
    """The segment belongs to another user, or its mode lets others in."""


class InvalidNameError(Error, builtins.ValueError):
    """The segment name is not a valid name (empty, too long, contains '/')."""


class WriterAliveError(Error):
    """Another live process writes this name; ``e.pid`` is its pid."""

    pid: int | None = None


class SegmentInUseError(Error):
    """A segment was not removed: live processes use it (``e.pids``), or dead ones are still registered
    (``unlink(name, force=True)`` removes it then)."""


class NotOursError(Error, builtins.PermissionError):
    """A file in /dev/shm that is not this library's segment, or not this user's, or cannot be checked: never
    removed."""


class WriterClosedError(Error):
    """The writer closed the segment cleanly; nothing newer will come."""


class WriterDiedError(Error):
    """The writer died without closing; ``e.pid`` is its pid. A new writer can take the segment over."""

    pid: int | None = None


class SlotTooSmallError(Error, builtins.ValueError):
    """The frame does not fit in a slot; ``e.needed`` and ``e.capacity`` are in bytes."""

    needed: int | None = None
    capacity: int | None = None


class SchemaTooLargeError(Error, builtins.ValueError):
    """The schema does not fit the segment's schema area."""

    needed: int | None = None
    capacity: int | None = None


class AllSlotsLeasedError(Error):
    """Readers hold every slot and none came free within the writer's lease timeout."""


class TooManyReadersError(Error):
    """The segment's reader table is full."""

    capacity: int | None = None


class ForkedError(Error):
    """The object was inherited through ``fork()``: open a new reader or writer in this process."""

    owner_pid: int | None = None
    pid: int | None = None


class WrongModeError(Error):
    """The segment is a stream and was opened as a snapshot, or the other way round."""


class VersionMismatchError(Error):
    """The segment was made by an incompatible version of qadataswap."""


class CorruptSegmentError(Error):
    """The segment is not a qadataswap segment, or its header or a frame failed a check."""


class InvalidConfigError(Error, builtins.ValueError):
    """An option is out of range."""


class InvalidFrameError(Error, builtins.ValueError):
    """The data cannot be written (no columns, mixed schemas, not Arrow-exportable...)."""


class ArrowError(Error):
    """Arrow itself refused (a type IPC cannot carry, a validation failure...)."""


class ReleasedError(Error):
    """The object was closed or released and cannot be used any more."""


class ReadersBehindError(Error):
    """Stream: readers are a whole ring behind and did not move in time; nothing was written (retry the call)."""


class RingHeldError(Error):
    """Stream: this reader keeps so many chunks alive that the next one cannot be read; drop some or copy them."""


class ChunksLostError(Error):
    """Stream: chunks were lost for this reader (its entry was reclaimed); open a new reader."""


class NoReadersError(Error, builtins.TimeoutError):
    """A stream's first write waited for ``min_readers`` readers and none came; nothing was written. Start a reader,
    or create the writer with ``min_readers=0`` to broadcast to whoever is there."""


class ChunksMissedError(Error):
    """This stream reader attached after the first chunks were dropped from the ring: chunks ``e.first`` to
    ``e.last`` are gone. Raised once, by the first read; reading on returns chunk ``e.resumes_at``."""


class FinishedError(Error):
    """Stream: the writer called finish(); no chunk can be written after it."""


class NotInitialisedError(Error):
    """The segment exists but its writer has not finished creating it (or died while creating it): retry shortly,
    or remove it if no writer is starting."""


class ForeignSegmentError(Error):
    """The name holds something that is not a qadataswap segment (another program's shared memory): pick another
    name; qadataswap never changes it."""


class SegmentTooLargeError(Error, builtins.OSError):
    """/dev/shm has no room for a segment of the size asked for: ask for less, or free or enlarge /dev/shm.
    Also a builtin :class:`OSError`."""


class NotARegularFileError(PermissionError):
    """The name in /dev/shm is a symbolic link, directory, FIFO or device, refused so nobody can redirect the
    segment. Also a :class:`PermissionError` (the package's and the builtin)."""


class UnsupportedTypeError(Error, builtins.TypeError):
    """A column has an Arrow type Polars cannot take with its exact values; ``e.column`` and ``e.data_type`` name
    it. Read the frame with ``read_arrow()`` (every type, exactly) or have the writer cast the column. Also a
    builtin :class:`TypeError`."""

    column: str | None = None
    data_type: str | None = None


class SchemaMismatchError(Error, builtins.ValueError):
    """A consumer asked for a schema (``requested_schema`` of ``__arrow_c_stream__``, e.g. ``pa.table(reader,
    schema=...)``) that the data cannot be given as without loss: other column names or count, a type Arrow
    cannot cast to and back unchanged, or nulls for a non-nullable field. The message names the column. Request
    the data's own schema (``reader.schema()``) and convert after importing. Also a builtin :class:`ValueError`."""


class InternalError(Error):
    """A bug in qadataswap, stopped at the boundary (a Rust panic caught before it reached Python): close the
    object it happened on and report it."""
