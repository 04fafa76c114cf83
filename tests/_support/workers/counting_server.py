"""A stdio FastMCP server that counts what it is asked, started by tests/fastmcp/test_client_cache.py.

    python counting_server.py <counter file>

Appends one line per ``tools/list`` or ``resources/read`` it answers to the counter file,
so a test can tell a cached answer from one the server gave.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from fastmcp import FastMCP
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext


class Counting(Middleware):
    """Record each counted request's method in ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def on_request(self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]) -> Any:
        """Count ``tools/list`` and ``resources/read``, then answer."""
        if context.method in ("tools/list", "resources/read"):
            with self.path.open("a") as counter:
                counter.write(f"{context.method}\n")
        return await call_next(context)


def build(counter: Path) -> FastMCP:
    """The server: one tool, one resource, every request counted."""
    # cache_ttl: the hint (ttlMs) without which a client caches nothing it gets from this server.
    mcp = FastMCP("counted", middleware=[Counting(counter)], cache_ttl=60)

    @mcp.tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    @mcp.resource("config://motd")
    def motd() -> str:
        """The message of the day."""
        return "hello from the server"

    return mcp


if __name__ == "__main__":
    build(Path(sys.argv[1])).run(show_banner=False)
