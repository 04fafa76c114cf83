"""Change notifications for FastMCP 4.2 servers, across replicas: ``enable_subscriptions``.

::

    from fastmcp import Context, FastMCP
    from fastmcp_sessions.fastmcp import enable_subscriptions, resource_updated, server_storage

    storage = server_storage("redis://cache:6379/0", server_name="billing")
    mcp = FastMCP("billing", **storage.kwargs())
    enable_subscriptions(mcp, storage.subscription_bus)

    @mcp.tool
    async def set_price(ctx: Context, sku: str, price: int) -> None:
        ...
        await resource_updated(ctx, f"price://{sku}")   # every replica's listeners hear it

After the call the server answers ``subscriptions/listen`` (2026-07-28) from the bus with
mcp's ``ListenHandler``, so it advertises ``listChanged`` on tools, resources and
prompts and ``resources.subscribe``; adding, removing, enabling or disabling components
at run time publishes ``ToolsListChanged`` / ``ResourcesListChanged`` /
``PromptsListChanged``. The FastMCP internals this needs are listed (and checked) in
``fastmcp_sessions.fastmcp._seam``.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

import anyio.from_thread
from mcp.server.subscriptions import (
    ListenHandler,
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
    SubscriptionBus,
    ToolsListChanged,
)
from mcp_types import SubscriptionsListenRequestParams, SubscriptionsListenResult

from fastmcp_sessions.fastmcp._seam import check_seam, lowlevel_server, watch_components

__all__ = ["Subscriptions", "enable_subscriptions", "resource_updated", "subscriptions_of"]

logger = logging.getLogger("fastmcp_sessions")

LISTEN_METHOD = "subscriptions/listen"

_EVENTS_OF_KIND: dict[str, ServerEvent] = {
    "tool": ToolsListChanged(),
    "resource": ResourcesListChanged(),
    "prompt": PromptsListChanged(),
}
_enabled: weakref.WeakKeyDictionary[Any, Subscriptions] = weakref.WeakKeyDictionary()


class _ReadyListen:
    """mcp's ``ListenHandler``, entered once the bus can hear other replicas (bounded wait),
    so an event published elsewhere right after the client's ack is not missed."""

    def __init__(self, handler: ListenHandler, bus: SubscriptionBus, ready_timeout: float) -> None:
        self.handler = handler
        self._bus = bus
        self._ready_timeout = ready_timeout

    async def __call__(self, ctx: Any, params: SubscriptionsListenRequestParams) -> SubscriptionsListenResult:
        ready = getattr(self._bus, "ready", None)
        if ready is not None and not await ready(self._ready_timeout):
            logger.warning(
                "%r is not subscribed to its backend yet; this listen stream gets other replicas' "
                "events once it is",
                self._bus,
            )
        return await self.handler(ctx, params)


class Subscriptions:
    """What ``enable_subscriptions`` installed on one server: its bus and listen handler."""

    def __init__(self, bus: SubscriptionBus, handler: ListenHandler) -> None:
        self.bus = bus
        self.handler = handler

    async def publish(self, event: ServerEvent) -> None:
        """Publish ``event`` to every listen stream of the server, on every replica."""
        await self.bus.publish(event)

    async def resource_updated(self, uri: str) -> None:
        """Tell subscribers of ``uri`` (``resourceSubscriptions``) that it changed."""
        await self.bus.publish(ResourceUpdated(uri=uri))

    def publish_nowait(self, event: ServerEvent) -> None:
        """``publish`` from synchronous code (any thread); never raises because of the backend."""
        _publish_soon(self.bus, event)

    def close(self) -> None:
        """End every open listen stream of this process gracefully (e.g. at shutdown)."""
        self.handler.close()


