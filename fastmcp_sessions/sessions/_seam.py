"""Every private MCP SDK internal the session layer relies on, in one place.

Written against the ``mcp`` versions pyproject.toml allows (the floor through the lock).
Only the single-flight token refresh (``sessions/refresh.py``) touches internals: it
subclasses ``mcp.client.auth.OAuthClientProvider`` and overrides four of its private
members, which the SDK's own ``_auth_flow`` calls in this order:

- ``_initialized``: read before each request; while false the SDK calls ``_initialize``
  inside its per-process lock. The refresh reports "not initialized" while the token is
  expired and refreshable, which gives it the moment to coordinate across processes.
- ``_initialize()``: loads tokens and client information from storage.
- ``_handle_refresh_response(response)``: stores the tokens a refresh returned.
- ``_auth_flow(request)``: the httpx auth generator around one request.

It also reads and sets these members of the provider's ``OAuthContext`` (a dataclass the
SDK documents only through its source): ``server_url``, ``storage``, ``current_tokens``,
``token_expiry_time``, ``is_token_valid()``, ``can_refresh_token()``, ``clear_tokens()``.

``check_seam`` verifies all of it and raises ``MCPSeamError`` naming what changed, so an
SDK release that moves any of it fails when the provider is built (and in
tests/sessions/test_mcp_seam.py, one case per internal), never by refreshing twice and
logging every process out.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect

from fastmcp_sessions._versions import installed_version
from fastmcp_sessions.errors import StoreSetupError

__all__ = [
    "CONTEXT_FIELDS",
    "CONTEXT_METHODS",
    "INITIALIZED_FLAG",
    "OVERRIDDEN",
    "MCPSeamError",
    "check_seam",
]

OVERRIDDEN: dict[str, tuple[str, ...]] = {
    "_initialize": ("self",),
    "_handle_refresh_response": ("self", "response"),
    "_auth_flow": ("self", "request"),
}
"""The provider's private methods the refresh overrides, with the parameters it passes on."""

INITIALIZED_FLAG = "_initialized"
"""The provider's private flag the refresh turns into a property."""

CONTEXT_FIELDS = ("server_url", "storage", "current_tokens", "token_expiry_time")
CONTEXT_METHODS = ("is_token_valid", "can_refresh_token", "clear_tokens")


class MCPSeamError(StoreSetupError):
    """The installed MCP SDK no longer has an internal the single-flight refresh needs."""

    def __init__(self, what: str) -> None:
        found = installed_version("mcp") or "unknown version"
        super().__init__(
            f"fastmcp-sessions' single-flight token refresh does not support this mcp "
            f"({found}): it changed {what}; pin mcp to a version pyproject.toml allows "
            "or upgrade fastmcp-sessions"
        )


@functools.cache
def check_seam() -> None:
    """Verify every internal listed in this module's docstring; raise ``MCPSeamError`` if one moved.

    Cached: the SDK's classes do not change while the process runs.
    """
    from mcp.client.auth import OAuthClientProvider
    from mcp.client.auth.oauth2 import OAuthContext

    where = "mcp.client.auth.OAuthClientProvider"
    for name, params in OVERRIDDEN.items():
        method = getattr(OAuthClientProvider, name, None)
        if not callable(method):
            raise MCPSeamError(f"{where}.{name} (it is gone)")
        if tuple(inspect.signature(method).parameters) != params:
            raise MCPSeamError(f"{where}.{name}'s parameters (expected {', '.join(params)})")
    if not inspect.isasyncgenfunction(OAuthClientProvider._auth_flow):
        raise MCPSeamError(f"{where}._auth_flow (no longer an async generator)")
    for name in ("_initialize", "_handle_refresh_response"):
        if not inspect.iscoroutinefunction(getattr(OAuthClientProvider, name)):
            raise MCPSeamError(f"{where}.{name} (no longer a coroutine function)")
    try:
        flow_source = inspect.getsource(OAuthClientProvider._auth_flow)
    except (OSError, TypeError):
        flow_source = None
    if flow_source is not None and f"self.{INITIALIZED_FLAG}" not in flow_source:
        raise MCPSeamError(f"{where}._auth_flow (it no longer reads self.{INITIALIZED_FLAG})")
    if not dataclasses.is_dataclass(OAuthContext):
        raise MCPSeamError("mcp.client.auth.oauth2.OAuthContext (no longer a dataclass)")
    fields = {f.name for f in dataclasses.fields(OAuthContext)}
    for name in CONTEXT_FIELDS:
        if name not in fields:
            raise MCPSeamError(f"OAuthContext.{name} (the field is gone)")
    for name in CONTEXT_METHODS:
        if not callable(getattr(OAuthContext, name, None)):
            raise MCPSeamError(f"OAuthContext.{name}() (the method is gone)")
