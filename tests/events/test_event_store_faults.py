"""The native event stores when things go wrong or differ: a stopped server is a typed
``StoreConnectionError`` (and the store works again once the server is back), Redis
Sentinel works through the store's own client, and the disk store's events file is private."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from mcp.server.streamable_http import EventMessage
from mcp_types import JSONRPCNotification

from fastmcp_sessions import DiskStore, Keyring, open_store
from fastmcp_sessions.errors import StoreConnectionError
from fastmcp_sessions.events import NativeEventStore, event_store
from fastmcp_sessions.events.disk import DiskEventStore
from tests._support.servers import RedisSentinelGroup, RedisServer
from tests._support.servers_postgresql import PostgresServer

NOTE = JSONRPCNotification(jsonrpc="2.0", method="notifications/message", params={"data": "x"})


async def _replayed(events: NativeEventStore, event_id: str) -> tuple[str | None, int]:
    got: list[EventMessage] = []

    async def send(event: EventMessage) -> None:
        got.append(event)

    return await events.replay_events_after(event_id, send), len(got)


async def _outage(events: NativeEventStore, down: object, up: object) -> None:
    first = await events.store_event("s", None)
    await events.store_event("s", NOTE)
    down()  # type: ignore[operator]
    with pytest.raises(StoreConnectionError) as stored:
        await events.store_event("s", NOTE)
    with pytest.raises(StoreConnectionError):
        await events.replay_events_after(first, _ignore)
    assert "retry" in str(stored.value).lower() or "running" in str(stored.value).lower(), stored.value
    up()  # type: ignore[operator]
    # The test servers come back empty: the event store sets itself up again.
    again = await events.store_event("s", None)
    await events.store_event("s", NOTE)
    assert await _replayed(events, again) == ("s", 1)


async def _ignore(event: EventMessage) -> None:
    return None


async def test_a_stopped_redis_is_a_typed_error_and_the_store_recovers() -> None:
    with RedisServer() as redis:
        store = open_store(redis.url + "?timeout=1")
        events = event_store(store)
        assert isinstance(events, NativeEventStore)
        try:
            await _outage(events, redis.stop, redis.start)
        finally:
            await store.close()


async def test_a_stopped_postgresql_is_a_typed_error_and_the_store_recovers() -> None:
    with PostgresServer() as server:
        store = open_store(server.url + "?timeout=2")
        events = event_store(store)
        assert isinstance(events, NativeEventStore)
        try:
            await _outage(events, server.stop, server.start)
        finally:
            await store.close()


async def test_sentinel_works_through_the_stores_client() -> None:
    with RedisSentinelGroup(replicas=1, sentinels=1) as group:
        store = open_store(group.url + "?namespace=ev")
        events = event_store(store)
        assert isinstance(events, NativeEventStore)
        try:
            first = await events.store_event("s", None)
            for _ in range(3):
                await events.store_event("s", NOTE)
            assert await _replayed(events, first) == ("s", 3)
        finally:
            await store.close()


async def test_the_disk_events_file_is_private_and_encrypted_with_the_stores_keyring(tmp_path: Path) -> None:
    key = Keyring.generate_key()
    store = DiskStore(tmp_path / "data" / "store.sqlite3", keys=[key])
    events = event_store(store)
    assert isinstance(events, DiskEventStore)
    try:
        await events.store_event("s", NOTE)
        assert events.path == tmp_path / "data" / "store.events.sqlite3"
        assert stat.S_IMODE(os.stat(events.path).st_mode) == 0o600
        assert events.keyring is not None and events.keyring.fingerprints == store.keyring.fingerprints  # type: ignore[union-attr]
    finally:
        await events.close()
        await store.close()
