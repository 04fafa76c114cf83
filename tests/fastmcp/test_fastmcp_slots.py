"""FastMCP, for real and in-process, over our stores in each slot that takes storage."""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client, FastMCP
from fastmcp.server.event_store import EventStore
from fastmcp.server.middleware.caching import ResponseCachingMiddleware
from mcp.types import JSONRPCRequest

from fastmcp_sessions import DiskStore, Keyring, Store
from tests._support import REPO

KEY = Keyring.generate_key()


def _load_example() -> Any:
    path = REPO / "examples" / "notes_server.py"
    spec = importlib.util.spec_from_file_location("notes_server_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_server = _load_example().build_server


def data_of(result: Any) -> Any:
    return result.data if hasattr(result, "data") else result


async def test_session_state_survives_a_server_restart_on_the_disk_store(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store = DiskStore(path, keys=[KEY])
    async with Client(build_server(store)) as client:
        session_id = data_of(await client.call_tool("create_session", {}))
        await client.call_tool("remember", {"session_id": session_id, "note": "buy milk"})
        await client.call_tool("remember", {"session_id": session_id, "note": "call bob"})
    await store.close()

    reopened = DiskStore(path, keys=[KEY])
    async with Client(build_server(reopened)) as client:
        notes = data_of(await client.call_tool("recall", {"session_id": session_id}))
    await reopened.close()
    assert notes == ["buy milk", "call bob"]

    with sqlite3.connect(path) as conn:
        blobs = b"".join(v for (v,) in conn.execute("SELECT value FROM entries"))
        collections = {c for (c,) in conn.execute("SELECT DISTINCT collection FROM entries")}
    assert b"buy milk" not in blobs, "session state must be encrypted at rest"
    assert collections == {"fastmcp_state"}


async def test_every_backend_serves_as_session_state_store(store: Store) -> None:
    async with Client(build_server(store)) as client:
        session_id = data_of(await client.call_tool("create_session", {}))
        await client.call_tool("remember", {"session_id": session_id, "note": "n1"})
        assert data_of(await client.call_tool("recall", {"session_id": session_id})) == ["n1"]


async def test_event_store_over_our_store(store: Store) -> None:
    events = EventStore(storage=store, max_events_per_stream=3)
    ids = []
    for i in range(5):
        message = JSONRPCRequest(jsonrpc="2.0", id=i, method="ping")
        ids.append(await events.store_event("stream-1", message))
    replayed: list[Any] = []

    async def collect(event: Any) -> None:
        replayed.append(event)

    assert await events.replay_events_after(ids[2], collect) == "stream-1"
    assert [e.event_id for e in replayed] == ids[3:]
    assert set(await store.collections()) >= {"fastmcp_events", "fastmcp_streams"}
    _, ttl = await store.ttl("stream-1", collection="fastmcp_streams")
    assert ttl is not None and 3500 < ttl <= 3600


async def test_response_cache_over_our_store(store: Store) -> None:
    calls = 0
    mcp = FastMCP("cached")
    mcp.add_middleware(ResponseCachingMiddleware(cache_storage=store))

    @mcp.tool
    def expensive(x: int) -> int:
        nonlocal calls
        calls += 1
        return x * 2

    async with Client(mcp) as client:
        first = data_of(await client.call_tool("expensive", {"x": 21}))
        second = data_of(await client.call_tool("expensive", {"x": 21}))
        await client.list_tools()
    assert first == second == 42
    assert calls == 1, "the second call must come from the cache in our store"
    names = await store.collections()
    assert any("/" in name for name in names), f"FastMCP's cache collections hold '/': {names}"


@pytest.mark.parametrize("slot", ["oauth-proxy"])
async def test_oauth_proxy_accepts_our_store(tmp_path: Path, slot: str) -> None:
    from tests._support.oauth_proxy import fake_upstream_proxy

    store = DiskStore(tmp_path / "oauth.sqlite3", keys=[KEY])
    proxy = fake_upstream_proxy(client_storage=store, jwt_signing_key="a" * 32)
    from mcp.shared.auth import OAuthClientInformationFull

    info = OAuthClientInformationFull(
        client_id="c1",
        client_secret="s1",
        redirect_uris=["http://127.0.0.1:9999/callback"],
    )
    await proxy.register_client(info)
    got = await proxy.get_client("c1")
    assert got is not None and got.client_id == "c1"
    assert "mcp-oauth-proxy-clients" in await store.collections()
    await store.close()
