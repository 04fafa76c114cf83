"""One process of the single-flight refresh test.

    python refresh_worker.py sdk <store url> <server base url> <identity> <session id>
    python refresh_worker.py fastmcp <store url> <server base url> <identity>

Builds an OAuth client on the stored (expired) tokens, prints ``ready``, waits for a
line on stdin, then makes one authenticated request to ``<server>/resource`` and
prints ``{"status": ..., "token": <the access token the server saw>}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx2
from mcp.shared.auth import OAuthClientMetadata
from pydantic import AnyUrl

from fastmcp_sessions import open_store
from fastmcp_sessions.sessions import SessionStore, SingleFlightOAuthClientProvider


async def main(kind: str, url: str, base: str, identity: str, session_id: str | None) -> dict[str, Any]:
    store = open_store(url)
    async with store:
        auth: httpx2.Auth
        if kind == "sdk":
            assert session_id is not None
            auth = SingleFlightOAuthClientProvider(
                server_url=f"{base}/mcp",
                client_metadata=OAuthClientMetadata(redirect_uris=[AnyUrl("http://127.0.0.1/cb")]),
                storage=SessionStore(store).token_storage(identity, session_id),
                refresh_lock_lease=10,
                refresh_lock_timeout=30,
            )
        else:
            from fastmcp_sessions.fastmcp import StoreOAuth

            auth = StoreOAuth(f"{base}/mcp", store=store, identity=identity, refresh_lock_lease=10)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        async with httpx2.AsyncClient(auth=auth, timeout=30) as client:
            response = await client.get(f"{base}/resource")
        return {"status": response.status_code, "token": response.json().get("token")}


if __name__ == "__main__":
    argv = sys.argv[1:]
    result = asyncio.run(main(argv[0], argv[1], argv[2], argv[3], argv[4] if len(argv) > 4 else None))
    print(json.dumps(result), flush=True)
