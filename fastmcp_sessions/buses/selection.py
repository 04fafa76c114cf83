"""Which bus goes with which store: ``bus_for_store`` looks through wrappers to the backend.

One entry per backend family, tried in order; the first that claims the store builds its
bus from what the store shares publicly (the Redis client, the disk file's path). A new
backend adds a module beside ``redis.py`` and one entry to ``_FACTORIES``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastmcp_sessions.buses.base import Bus
from fastmcp_sessions.errors import StoreOptionError
from fastmcp_sessions.stores._layers import backend_of
from fastmcp_sessions.stores.base import Store

__all__ = ["bus_for_store", "bus_for_url", "shares_notifications"]

logger = logging.getLogger("fastmcp_sessions")


def _redis(store: Store, server_name: str, options: dict[str, Any]) -> Bus | None:
    from fastmcp_sessions.stores.redis import RedisStore

    if not isinstance(store, RedisStore):
        return None
    from fastmcp_sessions.buses.redis import RedisBus

    return RedisBus(store.client, server_name=server_name, namespace=store.namespace, **options)


def _postgresql(store: Store, server_name: str, options: dict[str, Any]) -> Bus | None:
    from fastmcp_sessions.stores.postgresql import PostgreSQLStore

    if not isinstance(store, PostgreSQLStore):
        return None
    from fastmcp_sessions.buses.postgresql import PostgreSQLBus

    return PostgreSQLBus.for_store(store, server_name=server_name, **options)


def _disk(store: Store, server_name: str, options: dict[str, Any]) -> Bus | None:
    from fastmcp_sessions.stores.disk import DiskStore

    if not isinstance(store, DiskStore):
        return None
    from fastmcp_sessions.buses.unix import HAVE_UNIX_SOCKETS, UnixSocketBus

    if not HAVE_UNIX_SOCKETS:
        return None
    # The options every bus shares and the journal's own; another backend's are not for it.
    options = {k: v for k, v in options.items() if k in _UNIX_OPTIONS}
    return UnixSocketBus.for_store(store, server_name=server_name, **options)


_UNIX_OPTIONS = frozenset(
    {
        "max_buffered_events",
        "max_outbox",
        "timeout",
        "poll_interval",
        "retain_seconds",
        "retain_events",
        "prune_interval",
    }
)

_FACTORIES: list[Callable[[Store, str, dict[str, Any]], Bus | None]] = [_redis, _postgresql, _disk]


def bus_for_store(store: Store, *, server_name: str, **options: Any) -> Bus:
    """The bus that reaches every process sharing ``store``: a stream for Redis, an events
    table for PostgreSQL, a journal beside the disk store woken through Unix sockets, else
    (memory, MongoDB, DynamoDB) the in-process ``MemoryBus`` - notifications then reach only
    clients of the publishing process, which is logged once (pair such a store with
    ``bus_for_url``).

    ``options`` go to the bus (``max_buffered_events``; ``max_outbox``, ``timeout`` and
    the backend's own, such as ``max_stream_length`` or ``retain_events``).
    """
    backend = backend_of(store)
    for factory in _FACTORIES:
        bus = factory(backend, server_name, dict(options))
        if bus is not None:
            return bus
    from fastmcp_sessions.buses.memory import MemoryBus

    kind = type(backend).__name__
    if kind not in _WARNED:
        _WARNED.add(kind)
        logger.warning(
            "%s has no bus across processes: change notifications stay within each process; "
            "pass bus_url='redis://...' or 'postgresql://...' to server_storage to share them",
            kind,
        )
    return MemoryBus(server_name=server_name, max_buffered_events=options.get("max_buffered_events", 1024))


_WARNED: set[str] = set()
_CROSS_PROCESS = ("RedisStore", "PostgreSQLStore", "DiskStore")


def shares_notifications(store_class: type[Store]) -> bool:
    """Whether ``bus_for_store`` gives stores of ``store_class`` a bus across processes."""
    return any(klass.__name__ in _CROSS_PROCESS for klass in store_class.__mro__)


def bus_for_url(url: str, *, server_name: str, **options: Any) -> Bus:
    """A bus across processes on its own backend, for any store: ``redis://`` (and
    ``rediss://``, ``redis+cluster://``, ``redis+sentinel://``) or ``postgresql://``.
    The bus opens its own connections and closes them with ``close()``."""
    if not isinstance(url, str):
        raise TypeError(f"bus_url must be a str URL, got {type(url).__name__}")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("postgresql", "postgres"):
        from fastmcp_sessions.buses.postgresql import PostgreSQLBus

        return PostgreSQLBus(url, server_name=server_name, **options)
    if scheme.startswith(("redis", "rediss")):
        from fastmcp_sessions.buses.redis import RedisBus
        from fastmcp_sessions.stores.redis import RedisStore

        backend = RedisStore.from_url(url)
        bus = RedisBus(backend.client, server_name=server_name, namespace=backend.namespace, **options)
        bus.owned_store = backend
        return bus
    raise StoreOptionError(
        "bus_url must be a redis://, rediss://, redis+cluster://, redis+sentinel:// or postgresql:// URL"
    )
