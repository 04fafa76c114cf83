"""What each redis-py error means for a user of the store: the typed error and its advice.

The store's ``_translate_error`` and ``_connection_error`` (the hooks of
``Store._call``, stores/base.py) are these two functions.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import (
    AuthenticationError,
    AuthenticationWrongNumberOfArgsError,
    AuthorizationError,
    ClusterDownError,
    InvalidResponse,
    MaxConnectionsError,
    NoPermissionError,
    OutOfMemoryError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError as RedisReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from fastmcp_sessions.errors import (
    BaseKeyValueError,
    DeserializationError,
    KeyValueOperationError,
    StoreConnectionError,
    key_ref,
)


class Unreplicated(RedisConnectionError):
    """WAIT answered that fewer replicas than ``wait_replicas`` have a write."""


class NoFreeConnection(RedisConnectionError):
    """Without pipelining, every connection stayed busy for the whole timeout."""


UNREACHABLE: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    ClusterDownError,
    TryAgainError,
    RedisClusterException,
)
"""redis-py errors that mean the server could not be reached (or not in time)."""

REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, RedisClusterException)
"""Every error redis-py raises: the store's ``driver_errors``."""


_NOTE = "fastmcp_sessions_redis_key"


def note(exc: BaseException, name: Any, single: bool = True) -> None:
    """Remember on ``exc`` which Redis key it is about (one entry, or a batch of the
    collection), so that its message can say where without naming the key itself."""
    setattr(exc, _NOTE, (name, single))


def _where(store: Any, exc: BaseException) -> str:
    noted = getattr(exc, _NOTE, None)
    if noted is None or not isinstance(noted[0], str):
        return ""
    parsed = store.key_layout.split(noted[0])
    if parsed is None:
        return ""
    collection, key = parsed
    return (
        f" (collection {collection!r}, key {key_ref(key)})" if noted[1] else f" (collection {collection!r})"
    )


def translate(store: Any, exc: BaseException) -> BaseKeyValueError:
    """The typed error to raise for the redis-py error ``exc`` of ``store``."""
    text = str(exc)
    where = _where(store, exc)
    if isinstance(exc, ResponseError) and text.startswith("WRONGTYPE"):
        return DeserializationError(
            f"a Redis key of this store{where} holds a Redis type other than a string, so it is not "
            "fastmcp-sessions data; another program wrote it. Delete it, or give this store its own "
            "namespace="
        )
    if isinstance(exc, ResponseError) and "invalid bulk length" in text:
        return KeyValueOperationError(
            f"{store!r}: the entry{where} is larger than the server accepts (its proto-max-bulk-len); "
            "keep entries smaller, or raise proto-max-bulk-len on the server"
        )
    if isinstance(exc, NoPermissionError):
        return KeyValueOperationError(
            f"{store!r}: the Redis ACL user may not run this command{where} ({exc}); grant it "
            f"~{store.namespace}:* with +@read +@write +@keyspace +@scripting (see docs/redis.md)"
        )
    if isinstance(exc, OutOfMemoryError):
        return KeyValueOperationError(
            f"{store!r}: Redis is out of memory and refused the write{where} ({exc}); raise maxmemory, "
            "or use an eviction policy such as volatile-lru"
        )
    if isinstance(exc, RedisReadOnlyError) and store.follows_sentinel:
        return connection_error(store, exc)  # a failover: the next connection asks Sentinel again
    if isinstance(exc, RedisReadOnlyError):
        return KeyValueOperationError(
            f"{store!r}: the server is a read-only replica{where}; point the URL at the primary"
        )
    if isinstance(exc, UNREACHABLE):
        return connection_error(store, exc)
    if isinstance(exc, InvalidResponse):
        # Replies that are not RESP at all come from a peer that is not Redis: no version hint.
        return StoreConnectionError(
            f"{store!r}: the server at this address does not speak the Redis protocol (it answered "
            f"{text.partition(': ')[2][:60]}); check the host and port in the URL"
        )
    return KeyValueOperationError(
        f"{store!r}: Redis refused a command{where} ({type(exc).__name__}: {exc}); check the server's "
        "version (Redis >= 6.2 is supported) and log"
    )


def connection_error(store: Any, exc: BaseException) -> StoreConnectionError:
    """``StoreConnectionError`` with advice that fits the failure."""
    timeout = store.timeout
    if isinstance(exc, AuthenticationError | AuthenticationWrongNumberOfArgsError | AuthorizationError):
        advice = (
            "authentication failed: check the user name and password in the URL "
            "(redis://user:password@host:port/db) and the server's ACL"
        )
    elif isinstance(exc, MaxConnectionsError | NoFreeConnection):
        advice = (
            f"every connection stayed busy for timeout={timeout:g}s: turn pipelining back on "
            "(the default; drop pipelining=false), which needs no pool, or raise timeout"
        )
    elif isinstance(exc, Unreplicated):
        advice = (
            "a replica is down or lagging (or a failover is under way); the write may not survive "
            "a failover: retry it, or lower wait_replicas to the replicas you run"
        )
    elif isinstance(exc, RedisTimeoutError):
        advice = (
            f"no answer within timeout={timeout:g}s: the server is down, paused or unreachable, "
            "or a command was very slow; the store reconnects on its own once it answers"
        )
    elif "SSL" in str(exc) or "certificate" in str(exc).lower():
        advice = (
            "the TLS handshake failed: use rediss:// for a TLS port, redis:// for a plain one, and "
            "pass ssl_ca_certs= naming the CA that signed the server's certificate"
        )
    else:
        advice = (
            "check that the server is running and reachable at this address; the store reconnects "
            "on its own once it is"
        )
    return StoreConnectionError(f"{store!r} could not be reached ({type(exc).__name__}: {exc}); {advice}")
