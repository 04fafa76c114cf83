"""A FastMCP ``OAuthProxy`` in front of a made-up upstream identity provider, for tests that
exercise the proxy's storage (nothing ever contacts the provider)."""

from __future__ import annotations

from typing import Any

from fastmcp.server.auth.oauth_proxy import OAuthProxy
from fastmcp.server.auth.providers.jwt import StaticTokenVerifier

__all__ = ["UPSTREAM_CLIENT_SECRET", "fake_upstream_proxy"]

UPSTREAM_CLIENT_SECRET = "client-secret"


def fake_upstream_proxy(*, base_url: str = "http://127.0.0.1:8000", **options: Any) -> OAuthProxy:
    """An ``OAuthProxy`` for ``https://idp.example``; ``options`` go to ``OAuthProxy`` as given
    (``jwt_signing_key``, ``client_storage``...)."""
    return OAuthProxy(
        upstream_authorization_endpoint="https://idp.example/authorize",
        upstream_token_endpoint="https://idp.example/token",
        upstream_client_id="client-id",
        upstream_client_secret=UPSTREAM_CLIENT_SECRET,
        token_verifier=StaticTokenVerifier(tokens={}),
        base_url=base_url,
        **options,
    )
