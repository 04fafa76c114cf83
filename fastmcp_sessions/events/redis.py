"""Events in Redis: a Redis stream per MCP stream, through the Redis store's own client.

``store_event`` is one ``EVALSHA`` (``XADD … MAXLEN ~ n`` and ``PEXPIRE`` together, so a
stream never outlives its TTL without its newest event), replay one ``XRANGE`` from the
given entry. Each MCP stream is a single key, so on a Cluster it lives in one slot; under
Sentinel the client follows the master.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisError

from fastmcp_sessions.encryption import Keyring
from fastmcp_sessions.events.base import NativeEventStore, Row, raw, text, unreachable

__all__ = ["RedisEventStore"]

_APPEND = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 't', ARGV[2], 'd', ARGV[3])
if ARGV[4] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return id
"""
_ENTRY_ID = re.compile(r"\d{1,20}-\d{1,20}")


class RedisEventStore(NativeEventStore):
    """Events of every replica sharing one Redis (standalone, Cluster or Sentinel).

    Args:
        client: A ``redis.asyncio.Redis`` or ``RedisCluster`` (``RedisStore.client``);
            not closed by the event store.
        prefix: Key prefix (the Redis store's ``namespace``); stream keys are
            ``<prefix>:events:{<stream key>}``.
        namespace, keyring, max_events_per_stream, ttl: See ``NativeEventStore``.
    """

    backend = "redis"

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "fastmcp-sessions",
        namespace: str = "",
        keyring: Keyring | None = None,
        max_events_per_stream: int = 100,
        ttl: float | None = 3600,
    ) -> None:
        super().__init__(
            namespace=namespace, keyring=keyring, max_events_per_stream=max_events_per_stream, ttl=ttl
        )
        self.client = client
        self.prefix = prefix
        self._script = client.register_script(_APPEND)
        self._maxlen = str(max_events_per_stream)
        self._pexpire = "0" if self.ttl is None else str(max(1, round(self.ttl * 1000)))

    def redis_key(self, key: str) -> str:
        """The Redis key of the stream whose stream key is ``key``."""
        return f"{self.prefix}:events:{{{key}}}"

    def _valid_seq(self, seq: str) -> bool:
        return _ENTRY_ID.fullmatch(seq) is not None

    async def _append(self, key: str, tag: str, data: bytes) -> str:
        try:
            entry = await self._script(
                keys=[self.redis_key(key)], args=[self._maxlen, tag, data, self._pexpire]
            )
        except RedisError as exc:
            raise unreachable(self.backend, exc) from None
        return text(entry)

    async def _read_from(self, key: str, seq: str) -> Sequence[Row]:
        try:
            entries = await self.client.xrange(self.redis_key(key), min=seq, max="+")
        except RedisError as exc:
            raise unreachable(self.backend, exc) from None
        rows = []
        for entry_id, fields in entries:
            values = {text(k): v for k, v in fields.items()}
            if "t" in values and "d" in values:
                rows.append(Row(text(entry_id), text(values["t"]), raw(values["d"])))
        return rows
