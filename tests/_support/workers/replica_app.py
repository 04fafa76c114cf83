"""One replica of a FastMCP app with change notifications across replicas (run by
test_replicas.py on Redis and test_replicas_postgresql.py on PostgreSQL).

Env: FASTMCP_SESSIONS_URL (the shared store), SERVER_NAME, REPLICA (a label), PORT.
"""

from __future__ import annotations

import os

import uvicorn
from fastmcp import Context, FastMCP
from mcp_types import InputRequiredResult

from fastmcp_sessions.fastmcp import enable_subscriptions, resource_updated, server_storage

REPLICA = os.environ["REPLICA"]
storage = server_storage(os.environ["FASTMCP_SESSIONS_URL"], server_name=os.environ["SERVER_NAME"])
mcp = FastMCP(os.environ["SERVER_NAME"], **storage.kwargs())
enable_subscriptions(mcp, storage)


@mcp.tool
async def update(ctx: Context, uri: str) -> str:
    """Announce that the resource at ``uri`` changed."""
    await resource_updated(ctx, uri)
    return REPLICA


@mcp.tool
def add_tool(name: str) -> str:
    """Register a new tool at run time (from a worker thread: this tool is sync)."""

    def added() -> str:
        return REPLICA

    mcp.tool(added, name=name)
    return REPLICA


@mcp.tool
async def stepwise(ctx: Context) -> InputRequiredResult | str:
    """First round: ask for nothing but seal state; second round: show the state it got back."""
    if ctx.request_state is None:
        return InputRequiredResult(request_state=f"sealed-by-{REPLICA}")
    return f"{ctx.request_state}|opened-by-{REPLICA}"


app = mcp.http_app(**storage.http_app_kwargs())

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
