"""Redis store: a standalone server, TLS, ACL users, Unix sockets, Redis Cluster and Sentinel.

Built on redis-py's asyncio client (``pip install 'fastmcp-sessions[redis]'``). Commands
are pipelined automatically, one connection per server or cluster node
(``_pipelining.py``); ``pipelining=False`` uses redis-py's pool instead. Layout (see
docs/redis.md)::

    <namespace>:{<collection>}:<key>     one Redis string per entry (colocate=True, default)
    <namespace>:{}:<collection>:<key>    the same with an empty hash tag (colocate=False)

``<collection>`` is percent-escaped (``%``, ``{``, ``}`` and ``:`` only), so no two
(collection, key) pairs share a Redis key and a collection's keys are exactly those
under its own prefix. The braces are a Redis Cluster hash tag: one collection lives in
one hash slot, so a batch over one collection is a single command on a single node.

Each value is ``fms1:<20 hex version chars><compact JSON>``: a read is one ``GET``, a
write one ``SET`` (with ``PX`` for a TTL, in milliseconds). Versions are random, so a
key that is deleted and written again never reuses one. Put-if-absent is
``SET NX PX``; compare-and-set, delete-if-version and versioned reads are Lua scripts
run by ``EVALSHA`` (loaded into a server on its first ``NOSCRIPT``). Redis expires
entries itself; nothing here ever runs ``FLUSHDB``/``FLUSHALL``, and listing and
``destroy_collection`` walk every master with a full ``SCAN`` of the store's own prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import json
import logging
import os
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import Any, SupportsFloat
from urllib.parse import unquote, urlsplit

from fastmcp_sessions._values import check_collection, check_key, check_ttl, copy_value, dumps_validated
from fastmcp_sessions.errors import (
    DeserializationError,
    KeyValueOperationError,
    StoreClosedError,
    StoreConnectionError,
    key_ref,
)
from fastmcp_sessions.stores._driver import Driver, Requirement
from fastmcp_sessions.stores._url import parse_bool, redact_url, take_query_options
from fastmcp_sessions.stores.base import Store, Value, Versioned

_DRIVER = Driver(
    "RedisStore", "redis", Requirement("redis", "5.3.1", label="redis-py"), note=" (optionally with hiredis)"
)
try:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import ClusterNode, RedisCluster
    from redis.asyncio.retry import Retry
    from redis.asyncio.sentinel import Sentinel
    from redis.backoff import ExponentialWithJitterBackoff
    from redis.client import NEVER_DECODE
    from redis.crc import key_slot
    from redis.exceptions import (
        AuthenticationError,
        AuthenticationWrongNumberOfArgsError,
        AuthorizationError,
        ClusterDownError,
        InvalidResponse,
        MaxConnectionsError,
        NoPermissionError,
        NoScriptError,
        OutOfMemoryError,
        RedisClusterException,
        RedisError,
        ResponseError,
        TryAgainError,
    )
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import ReadOnlyError as RedisReadOnlyError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from fastmcp_sessions.stores._pipelining import ClusterPipeline, NodePipeline

    class _Unreplicated(RedisConnectionError):
        """WAIT answered that fewer replicas than ``wait_replicas`` have a write."""

    class _NoFreeConnection(RedisConnectionError):
        """Without pipelining, every connection stayed busy for the whole timeout."""

    _DRIVER_ERRORS: tuple[type[BaseException], ...] = (
        RedisConnectionError,
        RedisTimeoutError,
        ClusterDownError,
        TryAgainError,
        RedisClusterException,
    )
    _REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, RedisClusterException)
    _HAVE_REDIS = True
except ImportError as exc:  # the module must import without redis-py: the registry loads it lazily
    _DRIVER.failed(exc)
    _DRIVER_ERRORS = ()
    _REDIS_ERRORS = ()
    _HAVE_REDIS = False

logger = logging.getLogger("fastmcp_sessions")

DEFAULT_NAMESPACE = "fastmcp-sessions"
"""Key prefix used when none is given."""

DEFAULT_TIMEOUT = 5.0
"""Seconds to wait for a connection or a reply before raising ``StoreConnectionError``."""

_MAGIC = "fms1:"
_MAGIC_BYTES = _MAGIC.encode()
_VERSION_BYTES = 10  # 80 random bits, written as 20 hex characters
_HEADER = len(_MAGIC) + 2 * _VERSION_BYTES
_CHUNK = 1000  # keys per command in batches: one round trip, without one giant command
_SCAN_COUNT = 1000
_MAX_PX = 2**47  # ~4,400 years; longer TTLs would overflow Redis's expiry arithmetic
_RAW = {NEVER_DECODE: True} if _HAVE_REDIS else {}  # bytes back whatever decode_responses says
_SET_GET = {NEVER_DECODE: True, "get": True} if _HAVE_REDIS else {}

_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster", "redis+sentinel", "rediss+sentinel")
_URL_OPTIONS: dict[str, Callable[[str], Any]] = {
    "namespace": str,
    "colocate": parse_bool,
    "timeout": float,
    "default_collection": str,
    "db": int,
    "max_connections": int,
    "pipelining": parse_bool,
    "wait_replicas": int,
    "client_name": str,
    "ssl_ca_certs": str,
    "ssl_certfile": str,
    "ssl_keyfile": str,
    "ssl_cert_reqs": str,
    "ssl_check_hostname": parse_bool,
}


class _Script:
    """A Lua script: its source and the SHA1 that ``EVALSHA`` names it by."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()


# Versions are compared by the header (magic + version) at the start of the stored string.

_READ = _Script(
    """
local v = redis.call('GET', KEYS[1])
if not v then return false end
return {v, redis.call('PTTL', KEYS[1])}
"""
)

# MGET answers nil for a key of another Redis type; GET raises WRONGTYPE, which must surface.
_GET_MANY = _Script(
    """
local out = {}
for i, k in ipairs(KEYS) do out[i] = redis.call('GET', k) end
return out
"""
)

