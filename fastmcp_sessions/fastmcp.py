"""FastMCP wiring: everything a FastMCP server (or client app) needs, from one store URL.

Server side::

    from fastmcp import FastMCP
    from fastmcp_sessions.fastmcp import server_storage

    storage = server_storage("redis://cache:6379/0", server_name="billing")
    mcp = FastMCP("billing", **storage.kwargs())              # session_state_store
    app = mcp.http_app(**storage.http_app_kwargs())           # event_store (resumable SSE)
    mcp.add_middleware(storage.response_caching_middleware(cacheable_tools=["word_count"]))
    auth = GitHubProvider(..., **storage.oauth_proxy_kwargs())  # client_storage, encrypted

Every part lives under its own collection prefix ``fastmcp/<server_name>/<part>/``,
so several servers share one Redis (or disk file) without seeing each other's data,
and the OAuth proxy's storage is encrypted with its own Fernet keys whatever the
backend — never derived from the JWT signing key. The response cache is shared by
every replica, so by default it caches only list operations (``tools/list``,
``resources/list``, ``prompts/list``) and the tools, resources and prompts named as
safe to cache: a tool that reads state must never answer from the cache.

Client side, ``StoreOAuth`` is FastMCP's ``OAuth`` with tokens kept per identity in
any store and refresh single-flight across processes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastmcp.client.auth.oauth import OAuth
from fastmcp.prompts.base import PromptResult
from fastmcp.resources.base import ResourceResult
from fastmcp.server.event_store import EventStore
from fastmcp.server.middleware.caching import (
    CallToolSettings,
    GetPromptSettings,
    ReadResourceSettings,
    ResponseCachingMiddleware,
)
from fastmcp.server.middleware.middleware import CallNext, MiddlewareContext

from fastmcp_sessions._closing import AsyncClosing
from fastmcp_sessions.encryption import Keyring, load_keyring
from fastmcp_sessions.sessions.errors import InvalidServerNameError
from fastmcp_sessions.sessions.oauth import identity_store
from fastmcp_sessions.sessions.refresh import SingleFlightOAuthClientProvider
from fastmcp_sessions.stores.base import Store
from fastmcp_sessions.stores.encrypted import EncryptedStore
from fastmcp_sessions.stores.namespaced import NamespacedStore
from fastmcp_sessions.stores.registry import app_name_from_env, open_store

__all__ = [
    "OAUTH_KEYS_ENV",
    "SafeResponseCachingMiddleware",
    "ServerStorage",
    "StoreOAuth",
    "server_storage",
]

OAUTH_KEYS_ENV = "FASTMCP_SESSIONS_OAUTH_KEYS"
"""Comma-separated Fernet keys (newest first) for the OAuth proxy's storage."""


