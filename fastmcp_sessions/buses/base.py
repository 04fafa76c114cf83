"""The shared part of every bus: local fan-out, the wire format, and (for buses that
cross processes) the bounded outbox and the self-healing subscription loop.

A bus implements mcp's ``SubscriptionBus`` (``mcp.server.subscriptions``):
``await publish(event)`` and ``subscribe(listener) -> unsubscribe``. Listeners are the
``deliver`` callbacks of mcp's ``ListenHandler`` (one per open ``subscriptions/listen``
stream). What every bus here adds:

- Publishing never waits on a listener and never fails because of one: each listener has
  its own bounded buffer, drained by its own event-loop callback, so a slow listener only
  delays itself and a raising one is logged and counted (``BusStats.listener_errors``).
- A full buffer drops the event for that listener only, counted in
  ``BusStats.dropped_overflow`` and logged (at most once per ``WARN_INTERVAL`` seconds
  per cause, with the running count).
- ``publish_nowait`` may be called from any thread (a sync tool runs in a worker thread).

``QueuedBus`` is the base of buses that cross processes through a backend (Redis here;
PostgreSQL LISTEN/NOTIFY fits the same two methods). ``publish`` puts the event in a
bounded outbox and returns; a sender task writes it to the backend. While the backend is
down the events wait there (the same event twice is kept once: events are level
triggers), the sender retries with backoff, and past ``max_outbox`` new events are
dropped, counted and logged - so the tool call that published never fails or blocks on
the backend. A receiver task keeps one subscription open and opens it again after any
error (a restarted server), and after such a gap delivers the three list-changed events
locally, because a change announced during the gap may have been missed; clients refetch
the lists, which is what a list-changed event asks anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import anyio.from_thread
from mcp.server.subscriptions import (
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
    SubscriptionBus,
    ToolsListChanged,
)

from fastmcp_sessions import telemetry
from fastmcp_sessions.buses import _options
from fastmcp_sessions.errors import InvalidArgumentError, StoreOptionError

__all__ = [
    "DEFAULT_MAX_BUFFERED_EVENTS",
    "DEFAULT_MAX_OUTBOX",
    "MAX_URI_LENGTH",
    "Bus",
    "BusStats",
    "QueuedBus",
    "decode_event",
    "encode_event",
]

logger = logging.getLogger("fastmcp_sessions")

DEFAULT_MAX_BUFFERED_EVENTS = 1024
"""Events buffered per listener before further ones are dropped (and counted)."""

DEFAULT_MAX_OUTBOX = 1024
"""Distinct events a cross-process bus holds while its backend is slow or down."""

MAX_URI_LENGTH = 8192
"""Longest ``ResourceUpdated.uri`` a bus carries (a datagram or a message must stay small)."""

WARN_INTERVAL = 10.0
"""Seconds between two warnings of the same cause (the counters keep counting)."""

_MAX_ORIGINS = 4096  # publishing buses remembered for dropping repeats (oldest forgotten)
_DRAIN_SLICE = 16  # events one drain callback hands a listener before yielding the loop

_LIST_CHANGED: tuple[ServerEvent, ...] = (ToolsListChanged(), PromptsListChanged(), ResourcesListChanged())
_KINDS: dict[type, str] = {
    ToolsListChanged: "tools",
    PromptsListChanged: "prompts",
    ResourcesListChanged: "resources",
}
_BY_KIND: dict[str, ServerEvent] = {
    "tools": ToolsListChanged(),
    "prompts": PromptsListChanged(),
    "resources": ResourcesListChanged(),
}


@dataclass
class BusStats:
    """Counters of one bus (in this process), for logs, metrics and tests."""

    published: int = 0
    """Events handed to ``publish``/``publish_nowait``."""
    delivered: int = 0
    """Listener calls that returned normally."""
    received: int = 0
    """Events that arrived from other processes through the backend."""
    dropped_overflow: int = 0
    """Events dropped because a listener's buffer or the outbox was full."""
    listener_errors: int = 0
    """Listener calls that raised (logged; the other listeners were not affected)."""
    publish_failures: int = 0
    """Failed attempts to write queued events to the backend (the events stayed queued)."""
    malformed: int = 0
    """Backend messages on our channel that were not events of ours (ignored)."""
    reconnects: int = 0
    """Times the subscription to the backend was lost and opened again."""
    duplicates: int = 0
    """Events that arrived twice (a write retried after its reply was lost) and were delivered once."""
    missed: int = 0
    """Times more events were missed than the backend keeps (trimmed); the three list-changed
    events were delivered instead."""


