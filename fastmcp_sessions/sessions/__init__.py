"""The session layer: MCP client sessions, OAuth tokens and flows, server registry, locks.

Everything here uses only the public ``Store`` contract, so it works unchanged on
every backend ``open_store`` can open. The names built on the MCP SDK
(``SingleFlightOAuthClientProvider``, ``RedactedOAuthToken``,
``RedactedClientInformation``) are imported on first use, because importing the SDK
takes about a second.
"""

from typing import TYPE_CHECKING, Any

from fastmcp_sessions.sessions.errors import (
    FlowNotFoundError,
    InvalidIdentityError,
    InvalidServerNameError,
    InvalidServerURLError,
    LockError,
    LockNotHeldError,
    LockTimeoutError,
    ServerNameConflictError,
    ServerNotFoundError,
    SessionError,
    SessionLimitError,
    SessionNotFoundError,
    SessionValidationError,
)
from fastmcp_sessions.sessions.lock import Lock
from fastmcp_sessions.sessions.models import (
    AuthStatus,
    OAuthClient,
    OAuthTokens,
    PendingFlow,
    Session,
    SessionOAuth,
    Transport,
)
from fastmcp_sessions.sessions.oauth import OAuthFlows, identity_store, pkce_pair
from fastmcp_sessions.sessions.servers import ServerRegistry, normalize_url, server_id
from fastmcp_sessions.sessions.store import UNSET, SessionStore, SessionTokenStorage

if TYPE_CHECKING:
    from fastmcp_sessions.sessions._mcp import RedactedClientInformation, RedactedOAuthToken
    from fastmcp_sessions.sessions.refresh import SingleFlightOAuthClientProvider

__all__ = [
    "UNSET",
    "AuthStatus",
    "FlowNotFoundError",
    "InvalidIdentityError",
    "InvalidServerNameError",
    "InvalidServerURLError",
    "Lock",
    "LockError",
    "LockNotHeldError",
    "LockTimeoutError",
    "OAuthClient",
    "OAuthFlows",
    "OAuthTokens",
    "PendingFlow",
    "RedactedClientInformation",
    "RedactedOAuthToken",
    "ServerNameConflictError",
    "ServerNotFoundError",
    "ServerRegistry",
    "Session",
    "SessionError",
    "SessionLimitError",
    "SessionNotFoundError",
    "SessionOAuth",
    "SessionStore",
    "SessionTokenStorage",
    "SessionValidationError",
    "SingleFlightOAuthClientProvider",
    "Transport",
    "identity_store",
    "normalize_url",
    "pkce_pair",
    "server_id",
]

_LAZY = {
    "RedactedClientInformation": "fastmcp_sessions.sessions._mcp",
    "RedactedOAuthToken": "fastmcp_sessions.sessions._mcp",
    "SingleFlightOAuthClientProvider": "fastmcp_sessions.sessions.refresh",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
