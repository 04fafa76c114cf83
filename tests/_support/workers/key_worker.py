"""Run by tests/stores/test_key_check.py as a replica in its own process.

    FASTMCP_SESSIONS_KEYS=... python key_worker.py <store url> <value>

Opens the store, writes ``value`` under its own key and reads every replica's key
back; prints one JSON line: ``{"ok": true, "read": {...}}`` or the typed error.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from key_value.aio.errors import BaseKeyValueError

from fastmcp_sessions import open_store


async def main(url: str, value: str) -> dict[str, Any]:
    try:
        async with open_store(url) as store:
            await store.put(value, {"v": value}, collection="replicas")
            read = {k: await store.get(k, collection="replicas") for k in await store.keys("replicas")}
    except BaseKeyValueError as exc:
        return {"ok": False, "error": type(exc).__name__, "message": str(exc)}
    return {"ok": True, "read": read}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))), flush=True)
