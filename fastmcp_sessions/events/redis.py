"""Events in Redis: a Redis stream per MCP stream, through the Redis store's own client.

Each entry has one field, ``e``: the event's tag (22 characters) followed by its payload.

``store_event`` is one ``EVALSHA`` (``XADD … MAXLEN ~ n`` and ``PEXPIRE`` together, so a
stream never outlives its TTL without its newest event), replay one ``XRANGE`` from the
given entry (inside a script, so the reply comes back flat). Both scripts are ``.lua``
files beside the Redis store's own (``stores/redis/scripts/event_*.lua``). Each MCP stream is a single
key, so on a Cluster it lives in one slot; under Sentinel the client follows the master.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Unpack

from redis.exceptions import RedisError

from fastmcp_sessions.encryption import Keyring
from fastmcp_sessions.events.base import EventStoreOptions, NativeEventStore, Row, raw, text, unreachable
from fastmcp_sessions.stores.redis.scripts import EVENT_APPEND, EVENT_READ

__all__ = ["RedisEventStore"]

# Read once at import from the Redis store's scripts/ folder, like the store's own scripts.
_APPEND = EVENT_APPEND.source
_READ = EVENT_READ.source
_ENTRY_ID = re.compile(r"\d{1,20}-\d{1,20}")


class RedisEventStore(NativeEventStore):
    """Events of every replica sharing one Redis (standalone, Cluster or Sentinel).

    Args:
        client: A ``redis.asyncio.Redis`` or ``RedisCluster`` (``RedisStore.client``);
            not closed by the event store.
        run: Runs a script as ``RedisStore.eval_script`` does (``(source, keys, args)``);
            given, scripts go over the store's own pipelined connections instead of
            ``client``'s pool (about twice as fast), and fail with its typed errors.
        prefix: Key prefix (the Redis store's ``namespace``); stream keys are
            ``<prefix>:events:{<stream key>}``.
        keyring, namespace, max_events_per_stream, ttl: See ``NativeEventStore``.
    """

    backend = "redis"

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "fastmcp-sessions",
        run: Callable[[str, Sequence[str], Sequence[Any]], Awaitable[Any]] | None = None,
        keyring: Keyring | None = None,
        **options: Unpack[EventStoreOptions],
    ) -> None:
        super().__init__(keyring=keyring, **options)
        self.client = client
        self.prefix = prefix
        if run is None:
            append, read = client.register_script(_APPEND), client.register_script(_READ)

            async def run(source: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
                return await (append if source is _APPEND else read)(keys=keys, args=args)

        self._run = run
        self._maxlen = str(self.max_events_per_stream)
        self._pexpire = "0" if self.ttl is None else str(max(1, round(self.ttl * 1000)))

    def redis_key(self, key: str) -> str:
        """The Redis key of the stream whose stream key is ``key``."""
        return f"{self.prefix}:events:{{{key}}}"

    def _valid_seq(self, seq: str) -> bool:
        return _ENTRY_ID.fullmatch(seq) is not None

    async def _append(self, key: str, tag: str, data: bytes) -> str:
        try:
            entry = await self._run(
                _APPEND, [self.redis_key(key)], [self._maxlen, tag.encode() + data, self._pexpire]
            )
        except RedisError as exc:
            raise unreachable(self.backend, exc) from None
        return text(entry)

    async def _read_from(self, key: str, seq: str) -> Sequence[Row]:
        try:
            flat = await self._run(_READ, [self.redis_key(key)], [seq])
        except RedisError as exc:
            raise unreachable(self.backend, exc) from None
        rows = []
        # Each value is the tag (22 characters) then the payload.
        for entry_id, value in zip(flat[::2], flat[1::2], strict=True):
            value = raw(value)
            rows.append(Row(text(entry_id), value[:22].decode("ascii", "replace"), value[22:]))
        return rows
