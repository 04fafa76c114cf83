"""Choosing a store by URL and environment."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fastmcp_sessions import DiskStore, EncryptedStore, Keyring, MemoryStore, open_store
from fastmcp_sessions.stores.schemes import selected_url, supported_schemes
from tests._support import REPO

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


# -- a driver that cannot be imported names the real cause ---------------------------

OPEN_AND_REPORT = """
import json, sys
from fastmcp_sessions import open_store
from fastmcp_sessions.errors import DriverImportError, StoreSetupError
try:
    open_store(sys.argv[1])
except ImportError as exc:
    print(json.dumps({
        "typed": isinstance(exc, DriverImportError) and isinstance(exc, StoreSetupError),
        "message": str(exc),
        "name": exc.name,
    }))
else:
    sys.exit("open_store raised nothing")
"""


def _report(url: str, pythonpath: list[Path], *, no_site: bool = False) -> dict[str, object]:
    """Run OPEN_AND_REPORT in a fresh interpreter whose path starts with ``pythonpath``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in pythonpath)}
    args = [sys.executable, *(["-S"] if no_site else []), "-c", OPEN_AND_REPORT, url]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr
    report: dict[str, object] = json.loads(result.stdout)
    assert report["typed"] is True
    return report


def _fake_redis(root: Path, version: str) -> Path:
    """A ``redis`` package of ``version`` (with its metadata) whose ``redis.backoff`` lacks
    ``ExponentialWithJitterBackoff``, as redis-py 5.2.1's does."""
    modules = {
        "redis/__init__.py": f"__version__ = {version!r}\n",
        "redis/asyncio/__init__.py": "class Redis: ...\n",
        "redis/asyncio/cluster.py": "class ClusterNode: ...\nclass RedisCluster: ...\n",
        "redis/asyncio/retry.py": "class Retry: ...\n",
        "redis/asyncio/sentinel.py": "class Sentinel: ...\n",
        "redis/backoff.py": "class ExponentialBackoff: ...\n",
        f"redis-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: redis\nVersion: {version}\n",
    }
    for name, text in modules.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_a_too_old_driver_names_the_missing_attribute_and_both_versions(tmp_path: Path) -> None:
    report = _report("redis://127.0.0.1:1/0", [_fake_redis(tmp_path, "5.2.1")])
    message = str(report["message"])
    assert "redis.backoff.ExponentialWithJitterBackoff is missing" in message
    assert "redis-py 5.2.1 is installed" in message
    assert "5.3.1 or newer is needed" in message
    assert "pip install --upgrade 'redis>=5.3.1'" in message
    assert "fastmcp-sessions[redis]" not in message  # it is installed: installing the extra is no advice
    assert report["name"] == "redis.backoff"


def test_a_new_enough_driver_that_still_fails_is_called_broken_or_shadowed(tmp_path: Path) -> None:
    fake = _fake_redis(tmp_path, "5.3.1")
    message = str(_report("redis://127.0.0.1:1/0", [fake])["message"])
    assert "redis.backoff.ExponentialWithJitterBackoff is missing" in message
    assert "redis-py 5.3.1 is installed" in message
    assert f"imported from {fake / 'redis' / '__init__.py'}" in message
    assert "pip install --force-reinstall 'redis>=5.3.1'" in message
    assert "fastmcp-sessions[redis]" not in message


def _site_packages_without(root: Path, distributions: tuple[str, ...]) -> Path:
    """A copy (as symlinks) of this environment's site-packages lacking ``distributions``:
    their modules and their metadata, so that neither ``find_spec`` nor
    ``importlib.metadata`` finds them, as on a machine where they were never installed."""
    import key_value

    site = Path(next(iter(key_value.__path__))).parent
    hidden = {d.lower().replace("-", "_") for d in distributions}
    for entry in site.iterdir():
        stem = entry.name.split("-")[0].removesuffix(".py").lower()
        if stem in hidden or entry.suffix == ".pth":
            continue
        (root / entry.name).symlink_to(entry)
    return root


@pytest.mark.parametrize(
    ("url", "extra", "distributions"),
    [
        ("redis://127.0.0.1:1/0", "redis", ("redis",)),
        ("redis+cluster://127.0.0.1:1", "redis", ("redis",)),
        ("mongodb://127.0.0.1:1", "mongodb", ("pymongo", "bson", "gridfs")),
        ("dynamodb://table?region=us-east-1", "dynamodb", ("aioboto3", "aiobotocore", "botocore", "boto3")),
    ],
)
def test_an_absent_driver_names_the_extra(
    tmp_path: Path, url: str, extra: str, distributions: tuple[str, ...]
) -> None:
    """Only a driver that is not installed at all gets "install the extra"."""
    site = _site_packages_without(tmp_path, distributions)
    report = _report(url, [REPO, site], no_site=True)
    assert f"pip install 'fastmcp-sessions[{extra}]'" in str(report["message"])
    assert "reinstall" not in str(report["message"])
    assert report["name"] in distributions
