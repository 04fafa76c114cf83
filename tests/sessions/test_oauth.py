"""OAuth pieces on every backend: token storage, per-identity views, PKCE flows, redaction."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re

import pytest
from fastmcp.client.auth.oauth import TokenStorageAdapter
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyUrl

from fastmcp_sessions import Store
from fastmcp_sessions.sessions import (
    FlowNotFoundError,
    OAuthFlows,
    SessionNotFoundError,
    SessionStore,
    identity_store,
)
from tests._support.backends import Backend
from tests._support.session_procs import run_together

URL = "https://mcp.example.com/mcp"
ACCESS, REFRESH, SECRET = "access-SECRET-1", "refresh-SECRET-2", "client-SECRET-3"


def client_info() -> OAuthClientInformationFull:
    return OAuthClientInformationFull(
        client_id="client-1",
        client_secret=SECRET,
        redirect_uris=[AnyUrl("https://app.example.com/cb")],
        token_endpoint_auth_method="client_secret_post",
    )


async def test_session_token_storage_round_trip(store: Store) -> None:
    sessions = SessionStore(store)
    s = await sessions.create("alice", server_url=URL, pending_auth=True)
    storage = sessions.token_storage("alice", s.session_id)
    assert await storage.get_tokens() is None
    assert await storage.get_client_info() is None
    assert await storage.get_token_expiry() is None

    await storage.set_client_info(client_info())
    await storage.set_tokens(
        OAuthToken(access_token=ACCESS, refresh_token=REFRESH, expires_in=3600, scope="read")
    )

    tokens = await storage.get_tokens()
    assert isinstance(tokens, OAuthToken)
    assert (tokens.access_token, tokens.refresh_token, tokens.scope) == (ACCESS, REFRESH, "read")
    expiry = await storage.get_token_expiry()
    assert expiry is not None
    info = await storage.get_client_info()
    assert isinstance(info, OAuthClientInformationFull)
    assert info.client_id == "client-1" and info.client_secret == SECRET
    assert [str(u) for u in info.redirect_uris or []] == ["https://app.example.com/cb"]

    session = await sessions.get("alice", s.session_id)
    assert session is not None and session.auth_status == "authorized"
    assert session.oauth.tokens is not None
    assert session.oauth.tokens.access_token.get_secret_value() == ACCESS
    assert session.oauth.tokens.expires_at is not None
    assert session.oauth.tokens.expires_at.timestamp() == pytest.approx(expiry)
    assert session.oauth.client is not None and session.oauth.client.client_id == "client-1"

    await storage.clear_tokens()
    assert await storage.get_tokens() is None
    assert await storage.get_client_info() is not None
    await storage.clear()
    assert await storage.get_client_info() is None


async def test_token_storage_of_deleted_session_refuses_writes(store: Store) -> None:
    sessions = SessionStore(store)
    s = await sessions.create("alice", server_url=URL)
    await sessions.delete("alice", s.session_id)
    storage = sessions.token_storage("alice", s.session_id)
    assert await storage.get_tokens() is None
    with pytest.raises(SessionNotFoundError) as info:
        await storage.set_tokens(OAuthToken(access_token=ACCESS))
    assert ACCESS not in str(info.value)


async def test_secrets_are_redacted_everywhere(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="fastmcp_sessions")  # ours (database drivers log payloads)
    caplog.set_level(logging.DEBUG, logger="test")
    sessions = SessionStore(store)
    s = await sessions.create("alice", server_url=URL, headers={"Authorization": "Bearer header-SECRET-4"})
    storage = sessions.token_storage("alice", s.session_id)
    await storage.set_client_info(client_info())
    await storage.set_tokens(OAuthToken(access_token=ACCESS, refresh_token=REFRESH, expires_in=60))
    session = await sessions.get("alice", s.session_id)
    tokens = await storage.get_tokens()
    info = await storage.get_client_info()
    flow = await sessions.flows.start("alice", redirect_uri="https://app.example.com/cb")
    verifier = flow.code_verifier.get_secret_value()
    logging.getLogger("test").info("session %s tokens %s client %s flow %s", session, tokens, info, flow)
    shown = " ".join(
        [repr(session), str(session), repr(tokens), str(tokens), repr(info), str(info), repr(flow), str(flow)]
        + [repr(storage), repr(sessions), repr(session.oauth if session else None)]
        + [r.getMessage() for r in caplog.records if r.name.startswith(("fastmcp_sessions", "test"))]
    )
    for secret in (ACCESS, REFRESH, SECRET, verifier, "header-SECRET-4", flow.state):
        assert secret not in shown
    assert "***" in shown
    with pytest.raises(FlowNotFoundError) as error:
        await sessions.flows.consume(flow.state, identity="mallory")
    assert flow.state not in str(error.value)


async def test_identity_store_isolates_fastmcp_tokens(store: Store) -> None:
    alice_view, bob_view = identity_store(store, "alice"), identity_store(store, "bob")
    alice = TokenStorageAdapter(alice_view, server_url=URL)
    bob = TokenStorageAdapter(bob_view, server_url=URL)
    await alice.set_tokens(OAuthToken(access_token=ACCESS, refresh_token=REFRESH, expires_in=60))
    await alice.set_client_info(client_info())

    assert (await alice.get_tokens()) is not None
    assert await bob.get_tokens() is None
    assert await bob.get_client_info() is None
    assert await bob_view.keys("mcp-oauth-token") == []
    assert await alice_view.keys("mcp-oauth-token") == [f"{URL}/tokens"]
    assert await bob_view.collections() == []
    assert "mcp-oauth-token" in await alice_view.collections()

    assert await bob_view.destroy_collection("mcp-oauth-token") is False
    await bob.clear()
    got = await alice.get_tokens()
    assert got is not None and got.access_token == ACCESS
    raw_keys = await store.keys("mcp-oauth-token")
    assert raw_keys and not any("alice" in k for k in raw_keys)
    await alice_view.close()  # closing a view leaves the shared store open
    assert await store.keys("mcp-oauth-token") == raw_keys


async def test_flow_is_consumed_exactly_once(store: Store) -> None:
    flows = OAuthFlows(store)
    flow = await flows.start(
        "alice", redirect_uri="https://app.example.com/cb", session_id="s1", server_url=URL, scopes=["read"]
    )
    assert len(flow.state) >= 43 and re.fullmatch(r"[A-Za-z0-9_-]+", flow.state)
    verifier = flow.code_verifier.get_secret_value()
    assert 43 <= len(verifier) <= 128 and re.fullmatch(r"[A-Za-z0-9._~-]+", verifier)
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert flow.code_challenge == expected
    assert (flow.expires_at - flow.created_at).total_seconds() == pytest.approx(600)

    with pytest.raises(FlowNotFoundError):
        await flows.consume(flow.state, identity="bob")  # another identity's flow: refused, left intact
    got = await flows.consume(flow.state, identity="alice")
    assert got.code_verifier.get_secret_value() == verifier
    assert (got.session_id, got.server_url, got.scopes) == ("s1", URL, ["read"])
    with pytest.raises(FlowNotFoundError, match="start a new authorization"):
        await flows.consume(flow.state, identity="alice")
    with pytest.raises(FlowNotFoundError):
        await flows.consume("never-issued")
    state_keys = await store.keys("fastmcp_sessions_flows")
    assert not any(flow.state in k for k in state_keys)


async def test_flow_expires(store: Store) -> None:
    flows = OAuthFlows(store, lifetime=0.3)
    flow = await flows.start("alice", redirect_uri="https://app.example.com/cb")
    await asyncio.sleep(0.45)
    with pytest.raises(FlowNotFoundError):
        await flows.consume(flow.state)


async def test_flow_cancel(store: Store) -> None:
    flows = OAuthFlows(store)
    flow = await flows.start("alice", redirect_uri="https://app.example.com/cb")
    assert await flows.cancel(flow.state) is True
    with pytest.raises(FlowNotFoundError):
        await flows.consume(flow.state)


async def test_concurrent_consumers_one_winner(backend: Backend) -> None:
    stores = [backend.open() for _ in range(4)] if backend.shared_across_instances else [backend.open()] * 4
    try:
        flow = await OAuthFlows(stores[0]).start("alice", redirect_uri="https://app.example.com/cb")

        async def consume(s: Store) -> bool:
            try:
                await OAuthFlows(s).consume(flow.state, identity="alice")
            except FlowNotFoundError:
                return False
            return True

        results = await asyncio.gather(*(consume(s) for s in stores))
        assert sum(results) == 1
    finally:
        for s in set(stores):
            await s.close()


async def test_processes_consuming_one_state_one_winner(shared_backend: Backend) -> None:
    assert shared_backend.url is not None
    store = shared_backend.open()
    try:
        flow = await SessionStore(store).flows.start("alice", redirect_uri="https://app.example.com/cb")
    finally:
        await store.close()
    results = await run_together(shared_backend, [["consume", shared_backend.url, flow.state, "alice"]] * 4)
    winners = [r for r in results if r is not None]
    assert winners == [flow.code_verifier.get_secret_value()]