def _check_event(event: object) -> ServerEvent:
    if isinstance(event, ResourceUpdated):
        if not isinstance(event.uri, str) or not event.uri or len(event.uri) > MAX_URI_LENGTH:
            raise InvalidArgumentError(
                f"ResourceUpdated.uri must be a non-empty str of at most {MAX_URI_LENGTH} characters"
            )
        return event
    if isinstance(event, ToolsListChanged | PromptsListChanged | ResourcesListChanged):
        return event
    raise TypeError(
        "a bus carries mcp.server.subscriptions events (ToolsListChanged, PromptsListChanged, "
        f"ResourcesListChanged, ResourceUpdated(uri)), not {type(event).__name__}"
    )


def encode_event(event: ServerEvent, origin: str, serial: int | None = None) -> bytes:
    """The wire form of ``event``: compact JSON tagged with the publishing bus's ``origin``
    and, from a ``QueuedBus``, the event's ``serial`` in that bus (so a retried write that
    had landed is delivered once)."""
    body: dict[str, str | int]
    if isinstance(event, ResourceUpdated):
        body = {"v": "1", "o": origin, "e": "resource", "u": event.uri}
    else:
        body = {"v": "1", "o": origin, "e": _KINDS[type(event)]}
    if serial is not None:
        body["n"] = serial
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def decode_event(data: bytes | str) -> tuple[str, ServerEvent] | None:
    """``(origin, event)`` from ``encode_event``'s output, or ``None`` for anything else."""
    decoded = _decode(data)
    return None if decoded is None else (decoded[0], decoded[2])


def _decode(data: bytes | str) -> tuple[str, int | None, ServerEvent] | None:
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict) or body.get("v") != "1" or not isinstance(body.get("o"), str):
        return None
    serial = body.get("n")
    if serial is not None and (not isinstance(serial, int) or isinstance(serial, bool)):
        return None
    kind = body.get("e")
    if kind == "resource":
        uri = body.get("u")
        if isinstance(uri, str) and uri and len(uri) <= MAX_URI_LENGTH:
            return body["o"], serial, ResourceUpdated(uri=uri)
        return None
    event = _BY_KIND.get(kind) if isinstance(kind, str) else None
    return (body["o"], serial, event) if event is not None else None


class _Listener:
    __slots__ = ("buffer", "closed", "fn", "scheduled")

    def __init__(self, fn: Callable[[ServerEvent], None]) -> None:
        self.fn = fn
        self.buffer: deque[ServerEvent] = deque()
        self.scheduled = False
        self.closed = False


