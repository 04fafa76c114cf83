"""No error message echoes a raw key: keys can be secrets (FastMCP stores authorization
codes, client ids and token URLs as keys). Messages name the collection and a short hash
of the key (``key_ref``) instead. Checked on memory, disk and Redis (plain and
encrypted) for the usual error paths: a value too large for the backend, data in another
format version, a decryption failure and a lost update race."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from fastmcp_sessions import DiskStore, Keyring, Store
from fastmcp_sessions.errors import (
    BaseKeyValueError,
    ConflictError,
    DecryptionError,
    DeserializationError,
    EntryTooLargeError,
    KeyValueOperationError,
    key_ref,
)
from fastmcp_sessions.stores.encrypted import EncryptedStore
from fastmcp_sessions.stores.memory import MemoryStore
from fastmcp_sessions.stores.redis import RedisStore
from tests._support.servers import RedisServer

SECRET = "authz-code-QmV5U2VjcmV0VmFsdWU-7f3a9c"
COLLECTION = "mcp-authorization-codes"
KEY_A, KEY_B = Keyring.generate_key(), Keyring.generate_key()


def assert_no_secret(exc: BaseException) -> None:
    """Neither the error nor anything chained to it shows the key; the message names its hash."""
    assert key_ref(SECRET) in str(exc), str(exc)
    seen: BaseException | None = exc
    while seen is not None:
        assert SECRET not in str(seen) and SECRET not in repr(seen), repr(seen)
        if isinstance(seen, BaseKeyValueError):
            assert SECRET not in repr(seen.extra_info)
        seen = seen.__cause__ or seen.__context__


def test_key_ref_is_short_stable_and_not_the_key() -> None:
    assert key_ref(SECRET) == key_ref(SECRET) != key_ref(SECRET + "x")
    assert key_ref(SECRET).startswith("sha256:") and len(key_ref(SECRET)) == len("sha256:") + 12
    assert SECRET not in key_ref(SECRET)


def test_too_large_and_conflict_errors_name_the_hash() -> None:
    assert_no_secret(EntryTooLargeError(500_000, 400_000, COLLECTION, SECRET, "keep it small"))
    assert_no_secret(ConflictError(COLLECTION, SECRET, 3))


@pytest.fixture
async def redis_store(redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    store = RedisStore(redis_server.url, namespace="secret-test")
    yield store
    await store.destroy_collection(COLLECTION)
    await store.close()


Factory = Callable[[], Store]


async def _lost_race(store: Store) -> None:
    """``update`` whose every attempt is beaten by another writer: ``ConflictError``."""
    await store.put(SECRET, {"n": 0}, collection=COLLECTION)
    n = 0

    async def bump(value: dict[str, Any] | None) -> dict[str, Any]:
        nonlocal n
        n += 1
        await store.put(SECRET, {"n": -n}, collection=COLLECTION)  # someone else wins
        return {"n": n}

    with pytest.raises(ConflictError) as info:
        await store.update(SECRET, bump, collection=COLLECTION, max_attempts=3)
    assert_no_secret(info.value)


async def test_memory(tmp_path: Path) -> None:
    await _lost_race(MemoryStore())
    inner = MemoryStore()
    await EncryptedStore(inner, keys=[KEY_A]).put(SECRET, {"v": 1}, collection=COLLECTION)
    with pytest.raises(DecryptionError) as info:
        # key_check=False: past the key-check record, to the per-value decryption error
        await EncryptedStore(inner, keys=[KEY_B], key_check=False).get(SECRET, collection=COLLECTION)
    assert_no_secret(info.value)
    await inner.put(SECRET, {"plain": "text"}, collection=COLLECTION)  # not in the envelope format
    with pytest.raises(DecryptionError) as info:
        await EncryptedStore(inner, keys=[KEY_A]).get(SECRET, collection=COLLECTION)
    assert_no_secret(info.value)


async def test_disk(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    async with DiskStore(path, keys=[KEY_A]) as store:
        await _lost_race(store)
    async with DiskStore(path, keys=[KEY_B]) as wrong:  # a key the database was not written with
        with pytest.raises(DecryptionError) as info:
            await wrong.get(SECRET, collection=COLLECTION)
        assert_no_secret(info.value)
    # A row that is not what this version wrote (tampered, or another format version).
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE entries SET value = ? WHERE key = ?", (b"not a token", SECRET))
    async with DiskStore(path, keys=[KEY_A]) as store:
        with pytest.raises((DecryptionError, DeserializationError)) as info:
            await store.get(SECRET, collection=COLLECTION)
        assert_no_secret(info.value)


async def test_redis(redis_store: RedisStore, redis_server: RedisServer) -> None:
    await _lost_race(redis_store)
    raw = Redis.from_url(redis_server.url)
    try:
        name = redis_store.redis_key(SECRET, collection=COLLECTION)
        for planted in (b"fms0:an older format", b"fms1:" + b"0" * 20 + b"[1]"):
            await raw.set(name, planted)
            with pytest.raises(DeserializationError) as info:
                await redis_store.get(SECRET, collection=COLLECTION)
            assert_no_secret(info.value)
        await raw.delete(name)
        await raw.rpush(name, "x")  # another program's list under our key
        with pytest.raises(DeserializationError) as info:
            await redis_store.get_versioned(SECRET, collection=COLLECTION)
        assert_no_secret(info.value)
        await raw.delete(name)
    finally:
        await raw.aclose()
    await EncryptedStore(redis_store, keys=[KEY_A]).put(SECRET, {"v": 1}, collection=COLLECTION)
    with pytest.raises(DecryptionError) as info:
        await EncryptedStore(redis_store, keys=[KEY_B], key_check=False).get(SECRET, collection=COLLECTION)
    assert_no_secret(info.value)


async def test_redis_value_over_the_servers_limit(tmp_path: Path) -> None:
    # A server whose bulk-length limit is 1 MiB refuses a 2 MiB value.
    with RedisServer(extra_config=["proto-max-bulk-len 1mb"]) as server:
        async with RedisStore(server.url, namespace="big") as store:
            with pytest.raises(KeyValueOperationError) as info:
                await store.put(SECRET, {"blob": "x" * 2_000_000}, collection=COLLECTION)
            assert_no_secret(info.value)
            await store.put("small", {"v": 1})  # the store carries on
            assert await store.get("small") == {"v": 1}