@dataclass(eq=False)
class ServerStorage(AsyncClosing):
    """The stores of one FastMCP server, all views of one underlying store.

    Attributes:
        server_name: The namespace of every part.
        store: The underlying store shared by the parts.
        session_state_store: For ``FastMCP(session_state_store=...)``.
        event_store: For ``mcp.http_app(event_store=...)`` / ``mcp.run(event_store=...)``.
        oauth_client_storage: Encrypted storage for ``OAuthProxy(client_storage=...)``.
        response_cache_storage: For ``ResponseCachingMiddleware(cache_storage=...)``.
    """

    server_name: str
    store: Store
    session_state_store: Store
    event_store: EventStore
    oauth_client_storage: Store
    response_cache_storage: Store
    owns_store: bool = field(default=True, repr=False)

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``FastMCP(...)``."""
        return {"session_state_store": self.session_state_store}

    def http_app_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``mcp.http_app(...)`` or ``mcp.run(transport="http", ...)``."""
        return {"event_store": self.event_store}

    def oauth_proxy_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``OAuthProxy(...)`` and its subclasses (GitHubProvider...)."""
        return {"client_storage": self.oauth_client_storage}

    def response_caching_middleware(
        self,
        *,
        cacheable_tools: Iterable[str] = (),
        cacheable_resources: Iterable[str] = (),
        cacheable_prompts: Iterable[str] = (),
        **settings: Any,
    ) -> SafeResponseCachingMiddleware:
        """A response cache on this server's cache storage, shared by every replica.

        It caches list operations and only the tools, resource URIs and prompts named
        here (see ``SafeResponseCachingMiddleware``); ``settings`` (FastMCP's
        ``*_settings`` and ``max_item_size``) are passed on and win over the defaults.
        """
        return SafeResponseCachingMiddleware(
            self.response_cache_storage,
            cacheable_tools=cacheable_tools,
            cacheable_resources=cacheable_resources,
            cacheable_prompts=cacheable_prompts,
            **settings,
        )

    async def close(self) -> None:
        """Close the underlying store (when ``server_storage`` opened it)."""
        if self.owns_store:
            await self.store.close()


class SafeResponseCachingMiddleware(ResponseCachingMiddleware):
    """FastMCP's ``ResponseCachingMiddleware`` that caches only what is safe to share.

    FastMCP's defaults cache every ``tools/call``, ``resources/read`` and ``prompts/get``
    for an hour. With a cache shared by replicas that serves stale answers to any tool
    that reads state (``remember`` then ``recall`` keeps returning the first answer).
    Here list operations (``tools/list``, ``resources/list``, ``prompts/list``) are
    cached for FastMCP's 5 minutes, and calls, reads and prompts only when named in
    ``cacheable_tools`` (tool names), ``cacheable_resources`` (exact resource URIs) or
    ``cacheable_prompts`` (prompt names), for FastMCP's hour. Name only what depends on
    its arguments alone. An explicit FastMCP setting (``call_tool_settings=``,
    ``read_resource_settings=``, ``get_prompt_settings=``, ``list_*_settings=``) replaces
    the corresponding default, with FastMCP's meaning.
    """

    def __init__(
        self,
        cache_storage: Store,
        *,
        cacheable_tools: Iterable[str] = (),
        cacheable_resources: Iterable[str] = (),
        cacheable_prompts: Iterable[str] = (),
        **settings: Any,
    ) -> None:
        tools = _names("cacheable_tools", cacheable_tools)
        resources = _names("cacheable_resources", cacheable_resources)
        prompts = _names("cacheable_prompts", cacheable_prompts)
        # FastMCP reads an empty included_tools as "every tool": switch the method off instead.
        settings.setdefault(
            "call_tool_settings",
            CallToolSettings(included_tools=sorted(tools)) if tools else CallToolSettings(enabled=False),
        )
        # FastMCP has no per-URI or per-name switch for reads and prompts: filter them here,
        # unless the caller chose FastMCP's own settings for them.
        self._cacheable_resources = None if "read_resource_settings" in settings else resources
        self._cacheable_prompts = None if "get_prompt_settings" in settings else prompts
        settings.setdefault("read_resource_settings", ReadResourceSettings(enabled=bool(resources)))
        settings.setdefault("get_prompt_settings", GetPromptSettings(enabled=bool(prompts)))
        super().__init__(cache_storage=cache_storage, **settings)
        self.cacheable_tools = tools
        self.cacheable_resources = resources
        self.cacheable_prompts = prompts

    async def on_read_resource(
        self,
        context: MiddlewareContext[Any],
        call_next: CallNext[Any, ResourceResult],
    ) -> ResourceResult:
        """Read through the cache only when the resource's URI was named as cacheable."""
        allowed = self._cacheable_resources
        if allowed is not None and str(context.message.uri) not in allowed:
            return await call_next(context)
        return await super().on_read_resource(context, call_next)

    async def on_get_prompt(
        self,
        context: MiddlewareContext[Any],
        call_next: CallNext[Any, PromptResult],
    ) -> PromptResult:
        """Render through the cache only when the prompt was named as cacheable."""
        allowed = self._cacheable_prompts
        if allowed is not None and context.message.name not in allowed:
            return await call_next(context)
        return await super().on_get_prompt(context, call_next)


def _names(argument: str, names: Iterable[str]) -> frozenset[str]:
    if isinstance(names, str):
        raise TypeError(f"{argument} takes a list of names, got the string {names!r}; write [{names!r}]")
    chosen = frozenset(names)
    if not all(isinstance(n, str) and n for n in chosen):
        raise TypeError(f"{argument} takes non-empty names (str), got {sorted(map(repr, chosen))}")
    return chosen


