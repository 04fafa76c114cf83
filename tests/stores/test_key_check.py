"""Encryption keys across replicas: no local key file on a network backend, and a key check
that refuses a replica whose key differs before it reads or writes anything."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from fastmcp_sessions import EncryptedStore, Keyring, MemoryStore, open_store
from fastmcp_sessions.encryption import KEYS_ENV, default_key_file, fingerprint
from fastmcp_sessions.errors import DecryptionError, KeyMismatchError, MissingKeyError, StoreSetupError
from fastmcp_sessions.fastmcp import OAUTH_KEYS_ENV, server_storage
from fastmcp_sessions.stores.encrypted import KEY_CHECK_COLLECTION, KEY_CHECK_KEY
from tests._support import WORKERS

K1, K2 = Keyring.generate_key(), Keyring.generate_key()


@pytest.fixture
def redis_url(redis_server: Any, request: pytest.FixtureRequest) -> str:
    return f"{redis_server.url}?namespace=kc{abs(hash(request.node.nodeid)) % 10**9}&encryption=true"


async def test_network_backend_never_creates_a_key_file(redis_url: str) -> None:
    with pytest.raises(MissingKeyError) as caught:
        open_store(redis_url)
    message = str(caught.value)
    assert isinstance(caught.value, StoreSetupError)
    assert "Keyring.generate_key()" in message and KEYS_ENV in message and "every replica" in message
    assert not default_key_file("fastmcp").exists()
    with pytest.raises(MissingKeyError, match=OAUTH_KEYS_ENV):
        server_storage(redis_url.replace("&encryption=true", ""), server_name="s")
    assert not default_key_file("fastmcp").exists()


async def test_keys_from_the_environment_or_keys_argument(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEYS_ENV, K1)
    async with open_store(redis_url) as store:
        await store.put("k", {"v": 1})
    async with open_store(redis_url.replace("&encryption=true", ""), encryption=True, keys=[K1]) as store:
        assert await store.get("k") == {"v": 1}
        assert KEY_CHECK_COLLECTION not in await store.collections()
    assert not default_key_file("fastmcp").exists()


def _replica(url: str, keys: str, value: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, KEYS_ENV: keys}
    return subprocess.Popen(
        [sys.executable, str(WORKERS / "key_worker.py"), url, value],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _result(proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def test_a_replica_with_another_key_fails_when_it_opens(redis_url: str) -> None:
    a = _result(_replica(redis_url, K1, "a"))
    assert a == {"ok": True, "read": {"a": {"v": "a"}}}
    b = _result(_replica(redis_url, K2, "b"))
    assert b["ok"] is False and b["error"] == "KeyMismatchError"
    assert fingerprint(K1) in b["message"] and fingerprint(K2) in b["message"]
    assert K1 not in b["message"] and K2 not in b["message"]
    # Replica b wrote nothing; a replica with the shared key still reads everything.
    c = _result(_replica(redis_url, K1, "c"))
    assert c == {"ok": True, "read": {"a": {"v": "a"}, "c": {"v": "c"}}}


def test_rotation_across_replicas(redis_url: str) -> None:
    assert _result(_replica(redis_url, K1, "old"))["ok"]
    # Phase 1: the new key is added second (decrypt only); nothing is encrypted with it yet.
    assert _result(_replica(redis_url, f"{K1},{K2}", "p1"))["ok"]
    assert _result(_replica(redis_url, K1, "still-old"))["ok"]  # an old-key-only replica is still fine
    # Phase 2: a replica encrypts with the new key, which the key check now lists...
    assert _result(_replica(redis_url, f"{K2},{K1}", "new"))["ok"]
    # ...so a replica holding only the old key is refused when it opens, naming the key it lacks.
    old_only = _result(_replica(redis_url, K1, "refused"))
    assert old_only["error"] == "KeyMismatchError"
    assert fingerprint(K2) in old_only["message"] and fingerprint(K1) in old_only["message"]
    # A replica with both keys, in either order, reads everything.
    both = _result(_replica(redis_url, f"{K1},{K2}", "p1b"))
    assert both["ok"] and set(both["read"]) == {"old", "p1", "still-old", "new", "p1b"}

    async def rotate() -> int:
        async with open_store(redis_url, keys=[K2, K1]) as store:
            assert isinstance(store, EncryptedStore)
            return await store.rotate()

    assert asyncio.run(rotate()) == 4  # every entry written with K1
    # Rotated: the new key alone opens the store; the old key alone still does not.
    after = _result(_replica(redis_url, K2, "after"))
    assert after["ok"] and set(after["read"]) == {"old", "p1", "still-old", "new", "p1b", "after"}
    assert _result(_replica(redis_url, K1, "late"))["error"] == "KeyMismatchError"


async def test_concurrent_first_opens_with_different_keys_have_one_winner() -> None:
    inner = MemoryStore()
    stores = [EncryptedStore(inner, keys=[k]) for k in (K1, K2, K1, K2)]
    results = await asyncio.gather(
        *(s.put("k" + str(i), {"i": i}) for i, s in enumerate(stores)), return_exceptions=True
    )
    winners = {s.keyring.fingerprints[0] for s, r in zip(stores, results, strict=True) if r is None}
    assert len(winners) == 1
    assert all(isinstance(r, KeyMismatchError) for r in results if r is not None)
    assert sum(r is None for r in results) == 2


async def test_every_operation_fails_closed_after_a_mismatch() -> None:
    inner = MemoryStore()
    await EncryptedStore(inner, keys=[K1]).put("k", {"v": 1})
    wrong = EncryptedStore(inner, keys=[K2])
    for attempt in (
        wrong.get("k"),
        wrong.put("k", {"v": 2}),
        wrong.keys(),
        wrong.collections(),
        wrong.rotate(),
    ):
        with pytest.raises(KeyMismatchError):
            await attempt
    with pytest.raises(DecryptionError):  # also a DecryptionError, for code that catches that
        await wrong.delete("k")
    assert await EncryptedStore(inner, keys=[K1]).get("k") == {"v": 1}
    record = await inner.get(KEY_CHECK_KEY, collection=KEY_CHECK_COLLECTION)
    assert record is not None and list(record["keys"]) == [fingerprint(K1)]
    assert K1 not in json.dumps(record)
