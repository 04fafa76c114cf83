"""Two replicas of one FastMCP app (tests/_support/workers/replica_app.py), each its own uvicorn process, on one
Redis this module starts: change notifications published on one reach a client listening
on the other (also across a SIGKILL and restart of Redis), and request state sealed by one
is opened by the other. The client speaks raw 2026-07-28 HTTP, so every frame is checked
as it travels."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from mcp_types import CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, PROTOCOL_VERSION_META_KEY

from fastmcp_sessions import Keyring
from tests._support import WORKERS
from tests._support.replicas import start_replicas
from tests._support.servers import RedisServer

VERSION = "2026-07-28"
SUBSCRIPTION_ID = "io.modelcontextprotocol/subscriptionId"
APP = WORKERS / "replica_app.py"
MARGIN = 15.0  # seconds; the 1 s target is measured in benchmarks/bench_bus.py


@dataclass
class Fleet:
    redis: RedisServer
    server_name: str
    urls: dict[str, str]

    @property
    def channel(self) -> str:
        return f"fastmcp-sessions:fastmcp/{self.server_name}/stream"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    home = tmp_path_factory.mktemp("replicas")
    name = "replicas-" + secrets.token_hex(4)
    with RedisServer() as redis:
        env = {
            "FASTMCP_SESSIONS_KEYS": Keyring.generate_key(),
            "FASTMCP_SESSIONS_URL": redis.url,
            "SERVER_NAME": name,
        }
        with start_replicas(APP, ("A", "B"), home=home, env=env) as replicas:
            yield Fleet(redis, name, {label: r.url for label, r in replicas.items()})


def request(request_id: str | int, method: str, params: dict[str, Any]) -> dict[str, Any]:
    meta = {
        PROTOCOL_VERSION_META_KEY: VERSION,
        CLIENT_INFO_META_KEY: {"name": "replica-test", "version": "1"},
        CLIENT_CAPABILITIES_META_KEY: {},
    }
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**params, "_meta": meta}}


def headers(method: str, name: str | None = None) -> dict[str, str]:
    found = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": VERSION,
        "Mcp-Method": method,
    }
    if name is not None:
        found["Mcp-Name"] = name
    return found


async def call_tool(
    client: httpx.AsyncClient, url: str, name: str, arguments: dict[str, Any], status: int = 200, **extra: Any
) -> dict[str, Any]:
    params = {"name": name, "arguments": arguments, **extra}
    response = await client.post(
        url, json=request(secrets.token_hex(4), "tools/call", params), headers=headers("tools/call", name)
    )
    assert response.status_code == status, response.text
    if response.headers["content-type"].startswith("text/event-stream"):
        frames = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
        body = next(f for f in frames if "id" in f)
    else:
        body = response.json()
    return dict(body)


@contextlib.asynccontextmanager
async def listen(
    client: httpx.AsyncClient, url: str, subscription_id: str, notifications: dict[str, Any]
) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
    """Open ``subscriptions/listen`` and yield a queue of the stream's frames (the ack first)."""
    frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    body = request(subscription_id, "subscriptions/listen", {"notifications": notifications})
    async with client.stream("POST", url, json=body, headers=headers("subscriptions/listen")) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")

        async def read() -> None:
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    frames.put_nowait(json.loads(line[5:]))

        reader = asyncio.create_task(read())
        try:
            yield frames
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await reader


async def next_frame(frames: asyncio.Queue[dict[str, Any]], timeout: float = MARGIN) -> dict[str, Any]:
    return await asyncio.wait_for(frames.get(), timeout)


async def frames_until(
    frames: asyncio.Queue[dict[str, Any]], wanted: set[tuple[str, str | None]]
) -> tuple[list[dict[str, Any]], float]:
    """Frames up to and including the ones matching ``wanted`` ((method, uri) pairs)."""
    started = time.monotonic()
    seen: list[dict[str, Any]] = []
    missing = set(wanted)
    while missing:
        frame = await next_frame(frames)
        seen.append(frame)
        missing.discard((frame["method"], frame["params"].get("uri")))
    return seen, time.monotonic() - started


