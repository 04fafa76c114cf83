"""A store that cannot be used reaches the MCP client as one line saying why.

Each case starts the stdio server of ``tests/_support/workers/store_error_server.py`` in its
own process and talks to it with FastMCP's ``Client`` over a stdio transport, as a desktop
client would.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client, FastMCP
from fastmcp.client.transports import StdioTransport
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from mcp import MCPError

from fastmcp_sessions import Keyring
from fastmcp_sessions.encryption import KEYS_ENV, default_key_file
from fastmcp_sessions.errors import StoreOptionError
from fastmcp_sessions.fastmcp import server_storage
from fastmcp_sessions.fastmcp.store_errors import STORE_ERROR_PREFIX, StoreErrorMiddleware

WORKER = Path(__file__).parents[1] / "_support" / "workers" / "store_error_server.py"


def transport(url: str, mode: str = "answer", **env: str) -> StdioTransport:
    """The worker server on ``url`` in a process of its own."""
    return StdioTransport(
        command=sys.executable,
        args=[str(WORKER), url, mode],
        env={**os.environ, **env},
        keep_alive=False,
    )


async def refused_line(url: str, **env: str) -> str:
    """The message the client gets for ``tools/list`` from the worker on ``url``."""
    async with Client(transport(url, **env), timeout=60) as client:
        with pytest.raises(MCPError) as caught:
            await client.list_tools()
        with pytest.raises(MCPError) as again:
            await client.call_tool("echo", {"text": "hi"})
    assert str(again.value.error.message) == caught.value.error.message
    return caught.value.error.message


def assert_one_line(message: str, *secrets: str) -> None:
    assert message.startswith(STORE_ERROR_PREFIX), message
    assert "Internal server error" not in message
    assert "\n" not in message
    for secret in secrets:
        assert secret not in message


def write_data(url: str, **env: str) -> None:
    """Start the worker on ``url`` once and keep a note, so the store holds encrypted data."""

    async def keep() -> None:
        async with Client(transport(url, "exit", **env), timeout=60) as client:
            assert (await client.call_tool("remember", {"note": "n"})).data == "kept"

    asyncio.run(keep())


def test_missing_key_file_reaches_the_client(tmp_path: Path) -> None:
    url = f"disk://{tmp_path / 'notes.sqlite3'}"
    write_data(url)
    key_file = default_key_file("fastmcp")
    secret = key_file.read_text().strip()
    key_file.unlink()
    message = asyncio.run(refused_line(url))
    assert_one_line(message, secret)
    assert f"the key file {key_file} does not exist: restore it from your backup" in message
    assert not key_file.exists(), "no new key was made for data an old key encrypted"


def test_key_mismatch_reaches_the_client_with_fingerprints_only(tmp_path: Path) -> None:
    url = f"disk://{tmp_path / 'notes.sqlite3'}"
    first, second = Keyring.generate_key(), Keyring.generate_key()
    write_data(url, **{KEYS_ENV: first})
    message = asyncio.run(refused_line(url, **{KEYS_ENV: second}))
    assert_one_line(message, first, second)
    assert "not among the keys in use" in message and "sha256:" in message


def test_unreachable_redis_reaches_the_client() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    key = Keyring.generate_key()
    message = asyncio.run(refused_line(f"redis://:s3cret-pass@127.0.0.1:{port}/0", **{KEYS_ENV: key}))
    assert_one_line(message, key, "s3cret-pass")
    assert f"127.0.0.1:{port}" in message and "could not be reached" in message


def test_exit_refuses_to_start_with_the_reason_on_stderr(tmp_path: Path) -> None:
    url = f"disk://{tmp_path / 'notes.sqlite3'}"
    first, second = Keyring.generate_key(), Keyring.generate_key()
    write_data(url, **{KEYS_ENV: first})
    proc = subprocess.run(
        [sys.executable, str(WORKER), url, "exit"],
        input="",
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, KEYS_ENV: second},
    )
    assert proc.returncode != 0
    assert "not among the keys in use" in proc.stderr
    assert first not in proc.stderr and second not in proc.stderr


class Tagging(Middleware):
    """A user's own middleware, counting the requests it sees."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def on_request(self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]) -> Any:
        self.seen.append(str(context.method))
        return await call_next(context)


@pytest.mark.parametrize("where", ["fastmcp", "kwargs"])
async def test_own_middleware_works_beside_it(tmp_path: Path, where: str) -> None:
    storage = server_storage(f"disk://{tmp_path / 's.sqlite3'}", server_name="own")
    mine = Tagging()
    if where == "fastmcp":
        mcp = FastMCP("own", **storage.kwargs(), middleware=[mine])
    else:
        mcp = FastMCP("own", **storage.kwargs(middleware=[mine]))

    @mcp.tool
    async def broken() -> str:
        """Fails on a closed store."""
        await storage.store.close()
        await storage.store.get("k", collection="c")
        return "unreachable"

    async with Client(mcp) as client:
        assert [t.name for t in await client.list_tools()] == ["broken"]
        with pytest.raises(MCPError) as caught:
            await client.call_tool("broken", {})
    assert caught.value.error.message.startswith(STORE_ERROR_PREFIX), caught.value.error.message
    assert isinstance(mcp.middleware[0], StoreErrorMiddleware)
    assert sum(isinstance(m, StoreErrorMiddleware) for m in mcp.middleware) == 1
    assert "tools/list" in mine.seen and "tools/call" in mine.seen


def test_startup_errors_is_checked() -> None:
    with pytest.raises(StoreOptionError, match="startup_errors"):
        server_storage("memory://", server_name="s", startup_errors="ignore")  # type: ignore[arg-type]
