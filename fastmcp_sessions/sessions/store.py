"""``SessionStore``: the MCP client sessions of many identities, on any store.

Key layout (collection ``fastmcp_sessions`` unless configured)::

    u:<identity digest>   ->  {"v": 1, "s": {<session id>: <session record>, ...},
                               "__fences__": {<refresh lock name>: <highest fencing token>}}

One record per identity holds all of that identity's sessions, OAuth data included.
Why one record rather than one per session plus an index, or a collection per
identity:

* ``list(identity)`` is one read of one key, on every backend, whatever the number
  of other identities; there is no index to keep in step with the sessions and no
  scan (a collection per identity would make listing a prefix scan on some
  backends and multiply collections on others).
* Every change (create, partial update, delete, token write) is one optimistic
  read-compare-and-set of that record, so it is atomic across processes: two
  processes changing different fields of one session both land, and the
  per-identity cap is exact.
* Round trips: ``get`` and ``list`` 1, ``create``/``update``/``delete`` 2, ``purge`` 2.
* Token writes made while the session's refresh lock is held are fenced in the same
  compare-and-set (``__fences__``, as ``Store.put_fenced``), and every other write keeps
  the fences, so a refresher paused past its lease cannot overwrite newer tokens.

The cost is that all sessions of one identity share a record: it grows with that
identity's sessions (a few KB each with tokens) and their writes contend. Both are
small for the intended use (one user connected to a handful of servers); set
``max_sessions_per_identity`` to bound it, which also keeps the record well below
item-size limits such as DynamoDB's 400 KB.

Identities appear in keys only as HMAC-SHA256 (with ``identity_key``) or SHA-256
digests, and are not stored in values at all. Expired sessions are filtered out on
read and dropped on the next write; the record's store TTL follows its
longest-lived session, so an identity with no live session leaves nothing behind.
"""

from __future__ import annotations

import builtins
import enum
import re
import secrets
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, get_args
from urllib.parse import urlsplit

from fastmcp_sessions import telemetry
from fastmcp_sessions._retry import Retries
from fastmcp_sessions.errors import ConflictError
from fastmcp_sessions.sessions._keys import IdentityHasher, check_identity
from fastmcp_sessions.sessions.errors import SessionLimitError, SessionNotFoundError, SessionValidationError
from fastmcp_sessions.sessions.lock import DEFAULT_LOCK_COLLECTION, Lock
from fastmcp_sessions.sessions.models import (
    OAuthClient,
    OAuthTokens,
    Session,
    SessionOAuth,
    Transport,
    to_datetime,
)
from fastmcp_sessions.sessions.oauth import OAuthFlows, identity_store
from fastmcp_sessions.sessions.servers import ServerRegistry, normalize_url, server_id
from fastmcp_sessions.stores.base import Store
from fastmcp_sessions.stores.fencing import carry_fences, fenced
from fastmcp_sessions.stores.namespaced import NamespacedStore

if TYPE_CHECKING:
    from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

__all__ = [
    "DEFAULT_LIFETIME",
    "DEFAULT_SESSION_COLLECTION",
    "PENDING_LIFETIME",
    "SessionStore",
    "SessionTokenStorage",
]

DEFAULT_SESSION_COLLECTION = "fastmcp_sessions"
DEFAULT_LIFETIME = 12 * 3600.0
"""Default session lifetime, slid forward when the session is used."""
PENDING_LIFETIME = 600.0
"""Lifetime of a session whose OAuth flow has not completed yet."""

_TRANSPORTS: tuple[str, ...] = get_args(Transport)
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_RECORD_SLACK = 1.0


def new_session_id() -> str:
    """192 random bits from ``secrets``, URL-safe, never starting with ``-`` (so it can
    follow a command-line option without looking like one)."""
    while True:
        session_id = secrets.token_urlsafe(24)
        if session_id[0] != "-":
            return session_id


class _Unset(enum.Enum):
    TOKEN = 0


UNSET = _Unset.TOKEN
"""Default of ``SessionStore.update`` keywords: leave the field as it is."""

_Record = dict[str, Any]
_Sessions = dict[str, dict[str, Any]]


class _NoChange(enum.Enum):
    TOKEN = 0


_NO_CHANGE = _NoChange.TOKEN


