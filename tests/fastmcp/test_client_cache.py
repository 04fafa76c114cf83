"""FastMCP's client response cache on a fastmcp-sessions store, shared by client processes.

Each client runs ``tests/_support/workers/cache_client.py`` in its own process, with its own
stdio server (``counting_server.py``) that counts the requests it answers in one file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

WORKERS = Path(__file__).parents[1] / "_support" / "workers"


def run_client(url: str, counter: Path) -> dict[str, Any]:
    """One client process: list the tools and read the resource through the cache on ``url``."""
    proc = subprocess.run(
        [sys.executable, str(WORKERS / "cache_client.py"), url, str(counter)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def asked(counter: Path, method: str) -> int:
    """How often the servers answered ``method`` themselves."""
    return counter.read_text().splitlines().count(method) if counter.exists() else 0


@pytest.mark.parametrize("backend", ["redis", "disk"])
def test_second_client_process_gets_list_tools_from_the_shared_cache(
    backend: str, redis_server: Any, tmp_path: Path
) -> None:
    url = (
        f"{redis_server.url}?namespace=client-cache-{uuid.uuid4().hex[:8]}"
        if backend == "redis"
        else f"disk://{tmp_path / 'cache.sqlite3'}"
    )
    counter = tmp_path / "asked.txt"
    first = run_client(url, counter)
    assert first["protocol"] == "2026-07-28", "the client caches only on the modern protocol"
    assert asked(counter, "tools/list") == 1
    second = run_client(url, counter)
    assert second["tools"] == first["tools"] == ["add"]
    assert asked(counter, "tools/list") == 1, "the second process was answered from the shared cache"
    assert asked(counter, "resources/read") == 2, "FastMCP's client asks the server for every read"
