"""Automatic pipelining over redis-py's asyncio connections.

Commands issued in one event-loop tick, or while earlier ones are still in flight, are
written together as one pipeline on one connection per node (what ioredis calls auto
pipelining). Each command has its own future: it receives its own reply or its own
error, so one command's error never reaches another caller.

redis-py makes and authenticates each connection (TLS, ACL users, ``SELECT``,
``CLIENT SETNAME``, Sentinel's master lookup); once it is ready the socket is handed to
a small protocol object here that writes commands as they come and hands each reply to
the oldest waiting future. Nothing waits for a pool: any number of commands can be in
flight. A connection that drops fails only the commands in flight on it (as redis-py's
``ConnectionError``); the next command opens a new one. A connection that answers
nothing for ``timeout`` seconds while commands wait is closed, failing those commands
with redis-py's ``TimeoutError``.

``ClusterPipeline`` keeps one ``NodePipeline`` per cluster node, routes each command by
its key's hash slot and follows ``MOVED`` (refreshing the slot map) and ``ASK``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    RedisError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from fastmcp_sessions import telemetry
from fastmcp_sessions.stores.redis import _seam

try:
    import hiredis

    _HIREDIS = True
except ImportError:  # optional: a pure-Python reader does the same
    _HIREDIS = False

Command = tuple[Any, ...]

_REDIRECTS = 8  # MOVED/ASK/TRYAGAIN hops one command may take before giving up
_CLUSTER_ERRORS: dict[str, type[RedisError]] = {
    "MOVED": MovedError,
    "ASK": AskError,
    "TRYAGAIN": TryAgainError,
    "CLUSTERDOWN": ClusterDownError,
}


class _Incomplete:
    """Marker: the buffer does not hold a whole reply yet."""


_INCOMPLETE = _Incomplete()


class _ErrorReply:
    """An error reply (``-ERR ...``), turned into a redis-py exception for its own caller only."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def error_of(text: str) -> RedisError:
    """The redis-py exception for an error reply's text (``MOVED``, ``NOSCRIPT``, ...)."""
    code = text.split(" ", 1)[0]
    cls = _CLUSTER_ERRORS.get(code)
    if cls is not None:  # redis-py 5's parser knows these only inside its cluster client
        return cls(text[len(code) + 1 :])
    return _seam.parse_error(text)


def _encode(arg: Any) -> bytes:
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        return arg.encode()
    if isinstance(arg, int) and not isinstance(arg, bool):
        return b"%d" % arg
    if isinstance(arg, float):
        return repr(arg).encode()
    raise TypeError(f"cannot send a {type(arg).__name__} to Redis")


