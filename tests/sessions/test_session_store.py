"""SessionStore on every backend: CRUD, isolation, expiry, limits, atomic updates, round trips."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import pytest

from fastmcp_sessions import Store
from fastmcp_sessions.sessions import (
    InvalidIdentityError,
    InvalidServerURLError,
    ServerRegistry,
    SessionLimitError,
    SessionNotFoundError,
    SessionStore,
    SessionValidationError,
)
from tests._support.backends import Backend
from tests._support.counting import CountingStore
from tests._support.session_procs import run_together

URL = "https://mcp.example.com/mcp"


async def test_create_get_list_update_delete(store: Store) -> None:
    sessions = SessionStore(store)
    s = await sessions.create(
        "alice",
        server_url="HTTPS://MCP.Example.com:443/mcp/",
        callback_url="https://app.example.com/oauth/callback",
        transport="sse",
        server_name="example",
        headers={"X-Api-Key": "k-123"},
        metadata={"tenant": "acme", "tags": ["a", "b"]},
    )
    assert s.identity == "alice"
    assert s.server_url == URL
    assert s.server_name == "example"
    assert s.transport == "sse"
    assert s.active is True and s.auth_status == "none"
    assert s.headers == {"X-Api-Key": "k-123"}
    assert s.metadata == {"tenant": "acme", "tags": ["a", "b"]}
    assert s.created_at <= s.updated_at < s.expires_at
    assert len(s.server_id) == 32

    assert await sessions.get("alice", s.session_id) == s
    assert [x.session_id for x in await sessions.list("alice")] == [s.session_id]

    updated = await sessions.update("alice", s.session_id, active=False, transport="streamable_http")
    assert updated.active is False and updated.transport == "streamable_http"
    assert updated.callback_url == s.callback_url and updated.headers == s.headers  # untouched fields kept
    got = await sessions.get("alice", s.session_id)
    assert got is not None and got.active is False

    assert await sessions.delete("alice", s.session_id) is True
    assert await sessions.delete("alice", s.session_id) is False
    assert await sessions.get("alice", s.session_id) is None
    assert await sessions.list("alice") == []
    with pytest.raises(SessionNotFoundError, match="create a new session"):
        await sessions.update("alice", s.session_id, active=True)


async def test_purge_removes_only_that_identity(store: Store) -> None:
    sessions = SessionStore(store)
    for _ in range(3):
        await sessions.create("alice", server_url=URL)
    bob = await sessions.create("bob", server_url=URL)
    assert await sessions.purge("alice") == 3
    assert await sessions.list("alice") == []
    assert await sessions.purge("alice") == 0
    assert [s.session_id for s in await sessions.list("bob")] == [bob.session_id]


async def test_list_is_ordered_by_creation(store: Store) -> None:
    sessions = SessionStore(store)
    made = [await sessions.create("alice", server_url=f"https://s{i}.example.com/mcp") for i in range(4)]
    assert [s.session_id for s in await sessions.list("alice")] == [s.session_id for s in made]
    assert await sessions.count("alice") == 4


async def test_session_ids_are_random_urlsafe_and_long(store: Store) -> None:
    sessions = SessionStore(store)
    ids = {(await sessions.create("alice", server_url=URL)).session_id for _ in range(20)}
    assert len(ids) == 20
    for sid in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", sid)
        assert len(sid) * 6 >= 128  # base64url: 6 bits per character


async def test_identities_are_isolated(store: Store) -> None:
    sessions = SessionStore(store)
    a = await sessions.create("alice", server_url=URL, headers={"Authorization": "Bearer alice-secret"})
    await sessions.create("bob", server_url=URL)
    assert await sessions.get("bob", a.session_id) is None
    assert all(s.identity == "bob" for s in await sessions.list("bob"))
    assert a.session_id not in {s.session_id for s in await sessions.list("bob")}
    with pytest.raises(SessionNotFoundError):
        await sessions.update("bob", a.session_id, active=False)
    assert await sessions.delete("bob", a.session_id) is False
    assert await sessions.token_storage("bob", a.session_id).get_tokens() is None
    assert await sessions.get("alice", a.session_id) is not None


async def test_identities_are_not_stored_in_clear(store: Store) -> None:
    sessions = SessionStore(store)
    identity = "alice@example.com"
    await sessions.create(identity, server_url=URL)
    keys = await store.keys(sessions.collection)
    assert keys and not any("alice" in k for k in keys)
    for key in keys:
        assert "alice" not in json.dumps(await store.get(key, collection=sessions.collection))


async def test_identity_key_makes_digests_keyed(store: Store) -> None:
    plain, keyed = SessionStore(store), SessionStore(store, identity_key="pepper")
    assert plain._key("alice") != keyed._key("alice")
    s = await keyed.create("alice", server_url=URL)
    assert await plain.get("alice", s.session_id) is None
    assert await keyed.get("alice", s.session_id) is not None


async def test_expired_sessions_disappear_and_use_slides_expiry(store: Store) -> None:
    lifetime = 1.5
    sessions = SessionStore(store, lifetime=lifetime, touch_interval=0)
    kept = await sessions.create("alice", server_url=URL)
    kept_created = time.monotonic()
    dropped = await sessions.create("alice", server_url=URL)
    dropped_created = time.monotonic()  # dropped expires by this + lifetime

    await sleep_until(kept_created + 0.6)
    assert await sessions.get("alice", kept.session_id) is not None  # used: slides by a lifetime
    used = time.monotonic()

    await sleep_until(dropped_created + lifetime + 0.1)  # past dropped's expiry, before kept's
    assert used + lifetime > time.monotonic() + 0.2, "the backend was too slow for this test's timing"
    assert await sessions.get("alice", dropped.session_id) is None
    assert await sessions.get("alice", kept.session_id, touch=False) is not None
    assert [s.session_id for s in await sessions.list("alice")] == [kept.session_id]

    await sleep_until(used + lifetime + 0.1)
    assert await sessions.list("alice") == []
    assert await sessions.get("alice", kept.session_id) is None


async def sleep_until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))


async def test_get_touches_at_most_once_per_interval(store: Store) -> None:
    sessions = SessionStore(store, touch_interval=3600)
    s = await sessions.create("alice", server_url=URL)
    got = await sessions.get("alice", s.session_id)
    assert got is not None and got.expires_at == s.expires_at  # no write within the interval
    touched = await sessions.touch("alice", s.session_id)
    assert touched is not None and touched.expires_at > s.expires_at


async def test_pending_oauth_session_lives_briefly_until_tokens_arrive(store: Store) -> None:
    from mcp.shared.auth import OAuthToken

    sessions = SessionStore(store, lifetime=3600, pending_lifetime=1.5, touch_interval=0)
    completed = await sessions.create("alice", server_url=URL, pending_auth=True)
    abandoned = await sessions.create("alice", server_url=URL, pending_auth=True)
    assert completed.auth_status == "pending"
    assert (completed.expires_at - completed.created_at).total_seconds() == pytest.approx(1.5, abs=0.05)
    await sessions.token_storage("alice", completed.session_id).set_tokens(
        OAuthToken(access_token="at", refresh_token="rt", expires_in=60)
    )
    done = await sessions.get("alice", completed.session_id)
    assert done is not None and done.auth_status == "authorized"
    assert (done.expires_at - done.updated_at).total_seconds() == pytest.approx(3600, abs=1)
    # get does not extend a pending session
    assert await sessions.get("alice", abandoned.session_id) is not None
    await asyncio.sleep(1.7)
    assert await sessions.get("alice", abandoned.session_id) is None
    assert await sessions.get("alice", completed.session_id) is not None


async def test_session_cap_raises_a_typed_error(store: Store) -> None:
    sessions = SessionStore(store, max_sessions_per_identity=2)
    first = await sessions.create("alice", server_url=URL)
    await sessions.create("alice", server_url=URL)
    with pytest.raises(SessionLimitError, match="max_sessions_per_identity") as info:
        await sessions.create("alice", server_url=URL)
    assert info.value.extra_info == {"limit": 2}
    await sessions.create("bob", server_url=URL)  # per identity
    await sessions.delete("alice", first.session_id)
    await sessions.create("alice", server_url=URL)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"server_url": "ftp://example.com"}, InvalidServerURLError),
        ({"server_url": "/relative"}, InvalidServerURLError),
        ({"server_url": URL, "transport": "websocket"}, SessionValidationError),
        ({"server_url": URL, "callback_url": "not a url"}, SessionValidationError),
        ({"server_url": URL, "headers": {"Bad Header": "x"}}, SessionValidationError),
        ({"server_url": URL, "headers": {"X-Ok": "a\r\nInjected: 1"}}, SessionValidationError),
    ],
)
async def test_invalid_fields_raise_typed_errors(kwargs: dict[str, Any], error: type[Exception]) -> None:
    from fastmcp_sessions import MemoryStore

    with pytest.raises(error):
        await SessionStore(MemoryStore()).create("alice", **kwargs)


async def test_invalid_identity_is_refused(store: Store) -> None:
    sessions = SessionStore(store)
    with pytest.raises(InvalidIdentityError):
        await sessions.create("", server_url=URL)
    with pytest.raises(InvalidIdentityError):
        await sessions.list(None)  # type: ignore[arg-type]


async def test_registry_names_sessions(store: Store) -> None:
    registry = ServerRegistry(store)
    sessions = SessionStore(store, registry=registry)
    s = await sessions.create("alice", server_url="https://api.github.com/mcp")
    assert s.server_name == "github"
    assert await registry.resolve("github") == "https://api.github.com/mcp"


async def test_concurrent_updates_of_different_fields_lose_nothing(backend: Backend) -> None:
    stores = [backend.open(), backend.open()] if backend.shared_across_instances else [backend.open()] * 2
    try:
        a, b = SessionStore(stores[0]), SessionStore(stores[1])
        s = await a.create("alice", server_url=URL)

        async def set_headers() -> None:
            for i in range(15):
                await a.update("alice", s.session_id, headers={"X-Run": str(i)})

        async def set_callback() -> None:
            for i in range(15):
                await b.update("alice", s.session_id, callback_url=f"https://app.example.com/cb/{i}")

        await asyncio.gather(set_headers(), set_callback())
        final = await a.get("alice", s.session_id)
        assert final is not None
        assert final.headers == {"X-Run": "14"}
        assert final.callback_url == "https://app.example.com/cb/14"
    finally:
        for st in set(stores):
            await st.close()


async def test_processes_updating_different_fields_lose_nothing(shared_backend: Backend) -> None:
    store = shared_backend.open()
    try:
        s = await SessionStore(store).create("alice", server_url=URL)
        assert shared_backend.url is not None
        await run_together(
            shared_backend,
            [
                ["update", shared_backend.url, "alice", s.session_id, "headers", "20"],
                ["update", shared_backend.url, "alice", s.session_id, "callback_url", "20"],
            ],
        )
        final = await SessionStore(store).get("alice", s.session_id)
        assert final is not None
        assert final.headers == {"X-Worker": "19"}
        assert final.callback_url == "https://app.example.com/cb/19"
    finally:
        await store.close()


async def test_session_cap_is_exact_across_processes(shared_backend: Backend) -> None:
    assert shared_backend.url is not None
    made = await run_together(shared_backend, [["create", shared_backend.url, "carol", "4", "3"]] * 3)
    assert sum(made) == 4
    store = shared_backend.open()
    try:
        assert await SessionStore(store).count("carol") == 4
    finally:
        await store.close()


# -- round trips --------------------------------------------------------------------------


async def test_round_trips_per_operation(store: Store) -> None:
    counting = CountingStore(store)
    sessions = SessionStore(counting)
    for i in range(3):
        await sessions.create("alice", server_url=f"https://s{i}.example.com/mcp")

    async def calls(op: Any) -> int:
        before = counting.calls
        await op
        return counting.calls - before

    created = await sessions.create("alice", server_url=URL)
    counting.calls = 0
    await sessions.create("alice", server_url=URL)
    assert counting.calls <= 2
    assert await calls(sessions.get("alice", created.session_id)) == 1
    assert await calls(sessions.list("alice")) == 1
    assert await calls(sessions.update("alice", created.session_id, active=False)) <= 2
    assert await calls(sessions.delete("alice", created.session_id)) <= 2


def test_session_ids_never_look_like_command_line_options() -> None:
    from fastmcp_sessions.sessions.store import new_session_id

    ids = [new_session_id() for _ in range(5000)]
    assert not any(i.startswith("-") for i in ids)
    assert len(set(ids)) == len(ids) and all(len(i) == 32 for i in ids)