async def wait_subscribers(fleet: Fleet, count: int) -> None:
    deadline = time.monotonic() + MARGIN
    while True:
        # Each replica's bus reads its stream on one connection, blocked in XREAD.
        listing = fleet.redis.command("CLIENT", "LIST")
        text = listing.decode() if isinstance(listing, bytes) else str(listing)
        if sum(" cmd=xread " in f" {line} " for line in text.splitlines()) >= count:
            return
        assert time.monotonic() < deadline, f"no replica resubscribed to {fleet.channel}"
        await asyncio.sleep(0.05)


async def test_notifications_from_b_reach_a_listener_on_a_across_a_redis_restart(fleet: Fleet) -> None:
    a, b = fleet.urls["A"], fleet.urls["B"]
    subscription_id = "listen-" + secrets.token_hex(4)
    async with httpx.AsyncClient(timeout=MARGIN) as client:
        notifications = {"toolsListChanged": True, "resourceSubscriptions": ["res://x"]}
        async with listen(client, a, subscription_id, notifications) as frames:
            ack = await next_frame(frames)
            assert ack["method"] == "notifications/subscriptions/acknowledged"
            assert ack["params"]["_meta"][SUBSCRIPTION_ID] == subscription_id
            assert ack["params"]["notifications"] == notifications

            # On B: first res://y (not subscribed), then res://x and a new tool. One channel keeps
            # their order, so res://y would have come first had it been delivered.
            answered = await call_tool(client, b, "update", {"uri": "res://y"})
            assert answered["result"]["structuredContent"] == {"result": "B"}
            await call_tool(client, b, "update", {"uri": "res://x"})
            await call_tool(client, b, "add_tool", {"name": "added_on_b"})
            wanted = {
                ("notifications/resources/updated", "res://x"),
                ("notifications/tools/list_changed", None),
            }
            seen, took = await frames_until(frames, wanted)
            print(f"cross-replica delivery: {took * 1000:.0f} ms after the last call")
            assert [f["params"].get("uri") for f in seen if "uri" in f["params"]] == ["res://x"]
            assert all(f["params"]["_meta"][SUBSCRIPTION_ID] == subscription_id for f in seen)

            fleet.redis.kill()  # SIGKILL: every connection drops at once
            fleet.redis.start()  # the same port, an empty server
            await wait_subscribers(fleet, 1)  # A's bus subscribed again by itself
            await asyncio.sleep(0.5)
            while not frames.empty():  # after the gap A announces list changes it may have missed
                assert frames.get_nowait()["method"] == "notifications/tools/list_changed"

            await call_tool(client, b, "update", {"uri": "res://y"})
            await call_tool(client, b, "update", {"uri": "res://x"})
            await call_tool(client, b, "add_tool", {"name": "added_after_restart"})
            seen, _ = await frames_until(frames, wanted)
            assert [f["params"].get("uri") for f in seen if "uri" in f["params"]] == ["res://x"]
            assert all(f["params"]["_meta"][SUBSCRIPTION_ID] == subscription_id for f in seen)
            # Nothing more is on its way, and in particular nothing for res://y.
            with pytest.raises(TimeoutError):
                await next_frame(frames, timeout=0.5)


async def test_request_state_sealed_on_a_is_opened_on_b(fleet: Fleet) -> None:
    a, b = fleet.urls["A"], fleet.urls["B"]
    async with httpx.AsyncClient(timeout=MARGIN) as client:
        first = (await call_tool(client, a, "stepwise", {}))["result"]
        assert first["resultType"] == "input_required"
        token = first["requestState"]
        assert "sealed-by-A" not in token  # sealed, not merely signed
        second = (await call_tool(client, b, "stepwise", {}, requestState=token))["result"]
        assert second["structuredContent"] == {"result": "sealed-by-A|opened-by-B"}
        tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        refused = await call_tool(client, b, "stepwise", {}, status=400, requestState=tampered)
        assert refused["error"]["data"]["reason"] == "invalid_request_state"
