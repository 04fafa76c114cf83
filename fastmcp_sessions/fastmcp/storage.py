"""FastMCP wiring: everything a FastMCP server (or client app) needs, from one store URL.

Server side::

    from fastmcp import FastMCP
    from fastmcp_sessions.fastmcp import server_storage

    storage = server_storage("redis://cache:6379/0", server_name="billing")
    mcp = FastMCP("billing", **storage.kwargs())              # session_state_store, key check at startup
    app = mcp.http_app(**storage.http_app_kwargs())           # event_store (resumable SSE)
    mcp.add_middleware(storage.response_caching_middleware(cacheable_tools=["word_count"]))
    enable_subscriptions(mcp, storage.subscription_bus)        # change notifications, every replica
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

import logging
import os
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from fastmcp.client.auth.oauth import OAuth
from fastmcp.server.lifespan import ContextManagerLifespan, Lifespan
from key_value.aio.errors import BaseKeyValueError
from mcp.server.request_state import RequestStateSecurity
from mcp.server.streamable_http import EventStore

from fastmcp_sessions._closing import AsyncClosing
from fastmcp_sessions.buses import Bus, bus_for_store, bus_for_url
from fastmcp_sessions.encryption import KEYS_ENV, Keyring, load_keyring
from fastmcp_sessions.errors import StoreOptionError
from fastmcp_sessions.events import event_store
from fastmcp_sessions.fastmcp.adopt import adopt_plain_layout
from fastmcp_sessions.fastmcp.caching import SafeResponseCachingMiddleware
from fastmcp_sessions.fastmcp.store_errors import StoreErrorMiddleware, store_error_line
from fastmcp_sessions.layout import part_of, part_prefix
from fastmcp_sessions.sessions.errors import InvalidServerNameError
from fastmcp_sessions.sessions.oauth import identity_store
from fastmcp_sessions.sessions.refresh import SingleFlightOAuthClientProvider
from fastmcp_sessions.stores.base import Store
from fastmcp_sessions.stores.encrypted import KEY_CHECK_COLLECTION, EncryptedStore
from fastmcp_sessions.stores.key_policy import keyring_beside, layer_of
from fastmcp_sessions.stores.namespaced import NamespacedStore
from fastmcp_sessions.stores.schemes import app_name_from_env, open_store

__all__ = [
    "OAUTH_KEYS_ENV",
    "ServerStorage",
    "StartupErrors",
    "StoreOAuth",
    "request_state_security",
    "server_storage",
]

OAUTH_KEYS_ENV = "FASTMCP_SESSIONS_OAUTH_KEYS"
"""Comma-separated Fernet keys (newest first) for the OAuth proxy's storage."""

StartupErrors = Literal["exit", "answer"]
"""What a server does when its store fails the start-up check: refuse to start, or start
and answer every request with the one-line reason (see ``server_storage``)."""

