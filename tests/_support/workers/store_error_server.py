"""A stdio FastMCP server on ``server_storage``, started by tests/fastmcp/test_store_errors.py.

    python store_error_server.py <store url> [answer|exit]

Serves one ``echo`` tool and one ``remember`` tool that writes session state.
"""

from __future__ import annotations

import sys

from fastmcp import FastMCP

from fastmcp_sessions.fastmcp import server_storage


def build(url: str, startup_errors: str) -> FastMCP:
    """The server: every slot on ``url``, store errors answered as one line."""
    storage = server_storage(url, server_name="errors", adopt_plain=False, startup_errors=startup_errors)  # type: ignore[arg-type]
    mcp = FastMCP("errors", **storage.kwargs())

    @mcp.tool
    async def echo(text: str) -> str:
        """Return ``text``."""
        return text

    @mcp.tool
    async def remember(note: str) -> str:
        """Keep ``note`` in the store."""
        await storage.store.put("note", {"note": note}, collection="notes")
        return "kept"

    return mcp


if __name__ == "__main__":
    build(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "answer").run(show_banner=False)