class SessionStore:
    """MCP client sessions per identity, over any fastmcp-sessions store.

    Args:
        store: Any store (``open_store(...)``); use an encrypted one, since sessions
            hold OAuth tokens and headers.
        collection: The collection holding session records.
        lifetime: Seconds a session lives after its last use (12 h).
        pending_lifetime: Seconds a session created with ``pending_auth=True`` lives
            until its tokens are stored (10 min).
        touch_interval: ``get`` slides the expiry at most this often per session, so
            reads stay one round trip.
        max_sessions_per_identity: Cap on live sessions per identity (``None``: none);
            ``create`` beyond it raises ``SessionLimitError``.
        identity_key: Secret that makes identity digests HMAC-SHA256 (recommended
            when storage keys may be seen by others).
        registry: When given, ``create`` without ``server_name`` registers the URL
            there and uses its name.
        max_attempts: Optimistic retries of a write before ``ConflictError``.
    """

    def __init__(
        self,
        store: Store,
        *,
        collection: str = DEFAULT_SESSION_COLLECTION,
        lifetime: float = DEFAULT_LIFETIME,
        pending_lifetime: float = PENDING_LIFETIME,
        touch_interval: float = 60.0,
        max_sessions_per_identity: int | None = None,
        identity_key: str | bytes | None = None,
        registry: ServerRegistry | None = None,
        max_attempts: int = 32,
    ) -> None:
        for name, value in (("lifetime", lifetime), ("pending_lifetime", pending_lifetime)):
            if not value > 0:
                raise SessionValidationError(f"{name} must be a positive number of seconds, got {value!r}")
        if max_sessions_per_identity is not None and max_sessions_per_identity < 1:
            raise SessionValidationError("max_sessions_per_identity must be a positive int or None")
        self.store = store
        self.collection = collection
        self.lifetime = float(lifetime)
        self.pending_lifetime = float(pending_lifetime)
        self.touch_interval = max(0.0, min(float(touch_interval), self.lifetime / 2))
        self.max_sessions_per_identity = max_sessions_per_identity
        self.registry = registry
        self.max_attempts = max_attempts
        self._identity_key = identity_key
        self._hash = IdentityHasher(identity_key)
        self.flows = OAuthFlows(store, identity_key=identity_key)
        """PKCE/state flows kept in the same store (``sessions.flows.start(...)`` / ``.consume(state)``)."""

    def __repr__(self) -> str:
        return f"SessionStore({self.store!r}, collection={self.collection!r}, lifetime={self.lifetime:g})"

    def _key(self, identity: str) -> str:
        return "u:" + self._hash(identity)

    # -- the record -----------------------------------------------------------------------

    @staticmethod
    def _live(record: Mapping[str, Any] | None, now: float) -> _Sessions:
        if not record:
            return {}
        sessions = record.get("s")
        if not isinstance(sessions, dict):
            return {}
        return {sid: s for sid, s in sessions.items() if float(s.get("expires", 0)) > now}

    async def _modify(
        self,
        identity: str,
        fn: Callable[[_Sessions, float], _Sessions | _NoChange],
        *,
        fence: tuple[str, int] | None = None,
    ) -> _Sessions:
        """Atomically replace ``identity``'s live sessions with ``fn(sessions, now)``; return the result.

        One read and one conditional write per attempt. ``fn`` may raise to abort
        (nothing is written) and may run more than once. With ``fence`` (lock name,
        fencing token) the write is fenced as ``Store.put_fenced`` is, in the same
        compare-and-set: a token lower than one already written raises
        ``StaleFencingTokenError``. Unfenced writes keep the record's fences.
        """
        key = self._key(identity)
        async for attempt in Retries(self.max_attempts, first=0.001, cap=0.05):
            if attempt:
                telemetry.record_retry("session.update")
            current = await self.store.get_versioned(key, collection=self.collection)
            stored = None if current is None else current.value
            if fence is not None:  # refuse a stale holder before anything else
                fenced(stored, {}, lock=fence[0], token=fence[1], collection=self.collection, key=key)
            now = time.time()
            live = self._live(stored, now)
            new = fn(live, now)
            if isinstance(new, _NoChange):
                return live
            if not new:
                if current is None or await self.store.delete_if_version(
                    key, current.version, collection=self.collection
                ):
                    return {}
            else:
                ttl = max(float(s["expires"]) for s in new.values()) - now + _RECORD_SLACK
                record: dict[str, Any] = {"v": 1, "s": new}
                if fence is None:
                    record = carry_fences(stored, record)
                else:
                    record = fenced(
                        stored, record, lock=fence[0], token=fence[1], collection=self.collection, key=key
                    )
                if current is None:
                    done = await self.store.put_if_absent(key, record, collection=self.collection, ttl=ttl)
                else:
                    done = await self.store.compare_and_set(
                        key, record, version=current.version, collection=self.collection, ttl=ttl
                    )
                if done:
                    return new
        telemetry.record_conflict("session.update")
        raise ConflictError(self.collection, key, self.max_attempts)

    async def _read(self, identity: str) -> _Sessions:
        record = await self.store.get(self._key(identity), collection=self.collection)
        return self._live(record, time.time())

    def _slide(self, record: dict[str, Any], now: float) -> None:
        record["used"] = now
        if record.get("status") != "pending":
            record["expires"] = now + self.lifetime

    # -- public API -----------------------------------------------------------------------

    @telemetry.traced("fastmcp_sessions.session.create")
    async def create(
        self,
        identity: str,
        *,
        server_url: str,
        callback_url: str | None = None,
        transport: Transport = "streamable_http",
        server_name: str | None = None,
        headers: Mapping[str, str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        pending_auth: bool = False,
    ) -> Session:
        """Create a session of ``identity`` with the server at ``server_url``; return it.

        The session id has 192 random bits (``secrets.token_urlsafe``). With
        ``pending_auth=True`` the session is waiting for an OAuth flow: it lives
        ``pending_lifetime`` (10 min) until tokens are stored through its
        ``token_storage``, then ``lifetime``. Raises ``SessionLimitError`` at the
        per-identity cap and ``SessionValidationError`` for invalid fields.
        """
        check_identity(identity)
        normalized = normalize_url(server_url)
        if server_name is None and self.registry is not None:
            server_name = await self.registry.add(normalized)
        record: dict[str, Any] = {
            "server_id": server_id(normalized),
            "server_name": _check_optional_str(server_name, "server_name"),
            "server_url": normalized,
            "callback_url": _check_callback(callback_url),
            "transport": _check_transport(transport),
            "active": True,
            "status": "pending" if pending_auth else "none",
            "headers": _check_headers(headers),
            "metadata": dict(metadata or {}),
            "oauth": {},
        }
        session_id = new_session_id()
        limit = self.max_sessions_per_identity

        def add(sessions: _Sessions, now: float) -> _Sessions:
            if limit is not None and len(sessions) >= limit:
                raise SessionLimitError(limit)
            lifetime = self.pending_lifetime if pending_auth else self.lifetime
            sessions[session_id] = {
                **record,
                "created": now,
                "updated": now,
                "used": now,
                "expires": now + lifetime,
            }
            return sessions

        sessions = await self._modify(identity, add)
        return _to_session(identity, session_id, sessions[session_id])

    @telemetry.traced("fastmcp_sessions.session.get")
    async def get(self, identity: str, session_id: str, *, touch: bool = True) -> Session | None:
        """Return the session, or ``None`` if it does not exist for this identity or expired.

        With ``touch`` (the default) using a session slides its expiry; to keep reads
        at one round trip the write happens at most once per ``touch_interval``.
        """
        record = (await self._read(identity)).get(session_id)
        if record is None:
            return None
        now = time.time()
        if (
            touch
            and record.get("status") != "pending"
            and now - float(record.get("used", 0)) >= self.touch_interval
        ):
            touched = await self.touch(identity, session_id)
            return touched
        return _to_session(identity, session_id, record)

    @telemetry.traced("fastmcp_sessions.session.touch")
    async def touch(self, identity: str, session_id: str) -> Session | None:
        """Mark the session used now, sliding its expiry; return it (``None`` if it is gone)."""

        def slide(sessions: _Sessions, now: float) -> _Sessions | _NoChange:
            record = sessions.get(session_id)
            if record is None:
                return _NO_CHANGE
            self._slide(record, now)
            return sessions

        record = (await self._modify(identity, slide)).get(session_id)
        return None if record is None else _to_session(identity, session_id, record)

    @telemetry.traced("fastmcp_sessions.session.list")
    async def list(self, identity: str) -> list[Session]:
        """Return every live session of ``identity``, oldest first (one round trip)."""
        sessions = await self._read(identity)
        items = sorted(sessions.items(), key=lambda item: float(item[1].get("created", 0)))
        return [_to_session(identity, sid, record) for sid, record in items]

    async def identities(self) -> dict[str, builtins.list[Session]]:
        """Every identity with live sessions, by digest: ``{digest: its sessions, oldest first}``.

        Identities are stored only as digests, so each ``Session.identity`` here is the
        digest; ``list(identity)`` with the identity itself gives the same sessions. One
        read per identity: for operators, not for a request path.
        """
        now = time.time()
        found: dict[str, builtins.list[Session]] = {}
        for key in await self.store.keys(self.collection):
            if not key.startswith("u:"):
                continue
            sessions = self._live(await self.store.get(key, collection=self.collection), now)
            items = sorted(sessions.items(), key=lambda item: float(item[1].get("created", 0)))
            if items:
                found[key[2:]] = [_to_session(key[2:], sid, record) for sid, record in items]
        return found

    @telemetry.traced("fastmcp_sessions.session.count")
    async def count(self, identity: str) -> int:
        """Return how many live sessions ``identity`` has."""
        return len(await self._read(identity))

    @telemetry.traced("fastmcp_sessions.session.update")
    async def update(
        self,
        identity: str,
        session_id: str,
        *,
        active: bool | _Unset = UNSET,
        server_url: str | _Unset = UNSET,
        server_name: str | _Unset | None = UNSET,
        callback_url: str | _Unset | None = UNSET,
        transport: Transport | _Unset = UNSET,
        headers: Mapping[str, str] | _Unset = UNSET,
        metadata: Mapping[str, Any] | _Unset = UNSET,
    ) -> Session:
        """Change the given fields of a session, atomically; return the updated session.

        Only the fields passed are written, inside one compare-and-set of the
        identity's record, so concurrent updates of different fields (from any
        number of processes) all land. Updating counts as using the session (its
        expiry slides). Raises ``SessionNotFoundError`` if the session is gone.
        """
        changes: dict[str, Any] = {}
        if not isinstance(active, _Unset):
            if not isinstance(active, bool):
                raise SessionValidationError(f"active must be a bool, got {type(active).__name__}")
            changes["active"] = active
        if not isinstance(server_url, _Unset):
            changes["server_url"] = normalize_url(server_url)
            changes["server_id"] = server_id(changes["server_url"])
        if not isinstance(server_name, _Unset):
            changes["server_name"] = _check_optional_str(server_name, "server_name")
        if not isinstance(callback_url, _Unset):
            changes["callback_url"] = _check_callback(callback_url)
        if not isinstance(transport, _Unset):
            changes["transport"] = _check_transport(transport)
        if not isinstance(headers, _Unset):
            changes["headers"] = _check_headers(headers)
        if not isinstance(metadata, _Unset):
            changes["metadata"] = dict(metadata)

        def apply(sessions: _Sessions, now: float) -> _Sessions:
            record = sessions.get(session_id)
            if record is None:
                raise SessionNotFoundError("update")
            record.update(changes)
            record["updated"] = now
            self._slide(record, now)
            return sessions

        sessions = await self._modify(identity, apply)
        return _to_session(identity, session_id, sessions[session_id])

    @telemetry.traced("fastmcp_sessions.session.delete")
    async def delete(self, identity: str, session_id: str) -> bool:
        """Delete a session with its OAuth data; return whether it existed."""
        found: list[bool] = [False]

        def drop(sessions: _Sessions, now: float) -> _Sessions | _NoChange:
            found[0] = sessions.pop(session_id, None) is not None
            return sessions if found[0] else _NO_CHANGE

        await self._modify(identity, drop)
        return found[0]

    @telemetry.traced("fastmcp_sessions.session.purge")
    async def purge(self, identity: str) -> int:
        """Delete every session of ``identity``; return how many live ones there were."""
        count: list[int] = [0]

        def drop_all(sessions: _Sessions, now: float) -> _Sessions:
            count[0] = len(sessions)
            return {}

        await self._modify(identity, drop_all)
        return count[0]

    # -- OAuth ------------------------------------------------------------------------------

    def token_storage(self, identity: str, session_id: str) -> SessionTokenStorage:
        """The MCP SDK ``TokenStorage`` of this session, for ``OAuthClientProvider(storage=...)``.

        Use it with ``SingleFlightOAuthClientProvider`` to make token refresh
        single-flight across processes.
        """
        return SessionTokenStorage(self, identity, session_id)

    def identity_store(self, identity: str) -> NamespacedStore:
        """A view of the store private to ``identity``, for FastMCP's ``OAuth(token_storage=...)``."""
        return identity_store(self.store, identity, identity_key=self._identity_key)

    async def _oauth_of(self, identity: str, session_id: str) -> SessionOAuth | None:
        record = (await self._read(identity)).get(session_id)
        return None if record is None else _oauth(record.get("oauth"))

    async def _change_oauth(
        self,
        identity: str,
        session_id: str,
        change: Callable[[dict[str, Any], float], None],
        *,
        authorize: bool = False,
        fence: tuple[str, int] | None = None,
    ) -> None:
        def apply(sessions: _Sessions, now: float) -> _Sessions:
            record = sessions.get(session_id)
            if record is None:
                raise SessionNotFoundError("store OAuth data")
            oauth = dict(record.get("oauth") or {})
            change(oauth, now)
            record["oauth"] = oauth
            record["updated"] = now
            if authorize:
                record["status"] = "authorized"  # the flow completed: the normal lifetime applies
            self._slide(record, now)
            return sessions

        await self._modify(identity, apply, fence=fence)

    async def _set_tokens(
        self, identity: str, session_id: str, tokens: OAuthToken, *, fence: tuple[str, int] | None = None
    ) -> None:
        data = tokens.model_dump(mode="json", exclude_none=True)

        def change(oauth: dict[str, Any], now: float) -> None:
            oauth["tokens"] = data
            oauth["token_expires_at"] = None if tokens.expires_in is None else now + int(tokens.expires_in)

        await self._change_oauth(identity, session_id, change, authorize=True, fence=fence)

    async def _set_client(
        self, identity: str, session_id: str, client_info: OAuthClientInformationFull
    ) -> None:
        data = client_info.model_dump(mode="json", exclude_none=True)

        def change(oauth: dict[str, Any], now: float) -> None:
            oauth["client"] = data

        await self._change_oauth(identity, session_id, change)

    async def _clear_oauth(self, identity: str, session_id: str, *, client: bool) -> None:
        def change(oauth: dict[str, Any], now: float) -> None:
            oauth.pop("tokens", None)
            oauth.pop("token_expires_at", None)
            if client:
                oauth.pop("client", None)

        await self._change_oauth(identity, session_id, change)

    def _refresh_lock(self, identity: str, session_id: str, *, lease: float, timeout: float | None) -> Lock:
        return Lock(
            self.store,
            self._refresh_lock_name(identity, session_id),
            lease=lease,
            timeout=timeout,
            collection=DEFAULT_LOCK_COLLECTION,
        )

    def _refresh_lock_name(self, identity: str, session_id: str) -> str:
        return f"oauth-refresh/{self._hash(identity)}/{session_id}"


# -- conversion and validation ------------------------------------------------------------


class SessionTokenStorage:
    """The MCP SDK ``TokenStorage`` of one session: tokens and client registration live in its record.

    Get one from ``SessionStore.token_storage(identity, session_id)``. Reads cost one
    store round trip; writes are atomic updates of the session (they also mark it
    ``authorized`` and slide its expiry). Writing to a session that no longer
    exists raises ``SessionNotFoundError``.
    """

    def __init__(self, sessions: SessionStore, identity: str, session_id: str) -> None:
        self.sessions = sessions
        self.identity = check_identity(identity)
        self.session_id = session_id
        self._lock: Lock | None = None

    def __repr__(self) -> str:
        return f"SessionTokenStorage(session={self.session_id[:6]}...)"

    @telemetry.traced("fastmcp_sessions.tokens.get")
    async def get_tokens(self) -> OAuthToken | None:
        """Return the stored tokens (repr-redacted ``OAuthToken``), or ``None``."""
        oauth = await self.sessions._oauth_of(self.identity, self.session_id)
        return None if oauth is None or oauth.tokens is None else oauth.tokens.to_oauth_token()

    @telemetry.traced("fastmcp_sessions.tokens.set")
    async def set_tokens(self, tokens: OAuthToken) -> None:
        """Store ``tokens``; the absolute expiry is computed from ``expires_in`` now.

        While this storage's refresh lock is held, the write is fenced by its token: a
        holder whose lease ran out and was taken over gets ``StaleFencingTokenError``
        and the newer holder's tokens stay.
        """
        lock = self._lock
        fence = (lock.name, lock.fencing_token) if lock is not None and lock.held else None
        await self.sessions._set_tokens(self.identity, self.session_id, tokens, fence=fence)

    async def get_token_expiry(self) -> float | None:
        """Unix time at which the stored access token expires, or ``None`` if unknown or never."""
        oauth = await self.sessions._oauth_of(self.identity, self.session_id)
        if oauth is None or oauth.tokens is None or oauth.tokens.expires_at is None:
            return None
        return oauth.tokens.expires_at.timestamp()

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        """Return the stored client registration (repr-redacted), or ``None``."""
        oauth = await self.sessions._oauth_of(self.identity, self.session_id)
        return None if oauth is None or oauth.client is None else oauth.client.to_client_information()

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        """Store the client registration (dynamic, CIMD or static)."""
        await self.sessions._set_client(self.identity, self.session_id, client_info)

    @telemetry.traced("fastmcp_sessions.tokens.clear")
    async def clear_tokens(self) -> None:
        """Forget the tokens, keeping the client registration."""
        await self.sessions._clear_oauth(self.identity, self.session_id, client=False)

    async def clear(self) -> None:
        """Forget the tokens and the client registration."""
        await self.sessions._clear_oauth(self.identity, self.session_id, client=True)

    def refresh_lock(self, *, lease: float = 30.0, timeout: float | None = 60.0) -> Lock:
        """The lock that makes token refresh of this session single-flight across processes.

        ``set_tokens`` is fenced by the last lock handed out here while it is held.
        """
        self._lock = self.sessions._refresh_lock(self.identity, self.session_id, lease=lease, timeout=timeout)
        return self._lock


def _oauth(data: Any) -> SessionOAuth:
    if not isinstance(data, dict) or not data:
        return SessionOAuth()
    tokens = data.get("tokens")
    client = data.get("client")
    return SessionOAuth(
        tokens=None if not tokens else OAuthTokens.from_stored(tokens, data.get("token_expires_at")),
        client=None if not client else OAuthClient.from_stored(client),
    )


def _to_session(identity: str, session_id: str, record: dict[str, Any]) -> Session:
    return Session(
        session_id=session_id,
        identity=identity,
        server_id=record["server_id"],
        server_name=record.get("server_name"),
        server_url=record["server_url"],
        callback_url=record.get("callback_url"),
        transport=record.get("transport", "streamable_http"),
        active=bool(record.get("active", True)),
        auth_status=record.get("status", "none"),
        created_at=to_datetime(record["created"]),
        updated_at=to_datetime(record["updated"]),
        last_used_at=to_datetime(record.get("used", record["updated"])),
        expires_at=to_datetime(record["expires"]),
        headers=record.get("headers") or {},
        metadata=record.get("metadata") or {},
        oauth=_oauth(record.get("oauth")),
    )


def _check_transport(transport: object) -> str:
    if transport not in _TRANSPORTS:
        raise SessionValidationError(
            f"transport must be one of {', '.join(repr(t) for t in _TRANSPORTS)}, got {transport!r}"
        )
    return str(transport)


def _check_optional_str(value: object, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise SessionValidationError(f"{name} must be a non-empty str or None")
    return value


def _check_callback(url: object) -> str | None:
    if url is None:
        return None
    if not isinstance(url, str):
        raise SessionValidationError("callback_url must be a str (an absolute URL) or None")
    parts = urlsplit(url)
    if not parts.scheme or not (parts.netloc or parts.path):
        raise SessionValidationError(
            "callback_url must be an absolute URL such as 'https://app.example.com/oauth/callback'"
        )
    return url


def _check_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise SessionValidationError("headers must be a mapping of header names to str values")
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise SessionValidationError(f"invalid HTTP header name {name!r}")
        if not isinstance(value, str) or "\r" in value or "\n" in value:
            raise SessionValidationError(f"the value of header {name!r} must be a str without line breaks")
        checked[name] = value
    return checked
