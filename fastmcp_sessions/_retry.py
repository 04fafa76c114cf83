"""The retry loop: attempt numbers, with a jittered pause growing exponentially between attempts.

Used wherever an optimistic write that lost a race is tried again (``Store.update``,
``SessionStore``) and where a lock is polled until it is free (``Lock.acquire``)::

    async for attempt in Retries(32, first=0.001, cap=0.05):
        if await try_once():
            return
    raise ConflictError(...)

The jitter spreads competing processes apart so that they do not retry in lockstep;
it needs no cryptographic randomness, hence ``random``.
"""

from __future__ import annotations

import asyncio
import random
import time

from fastmcp_sessions.errors import StoreOptionError

__all__ = ["Retries"]

_MAX_DOUBLINGS = 64  # 2**64 times any first pause is past every cap; more would overflow a float


class Retries:
    """``async for attempt in Retries(...)`` yields 0, 1, 2... and sleeps between attempts.

    Before attempt ``n`` (n >= 1) it sleeps ``min(cap, first * 2**(n-1))`` seconds
    scaled by a random factor in ``[1 - jitter, 1]``. The loop ends after ``limit``
    attempts (and one more pause, so a caller that gives up has backed off as well),
    or, with a ``deadline`` (a ``time.monotonic()`` value), as soon as the deadline
    has passed after an attempt; no pause runs past the deadline. ``limit=None``
    without a deadline retries forever.
    """

    __slots__ = ("_next", "cap", "deadline", "first", "jitter", "limit")

    def __init__(
        self,
        limit: int | None,
        *,
        first: float,
        cap: float,
        jitter: float = 1.0,
        deadline: float | None = None,
    ) -> None:
        if not 0.0 <= jitter <= 1.0:
            raise StoreOptionError(f"jitter must be between 0 and 1, got {jitter!r}")
        self.limit = limit
        self.first = first
        self.cap = cap
        self.jitter = jitter
        self.deadline = deadline
        self._next = 0

    def pause(self, attempt: int) -> float:
        """The seconds to sleep after failed attempt number ``attempt`` (before the next one)."""
        return random.uniform(1.0 - self.jitter, 1.0) * min(
            self.cap, self.first * 2.0 ** min(attempt, _MAX_DOUBLINGS)
        )

    def __aiter__(self) -> Retries:
        return self

    async def __anext__(self) -> int:
        attempt = self._next
        if attempt > 0:
            pause = self.pause(attempt - 1)
            if self.deadline is not None:
                left = self.deadline - time.monotonic()
                if left <= 0:
                    raise StopAsyncIteration
                pause = min(pause, left)
            await asyncio.sleep(pause)
        if self.limit is not None and attempt >= self.limit:
            raise StopAsyncIteration
        self._next = attempt + 1
        return attempt
