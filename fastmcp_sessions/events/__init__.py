"""Event stores for resumable streams, native to each backend: ``event_store(store)``.

``mcp.http_app(event_store=event_store(store))`` stores every streamed message with one
round trip and replays a stream with one more, shared by every replica on the backend.
See docs/events.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mcp.server.streamable_http import EventStore

from fastmcp_sessions.encryption import Keyring
from fastmcp_sessions.events.base import NativeEventStore, stream_key
from fastmcp_sessions.stores._layers import layer_of, layers
from fastmcp_sessions.stores.base import Store
from fastmcp_sessions.stores.encrypted import EncryptedStore
from fastmcp_sessions.stores.namespaced import NamespacedStore

__all__ = ["NativeEventStore", "event_store", "stream_key"]


class _Layout:
    """What the wrapper chain of a store says: its backend, namespace and keyring."""

    def __init__(self, store: Store) -> None:
        chain = list(layers(store))
        views = [[layer.namespace, layer.scope] for layer in chain if isinstance(layer, NamespacedStore)]
        encrypted = layer_of(store, EncryptedStore)
        self.keyring: Keyring | None = encrypted.keyring if encrypted is not None else None
        self.backend = chain[-1]
        # Innermost view first: the same views in the same order give the same namespace.
        self.namespace = json.dumps(views[::-1]) if views else ""


def _memory(layout: _Layout, options: dict[str, Any]) -> EventStore | None:
    from fastmcp_sessions.stores.memory import MemoryStore

    if not isinstance(layout.backend, MemoryStore):
        return None
    from fastmcp_sessions.events.memory import MemoryEventStore

    return MemoryEventStore(layout.backend, namespace=layout.namespace, keyring=layout.keyring, **options)


def _redis(layout: _Layout, options: dict[str, Any]) -> EventStore | None:
    from fastmcp_sessions.stores.redis import RedisStore

    if not isinstance(layout.backend, RedisStore):
        return None
    from fastmcp_sessions.events.redis import RedisEventStore

    backend = layout.backend
    return RedisEventStore(
        backend.client,
        run=backend.eval_script,
        prefix=backend.namespace,
        namespace=layout.namespace,
        keyring=layout.keyring,
        **options,
    )


def _postgresql(layout: _Layout, options: dict[str, Any]) -> EventStore | None:
    from fastmcp_sessions.stores.postgresql import PostgreSQLStore

    if not isinstance(layout.backend, PostgreSQLStore):
        return None
    from fastmcp_sessions.events.postgresql import PostgreSQLEventStore, events_table

    backend = layout.backend

    async def pool() -> Any:
        # The store makes its pool on first use; schema_version() does only that.
        if backend.pool is None:
            await backend.schema_version()
        return backend.pool

    return PostgreSQLEventStore(
        backend.pool or pool,
        schema=backend.schema,
        table=events_table(backend.table),
        errors=type(backend).driver_errors,
        namespace=layout.namespace,
        keyring=layout.keyring,
        **options,
    )


def _disk(layout: _Layout, options: dict[str, Any]) -> EventStore | None:
    from fastmcp_sessions.stores.disk import DiskStore

    if not isinstance(layout.backend, DiskStore):
        return None
    from fastmcp_sessions.events.disk import DiskEventStore, events_path

    backend = layout.backend

    async def keyring() -> Keyring | None:
        if layout.keyring is not None:
            return layout.keyring
        if not backend.encryption:
            return None
        if backend.keyring is None:
            # The disk store loads its keys when it opens, which its first read does.
            await backend.get("keyring", collection="fastmcp_sessions_events")
        return backend.keyring

    return DiskEventStore(events_path(backend.path), keyring=keyring, namespace=layout.namespace, **options)


def _mongodb(layout: _Layout, options: dict[str, Any]) -> EventStore | None:
    from fastmcp_sessions.stores.mongodb import MongoDBStore

    if not isinstance(layout.backend, MongoDBStore):
        return None
    from fastmcp_sessions.events.mongodb import MongoDBEventStore

    backend = layout.backend
    collection = backend.client.get_database(backend.database).get_collection(
        f"{backend.collection_name}_events"
    )
    return MongoDBEventStore(collection, namespace=layout.namespace, keyring=layout.keyring, **options)


def _dynamodb(layout: _Layout, options: dict[str, Any]) -> EventStore | None:
    from fastmcp_sessions.stores.dynamodb import DynamoDBStore

    if not isinstance(layout.backend, DynamoDBStore):
        return None
    from fastmcp_sessions.events.dynamodb import DynamoDBEventStore

    backend = layout.backend
    return DynamoDBEventStore(
        backend.open_client,
        table=backend.table,
        namespace=layout.namespace,
        keyring=layout.keyring,
        **options,
    )


_FACTORIES: list[Callable[[_Layout, dict[str, Any]], EventStore | None]] = [
    _memory,
    _redis,
    _postgresql,
    _disk,
    _mongodb,
    _dynamodb,
]


def event_store(store: Store, *, max_events_per_stream: int = 100, ttl: float | None = 3600) -> EventStore:
    """The MCP ``EventStore`` for resumable streams built for ``store``'s backend.

    Memory, Redis (standalone, Cluster, Sentinel), PostgreSQL, disk (SQLite), MongoDB and
    DynamoDB get a native event store: one round trip per event stored, one per replay,
    appends from every process kept, events encrypted when ``store`` is (an
    ``EncryptedStore`` anywhere in its chain, or the encrypted disk store), and stale
    streams reclaimed by TTL and trimming with no sweeper. Namespaced views keep their
    streams apart. Any other store gets FastMCP's ``EventStore(storage=store)``.

    Args:
        store: Any fastmcp-sessions store (views and encryption wrappers are looked through).
        max_events_per_stream: Events kept per stream (at least; trimming is batched).
        ttl: Seconds a stream is kept after its newest event (``None``: until trimmed).
    """
    layout = _Layout(store)
    options: dict[str, Any] = {"max_events_per_stream": max_events_per_stream, "ttl": ttl}
    for factory in _FACTORIES:
        found = factory(layout, options)
        if found is not None:
            return found
    from fastmcp.server.event_store import EventStore as KeyValueEventStore

    return KeyValueEventStore(
        storage=store,
        max_events_per_stream=max_events_per_stream,
        ttl=None if ttl is None else max(1, round(ttl)),
    )
