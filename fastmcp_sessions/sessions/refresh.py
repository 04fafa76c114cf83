"""Token refresh that is single-flight across processes, for the MCP SDK's OAuth client.

When several processes (or replicas) find the same token expired at once, exactly
one calls the token endpoint; the others wait for it and use the tokens it stored.
Many providers revoke the whole token family when a refresh token is redeemed
twice, so without this a burst of expired-token requests logs every process out.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import AsyncGenerator
from typing import Any

import httpx2
from mcp.client.auth import OAuthClientProvider

from fastmcp_sessions import telemetry
from fastmcp_sessions.errors import StaleFencingTokenError
from fastmcp_sessions.sessions._keys import short_digest
from fastmcp_sessions.sessions._seam import check_seam
from fastmcp_sessions.sessions.lock import DEFAULT_LOCK_COLLECTION, Lock
from fastmcp_sessions.stores.base import Store

__all__ = ["SingleFlightOAuthClientProvider"]

logger = logging.getLogger("fastmcp_sessions")

_FLOW: contextvars.ContextVar[object | None] = contextvars.ContextVar(
    "fastmcp_sessions_auth_flow", default=None
)


class SingleFlightOAuthClientProvider(OAuthClientProvider):
    """The MCP SDK's ``OAuthClientProvider`` with token refresh made single-flight across processes.

    Before refreshing, the provider takes a distributed ``Lock`` for this token and
    reads the storage again. If another process refreshed meanwhile, its tokens are
    used and the token endpoint is not called; otherwise this process refreshes while
    holding the lock and releases it once the new tokens are stored. Many providers
    revoke the whole token family when a refresh token is redeemed twice, which this
    prevents.

    The lock comes from ``storage.refresh_lock()`` when the storage has it
    (``SessionTokenStorage`` does), else it is built on ``refresh_lock_store`` (or on
    the ``token_storage`` store of FastMCP's ``OAuth`` when this class is mixed into
    it, as ``fastmcp_sessions.fastmcp.StoreOAuth`` does). Without either, refresh is
    only single-flight within the process, as in the SDK.

    Takes the same arguments as ``OAuthClientProvider`` plus the keywords below.

    Args:
        refresh_lock_store: Store for the refresh lock when the storage offers none.
        refresh_lock_lease: Seconds a refreshing process may hold the lock (a crashed
            one is taken over after this).
        refresh_lock_timeout: Seconds to wait for another process's refresh before
            giving up with ``LockTimeoutError``.
    """

    def __init__(
        self,
        *args: Any,
        refresh_lock_store: Store | None = None,
        refresh_lock_lease: float = 30.0,
        refresh_lock_timeout: float | None = 60.0,
        **kwargs: Any,
    ) -> None:
        check_seam()  # the private members overridden below: sessions/_seam.py
        self._sf_loaded = False
        self._sf_held: tuple[Lock, object] | None = None
        self.refresh_lock_store = refresh_lock_store
        self.refresh_lock_lease = refresh_lock_lease
        self.refresh_lock_timeout = refresh_lock_timeout
        super().__init__(*args, **kwargs)

    # The SDK loads storage when ``_initialized`` is false, inside its per-process lock and
    # right before it decides to refresh. Reporting "not initialized" while the token is
    # expired and refreshable gives ``_initialize`` (below) that moment to coordinate.
    @property
    def _initialized(self) -> bool:
        return self._sf_loaded and not self._sf_needs_refresh()

    @_initialized.setter
    def _initialized(self, value: bool) -> None:
        self._sf_loaded = value

    def _sf_needs_refresh(self) -> bool:
        context = self.context
        return not context.is_token_valid() and context.can_refresh_token()

    async def _sf_stored_expiry(self) -> float | None:
        getter = getattr(self.context.storage, "get_token_expiry", None)
        if getter is None:
            return None
        expiry = await getter()
        return None if expiry is None else float(expiry)

    async def _initialize(self) -> None:
        if not self._sf_loaded:
            await super()._initialize()
            if self.context.current_tokens is not None:
                expiry = await self._sf_stored_expiry()
                if expiry is not None:
                    self.context.token_expiry_time = expiry
        if self._sf_needs_refresh():
            await self._sf_coordinate()

    def _sf_lock(self) -> Lock | None:
        factory = getattr(self.context.storage, "refresh_lock", None)
        if callable(factory):
            lock = factory(lease=self.refresh_lock_lease, timeout=self.refresh_lock_timeout)
            if isinstance(lock, Lock):
                return lock
        store = self.refresh_lock_store
        if store is None:
            candidate = getattr(self, "_token_storage", None)  # FastMCP's OAuth keeps its store here
            store = candidate if isinstance(candidate, Store) else None
        if store is None:
            return None
        return Lock(
            store,
            "oauth-refresh/" + short_digest(self.context.server_url),
            lease=self.refresh_lock_lease,
            timeout=self.refresh_lock_timeout,
            collection=DEFAULT_LOCK_COLLECTION,
        )

    async def _sf_coordinate(self) -> None:
        lock = self._sf_lock()
        if lock is None:
            return
        with telemetry.span("fastmcp_sessions.token_refresh.coordinate") as span:
            start = time.monotonic()
            await lock.acquire()
            waited = time.monotonic() - start
            role = await self._sf_after_lock(lock)
            telemetry.record_refresh_wait(waited, role)
            if span is not None:
                span.set_attributes(
                    {
                        "fastmcp_sessions.token_refresh.role": role,
                        "fastmcp_sessions.token_refresh.wait": waited,
                    }
                )

    async def _sf_after_lock(self, lock: Lock) -> str:
        """With ``lock`` held: use tokens another process stored ("follower"), or keep the
        lock to refresh them here ("leader")."""
        keep = False
        try:
            context = self.context
            stored = await context.storage.get_tokens()
            expiry = await self._sf_stored_expiry()
            current = context.current_tokens
            if stored is None:
                context.clear_tokens()  # cleared elsewhere: a new authorization is needed
            elif current is None or stored.access_token != current.access_token:
                logger.debug("using tokens another process refreshed")
                context.current_tokens = stored
                context.token_expiry_time = expiry
            elif expiry is not None and expiry > time.time():
                context.token_expiry_time = expiry
            else:
                keep = True  # ours to refresh; released once the response is handled
                self._sf_held = (lock, _FLOW.get())
        finally:
            if not keep:
                await lock.release()
        return "leader" if keep else "follower"

    async def _sf_release(self, flow: object | None) -> None:
        held = self._sf_held
        if held is not None and held[1] is flow:
            self._sf_held = None
            await held[0].release()

    async def _handle_refresh_response(self, response: httpx2.Response) -> bool:
        try:
            try:
                return await super()._handle_refresh_response(response)
            except StaleFencingTokenError:
                # This process was paused past its lease and another refreshed meanwhile:
                # its tokens are the live ones; ours were refused by the fenced write.
                logger.warning("a newer holder of the refresh lock stored tokens first; using those")
                return await self._sf_adopt_stored()
        finally:
            await self._sf_release(_FLOW.get())

    async def _sf_adopt_stored(self) -> bool:
        context = self.context
        stored = await context.storage.get_tokens()
        if stored is None:
            context.clear_tokens()
            return False
        context.current_tokens = stored
        context.token_expiry_time = await self._sf_stored_expiry()
        return True

    async def _auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        flow = object()
        _FLOW.set(flow)
        inner = super()._auth_flow(request)
        try:
            outgoing = await inner.__anext__()
            while True:
                response = yield outgoing
                outgoing = await inner.asend(response)
        except StopAsyncIteration:
            return
        finally:
            await inner.aclose()
            await self._sf_release(flow)
