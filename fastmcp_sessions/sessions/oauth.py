"""OAuth for MCP client apps: per-identity isolation and PKCE flows.

* ``identity_store(store, identity)`` — a view of any store whose keys are private to
  one identity, for FastMCP's client ``OAuth(token_storage=...)``. FastMCP keys tokens
  by server URL only, so two users of one app would otherwise share tokens.
* ``OAuthFlows`` — authorization-code flows: ``start`` keeps the ``state`` and PKCE
  verifier for 10 minutes, ``consume`` hands them back exactly once, even when two
  processes try at the same moment (``get_versioned`` + ``delete_if_version``).

The MCP SDK's ``TokenStorage`` over one session is ``SessionTokenStorage`` in
``fastmcp_sessions.sessions.store``; single-flight refresh across processes is
``fastmcp_sessions.sessions.refresh``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Sequence
from typing import Any

from fastmcp_sessions import telemetry
from fastmcp_sessions.sessions._keys import IdentityHasher, secret_digest
from fastmcp_sessions.sessions.errors import FlowNotFoundError, SessionValidationError
from fastmcp_sessions.sessions.models import PendingFlow, to_datetime
from fastmcp_sessions.stores.base import Store
from fastmcp_sessions.stores.namespaced import NamespacedStore

__all__ = [
    "DEFAULT_FLOW_COLLECTION",
    "OAuthFlows",
    "identity_store",
    "pkce_pair",
]

DEFAULT_FLOW_COLLECTION = "fastmcp_sessions_flows"
FLOW_LIFETIME = 600.0


# -- a per-identity view for FastMCP's OAuth(token_storage=...) ------------------------


def identity_store(
    store: Store, identity: str, *, identity_key: str | bytes | None = None
) -> NamespacedStore:
    """A view of ``store`` whose keys belong to ``identity`` only.

    Every key is stored as ``id/<hash of identity>/<key>`` in the same collection, so
    the number of collections does not grow with users, and one identity can never
    read, list or delete another's entries. Pass it to FastMCP's client
    ``OAuth(token_storage=identity_store(store, user_id))``, or use
    ``fastmcp_sessions.fastmcp.StoreOAuth``, which also makes refresh single-flight.
    Closing the view leaves ``store`` open.
    """
    return NamespacedStore(store, "id/" + IdentityHasher(identity_key)(identity), scope="key")


# -- PKCE + state ----------------------------------------------------------------------


def pkce_pair() -> tuple[str, str]:
    """A new PKCE ``(code_verifier, S256 code_challenge)`` (RFC 7636), the verifier from ``secrets``."""
    verifier = secrets.token_urlsafe(64)  # 86 characters of [A-Za-z0-9_-]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=")
    return verifier, challenge.decode("ascii")


class OAuthFlows:
    """Authorization-code flows in progress, consumable exactly once.

    ``start`` creates the ``state`` (256 random bits) and PKCE verifier and keeps them
    for ``lifetime`` seconds (10 minutes by default) under a hash of the state;
    ``consume(state)`` returns them and deletes them atomically, so a replayed or
    concurrent second callback with the same state fails with ``FlowNotFoundError``.

    Args:
        store: Any fastmcp-sessions store (use an encrypted one: it holds verifiers).
        collection: The collection holding pending flows.
        lifetime: Seconds a flow stays consumable.
        identity_key: Secret for HMAC-hashing identities (as ``SessionStore``).
    """

    def __init__(
        self,
        store: Store,
        *,
        collection: str = DEFAULT_FLOW_COLLECTION,
        lifetime: float = FLOW_LIFETIME,
        identity_key: str | bytes | None = None,
    ) -> None:
        self.store = store
        self.collection = collection
        self.lifetime = float(lifetime)
        self._hash = IdentityHasher(identity_key)

    def __repr__(self) -> str:
        return f"OAuthFlows({self.store!r}, lifetime={self.lifetime:g})"

    @telemetry.traced("fastmcp_sessions.oauth_flow.start")
    async def start(
        self,
        identity: str,
        *,
        redirect_uri: str,
        session_id: str | None = None,
        server_url: str | None = None,
        scopes: Sequence[str] = (),
        extra: dict[str, Any] | None = None,
    ) -> PendingFlow:
        """Begin a flow of ``identity``; put ``state`` and ``code_challenge`` in the authorize URL."""
        digest = self._hash(identity)
        if not isinstance(redirect_uri, str) or not redirect_uri:
            raise SessionValidationError("redirect_uri must be the non-empty callback URL of the flow")
        state = secrets.token_urlsafe(32)
        verifier, challenge = pkce_pair()
        now = time.time()
        record = {
            "identity": digest,
            "verifier": verifier,
            "challenge": challenge,
            "redirect_uri": redirect_uri,
            "session_id": session_id,
            "server_url": server_url,
            "scopes": list(scopes),
            "extra": dict(extra or {}),
            "created": now,
            "expires": now + self.lifetime,
        }
        stored = await self.store.put_if_absent(
            "flow:" + secret_digest(state), record, collection=self.collection, ttl=self.lifetime
        )
        if not stored:  # 256 random bits collided: never in practice
            raise SessionValidationError("could not allocate a unique OAuth state; retry")
        return _flow(state, record)

    @telemetry.traced("fastmcp_sessions.oauth_flow.consume")
    async def consume(self, state: str, *, identity: str | None = None) -> PendingFlow:
        """Return the flow of ``state`` and end it, exactly once.

        With ``identity`` the flow must also have been started by that identity (do
        pass it when you know who is calling back: it stops one user from completing
        another's flow). Raises ``FlowNotFoundError`` when the state is unknown,
        expired, already consumed, or another identity's; a flow of another identity
        is left untouched.
        """
        if not isinstance(state, str) or not state:
            raise FlowNotFoundError()
        key = "flow:" + secret_digest(state)
        entry = await self.store.get_versioned(key, collection=self.collection)
        if entry is None:
            raise FlowNotFoundError()
        record = entry.value
        if identity is not None and not secrets.compare_digest(
            str(record.get("identity")), self._hash(identity)
        ):
            raise FlowNotFoundError()
        if not await self.store.delete_if_version(key, entry.version, collection=self.collection):
            raise FlowNotFoundError()  # another consumer won the race
        if float(record.get("expires", 0)) <= time.time():
            raise FlowNotFoundError()
        return _flow(state, record)

    @telemetry.traced("fastmcp_sessions.oauth_flow.cancel")
    async def cancel(self, state: str) -> bool:
        """Drop a pending flow; return whether it existed."""
        return await self.store.delete("flow:" + secret_digest(state), collection=self.collection)


def _flow(state: str, record: dict[str, Any]) -> PendingFlow:
    return PendingFlow(
        state=state,
        code_verifier=record["verifier"],
        code_challenge=record["challenge"],
        redirect_uri=record["redirect_uri"],
        session_id=record.get("session_id"),
        server_url=record.get("server_url"),
        scopes=record.get("scopes") or [],
        extra=record.get("extra") or {},
        created_at=to_datetime(record["created"]),
        expires_at=to_datetime(record["expires"]),
    )
