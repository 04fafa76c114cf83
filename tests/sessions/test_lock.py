"""The distributed Lock on every backend: exclusion, timeouts, ownership, leases, fencing."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from fastmcp_sessions import Store
from fastmcp_sessions.sessions import Lock, LockError, LockNotHeldError, LockTimeoutError
from tests._support.backends import Backend
from tests._support.session_procs import run_once, run_together


async def test_acquire_release_and_fencing_tokens_increase(store: Store) -> None:
    tokens = []
    for _ in range(3):
        async with Lock(store, "job", lease=5) as held:
            assert held.held
            assert await held.locked()
            tokens.append(held.fencing_token)
        assert not held.held
        assert not await held.locked()
    assert tokens == sorted(tokens) and len(set(tokens)) == 3


async def test_mutual_exclusion_between_tasks(store: Store) -> None:
    counter = {"n": 0}
    inside: list[int] = []
    fences: list[int] = []

    async def worker() -> None:
        for _ in range(3):
            async with Lock(store, "counter", lease=5, timeout=20, poll_interval=0.01) as held:
                inside.append(1)
                assert len(inside) == 1, "two holders at once"
                fences.append(held.fencing_token)
                n = counter["n"]
                await asyncio.sleep(0.002)
                counter["n"] = n + 1
                inside.pop()

    await asyncio.gather(*(worker() for _ in range(4)))
    assert counter["n"] == 12
    assert fences == sorted(fences) and len(set(fences)) == 12


async def test_timeout_raises_a_typed_error(store: Store) -> None:
    async with Lock(store, "busy", lease=5):
        started = time.monotonic()
        with pytest.raises(LockTimeoutError, match=r"within 0\.2 s") as info:
            await Lock(store, "busy", lease=5, timeout=0.2).acquire()
        assert 0.15 <= time.monotonic() - started < 2
        assert info.value.extra_info == {"lock": "busy", "timeout": 0.2}
        with pytest.raises(LockTimeoutError):
            await Lock(store, "busy").acquire(blocking=False)
        assert await Lock(store, "busy").try_acquire() is False
        assert await Lock(store, "other").try_acquire() is True


async def test_only_the_owner_releases_and_expired_leases_are_taken_over(store: Store) -> None:
    first = Lock(store, "lease", lease=0.3)
    first_token = await first.acquire()
    await asyncio.sleep(0.45)  # lease over, nobody released it
    second = Lock(store, "lease", lease=5, timeout=2)
    second_token = await second.acquire()
    assert second_token > first_token
    assert await first.release() is False  # not the owner any more: releases nothing
    assert await second.locked()
    with pytest.raises(LockNotHeldError, match="lease expired"):
        await first.extend()
    await second.extend()
    assert await second.release() is True
    assert not await second.locked()


async def test_extend_keeps_the_lock(store: Store) -> None:
    lock = Lock(store, "extend", lease=1.0)
    await lock.acquire()
    await asyncio.sleep(0.3)
    await lock.extend(3.0)
    await asyncio.sleep(0.9)  # past the first lease
    assert await Lock(store, "extend").try_acquire() is False
    assert await lock.release() is True


async def test_automatic_renewal(store: Store) -> None:
    async with Lock(store, "renewed", lease=0.3, renew=True) as held:
        await asyncio.sleep(0.7)
        assert await Lock(store, "renewed").try_acquire() is False
        assert not held.lost
    assert not await held.locked()


async def test_misuse_is_reported(store: Store) -> None:
    lock = Lock(store, "twice", lease=5)
    await lock.acquire()
    with pytest.raises(LockError, match="already held"):
        await lock.acquire()
    await lock.release()
    with pytest.raises(LockNotHeldError):
        await lock.extend()
    assert await lock.release() is False
    with pytest.raises(LockError):
        Lock(store, "", lease=1)
    with pytest.raises(LockError):
        Lock(store, "x", lease=0)
    with pytest.raises(LockNotHeldError):
        _ = Lock(store, "never").fencing_token


async def test_mutual_exclusion_across_processes(shared_backend: Backend) -> None:
    assert shared_backend.url is not None
    results = await run_together(shared_backend, [["lock", shared_backend.url, "mp", "4", "10"]] * 3)
    store = shared_backend.open()
    try:
        record = await store.get("shared", collection="lock-test")
    finally:
        await store.close()
    assert record is not None
    assert record["n"] == 12, "a lost update: two processes were inside the lock at once"
    assert record["fences"] == sorted(record["fences"]) and len(set(record["fences"])) == 12
    assert sorted(f for r in results for f in r) == record["fences"]


async def test_crashed_holders_lease_expires(shared_backend: Backend) -> None:
    assert shared_backend.url is not None
    out, _ = await run_once(shared_backend, ["lock-crash", shared_backend.url, "crash", "0.8"])
    crashed_token = json.loads(out.strip().splitlines()[0])
    store = shared_backend.open()
    try:
        lock = Lock(store, "crash", lease=5, timeout=10)
        token = await lock.acquire()
        assert token > crashed_token
        await lock.release()
    finally:
        await store.close()
