"""``doctor`` with the key missing: the store is not called unreachable, the key is named missing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from fastmcp_sessions import open_store
from tests._support.cli_runner import CliRunner, assert_one_line_error


def _write(url: str | None = None) -> None:
    async def go() -> None:
        async with open_store(url) as store:
            await store.put("k", {"v": 1}, collection="c")

    asyncio.run(go())


def _reachable_line(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("reachable"))


def test_deleted_key_file_is_a_missing_key_not_an_unreachable_store(cli: CliRunner) -> None:
    _write()
    report = cli("doctor", "--json").json()
    key_file = next(Path(f["path"]) for f in report["files"] if f["role"] == "key file")
    key_file.unlink()
    result = cli("doctor")
    assert_one_line_error(result, 1)
    assert _reachable_line(result.out) == "reachable    not checked (the key is missing)"
    assert "NO" not in _reachable_line(result.out) and "unreachable" not in result.out
    data = cli("doctor", "--json").json()
    assert data["key_missing"] is True and data["reachable"] is not False


def test_encrypted_redis_without_a_key_is_reachable_and_the_key_missing(
    cli: CliRunner, redis_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FASTMCP_SESSIONS_KEYS", raising=False)
    url = f"{redis_server.url}?namespace=doctor-keymissing&encryption=true"
    result = cli("doctor", "--url", url)
    assert_one_line_error(result, 1)
    assert _reachable_line(result.out) == "reachable    yes (but the key is missing, see below)"
    assert "key missing" in result.out and "unreachable" not in result.out
    data = cli("doctor", "--url", url, "--json").json()
    assert data["key_missing"] is True and data["reachable"] is True
