"""End to end: a FastMCP app (tests/events_app.py) served by two uvicorn processes on one Redis,
with ``http_app(**storage.http_app_kwargs())``. A real client on the legacy protocol (where
resumption lives) is cut off mid-stream and resumes with ``Last-Event-ID``, receiving exactly
the events it missed; the client speaks raw HTTP so every SSE frame is checked."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from fastmcp_sessions import Keyring
from tests._support import WORKERS
from tests._support.replicas import start_replicas
from tests._support.servers import RedisServer

APP = WORKERS / "events_app.py"
LEGACY = "2025-11-25"
JSON_AND_SSE = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("event-replicas")
    with RedisServer() as redis:
        env = {
            "FASTMCP_SESSIONS_KEYS": Keyring.generate_key(),
            "FASTMCP_SESSIONS_URL": redis.url + "?encryption=true",
            "SERVER_NAME": "resumable",
        }
        with start_replicas(APP, ("A", "B"), home=home, env=env) as fleet:
            yield {label: r.url for label, r in fleet.items()}


@dataclass
class Frame:
    id: str | None
    data: str


async def frames(response: httpx.Response) -> AsyncIterator[Frame]:
    """The SSE frames of ``response``, as they arrive."""
    event_id, data = None, None
    async for line in response.aiter_lines():
        if line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data = line[5:].strip()
        elif line == "" and data is not None:
            yield Frame(event_id, data)
            event_id, data = None, None


async def session(client: httpx.AsyncClient, url: str) -> dict[str, str]:
    """Initialize a legacy session on ``url``; the headers that continue it."""
    hello = {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}}
    response = await client.post(
        url, headers=JSON_AND_SSE, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello}
    )
    assert response.status_code == 200, response.text
    headers = {
        **JSON_AND_SSE,
        "mcp-session-id": response.headers["mcp-session-id"],
        "mcp-protocol-version": LEGACY,
    }
    done = await client.post(
        url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"}
    )
    assert done.status_code == 202
    return headers


def text_of(frame: Frame) -> str:
    body: dict[str, Any] = json.loads(frame.data)
    if "result" in body:
        return "result: " + body["result"]["structuredContent"]["result"]
    return str(body["params"]["data"]["msg"])


async def cut_off_after(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], seen: int
) -> list[Frame]:
    """Call ``count`` and drop the connection after ``seen`` messages (priming frames included)."""
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "count"}}
    call["params"]["arguments"] = {"n": 8, "pause": 0.15}  # type: ignore[index]
    got: list[Frame] = []
    async with client.stream("POST", url, headers=headers, json=call) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        async for frame in frames(response):
            got.append(frame)
            if sum(1 for f in got if f.data) == seen:
                break
    return got


async def test_a_client_cut_off_mid_stream_resumes_with_exactly_the_missed_events(
    replicas: dict[str, str],
) -> None:
    a = replicas["A"]
    async with httpx.AsyncClient(timeout=30) as client:
        headers = await session(client, a)
        before = await cut_off_after(client, a, headers, seen=3)
        assert before[0].data == "" and before[0].id  # the priming event
        assert [text_of(f) for f in before[1:]] == ["line 0", "line 1", "line 2"]
        await asyncio.sleep(2.0)  # the tool goes on and finishes while the client is away
        resume = {**headers, "Accept": "text/event-stream", "last-event-id": str(before[-1].id)}
        after: list[Frame] = []
        async with client.stream("GET", a, headers=resume) as response:
            assert response.status_code == 200
            async for frame in frames(response):
                if frame.data:
                    after.append(frame)
                if frame.data.startswith('{"jsonrpc":"2.0","id":2'):
                    break
    assert [text_of(f) for f in after] == [f"line {i}" for i in range(3, 8)] + ["result: counted 8"]
    ids = [f.id for f in before + after]
    assert len(set(ids)) == len(ids) and all(ids)


async def test_another_replica_does_not_hold_the_legacy_session(replicas: dict[str, str]) -> None:
    # The MCP SDK keeps a legacy session in the process that opened it, and FastMCP gives each
    # session's transport a random stream prefix: B answers 404 before its event store is asked,
    # though the events are in the shared Redis (tests/test_event_store.py replays them from
    # another process). A resumed stream therefore has to reach the replica holding its session.
    async with httpx.AsyncClient(timeout=30) as client:
        headers = await session(client, replicas["A"])
        before = await cut_off_after(client, replicas["A"], headers, seen=2)
        resume = {**headers, "Accept": "text/event-stream", "last-event-id": str(before[-1].id)}
        response = await client.get(replicas["B"], headers=resume)
        assert response.status_code == 404
