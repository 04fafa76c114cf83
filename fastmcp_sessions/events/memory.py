"""Events in process memory: one bounded deque per stream, streams in expiry order."""

from __future__ import annotations

import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import Any, Unpack

from fastmcp_sessions.encryption import Keyring
from fastmcp_sessions.events.base import EventStoreOptions, NativeEventStore, Row

__all__ = ["MemoryEventStore"]


class _Stream:
    __slots__ = ("expires", "next_seq", "rows")

    def __init__(self, size: int) -> None:
        self.rows: deque[Row] = deque(maxlen=size)
        self.next_seq = 1
        self.expires = 0.0


class _Streams:
    """Every stream of one namespace; a stream moves to the end on each append, so the
    expired ones are always at the front and are dropped there, with no sweeper."""

    def __init__(self) -> None:
        self.streams: OrderedDict[str, _Stream] = OrderedDict()


# Event stores built over the same memory store (and namespace) share their streams, as
# event stores over one server do.
_SHARED: weakref.WeakKeyDictionary[Any, dict[str, _Streams]] = weakref.WeakKeyDictionary()


class MemoryEventStore(NativeEventStore):
    """Events of one process, in memory (for the memory store, or standing alone).

    Args:
        owner: The store the events belong with; event stores over the same owner and
            namespace see the same streams. ``None``: streams private to this instance.
        keyring, namespace, max_events_per_stream, ttl: See ``NativeEventStore``.
    """

    backend = "memory"

    def __init__(
        self,
        owner: object | None = None,
        *,
        keyring: Keyring | None = None,
        **options: Unpack[EventStoreOptions],
    ) -> None:
        super().__init__(keyring=keyring, **options)
        if owner is None:
            self._streams = _Streams()
        else:
            self._streams = _SHARED.setdefault(owner, {}).setdefault(self.namespace, _Streams())

    def _drop_expired(self, now: float) -> None:
        streams = self._streams.streams
        while streams:
            first = next(iter(streams.values()))
            if first.expires > now:
                return
            streams.popitem(last=False)

    async def _append(self, key: str, tag: str, data: bytes) -> str:
        now = time.monotonic()
        if self.ttl is not None:
            self._drop_expired(now)
        streams = self._streams.streams
        stream = streams.get(key)
        if stream is None:
            stream = streams[key] = _Stream(self.max_events_per_stream)
        else:
            streams.move_to_end(key)
        seq = str(stream.next_seq)
        stream.next_seq += 1
        stream.rows.append(Row(seq, tag, data))
        stream.expires = float("inf") if self.ttl is None else now + self.ttl
        return seq

    async def _read_from(self, key: str, seq: str) -> Sequence[Row]:
        stream = self._streams.streams.get(key)
        if stream is None or stream.expires <= time.monotonic() or not stream.rows:
            return []
        # Positions are consecutive within the deque, so the first wanted row is found by arithmetic.
        start = int(seq) - int(stream.rows[0].seq)
        if start < 0 or start >= len(stream.rows):
            return []
        return list(stream.rows)[start:]
