"""Every example runs as written: the local notes server (through examples/demo.py), the cloud
server on a real Redis (two replicas, as separate processes), and the client app against them."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastmcp import Client

from fastmcp_sessions import Keyring, open_store
from fastmcp_sessions.stores.namespaced import NamespacedStore
from tests._support import REPO
from tests._support.servers import free_port, wait_for_port

EXAMPLES = REPO / "examples"
KEY = Keyring.generate_key()


def env(**extra: str) -> dict[str, str]:
    environment = dict(os.environ, FASTMCP_CHECK_FOR_UPDATES="off", FASTMCP_SESSIONS_KEYS=KEY)
    environment.update(extra)
    return environment


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class CloudServer:
    """examples/cloud_server.py as its own process on a free loopback port."""

    def __init__(self, redis_url: str, server_name: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.proc = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "cloud_server.py")],
            env=env(FASTMCP_SESSIONS_URL=redis_url, SERVER_NAME=server_name, PORT=str(self.port)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for_port(self.port, self.proc)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()


@pytest.fixture
def cloud(redis_server: Any) -> Iterator[tuple[str, str]]:
    """The Redis URL and a fresh server name (so tests never share data)."""
    yield redis_server.url, "notes-" + secrets.token_hex(4)


def test_local_notes_server_survives_a_restart(tmp_path: Path) -> None:
    """examples/demo.py runs examples/notes_server.py twice over stdio on the encrypted disk store."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py")],
        env=env(
            FASTMCP_SESSIONS_APP="examples-test",
            HOME=str(tmp_path),
            XDG_DATA_HOME=str(tmp_path / "d"),
            XDG_CONFIG_HOME=str(tmp_path / "c"),
        ),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: state survived the restart" in result.stdout


def test_cloud_server_replicas_share_state_and_cache(cloud: tuple[str, str]) -> None:
    """Two replicas (separate processes) on one Redis: writes and reads interleaved between them,
    several reads between writes, each read sees every write so far; only the pure tool is cached."""
    from fastmcp import Client

    redis_url, name = cloud

    async def interleaved(url_a: str, url_b: str) -> list[tuple[str, list[str]]]:
        seen: list[tuple[str, list[str]]] = []
        async with Client(url_a) as a, Client(url_b) as b:
            replicas = {"a": a, "b": b}
            session_id = (await a.call_tool("create_session", {})).data

            async def recall(replica: str) -> None:
                result = await replicas[replica].call_tool("recall", {"session_id": session_id})
                seen.append((replica, list(result.data)))

            for note, writer, readers in [
                ("one", "a", "abab"),
                ("two", "b", "abba"),
                ("three", "a", "bbaa"),
                ("four", "b", "aabb"),
            ]:
                await replicas[writer].call_tool("remember", {"session_id": session_id, "note": note})
                for reader in readers:
                    await recall(reader)
            for replica in "abab":
                assert (await replicas[replica].call_tool("word_count", {"text": "a b c"})).data == 3
        return seen

    one, two = CloudServer(redis_url, name), CloudServer(redis_url, name)
    try:
        seen = asyncio.run(interleaved(one.url, two.url))
    finally:
        one.stop()
        two.stop()
    notes = ["one", "two", "three", "four"]
    expected = [
        (reader, notes[: i + 1])
        for i, readers in enumerate(["abab", "abba", "bbaa", "aabb"])
        for reader in readers
    ]
    assert seen == expected

    async def stored() -> tuple[list[str], dict[str, int]]:
        store = open_store(redis_url)
        try:
            names = await store.collections()
            # The cache's own view decodes its collection names (namespaces escape "/" as %2F).
            cache_view = NamespacedStore(store, f"fastmcp/{name}/cache")
            sizes = {
                f"fastmcp/{name}/cache/{c}": len(await cache_view.keys(c))
                for c in await cache_view.collections()
            }
            return names, sizes
        finally:
            await store.close()

    names, cache = asyncio.run(stored())
    prefix = f"fastmcp/{name}/"
    assert f"{prefix}state/fastmcp_state" in names, names
    # One cached call: word_count's (shared by both replicas); remember and recall never cached.
    assert cache.get(f"{prefix}cache/tools/call") == 1, cache
    assert cache.get(f"{prefix}cache/tools/list", 0) <= 1, cache


