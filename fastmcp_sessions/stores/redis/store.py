"""The Redis store: one ``SET``/``GET`` per entry, versions in the value, Lua for the rest.

Commands are pipelined automatically, one connection per server or cluster node
(``pipelining.py``); ``pipelining=False`` uses redis-py's pool instead. Key layout and
value format: ``encoding.py``; scripts: ``scripts.py``; clients: ``connection.py``;
errors: ``errors.py``; redis-py internals: ``_seam.py``.

Put-if-absent is ``SET NX PX``; compare-and-set, delete-if-version and versioned reads
are Lua scripts run by ``EVALSHA`` (loaded into a server on its first ``NOSCRIPT``).
Redis expires entries itself; nothing here ever runs ``FLUSHDB``/``FLUSHALL``, and
listing and ``destroy_collection`` walk every master with a full ``SCAN`` of the
store's own prefix.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import Any, SupportsFloat

from fastmcp_sessions._values import check_collection, check_key, check_ttl, copy_value
from fastmcp_sessions.errors import (
    BaseKeyValueError,
    StoreClosedError,
    StoreConnectionError,
    StoreOptionError,
)
from fastmcp_sessions.stores._driver import Driver, Requirement
from fastmcp_sessions.stores._url import parse_bool, redact_url, take_query_options
from fastmcp_sessions.stores.base import Store, Value, Versioned
from fastmcp_sessions.stores.redis import scripts
from fastmcp_sessions.stores.redis.encoding import HEADER as _HEADER
from fastmcp_sessions.stores.redis.encoding import MAGIC as _MAGIC
from fastmcp_sessions.stores.redis.encoding import SCHEMES, KeyLayout
from fastmcp_sessions.stores.redis.encoding import glob_escape as _glob_escape
from fastmcp_sessions.stores.redis.encoding import ms as _ms
from fastmcp_sessions.stores.redis.encoding import parse as _parse
from fastmcp_sessions.stores.redis.encoding import payload as _payload
from fastmcp_sessions.stores.redis.encoding import ttl_seconds as _ttl_seconds
from fastmcp_sessions.stores.redis.scripts import Script

_DRIVER = Driver(
    "RedisStore", "redis", Requirement("redis", "5.3.1", label="redis-py"), note=" (optionally with hiredis)"
)
try:
    # connection first: its imports are the ones an old or broken redis-py fails on.
    from fastmcp_sessions.stores.redis import connection  # isort: skip
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster
    from redis.crc import key_slot
    from redis.exceptions import NoScriptError, ResponseError
    from redis.exceptions import ReadOnlyError as RedisReadOnlyError

    from fastmcp_sessions.stores.redis import _seam
    from fastmcp_sessions.stores.redis import errors as redis_errors
    from fastmcp_sessions.stores.redis.pipelining import ClusterPipeline, NodePipeline
    from fastmcp_sessions.stores.redis.plain import RAW, PlainCommands

    _REDIS_ERRORS: tuple[type[BaseException], ...] = redis_errors.REDIS_ERRORS
    _HAVE_REDIS = True
except ImportError as exc:  # the module must import without redis-py: the registry loads it lazily
    _DRIVER.failed(exc)
    _REDIS_ERRORS = ()
    _HAVE_REDIS = False

logger = logging.getLogger("fastmcp_sessions")

DEFAULT_NAMESPACE = "fastmcp-sessions"
"""Key prefix used when none is given."""

DEFAULT_TIMEOUT = 5.0
"""Seconds to wait for a connection or a reply before raising ``StoreConnectionError``."""

_CHUNK = 1000  # keys per command in batches: one round trip, without one giant command
_SCAN_COUNT = 1000
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


_EXTRA_SCRIPTS: dict[str, Script] = {}
"""Scripts run through ``RedisStore.eval_script``, by source (each hashed once)."""


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

    url_schemes = SCHEMES
    db_system_name = "redis"
    pip_extra = "redis"
    shared_over_network = True
    driver_errors = _REDIS_ERRORS

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
            raise StoreOptionError(
                f"namespace must be a non-empty str without '{{' or '}}' (they would form a Redis "
                f"Cluster hash tag), got {namespace!r}"
            )
        if isinstance(timeout, bool) or not (float(timeout) > 0 and float(timeout) != float("inf")):
            raise StoreOptionError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if isinstance(wait_replicas, bool) or not isinstance(wait_replicas, int) or wait_replicas < 0:
            raise StoreOptionError(f"wait_replicas must be a non-negative int, got {wait_replicas!r}")
        if max_connections is not None and (
            isinstance(max_connections, bool) or not isinstance(max_connections, int) or max_connections < 1
        ):
            raise StoreOptionError(f"max_connections must be a positive int, got {max_connections!r}")
        self.namespace = namespace
        self.colocate = bool(colocate)
        self.timeout = float(timeout)
        # Auto-pipelining needs redis-py internals (_seam.py); without them, plain commands.
        self.pipelining = bool(pipelining) and _seam.pipelining_available()
        self.wait_replicas = wait_replicas
        self._wait = ("WAIT", wait_replicas, max(1, int(self.timeout * 500)))
        self._sentinel: Any = None
        self._layout = KeyLayout(namespace, self.colocate)
        self._nx_get = True  # SET NX ... GET needs Redis >= 7.0; switched off on older servers
        if client is not None:
            if url is not None:
                raise StoreOptionError("pass either url= or client=, not both")
            if not isinstance(client, Redis | RedisCluster):
                raise TypeError(
                    f"client must be a redis.asyncio.Redis or redis.asyncio.cluster.RedisCluster, "
                    f"got {type(client).__name__}"
                )
            self._client: Redis | RedisCluster = client
            self._owns_client = False
            self._where = connection.describe_client(client)
        else:
            url = url or "redis://localhost:6379/0"
            if "?" in url:
                raise StoreOptionError(
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
            self._client, self._sentinel = connection.make_client(
                url, self.timeout, db, max_connections, client_name, tls
            )
            self._owns_client = True
            self._where = redact_url(url)
        self._cluster = isinstance(self._client, RedisCluster)
        if self._cluster and wait_replicas and not self.pipelining:
            raise StoreOptionError(
                "wait_replicas on Redis Cluster needs pipelining (drop pipelining=false)"
                if not pipelining
                else "wait_replicas on Redis Cluster needs auto-pipelining, which this redis-py cannot "
                "run (see the logged warning); install a redis-py the 'redis' extra allows"
            )
        self._plain = PlainCommands(
            self._client, self.timeout, max_connections or connection.pool_size(self._client)
        )
        self._gate = self._plain.gate
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
            make = _seam.pool_connection_factory(self._client)
            self._node = NodePipeline(make, self._where, self.timeout)
            self._send, self._send_all = self._node.send, self._node.send_all
        else:
            self._send, self._send_all = self._plain.send, self._plain.send_all

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
        take_query_options(url, _URL_OPTIONS, options, open_store_options=("encryption",))
        return cls(url.split("?", 1)[0], **options)

    def __repr__(self) -> str:
        return f"RedisStore({self._where}, namespace={self.namespace!r})"

    def _telemetry_server(self) -> tuple[str | None, int | None]:
        return connection.server_address(self._client)

    @property
    def client(self) -> Redis | RedisCluster:
        """The redis-py client this store uses (``Redis`` or ``RedisCluster``)."""
        return self._client

    @property
    def key_layout(self) -> KeyLayout:
        """How this store names its Redis keys (prefixes, and the way back from a name)."""
        return self._layout

    def redis_key(self, key: str, *, collection: str | None = None) -> str:
        """The Redis key that holds ``key`` of ``collection`` (for inspection and tooling)."""
        c = self.default_collection if collection is None else check_collection(collection)
        return self._layout.prefix(c) + check_key(key)

    async def eval_script(self, source: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run the Lua script ``source`` on ``keys`` (one slot) over this store's own connections,
        pipelined like its other commands and loaded on first use. Replies are raw (bytes);
        redis-py errors become this store's typed errors. For modules beside the store."""
        if self._closed:
            raise StoreClosedError(repr(self))
        script = _EXTRA_SCRIPTS.get(source) or _EXTRA_SCRIPTS.setdefault(source, Script("extra", source))
        try:
            return await self._script(script, keys, args)
        except _REDIS_ERRORS as exc:
            raise self._failed(exc, keys[0]) from exc

    # -- key layout ----------------------------------------------------------------------

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

    # -- errors: the hooks of Store._call -----------------------------------------------

    @property
    def follows_sentinel(self) -> bool:
        """Whether the store finds its primary through Sentinel on every new connection."""
        return self._sentinel is not None and self._node is not None

    def _translate_error(self, exc: BaseException) -> BaseKeyValueError:
        return redis_errors.translate(self, exc)

    def _connection_error(self, exc: BaseException) -> StoreConnectionError:
        return redis_errors.connection_error(self, exc)

    def _recover(self, exc: BaseException) -> bool:
        if isinstance(exc, RedisReadOnlyError) and self.follows_sentinel:
            # The primary we knew was demoted: drop the connection; the next asks Sentinel again.
            assert self._node is not None
            self._node.reset()
        return False

    def _failed(self, exc: BaseException, name: str, single: bool = True) -> BaseKeyValueError:
        """What the hot paths (which skip ``_call`` for speed) raise for ``exc`` about the
        Redis key ``name``: the same as ``_call``."""
        redis_errors.note(exc, name, single)
        self._recover(exc)
        return self._raised(exc)

    async def _script(
        self, script: Script, keys: Sequence[str], args: Sequence[Any], *, write: bool = False
    ) -> Any:
        return await self._one(
            ("EVALSHA", script.sha, len(keys), *keys, *args), keys[0], (script,), write=write
        )

    async def _one(
        self, command: tuple[Any, ...], key: str, scripts: Sequence[Script] = (), *, write: bool = False
    ) -> Any:
        """One command's reply; a write waits for ``wait_replicas`` replicas."""
        if write and self.wait_replicas:
            return (await self._batch([(command, key)], scripts, write=True))[0]
        try:
            try:
                return await self._send(command, key)
            except NoScriptError:
                # First use on this server (or it restarted, or failed over): load and go again.
                await self._load(scripts)
                return await self._send(command, key)
        except _REDIS_ERRORS as exc:
            redis_errors.note(exc, key)  # which entry, for the message (errors.translate)
            raise

    async def _load(self, scripts: Sequence[Script]) -> None:
        logger.debug("%r: loading %d Lua script(s) after NOSCRIPT", self, len(scripts))
        for script in scripts:  # on a cluster, SCRIPT LOAD reaches every master
            if self._router is not None:
                await self._router.on_every_primary(("SCRIPT LOAD", script.source))
            else:
                await self._send(("SCRIPT LOAD", script.source), None)

    async def _batch(
        self,
        commands: list[tuple[tuple[Any, ...], str]],
        scripts: Sequence[Script] = (),
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
        try:
            if len(commands) == 1:
                replies = [await self._one(*commands[0], scripts)]
            else:
                try:
                    replies = await self._send_all(commands)
                except NoScriptError:
                    await self._load(scripts)
                    replies = await self._send_all(commands)
        except _REDIS_ERRORS as exc:
            redis_errors.note(exc, commands[0][1], single=False)  # a batch: its collection
            raise
        if waits:
            acked = min(int(r) for r in replies[-waits:])
            if acked < self.wait_replicas:
                raise redis_errors.Unreplicated(
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
        name = self._layout.prefix(c) + check_key(key)
        try:
            raw = await self._send(("GET", name), name)
        except _REDIS_ERRORS as exc:
            raise self._failed(exc, name) from exc
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
        name = self._layout.prefix(c) + check_key(key)
        seconds = check_ttl(ttl)
        payload = _payload(copy_value(value))
        try:
            args = ("SET", name, payload) if seconds is None else ("SET", name, payload, "PX", _ms(seconds))
            await (self._one(args, name, write=True) if self.wait_replicas else self._send(args, name))
        except _REDIS_ERRORS as exc:
            raise self._failed(exc, name) from exc

    async def get_many(self, keys: Sequence[str], *, collection: str | None = None) -> list[Value | None]:
        """Return the values of ``keys`` in order, ``None`` for each missing one (one round
        trip on a server, one per node on a cluster)."""
        if self._closed:
            raise StoreClosedError(repr(self))
        c = self.default_collection if collection is None else check_collection(collection)
        keys = self._keys_arg(keys)
        if not keys:
            return []
        prefix = self._layout.prefix(c)
        names = [prefix + k for k in keys]
        groups = self._groups(c, names)
        try:
            replies = await self._batch(
                [
                    (("EVALSHA", scripts.GET_MANY.sha, len(g), *(names[i] for i in g)), names[g[0]])
                    for g in groups
                ],
                (scripts.GET_MANY,),
            )
        except _REDIS_ERRORS as exc:
            raise self._failed(exc, names[0], single=False) from exc
        out: list[Value | None] = [None] * len(keys)
        for group, reply in zip(groups, replies, strict=True):
            for i, raw in zip(group, reply, strict=True):
                if raw is not None:
                    out[i] = _parse(c, keys[i], raw)[1]
        return out

    # -- the backend interface -------------------------------------------------------------

    async def _get_versioned(self, collection: str, key: str) -> Versioned | None:
        reply = await self._script(scripts.READ, (self._layout.prefix(collection) + key,), ())
        if reply is None:
            return None
        header, value = _parse(collection, key, reply[0])
        return Versioned(value, header[len(_MAGIC) :], _ttl_seconds(reply[1]))

    async def _get_versioned_many(self, collection: str, keys: list[str]) -> list[Versioned | None]:
        if not keys:
            return []
        prefix = self._layout.prefix(collection)
        names = [prefix + k for k in keys]
        groups = self._groups(collection, names)
        commands = [
            (("EVALSHA", scripts.READ_MANY.sha, len(g), *(names[i] for i in g)), names[g[0]]) for g in groups
        ]
        replies = await self._batch(commands, (scripts.READ_MANY,))
        out: list[Versioned | None] = [None] * len(keys)
        for group, reply in zip(groups, replies, strict=True):
            for i, entry in zip(group, reply, strict=True):
                if entry is not None:
                    header, value = _parse(collection, keys[i], entry[0])
                    out[i] = Versioned(value, header[len(_MAGIC) :], _ttl_seconds(entry[1]))
        return out

    async def _put(self, collection: str, key: str, value: Value, ttl: float | None) -> None:
        payload = _payload(value)
        name = self._layout.prefix(collection) + key
        args = ("SET", name, payload) if ttl is None else ("SET", name, payload, "PX", _ms(ttl))
        await self._one(args, name, write=True)

    async def _put_many(
        self, collection: str, keys: list[str], values: list[Value], ttl: float | None
    ) -> None:
        if not keys:
            return
        prefix = self._layout.prefix(collection)
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
                        scripts.PUT_MANY_PX.sha,
                        len(g),
                        *(names[i] for i in g),
                        px,
                        *(payloads[i] for i in g),
                    ),
                    names[g[0]],
                )
                for g in groups
            ]
        await self._batch(commands, (scripts.PUT_MANY_PX,), write=True)

    async def _delete(self, collection: str, key: str) -> bool:
        name = self._layout.prefix(collection) + key
        return bool(await self._one(("DEL", name), name, write=True))

    async def _delete_many(self, collection: str, keys: list[str]) -> int:
        if not keys:
            return 0
        prefix = self._layout.prefix(collection)
        names = [prefix + k for k in dict.fromkeys(keys)]
        return await self._unlink(collection, names, "DEL")

    async def _unlink(self, collection: str, names: list[str], command: str) -> int:
        groups = self._groups(collection, names)
        replies = await self._batch(
            [((command, *(names[i] for i in g)), names[g[0]]) for g in groups], write=True
        )
        return sum(int(r) for r in replies)

    async def _put_if_absent(self, collection: str, key: str, value: Value, ttl: float | None) -> bool:
        payload = _payload(value)
        name = self._layout.prefix(collection) + key
        args: tuple[Any, ...] = (
            ("SET", name, payload, "NX") if ttl is None else ("SET", name, payload, "NX", "PX", _ms(ttl))
        )
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

    async def _compare_and_set(
        self, collection: str, key: str, value: Value, version: str, ttl: float | None
    ) -> bool:
        expected = _MAGIC + version
        if len(expected) != _HEADER:
            return False  # not a version this store ever handed out
        payload = _payload(value)
        px = "" if ttl is None else _ms(ttl)
        reply = await self._script(
            scripts.COMPARE_AND_SET,
            (self._layout.prefix(collection) + key,),
            (expected, payload, px),
            write=True,
        )
        return bool(reply)

    async def _delete_if_version(self, collection: str, key: str, version: str) -> bool:
        expected = _MAGIC + version
        if len(expected) != _HEADER:
            return False
        reply = await self._script(
            scripts.DELETE_IF_VERSION, (self._layout.prefix(collection) + key,), (expected,), write=True
        )
        return bool(reply)

    # -- listing ---------------------------------------------------------------------------

    async def _scan(self, pattern: str) -> AsyncGenerator[list[bytes], None]:
        """Pages of every key matching ``pattern``: a full SCAN of the server, or of every
        master of a cluster."""
        if self._router is not None:
            await self._router.ready()
            nodes: list[Any] = list(self._router.client.get_primaries())
        elif isinstance(self._client, RedisCluster):
            await self._plain.send(("PING",))  # initializes the client and refreshes a stale slot map
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
                    cursor, names = await self._plain.bounded(
                        self._client.execute_command(*args, target_nodes=node, **RAW)
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
        prefix = self._layout.prefix(collection)
        start = len(prefix.encode())
        found: dict[str, None] = {}
        async with contextlib.aclosing(self._scan(_glob_escape(prefix) + "*")) as pages:
            async for names in pages:
                for name in names:
                    with contextlib.suppress(UnicodeDecodeError):  # not ours: keys are UTF-8
                        found[name[start:].decode()] = None
                if limit is not None and len(found) >= limit:
                    break
        keys = [k for k in found if k]
        return keys if limit is None else keys[:limit]

    async def _collections(self, limit: int | None) -> list[str]:
        if limit == 0:
            return []
        found: dict[str, None] = {}
        async with contextlib.aclosing(self._scan(_glob_escape(self._layout.base) + "*")) as pages:
            async for names in pages:
                for name in names:
                    try:
                        parsed = self._layout.split(name.decode())
                    except UnicodeDecodeError:
                        continue
                    if parsed is not None:
                        found[parsed[0]] = None
                if limit is not None and len(found) >= limit:
                    break
        names_found = list(found)
        return names_found if limit is None else names_found[:limit]

    async def _destroy_collection(self, collection: str) -> bool:
        prefix = self._layout.prefix(collection)
        removed = 0
        async with contextlib.aclosing(self._scan(_glob_escape(prefix) + "*")) as pages:
            async for names in pages:
                removed += await self._unlink(collection, [n.decode() for n in names], "UNLINK")
        return removed > 0

    async def _close(self) -> None:
        pipes = self._node or self._router
        if pipes is not None:
            await pipes.close()
        if self._owns_client:
            with contextlib.suppress(*_REDIS_ERRORS, OSError):
                await self._client.aclose()
                for sentinel in _seam.sentinel_clients(self._sentinel) if self._sentinel is not None else ():
                    await sentinel.aclose()
