"""One replica of a FastMCP app whose tool streams log messages (run by test_event_store_e2e.py).

Env: FASTMCP_SESSIONS_URL (the shared store), SERVER_NAME, PORT.
"""

from __future__ import annotations

import asyncio
import os

import uvicorn
from fastmcp import Context, FastMCP

from fastmcp_sessions.fastmcp import server_storage

storage = server_storage(os.environ["FASTMCP_SESSIONS_URL"], server_name=os.environ["SERVER_NAME"])
mcp = FastMCP(os.environ["SERVER_NAME"], **storage.kwargs())


@mcp.tool
async def count(ctx: Context, n: int, pause: float) -> str:
    """Log ``line 0`` .. ``line n-1``, ``pause`` seconds apart, then return."""
    for i in range(n):
        await ctx.info(f"line {i}")
        await asyncio.sleep(pause)
    return f"counted {n}"


app = mcp.http_app(**storage.http_app_kwargs())

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
