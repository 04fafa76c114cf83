"""MCP SDK models with redacted reprs (kept apart so that ``import mcp`` happens only when needed)."""

from __future__ import annotations

from typing import Any

from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from fastmcp_sessions._redact import mask_fields

__all__ = ["RedactedClientInformation", "RedactedOAuthToken"]


class RedactedOAuthToken(OAuthToken):
    """An MCP SDK ``OAuthToken`` whose repr and str hide the access and refresh tokens.

    It is an ``OAuthToken`` in every other respect, so it goes wherever the SDK
    expects one.
    """

    def __repr_args__(self) -> Any:
        return list(mask_fields(super().__repr_args__(), frozenset({"access_token", "refresh_token"})))


class RedactedClientInformation(OAuthClientInformationFull):
    """An MCP SDK ``OAuthClientInformationFull`` whose repr and str hide the client secret."""

    def __repr_args__(self) -> Any:
        return list(mask_fields(super().__repr_args__(), frozenset({"client_secret"})))
