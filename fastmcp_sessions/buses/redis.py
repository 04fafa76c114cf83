"""The Redis bus: pub/sub on one server, sharded pub/sub (SPUBLISH/SSUBSCRIBE) on a Cluster."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from fastmcp_sessions.buses.base import DEFAULT_MAX_BUFFERED_EVENTS, DEFAULT_MAX_OUTBOX, QueuedBus
from fastmcp_sessions.layout import part_prefix

try:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

    from fastmcp_sessions.stores.redis import _seam

    _HAVE_REDIS = True
except ImportError:  # importable without redis-py; constructing the bus says what to install
    _HAVE_REDIS = False

__all__ = ["DEFAULT_CHANNEL_NAMESPACE", "RedisBus"]

DEFAULT_CHANNEL_NAMESPACE = "fastmcp-sessions"
"""Channel prefix when none is given (the Redis store's default key namespace)."""


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class RedisBus(QueuedBus):
    """A bus over Redis pub/sub, shared by every replica that uses one Redis (or Cluster).

    Events go to one channel per server, ``<namespace>:<db>:fastmcp/<server_name>/events``
    (pub/sub ignores database numbers, so the number is part of the name). On a Cluster the
    channel is a sharded one: ``SPUBLISH``/``SSUBSCRIBE`` on the node that owns its slot,
    so events never travel the cluster bus to every node.

    Each process holds one dedicated subscriber connection (made from the client's own
    connection settings, outside its pool) and publishes through the client's pool. The
    subscription is opened again by itself after any error, such as a restarted server; an
    idle connection is checked with ``PING`` every ``health_interval`` seconds, so a
    half-open one is noticed too.

    Args:
        client: A ``redis.asyncio.Redis`` or ``RedisCluster`` (RESP2 or RESP3), for
            instance ``RedisStore.client``. The bus does not close it.
        server_name: Scopes the channel.
        namespace: Channel prefix; use the Redis store's ``namespace`` so that apps with
            different namespaces on one Redis stay apart.
        health_interval: Idle seconds before the subscriber connection is pinged.
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
        if not isinstance(namespace, str) or not namespace:
            raise ValueError(f"namespace must be a non-empty str, got {namespace!r}")
        if not health_interval > 0:
            raise ValueError(f"health_interval must be a positive number of seconds, got {health_interval!r}")
        self.client = client
        self.cluster = isinstance(client, RedisCluster)
        db = int(_seam.connection_settings(client).get("db") or 0) if isinstance(client, Redis) else 0
        self.channel = f"{namespace}:{db}:{part_prefix(server_name, 'events')}"
        self.health_interval = float(health_interval)
        self._cluster_ready = False

    def __repr__(self) -> str:
        kind = "cluster" if self.cluster else "server"
        return f"RedisBus({kind}, channel={self.channel!r}, listeners={self.listener_count})"

    def _describe(self) -> str:
        return f"RedisBus:{self.server_name}"

    async def _cluster_node(self, refresh: bool = False) -> Any:
        assert isinstance(self.client, RedisCluster)
        if not self._cluster_ready:
            await self.client.initialize()
            self._cluster_ready = True
        elif refresh:
            await _seam.reload_slots(self.client)
        node = self.client.get_node_from_key(self.channel)
        if node is None:
            raise ConnectionError(f"no cluster node owns the slot of {self.channel!r}")
        return node

    async def _send_batch(self, payloads: list[bytes]) -> None:
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

    async def _listen(self, on_message: Callable[[bytes], None], on_ready: Callable[[], None]) -> None:
        if self.cluster:
            node = await self._cluster_node(refresh=self.stats.reconnects > 0 or self._ever_subscribed)
            conn = _seam.node_connection_factory(node)()
            command, confirm, message = "SSUBSCRIBE", "ssubscribe", "smessage"
        else:
            assert isinstance(self.client, Redis)
            conn = _seam.pool_connection_factory(self.client)()
            command, confirm, message = "SUBSCRIBE", "subscribe", "message"
        try:
            await conn.connect()
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
        finally:
            with contextlib.suppress(Exception):
                await conn.disconnect()
