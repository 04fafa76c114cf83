"""A distributed lock with leases and fencing tokens, on any store.

Algorithm (only the public ``Store`` contract is used):

* One record per lock name: ``{"owner": <random token or None>, "fence": <int>}``.
* **Acquire**: read it with ``get_versioned``. If it is missing, create it with
  ``put_if_absent``; if it is free (``owner`` is ``None``) or its lease is over,
  take it with ``compare_and_set`` against the version just read. Exactly one
  contender wins each round. Otherwise wait (polling with jitter) and try again
  until the timeout.
* **Lease**: a held record is written with store TTL ``lease + GRACE``, and the
  lease is over when the store reports a remaining TTL of at most ``GRACE``. The
  store's clock decides (Redis', Mongo's...), never the clocks of the contenders,
  so a skewed client clock cannot steal a live lease. The record itself outlives
  the lease by ``GRACE`` (a day by default) so that its fence survives.
* **Fencing token**: each acquisition writes ``fence + 1`` in the same
  compare-and-set that takes the lock, so tokens strictly increase with every
  acquisition, including after a crashed holder's lease ran out. A record that
  vanished after ``GRACE`` of disuse restarts at the current time in microseconds,
  which is larger than any token handed out before it (one acquisition per
  microsecond would be needed to overtake the clock).
* **Release / extend**: read, check that ``owner`` is still our random token, then
  ``compare_and_set`` against that version (release writes ``owner=None`` and keeps
  the fence). Only the owner can do either; a holder whose lease ran out and was
  taken over gets ``LockNotHeldError`` from ``extend`` and a no-op from ``release``.
* **Renewal** (``renew=True``): a background task extends the lease every third of
  it while held; if that ever fails, ``lost`` becomes true.

A lease lock alone cannot stop a holder that was paused past its lease, so write
what the lock protects with ``Lock.put_fenced`` (``Store.put_fenced`` with this lock's
name and token): the record keeps the highest token written, and a write carrying a
lower one raises ``StaleFencingTokenError`` instead of overwriting the newer holder's
data. The session layer's own critical sections (token refresh) write this way.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import secrets
import time
from collections.abc import Mapping
from typing import Any, Self

from fastmcp_sessions import telemetry
from fastmcp_sessions._closing import AsyncContext
from fastmcp_sessions._retry import Retries
from fastmcp_sessions.sessions.errors import LockError, LockNotHeldError, LockTimeoutError
from fastmcp_sessions.stores.base import Store, Versioned

__all__ = ["DEFAULT_LOCK_COLLECTION", "GRACE", "Lock"]

logger = logging.getLogger("fastmcp_sessions")

DEFAULT_LOCK_COLLECTION = "fastmcp_sessions_locks"
GRACE = 86_400.0
"""How long a lock record outlives its lease (seconds), keeping its fence."""


class _Unset(enum.Enum):
    TOKEN = 0


_UNSET = _Unset.TOKEN


def _now_us() -> int:
    return time.time_ns() // 1000


class Lock(AsyncContext):
    """A named lock shared by every process using the same store.

    ``async with Lock(store, "reindex", lease=30, timeout=10) as held:`` waits up to
    ``timeout`` seconds (``None``: forever) and raises ``LockTimeoutError`` after
    that; ``held.fencing_token`` is a strictly increasing ``int``. Leaving the block
    releases the lock. One ``Lock`` object holds the lock at most once at a time.

    Args:
        store: Any fastmcp-sessions store.
        name: The lock's name; every process using the same name contends.
        lease: Seconds the lock stays held without ``extend`` (or renewal).
        timeout: Default seconds ``acquire`` waits; ``None`` waits forever.
        renew: Extend the lease in the background while held.
        collection: The collection holding lock records.
        poll_interval: Longest pause between attempts while waiting.
    """

    def __init__(
        self,
        store: Store,
        name: str,
        *,
        lease: float = 30.0,
        timeout: float | None = None,
        renew: bool = False,
        collection: str = DEFAULT_LOCK_COLLECTION,
        poll_interval: float = 0.1,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise LockError("a lock name must be a non-empty str")
        if not lease > 0:
            raise LockError(f"lease must be a positive number of seconds, got {lease!r}")
        if timeout is not None and timeout < 0:
            raise LockError(f"timeout must be >= 0 seconds or None, got {timeout!r}")
        self.store = store
        self.name = name
        self.lease = float(lease)
        self.timeout = timeout
        self.renew = renew
        self.collection = collection
        self.poll_interval = poll_interval
        self._key = "lock:" + name
        self._owner: str | None = None
        self._fence: int | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._lost = False

    def __repr__(self) -> str:
        state = "held" if self._owner is not None else "not held"
        return f"Lock({self.name!r}, lease={self.lease:g}, {state}, fence={self._fence})"

    # -- state ----------------------------------------------------------------------------

    @property
    def held(self) -> bool:
        """Whether this object acquired the lock and has not released it (the lease may have run out)."""
        return self._owner is not None

    @property
    def lost(self) -> bool:
        """Whether background renewal failed: another owner may hold the lock now."""
        return self._lost

    @property
    def fencing_token(self) -> int:
        """The fencing token of the current (or last) acquisition; larger for every later acquisition."""
        if self._fence is None:
            raise LockNotHeldError(self.name, "read the fencing token of")
        return self._fence

    async def put_fenced(
        self,
        key: str,
        value: Mapping[str, Any],
        *,
        collection: str | None = None,
        ttl: float | None = None,
    ) -> None:
        """Write ``value`` to this lock's store, fenced by this holder's token.

        Raises ``StaleFencingTokenError`` (and writes nothing) when a later holder of the
        lock has already written ``key``: this holder's lease ran out meanwhile.
        """
        await self.store.put_fenced(
            key, value, lock=self.name, token=self.fencing_token, collection=collection, ttl=ttl
        )

    def _expired(self, entry: Versioned) -> bool:
        return entry.ttl is not None and entry.ttl <= GRACE

    async def locked(self) -> bool:
        """Whether anyone holds the lock right now (with a live lease)."""
        entry = await self.store.get_versioned(self._key, collection=self.collection)
        return entry is not None and entry.value.get("owner") is not None and not self._expired(entry)

    # -- acquire / release --------------------------------------------------------------

    async def try_acquire(self) -> bool:
        """One attempt to take the lock, without waiting; return whether it was taken."""
        if self._owner is not None:
            raise LockError(f"lock {self.name!r} is already held by this Lock object; release it first")
        owner = secrets.token_urlsafe(16)
        entry = await self.store.get_versioned(self._key, collection=self.collection)
        ttl = self.lease + GRACE
        if entry is None:
            fence = _now_us()
            won = await self.store.put_if_absent(
                self._key, {"owner": owner, "fence": fence}, collection=self.collection, ttl=ttl
            )
        elif entry.value.get("owner") is None or self._expired(entry):
            fence = _next_fence(entry.value.get("fence"))
            won = await self.store.compare_and_set(
                self._key,
                {"owner": owner, "fence": fence},
                version=entry.version,
                collection=self.collection,
                ttl=ttl,
            )
        else:
            return False
        if won:
            self._owner, self._fence, self._lost = owner, fence, False
            if self.renew:
                self._renewer = asyncio.create_task(self._renew_loop(), name=f"renew lock {self.name}")
        return won

    async def acquire(
        self,
        *,
        timeout: float | _Unset | None = _UNSET,  # noqa: ASYNC109 - the lock's own wait limit
        blocking: bool = True,
    ) -> int:
        """Take the lock, waiting up to ``timeout`` seconds (default: the constructor's).

        Returns the fencing token. Raises ``LockTimeoutError`` when the lock stays
        taken (at once when ``blocking=False``).
        """
        wait = self.timeout if isinstance(timeout, _Unset) else timeout
        if not blocking:
            wait = 0.0
        start = time.monotonic()
        deadline = None if wait is None else start + wait
        # The span names no lock: lock names are derived from server URLs and identities.
        with telemetry.span("fastmcp_sessions.lock.acquire") as span:
            attempts = 0
            async for _ in Retries(None, first=0.005, cap=self.poll_interval, jitter=0.5, deadline=deadline):
                attempts += 1
                if await self.try_acquire():
                    waited = time.monotonic() - start
                    telemetry.record_lock_wait(waited, "acquired")
                    if span is not None:
                        span.set_attributes(
                            {
                                "fastmcp_sessions.lock.outcome": "acquired",
                                "fastmcp_sessions.lock.wait": waited,
                                "fastmcp_sessions.lock.attempts": attempts,
                                "fastmcp_sessions.lock.fencing_token": self.fencing_token,
                            }
                        )
                    return self.fencing_token
            waited = time.monotonic() - start
            telemetry.record_lock_wait(waited, "timeout")
            if span is not None:
                span.set_attributes(
                    {
                        "fastmcp_sessions.lock.outcome": "timeout",
                        "fastmcp_sessions.lock.wait": waited,
                        "fastmcp_sessions.lock.attempts": attempts,
                    }
                )
            raise LockTimeoutError(self.name, wait or 0.0)

    async def release(self) -> bool:
        """Release the lock; return whether this owner still held it (a lost lease releases nothing)."""
        with telemetry.span("fastmcp_sessions.lock.release") as span:
            released = await self._release()
            if span is not None:
                span.set_attribute("fastmcp_sessions.lock.released", released)
            return released

    async def _release(self) -> bool:
        owner, self._owner = self._owner, None
        await self._stop_renewal()
        if owner is None:
            return False
        for _ in range(8):
            entry = await self.store.get_versioned(self._key, collection=self.collection)
            if entry is None or entry.value.get("owner") != owner:
                return False
            freed = {"owner": None, "fence": entry.value.get("fence")}
            if await self.store.compare_and_set(
                self._key, freed, version=entry.version, collection=self.collection, ttl=GRACE
            ):
                return not self._expired(entry)
        return False

    async def extend(self, lease: float | None = None) -> None:
        """Restart the lease (``lease`` seconds, default the constructor's) from now.

        Raises ``LockNotHeldError`` when this owner no longer holds the lock.
        """
        seconds = self.lease if lease is None else float(lease)
        if not seconds > 0:
            raise LockError(f"lease must be a positive number of seconds, got {lease!r}")
        owner = self._owner
        if owner is None:
            raise LockNotHeldError(self.name, "extend")
        for _ in range(8):
            entry = await self.store.get_versioned(self._key, collection=self.collection)
            if entry is None or entry.value.get("owner") != owner:
                raise LockNotHeldError(self.name, "extend")
            if await self.store.compare_and_set(
                self._key, entry.value, version=entry.version, collection=self.collection, ttl=seconds + GRACE
            ):
                return
        raise LockNotHeldError(self.name, "extend")

    async def _renew_loop(self) -> None:
        try:
            while self._owner is not None:
                await asyncio.sleep(self.lease / 3)
                if self._owner is None:
                    return
                await self.extend()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._lost = True
            logger.warning(
                "renewing lock %r failed (%s); the lease will run out", self.name, type(exc).__name__
            )

    async def _stop_renewal(self) -> None:
        task, self._renewer = self._renewer, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> Self:
        await self.acquire()
        return self

    async def _leave(self, exc: BaseException | None) -> None:
        if not await self.release() and exc is None:
            logger.warning(
                "lock %r was no longer held when its block ended (the lease of %gs ran out); use a longer "
                "lease or renew=True",
                self.name,
                self.lease,
            )


def _next_fence(previous: Any) -> int:
    if isinstance(previous, int) and not isinstance(previous, bool):
        return previous + 1
    return _now_us()
