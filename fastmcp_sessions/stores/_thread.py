"""A single worker thread that owns a blocking resource (a SQLite connection).

Jobs run one at a time in submission order, off the event loop. Compared with
``loop.run_in_executor`` this skips the ``concurrent.futures`` layer, which is most
of the per-call cost for sub-millisecond jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from fastmcp_sessions import telemetry

T = TypeVar("T")

_STOP = object()


def _deliver(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _timed(fn: Callable[..., T], queued: float) -> Callable[..., T]:
    """``fn`` that first reports how long it waited in the queue for the worker."""

    def run(*args: Any) -> T:
        telemetry.record_pool_wait(time.perf_counter() - queued, "sqlite", "worker thread")
        return fn(*args)

    return run


class WorkerThread:
    """Runs callables on one dedicated daemon thread and awaits their results."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            fn, args, future, loop = job
            if future is None:  # fire-and-forget job; its errors surface through later jobs
                with contextlib.suppress(BaseException):
                    fn(*args)
                del job, fn, args
                continue
            try:
                result, error = fn(*args), None
            except BaseException as exc:
                result, error = None, exc
            # RuntimeError: the awaiting loop has closed, so nobody is waiting for this result.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_deliver, future, result, error)
            # Drop references while idle, so the job's owner can be garbage-collected.
            del job, fn, args, future, loop, result, error

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the worker thread and return its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if telemetry.SWITCH.on:
            fn = _timed(fn, time.perf_counter())
        self._jobs.put((fn, args, future, loop))
        return await future

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)`` without waiting for it."""
        self._jobs.put((fn, args, None, None))

    def stop(self) -> None:
        """Let queued jobs finish, then end the thread."""
        self._jobs.put(_STOP)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end (after ``stop``)."""
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """Whether the thread is still running."""
        return self._thread.is_alive()