class Bus:
    """Base of every bus: mcp's ``SubscriptionBus`` with isolated, bounded local fan-out.

    Args:
        server_name: Scopes the bus: buses of different server names never see each
            other's events, even on one backend.
        max_buffered_events: Events buffered per listener; beyond it events are dropped
            for that listener, counted in ``stats.dropped_overflow`` and logged.
    """

    crosses_processes: ClassVar[bool] = False
    """Whether events reach listeners in other processes (replicas)."""

    messaging_system: ClassVar[str] = "memory"
    """The ``messaging.system`` of this bus's spans and metrics."""

    def __init__(self, *, server_name: str, max_buffered_events: int = DEFAULT_MAX_BUFFERED_EVENTS) -> None:
        _options.text("server_name", server_name, accepted="a non-empty str without '/'")
        if "/" in server_name:
            raise StoreOptionError(f"server_name must be a non-empty str without '/', got {server_name!r}")
        _options.count("max_buffered_events", max_buffered_events)
        self.server_name = server_name
        self.max_buffered_events = max_buffered_events
        self.stats = BusStats()
        self.origin = secrets.token_hex(8)
        self._listeners: dict[object, _Listener] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._warned: dict[str, float] = {}
        self._warn_lock = threading.Lock()
        telemetry.watch_bus(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(server_name={self.server_name!r}, listeners={len(self._listeners)})"

    # -- SubscriptionBus -------------------------------------------------------------------

    async def publish(self, event: ServerEvent) -> None:
        """Deliver ``event`` to every listener (here and, for cross-process buses, in every
        replica); never raises because of a listener or the backend."""
        event = _check_event(event)
        if telemetry.SWITCH.on:
            with telemetry.span(f"publish {self.server_name}", self._telemetry_attributes(event, "publish")):
                self._publish_on_loop(event)
        else:
            self._publish_on_loop(event)
        # A checkpoint, as mcp's in-memory bus does: a burst of publishes from one task lets
        # the listen streams drain between events instead of overflowing.
        await asyncio.sleep(0)

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        """Register ``listener`` (sync, called on the event loop) and return an idempotent
        unsubscribe callable."""
        if not callable(listener):
            raise TypeError(f"listener must be callable, got {type(listener).__name__}")
        token = object()
        entry = _Listener(listener)
        self._listeners[token] = entry
        with contextlib.suppress(RuntimeError):  # no running loop yet: bound on first use
            self._bind(asyncio.get_running_loop())

        def unsubscribe() -> None:
            entry.closed = True
            entry.buffer.clear()
            self._listeners.pop(token, None)

        return unsubscribe

    # -- extras ----------------------------------------------------------------------------

    def publish_nowait(self, event: ServerEvent) -> None:
        """``publish`` from synchronous code, on any thread; never raises because of a
        listener or the backend. With no event loop anywhere yet (while the server is being
        set up) there can be no listener either, and the event is skipped."""
        event = _check_event(event)
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        loop = self._loop
        if running is not None and (loop is None or loop is running or loop.is_closed()):
            self._publish_on_loop(event)
            return
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._publish_on_loop, event)
                return
            except RuntimeError:  # the loop closed between the check and the call
                pass
        try:
            # A worker thread of anyio.to_thread (FastMCP's sync tools) reaches its loop so.
            anyio.from_thread.run_sync(self._publish_on_loop, event)
        except RuntimeError:
            logger.debug("%r: no event loop yet, so no listener: %r not published", self, event)

    async def ready(self, within: float = 5.0) -> bool:
        """Wait (up to ``within`` seconds) until events from other processes can arrive;
        ``True`` when they can. A bus that stays in one process is always ready."""
        self._bind(asyncio.get_running_loop())
        return True

    async def close(self) -> None:
        """Stop delivering; listeners registered later get nothing."""
        self._closed = True
        for entry in self._listeners.values():
            entry.closed = True
            entry.buffer.clear()
        self._listeners.clear()

    @property
    def listener_count(self) -> int:
        """Listeners registered on this bus in this process."""
        return len(self._listeners)

    # -- for subclasses --------------------------------------------------------------------

    def _send(self, event: ServerEvent) -> None:
        """Hand ``event`` to the backend (on the loop; must not raise or block)."""

    def _started(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called once the bus is bound to ``loop`` (start background work here)."""

    def _deliver_local(self, event: ServerEvent) -> None:
        """Queue ``event`` for every listener of this process (on the loop thread)."""
        loop = self._loop
        if loop is None or self._closed:
            return
        for entry in list(self._listeners.values()):
            if len(entry.buffer) >= self.max_buffered_events:
                self.stats.dropped_overflow += 1
                self._warn(
                    "overflow",
                    "%r: a listener's buffer is full (%d events); dropped an event for it "
                    "(%d dropped so far)",
                    self,
                    self.max_buffered_events,
                    self.stats.dropped_overflow,
                )
                continue
            entry.buffer.append(event)
            if not entry.scheduled:
                entry.scheduled = True
                loop.call_soon(self._drain, entry)

    def _telemetry_attributes(self, event: ServerEvent, operation: str) -> dict[str, str]:
        # The event's type only: a ResourceUpdated URI can name a user's data.
        return {
            "messaging.system": self.messaging_system,
            "messaging.operation.name": operation,
            "messaging.operation.type": "send" if operation == "publish" else "process",
            "messaging.destination.name": self.server_name,
            "fastmcp_sessions.bus.event": type(event).__name__,
        }

    def _warn(self, cause: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        with self._warn_lock:
            last = self._warned.get(cause)
            if last is not None and now - last < WARN_INTERVAL:
                return
            self._warned[cause] = now
        logger.warning(message, *args)

    # -- internals -------------------------------------------------------------------------

    def _publish_on_loop(self, event: ServerEvent) -> None:
        if self._closed:
            logger.debug("%r is closed: %r not published", self, event)
            return
        self._bind(asyncio.get_running_loop())
        self.stats.published += 1
        self._deliver_local(event)
        self._send(event)

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is loop or self._closed:
            return
        if self._loop is not None and not self._loop.is_closed():
            return  # bound to a loop that still runs; cross-thread calls go through it
        self._loop = loop
        for entry in self._listeners.values():
            if entry.buffer and not entry.scheduled:
                entry.scheduled = True
                loop.call_soon(self._drain, entry)
        self._started(loop)

    def _drain(self, entry: _Listener) -> None:
        entry.scheduled = False
        for _ in range(min(len(entry.buffer), _DRAIN_SLICE)):
            if entry.closed:
                return
            event = entry.buffer.popleft()
            try:
                if telemetry.SWITCH.on:
                    with telemetry.span(
                        f"deliver {self.server_name}", self._telemetry_attributes(event, "deliver")
                    ):
                        entry.fn(event)
                else:
                    entry.fn(event)
            except Exception:  # fan-out boundary: one listener must not affect the others
                self.stats.listener_errors += 1
                logger.exception(
                    "%r: a subscription listener raised; the other listeners are unaffected", self
                )
            else:
                self.stats.delivered += 1
        if entry.buffer and not entry.closed and self._loop is not None:
            entry.scheduled = True
            self._loop.call_soon(self._drain, entry)


class QueuedBus(Bus):
    """Base of buses that fan out through a backend: bounded outbox, sender, self-healing receiver.

    Subclasses implement ``_send_batch`` (write payloads to the backend) and ``_listen``
    (hold one subscription open, call ``on_ready`` once it is established and
    ``on_message`` for every payload; return or raise when it breaks).

    Args:
        max_outbox: Distinct events held while the backend is slow or down; beyond it new
            events are dropped, counted and logged.
        timeout: Seconds one write to the backend may take before it counts as failed.
        backoff: ``(first, max)`` seconds between attempts while the backend is down.
    """

    crosses_processes = True

    replays = False
    """Whether the backend keeps events, so a listener that reconnects gets what it missed
    (else the three list-changed events are delivered after every gap)."""

    def __init__(
        self,
        *,
        server_name: str,
        max_buffered_events: int = DEFAULT_MAX_BUFFERED_EVENTS,
        max_outbox: int = DEFAULT_MAX_OUTBOX,
        timeout: float = 5.0,
        backoff: tuple[float, float] = (0.05, 2.0),
    ) -> None:
        super().__init__(server_name=server_name, max_buffered_events=max_buffered_events)
        self.max_outbox = _options.count("max_outbox", max_outbox)
        self.timeout = _options.seconds("timeout", timeout)
        self._backoff = (float(backoff[0]), float(backoff[1]))
        self._outbox: dict[ServerEvent, int] = {}  # event -> its serial, in publishing order
        self._serials = itertools.count(1)
        self._seen: OrderedDict[str, int] = OrderedDict()  # origin -> last serial delivered
        self._wake: asyncio.Event | None = None
        self._subscribed: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._sender: asyncio.Task[None] | None = None
        self._receiver: asyncio.Task[None] | None = None
        self._ever_subscribed = False

    @property
    def subscribed(self) -> bool:
        """Whether the subscription to the backend is open right now."""
        return self._subscribed is not None and self._subscribed.is_set()

    @property
    def pending(self) -> int:
        """Events waiting in the outbox."""
        return len(self._outbox)

    async def ready(self, within: float = 5.0) -> bool:
        """Start the subscription if needed and wait up to ``within`` seconds for it;
        ``False`` if the backend is unreachable (the bus keeps retrying in the background)."""
        loop = asyncio.get_running_loop()
        self._bind(loop)
        self._ensure_receiver()
        assert self._subscribed is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), within)
        return self._subscribed.is_set()

    async def flush(self, within: float = 5.0) -> bool:
        """Wait up to ``within`` seconds until the outbox is empty; ``True`` if it is."""
        if self._idle is None or self._idle.is_set():  # nothing queued, nothing in flight
            return not self._outbox
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), within)
        return self._idle.is_set()

    async def close(self) -> None:
        """Send what is queued (waiting at most ``timeout``), then stop both tasks."""
        own_loop = self._loop is asyncio.get_running_loop()
        if own_loop and not self._closed:
            await self.flush(self.timeout)
        await super().close()
        tasks = [t for t in (self._sender, self._receiver) if t is not None and not t.done()]
        loop = self._loop
        for task in tasks:
            if own_loop:
                task.cancel()
            elif loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(task.cancel)  # tasks of another loop: stop them there
        if own_loop and tasks:
            await self._interrupt()
            await asyncio.wait(tasks, timeout=self.timeout)
        self._sender = self._receiver = None
        if self._outbox:
            self._warn("close", "%r closed with %d event(s) unsent", self, len(self._outbox))
        await self._close_backend()

    # -- for subclasses --------------------------------------------------------------------

    async def _send_batch(self, payloads: list[bytes]) -> None:
        raise NotImplementedError

    async def _listen(self, on_message: Callable[[bytes], None], on_ready: Callable[[], None]) -> None:
        raise NotImplementedError

    async def _close_backend(self) -> None:
        """Release what the bus opened (not a client it was given)."""

    async def _interrupt(self) -> None:
        """Break off a read in progress (a driver may not end it on cancellation alone)."""

    def _describe(self) -> str:
        return type(self).__name__

    # -- internals -------------------------------------------------------------------------

    def _started(self, loop: asyncio.AbstractEventLoop) -> None:
        self._wake = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._idle = asyncio.Event()
        if not self._outbox:
            self._idle.set()
        self._sender = self._receiver = None
        self._sender = loop.create_task(self._run_sender(), name=f"{self._describe()}-sender")
        if self._listeners:
            self._ensure_receiver()

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        """Register ``listener`` and make sure this process receives other replicas' events."""
        unsubscribe = super().subscribe(listener)
        if self._loop is not None and not self._loop.is_closed():
            self._ensure_receiver()
        return unsubscribe

    def _ensure_receiver(self) -> None:
        if self._closed or self._loop is None:
            return
        if self._receiver is None or self._receiver.done():
            self._receiver = self._loop.create_task(self._run_receiver(), name=f"{self._describe()}-receiver")

    def _send(self, event: ServerEvent) -> None:
        if event in self._outbox:
            return  # the same level trigger is already queued and not yet sent
        if len(self._outbox) >= self.max_outbox:
            self.stats.dropped_overflow += 1
            self._warn(
                "outbox",
                "%r: outbox full (%d events, backend slow or down); dropped an event (%d dropped so far)",
                self,
                self.max_outbox,
                self.stats.dropped_overflow,
            )
            return
        self._outbox[event] = next(self._serials)
        if self._idle is not None:
            self._idle.clear()
        if self._wake is not None:
            self._wake.set()

    async def _run_sender(self) -> None:
        assert self._wake is not None and self._idle is not None
        delay = self._backoff[0]
        while True:
            if not self._outbox:
                self._idle.set()
                await self._wake.wait()
            self._wake.clear()
            # Taken out before sending: an event published again during the write is a new
            # change and must be sent again, not merged into the one in flight.
            batch = [(e, self._outbox[e]) for e in itertools.islice(self._outbox, 128)]
            for event, _ in batch:
                del self._outbox[event]
            try:
                await asyncio.wait_for(
                    self._send_batch([encode_event(e, self.origin, n) for e, n in batch]), self.timeout
                )
            except asyncio.CancelledError:
                self._requeue(batch)
                raise
            except Exception as error:  # the backend's failure must never reach the publisher
                self.stats.publish_failures += 1
                self._requeue(batch)
                self._warn(
                    "publish",
                    "%r: could not publish %d event(s) (%s: %s); they stay queued (%d) and are retried",
                    self,
                    len(batch),
                    type(error).__name__,
                    error,
                    len(self._outbox),
                )
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, self._backoff[1])
                self._wake.set()
            else:
                delay = self._backoff[0]

    def _requeue(self, batch: list[tuple[ServerEvent, int]]) -> None:
        # The batch keeps its serials: if the failed write had landed, listeners drop the repeat.
        merged = dict(batch)
        for event, serial in self._outbox.items():
            merged.setdefault(event, serial)
        while len(merged) > self.max_outbox:
            merged.pop(next(reversed(merged)))
            self.stats.dropped_overflow += 1
        self._outbox = merged
        if self._idle is not None and merged:
            self._idle.clear()

    async def _run_receiver(self) -> None:
        assert self._subscribed is not None
        delay = self._backoff[0]
        while not self._closed:
            established = False

            def on_ready() -> None:
                nonlocal established, delay
                established = True
                delay = self._backoff[0]
                self._on_ready()

            try:
                await self._listen(self._on_message, on_ready)
                raise ConnectionError("the subscription ended")
            except asyncio.CancelledError:
                raise
            except Exception as error:  # reconnect on anything: the loop is the recovery
                self._subscribed.clear()
                if established:
                    self.stats.reconnects += 1
                self._warn(
                    "subscribe",
                    "%r: subscription lost or not established (%s: %s); retrying",
                    self,
                    type(error).__name__,
                    error,
                )
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, self._backoff[1])

    def _on_ready(self) -> None:
        assert self._subscribed is not None
        resumed = self._ever_subscribed
        self._ever_subscribed = True
        self._subscribed.set()
        if resumed and not self.replays:
            logger.info("%r: subscription open again; announcing possibly missed list changes", self)
            for event in _LIST_CHANGED:
                self._deliver_local(event)

    def _missed_events(self, why: str) -> None:
        """More was missed than the backend keeps: tell clients to refetch everything."""
        self.stats.missed += 1
        logger.warning(
            "%r: %s; events were missed, announcing list changes (%d time(s) so far)",
            self,
            why,
            self.stats.missed,
        )
        for event in _LIST_CHANGED:
            self._deliver_local(event)

    def _on_message(self, data: bytes) -> None:
        decoded = _decode(data)
        if decoded is None:
            self.stats.malformed += 1
            self._warn(
                "malformed",
                "%r: ignored a message that is not an event (%d so far)",
                self,
                self.stats.malformed,
            )
            return
        origin, serial, event = decoded
        if origin == self.origin:
            return  # already delivered here when it was published
        if serial is not None:
            last = self._seen.get(origin)
            if last is not None and serial <= last:
                self.stats.duplicates += 1
                return
            self._seen[origin] = serial
            self._seen.move_to_end(origin)
            if len(self._seen) > _MAX_ORIGINS:
                self._seen.popitem(last=False)
        self.stats.received += 1
        self._deliver_local(event)


if TYPE_CHECKING:

    def _is_a_subscription_bus(bus: Bus) -> SubscriptionBus:
        return bus  # mypy checks Bus against mcp's SubscriptionBus protocol here
