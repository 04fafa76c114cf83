"""RedisStore through Redis Sentinel: URLs, and a primary SIGKILLed under load.

Each failover test runs its own group: a primary, one replica and three sentinels
(``redis-server FILE --sentinel``), all on 127.0.0.1, started and stopped by PID.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from fastmcp_sessions import open_store
from fastmcp_sessions.errors import StoreConnectionError
from fastmcp_sessions.stores.redis import RedisStore
from tests._support.servers import RedisSentinelGroup

pytestmark = pytest.mark.timeout(240)

TIMEOUT = 1.0


def test_sentinel_urls_follow_the_limits_convention() -> None:
    store = open_store("redis+sentinel://u:s3cret@127.0.0.1:26379,127.0.0.1:26380/mymaster/2?namespace=n")
    assert isinstance(store, RedisStore)
    assert "s3cret" not in repr(store) and "mymaster" in repr(store)
    assert store._sentinel is not None
    assert [
        (c.connection_pool.connection_kwargs["host"], c.connection_pool.connection_kwargs["port"])
        for c in store._sentinel.sentinels
    ] == [("127.0.0.1", 26379), ("127.0.0.1", 26380)]
    kwargs = store.client.connection_pool.connection_kwargs
    assert kwargs["db"] == 2 and kwargs["username"] == "u" and kwargs["password"] == "s3cret"
    tls = open_store("rediss+sentinel://127.0.0.1:26379/mymaster")
    assert isinstance(tls, RedisStore) and tls._sentinel is not None
    assert tls.client.connection_pool.connection_class.__name__ == "SentinelManagedSSLConnection"
    assert all(
        c.connection_pool.connection_class.__name__ == "SSLConnection" for c in tls._sentinel.sentinels
    )
    for bad, why in (
        ("redis+sentinel://127.0.0.1:26379", "service"),
        ("redis+sentinel://127.0.0.1:26379/", "service"),
        ("redis+sentinel:///mymaster", "sentinel"),
        ("redis+sentinel://127.0.0.1:26379/mymaster/x", "database"),
    ):
        with pytest.raises(ValueError, match=why):
            open_store(bad)


async def _failover(wait_replicas: int, lag: float) -> dict[str, Any]:
    """4 writers; SIGKILL the primary (after the replica stopped replicating for ``lag``
    seconds, as a replica that lags or is cut off does); wait for the promoted replica to
    take writes; bring the old primary back (Sentinel makes it a replica); read back every
    acknowledged write through the same store."""
    with RedisSentinelGroup(replicas=1, sentinels=3) as group:
        old = group.primary()
        assert old is not None
        query = f"?namespace=fo&timeout={TIMEOUT:g}" + (
            f"&wait_replicas={wait_replicas}" if wait_replicas else ""
        )
        store = open_store(group.url + query)
        acked: dict[str, int] = {}
        acked_at: dict[str, float] = {}
        failure_seconds: list[float] = []
        first_ack_after_promotion: float | None = None
        promoted_at = 0.0
        stop = asyncio.Event()

        async def writer(w: int) -> None:
            nonlocal first_ack_after_promotion
            i = 0
            while not stop.is_set():
                i += 1
                key = f"w{w}-{i}"
                started = time.monotonic()
                try:
                    await store.put(key, {"w": w, "i": i})
                except StoreConnectionError:  # anything else fails the test
                    failure_seconds.append(time.monotonic() - started)
                    await asyncio.sleep(0.02)
                else:
                    acked[key] = i
                    acked_at[key] = time.monotonic()
                    if promoted_at and first_ack_after_promotion is None:
                        first_ack_after_promotion = time.monotonic() - promoted_at

        writers = [asyncio.create_task(writer(w)) for w in range(4)]
        try:
            await asyncio.sleep(1.0)
            replica = next(s for s in group.servers if s is not old)
            if lag:
                replica.pause()
                await asyncio.sleep(lag)
            acked_before = len(acked)
            killed_at = time.monotonic()
            await asyncio.to_thread(old.kill)
            replica.resume()
            deadline = killed_at + 60
            while (group.sentinels[0].master_address() or ("", old.port))[1] == old.port:
                assert time.monotonic() < deadline, "no failover within 60 s"
                await asyncio.sleep(0.1)
            promoted_at = time.monotonic()
            promoted_after = promoted_at - killed_at
            # Only once every sentinel has the new primary may the old one come back, or a
            # sentinel that missed the failover could make the new primary replicate from it.
            while not all((s.master_address() or ("", old.port))[1] == replica.port for s in group.sentinels):
                assert time.monotonic() < deadline, "the sentinels never agreed on the new primary"
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
            await asyncio.to_thread(old.start)  # comes back empty; Sentinel turns it into a replica
            await asyncio.to_thread(group.wait_replicas_in_sync, 1, 60)
            while first_ack_after_promotion is None:
                assert time.monotonic() < deadline, "the store never wrote to the promoted replica"
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
        finally:
            stop.set()
            await asyncio.gather(*writers)
        keys = sorted(acked)
        got = await store.get_many(keys)  # the same store object, never reopened
        lost = [k for k, v in zip(keys, got, strict=True) if v is None or v["i"] != acked[k]]
        lost_after_promotion = sum(acked_at[k] >= promoted_at for k in lost)
        await store.close()
        return {
            "acked": len(acked),
            "acked_before_kill": acked_before,
            "lost": len(lost),
            "lost_after_promotion": lost_after_promotion,
            "failures": len(failure_seconds),
            "slowest_failure": max(failure_seconds, default=0.0),
            "promoted_after": promoted_after,
            "first_ack_after_promotion": first_ack_after_promotion,
        }


@pytest.mark.parametrize("lag", [0.0, 3.0], ids=["replica-in-sync", "replica-lagging"])
@pytest.mark.parametrize("wait_replicas", [0, 1], ids=["no-wait", "wait_replicas=1"])
async def test_a_primary_killed_under_load_fails_over_with_typed_bounded_errors(
    wait_replicas: int, lag: float
) -> None:
    result = await _failover(wait_replicas, lag)
    print(f"\nfailover wait_replicas={wait_replicas} lag={lag}: {result}")
    assert result["acked_before_kill"] > 0 and result["failures"] > 0, result
    # Every failure was a StoreConnectionError (the writers let anything else through),
    # and none took much longer than the timeout (WAIT itself waits timeout / 2).
    assert result["slowest_failure"] < 2 * TIMEOUT + 1.0, result
    assert result["first_ack_after_promotion"] < 60, result
    assert result["lost_after_promotion"] == 0, result  # what the new primary acknowledged stays
    if wait_replicas:
        assert result["lost"] == 0, result