logger = logging.getLogger(__name__)


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
        subscription_bus: Change notifications across the processes sharing the store,
            for ``enable_subscriptions(mcp, ...)`` (a Redis stream, a PostgreSQL events
            table, Unix sockets for the disk store, else in-process).
        request_state_security: For ``FastMCP(request_state_security=...)``: a
            ``requestState`` sealed by one replica opens on every other.
    """

    server_name: str
    store: Store
    session_state_store: Store
    event_store: EventStore
    oauth_client_storage: Store
    response_cache_storage: Store
    owns_store: bool = field(default=True, repr=False)
    # Defaults keep ServerStorage(...) built by hand working; server_storage sets both.
    subscription_bus: Bus = field(default=None, repr=False)  # type: ignore[assignment]
    request_state_security: RequestStateSecurity | None = field(default=None, repr=False)
    event_storage: Store = field(default=None, repr=False)  # type: ignore[assignment]
    adopt_plain: bool = field(default=False, repr=False)
    startup_errors: StartupErrors = field(default="exit", repr=False)
    # A key error met while building the parts, raised by check() (startup_errors="answer").
    setup_error: BaseKeyValueError | None = field(default=None, repr=False)
    store_error_middleware: StoreErrorMiddleware = field(default_factory=StoreErrorMiddleware, repr=False)

    def __post_init__(self) -> None:
        if self.subscription_bus is None:
            self.subscription_bus = bus_for_store(self.store, server_name=self.server_name)
        if self.event_storage is None:
            self.event_storage = NamespacedStore(self.store, part_prefix(self.server_name, "events"))

    def store_for(self, collection: str) -> Store | None:
        """The part of this server's storage that FastMCP's ``collection`` is written to.

        ``None`` when FastMCP writes no such collection on a server (``migrate --to-server``
        uses this to route what it copies).
        """
        parts: dict[str | None, Store] = {
            "state": self.session_state_store,
            "events": self.event_storage,
            "oauth": self.oauth_client_storage,
            "cache": self.response_cache_storage,
        }
        return parts.get(part_of(collection))

    def kwargs(self, *, lifespan: Any = None, middleware: Sequence[Any] | None = None) -> dict[str, Any]:
        """Keyword arguments for ``FastMCP(...)``: the session state store, shared request-state
        keys and a lifespan.

        The lifespan runs ``check()`` when the server starts, so a replica whose keys
        differ from the others' refuses to start instead of failing requests (an OAuth
        login half-way through, for instance); with ``server_storage(...,
        startup_errors="answer")`` it starts and answers every request with the reason.
        Then, unless ``server_storage`` got ``adopt_plain=False``, it copies the plain
        recipe's data into empty parts (see ``fastmcp_sessions.fastmcp.adopt``). Pass your
        own ``lifespan`` here, not to ``FastMCP``: it runs after both.

        The lifespan also installs ``StoreErrorMiddleware`` first in the server's
        middleware, so a store error reaches the client as one line saying why. Your own
        middleware may go to ``FastMCP(middleware=[...])`` as usual, or here
        (``middleware=[...]``), which returns it behind ours under ``"middleware"``.
        """
        checked = Lifespan(self._startup)
        if lifespan is not None:
            checked = checked | (
                lifespan if isinstance(lifespan, Lifespan) else ContextManagerLifespan(lifespan)
            )
        kwargs: dict[str, Any] = {"session_state_store": self.session_state_store, "lifespan": checked}
        if self.request_state_security is not None:
            kwargs["request_state_security"] = self.request_state_security
        if middleware is not None:
            kwargs["middleware"] = [self.store_error_middleware, *middleware]
        return kwargs

    async def check(self) -> None:
        """Open every part now and check its encryption keys; raise instead of serving with wrong ones.

        Raises ``KeyMismatchError`` (naming the stored and the local key fingerprints)
        when the data or the OAuth proxy storage was encrypted with keys this process
        does not have, and ``StoreConnectionError`` when the store cannot be reached.
        """
        if self.setup_error is not None:
            raise self.setup_error
        for part in (self.store, self.oauth_client_storage):
            encrypted = _encrypted_layer(part)
            if encrypted is not None:
                await encrypted.verify_keys()
        if type(self.store).handles_encryption:
            # The disk store checks its key when its database opens: any read shows the result.
            await self.store.get("startup-check", collection=KEY_CHECK_COLLECTION)

    async def _startup(self, server: Any) -> AsyncIterator[dict[str, Any]]:
        installed = getattr(server, "middleware", None)
        # Outermost, so it also sees what the other middleware raise; once, however often
        # the lifespan runs (FastMCP runs it again for every in-memory client).
        if isinstance(installed, list) and self.store_error_middleware not in installed:
            installed.insert(0, self.store_error_middleware)
        try:
            await self.check()
            if self.adopt_plain:
                await adopt_plain_layout(self.store, self.store_for, self.server_name)
        except BaseKeyValueError as error:
            if self.startup_errors != "answer":
                raise
            logger.error(
                "%s (%s); answering every request with it", store_error_line(error), type(error).__name__
            )
            self.store_error_middleware.startup_error = error
        else:
            self.store_error_middleware.startup_error = None
        yield {}

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
        """Close the subscription bus, and the underlying store when ``server_storage`` opened it."""
        await self.subscription_bus.close()
        close_events = getattr(self.event_store, "close", None)
        if close_events is not None:
            await close_events()
        if self.owns_store:
            await self.store.close()


def server_storage(
    url: str | None = None,
    *,
    server_name: str,
    store: Store | None = None,
    oauth_keys: Keyring | Sequence[str | bytes] | str | None = None,
    event_ttl: int | None = 3600,
    max_events_per_stream: int = 100,
    request_state_ttl: float = 600.0,
    adopt_plain: bool = True,
    bus_url: str | None = None,
    startup_errors: StartupErrors = "exit",
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
        request_state_ttl: Seconds a sealed ``requestState`` stays valid. Its keys derive
            from the fastmcp-sessions keyring (``keys=`` among ``open_options``, else env
            ``FASTMCP_SESSIONS_KEYS``, else the OAuth proxy's keyring above), rotating with it.
        adopt_plain: At start-up, copy what the plain recipe
            (``FastMCP(session_state_store=open_store())``, ``OAuthProxy(client_storage=...)``)
            wrote at the top of the store into this server's parts, when they are still empty,
            so moving to ``server_storage`` keeps sessions and logins (see
            ``fastmcp_sessions.fastmcp.adopt``). Pass ``False`` when that top-level data
            belongs to another server sharing the store.
        bus_url: Carry change notifications through this ``redis://`` or ``postgresql://``
            backend instead of the store's own bus (for memory, MongoDB and DynamoDB stores,
            whose notifications otherwise stay within each process).
        startup_errors: When the store fails the start-up check (a missing or mismatched
            key, an unreachable backend): ``"exit"`` refuses to start (a replica behind a
            load balancer stays out of it); ``"answer"`` starts anyway and answers every
            request but ``initialize`` and ``ping`` with the one-line reason, which is what
            a desktop client launching a stdio server can show its user. A missing key is
            then reported at start-up instead of raised here.
        **open_options: Passed to ``open_store``.
    """
    if not isinstance(server_name, str) or not server_name or "/" in server_name:
        raise InvalidServerNameError(
            f"server_name must be a non-empty str without '/', got {server_name!r}; it namespaces the "
            "server's data in the shared store"
        )
    owns = store is None
    base = open_store(url, **open_options) if store is None else store

    def part(name: str) -> NamespacedStore:
        return NamespacedStore(base, part_prefix(server_name, name))

    if startup_errors not in ("exit", "answer"):
        raise StoreOptionError(f"startup_errors must be 'exit' or 'answer', got {startup_errors!r}")
    events = part("events")
    setup_error: BaseKeyValueError | None = None
    try:
        keyring = _oauth_keyring(oauth_keys, open_options.get("app_name"), base)
        request_state = _shared_request_state(open_options, server_name, request_state_ttl, keyring)
    except BaseKeyValueError as error:
        if startup_errors != "answer":
            raise
        setup_error, keyring, request_state = error, _UnusableKeyring(error), None
    return ServerStorage(
        server_name=server_name,
        store=base,
        session_state_store=part("state"),
        event_store=event_store(events, max_events_per_stream=max_events_per_stream, ttl=event_ttl),
        oauth_client_storage=EncryptedStore(part("oauth"), keys=keyring),
        response_cache_storage=part("cache"),
        owns_store=owns,
        subscription_bus=(
            bus_for_store(base, server_name=server_name)
            if bus_url is None
            else bus_for_url(bus_url, server_name=server_name)
        ),
        request_state_security=request_state,
        event_storage=events,
        adopt_plain=adopt_plain,
        startup_errors=startup_errors,
        setup_error=setup_error,
    )