def test_cloud_server_oauth_proxy_storage_is_shared_and_encrypted(
    cloud: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mcp.shared.auth import OAuthClientInformationFull

    redis_url, name = cloud
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", KEY)
    monkeypatch.setenv("FASTMCP_SESSIONS_OAUTH_KEYS", Keyring.generate_key())
    monkeypatch.setenv("GITHUB_CLIENT_ID", "gh-client-id")
    monkeypatch.setenv("GITHUB_CLIENT_SECRET", "gh-client-secret")
    monkeypatch.setenv("BASE_URL", "http://127.0.0.1:8000")
    monkeypatch.setenv("JWT_SIGNING_KEY", "x" * 32)
    example = load("cloud_server")
    secret = "registered-client-secret-" + secrets.token_hex(4)

    async def go() -> Any:
        mcp, storage = example.build(redis_url, server_name=name)
        await mcp.auth.register_client(
            OAuthClientInformationFull(
                client_id="c1", client_secret=secret, redirect_uris=["http://127.0.0.1:9/cb"]
            )
        )
        # Resumable streams (clients on SSE streams): events go to the same Redis.
        first = await storage.event_store.store_event("stream-1", None)
        await storage.close()
        replica, replica_storage = example.build(redis_url, server_name=name)
        try:

            async def send(event: Any) -> None:
                raise AssertionError("only a priming event was stored")

            assert await replica_storage.event_store.replay_events_after(first, send) == "stream-1"
            return await replica.auth.get_client("c1")
        finally:
            await replica_storage.close()

    client = asyncio.run(go())
    assert client is not None and client.client_id == "c1"
    import redis

    raw = redis.Redis.from_url(redis_url)
    try:
        blob = b"".join(raw.get(k) or b"" for k in raw.scan_iter(match=f"*fastmcp/{name}/oauth*"))
    finally:
        raw.close()
    assert blob, "the OAuth proxy's data is in Redis"
    assert secret.encode() not in blob, "and encrypted"


def test_client_app_keeps_a_session_per_user_and_server(cloud: tuple[str, str], tmp_path: Path) -> None:
    redis_url, name = cloud
    store_url = f"disk://{tmp_path / 'client.sqlite3'}"
    servers = [CloudServer(redis_url, name + "-a"), CloudServer(redis_url, name + "-b")]
    try:
        urls = [s.url for s in servers]

        def run_app(user: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, str(EXAMPLES / "client_app.py"), "--user", user, *urls],
                env=env(FASTMCP_SESSIONS_URL=store_url),
                capture_output=True,
                text=True,
                timeout=120,
            )

        first = run_app("alice")
        assert first.returncode == 0, first.stdout + first.stderr
        assert first.stdout.count("new session") == 2
        again = run_app("alice")
        assert again.returncode == 0, again.stderr
        assert again.stdout.count("reused session") == 2, "a new process reuses the user's sessions"
        assert run_app("bob").stdout.count("new session") == 2, "sessions are per user"
    finally:
        for server in servers:
            server.stop()

    cli = subprocess.run(
        [sys.executable, "-m", "fastmcp_sessions.cli", "sessions", "list", "--identity", "alice", "--json"],
        env=env(FASTMCP_SESSIONS_URL=store_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    import json

    sessions = json.loads(cli.stdout)["sessions"]
    assert len(sessions) == 2
    assert all("remember" in s["metadata"]["tools"] for s in sessions)


def test_client_app_tokens_live_in_the_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What an OAuth callback does: tokens go into the user's session; the CLI shows them, never the token."""
    from mcp.shared.auth import OAuthToken

    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", KEY)
    example = load("client_app")
    store_url = f"disk://{tmp_path / 'client.sqlite3'}"
    access = "access-" + secrets.token_hex(8)

    async def go() -> None:
        store = open_store(store_url)
        app = example.ClientApp(store)
        session, created = await app.connect("carol", "https://mcp.example.com/mcp", oauth=True)
        assert created and session.auth_status == "pending"
        assert app.auth("carol", session, oauth=True) is not None
        await app.sessions.token_storage("carol", session.session_id).set_tokens(
            OAuthToken(access_token=access, refresh_token="r-" + access, expires_in=600)
        )
        again, created = await app.connect("carol", "https://MCP.example.com:443/mcp/")
        assert not created and again.session_id == session.session_id and again.auth_status == "authorized"
        await store.close()

    asyncio.run(go())
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "fastmcp_sessions.cli",
            "--url",
            store_url,
            "tokens",
            "list",
            "--identity",
            "carol",
        ],
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert "session" in cli.stdout and access not in cli.stdout + cli.stderr


def test_a_listening_client_hears_a_change_made_on_another_replica(cloud: tuple[str, str]) -> None:
    """examples/listen_client.py on replica A hears notes://board change when replica B announces."""
    redis_url, name = cloud
    a, b = CloudServer(redis_url, name), CloudServer(redis_url, name)
    listener = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "listen_client.py")],
        env=env(MCP_URL=a.url, EVENTS="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert listener.stdout is not None
        assert listener.stdout.readline().startswith("listening to"), "acknowledged before the change"

        async def announce() -> None:
            async with Client(b.url) as client:
                await client.call_tool("announce", {"message": "hello"})

        asyncio.run(announce())
        out, err = listener.communicate(timeout=30)
        assert listener.returncode == 0, err
        assert "event: ResourceUpdated(uri='notes://board')" in out
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.communicate()
        a.stop()
        b.stop()
