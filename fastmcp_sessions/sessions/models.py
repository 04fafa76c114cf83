"""Typed records of the session layer.

Secrets (access and refresh tokens, client secrets, PKCE verifiers) are
``pydantic.SecretStr`` or are masked by ``__repr_args__``, so no repr, ``str()``,
log line or error message built from these models shows them. Use
``.get_secret_value()`` (or the ``to_*`` converters) where the real value is needed.

A ``Session``'s server URL may carry credentials (``https://bob:pw@host/mcp?api_key=...``)
and its headers API keys: its repr, ``str()`` and ``model_dump()``/``model_dump_json()``
redact both. The attributes (``session.server_url``, ``session.headers``) are the real
values, and ``model_dump(context=REVEAL)`` dumps them unredacted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, FieldSerializationInfo, SecretStr, field_serializer

from fastmcp_sessions._redact import MASK, redact_url

if TYPE_CHECKING:
    # The MCP SDK is imported only when its models are needed: ``import mcp`` takes about a second.
    from fastmcp_sessions.sessions._mcp import RedactedClientInformation, RedactedOAuthToken

__all__ = [
    "REVEAL",
    "AuthStatus",
    "OAuthClient",
    "OAuthTokens",
    "PendingFlow",
    "Session",
    "SessionOAuth",
    "Transport",
]

Transport = Literal["streamable_http", "sse"]
"""How the client app talks to the remote MCP server."""

AuthStatus = Literal["none", "pending", "authorized"]
"""``pending``: an OAuth flow is under way (the session lives 10 minutes unless it completes);
``authorized``: tokens were stored; ``none``: the server needs no OAuth (or none was started)."""

REVEAL = {"reveal_secrets": True}
"""Pass as ``model_dump(context=REVEAL)`` to dump a ``Session`` with its real URL and header values."""


def _reveal(info: FieldSerializationInfo) -> bool:
    context = info.context
    return isinstance(context, dict) and context.get("reveal_secrets") is True


def to_datetime(timestamp: float) -> datetime:
    """Unix seconds to an aware UTC ``datetime``."""
    return datetime.fromtimestamp(timestamp, UTC)


class OAuthTokens(BaseModel):
    """A session's OAuth tokens, with the absolute expiry of the access token."""

    model_config = ConfigDict(frozen=True)

    access_token: SecretStr
    token_type: str = "Bearer"  # noqa: S105 - the token type, not a secret
    expires_in: int | None = None
    scope: str | None = None
    refresh_token: SecretStr | None = None
    expires_at: datetime | None = None
    """When the access token expires (computed from ``expires_in`` when it was stored)."""

    @classmethod
    def from_stored(cls, data: dict[str, Any], expires_at: float | None) -> OAuthTokens:
        """Build from the stored JSON form of an ``OAuthToken``."""
        return cls(**data, expires_at=None if expires_at is None else to_datetime(expires_at))

    def to_oauth_token(self) -> RedactedOAuthToken:
        """The MCP SDK ``OAuthToken`` (with a redacted repr)."""
        from fastmcp_sessions.sessions._mcp import RedactedOAuthToken

        return RedactedOAuthToken(
            access_token=self.access_token.get_secret_value(),
            token_type="Bearer",  # noqa: S106 - the token type, not a secret
            expires_in=self.expires_in,
            scope=self.scope,
            refresh_token=None if self.refresh_token is None else self.refresh_token.get_secret_value(),
        )


class OAuthClient(BaseModel):
    """The OAuth client registration used by a session (dynamic or static)."""

    model_config = ConfigDict(frozen=True)

    client_id: str
    client_secret: SecretStr | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Every other field of the registration (redirect URIs, grant types, issuer...)."""

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> OAuthClient:
        """Build from the stored JSON form of an ``OAuthClientInformationFull``."""
        rest = dict(data)
        client_id = rest.pop("client_id", None) or ""
        secret = rest.pop("client_secret", None)
        return cls(client_id=client_id, client_secret=secret, metadata=rest)

    def to_client_information(self) -> RedactedClientInformation:
        """The MCP SDK ``OAuthClientInformationFull`` (with a redacted repr)."""
        from fastmcp_sessions.sessions._mcp import RedactedClientInformation

        secret = None if self.client_secret is None else self.client_secret.get_secret_value()
        return RedactedClientInformation.model_validate(
            {**self.metadata, "client_id": self.client_id, "client_secret": secret}
        )


class SessionOAuth(BaseModel):
    """A session's OAuth data: its tokens and its client registration (either may be missing)."""

    model_config = ConfigDict(frozen=True)

    tokens: OAuthTokens | None = None
    client: OAuthClient | None = None


class Session(BaseModel):
    """One MCP client session of one identity with one remote MCP server.

    ``server_url`` and ``callback_url`` may carry credentials and ``headers`` API keys:
    repr, ``str()`` and ``model_dump``/``model_dump_json`` show the URLs with passwords
    and secret query values as ``***`` and only the header names. Read the attributes
    (or dump with ``context=REVEAL``) for the real values.
    """

    model_config = ConfigDict(frozen=True)

    session_id: str
    identity: str
    server_id: str
    """Stable id of the server URL (a hash of its normalised form)."""
    server_name: str | None = None
    server_url: str
    callback_url: str | None = None
    transport: Transport = "streamable_http"
    active: bool = True
    auth_status: AuthStatus = "none"
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime
    expires_at: datetime
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra HTTP headers to send to the server."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Free-form JSON data of the application."""
    oauth: SessionOAuth = Field(default_factory=SessionOAuth)

    def real_headers(self) -> dict[str, str]:
        """The headers with their real values (a copy)."""
        return dict(self.headers)

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name == "headers":
                yield name, dict.fromkeys(self.headers, MASK)
            elif name in ("server_url", "callback_url") and isinstance(value, str):
                yield name, redact_url(value)
            else:
                yield name, value

    @field_serializer("server_url", "callback_url")
    def _dump_url(self, url: str | None, info: FieldSerializationInfo) -> str | None:
        return url if url is None or _reveal(info) else redact_url(url)

    @field_serializer("headers")
    def _dump_headers(self, headers: dict[str, str], info: FieldSerializationInfo) -> dict[str, str]:
        return dict(headers) if _reveal(info) else dict.fromkeys(headers, MASK)


class PendingFlow(BaseModel):
    """An OAuth authorization-code flow in progress: its ``state`` and PKCE verifier.

    Store nothing of it yourself: ``OAuthFlows.start`` keeps it, ``OAuthFlows.consume``
    returns it exactly once when the redirect comes back.
    """

    model_config = ConfigDict(frozen=True)

    state: str
    code_verifier: SecretStr
    code_challenge: str
    code_challenge_method: Literal["S256"] = "S256"
    redirect_uri: str
    session_id: str | None = None
    server_url: str | None = None
    scopes: list[str] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    expires_at: datetime

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name == "state":
                yield name, self.state[:6] + "..."
            elif name in ("server_url", "redirect_uri") and isinstance(value, str):
                yield name, redact_url(value)
            else:
                yield name, value
