"""Store errors that reach the MCP client as one line, not ``Internal server error``.

A FastMCP server whose store cannot be used (a missing key, keys that do not match the
stored data, an unreachable backend) would otherwise answer ``tools/list`` and every
other request with a bare ``Internal server error`` while the reason goes to stderr,
which a desktop client never shows. ``StoreErrorMiddleware`` answers with::

    fastmcp-sessions: the server's store cannot be used: <reason>

where the reason is the store error's own message: keys and key material appear in it
only as fingerprints, and connection URLs without their passwords.
"""

from __future__ import annotations

import logging
from typing import Any

from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from key_value.aio.errors import BaseKeyValueError
from mcp import MCPError

__all__ = [
    "STORE_ERROR_CODE",
    "STORE_ERROR_PREFIX",
    "StoreErrorMiddleware",
    "store_error_line",
    "store_error_of",
]

logger = logging.getLogger(__name__)

STORE_ERROR_PREFIX = "fastmcp-sessions: the server's store cannot be used: "
"""How every message ``StoreErrorMiddleware`` sends begins."""

STORE_ERROR_CODE = -32000
"""JSON-RPC's first implementation-defined server error: the server runs, its store does not."""

# Requests that need no store: the client must be able to connect and see why the rest fails.
_ALWAYS_ANSWERED = frozenset({"initialize", "ping", "server/discover"})


def store_error_of(error: BaseException) -> BaseKeyValueError | None:
    """The store error ``error`` is, was raised from, or groups; ``None`` when there is none.

    FastMCP and anyio wrap what a handler raises (``ToolError`` from the original,
    exception groups from task groups), so the chain and the groups are both searched.
    """
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, BaseKeyValueError):
            return current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append(linked)
    return None


def store_error_line(error: BaseException) -> str:
    """The one-line message a client gets for the store error ``error``."""
    reason = " ".join(str(error).split()) or type(error).__name__
    return f"{STORE_ERROR_PREFIX}{reason}"


class StoreErrorMiddleware(Middleware):
    """Answer a request that met a store error with one line saying why, as an MCP error.

    ``server_storage(...).kwargs()`` installs it first (outermost) when the server
    starts, so it sees the errors of every other middleware too. Errors that are not
    store errors pass through untouched.

    Attributes:
        startup_error: Set when the server started although its store failed the start-up
            check (``server_storage(..., startup_errors="answer")``): every request but
            ``initialize`` and ``ping`` is then answered with its line.
    """

    def __init__(self) -> None:
        """A middleware with no start-up error recorded."""
        self.startup_error: BaseKeyValueError | None = None

    async def on_request(self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]) -> Any:
        """Run the request; turn a store error it raises into an MCP error with one line."""
        if self.startup_error is not None and context.method not in _ALWAYS_ANSWERED:
            raise MCPError(code=STORE_ERROR_CODE, message=store_error_line(self.startup_error))
        try:
            return await call_next(context)
        except MCPError:
            raise
        except Exception as error:
            found = store_error_of(error)
            if found is None:
                raise
            line = store_error_line(found)
            logger.error("%s (%s, while answering %s)", line, type(found).__name__, context.method)
            raise MCPError(code=STORE_ERROR_CODE, message=line) from error
