"""Scripts a FastMCP server author would run, each in its own interpreter: the key tests' processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

WRITE = """
import asyncio
from fastmcp_sessions import open_store
from fastmcp_sessions.fastmcp import server_storage

async def main():
    storage = server_storage({url!r}, server_name="notes")
    await storage.check()
    await storage.session_state_store.put("s1", {{"n": 1}}, collection="fastmcp_state")
    await storage.oauth_client_storage.put("c1", {{"id": "client"}}, collection="mcp-oauth-proxy-clients")
    await storage.close()

asyncio.run(main())
"""

READ_BACK = """
import asyncio
from fastmcp_sessions.fastmcp import server_storage

async def main():
    storage = server_storage({url!r}, server_name="notes")
    await storage.check()
    state = await storage.session_state_store.get("s1", collection="fastmcp_state")
    client = await storage.oauth_client_storage.get("c1", collection="mcp-oauth-proxy-clients")
    print(state, client)
    await storage.close()

asyncio.run(main())
"""


def run_python(code: str, **values: str) -> subprocess.CompletedProcess[str]:
    """``code`` (formatted with ``values``) as a file of its own, run by a separate interpreter."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code.format(**values))],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
