"""Moving a server from the plain recipe to server_storage keeps its sessions: real stdio
server processes over one encrypted disk store, the first on the plain recipe, the second
on server_storage(server_name=...)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from fastmcp import Client
from fastmcp.client.transports import PythonStdioTransport

from fastmcp_sessions import Keyring, MemoryStore
from fastmcp_sessions.fastmcp import server_storage
from fastmcp_sessions.fastmcp.adopt import adopt_plain_layout

SERVER = """
import sys

from fastmcp import FastMCP
from fastmcp.server.dependencies import get_session
from fastmcp.server.sessions import SessionId, SessionProvider

from fastmcp_sessions import open_store
from fastmcp_sessions.fastmcp import server_storage

if sys.argv[1] == "plain":
    mcp = FastMCP("notes", session_state_store=open_store())
else:
    mcp = FastMCP("notes", **server_storage(server_name="notes").kwargs())
mcp.add_provider(SessionProvider())


@mcp.tool
async def remember(session_id: SessionId, note: str) -> int:
    session = await get_session(session_id)
    notes = await session.get("notes", [])
    await session.set("notes", [*notes, note])
    return len(notes) + 1


@mcp.tool
async def recall(session_id: SessionId) -> list[str]:
    session = await get_session(session_id)
    return list(await session.get("notes", []))


mcp.run(show_banner=False, log_level="WARNING")
"""


def client(script: Path, recipe: str, home: Path) -> Client:  # type: ignore[type-arg]
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "FASTMCP_SESSIONS_APP": "adopt-test",
        "FASTMCP_CHECK_FOR_UPDATES": "off",
    }
    for name in ("FASTMCP_SESSIONS_URL", "FASTMCP_SESSIONS_KEYS", "FASTMCP_SESSIONS_OAUTH_KEYS"):
        env.pop(name, None)
    return Client(PythonStdioTransport(script, args=[recipe], python_cmd=sys.executable, env=env))


async def test_a_session_of_the_plain_recipe_stays_valid_under_server_storage(tmp_path: Path) -> None:
    script = tmp_path / "notes.py"
    script.write_text(SERVER)
    async with client(script, "plain", tmp_path) as plain:
        session_id = (await plain.call_tool("create_session", {})).data
        await plain.call_tool("remember", {"session_id": session_id, "note": "before the move"})

    async with client(script, "server_storage", tmp_path) as moved:
        assert (await moved.call_tool("recall", {"session_id": session_id})).data == ["before the move"]
        await moved.call_tool("remember", {"session_id": session_id, "note": "after the move"})

    # A later start adopts nothing again: what the server wrote since stays the truth.
    async with client(script, "server_storage", tmp_path) as again:
        notes = (await again.call_tool("recall", {"session_id": session_id})).data
    assert notes == ["before the move", "after the move"]


async def test_adoption_copies_ttls_and_only_into_empty_parts() -> None:
    base = MemoryStore()
    await base.put("session:a", {"v": 1}, collection="fastmcp_state", ttl=100)
    await base.put("client-1", {"c": 1}, collection="mcp-oauth-proxy-clients")
    await base.put("tools", {"t": 1}, collection="tools/list")  # short-lived: not copied
    storage = server_storage(server_name="srv", store=base, oauth_keys=[_fernet_key()])

    copied = await adopt_plain_layout(base, storage.store_for, "srv")
    assert copied == {"fastmcp_state": 1, "mcp-oauth-proxy-clients": 1}
    value, ttl = await storage.session_state_store.ttl("session:a", collection="fastmcp_state")
    assert value == {"v": 1} and ttl is not None and 90 < ttl <= 100
    assert await storage.oauth_client_storage.get("client-1", collection="mcp-oauth-proxy-clients") == {
        "c": 1
    }
    assert await storage.response_cache_storage.keys("tools/list") == []

    await base.put("session:b", {"v": 2}, collection="fastmcp_state")
    assert await adopt_plain_layout(base, storage.store_for, "srv") == {}
    assert await storage.session_state_store.get("session:b", collection="fastmcp_state") is None


def test_adoption_can_be_switched_off() -> None:
    assert server_storage(server_name="srv", store=MemoryStore(), oauth_keys=[_fernet_key()]).adopt_plain
    assert not server_storage(
        server_name="srv", store=MemoryStore(), oauth_keys=[_fernet_key()], adopt_plain=False
    ).adopt_plain


def _fernet_key() -> str:
    return Keyring.generate_key()