def enable_subscriptions(
    mcp: Any,
    bus: SubscriptionBus | Any,
    *,
    max_subscriptions: int = 1024,
    max_buffered_events: int = 1024,
    ready_timeout: float = 2.0,
) -> Subscriptions:
    """Serve ``subscriptions/listen`` on ``mcp`` from ``bus`` and publish component changes to it.

    Args:
        mcp: A ``fastmcp.FastMCP`` server (4.2).
        bus: Any mcp ``SubscriptionBus`` - ``server_storage(...).subscription_bus`` (or the
            ``ServerStorage`` itself), a ``fastmcp_sessions.buses`` bus, or mcp's own
            ``InMemorySubscriptionBus``.
        max_subscriptions: Concurrent listen streams per process (mcp's ``ListenHandler``).
        max_buffered_events: Events buffered per stream before mcp ends a stream whose
            client stopped reading (the client re-listens and refetches).
        ready_timeout: Seconds a new listen request waits for the bus's subscription to
            its backend before it is acknowledged anyway.

    Returns:
        The ``Subscriptions`` of ``mcp`` (also from ``subscriptions_of(mcp)``).

    Raises:
        FastMCPSeamError: The installed FastMCP changed an internal this needs.
    """
    bus = getattr(bus, "subscription_bus", bus)  # a ServerStorage
    if not callable(getattr(bus, "publish", None)) or not callable(getattr(bus, "subscribe", None)):
        raise TypeError(f"bus must be an mcp SubscriptionBus (publish/subscribe), got {type(bus).__name__}")
    check_seam(mcp)
    existing = _enabled.get(mcp)
    if existing is not None:
        if existing.bus is not bus:
            raise ValueError("enable_subscriptions was already called on this server with another bus")
        return existing
    handler = ListenHandler(bus, max_subscriptions=max_subscriptions, max_buffered_events=max_buffered_events)
    lowlevel_server(mcp).add_request_handler(
        LISTEN_METHOD, SubscriptionsListenRequestParams, _ReadyListen(handler, bus, ready_timeout)
    )
    subscriptions = Subscriptions(bus, handler)
    _enabled[mcp] = subscriptions

    def changed(kinds: set[str]) -> None:
        for kind in sorted(kinds):
            _publish_soon(bus, _EVENTS_OF_KIND[kind])

    watch_components(mcp, changed)
    if getattr(bus, "crosses_processes", True) is False:
        logger.info("%r stays in this process: change notifications reach only this replica's clients", bus)
    return subscriptions


def subscriptions_of(mcp: Any) -> Subscriptions:
    """The ``Subscriptions`` that ``enable_subscriptions`` installed on ``mcp``."""
    found = _enabled.get(mcp)
    if found is None:
        raise LookupError("call fastmcp_sessions.fastmcp.enable_subscriptions(mcp, bus) first")
    return found


async def resource_updated(target: Any, uri: str) -> None:
    """Publish ``ResourceUpdated(uri)`` for the server of ``target`` (a tool's ``Context``,
    or the ``FastMCP`` server itself), to listeners on every replica."""
    server = getattr(target, "fastmcp", target)
    await subscriptions_of(server).resource_updated(uri)


def _publish_soon(bus: SubscriptionBus, event: ServerEvent) -> None:
    nowait = getattr(bus, "publish_nowait", None)
    if nowait is not None:
        nowait(event)
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        try:
            # A worker thread of anyio.to_thread (FastMCP's sync tools) reaches its loop so.
            anyio.from_thread.run_sync(_schedule, bus, event)
        except RuntimeError:
            logger.debug("no event loop yet, so no listener: %r not published on %r", event, bus)
        return
    _schedule(bus, event)


def _schedule(bus: SubscriptionBus, event: ServerEvent) -> None:
    task = asyncio.get_running_loop().create_task(_publish_logged(bus, event))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


_pending: set[asyncio.Task[None]] = set()


async def _publish_logged(bus: SubscriptionBus, event: ServerEvent) -> None:
    try:
        await bus.publish(event)
    except Exception:  # a foreign bus's failure must not surface in the caller that changed a component
        logger.exception("%r failed to publish %r", bus, event)