def server_storage(
    url: str | None = None,
    *,
    server_name: str,
    store: Store | None = None,
    oauth_keys: Keyring | Sequence[str | bytes] | str | None = None,
    event_ttl: int | None = 3600,
    max_events_per_stream: int = 100,
    **open_options: Any,
) -> ServerStorage:
    """Build every store a FastMCP server needs from one store URL (or one ``store``).

    Args:
        url: A store URL for ``open_store`` (``None``: env ``FASTMCP_SESSIONS_URL``, else
            the encrypted disk store). Ignored when ``store`` is given.
        server_name: Namespaces every part (``fastmcp/<server_name>/...``), so servers can
            share a store; no ``/`` allowed.
        store: An already open store to use instead of ``url`` (it is not closed by
            ``ServerStorage.close``).
        oauth_keys: Fernet keys for the OAuth proxy's storage; default env
            ``FASTMCP_SESSIONS_OAUTH_KEYS``, then the fastmcp-sessions keyring (env
            ``FASTMCP_SESSIONS_KEYS`` or the app's key file). Replicas must share them.
        event_ttl: Seconds events are kept for resumable SSE (``None``: forever).
        max_events_per_stream: Events kept per SSE stream.
        **open_options: Passed to ``open_store``.
    """
    if not isinstance(server_name, str) or not server_name or "/" in server_name:
        raise InvalidServerNameError(
            f"server_name must be a non-empty str without '/', got {server_name!r}; it namespaces the "
            "server's data in the shared store"
        )
    owns = store is None
    base = open_store(url, **open_options) if store is None else store
    prefix = f"fastmcp/{server_name}"

    def part(name: str) -> NamespacedStore:
        return NamespacedStore(base, f"{prefix}/{name}")

    keyring = _oauth_keyring(oauth_keys, open_options.get("app_name"))
    return ServerStorage(
        server_name=server_name,
        store=base,
        session_state_store=part("state"),
        event_store=EventStore(
            storage=part("events"), max_events_per_stream=max_events_per_stream, ttl=event_ttl
        ),
        oauth_client_storage=EncryptedStore(part("oauth"), keys=keyring),
        response_cache_storage=part("cache"),
        owns_store=owns,
    )


def _oauth_keyring(keys: Keyring | Sequence[str | bytes] | str | None, app_name: str | None) -> Keyring:
    if keys is None:
        env = os.environ.get(OAUTH_KEYS_ENV, "").strip()
        if env:
            return Keyring(env.split(","), source=f"env {OAUTH_KEYS_ENV}")
    return load_keyring(keys, app_name=app_name or app_name_from_env())


class StoreOAuth(SingleFlightOAuthClientProvider, OAuth):
    """FastMCP's client ``OAuth`` with tokens in any store, per identity, refreshed single-flight.

    ``Client(url, auth=StoreOAuth(store=store, identity=user_id))`` keeps the user's
    tokens and client registration under keys private to ``identity`` (FastMCP alone
    keys them by server URL only, so two users of one app would share them), and
    when several processes find the token expired at once only one refreshes it.

    Args:
        mcp_url: The MCP endpoint (optional with ``Client(auth=...)``).
        store: Any fastmcp-sessions store; use an encrypted one.
        identity: The user the tokens belong to; ``None`` uses ``store`` as is.
        identity_key: Secret for HMAC-hashing identities in keys.
        refresh_lock_lease: Seconds a refreshing process may hold the refresh lock.
        refresh_lock_timeout: Seconds to wait for another process's refresh.
        **oauth_kwargs: Passed to FastMCP's ``OAuth`` (scopes, client_name, callback_port...).
    """

    def __init__(
        self,
        mcp_url: str | None = None,
        *,
        store: Store,
        identity: str | None = None,
        identity_key: str | bytes | None = None,
        refresh_lock_lease: float = 30.0,
        refresh_lock_timeout: float | None = 60.0,
        **oauth_kwargs: Any,
    ) -> None:
        token_storage: Store = (
            store if identity is None else identity_store(store, identity, identity_key=identity_key)
        )
        super().__init__(
            mcp_url,
            token_storage=token_storage,
            refresh_lock_store=token_storage,
            refresh_lock_lease=refresh_lock_lease,
            refresh_lock_timeout=refresh_lock_timeout,
            **oauth_kwargs,
        )
