"""enable_subscriptions on a FastMCP 4.2 server in one process: capabilities; run-time
component changes and tools' resource updates reach listen streams. The FastMCP internals it
relies on are checked in tests/test_fastmcp_seam.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastmcp import Client, Context, FastMCP
from mcp.client.subscriptions import Subscription, listen
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
    ToolsListChanged,
)

from fastmcp_sessions import MemoryStore
from fastmcp_sessions.buses import MemoryBus
from fastmcp_sessions.fastmcp import (
    enable_subscriptions,
    resource_updated,
    server_storage,
    subscriptions_of,
)
from fastmcp_sessions.fastmcp._seam import lowlevel_server

MODERN = "2026-07-28"


def recorded(bus: MemoryBus) -> list[ServerEvent]:
    events: list[ServerEvent] = []
    bus.subscribe(events.append)
    return events


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_capabilities_are_advertised_once_enabled() -> None:
    mcp = FastMCP("caps")

    @mcp.resource("res://x")
    def x() -> str:
        return "x"

    @mcp.prompt
    def p() -> str:
        return "p"

    before = lowlevel_server(mcp).get_capabilities(protocol_version=MODERN)
    assert before.tools is not None and before.tools.list_changed is False
    enable_subscriptions(mcp, MemoryBus(server_name="caps"))
    after = lowlevel_server(mcp).get_capabilities(protocol_version=MODERN)
    assert after.tools is not None and after.tools.list_changed is True
    assert after.prompts is not None and after.prompts.list_changed is True
    assert after.resources is not None and after.resources.list_changed is True
    assert after.resources.subscribe is True


async def test_run_time_component_changes_publish_list_changed_events() -> None:
    mcp = FastMCP("changes")
    bus = MemoryBus(server_name="changes")
    enable_subscriptions(mcp, bus)
    events = recorded(bus)

    def tool_a() -> str:
        return "a"

    mcp.tool(tool_a)
    await settle()
    assert events == [ToolsListChanged()]
    mcp.local_provider.remove_tool("tool_a")
    mcp.resource("res://r")(lambda: "r")
    mcp.prompt(lambda: "p", name="pr")
    await settle()
    assert events[1:] == [ToolsListChanged(), ResourcesListChanged(), PromptsListChanged()]
    events.clear()
    mcp.disable(components={"prompt"})
    mcp.local_provider.enable(names={"pr"}, components={"prompt"})
    await settle()
    assert events == [PromptsListChanged(), PromptsListChanged()]
    events.clear()
    mcp.enable(tags={"x"})  # no component kind named: every list may have changed
    await settle()
    assert set(events) == {ToolsListChanged(), ResourcesListChanged(), PromptsListChanged()}


async def test_changes_while_setting_up_publish_nothing_and_break_nothing() -> None:
    mcp = FastMCP("setup")
    bus = MemoryBus(server_name="setup")

    def done() -> None:
        enable_subscriptions(mcp, bus)
        mcp.tool(lambda: 1, name="early")  # no event loop yet: nobody can be listening

    await asyncio.to_thread(done)  # a thread with no loop of its own and none reachable
    assert bus.stats.published == 0


async def test_enabling_twice_returns_the_same_and_another_bus_is_refused() -> None:
    mcp = FastMCP("twice")
    bus = MemoryBus(server_name="twice")
    first = enable_subscriptions(mcp, bus)
    assert enable_subscriptions(mcp, bus) is first is subscriptions_of(mcp)
    with pytest.raises(ValueError, match="another bus"):
        enable_subscriptions(mcp, MemoryBus(server_name="twice"))
    with pytest.raises(LookupError, match="enable_subscriptions"):
        await resource_updated(FastMCP("never-enabled"), "res://x")


@asynccontextmanager
async def listening(client: Client, **filters: Any) -> AsyncIterator[Subscription]:
    async with listen(client.session, **filters) as subscription:
        yield subscription


async def next_events(subscription: Subscription, count: int) -> list[ServerEvent]:
    got: list[ServerEvent] = []

    async def collect() -> None:
        async for event in subscription:
            got.append(event)
            if len(got) == count:
                return

    await asyncio.wait_for(collect(), 10)
    return got


@pytest.mark.parametrize("bus_kind", ["fastmcp-sessions", "mcp"])
async def test_a_listen_stream_gets_what_it_asked_for_only(bus_kind: str) -> None:
    mcp = FastMCP("listen")
    bus = MemoryBus(server_name="listen") if bus_kind == "fastmcp-sessions" else InMemorySubscriptionBus()
    enable_subscriptions(mcp, bus)

    @mcp.tool
    async def touch(ctx: Context, uri: str) -> str:
        await resource_updated(ctx, uri)
        return uri

    @mcp.tool
    def grow(name: str) -> str:  # sync: runs in a worker thread
        mcp.tool(lambda: name, name=name)
        return name

    async with (
        Client(mcp) as client,
        listening(client, tools_list_changed=True, resource_subscriptions=["res://x"]) as subscription,
    ):
        await client.call_tool("touch", {"uri": "res://y"})
        await client.call_tool("touch", {"uri": "res://x"})
        mcp.disable(components={"prompt"})  # prompts were not asked for
        await client.call_tool("grow", {"name": "grown"})
        assert await next_events(subscription, 2) == [ResourceUpdated(uri="res://x"), ToolsListChanged()]


async def test_server_storage_brings_the_bus_and_enable_takes_the_storage() -> None:
    storage = server_storage(store=MemoryStore(), server_name="st", keys=[_key()])
    assert isinstance(storage.subscription_bus, MemoryBus)
    mcp = FastMCP("st", **storage.kwargs())
    subscriptions = enable_subscriptions(mcp, storage)
    assert subscriptions.bus is storage.subscription_bus
    await storage.close()


def _key() -> str:
    from fastmcp_sessions import Keyring

    return Keyring.generate_key()
