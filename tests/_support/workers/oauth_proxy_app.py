"""A FastMCP server with an OAuthProxy on shared storage, run by uvicorn as one replica.

    FASTMCP_SESSIONS_OAUTH_KEYS=... python oauth_proxy_app.py <store url> <port>

Used by tests/fastmcp/test_oauth_proxy_keys.py to start replicas in separate processes.
"""

from __future__ import annotations

import sys

import uvicorn
from fastmcp import FastMCP
from fastmcp.server.auth.oauth_proxy import OAuthProxy
from fastmcp.server.auth.providers.jwt import StaticTokenVerifier

from fastmcp_sessions.fastmcp import server_storage


def main(url: str, port: int) -> None:
    storage = server_storage(url, server_name="login")
    auth = OAuthProxy(
        upstream_authorization_endpoint="https://idp.example/authorize",
        upstream_token_endpoint="https://idp.example/token",
        upstream_client_id="client-id",
        upstream_client_secret="client-secret",
        token_verifier=StaticTokenVerifier(tokens={}),
        base_url=f"http://127.0.0.1:{port}",
        jwt_signing_key="j" * 32,
        **storage.oauth_proxy_kwargs(),
    )
    mcp = FastMCP("login", auth=auth, **storage.kwargs())
    app = mcp.http_app(**storage.http_app_kwargs())
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="info", lifespan="on")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