_READ_MANY = _Script(
    """
local out = {}
for i, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  if v then out[i] = {v, redis.call('PTTL', k)} else out[i] = false end
end
return out
"""
)

# ARGV: expected header, new payload, PX milliseconds or ''. Returns 1 when it wrote, and
# also when the entry already carries the new payload's header: then an earlier attempt of
# this very call (retried after a lost reply) wrote it.
_SWAP = _Script(
    """
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local n = string.len(ARGV[1])
local head = string.sub(cur, 1, n)
if head == ARGV[1] then
  if ARGV[3] == '' then
    redis.call('SET', KEYS[1], ARGV[2])
  else
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  end
  return 1
end
if head == string.sub(ARGV[2], 1, n) then return 1 end
return 0
"""
)

_REMOVE_IF_VERSION = _Script(
    """
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, string.len(ARGV[1])) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""
)

_WRITE_MANY_PX = _Script(
    """
local px = ARGV[1]
for i, k in ipairs(KEYS) do redis.call('SET', k, ARGV[i + 1], 'PX', px) end
return #KEYS
"""
)


_EXTRA_SCRIPTS: dict[str, _Script] = {}
"""Scripts run through ``RedisStore.eval_script``, by source (each hashed once)."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_decoder = json.JSONDecoder(parse_constant=_reject_constant)


def _payload(value: Value) -> bytes:
    """The stored form of a validated value, under a fresh version."""
    # Validated values hold only valid Unicode, so the encoding cannot fail.
    return (_MAGIC + os.urandom(_VERSION_BYTES).hex() + dumps_validated(value)).encode()


def _ms(seconds: float) -> int:
    # Round up to whole milliseconds (never expire early), at least 1 ms.
    return min(max(1, int(seconds * 1000 + 0.999)), _MAX_PX)


def _escape(collection: str) -> str:
    if "%" in collection or "{" in collection or "}" in collection or ":" in collection:
        return collection.replace("%", "%25").replace("{", "%7B").replace("}", "%7D").replace(":", "%3A")
    return collection


def _glob_escape(text: str) -> str:
    # SCAN MATCH treats * ? [ ] and \ specially; a backslash makes any of them literal.
    if any(c in text for c in "*?[]\\"):
        return "".join("\\" + c if c in "*?[]\\" else c for c in text)
    return text


def _foreign(collection: str, key: str, why: str) -> DeserializationError:
    return DeserializationError(
        f"the Redis value at collection {collection!r}, key {key_ref(key)} is not fastmcp-sessions data "
        f"({why}); another program wrote it, or it is corrupt. Delete the entry (store.delete) or "
        "give this store its own namespace= so it never shares keys with other programs"
    )


def _parse(collection: str, key: str, raw: Any) -> tuple[str, Value]:
    """The (header, value) of a stored string; ``DeserializationError`` when it is not ours."""
    if type(raw) is not bytes:  # only a client without NEVER_DECODE support gives str
        raw = raw.encode() if isinstance(raw, str) else raw
        if not isinstance(raw, bytes):
            raise _foreign(collection, key, f"Redis returned a {type(raw).__name__}")
    if not raw.startswith(_MAGIC_BYTES) or len(raw) <= _HEADER:
        raise _foreign(collection, key, "it does not start with the fms1: format tag")
    try:
        text = raw.decode()
        value, end = _decoder.raw_decode(text, _HEADER)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _foreign(collection, key, f"its JSON does not parse: {exc}") from None
    if end != len(text) or type(value) is not dict:
        raise _foreign(collection, key, "its JSON is not a single object")
    return text[:_HEADER], value


def _ttl_seconds(pttl: int) -> float | None:
    return None if pttl < 0 else pttl / 1000.0


class RedisStore(Store):
    """A store in Redis: one server (``redis://``, ``rediss://``, ``unix://``), a Redis
    Cluster (``redis+cluster://host:port[,host:port...]``, ``rediss+cluster://``) or a
    primary found through Redis Sentinel
    (``redis+sentinel://[user:password@]host:port[,host:port...]/service_name[/db]``,
    ``rediss+sentinel://``).

    Commands are pipelined automatically: those issued in one event-loop tick, or while
    others are in flight, go out together on one connection per server, so any number
    of concurrent operations completes without a connection pool to run dry.

    Args:
        url: Where Redis is; user and password come from the URL
            (``redis://user:password@host:6379/0``). Default ``redis://localhost:6379/0``.
            Query options are the keyword arguments below.
        client: A ready ``redis.asyncio.Redis`` or ``RedisCluster`` instead of ``url``
            (either ``decode_responses`` setting works). The store does not close it; it
            makes its connections the way the client would (address, TLS, credentials).
        namespace: Prefix of every key this store reads or writes (no ``{`` or ``}``).
            Stores with different namespaces never see each other's data.
        colocate: Keep each collection in one Redis Cluster hash slot (default): batches
            over one collection are one command on one node. ``False`` spreads a
            collection's keys over the whole cluster (for one very large or very hot
            collection). The two layouts name keys differently: pick one per namespace.
        timeout: Seconds to wait for a connection or a reply; past it an operation raises
            ``StoreConnectionError``. A connection the server closed (a restart) is replaced
            by the next command; one that breaks fails only the commands in flight on it.
        db: Database number for ``unix://`` URLs (``redis://`` URLs take it from the path).
        max_connections: Without pipelining, how many commands may be in flight at once
            (per node on a cluster); more wait for a free connection, up to ``timeout``.
        pipelining: Pipeline commands automatically (default). ``False`` sends each
            command on a connection of its own from redis-py's pool.
        wait_replicas: After every write, ``WAIT`` until this many replicas have it (at
            most ``timeout / 2`` seconds) and raise ``StoreConnectionError`` if fewer do, so
            that an acknowledged write survives a failover. Default 0 (no wait).
        client_name: ``CLIENT SETNAME`` for the store's connections.
        ssl_ca_certs, ssl_certfile, ssl_keyfile, ssl_cert_reqs, ssl_check_hostname: TLS
            settings for ``rediss://`` (CA bundle, client certificate and key for mutual
            TLS, ``required``/``optional``/``none``, host name check).
        default_collection: Collection used when a call passes none.
    """

    url_schemes = _SCHEMES
    db_system_name = "redis"
    pip_extra = "redis"
    shared_over_network = True
    driver_errors = _DRIVER_ERRORS

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Redis | RedisCluster | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        colocate: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        db: int | None = None,
        max_connections: int | None = None,
        pipelining: bool = True,
        wait_replicas: int = 0,
        client_name: str | None = None,
        ssl_ca_certs: str | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        ssl_cert_reqs: str | None = None,
        ssl_check_hostname: bool | None = None,
        default_collection: str | None = None,
    ) -> None:
        if not _HAVE_REDIS:
            raise _DRIVER.error()
        super().__init__(default_collection=default_collection)
        if not isinstance(namespace, str) or not namespace or "{" in namespace or "}" in namespace:
            raise ValueError(
                f"namespace must be a non-empty str without '{{' or '}}' (they would form a Redis "
                f"Cluster hash tag), got {namespace!r}"
            )
        if isinstance(timeout, bool) or not (float(timeout) > 0 and float(timeout) != float("inf")):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if isinstance(wait_replicas, bool) or not isinstance(wait_replicas, int) or wait_replicas < 0:
            raise ValueError(f"wait_replicas must be a non-negative int, got {wait_replicas!r}")
        if max_connections is not None and (
            isinstance(max_connections, bool) or not isinstance(max_connections, int) or max_connections < 1
        ):
            raise ValueError(f"max_connections must be a positive int, got {max_connections!r}")
        self.namespace = namespace
        self.colocate = bool(colocate)
        self.timeout = float(timeout)
        self.pipelining = bool(pipelining)
        self.wait_replicas = wait_replicas
        self._wait = ("WAIT", wait_replicas, max(1, int(self.timeout * 500)))
        self._sentinel: Any = None
        self._base = f"{namespace}:{{" if self.colocate else f"{namespace}:{{}}:"
        self._prefixes: dict[str, str] = {}
        self._nx_get = True  # SET NX ... GET needs Redis >= 7.0; switched off on older servers
        if client is not None:
            if url is not None:
                raise ValueError("pass either url= or client=, not both")
            if not isinstance(client, Redis | RedisCluster):
                raise TypeError(
                    f"client must be a redis.asyncio.Redis or redis.asyncio.cluster.RedisCluster, "
                    f"got {type(client).__name__}"
                )
            self._client: Redis | RedisCluster = client
            self._owns_client = False
            self._where = _describe_client(client)
        else:
            url = url or "redis://localhost:6379/0"
            if "?" in url:
                raise ValueError(
                    "RedisStore(url) takes options as keyword arguments; for options in the URL's query "
                    "string use RedisStore.from_url(url) or open_store(url)"
                )
            tls = {
                "ssl_ca_certs": ssl_ca_certs,
                "ssl_certfile": ssl_certfile,
                "ssl_keyfile": ssl_keyfile,
                "ssl_cert_reqs": ssl_cert_reqs,
                "ssl_check_hostname": ssl_check_hostname,
            }
            self._client, self._sentinel = _make_client(
                url, self.timeout, db, max_connections, client_name, tls
            )
            self._owns_client = True
            self._where = redact_url(url)
        self._cluster = isinstance(self._client, RedisCluster)
        if self._cluster and wait_replicas and not self.pipelining:
            raise ValueError("wait_replicas on Redis Cluster needs pipelining (drop pipelining=false)")
        self._deadline = 2 * self.timeout
        # Every command goes through _send (one command) or _send_all (a batch, one write
        # per node), each command paired with the key that routes it on a cluster.
        self._node: NodePipeline | None = None
        self._router: ClusterPipeline | None = None
        self._send: Callable[[tuple[Any, ...], Any], Awaitable[Any]]
        self._send_all: Callable[[list[tuple[tuple[Any, ...], Any]]], Awaitable[list[Any]]]
        if self.pipelining and isinstance(self._client, RedisCluster):
            self._router = ClusterPipeline(self._client, self.timeout)
            self._send, self._send_all = self._router.execute, self._router.send_all
        elif self.pipelining:
            pool = self._client.connection_pool  # type: ignore[union-attr]
            self._node = NodePipeline(pool.make_connection, self._where, self.timeout)
            self._send, self._send_all = self._node.send, self._node.send_all
        else:
            self._send, self._send_all = self._direct_send, self._direct_send_all
        self._gate = asyncio.Semaphore(max_connections or _pool_size(self._client))
        # redis-py's async RedisCluster routes commands issued before its first initialize()
        # to a random node (MOVED storms that close other tasks' connections), so the store
        # initializes it once before its first command.
        self._pending_init = self._cluster

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisStore:
        """``redis://[user:password@]host[:port][/db]``, ``rediss://`` (TLS), ``unix:///path.sock``,
        ``redis+cluster://host:port[,host:port...]``, ``rediss+cluster://``,
        ``redis+sentinel://[user:password@]host:port[,host:port...]/service_name[/db]`` or
        ``rediss+sentinel://``, with query options
        ``namespace``, ``colocate``, ``timeout``, ``db``, ``max_connections``, ``pipelining``,
        ``wait_replicas``, ``client_name``,
        ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_cert_reqs``,
        ``ssl_check_hostname``, ``default_collection`` (keyword options win)."""
        take_query_options(url, _URL_OPTIONS, options)
        return cls(url.split("?", 1)[0], **options)

    def __repr__(self) -> str:
        return f"RedisStore({self._where}, namespace={self.namespace!r})"

    def _telemetry_server(self) -> tuple[str | None, int | None]:
        if isinstance(self._client, RedisCluster):
            nodes = self._client.get_nodes() or list(self._client.startup_nodes)
            first = next(iter(nodes), None)
            return (first.host, int(first.port)) if first is not None else (None, None)
        kwargs = self._client.connection_pool.connection_kwargs
        if kwargs.get("path"):
            return str(kwargs["path"]), None
        return kwargs.get("host"), kwargs.get("port")

    @property
    def client(self) -> Redis | RedisCluster:
        """The redis-py client this store uses (``Redis`` or ``RedisCluster``)."""
        return self._client

    def redis_key(self, key: str, *, collection: str | None = None) -> str:
        """The Redis key that holds ``key`` of ``collection`` (for inspection and tooling)."""
        c = self.default_collection if collection is None else check_collection(collection)
        return self._prefix(c) + check_key(key)

    async def eval_script(self, source: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run the Lua script ``source`` on ``keys`` (one slot) over this store's own connections,
        pipelined like its other commands; loaded on first use. Replies are raw (bytes); redis-py
        errors become this store's typed errors. For modules beside the store (event stores)."""
        if self._closed:
            raise StoreClosedError(repr(self))
        script = _EXTRA_SCRIPTS.get(source) or _EXTRA_SCRIPTS.setdefault(source, _Script(source))
        try:
            return await self._one(("EVALSHA", script.sha, len(keys), *keys, *args), keys[0], (script,))
        except _REDIS_ERRORS as exc:
            raise self._error(exc) from exc

    # -- key layout ----------------------------------------------------------------------

    def _prefix(self, collection: str) -> str:
        prefix = self._prefixes.get(collection)
        if prefix is None:
            escaped = _escape(collection)
            # "{collection}" is a Redis Cluster hash tag: the collection decides the slot. "{}" is
            # an empty tag, so Redis hashes the whole key. Either way the first brace ends the
            # namespace, which cannot contain one: no namespace can reach into another's keys.
            prefix = f"{self._base}{escaped}}}:" if self.colocate else f"{self._base}{escaped}:"
            # Bounded in count and size: names may be any length, and a long one costs more
            # to keep than to escape again.
            if len(collection) <= 256:
                if len(self._prefixes) >= 4096:
                    self._prefixes.clear()
                self._prefixes[collection] = prefix
        return prefix

    def _collection_of(self, name: str) -> tuple[str, str] | None:
        """``(collection, key)`` of a Redis key under our namespace, or ``None`` if it is not ours."""
        base = self._base
        if not name.startswith(base):
            return None
        if self.colocate:
            end = name.find("}", len(base))
            if end < 0 or name[end + 1 : end + 2] != ":":
                return None
            escaped, key = name[len(base) : end], name[end + 2 :]
        else:
            end = name.find(":", len(base))
            if end < 0:
                return None
            escaped, key = name[len(base) : end], name[end + 1 :]
        collection = unquote(escaped)
        if not escaped or not key or _escape(collection) != escaped:
            return None
        return collection, key

    def _groups(self, collection: str, names: list[str]) -> list[list[int]]:
        """Indices of ``names`` split into batches that one command may carry: at most
        ``_CHUNK`` keys, and on a cluster all in one hash slot."""
        if not self._cluster or self.colocate:
            # A hash-tagged collection is one slot; a standalone server has no slots.
            indices = list(range(len(names)))
        else:
            by_slot: dict[int, list[int]] = {}
            for i, name in enumerate(names):
                by_slot.setdefault(key_slot(name.encode()), []).append(i)
            return [g[s : s + _CHUNK] for g in by_slot.values() for s in range(0, len(g), _CHUNK)]
        return [indices[s : s + _CHUNK] for s in range(0, len(indices), _CHUNK)]

    # -- running commands ------------------------------------------------------------------

    async def _direct_send(self, args: tuple[Any, ...], key: str | None = None) -> Any:
        """One command on a connection of redis-py's pool (``pipelining=False``)."""
        options = _SET_GET if args[0] == "SET" and args[-1] == "GET" else _RAW
        await self._enter_gate()
        try:
            if self._cluster:
                return await self._bounded(self._client.execute_command(*args, **options))
            return await self._client.execute_command(*args, **options)
        finally:
            self._gate.release()

    async def _direct_send_all(self, commands: list[tuple[tuple[Any, ...], Any]]) -> list[Any]:
        """A batch as one redis-py pipeline (``pipelining=False``)."""
        if len(commands) == 1:
            return [await self._direct_send(*commands[0])]
        await self._enter_gate()
        try:
            pipe = self._client.pipeline(transaction=False)
            for args, _ in commands:
                pipe.execute_command(*args, **_RAW)
            results: list[Any] = await (self._bounded(pipe.execute()) if self._cluster else pipe.execute())
            return results
        finally:
            self._gate.release()

    async def _enter_gate(self) -> None:
        # Without pipelining at most max_connections commands run at once; the rest wait their
        # turn (redis-py's own pool would raise MaxConnectionsError instead).
        if not self._gate.locked():
            await self._gate.acquire()
            return
        try:
            await asyncio.wait_for(self._gate.acquire(), self.timeout)
        except TimeoutError:
            raise _NoFreeConnection(f"no connection came free within {self.timeout:g}s") from None

    async def _bounded(self, awaitable: Awaitable[Any]) -> Any:
        """Await a cluster operation, at most ``2 * timeout`` seconds in all."""
        deadline = asyncio.timeout(self._deadline)
        try:
            async with deadline:
                if self._pending_init:
                    assert isinstance(self._client, RedisCluster)
                    await self._client.initialize()
                    self._pending_init = False
                return await awaitable
        except TimeoutError:
            if not deadline.expired():
                raise
            if inspect.iscoroutine(awaitable):
                awaitable.close()  # not started when initialize() used up the time
            raise RedisTimeoutError(f"the cluster did not answer within {self._deadline:g}s") from None

    def _error(self, exc: BaseException, collection: str | None = None, key: str | None = None) -> Exception:
        """The typed error to raise for a redis-py error."""
        where = (
            ""
            if collection is None
            else f" (collection {collection!r}" + (f", key {key_ref(key)})" if key is not None else ")")
        )
        if isinstance(exc, ResponseError) and str(exc).startswith("WRONGTYPE"):
            return DeserializationError(
                f"a Redis key of this store{where} holds a Redis type other than a string, so it is not "
                "fastmcp-sessions data; another program wrote it. Delete it, or give this store its own "
                "namespace="
            )
        if isinstance(exc, ResponseError) and "invalid bulk length" in str(exc):
            return KeyValueOperationError(
                f"{self!r}: the entry{where} is larger than the server accepts (its proto-max-bulk-len); "
                "keep entries smaller, or raise proto-max-bulk-len on the server"
            )
        if isinstance(exc, NoPermissionError):
            return KeyValueOperationError(
                f"{self!r}: the Redis ACL user may not run this command{where} ({exc}); grant it "
                f"~{self.namespace}:* with +@read +@write +@keyspace +@scripting (see docs/redis.md)"
            )
        if isinstance(exc, OutOfMemoryError):
            return KeyValueOperationError(
                f"{self!r}: Redis is out of memory and refused the write{where} ({exc}); raise maxmemory, "
                "or use an eviction policy such as volatile-lru"
            )
        if isinstance(exc, RedisReadOnlyError) and self._sentinel is not None and self._node is not None:
            # The primary we knew was demoted: drop the connection; the next asks Sentinel again.
            self._node.reset()
            return self._connection_error(exc)
        if isinstance(exc, RedisReadOnlyError):
            return KeyValueOperationError(
                f"{self!r}: the server is a read-only replica{where}; point the URL at the primary"
            )
        if isinstance(exc, _DRIVER_ERRORS):
            return self._connection_error(exc)
        if isinstance(exc, InvalidResponse):
            # Replies that are not RESP at all come from a peer that is not Redis: no version hint.
            return StoreConnectionError(
                f"{self!r}: the server at this address does not speak the Redis protocol (it answered "
                f"{str(exc).partition(': ')[2][:60]}); check the host and port in the URL"
            )
        return KeyValueOperationError(
            f"{self!r}: Redis refused a command{where} ({type(exc).__name__}: {exc}); check the server's "
            "version (Redis >= 6.2 is supported) and log"
        )

    def _connection_error(self, exc: BaseException) -> StoreConnectionError:
        """``StoreConnectionError`` with advice that fits the failure."""
        if isinstance(exc, AuthenticationError | AuthenticationWrongNumberOfArgsError | AuthorizationError):
            advice = (
                "authentication failed: check the user name and password in the URL "
                "(redis://user:password@host:port/db) and the server's ACL"
            )
        elif isinstance(exc, MaxConnectionsError | _NoFreeConnection):
            advice = (
                f"every connection stayed busy for timeout={self.timeout:g}s: turn pipelining back on "
                "(the default; drop pipelining=false), which needs no pool, or raise timeout"
            )
        elif isinstance(exc, _Unreplicated):
            advice = (
                "a replica is down or lagging (or a failover is under way); the write may not survive "
                "a failover: retry it, or lower wait_replicas to the replicas you run"
            )
        elif isinstance(exc, RedisTimeoutError):
            advice = (
                f"no answer within timeout={self.timeout:g}s: the server is down, paused or unreachable, "
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
        return StoreConnectionError(f"{self!r} could not be reached ({type(exc).__name__}: {exc}); {advice}")

    async def _script(
        self, script: _Script, keys: Sequence[str], args: Sequence[Any], *, write: bool = False
    ) -> Any:
        return await self._one(
            ("EVALSHA", script.sha, len(keys), *keys, *args), keys[0], (script,), write=write
        )

    async def _one(
        self, command: tuple[Any, ...], key: str, scripts: Sequence[_Script] = (), *, write: bool = False
    ) -> Any:
        """One command's reply; a write waits for ``wait_replicas`` replicas."""
        if write and self.wait_replicas:
            return (await self._batch([(command, key)], scripts, write=True))[0]
        try:
            return await self._send(command, key)
        except NoScriptError:
            # First use on this server (or it restarted, or failed over): load and go again.
            await self._load(scripts)
            return await self._send(command, key)

    async def _load(self, scripts: Sequence[_Script]) -> None:
        logger.debug("%r: loading %d Lua script(s) after NOSCRIPT", self, len(scripts))
        for script in scripts:  # on a cluster, SCRIPT LOAD reaches every master
            if self._router is not None:
                await self._router.on_every_primary(("SCRIPT LOAD", script.source))
            else:
                await self._send(("SCRIPT LOAD", script.source), None)

    async def _batch(
        self,
        commands: list[tuple[tuple[Any, ...], str]],
        scripts: Sequence[_Script] = (),
        *,
        write: bool = False,
    ) -> list[Any]:
        """Run ``commands`` (each with its routing key) in one round trip (one per node on a
        cluster); results in order. Writes then wait for ``wait_replicas`` replicas.

        Every batch is idempotent (reads, or writes of payloads made beforehand), so after a
        ``NOSCRIPT`` it simply runs again once the scripts are loaded.
        """
        waits = 0
        if write and self.wait_replicas:
            # WAIT covers the writes sent before it on the same connection: one per node.
            last: dict[str, str] = {"": commands[-1][1]}
            if self._router is not None:
                last = {self._router.node_for(k).name: k for _, k in commands}
            commands = [*commands, *((self._wait, k) for k in last.values())]
            waits = len(last)
        if len(commands) == 1:
            replies = [await self._one(*commands[0], scripts)]
        else:
            try:
                replies = await self._send_all(commands)
            except NoScriptError:
                await self._load(scripts)
                replies = await self._send_all(commands)
        if waits:
            acked = min(int(r) for r in replies[-waits:])
            if acked < self.wait_replicas:
                raise _Unreplicated(
                    f"the write reached the primary but only {acked} of wait_replicas={self.wait_replicas} "
                    f"replicas confirmed it within {self._wait[2]} ms"
                )
            replies = replies[:-waits]
        return replies

    # -- the hot paths, written out in full -----------------------------------------------

    async def get(self, key: str, *, collection: str | None = None) -> Value | None:
        """Return the value stored at ``key``, or ``None`` if it is missing or expired."""
        if self._closed:
            raise StoreClosedError(repr(self))
        c = self.default_collection if collection is None else check_collection(collection)
        name = self._prefix(c) + check_key(key)
        try:
            raw = await self._send(("GET", name), name)
        except _REDIS_ERRORS as exc:
            raise self._error(exc, c, key) from exc
        return None if raw is None else _parse(c, key, raw)[1]

    async def put(
        self,
        key: str,
        value: Mapping[str, Any],
        *,
        collection: str | None = None,
        ttl: SupportsFloat | None = None,
    ) -> None:
        """Store ``value`` at ``key``, replacing what was there, expiring after ``ttl`` seconds."""
        if self._closed:
            raise StoreClosedError(repr(self))
        c = self.default_collection if collection is None else check_collection(collection)
        name = self._prefix(c) + check_key(key)
        seconds = check_ttl(ttl)
        payload = _payload(copy_value(value))
        try:
            args = ("SET", name, payload) if seconds is None else ("SET", name, payload, "PX", _ms(seconds))
            await (self._one(args, name, write=True) if self.wait_replicas else self._send(args, name))
        except _REDIS_ERRORS as exc:
            raise self._error(exc, c, key) from exc

    async def get_many(self, keys: Sequence[str], *, collection: str | None = None) -> list[Value | None]:
        """Return the values of ``keys`` in order, ``None`` for each missing one (one round
        trip on a server, one per node on a cluster)."""
        if self._closed:
            raise StoreClosedError(repr(self))
        c = self.default_collection if collection is None else check_collection(collection)
        keys = self._keys_arg(keys)
        if not keys:
            return []
        prefix = self._prefix(c)
        names = [prefix + k for k in keys]
        groups = self._groups(c, names)
        try:
            replies = await self._batch(
                [(("EVALSHA", _GET_MANY.sha, len(g), *(names[i] for i in g)), names[g[0]]) for g in groups],
                (_GET_MANY,),
            )
        except _REDIS_ERRORS as exc:
            raise self._error(exc, c) from exc
        out: list[Value | None] = [None] * len(keys)
        for group, reply in zip(groups, replies, strict=True):
            for i, raw in zip(group, reply, strict=True):
                if raw is not None:
                    out[i] = _parse(c, keys[i], raw)[1]
        return out

    # -- the backend interface -------------------------------------------------------------

    async def _get_versioned(self, collection: str, key: str) -> Versioned | None:
        try:
            reply = await self._script(_READ, (self._prefix(collection) + key,), ())
        except _REDIS_ERRORS as exc:
            raise self._error(exc, collection, key) from exc
        if reply is None:
            return None
        header, value = _parse(collection, key, reply[0])
        return Versioned(value, header[len(_MAGIC) :], _ttl_seconds(reply[1]))

    async def _get_versioned_many(self, collection: str, keys: list[str]) -> list[Versioned | None]:
        if not keys:
            return []
        prefix = self._prefix(collection)
        names = [prefix + k for k in keys]
        groups = self._groups(collection, names)
        commands = [
            (("EVALSHA", _READ_MANY.sha, len(g), *(names[i] for i in g)), names[g[0]]) for g in groups
        ]
        try:
            replies = await self._batch(commands, (_READ_MANY,))
        except _REDIS_ERRORS as exc:
            raise self._error(exc, collection) from exc
        out: list[Versioned | None] = [None] * len(keys)
        for group, reply in zip(groups, replies, strict=True):
            for i, entry in zip(group, reply, strict=True):
                if entry is not None:
                    header, value = _parse(collection, keys[i], entry[0])
                    out[i] = Versioned(value, header[len(_MAGIC) :], _ttl_seconds(entry[1]))
        return out

    async def _put(self, collection: str, key: str, value: Value, ttl: float | None) -> None:
        payload = _payload(value)
        name = self._prefix(collection) + key
        try:
            args = ("SET", name, payload) if ttl is None else ("SET", name, payload, "PX", _ms(ttl))
            await self._one(args, name, write=True)
        except _REDIS_ERRORS as exc:
            raise self._error(exc, collection, key) from exc

    async def _put_many(
        self, collection: str, keys: list[str], values: list[Value], ttl: float | None
    ) -> None:
        if not keys:
            return
        prefix = self._prefix(collection)
        names = [prefix + k for k in keys]
        payloads = [_payload(v) for v in values]
        groups = self._groups(collection, names)
        commands: list[tuple[tuple[Any, ...], str]]
        if ttl is None:
            # MSET is atomic per command and needs no script.
            commands = [
                (("MSET", *(x for i in g for x in (names[i], payloads[i]))), names[g[0]]) for g in groups
            ]
        else:
            px = _ms(ttl)
            commands = [
                (
                    (
                        "EVALSHA",
                        _WRITE_MANY_PX.sha,
                        len(g),
                        *(names[i] for i in g),
                        px,
                        *(payloads[i] for i in g),
                    ),
                    names[g[0]],
                )
                for g in groups
            ]
        try:
            await self._batch(commands, (_WRITE_MANY_PX,), write=True)
        except _REDIS_ERRORS as exc:
            raise self._error(exc, collection) from exc

    async def _delete(self, collection: str, key: str) -> bool:
        try:
            name = self._prefix(collection) + key
            return bool(await self._one(("DEL", name), name, write=True))
        except _REDIS_ERRORS as exc:
            raise self._error(exc, collection, key) from exc

    async def _delete_many(self, collection: str, keys: list[str]) -> int:
        if not keys:
            return 0
        prefix = self._prefix(collection)
        names = [prefix + k for k in dict.fromkeys(keys)]
        try:
            return await self._unlink(collection, names, "DEL")
        except _REDIS_ERRORS as exc:
            raise self._error(exc, collection) from exc

    async def _unlink(self, collection: str, names: list[str], command: str) -> int:
        groups = self._groups(collection, names)
        replies = await self._batch(
            [((command, *(names[i] for i in g)), names[g[0]]) for g in groups], write=True
        )
        return sum(int(r) for r in replies)

    async def _put_if_absent(self, collection: str, key: str, value: Value, ttl: float | None) -> bool:
        payload = _payload(value)
        name = self._prefix(collection) + key
        args: tuple[Any, ...] = (
            ("SET", name, payload, "NX") if ttl is None else ("SET", name, payload, "NX", "PX", _ms(ttl))
        )
        try:
            if self._nx_get:
                try:
                    # GET returns what blocked us; our own header means a retried attempt of this
                    # very call already wrote it (the reply to the first one was lost).
                    previous = await self._one((*args, "GET"), name, write=True)
                except ResponseError as exc:
                    if "syntax" not in str(exc).lower():
                        raise
                    self._nx_get = False  # Redis < 7.0 cannot combine NX and GET
                else:
                    return previous is None or bytes(previous[:_HEADER]) == payload[:_HEADER]
            return bool(await self._one(args, name, write=True))
        except _REDIS_ERRORS as exc:
            raise self._error(exc, collection, key) from exc

    async def _compare_and_set(
        self, collection: str, key: str, value: Value, version: str, ttl: float | None
    ) -> bool:
        expected = _MAGIC + version
        if len(expected) != _HEADER:
            return False  # not a version this store ever handed out
        payload = _payload(value)
        px = "" if ttl is None else _ms(ttl)
        try:
            reply = await self._script(
                _SWAP, (self._prefix(collection) + key,), (expected, payload, px), write=True
            )
        except _REDIS_ERRORS as exc:
            raise self._error(exc, collection, key) from exc
        return bool(reply)

    async def _delete_if_version(self, collection: str, key: str, version: str) -> bool:
        expected = _MAGIC + version
        if len(expected) != _HEADER:
            return False
        try:
            reply = await self._script(
                _REMOVE_IF_VERSION, (self._prefix(collection) + key,), (expected,), write=True
            )
        except _REDIS_ERRORS as exc:
            raise self._error(exc, collection, key) from exc
        return bool(reply)

    # -- listing ---------------------------------------------------------------------------

    async def _scan(self, pattern: str) -> AsyncGenerator[list[bytes], None]:
        """Pages of every key matching ``pattern``: a full SCAN of the server, or of every
        master of a cluster."""
        if self._router is not None:
            await self._router.ready()
            nodes: list[Any] = list(self._router.client.get_primaries())
        elif isinstance(self._client, RedisCluster):
            await self._direct_send(("PING",))  # initializes the client and refreshes a stale slot map
            nodes = list(self._client.get_primaries())
        else:
            nodes = [None]
        for node in nodes:
            cursor: Any = 0
            while True:
                args = ("SCAN", cursor, "MATCH", pattern, "COUNT", _SCAN_COUNT)
                if node is None:
                    cursor, names = await self._send(args, None)
                elif self._router is not None:
                    cursor, names = await self._router.pipe(node).send(args)
                else:
                    cursor, names = await self._bounded(
                        self._client.execute_command(*args, target_nodes=node, **_RAW)
                    )
                if isinstance(cursor, dict):  # a cluster answers {node name: cursor}
                    cursor = next(iter(cursor.values()))
                if names:
                    yield names
                if int(cursor) == 0:
                    break

    async def _keys(self, collection: str, limit: int | None) -> list[str]:
        if limit == 0:
            return []
        prefix = self._prefix(collection)
        start = len(prefix.encode())
        found: dict[str, None] = {}
        try:
            async with contextlib.aclosing(self._scan(_glob_escape(prefix) + "*")) as pages:
                async for names in pages:
                    for name in names:
                        with contextlib.suppress(UnicodeDecodeError):  # not ours: keys are UTF-8
                            found[name[start:].decode()] = None
                    if limit is not None and len(found) >= limit:
                        break
        except _REDIS_ERRORS as exc:
            raise self._error(exc, collection) from exc
        keys = [k for k in found if k]
        return keys if limit is None else keys[:limit]

    async def _collections(self, limit: int | None) -> list[str]:
        if limit == 0:
            return []
        found: dict[str, None] = {}
        try:
            async with contextlib.aclosing(self._scan(_glob_escape(self._base) + "*")) as pages:
                async for names in pages:
                    for name in names:
                        try:
                            parsed = self._collection_of(name.decode())
                        except UnicodeDecodeError:
                            continue
                        if parsed is not None:
                            found[parsed[0]] = None
                    if limit is not None and len(found) >= limit:
                        break
        except _REDIS_ERRORS as exc:
            raise self._error(exc) from exc
        names_found = list(found)
        return names_found if limit is None else names_found[:limit]

    async def _destroy_collection(self, collection: str) -> bool:
        prefix = self._prefix(collection)
        removed = 0
        try:
            async with contextlib.aclosing(self._scan(_glob_escape(prefix) + "*")) as pages:
                async for names in pages:
                    removed += await self._unlink(collection, [n.decode() for n in names], "UNLINK")
        except _REDIS_ERRORS as exc:
            raise self._error(exc, collection) from exc
        return removed > 0

    async def _close(self) -> None:
        pipes = self._node or self._router
        if pipes is not None:
            await pipes.close()
        if self._owns_client:
            with contextlib.suppress(*_REDIS_ERRORS, OSError):
                await self._client.aclose()
                for sentinel in self._sentinel.sentinels if self._sentinel is not None else ():
                    await sentinel.aclose()


def _describe_client(client: Any) -> str:
    """``client=<Redis 127.0.0.1:6379/0>`` without credentials, for repr and errors."""
    if isinstance(client, RedisCluster):
        nodes = ",".join(f"{n.host}:{n.port}" for n in client.get_nodes()) or "(not connected)"
        return f"client=<RedisCluster {nodes}>"
    kwargs = client.connection_pool.connection_kwargs
    if kwargs.get("path"):
        return f"client=<Redis unix:{kwargs['path']}/{kwargs.get('db', 0)}>"
    return f"client=<Redis {kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}>"


def _userinfo(netloc: str) -> tuple[str | None, str | None, str]:
    """(username, password, hosts) of a URL's network location, percent-decoded."""
    if "@" not in netloc:
        return None, None, netloc
    userinfo, _, hosts = netloc.rpartition("@")
    user, sep, password = userinfo.partition(":")
    return (unquote(user) or None), (unquote(password) if sep else None), hosts


def _host_port(text: str, url: str) -> tuple[str, int]:
    text = text.strip()
    if text.startswith("["):  # [IPv6]:port
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = text.rpartition(":") if ":" in text else (text, "", "")
    try:
        port = int(port_text) if port_text else 6379
    except ValueError:
        raise ValueError(f"bad port {port_text!r} in {redact_url(url)}") from None
    if not host:
        raise ValueError(f"missing host in {redact_url(url)}")
    return host, port


def _pool_size(client: Any) -> int:
    """How many commands redis-py's pool of ``client`` can run at once."""
    if isinstance(client, RedisCluster):
        return int(getattr(client, "max_connections", 0) or 1000)
    return int(getattr(client.connection_pool, "max_connections", 0) or 100)


def _make_client(
    url: str,
    timeout: float,
    db: int | None,
    max_connections: int | None,
    client_name: str | None,
    tls: dict[str, Any],
) -> tuple[Redis | RedisCluster, Any]:
    """A redis-py client for ``url`` whose every wait is bounded by ``timeout``, and the
    ``Sentinel`` it came from (``None`` for other URLs)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError(
            f"RedisStore URLs start with {', '.join(s + '://' for s in _SCHEMES)}; got {scheme!r}"
        )
    username, password, hosts = _userinfo(parts.netloc)
    common: dict[str, Any] = {
        "username": username,
        "password": password,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "decode_responses": False,
        "client_name": client_name,
    }
    use_tls = scheme.startswith("rediss")
    tls_options = {k: v for k, v in tls.items() if v is not None}
    if tls_options and not use_tls:
        raise ValueError(f"{', '.join(sorted(tls_options))} need a rediss:// (TLS) URL, not {scheme}://")
    if use_tls:
        common["ssl"] = True
        common.update(tls_options)
    # Retry once, only when a connection broke: that replaces connections a restarted server
    # dropped. A timeout is not retried, so an operation waits at most about ``timeout``.
    retry = Retry(ExponentialWithJitterBackoff(cap=0.1, base=0.01), 1, (RedisConnectionError,))
    if scheme.endswith("+cluster"):
        if parts.path.strip("/") not in ("", "0") or db:
            raise ValueError("Redis Cluster has only database 0; drop the /db from the URL")
        nodes = [ClusterNode(*_host_port(h, url)) for h in hosts.split(",") if h.strip()]
        if not nodes:
            raise ValueError(f"name at least one cluster node: redis+cluster://host:port,... (got {url!r})")
        cluster = RedisCluster(
            startup_nodes=nodes,
            retry=Retry(ExponentialWithJitterBackoff(cap=0.25, base=0.05), 1),
            max_connections=max_connections or 1000,
            **common,
        )
        return cluster, None
    if max_connections is not None:
        common["max_connections"] = max_connections
    if scheme.endswith("+sentinel"):
        return _sentinel_client(url, hosts, parts.path, db, retry, common)
    if scheme == "unix":
        if not parts.path:
            raise ValueError("unix URLs name the socket: unix:///path/to/redis.sock")
        return Redis(unix_socket_path=unquote(parts.path), db=db or 0, retry=retry, **common), None
    host, port = _host_port(hosts, url) if hosts else ("localhost", 6379)
    path = parts.path.strip("/")
    try:
        url_db = int(path) if path else None
    except ValueError:
        raise ValueError(f"the path of a redis:// URL is the database number, got {path!r}") from None
    if url_db is not None and db is not None and url_db != db:
        raise ValueError(f"the URL names database {url_db} but db={db} was given")
    return Redis(host=host, port=port, db=url_db or db or 0, retry=retry, **common), None


def _sentinel_client(
    url: str, hosts: str, path: str, db: int | None, retry: Any, common: dict[str, Any]
) -> tuple[Redis, Any]:
    """The primary of ``service_name`` as Sentinel reports it, on every new connection.

    Credentials and TLS settings apply to the primary and to the sentinels alike.
    """
    sentinels = [_host_port(h, url) for h in hosts.split(",") if h.strip()]
    if not sentinels:
        raise ValueError(
            f"name at least one sentinel: redis+sentinel://host:port,.../service_name (got {redact_url(url)})"
        )
    service, _, db_text = path.strip("/").partition("/")
    if not service:
        raise ValueError(
            "name the monitored service: redis+sentinel://host:port/service_name[/db] "
            f"(got {redact_url(url)})"
        )
    try:
        url_db = int(db_text) if db_text else None
    except ValueError:
        raise ValueError(f"the part after the service name is the database number, got {db_text!r}") from None
    if url_db is not None and db is not None and url_db != db:
        raise ValueError(f"the URL names database {url_db} but db={db} was given")
    sentinel_kwargs = {k: v for k, v in common.items() if k not in ("client_name", "max_connections")}
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        sentinels, sentinel_kwargs=sentinel_kwargs, **common
    )
    client = sentinel.master_for(unquote(service), db=url_db or db or 0, retry=retry)
    return client, sentinel
