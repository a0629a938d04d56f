"""The asyncio waiter: blocking waits of a reader run on a thread of the library's own, never on the event loop's
default executor (which eight idle waits would otherwise fill, starving ``asyncio.to_thread`` and everything else
that uses it).

One daemon thread per reader, alive only while that reader has waits pending: it runs the reader's waits one after
the other (a reader's reads are ordered anyway), with the GIL released inside the native wait, and completes each
future on its loop with ``call_soon_threadsafe``. Cancelling the awaiting task sets the wait's :class:`Cancel`
flag, which the native wait checks between its slices (at most 50 ms), and the cancelled ``await`` returns only
once the wait has stopped and whatever it read is dropped: no lease and no thread outlive it.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from typing import Any, Callable, Generic, TypeVar

from ._native import Cancel

T = TypeVar("T")


class _Job(Generic[T]):
    __slots__ = ("blocking", "cancel", "loop", "future", "stopped")

    def __init__(self, blocking: Callable[[Cancel], T], loop: asyncio.AbstractEventLoop) -> None:
        self.blocking = blocking
        self.cancel = Cancel()
        self.loop = loop
        self.future: asyncio.Future[T] = loop.create_future()
        # Set (on the loop) once the wait is over and its result was delivered or dropped.
        self.stopped: asyncio.Future[None] = loop.create_future()

    def run(self) -> None:
        """On the waiter thread."""
        box: list[Any] = [None]
        error: BaseException | None = None
        if not self.cancel.is_set():
            try:
                box[0] = self.blocking(self.cancel)
            except BaseException as e:  # noqa: BLE001 - delivered to the awaiting task
                error = e
        try:
            self.loop.call_soon_threadsafe(self._settle, box, error)
        except RuntimeError:
            # The loop is closed: nobody awaits any more. Dropping `box` here drops the result (and its lease).
            pass

    def _settle(self, box: list[Any], error: BaseException | None) -> None:
        """On the loop: deliver the result, or drop it if the await was cancelled meanwhile."""
        value = box.pop()
        if self.future is not None and not self.future.done():
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(value)
        del value
        if not self.stopped.done():
            self.stopped.set_result(None)


class Waiter:
    """Runs one reader's blocking waits on a thread of its own (see the module's doc)."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._lock = threading.Lock()
        self._jobs: collections.deque[_Job[Any]] = collections.deque()
        self._thread: threading.Thread | None = None

    async def run(self, blocking: Callable[[Cancel], T]) -> T:
        """Run ``blocking(cancel)`` on the waiter thread and await its result. ``blocking`` must return soon after
        ``cancel`` is set (the native waits check it between slices)."""
        job: _Job[T] = _Job(blocking, asyncio.get_running_loop())
        with self._lock:
            self._jobs.append(job)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name=f"qadataswap-waiter {self._what}", daemon=True
                )
                self._thread.start()
        try:
            return await job.future
        except asyncio.CancelledError:
            job.cancel.set()
            # Return only once the wait stopped and its result (and lease) is gone; a second cancel while this
            # waits is honoured at once, the wait still stops at its next slice.
            await asyncio.shield(job.stopped)
            raise
        finally:
            # The future holds the result (a frame, with its lease) for as long as anything holds the job, and the
            # waiter thread still does until it picks its next job: forget it here, so that dropping the frame the
            # await returned releases the lease at once.
            job.future = None  # type: ignore[assignment]
            del job

    def _serve(self) -> None:
        while True:
            with self._lock:
                if not self._jobs:
                    self._thread = None
                    return
                job = self._jobs.popleft()
            job.run()
            del job

    def thread(self) -> threading.Thread | None:
        """The waiter thread while waits are pending (tests)."""
        with self._lock:
            return self._thread
