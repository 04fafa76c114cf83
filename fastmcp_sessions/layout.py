"""Where FastMCP's data lives in a store: its collection names, and the per-server layout.

FastMCP writes fixed collection names (``fastmcp_state``, ``mcp-oauth-proxy-clients``,
``tools/list``...). ``server_storage(server_name=...)`` keeps each server's data under
``fastmcp/<server_name>/<part>/<collection>``, one part per kind of data. This module is
the one place both are written down; the FastMCP wiring, the buses (which name their
channels after the layout) and the CLI (``migrate``, ``inspect``) read them from here, so
it sits with the shared modules at the bottom of the package and imports none of them.
"""

from __future__ import annotations

__all__ = [
    "CACHE_COLLECTIONS",
    "CLIENT_COLLECTIONS",
    "EVENT_COLLECTIONS",
    "FASTMCP_COLLECTIONS",
    "OAUTH_PROXY_COLLECTIONS",
    "PARTS",
    "STATE_COLLECTIONS",
    "part_of",
    "part_prefix",
    "server_prefix",
]

STATE_COLLECTIONS: tuple[str, ...] = ("fastmcp_state",)
"""``FastMCP(session_state_store=)``: ``ctx.set_state`` and ``Session``/``UserSession`` state."""

EVENT_COLLECTIONS: tuple[str, ...] = ("fastmcp_events", "fastmcp_streams")
"""FastMCP's ``EventStore(storage=)``: resumable streams."""

OAUTH_PROXY_COLLECTIONS: tuple[str, ...] = (
    "mcp-oauth-proxy-clients",
    "mcp-upstream-tokens",
    "mcp-oauth-transactions",
    "mcp-consent-csrf-tokens",
    "mcp-authorization-codes",
    "mcp-jti-mappings",
    "mcp-refresh-tokens",
)
"""``OAuthProxy(client_storage=)`` and every OAuth provider class."""

CACHE_COLLECTIONS: tuple[str, ...] = (
    "tools/list",
    "resources/list",
    "prompts/list",
    "resources/read",
    "prompts/get",
    "tools/call",
)
"""``ResponseCachingMiddleware(cache_storage=)``, one collection per MCP method."""

CLIENT_COLLECTIONS: tuple[str, ...] = ("mcp-oauth-token", "mcp-oauth-client-info", "mcp-oauth-token-expiry")
"""The client's ``OAuth(token_storage=)``."""

FASTMCP_COLLECTIONS: tuple[str, ...] = (
    *STATE_COLLECTIONS,
    *EVENT_COLLECTIONS,
    *OAUTH_PROXY_COLLECTIONS,
    *CACHE_COLLECTIONS,
    *CLIENT_COLLECTIONS,
    # py-key-value-aio's collection when none is given
    "default_collection",
)
"""Every collection FastMCP writes; read by default from stores that cannot list their collections."""

PARTS: dict[str, tuple[str, ...]] = {
    "state": STATE_COLLECTIONS,
    "events": EVENT_COLLECTIONS,
    "oauth": OAUTH_PROXY_COLLECTIONS,
    "cache": CACHE_COLLECTIONS,
}
"""The parts of one server's data under ``server_storage``, and the FastMCP collections in each."""

_ROOT = "fastmcp"


def server_prefix(server_name: str) -> str:
    """The collection prefix under which every part of ``server_name`` lives."""
    return f"{_ROOT}/{server_name}"


def part_prefix(server_name: str, part: str) -> str:
    """The collection prefix of one part (a key of ``PARTS``) of ``server_name``'s data."""
    if part not in PARTS:
        raise KeyError(f"unknown part {part!r}; the parts are {', '.join(PARTS)}")
    return f"{server_prefix(server_name)}/{part}"


def part_of(collection: str) -> str | None:
    """The part a FastMCP collection belongs to under ``server_storage``, or ``None`` if none."""
    for part, collections in PARTS.items():
        if collection in collections:
            return part
    return None
