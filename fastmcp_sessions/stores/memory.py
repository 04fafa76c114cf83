"""In-process store: plain dicts, no serialisation, optional LRU bound.

Entries live in ``{collection: {key: (value, expires_at, version)}}``. Values are
validated and copied once on the way in and copied on the way out; nothing is
serialised. TTLs use the monotonic clock, and a heap of expiry times lets every
write reclaim expired entries in amortised O(log n), so TTL'd data never piles up.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from collections.abc import Mapping
from time import monotonic
from typing import Any, SupportsFloat

from fastmcp_sessions._values import check_collection, check_key, check_ttl, clone, copy_value
from fastmcp_sessions.errors import StoreOptionError
from fastmcp_sessions.stores._url import take_query_options
from fastmcp_sessions.stores.base import Store, Value, Versioned
from fastmcp_sessions.telemetry import SWITCH

_Entry = tuple[Value, float | None, int]  # (value, monotonic expiry or None, version)


class MemoryStore(Store):
    """A store in this process's memory; fast, and gone when the process exits.

    Args:
        max_entries: Upper bound on live entries; the least recently used entry is
            evicted to make room. ``None`` (default) means unbounded.
        default_collection: Collection used when a call passes none.
    """

    url_schemes = ("memory",)
    db_system_name = "memory"
    instrumented_fast_paths = ("get", "put")

    def __init__(self, *, max_entries: int | None = None, default_collection: str | None = None) -> None:
        super().__init__(default_collection=default_collection)
        if max_entries is not None and (isinstance(max_entries, bool) or max_entries < 1):
            raise StoreOptionError(f"max_entries must be a positive int or None, got {max_entries!r}")
        self.max_entries = max_entries
        self._data: dict[str, dict[str, _Entry]] = {}
        self._size = 0
        self._expiries: list[tuple[float, str, str]] = []
        self._versions = itertools.count(1)
        self._lru: OrderedDict[tuple[str, str], None] | None = OrderedDict() if max_entries else None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MemoryStore:
        """``memory://`` with optional ``?max_entries=N&default_collection=NAME``."""
        take_query_options(url, {"max_entries": int, "default_collection": str}, options)
        return cls(**options)

    def __repr__(self) -> str:
        bound = f", max_entries={self.max_entries}" if self.max_entries else ""
        return f"MemoryStore(entries={self._size}{bound})"

    # The hot paths are written out in full: one call frame, no serialisation. While
    # telemetry records, they take the base class's instrumented path instead.

    async def get(self, key: str, *, collection: str | None = None) -> Value | None:
        """Return the value stored at ``key``, or ``None`` if it is missing or expired."""
        if SWITCH.on:
            return await Store.get(self, key, collection=collection)
        entry = self._live(collection, key)
        return None if entry is None else clone(entry[0])

    async def put(
        self,
        key: str,
        value: Mapping[str, Any],
        *,
        collection: str | None = None,
        ttl: SupportsFloat | None = None,
    ) -> None:
        """Store ``value`` at ``key``, replacing what was there, expiring after ``ttl`` seconds."""
        if SWITCH.on:
            return await Store.put(self, key, value, collection=collection, ttl=ttl)
        if self._closed:
            self._raise_closed()
        c = self.default_collection if collection is None else check_collection(collection)
        check_key(key)
        self._store(c, key, copy_value(value), check_ttl(ttl))

    def _live(self, collection: str | None, key: str) -> _Entry | None:
        if self._closed:
            self._raise_closed()
        c = self.default_collection if collection is None else check_collection(collection)
        check_key(key)
        bucket = self._data.get(c)
        if bucket is None:
            return None
        entry = bucket.get(key)
        if entry is None:
            return None
        if entry[1] is not None and entry[1] <= monotonic():
            self._evict(c, key)
            return None
        if self._lru is not None:
            self._lru.move_to_end((c, key))
        return entry

    def _raise_closed(self) -> None:
        from fastmcp_sessions.errors import StoreClosedError

        raise StoreClosedError(repr(self))

    def _store(self, c: str, key: str, value: Value, ttl: float | None) -> None:
        now = monotonic()
        if self._expiries and self._expiries[0][0] <= now:
            self._reclaim(now)
        bucket = self._data.get(c)
        if bucket is None:
            bucket = self._data[c] = {}
        if key not in bucket:
            self._size += 1
        if ttl is None:
            bucket[key] = (value, None, next(self._versions))
        else:
            expires = now + ttl
            bucket[key] = (value, expires, next(self._versions))
            heapq.heappush(self._expiries, (expires, c, key))
            if len(self._expiries) > 2 * self._size + 1024:
                self._rebuild_expiries()
        if self._lru is not None:
            self._lru[(c, key)] = None
            self._lru.move_to_end((c, key))
            while self._size > self.max_entries:  # type: ignore[operator]
                old_c, old_k = next(iter(self._lru))
                self._evict(old_c, old_k)

    def _evict(self, c: str, key: str) -> bool:
        bucket = self._data.get(c)
        if bucket is None or bucket.pop(key, None) is None:
            return False
        self._size -= 1
        if not bucket:
            del self._data[c]
        if self._lru is not None:
            self._lru.pop((c, key), None)
        return True

    def _reclaim(self, now: float) -> None:
        heap = self._expiries
        while heap and heap[0][0] <= now:
            expires, c, key = heapq.heappop(heap)
            entry = self._data.get(c, {}).get(key)
            # The heap may hold stale expiries of entries rewritten since; only the current one counts.
            if entry is not None and entry[1] == expires:
                self._evict(c, key)

    # -- the backend interface used by everything else ----------------------------------

    async def _get_versioned(self, collection: str, key: str) -> Versioned | None:
        entry = self._live(collection, key)
        if entry is None:
            return None
        remaining = None if entry[1] is None else max(entry[1] - monotonic(), 0.0)
        return Versioned(clone(entry[0]), str(entry[2]), remaining)

    async def _put(self, collection: str, key: str, value: Value, ttl: float | None) -> None:
        self._store(collection, key, value, ttl)

    async def _delete(self, collection: str, key: str) -> bool:
        return self._live(collection, key) is not None and self._evict(collection, key)

    async def _put_if_absent(self, collection: str, key: str, value: Value, ttl: float | None) -> bool:
        if self._live(collection, key) is not None:
            return False
        self._store(collection, key, value, ttl)
        return True

    async def _compare_and_set(
        self, collection: str, key: str, value: Value, version: str, ttl: float | None
    ) -> bool:
        entry = self._live(collection, key)
        if entry is None or str(entry[2]) != version:
            return False
        self._store(collection, key, value, ttl)
        return True

    async def _delete_if_version(self, collection: str, key: str, version: str) -> bool:
        entry = self._live(collection, key)
        if entry is None or str(entry[2]) != version:
            return False
        return self._evict(collection, key)

    async def _keys(self, collection: str, limit: int | None) -> list[str]:
        self._reclaim(monotonic())
        keys = list(self._data.get(collection, ()))
        return keys if limit is None else keys[:limit]

    async def _collections(self, limit: int | None) -> list[str]:
        self._reclaim(monotonic())
        names = list(self._data)
        return names if limit is None else names[:limit]

    async def _destroy_collection(self, collection: str) -> bool:
        self._reclaim(monotonic())
        bucket = self._data.get(collection)
        if not bucket:
            return False
        for key in list(bucket):
            self._evict(collection, key)
        return True

    async def _cull(self) -> None:
        self._reclaim(monotonic())
        self._rebuild_expiries()

    def _rebuild_expiries(self) -> None:
        # Rewriting a TTL'd key leaves its old expiry in the heap; drop those so the heap
        # stays proportional to the live entries however often keys are rewritten.
        live = [(e[1], c, k) for c, b in self._data.items() for k, e in b.items() if e[1] is not None]
        heapq.heapify(live)
        self._expiries = live

    async def _close(self) -> None:
        self._data.clear()
        self._expiries.clear()
        self._size = 0