def pack(args: Command) -> bytes:
    """One command in RESP (``SCRIPT LOAD`` style names are split into words)."""
    if isinstance(args[0], str) and " " in args[0]:
        args = (*args[0].split(), *args[1:])
    if _HIREDIS:
        packed: bytes = hiredis.pack_command(tuple(_encode(a) for a in args))
        return packed
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = _encode(arg)
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _parse(buf: bytearray, pos: int) -> tuple[Any, int] | _Incomplete:
    """One RESP2/RESP3 reply starting at ``pos``: ``(reply, next position)``."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return _INCOMPLETE
    kind = buf[pos]
    if kind == 36:  # $ bulk string
        n = int(buf[pos + 1 : end])
        if n < 0:
            return None, end + 2
        stop = end + 2 + n
        if len(buf) < stop + 2:
            return _INCOMPLETE
        return bytes(buf[end + 2 : stop]), stop + 2
    if kind == 43:  # + simple string
        return bytes(buf[pos + 1 : end]), end + 2
    if kind == 58:  # : integer
        return int(buf[pos + 1 : end]), end + 2
    if kind in (42, 126, 37, 62):  # * array, ~ set, % map, > push
        n = int(buf[pos + 1 : end])
        if n < 0:
            return None, end + 2
        count = 2 * n if kind == 37 else n
        items: list[Any] = []
        at = end + 2
        for _ in range(count):
            part = _parse(buf, at)
            if isinstance(part, _Incomplete):
                return part
            item, at = part
            items.append(item)
        if kind == 37:
            return dict(zip(items[::2], items[1::2], strict=True)), at
        return items, at
    if kind == 45:  # - error
        return _ErrorReply(buf[pos + 1 : end].decode(errors="replace")), end + 2
    if kind == 95:  # _ null
        return None, end + 2
    if kind == 35:  # # boolean
        return buf[pos + 1 : end] == b"t", end + 2
    if kind == 44:  # , double
        return float(buf[pos + 1 : end]), end + 2
    if kind in (33, 61):  # ! bulk error, = verbatim string
        n = int(buf[pos + 1 : end])
        stop = end + 2 + n
        if len(buf) < stop + 2:
            return _INCOMPLETE
        body = bytes(buf[end + 2 : stop])
        return (_ErrorReply(body.decode(errors="replace")) if kind == 33 else body[4:]), stop + 2
    raise RedisConnectionError(f"the server sent a reply this client cannot read (type byte {kind!r})")


class _PyReader:
    """Incremental RESP reader: ``feed`` bytes, ``gets`` whole replies."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0

    def feed(self, data: bytes) -> None:
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def gets(self) -> Any:
        if self._pos >= len(self._buf):
            return _INCOMPLETE
        part = _parse(self._buf, self._pos)
        if isinstance(part, _Incomplete):
            return part
        reply, self._pos = part
        return reply


class _HiredisReader:
    """hiredis's C reader behind the same interface."""

    def __init__(self) -> None:
        self._reader = hiredis.Reader(notEnoughData=_INCOMPLETE)

    def feed(self, data: bytes) -> None:
        self._reader.feed(data)

    def gets(self) -> Any:
        reply = self._reader.gets()
        if isinstance(reply, hiredis.ReplyError):
            return _ErrorReply(str(reply))
        return reply


class _Link(asyncio.Protocol):
    """One open connection: writes batches, hands each reply to the oldest waiting future."""

    def __init__(self, owner: NodePipeline, connection: Any) -> None:
        self.owner = owner
        # redis-py closes the socket when its Connection object is collected: keep it alive.
        self.connection = connection
        self.transport = _seam.transport_of(connection)
        self.loop = asyncio.get_running_loop()
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.reader: _PyReader | _HiredisReader = _HiredisReader() if _HIREDIS else _PyReader()
        self.closed = False
        self.progress = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def send(self, data: bytes, futures: list[asyncio.Future[Any]]) -> None:
        if not self.waiting:
            self.progress = self.loop.time()
            if self._timer is None:
                self._timer = self.loop.call_later(self.owner.timeout / 4, self._watch)
        self.waiting.extend(futures)
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        waiting = self.waiting
        self.progress = self.loop.time()
        while True:
            try:
                reply = reader.gets()
            except Exception as exc:  # a protocol error: nothing after it can be trusted
                self.fail(RedisConnectionError(f"unreadable reply from {self.owner.name}: {exc}"))
                return
            if reply is _INCOMPLETE:
                return
            if not waiting:
                if type(reply) is list and reply and reply[0] in (b"message", b"invalidate", b"pmessage"):
                    continue  # a RESP3 push nobody asked for
                self.fail(RedisConnectionError(f"{self.owner.name} sent a reply nobody asked for"))
                return
            future = waiting.popleft()
            if future.done():  # its caller was cancelled
                continue
            if type(reply) is _ErrorReply:
                future.set_exception(error_of(reply.text))
                if reply.text.startswith("ERR Protocol error"):
                    # The server closes the connection after this reply: nothing more on it.
                    self.fail(RedisConnectionError(f"{self.owner.name} closed the connection: {reply.text}"))
                    return
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f" ({exc})" if exc else ""
        self.fail(RedisConnectionError(f"the connection to {self.owner.name} was closed{reason}"))

    def fail(self, error: RedisError) -> None:
        """Close the connection; every command in flight on it gets a copy of ``error``."""
        if not self.closed:
            self.closed = True
            self.owner.lost(self)
            self.transport.abort()
            _seam.forget_socket(self.connection)  # ours to close, done
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting, self.waiting = self.waiting, deque()
        for future in waiting:
            if not future.done():
                future.set_exception(type(error)(*error.args))

    def _watch(self) -> None:
        self._timer = None
        if self.closed or not self.waiting:
            return
        timeout = self.owner.timeout
        if self.loop.time() - self.progress > timeout:
            self.fail(RedisTimeoutError(f"{self.owner.name} sent no reply within {timeout:g}s"))
            return
        self._timer = self.loop.call_later(timeout / 4, self._watch)


