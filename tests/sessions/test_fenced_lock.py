"""A lock holder paused past its lease cannot overwrite the next holder's write (fencing)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

import pytest

from fastmcp_sessions import Lock, Store
from fastmcp_sessions.errors import StaleFencingTokenError
from fastmcp_sessions.stores.fencing import FENCES_FIELD
from tests._support.backends import Backend
from tests._support.session_procs import WORKER, run_once

LEASE = 1.0


async def test_paused_holder_is_refused_after_takeover(shared_backend: Backend) -> None:
    backend = shared_backend
    assert backend.url is not None
    first = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        "fenced-hold",
        backend.url,
        "fenced",
        str(LEASE),
        env={**os.environ, **backend.env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert first.stdout is not None and first.stdin is not None
        line = await asyncio.wait_for(first.stdout.readline(), 60)
        assert line.strip(), (await first.communicate())[1].decode()
        first_fence = json.loads(line)
        os.kill(first.pid, signal.SIGSTOP)  # paused while holding the lock
        await asyncio.sleep(LEASE * 2)  # ...well past its lease

        out, _ = await run_once(backend, ["fenced-take", backend.url, "fenced"])
        second_fence = json.loads(out.strip().splitlines()[-1])
        assert second_fence > first_fence

        os.kill(first.pid, signal.SIGCONT)
        first.stdin.write(b"go\n")
        await first.stdin.drain()
        out_bytes, err = await asyncio.wait_for(first.communicate(), 60)
        assert first.returncode == 0, err.decode()
    finally:
        if first.returncode is None:
            os.kill(first.pid, signal.SIGCONT)
            first.kill()
            await first.wait()
    result = json.loads(out_bytes.decode().strip().splitlines()[-1])
    assert result["fence"] == first_fence
    assert result["refused"] is not None and f"token {second_fence}" in result["refused"]

    store = backend.open()
    try:
        value = await store.get("resource", collection="fenced")
    finally:
        await store.close()
    assert value is not None
    assert value["by"] == "second" and value["fence"] == second_fence
    assert value[FENCES_FIELD] == {"fenced": second_fence}


async def test_lock_put_fenced_in_process(store: Store) -> None:
    old = Lock(store, "res", lease=0.3)
    await old.acquire()
    await old.put_fenced("r", {"by": "old"})
    await asyncio.sleep(0.6)  # old's lease runs out without release
    new = Lock(store, "res", lease=30)
    await new.acquire()
    await new.put_fenced("r", {"by": "new"})
    with pytest.raises(StaleFencingTokenError, match="lost the lock"):
        await old.put_fenced("r", {"by": "old again"})
    got = await store.get("r")
    assert got is not None and got["by"] == "new"
    await new.release()


async def test_token_refresh_writes_are_fenced(store: Store) -> None:
    from mcp.shared.auth import OAuthToken

    from fastmcp_sessions.sessions import SessionStore

    sessions = SessionStore(store)
    session = await sessions.create("alice", server_url="https://mcp.example.com/mcp")
    paused = sessions.token_storage("alice", session.session_id)
    stale_lock = paused.refresh_lock(lease=0.3)
    await stale_lock.acquire()
    await asyncio.sleep(0.6)  # its lease runs out while it "refreshes"
    current = sessions.token_storage("alice", session.session_id)
    async with current.refresh_lock(lease=30):
        await current.set_tokens(OAuthToken(access_token="new-access", refresh_token="new-refresh"))
    # An unfenced write in between keeps the fence.
    await sessions.update("alice", session.session_id, metadata={"touched": True})
    with pytest.raises(StaleFencingTokenError):
        await paused.set_tokens(OAuthToken(access_token="old-access", refresh_token="old-refresh"))
    tokens = await current.get_tokens()
    assert tokens is not None and tokens.access_token == "new-access"
    # Outside any held refresh lock, writes are not fenced (a new authorization, for instance).
    await current.set_tokens(OAuthToken(access_token="later", refresh_token="later-refresh"))
    got = await current.get_tokens()
    assert got is not None and got.access_token == "later"


async def test_a_refused_refresh_adopts_the_newer_holders_tokens(store: Store) -> None:
    import httpx2
    from mcp.client.auth import OAuthClientProvider
    from mcp.shared.auth import OAuthClientMetadata, OAuthToken
    from pydantic import AnyUrl

    from fastmcp_sessions.sessions import SessionStore, SingleFlightOAuthClientProvider

    sessions = SessionStore(store)
    session = await sessions.create("alice", server_url="https://mcp.example.com/mcp")
    storage = sessions.token_storage("alice", session.session_id)
    await storage.set_tokens(OAuthToken(access_token="access-0", refresh_token="refresh-0", expires_in=0))
    provider = SingleFlightOAuthClientProvider(
        server_url="https://mcp.example.com/mcp",
        client_metadata=OAuthClientMetadata(redirect_uris=[AnyUrl("http://127.0.0.1/cb")]),
        storage=storage,
    )
    assert isinstance(provider, OAuthClientProvider)
    provider.context.current_tokens = await storage.get_tokens()
    paused = storage.refresh_lock(lease=0.3)
    await paused.acquire()
    await asyncio.sleep(0.6)  # this process "refreshes" past its lease...
    newer = sessions.token_storage("alice", session.session_id)
    async with newer.refresh_lock(lease=30):  # ...while another takes over and stores its tokens
        await newer.set_tokens(
            OAuthToken(access_token="access-2", refresh_token="refresh-2", expires_in=3600)
        )
    late = httpx2.Response(200, json={"access_token": "access-1", "token_type": "Bearer", "expires_in": 3600})
    assert await provider._handle_refresh_response(late) is True
    current = provider.context.current_tokens
    assert current is not None and current.access_token == "access-2"
    stored = await storage.get_tokens()
    assert stored is not None and stored.access_token == "access-2"
