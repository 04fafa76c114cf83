"""Every use of a redis-py internal, in one place (shapes redis-py does not document).

Auto-pipelining takes over the socket of a connection redis-py made and authenticated,
parses error replies with redis-py's own parser, and routes by Redis Cluster's slot
map; the Redis bus opens its own connections from a client's pool or cluster node.
None of that is redis-py's public API, so each touch point is a small function here,
and ``check()`` looks, once per process, whether the installed redis-py still has the
shapes they rely on. When one is missing it logs one warning naming the redis-py
version and the missing piece, and ``pipelining_available()`` turns false: the store
then sends plain redis-py commands (slower, never wrong). tests/stores/test_redis_seam.py has
one test per function, each naming the seam it guards.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import redis
import redis.client
from redis.asyncio.cluster import ClusterNode, NodesManager
from redis.asyncio.connection import Connection, ConnectionPool
from redis.exceptions import RedisError, ResponseError

logger = logging.getLogger("fastmcp_sessions")

NEVER_DECODE: str | None = getattr(redis.client, "NEVER_DECODE", None)
"""The ``execute_command`` option that makes a reply bytes whatever ``decode_responses``
says (``None`` if redis-py dropped it: the store then decodes str replies itself)."""


def raw_options(**options: Any) -> dict[str, Any]:
    """``execute_command`` options for replies as bytes, plus ``options``."""
    return {NEVER_DECODE: True, **options} if NEVER_DECODE is not None else dict(options)


# -- connections ------------------------------------------------------------------------


def transport_of(connection: Any) -> Any:
    """The asyncio transport under a connected redis-py ``Connection`` (``_writer.transport``)."""
    return connection._writer.transport


def forget_socket(connection: Any) -> None:
    """Tell a redis-py ``Connection`` whose transport we took over that it has no socket
    left, so its own ``disconnect`` or finalizer does not touch ours."""
    connection._writer = connection._reader = None


def pool_connection_factory(client: Any) -> Callable[[], Any]:
    """Makes new, unconnected connections the way ``client``'s pool would (address, TLS,
    credentials, db, client name)."""
    make: Callable[[], Any] = client.connection_pool.make_connection
    return make


def node_connection_factory(node: Any, **overrides: Any) -> Callable[[], Any]:
    """Makes new, unconnected connections to a cluster ``ClusterNode``."""
    kwargs = {**node.connection_kwargs, **overrides}
    connection_class = node.connection_class
    return lambda: connection_class(**kwargs)


def connection_settings(client: Any) -> dict[str, Any]:
    """The keyword arguments of ``client``'s pool (host, port, path, db, ...); empty if unknown."""
    settings = getattr(getattr(client, "connection_pool", None), "connection_kwargs", None)
    return settings if isinstance(settings, dict) else {}


def sentinel_clients(sentinel: Any) -> list[Any]:
    """The ``Redis`` clients a redis-py ``Sentinel`` made for its sentinels (to close them)."""
    return list(getattr(sentinel, "sentinels", ()))


# -- replies ----------------------------------------------------------------------------


def parse_error(text: str) -> RedisError:
    """The redis-py exception for an error reply's text, as redis-py's parser makes it."""
    from redis._parsers.base import BaseParser

    error: RedisError = BaseParser.parse_error(text)  # type: ignore[no-untyped-call]
    return error


# -- Redis Cluster ----------------------------------------------------------------------


def node_for_slot(cluster: Any, slot: int) -> Any:
    """The primary that serves ``slot`` by ``cluster``'s current slot map."""
    return cluster.nodes_manager.get_node_from_slot(slot)


async def reload_slots(cluster: Any) -> None:
    """Reload ``cluster``'s slot map from the nodes now."""
    await cluster.nodes_manager.initialize()


# -- the start-up check -----------------------------------------------------------------


def _check_parse_error() -> None:
    if not isinstance(parse_error("ERR x"), ResponseError):
        raise TypeError("BaseParser.parse_error('ERR x') is not a ResponseError")


def _check_connection() -> None:
    connection = Connection()
    for name in ("_writer", "_reader"):
        if not hasattr(connection, name):
            raise AttributeError(f"Connection has no {name}")
    forget_socket(connection)


def _check_pool() -> None:
    pool = ConnectionPool()
    if not callable(pool.make_connection) or not isinstance(pool.connection_kwargs, dict):
        raise AttributeError("ConnectionPool has no make_connection or connection_kwargs")


def _check_cluster() -> None:
    node = ClusterNode("127.0.0.1", 6379)
    if not isinstance(node.connection_kwargs, dict) or not callable(node.connection_class):
        raise AttributeError("ClusterNode has no connection_kwargs or connection_class")
    for name in ("get_node_from_slot", "initialize"):
        if not callable(getattr(NodesManager, name, None)):
            raise AttributeError(f"NodesManager has no {name}")


SHAPES: dict[str, Callable[[], None]] = {
    "redis._parsers.base.BaseParser.parse_error": _check_parse_error,
    "redis.asyncio.connection.Connection._writer/_reader": _check_connection,
    "redis.asyncio.connection.ConnectionPool.make_connection/connection_kwargs": _check_pool,
    "redis.asyncio.cluster.ClusterNode.connection_kwargs/connection_class, NodesManager": _check_cluster,
}
"""Each shape auto-pipelining relies on, by name, with the check that it is there."""

_missing: tuple[str, ...] | None = None


def check() -> tuple[str, ...]:
    """The shapes missing from the installed redis-py (checked once; one warning if any)."""
    global _missing
    if _missing is None:
        missing = []
        for name, probe in SHAPES.items():
            try:
                probe()
            except Exception as exc:  # any failure means the shape is not what we rely on
                missing.append(f"{name} ({type(exc).__name__}: {exc})")
        _missing = tuple(missing)
        if missing:
            logger.warning(
                "redis-py %s lacks what fastmcp-sessions' auto-pipelining relies on: %s; RedisStore "
                "falls back to plain redis-py commands (correct, but slower). Install a redis-py "
                "version the 'redis' extra of fastmcp-sessions allows",
                getattr(redis, "__version__", "?"),
                "; ".join(missing),
            )
    return _missing


def pipelining_available() -> bool:
    """Whether auto-pipelining can run on the installed redis-py (see ``check``)."""
    return not check()


def forget_check() -> None:
    """Check again at the next ``check()`` (for tests that change redis-py)."""
    global _missing
    _missing = None
