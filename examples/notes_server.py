"""A local FastMCP server whose session state lives in the encrypted disk store.

Run it from Claude Desktop (see docs/fastmcp.md for the claude_desktop_config.json
snippet) or any MCP client over stdio:

    python examples/notes_server.py

State goes to ``open_store()``: env ``FASTMCP_SESSIONS_URL`` if set, else the
Fernet-encrypted SQLite file in the platform's data directory for app
``FASTMCP_SESSIONS_APP`` (default ``fastmcp``).
"""

from __future__ import annotations

from fastmcp import FastMCP
from fastmcp.server.dependencies import get_session
from fastmcp.server.sessions import SessionId, SessionProvider
from key_value.aio.protocols import AsyncKeyValue

from fastmcp_sessions import open_store


def build_server(store: AsyncKeyValue) -> FastMCP:
    """The notes server over ``store``: notes kept per session across restarts."""
    mcp = FastMCP("notes", session_state_store=store)
    mcp.add_provider(SessionProvider())

    @mcp.tool
    async def remember(session_id: SessionId, note: str) -> str:
        """Add a note to this session."""
        session = await get_session(session_id)
        notes = await session.get("notes", [])
        await session.set("notes", [*notes, note])
        return f"remembered {len(notes) + 1} note(s)"

    @mcp.tool
    async def recall(session_id: SessionId) -> list[str]:
        """Return this session's notes."""
        session = await get_session(session_id)
        return list(await session.get("notes", []))

    return mcp


if __name__ == "__main__":
    build_server(open_store()).run(show_banner=False, log_level="WARNING")
