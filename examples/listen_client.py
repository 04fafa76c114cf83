"""A client that listens for change notifications from a FastMCP server (protocol 2026-07-28).

    python examples/cloud_server.py &        # or any server with enable_subscriptions(mcp, ...)
    MCP_URL=http://127.0.0.1:8000/mcp python examples/listen_client.py

``fastmcp.Client`` has no ``listen`` of its own: the MCP SDK's
``mcp.client.subscriptions.listen(client.session, ...)`` opens one ``subscriptions/listen``
stream on the client's session. Entering it returns once the server acknowledged the
subscription; every event is then one of ``ToolsListChanged``, ``PromptsListChanged``,
``ResourcesListChanged`` or ``ResourceUpdated(uri)`` (``mcp.shared.subscriptions``).
With ``server_storage`` on Redis, a change on any replica reaches listeners on every other.

``EVENTS=N`` stops after N events (default: listen until interrupted).
"""

from __future__ import annotations

import asyncio
import os

from fastmcp import Client
from mcp.client.subscriptions import listen

BOARD = "notes://board"


async def main() -> None:
    """Listen for tool-list changes and updates of notes://board; print each event."""
    url = os.environ.get("MCP_URL", "http://127.0.0.1:8000/mcp")
    wanted = int(os.environ.get("EVENTS", "0"))
    async with (
        Client(url) as client,
        listen(client.session, tools_list_changed=True, resource_subscriptions=[BOARD]) as subscription,
    ):
        print(f"listening to {url}", flush=True)
        seen = 0
        async for event in subscription:
            print(f"event: {event!r}", flush=True)
            seen += 1
            if seen == wanted:
                return


if __name__ == "__main__":
    asyncio.run(main())