class NodePipeline:
    """Auto-pipelined commands to one Redis server, over one connection at a time.

    Args:
        make_connection: Returns a new, unconnected redis-py asyncio ``Connection``.
        name: ``host:port`` for messages.
        timeout: Seconds a command may wait for its reply while the server sends nothing.
    """

    def __init__(self, make_connection: Callable[[], Any], name: str, timeout: float) -> None:
        self.name = name
        self.timeout = timeout
        self._make = make_connection
        self._link: _Link | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._scheduled = False
        self._data: list[bytes] = []
        self._futures: list[asyncio.Future[Any]] = []
        self._wait_at: int | None = None  # index of the WAIT queued in this batch, if any
        self._closed = False

    def send(self, args: Command, key: Any = None) -> asyncio.Future[Any]:
        """Queue one command; the future resolves to its raw reply (bytes, int, list, None)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if args[0] == "WAIT":
            self._queue_wait(pack(args), future)
        else:
            self._data.append(pack(args))
            self._futures.append(future)
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def _queue_wait(self, data: bytes, future: asyncio.Future[Any]) -> None:
        # WAIT confirms every write sent before it on the connection, and blocks the
        # connection while it waits: a batch carries one WAIT, after all its writes, and its
        # reply answers every caller that asked for one (their writes all precede it).
        # The WAIT's own future is internal, so no caller's cancellation reaches the others.
        loop = future.get_loop()
        if self._wait_at is None:
            shared: asyncio.Future[Any] = loop.create_future()
        else:
            del self._data[self._wait_at]
            shared = self._futures.pop(self._wait_at)
        self._data.append(data)
        self._futures.append(shared)
        self._wait_at = len(self._futures) - 1
        _follow(shared, future)

    async def send_all(self, commands: Sequence[tuple[Command, Any]]) -> list[Any]:
        """Run ``commands`` (with their routing keys, unused here) in one write; replies in
        order, or the first error once every command has answered."""
        return await gather_replies([self.send(args) for args, _ in commands])

    def _flush(self) -> None:
        self._scheduled = False
        if not self._futures:
            return
        link = self._link
        if link is not None and link.loop is not asyncio.get_running_loop():
            # Used from another event loop than the one the connection belongs to (a new
            # asyncio.run): that connection cannot be used here; open one in this loop.
            link = self._link = None
        if link is None or link.closed:
            if self._closed:
                futures, self._data, self._futures, self._wait_at = self._futures, [], [], None
                for future in futures:
                    if not future.done():
                        future.set_exception(
                            RedisConnectionError(f"the store closed its connection to {self.name}")
                        )
            elif self._connecting is None:
                self._connecting = asyncio.get_running_loop().create_task(self._connect())
            return
        data, futures = self._data, self._futures
        self._data, self._futures, self._wait_at = [], [], None
        telemetry.record_pipeline_batch(len(futures), "redis")
        link.send(data[0] if len(data) == 1 else b"".join(data), futures)

    async def _connect(self) -> None:
        try:
            connection = self._make()
            try:
                # Bounded even when the connection has no timeouts of its own (a client passed in).
                async with asyncio.timeout(2 * self.timeout):
                    await connection.connect()
            except TimeoutError:
                raise RedisTimeoutError(
                    f"could not connect to {self.name} within {2 * self.timeout:g}s"
                ) from None
            link = _Link(self, connection)
            link.transport.set_protocol(link)
            if self._closed:
                link.fail(RedisConnectionError(f"the connection to {self.name} was closed"))
                raise RedisConnectionError(f"the connection to {self.name} was closed")
            self._link = link
        except BaseException as exc:
            error = (
                exc if isinstance(exc, RedisError) else RedisConnectionError(f"{type(exc).__name__}: {exc}")
            )
            futures, self._data, self._futures, self._wait_at = self._futures, [], [], None
            for future in futures:
                if not future.done():
                    copy = type(error)(*error.args)
                    copy.__cause__ = exc
                    future.set_exception(copy)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._connecting = None
        self._flush()

    def lost(self, link: _Link) -> None:
        if self._link is link:
            self._link = None

    def reset(self) -> None:
        """Drop the connection (commands in flight on it fail); the next command reconnects."""
        if self._link is not None:
            self._link.fail(RedisConnectionError(f"the connection to {self.name} was dropped"))

    async def close(self) -> None:
        """Close the connection; waiting commands fail with ``ConnectionError``."""
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(BaseException):
                await self._connecting
        if self._link is not None:
            self._link.fail(RedisConnectionError(f"the connection to {self.name} was closed by the store"))
        futures, self._data, self._futures, self._wait_at = self._futures, [], [], None
        for future in futures:
            if not future.done():
                future.set_exception(RedisConnectionError(f"the store closed its connection to {self.name}"))


async def gather_replies(futures: list[asyncio.Future[Any]]) -> list[Any]:
    """The results of ``futures`` in order; the first error raised once all are done."""
    out: list[Any] = []
    error: BaseException | None = None
    for future in futures:
        try:
            out.append(await future)
        except RedisError as exc:
            if error is None:
                error = exc
            out.append(None)
    if error is not None:
        raise error
    return out


class ClusterPipeline:
    """Auto-pipelined commands to a Redis Cluster: one ``NodePipeline`` per node.

    Uses a redis-py ``RedisCluster`` for the slot map only. Each command is routed by the
    hash slot of its key; ``MOVED`` refreshes the slot map and goes to the new owner,
    ``ASK`` sends ``ASKING`` and the command, back to back, to the importing node.
    """

    def __init__(self, client: Any, timeout: float) -> None:
        self.client = client
        self.timeout = timeout
        self._pipes: dict[str, NodePipeline] = {}
        self._ready = False
        self._refreshing: asyncio.Task[None] | None = None
        self._init_lock: asyncio.Lock | None = None

    async def ready(self) -> None:
        """Load the slot map (once; later when a ``MOVED`` says it is stale)."""
        if self._ready:
            return
        if self._init_lock is None:
            self._init_lock = asyncio.Lock()
        async with self._init_lock:
            if not self._ready:
                try:
                    await asyncio.wait_for(self.client.initialize(), 2 * self.timeout)
                except TimeoutError:
                    raise RedisTimeoutError(
                        f"the cluster sent no slot map within {2 * self.timeout:g}s"
                    ) from None
                self._ready = True

    def pipe(self, node: Any) -> NodePipeline:
        """The pipeline to ``node`` (a redis-py ``ClusterNode``)."""
        pipe = self._pipes.get(node.name)
        if pipe is None:
            # The store decides about retries.
            make = _seam.node_connection_factory(node, retry=Retry(NoBackoff(), 0))
            pipe = NodePipeline(make, node.name, self.timeout)
            self._pipes[node.name] = pipe
        return pipe

    def node_for(self, key: str | bytes) -> Any:
        """The node that holds ``key``'s slot, by the current slot map."""
        raw = key.encode() if isinstance(key, str) else key
        return _seam.node_for_slot(self.client, key_slot(raw))

    def send(self, args: Command, key: str | bytes) -> asyncio.Future[Any]:
        """Queue one command on its node's pipeline (the slot map must be loaded)."""
        return self.pipe(self.node_for(key)).send(args)

    async def execute(self, args: Command, key: str | bytes) -> Any:
        """Run one command, following redirects."""
        await self.ready()
        try:
            return await self.send(args, key)
        except (MovedError, AskError, TryAgainError, ClusterDownError) as exc:
            return await self._redirected(args, key, exc)
        except RedisConnectionError:
            self._refresh_soon()  # the node may have failed over
            raise

    async def send_all(self, commands: Sequence[tuple[Command, Any]]) -> list[Any]:
        """Run ``commands`` (each with its routing key): one write per node; replies in order."""
        await self.ready()
        futures = [self.send(args, key) for args, key in commands]
        out: list[Any] = []
        error: BaseException | None = None
        for (args, key), future in zip(commands, futures, strict=True):
            try:
                out.append(await future)
            except (MovedError, AskError, TryAgainError, ClusterDownError) as exc:
                try:
                    out.append(await self._redirected(args, key, exc))
                except RedisError as again:
                    error = error or again
                    out.append(None)
            except RedisError as exc:
                if isinstance(exc, RedisConnectionError):
                    self._refresh_soon()
                error = error or exc
                out.append(None)
        if error is not None:
            raise error
        return out

    async def on_every_primary(self, args: Command) -> list[Any]:
        """Run ``args`` on every primary (``SCRIPT LOAD``)."""
        await self.ready()
        return await gather_replies([self.pipe(n).send(args) for n in self.client.get_primaries()])

    async def _redirected(self, args: Command, key: str | bytes, exc: RedisError) -> Any:
        deadline = asyncio.get_running_loop().time() + 2 * self.timeout
        for _ in range(_REDIRECTS):
            if isinstance(exc, MovedError):
                await self.refresh()
                node = self.client.get_node(exc.host, exc.port) or self.node_for(key)
                future = self.pipe(node).send(args)
            elif isinstance(exc, AskError):
                node = self.client.get_node(exc.host, exc.port)
                if node is None:
                    await self.refresh()
                    node = self.client.get_node(exc.host, exc.port) or self.node_for(key)
                pipe = self.pipe(node)
                asking = pipe.send(("ASKING",))
                future = pipe.send(args)
                asking.add_done_callback(_consume)
            else:  # TRYAGAIN (keys of a slot mid-migration) or CLUSTERDOWN: wait a little
                if asyncio.get_running_loop().time() > deadline:
                    raise exc
                await asyncio.sleep(0.05)
                if isinstance(exc, ClusterDownError):
                    await self.refresh()
                future = self.send(args, key)
            try:
                return await future
            except (MovedError, AskError, TryAgainError, ClusterDownError) as again:
                exc = again
        raise exc

    async def refresh(self) -> None:
        """Reload the slot map now (one reload at a time; concurrent callers share it)."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.get_running_loop().create_task(self._reload())
        await asyncio.shield(self._refreshing)

    def _refresh_soon(self) -> None:
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.get_running_loop().create_task(self._reload())

    async def _reload(self) -> None:
        with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
            await asyncio.wait_for(_seam.reload_slots(self.client), 2 * self.timeout)

    async def close(self) -> None:
        """Close every node's connection."""
        if self._refreshing is not None and not self._refreshing.done():
            self._refreshing.cancel()
            with contextlib.suppress(BaseException):
                await self._refreshing
        for pipe in list(self._pipes.values()):
            await pipe.close()
        self._pipes.clear()


def _follow(leader: asyncio.Future[Any], follower: asyncio.Future[Any]) -> None:
    """Give ``follower`` the outcome of ``leader`` once it has one."""

    def copy(done: asyncio.Future[Any]) -> None:
        if follower.done():
            return
        if done.cancelled():
            follower.cancel()
            return
        error = done.exception()
        if error is None:
            follower.set_result(done.result())
        else:
            follower.set_exception(type(error)(*error.args))

    leader.add_done_callback(copy)


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # ASKING's own reply: retrieved so asyncio does not warn
