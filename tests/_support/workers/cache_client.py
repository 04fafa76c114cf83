"""A client process on a response cache in a fastmcp-sessions store, run by tests/fastmcp/test_client_cache.py.

    python cache_client.py <store url> <counter file>

Starts ``counting_server.py`` over stdio, lists its tools and reads its resource through
FastMCP's ``KeyValueResponseCacheStore`` on the store, and prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from fastmcp import Client
from fastmcp.client.caching import KeyValueResponseCacheStore
from fastmcp.client.transports import StdioTransport
from mcp.client.caching import CacheConfig

from fastmcp_sessions import open_store

SERVER = Path(__file__).with_name("counting_server.py")


async def main(url: str, counter: str) -> dict[str, Any]:
    """List the tools and read the resource once, through the shared cache."""
    async with open_store(url) as store:
        cache = CacheConfig(
            store=KeyValueResponseCacheStore(storage=store),
            partition="tenant-a",
            target_id="counted",
        )
        transport = StdioTransport(command=sys.executable, args=[str(SERVER), counter], keep_alive=False)
        async with Client(transport, cache=cache, timeout=60) as client:
            tools = [tool.name for tool in await client.list_tools()]
            motd = await client.read_resource("config://motd")
            return {
                "tools": tools,
                "motd": [getattr(part, "text", None) for part in motd],
                "protocol": client.protocol_version,
            }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))), flush=True)
