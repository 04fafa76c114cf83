"""Choosing a store by URL and environment."""

from __future__ import annotations

import builtins
import importlib
import logging
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
        open_store("postgres://localhost/db")
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


def test_missing_optional_dependency_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend whose driver is not installed says which pip extra brings it."""
    for scheme, extra in (("redis", "redis"), ("mongodb", "mongodb"), ("dynamodb", "dynamodb")):
        if scheme not in supported_schemes():
            continue
        from fastmcp_sessions.stores.registry import store_class

        cls = store_class(scheme)
        module = sys.modules[cls.__module__]
        real_import = builtins.__import__

        def no_driver(name: str, *args: object, _real: object = real_import, **kwargs: object) -> object:
            if name.split(".")[0] in {"redis", "pymongo", "aioboto3", "aiobotocore", "botocore"}:
                raise ImportError(f"No module named {name!r}")
            return _real(name, *args, **kwargs)  # type: ignore[operator]

        monkeypatch.setattr(builtins, "__import__", no_driver)
        try:
            reloaded = importlib.reload(module)
            with pytest.raises(ImportError, match=rf"fastmcp-sessions\[{extra}\]"):
                reloaded.__dict__[cls.__name__].from_url(f"{scheme}://localhost/x")
        finally:
            monkeypatch.setattr(builtins, "__import__", real_import)
            importlib.reload(module)
