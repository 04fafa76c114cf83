"""The Redis bus: a stream per server name (``XADD ... MAXLEN ~``, ``XREAD BLOCK`` after the
last id delivered), or, with ``durable=False``, pub/sub (sharded on a Cluster)."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from typing import Any

from fastmcp_sessions.buses import _options
from fastmcp_sessions.buses.base import DEFAULT_MAX_BUFFERED_EVENTS, DEFAULT_MAX_OUTBOX, QueuedBus
from fastmcp_sessions.errors import StoreOptionError
from fastmcp_sessions.layout import part_prefix, server_prefix

try:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster
    from redis.exceptions import ResponseError

    from fastmcp_sessions.stores.redis import _seam

    _HAVE_REDIS = True
except ImportError:  # importable without redis-py; constructing the bus says what to install
    _HAVE_REDIS = False

__all__ = ["DEFAULT_CHANNEL_NAMESPACE", "DEFAULT_MAX_STREAM_LENGTH", "RedisBus"]

DEFAULT_CHANNEL_NAMESPACE = "fastmcp-sessions"
"""Channel prefix when none is given (the Redis store's default key namespace)."""


DEFAULT_MAX_STREAM_LENGTH = 10_000
"""Events a server name's stream keeps (about: ``MAXLEN ~`` trims whole nodes)."""

_READ_COUNT = 500  # entries per XREAD; a full batch means the listener is behind


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _id(value: Any) -> tuple[int, int]:
    ms, _, seq = _text(value).partition("-")
    return int(ms), int(seq or 0)


def _pairs(reply: Any) -> dict[str, Any]:
    """A RESP3 map or a RESP2 flat list of field/value pairs, as a dict of str keys."""
    if isinstance(reply, dict):
        return {_text(k): v for k, v in reply.items()}
    items = list(reply or [])
    return {_text(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)}


def _entries(reply: Any) -> list[tuple[Any, Any]]:
    """``(id, payload)`` of the entries in an XREAD reply of one stream (RESP2 or RESP3)."""
    if not reply:
        return []
    streams = list(reply.values()) if isinstance(reply, dict) else [item[1] for item in reply]
    found = []
    for entries in streams:
        for entry_id, fields in entries:
            found.append((entry_id, _pairs(fields).get("e")))
    return found


class RedisBus(QueuedBus):
    """A bus over Redis, shared by every replica that uses one Redis (or Cluster).

    Events go to one stream per server name, ``<namespace>:fastmcp/<server_name>/stream``
    (one key, so one hash slot on a Cluster), added with ``XADD ... MAXLEN ~
    max_stream_length``. Each process reads it with ``XREAD BLOCK`` on one dedicated
    connection, always after the id of the last entry it delivered, so a dropped connection
    or a restarted server (with its data: AOF or RDB) costs latency, never an event. When
    more was missed than the stream keeps (trimmed, or the server came back empty), the
    three list-changed events are delivered instead, logged and counted in
    ``stats.missed``.

    With ``durable=False`` it uses pub/sub instead (``SPUBLISH``/``SSUBSCRIBE`` on a
    Cluster) on the channel ``<namespace>:<db>:fastmcp/<server_name>/events``: nothing is
    stored, and after any gap the list-changed events are delivered.

    The dedicated connection is made from the client's own connection settings, outside its
    pool, and opened again by itself after any error; an idle one is checked every
    ``health_interval`` seconds, so a half-open one is noticed too.

    Args:
        client: A ``redis.asyncio.Redis`` or ``RedisCluster`` (RESP2 or RESP3), for
            instance ``RedisStore.client``. The bus does not close it.
        server_name: Scopes the channel.
        namespace: Channel prefix; use the Redis store's ``namespace`` so that apps with
            different namespaces on one Redis stay apart.
        health_interval: Idle seconds before the subscriber connection is pinged.
        durable: Streams (default) or pub/sub.
        max_stream_length: Events kept per server name (about), bounding the gap a
            listener can be away without missing any.
        max_buffered_events, max_outbox, timeout: See ``Bus`` and ``QueuedBus``.
    """

    messaging_system = "redis"

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        server_name: str,
        namespace: str = DEFAULT_CHANNEL_NAMESPACE,
        health_interval: float = 3.0,
        durable: bool = True,
        max_stream_length: int = DEFAULT_MAX_STREAM_LENGTH,
        max_buffered_events: int = DEFAULT_MAX_BUFFERED_EVENTS,
        max_outbox: int = DEFAULT_MAX_OUTBOX,
        timeout: float = 5.0,
    ) -> None:
        if not _HAVE_REDIS:
            raise ImportError("RedisBus needs redis-py: pip install 'fastmcp-sessions[redis]'")
        super().__init__(
            server_name=server_name,
            max_buffered_events=max_buffered_events,
            max_outbox=max_outbox,
            timeout=timeout,
        )
        if not isinstance(client, Redis | RedisCluster):
            raise TypeError(
                "client must be a redis.asyncio.Redis or redis.asyncio.cluster.RedisCluster, "
                f"got {type(client).__name__}"
            )
        _options.text("namespace", namespace, accepted="a non-empty str")
        _options.seconds("health_interval", health_interval)
        self.client = client
        self.cluster = isinstance(client, RedisCluster)
        db = int(_seam.connection_settings(client).get("db") or 0) if isinstance(client, Redis) else 0
        if (
            isinstance(max_stream_length, bool)
            or not isinstance(max_stream_length, int)
            or max_stream_length < 1
        ):
            raise StoreOptionError(f"max_stream_length must be a positive int, got {max_stream_length!r}")
        self.channel = f"{namespace}:{db}:{part_prefix(server_name, 'events')}"
        self.stream = f"{namespace}:{server_prefix(server_name)}/stream"
        self.durable = self.replays = bool(durable)
        self.max_stream_length = max_stream_length
        self.health_interval = float(health_interval)
        self._cluster_ready = False
        self._last_id: str | None = None  # of the last stream entry delivered
        self._conn: Any = None  # the dedicated connection while one is open
        self.owned_store: Any = None
        """A store opened for this bus alone (``bus_for_url``), closed with it."""

    def __repr__(self) -> str:
        kind = "cluster" if self.cluster else "server"
        where = f"stream={self.stream!r}" if self.durable else f"channel={self.channel!r}"
        return f"RedisBus({kind}, {where}, listeners={self.listener_count})"

    def _describe(self) -> str:
        return f"RedisBus:{self.server_name}"

    async def _cluster_node(self, refresh: bool = False) -> Any:
        assert isinstance(self.client, RedisCluster)
        if not self._cluster_ready:
            await self.client.initialize()
            self._cluster_ready = True
        elif refresh:
            await _seam.reload_slots(self.client)
        key = self.stream if self.durable else self.channel
        node = self.client.get_node_from_key(key)
        if node is None:
            raise ConnectionError(f"no cluster node owns the slot of {key!r}")
        return node

    async def _send_batch(self, payloads: list[bytes]) -> None:
        if self.durable:
            if self.cluster:
                await self._cluster_node()
            pipe = self.client.pipeline(transaction=False)
            for payload in payloads:
                pipe.xadd(self.stream, {"e": payload}, maxlen=self.max_stream_length, approximate=True)
            await pipe.execute()
            return
        if self.cluster:
            assert isinstance(self.client, RedisCluster)
            node = await self._cluster_node()
            for payload in payloads:
                await self.client.execute_command("SPUBLISH", self.channel, payload, target_nodes=node)
            return
        assert isinstance(self.client, Redis)
        pipe = self.client.pipeline(transaction=False)
        for payload in payloads:
            pipe.publish(self.channel, payload)
        await pipe.execute()

    async def _connection(self) -> Any:
        """A new connection of the bus's own, to the server (or node) that holds its key."""
        if self.cluster:
            node = await self._cluster_node(refresh=self.stats.reconnects > 0 or self._ever_subscribed)
            return _seam.node_connection_factory(node)()
        assert isinstance(self.client, Redis)
        return _seam.pool_connection_factory(self.client)()

    async def _listen(self, on_message: Callable[[bytes], None], on_ready: Callable[[], None]) -> None:
        conn = self._conn = await self._connection()
        try:
            await conn.connect()
            if self.durable:
                await self._read_stream(conn, on_message, on_ready)
            else:
                await self._read_channel(conn, on_message, on_ready)
        finally:
            self._conn = None
            with contextlib.suppress(Exception):
                await conn.disconnect()

    async def _close_backend(self) -> None:
        store, self.owned_store = self.owned_store, None
        if store is not None:
            await store.close()

    async def _interrupt(self) -> None:
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)

    async def _command(self, conn: Any, *args: Any, reply_within: float | None = None) -> Any:
        # Bounded here, not by redis-py's read timeout: that one answers None when it expires
        # (indistinguishable from XREAD's nil) and can leave a cancelled task reading on.
        await conn.send_command(*args)
        return await asyncio.wait_for(
            conn.read_response(timeout=math.inf), self.timeout if reply_within is None else reply_within
        )

    async def _read_stream(
        self, conn: Any, on_message: Callable[[bytes], None], on_ready: Callable[[], None]
    ) -> None:
        if self._last_id is None:
            newest = await self._command(conn, "XREVRANGE", self.stream, "+", "-", "COUNT", 1)
            self._last_id = _text(newest[0][0]) if newest else "0-0"
        else:
            await self._check_gap(conn)
        on_ready()
        block_ms = int(self.health_interval * 1000)
        behind = False
        while True:
            if behind:
                await self._check_gap(conn)
            reply = await self._command(
                conn,
                *("XREAD", "COUNT", _READ_COUNT, "BLOCK", block_ms, "STREAMS", self.stream, self._last_id),
                reply_within=self.health_interval + self.timeout,
            )
            entries = _entries(reply)
            for entry_id, payload in entries:
                self._last_id = _text(entry_id)
                if isinstance(payload, bytes | str):
                    on_message(payload if isinstance(payload, bytes) else payload.encode("utf-8"))
                else:
                    on_message(b"")  # counted as malformed
            behind = len(entries) >= _READ_COUNT or not entries  # idle: a cheap check, too

    async def _check_gap(self, conn: Any) -> None:
        """Whether entries after the last one delivered are gone: trimmed, or the server lost them."""
        assert self._last_id is not None
        try:
            info = _pairs(await self._command(conn, "XINFO", "STREAM", self.stream))
        except ResponseError:  # no such key
            if self._last_id != "0-0":
                self._missed_events(f"stream {self.stream!r} is gone (the server came back without its data)")
                self._last_id = "0-0"
            return
        if _id(info.get("last-generated-id", "0-0")) < _id(self._last_id):
            self._missed_events(f"stream {self.stream!r} restarted behind the last event delivered")
            self._last_id = "0-0"
        elif _id(self._last_id) < _id(info.get("max-deleted-entry-id") or "0-0"):
            self._missed_events(f"stream {self.stream!r} was trimmed past the last event delivered")
            self._last_id = _text(info["max-deleted-entry-id"])

    async def _read_channel(
        self, conn: Any, on_message: Callable[[bytes], None], on_ready: Callable[[], None]
    ) -> None:
        if self.cluster:
            command, confirm, message = "SSUBSCRIBE", "ssubscribe", "smessage"
        else:
            command, confirm, message = "SUBSCRIBE", "subscribe", "message"
        await conn.send_command(command, self.channel)
        ping_sent = False
        while True:
            # push_request: on RESP3 (redis-py 8's default) pub/sub messages are push frames.
            reply = await conn.read_response(timeout=self.health_interval, push_request=True)
            if reply is None:  # idle for health_interval
                if ping_sent:
                    raise ConnectionError(f"no reply to PING within {self.health_interval:g}s")
                await conn.send_command("PING")
                ping_sent = True
                continue
            ping_sent = False
            if not isinstance(reply, list) or not reply:
                continue
            kind = _text(reply[0]).lower()
            if kind == message and len(reply) >= 3:
                data = reply[2]
                on_message(data if isinstance(data, bytes) else str(data).encode("utf-8"))
            elif kind == confirm:
                on_ready()
            elif kind in ("unsubscribe", "sunsubscribe"):
                # The server dropped us: on a Cluster the channel's slot moved to another node.
                raise ConnectionError(f"the server ended the subscription to {self.channel!r}")
