"""A cloud FastMCP server on Redis: session state, resumable streams, OAuth proxy storage, response cache.

Every replica points at the same Redis and the same keys, so a client can land on any
replica: its session state, the OAuth proxy's client registrations and tokens, the
events of a resumable stream and the response cache are all in Redis.

    export FASTMCP_SESSIONS_URL=rediss://:PASSWORD@redis.internal:6379/0
    export FASTMCP_SESSIONS_KEYS=...          # Fernet keys, newest first, the same on every replica
    export FASTMCP_SESSIONS_OAUTH_KEYS=...    # Fernet keys of the OAuth proxy's storage (optional)
    python examples/cloud_server.py           # serves http://HOST:PORT/mcp (HOST 127.0.0.1, PORT 8000)

OAuth is on when ``GITHUB_CLIENT_ID`` is set (with ``GITHUB_CLIENT_SECRET``, ``BASE_URL``,
the server's public URL, and ``JWT_SIGNING_KEY``): FastMCP's ``GitHubProvider`` is an
OAuth proxy, and its client registrations and tokens go to Redis, encrypted, instead of
a per-machine file. Without it the server is open (for a private network or a demo).

Check the setup with ``fastmcp-sessions doctor`` (same environment); move an existing
deployment's data in with ``fastmcp-sessions migrate`` (see docs/operations.md).
"""

from __future__ import annotations

import os
from typing import Any

from fastmcp import Context, FastMCP
from fastmcp.server.dependencies import get_session
from fastmcp.server.sessions import SessionId, SessionProvider

from fastmcp_sessions.fastmcp import ServerStorage, enable_subscriptions, resource_updated, server_storage

SERVER_NAME = os.environ.get("SERVER_NAME", "notes-cloud")
BOARD = "notes://board"
"""A resource clients subscribe to (examples/listen_client.py); ``announce`` updates it."""


def build(url: str | None = None, *, server_name: str = SERVER_NAME) -> tuple[FastMCP, ServerStorage]:
    """The server and its storage: every FastMCP slot backed by the store at ``url``
    (default: env ``FASTMCP_SESSIONS_URL``)."""
    storage = server_storage(url, server_name=server_name)
    mcp = FastMCP(server_name, auth=_auth(storage), **storage.kwargs())  # session state
    mcp.add_provider(SessionProvider())
    # Response cache, shared by every replica: list operations, and only the tools whose
    # answer depends on their arguments alone (never remember/recall, which read state).
    mcp.add_middleware(storage.response_caching_middleware(cacheable_tools=["word_count"]))

    @mcp.tool
    async def remember(session_id: SessionId, note: str) -> str:
        """Add a note to this session (kept in Redis, visible from every replica)."""
        session = await get_session(session_id)
        notes = await session.get("notes", [])
        await session.set("notes", [*notes, note])
        return f"remembered {len(notes) + 1} note(s)"

    @mcp.tool
    async def recall(session_id: SessionId) -> list[str]:
        """Return this session's notes."""
        session = await get_session(session_id)
        return list(await session.get("notes", []))

    # Change notifications (subscriptions/listen) reach listeners on every replica, over Redis.
    enable_subscriptions(mcp, storage)

    @mcp.resource(BOARD)
    def board() -> str:
        """The shared notice board (its content is beside the point: listeners hear of changes)."""
        return "see the announcements"

    @mcp.tool
    async def announce(ctx: Context, message: str) -> str:
        """Tell every client listening to notes://board, on any replica, that it changed."""
        await resource_updated(ctx, BOARD)
        return message

    @mcp.tool
    def word_count(text: str) -> int:
        """Count the words of ``text`` (a pure function, so it is named as safe to cache)."""
        return len(text.split())

    return mcp, storage


def _auth(storage: ServerStorage) -> Any:
    """FastMCP's GitHub OAuth proxy with its storage in Redis, when ``GITHUB_CLIENT_ID`` is set."""
    client_id = os.environ.get("GITHUB_CLIENT_ID")
    if not client_id:
        return None
    from fastmcp.server.auth.providers.github import GitHubProvider

    return GitHubProvider(
        client_id=client_id,
        client_secret=os.environ["GITHUB_CLIENT_SECRET"],
        base_url=os.environ["BASE_URL"],
        jwt_signing_key=os.environ["JWT_SIGNING_KEY"],
        **storage.oauth_proxy_kwargs(),  # client registrations, tokens, codes: in Redis, encrypted
    )


def main() -> None:
    """Serve over streamable HTTP with resumable streams (the event store) in Redis."""
    import uvicorn

    mcp, storage = build()
    app = mcp.http_app(**storage.http_app_kwargs())
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    uvicorn.run(app, host=host, port=port, log_level=os.environ.get("LOG_LEVEL", "warning"))


if __name__ == "__main__":
    main()