def _shared_request_state(
    open_options: dict[str, Any], server_name: str, ttl: float, oauth_keyring: Keyring
) -> RequestStateSecurity:
    # The store's keys (keys=, env) when given; else the OAuth proxy's keyring, which every
    # replica on a network store already shares (it never comes from a local key file there).
    given = open_options.get("keys")
    keyring = load_keyring(given) if given or os.environ.get(KEYS_ENV, "").strip() else oauth_keyring
    return request_state_security(keyring, server_name=server_name, ttl=ttl)


def request_state_security(keyring: Keyring, *, server_name: str, ttl: float = 600.0) -> RequestStateSecurity:
    """``RequestStateSecurity`` whose keys every replica derives from the shared ``keyring``.

    The keys are derived per server (never the Fernet keys themselves, never the JWT
    signing key) and keep the keyring's order: the newest seals, every older one still
    opens, so rotating the keyring rotates them. The audience is ``server_name``, the same
    on every replica.
    """
    keys = keyring.derive_keys(f"fastmcp-sessions/request-state/v1/{server_name}")
    return RequestStateSecurity(keys=keys, ttl=ttl, audience=server_name)


def _oauth_keyring(
    keys: Keyring | Sequence[str | bytes] | str | None, app_name: str | None, base: Store
) -> Keyring:
    what, env_names = "the OAuth proxy storage", (OAUTH_KEYS_ENV, KEYS_ENV)
    return keyring_beside(
        base,
        keys,
        app_name=app_name or app_name_from_env(),
        what=what,
        env=OAUTH_KEYS_ENV,
        env_names=env_names,
    )


class _UnusableKeyring(Keyring):
    """Stands in for keys that could not be loaded: every use raises why they could not.

    Nothing is ever encrypted with a stand-in key, so no data is written that the real
    keys could not read.
    """

    def __init__(self, error: BaseKeyValueError) -> None:
        self.fingerprints = ()
        self.source = "no keys loaded"
        self._error = error

    def __repr__(self) -> str:
        return f"Keyring(unusable: {type(self._error).__name__})"

    def __len__(self) -> int:
        return 0

    def encrypt(self, data: bytes) -> bytes:
        """Raise the error that kept the keys from loading."""
        raise self._error

    def decrypt(self, token: bytes) -> bytes:
        """Raise the error that kept the keys from loading."""
        raise self._error

    def derive_keys(self, purpose: str) -> list[bytes]:
        """Raise the error that kept the keys from loading."""
        raise self._error

    def is_current(self, token: bytes) -> bool:
        """Raise the error that kept the keys from loading."""
        raise self._error


def _encrypted_layer(store: Store) -> EncryptedStore | None:
    """The ``EncryptedStore`` ``store`` is or wraps (through views), if any."""
    return layer_of(store, EncryptedStore)


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
