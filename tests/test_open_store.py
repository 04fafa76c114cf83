"""Choosing a store by URL and environment."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from fastmcp_sessions import DiskStore, EncryptedStore, Keyring, MemoryStore, open_store
from fastmcp_sessions.stores.registry import selected_url, supported_schemes

KEY = Keyring.generate_key()


def test_no_url_and_no_env_gives_the_encrypted_disk_store(monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store()
    assert isinstance(store, DiskStore) and store.encryption
    assert store.path.parts[-3:] == ("fastmcp", "fastmcp-sessions", "store.sqlite3")
    monkeypatch.setenv("FASTMCP_SESSIONS_APP", "weather")
    assert open_store().path.parts[-3] == "weather"  # type: ignore[attr-defined]


def test_env_url_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTMCP_SESSIONS_URL", "memory://")
    assert isinstance(open_store(), MemoryStore)
    assert selected_url() == ("memory://", "env FASTMCP_SESSIONS_URL")


def test_unknown_scheme_lists_the_supported_ones() -> None:
    with pytest.raises(ValueError) as info:
        open_store("cassandra://localhost/db")
    message = str(info.value)
    for scheme in ("memory://", "disk://"):
        assert scheme in message
    assert set(supported_schemes()) >= {"memory", "disk"}


def test_any_store_can_be_encrypted_by_url() -> None:
    store = open_store("memory://?encryption=true", keys=[KEY])
    assert isinstance(store, EncryptedStore) and isinstance(store.inner, MemoryStore)


async def test_disk_url_with_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", KEY)
    store = open_store(f"disk://{tmp_path}/x%20y.sqlite3")
    assert isinstance(store, DiskStore) and store.path == tmp_path / "x y.sqlite3"
    await store.close()
    with pytest.raises(ValueError, match="absolute path"):
        open_store("disk://relative/path")


def test_passwords_are_redacted_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    from fastmcp_sessions.stores._url import redact_url

    assert redact_url("redis://user:hunter2@host:6379/0") == "redis://user:***@host:6379/0"
    assert redact_url("redis://:hunter2@host") == "redis://:***@host"
    assert "s3cr3t" not in redact_url("dynamodb://t?aws_secret_access_key=s3cr3t&region=x")
    with caplog.at_level(logging.DEBUG, logger="fastmcp_sessions"):
        open_store("memory://?max_entries=3")
    assert "memory://" in caplog.text


BLOCK_DRIVERS = """
import sys
from importlib.abc import MetaPathFinder

class NoDrivers(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"redis", "pymongo", "aioboto3", "aiobotocore", "botocore", "boto3"}:
            raise ImportError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, NoDrivers())
from fastmcp_sessions import open_store
try:
    open_store(sys.argv[1])
except ImportError as exc:
    print(exc)
    sys.exit(3)
"""


@pytest.mark.parametrize(
    ("url", "extra"),
    [
        ("redis://127.0.0.1:1/0", "redis"),
        ("redis+cluster://127.0.0.1:1", "redis"),
        ("mongodb://127.0.0.1:1", "mongodb"),
        ("dynamodb://table?region=us-east-1", "dynamodb"),
    ],
)
def test_missing_optional_dependency_names_the_extra(url: str, extra: str) -> None:
    """A backend whose driver is not installed says which pip extra brings it."""
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_DRIVERS, url], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 3, result.stderr
    assert f"fastmcp-sessions[{extra}]" in result.stdout
