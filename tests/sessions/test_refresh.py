"""Token refresh is single-flight: N clients find one token expired, the token endpoint sees one refresh."""

from __future__ import annotations

import asyncio

import httpx2
from fastmcp.client.auth.oauth import TokenStorageAdapter
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl

from fastmcp_sessions import Store
from fastmcp_sessions.sessions import SessionStore, SingleFlightOAuthClientProvider, identity_store
from tests._support.backends import Backend
from tests._support.session_procs import REFRESH_WORKER, run_together
from tests._support.workers.token_server import TokenServer

CLIENT = OAuthClientInformationFull(
    client_id="client-1", redirect_uris=[AnyUrl("http://127.0.0.1/cb")], token_endpoint_auth_method="none"
)
EXPIRED = OAuthToken(access_token="access-0", refresh_token="refresh-0", expires_in=0)


async def seed_session(store: Store, base: str) -> str:
    sessions = SessionStore(store)
    session = await sessions.create("alice", server_url=f"{base}/mcp")
    storage = sessions.token_storage("alice", session.session_id)
    await storage.set_client_info(CLIENT)
    await storage.set_tokens(EXPIRED)
    return session.session_id


def provider(store: Store, base: str, session_id: str) -> SingleFlightOAuthClientProvider:
    return SingleFlightOAuthClientProvider(
        server_url=f"{base}/mcp",
        client_metadata=OAuthClientMetadata(redirect_uris=[AnyUrl("http://127.0.0.1/cb")]),
        storage=SessionStore(store).token_storage("alice", session_id),
        refresh_lock_lease=10,
        refresh_lock_timeout=30,
    )


async def test_clients_in_one_process_refresh_once(backend: Backend) -> None:
    stores = [backend.open() for _ in range(4)] if backend.shared_across_instances else [backend.open()] * 4
    try:
        with TokenServer(refresh_token="refresh-0") as server:
            session_id = await seed_session(stores[0], server.url)

            async def call(store: Store) -> tuple[int, str]:
                async with httpx2.AsyncClient(
                    auth=provider(store, server.url, session_id), timeout=30
                ) as client:
                    response = await client.get(f"{server.url}/resource")
                return response.status_code, response.json().get("token")

            results = await asyncio.gather(*(call(s) for s in stores))
            assert server.refresh_requests == 1
            assert not server.family_revoked
            assert results == [(200, "access-1")] * 4
            stored = await SessionStore(stores[0]).token_storage("alice", session_id).get_tokens()
            assert stored is not None
            assert (stored.access_token, stored.refresh_token) == ("access-1", "refresh-1")
    finally:
        for s in set(stores):
            await s.close()


async def test_processes_refresh_once(shared_backend: Backend) -> None:
    assert shared_backend.url is not None
    with TokenServer(refresh_token="refresh-0") as server:
        store = shared_backend.open()
        try:
            session_id = await seed_session(store, server.url)
        finally:
            await store.close()
        argv = ["sdk", shared_backend.url, server.url, "alice", session_id]
        results = await run_together(shared_backend, [argv] * 3, script=REFRESH_WORKER)
        assert server.refresh_requests == 1, "more than one process redeemed the refresh token"
        assert not server.family_revoked
        assert results == [{"status": 200, "token": "access-1"}] * 3


async def test_fastmcp_oauth_processes_refresh_once(shared_backend: Backend) -> None:
    assert shared_backend.url is not None
    with TokenServer(refresh_token="refresh-0") as server:
        store = shared_backend.open()
        try:
            adapter = TokenStorageAdapter(identity_store(store, "alice"), server_url=f"{server.url}/mcp")
            await adapter.set_client_info(CLIENT)
            await adapter.set_tokens(EXPIRED)
        finally:
            await store.close()
        argv = ["fastmcp", shared_backend.url, server.url, "alice"]
        results = await run_together(shared_backend, [argv] * 3, script=REFRESH_WORKER)
        assert server.refresh_requests == 1
        assert results == [{"status": 200, "token": "access-1"}] * 3


async def test_without_single_flight_the_family_is_revoked() -> None:
    """The failure the single flight prevents: plain SDK providers over one storage."""
    from mcp.client.auth import OAuthClientProvider

    from fastmcp_sessions import MemoryStore

    class PlainProvider(OAuthClientProvider):
        async def _initialize(self) -> None:
            await super()._initialize()
            self.context.token_expiry_time = await self.context.storage.get_token_expiry()  # type: ignore[attr-defined]

    store = MemoryStore()
    with TokenServer(refresh_token="refresh-0") as server:
        session_id = await seed_session(store, server.url)

        async def call() -> int:
            plain = PlainProvider(
                server_url=f"{server.url}/mcp",
                client_metadata=OAuthClientMetadata(redirect_uris=[AnyUrl("http://127.0.0.1/cb")]),
                storage=SessionStore(store).token_storage("alice", session_id),
            )
            async with httpx2.AsyncClient(auth=plain, timeout=30) as client:
                try:
                    return (await client.get(f"{server.url}/resource")).status_code
                except Exception:
                    return -1

        await asyncio.gather(call(), call())
        assert server.refresh_requests == 2
        assert server.family_revoked
