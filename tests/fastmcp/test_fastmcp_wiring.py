"""FastMCP end to end: server storage from one URL, session state across restarts and replicas, client OAuth."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client, FastMCP
from fastmcp.client.auth.oauth import TokenStorageAdapter
from fastmcp.exceptions import ToolError
from fastmcp.server.auth.auth import ClientRegistrationOptions
from fastmcp.server.auth.providers.in_memory import InMemoryOAuthProvider
from fastmcp.server.dependencies import get_session
from fastmcp.server.sessions import SessionId, SessionProvider
from fastmcp.utilities.http import find_available_port
from fastmcp.utilities.tests import HeadlessOAuth, run_server_async

from fastmcp_sessions import EncryptedStore, Keyring, MemoryStore, Store, open_store
from fastmcp_sessions.fastmcp import OAUTH_KEYS_ENV, ServerStorage, StoreOAuth, server_storage
from fastmcp_sessions.sessions import identity_store
from fastmcp_sessions.sessions.errors import InvalidServerNameError
from fastmcp_sessions.stores.namespaced import NamespacedStore

KEY = Keyring.generate_key()


@pytest.fixture
def disk_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", KEY)
    yield f"disk://{tmp_path / 'server.sqlite3'}"


def notes_server(storage: ServerStorage, name: str = "notes") -> FastMCP:
    mcp = FastMCP(name, **storage.kwargs())
    mcp.add_provider(SessionProvider())

    @mcp.tool
    async def remember(session_id: SessionId, fact: str) -> str:
        session = await get_session(session_id)
        await session.set("fact", fact)
        return "noted"

    @mcp.tool
    async def recall(session_id: SessionId) -> str:
        session = await get_session(session_id)
        return str(await session.get("fact"))

    return mcp


async def new_session(client: Client[Any]) -> str:
    return str((await client.call_tool("create_session", {})).data)


async def test_session_state_survives_a_restart_on_disk(disk_url: str) -> None:
    storage = server_storage(disk_url, server_name="notes")
    async with storage, Client(notes_server(storage)) as client:
        session_id = await new_session(client)
        await client.call_tool("remember", {"session_id": session_id, "fact": "the sky is blue"})
    # a new process: new store object, new server object, same file
    storage = server_storage(disk_url, server_name="notes")
    async with storage, Client(notes_server(storage)) as client:
        result = await client.call_tool("recall", {"session_id": session_id})
        assert result.data == "the sky is blue"


async def test_two_replicas_share_session_state(disk_url: str) -> None:
    async with (
        server_storage(disk_url, server_name="notes") as one,
        server_storage(disk_url, server_name="notes") as two,
        Client(notes_server(one)) as first,
        Client(notes_server(two)) as second,
    ):
        session_id = await new_session(first)
        await first.call_tool("remember", {"session_id": session_id, "fact": "from replica one"})
        assert (await second.call_tool("recall", {"session_id": session_id})).data == "from replica one"
        await second.call_tool("remember", {"session_id": session_id, "fact": "from replica two"})
        assert (await first.call_tool("recall", {"session_id": session_id})).data == "from replica two"


async def test_servers_sharing_a_store_are_namespaced() -> None:
    shared = MemoryStore()
    a = server_storage(store=shared, server_name="a", oauth_keys=KEY)
    b = server_storage(store=shared, server_name="b", oauth_keys=KEY)
    async with Client(notes_server(a, "a")) as client_a, Client(notes_server(b, "b")) as client_b:
        session_id = await new_session(client_a)
        await client_a.call_tool("remember", {"session_id": session_id, "fact": "only in a"})
        with pytest.raises(ToolError):
            await client_b.call_tool("recall", {"session_id": session_id})
    collections = await shared.collections()
    # Each server's OAuth storage keeps its key-check record (written at startup) in its own namespace.
    data = [c for c in collections if not c.endswith("/fastmcp_sessions_key_check")]
    assert data and all(c.startswith("fastmcp/a/state/") for c in data)
    assert sorted(set(collections) - set(data)) == [
        "fastmcp/a/oauth/fastmcp_sessions_key_check",
        "fastmcp/b/oauth/fastmcp_sessions_key_check",
    ]
    await a.close()  # passed-in store: not closed
    assert await shared.collections() == collections


async def test_event_store_and_response_cache_are_namespaced() -> None:
    from mcp_types import JSONRPCRequest

    shared = MemoryStore()
    storage = server_storage(store=shared, server_name="events", oauth_keys=KEY)
    first = await storage.event_store.store_event(
        "stream-1", JSONRPCRequest(jsonrpc="2.0", id=1, method="ping")
    )
    await storage.event_store.store_event("stream-1", JSONRPCRequest(jsonrpc="2.0", id=2, method="ping"))
    replayed: list[Any] = []

    async def collect(message: Any) -> None:
        replayed.append(message)

    assert await storage.event_store.replay_events_after(first, collect) == "stream-1"
    assert len(replayed) == 1
    assert storage.http_app_kwargs() == {"event_store": storage.event_store}

    mcp = FastMCP("events", **storage.kwargs())
    calls = {"n": 0}

    @mcp.tool
    def slow() -> int:
        calls["n"] += 1
        return 42

    mcp.add_middleware(storage.response_caching_middleware(cacheable_tools=["slow"]))
    async with Client(mcp) as client:
        assert (await client.call_tool("slow", {})).data == 42
        assert (await client.call_tool("slow", {})).data == 42
    assert calls["n"] == 1
    collections = set(await shared.collections())
    other = server_storage(store=shared, server_name="other", oauth_keys=KEY)
    assert await other.event_store.replay_events_after(first, collect) is None  # another server's stream
    assert any(c.startswith("fastmcp/events/cache/") for c in collections)


def counting_server(storage: ServerStorage, **cache: Any) -> tuple[FastMCP, dict[str, int]]:
    """A server whose tools, resources and prompts count how often they really ran."""
    mcp = FastMCP("counting", **storage.kwargs())
    calls = {"state": 0, "pure": 0, "resource": 0, "other_resource": 0, "prompt": 0, "list": 0}
    notes: list[str] = []

    @mcp.tool
    def add(note: str) -> int:
        notes.append(note)
        return len(notes)

    @mcp.tool
    def read_notes() -> list[str]:
        calls["state"] += 1
        return list(notes)

    @mcp.tool
    def square(x: int) -> int:
        calls["pure"] += 1
        return x * x

    @mcp.resource("notes://all")
    def all_notes() -> str:
        calls["resource"] += 1
        return ",".join(notes)

    @mcp.resource("notes://static")
    def static() -> str:
        calls["other_resource"] += 1
        return "static"

    @mcp.prompt
    def summarize() -> str:
        calls["prompt"] += 1
        return f"summarize {len(notes)} notes"

    mcp.add_middleware(storage.response_caching_middleware(**cache))
    return mcp, calls


async def test_response_cache_by_default_caches_list_operations_only() -> None:
    shared = MemoryStore()
    storage = server_storage(store=shared, server_name="cache-default", oauth_keys=KEY)
    mcp, calls = counting_server(storage)
    async with Client(mcp) as client:
        for n in range(1, 4):
            await client.call_tool("add", {"note": f"n{n}"})
            for _ in range(3):
                assert (await client.call_tool("read_notes", {})).data == [f"n{i}" for i in range(1, n + 1)]
                assert (await client.call_tool("square", {"x": 3})).data == 9
                text = (await client.read_resource("notes://all"))[0].text  # type: ignore[union-attr]
                assert text == ",".join(f"n{i}" for i in range(1, n + 1))
                prompt = await client.get_prompt("summarize")
                assert f"summarize {n} notes" in prompt.messages[0].content.text  # type: ignore[union-attr]
        for _ in range(3):
            assert {t.name for t in await client.list_tools()} == {"add", "read_notes", "square"}
            await client.list_resources()
            await client.list_prompts()
    assert calls["state"] == calls["pure"] == calls["resource"] == calls["prompt"] == 9, calls
    # The cache's own view decodes its collection names (namespaces escape "/" as %2F).
    cache_view = NamespacedStore(shared, "fastmcp/cache-default/cache")
    collections = set(await cache_view.collections())
    assert {"tools/list", "resources/list", "prompts/list"} <= collections, collections
    assert not {"tools/call", "resources/read", "prompts/get"} & collections, collections


async def test_response_cache_caches_what_the_author_names() -> None:
    storage = server_storage(store=MemoryStore(), server_name="cache-named", oauth_keys=KEY)
    mcp, calls = counting_server(
        storage, cacheable_tools=["square"], cacheable_resources=["notes://static"], cacheable_prompts=[]
    )
    async with Client(mcp) as client:
        for n in range(1, 3):
            await client.call_tool("add", {"note": f"n{n}"})
            for _ in range(3):
                assert (await client.call_tool("read_notes", {})).data[-1] == f"n{n}"
                assert (await client.call_tool("square", {"x": 4})).data == 16
                assert (await client.read_resource("notes://static"))[0].text == "static"  # type: ignore[union-attr]
                await client.read_resource("notes://all")
                await client.get_prompt("summarize")
    assert calls["pure"] == 1 and calls["other_resource"] == 1, "named ones come from the cache"
    assert calls["state"] == calls["resource"] == calls["prompt"] == 6, "the rest never does"


async def test_response_cache_explicit_fastmcp_settings_win() -> None:
    storage = server_storage(store=MemoryStore(), server_name="cache-explicit", oauth_keys=KEY)
    mcp, calls = counting_server(storage, call_tool_settings={"excluded_tools": ["add"]})
    async with Client(mcp) as client:
        await client.call_tool("add", {"note": "x"})
        await client.call_tool("square", {"x": 2})
        await client.call_tool("square", {"x": 2})
    assert calls["pure"] == 1
    with pytest.raises(TypeError, match="list of names"):
        storage.response_caching_middleware(cacheable_tools="square")


async def test_oauth_proxy_storage_is_encrypted_with_its_own_key(monkeypatch: pytest.MonkeyPatch) -> None:
    oauth_key = Keyring.generate_key()
    monkeypatch.setenv(OAUTH_KEYS_ENV, oauth_key)
    shared = MemoryStore()
    storage = server_storage(store=shared, server_name="proxy")
    assert storage.oauth_proxy_kwargs() == {"client_storage": storage.oauth_client_storage}
    await storage.oauth_client_storage.put(
        "client-1", {"client_secret": "SECRET"}, collection="mcp-oauth-proxy-clients"
    )
    raw = await shared.get("client-1", collection="fastmcp/proxy/oauth/mcp-oauth-proxy-clients")
    assert raw is not None and "SECRET" not in str(raw) and "ciphertext" in raw
    assert await storage.oauth_client_storage.get("client-1", collection="mcp-oauth-proxy-clients") == {
        "client_secret": "SECRET"
    }
    assert isinstance(storage.oauth_client_storage, EncryptedStore)
    assert storage.oauth_client_storage.keyring.fingerprints == Keyring([oauth_key]).fingerprints
    with pytest.raises(InvalidServerNameError):
        server_storage(store=shared, server_name="a/b")


# -- client OAuth against a real OAuth-protected FastMCP server ---------------------------


class HeadlessStoreOAuth(StoreOAuth, HeadlessOAuth):
    """StoreOAuth that completes the authorization without a browser (FastMCP's test helper)."""


@pytest.fixture
async def protected_server() -> Any:
    port = find_available_port()
    provider = InMemoryOAuthProvider(
        base_url=f"http://127.0.0.1:{port}",
        client_registration_options=ClientRegistrationOptions(enabled=True),
    )
    authorizations = {"n": 0}
    original = provider.authorize

    async def counting_authorize(*args: Any, **kwargs: Any) -> str:
        authorizations["n"] += 1
        return await original(*args, **kwargs)

    provider.authorize = counting_authorize  # type: ignore[method-assign]
    mcp = FastMCP("protected", auth=provider)

    @mcp.tool
    def whoami() -> str:
        return "ok"

    async with run_server_async(mcp, port=port) as url:
        yield url, authorizations


async def test_client_tokens_persist_and_identities_are_isolated(
    protected_server: Any, tmp_path: Path
) -> None:
    url, authorizations = protected_server
    store_url = f"disk://{tmp_path / 'client.sqlite3'}"

    store = open_store(store_url, keys=[KEY])
    async with store, Client(url, auth=HeadlessStoreOAuth(url, store=store, identity="alice")) as client:
        assert (await client.call_tool("whoami", {})).data == "ok"
    assert authorizations["n"] == 1

    # The client app restarts: a new store object over the same file, no new authorization.
    store = open_store(store_url, keys=[KEY])
    async with store:
        async with Client(url, auth=HeadlessStoreOAuth(url, store=store, identity="alice")) as client:
            assert (await client.call_tool("whoami", {})).data == "ok"
        assert authorizations["n"] == 1

        alice = TokenStorageAdapter(identity_store(store, "alice"), server_url=url)
        bob = TokenStorageAdapter(identity_store(store, "bob"), server_url=url)
        alice_tokens = await alice.get_tokens()
        assert alice_tokens is not None
        assert await bob.get_tokens() is None  # same app, same server URL: bob sees nothing of alice's

        async with Client(url, auth=HeadlessStoreOAuth(url, store=store, identity="bob")) as client:
            assert (await client.call_tool("whoami", {})).data == "ok"
        assert authorizations["n"] == 2  # bob had to authorize himself
        bob_tokens = await bob.get_tokens()
        assert bob_tokens is not None and bob_tokens.access_token != alice_tokens.access_token
        again = await alice.get_tokens()
        assert again is not None and again.access_token == alice_tokens.access_token


def test_store_oauth_is_a_fastmcp_oauth() -> None:
    from fastmcp.client.auth.oauth import OAuth

    oauth = StoreOAuth("https://mcp.example.com/mcp", store=MemoryStore(), identity="alice")
    assert isinstance(oauth, OAuth)
    store: Store = oauth._token_storage  # type: ignore[assignment]
    assert "alice" not in repr(store)
