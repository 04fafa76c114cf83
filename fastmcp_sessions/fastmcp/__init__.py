"""Everything that touches FastMCP: storage wiring, the response cache, change notifications.

- ``storage``: ``server_storage(...)`` / ``ServerStorage`` (every slot of a server from one
  store URL), ``request_state_security``, the client's ``StoreOAuth``.
- ``caching``: ``SafeResponseCachingMiddleware``, a response cache safe to share.
- ``subscriptions``: ``enable_subscriptions`` and ``resource_updated`` (2026-07-28 listen).
- ``_seam``: every private FastMCP internal the package relies on, checked at use.

FastMCP's collection names and the per-server layout live in ``fastmcp_sessions.layout``.
"""

from __future__ import annotations

from fastmcp_sessions.fastmcp.caching import SafeResponseCachingMiddleware
from fastmcp_sessions.fastmcp.storage import (
    OAUTH_KEYS_ENV,
    ServerStorage,
    StoreOAuth,
    request_state_security,
    server_storage,
)
from fastmcp_sessions.fastmcp.subscriptions import (
    Subscriptions,
    enable_subscriptions,
    resource_updated,
    subscriptions_of,
)

__all__ = [
    "OAUTH_KEYS_ENV",
    "SafeResponseCachingMiddleware",
    "ServerStorage",
    "StoreOAuth",
    "Subscriptions",
    "enable_subscriptions",
    "request_state_security",
    "resource_updated",
    "server_storage",
    "subscriptions_of",
]
