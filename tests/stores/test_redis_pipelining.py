"""Automatic pipelining and load on RedisStore, against real redis-server processes.

Commands issued in one event-loop tick (or while others are in flight) share one write on
one connection per node; each caller still gets its own reply or its own error. Load alone
never fails an operation, with or without pipelining.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from fastmcp_sessions import open_store
from fastmcp_sessions.errors import DeserializationError, StoreConnectionError
from fastmcp_sessions.stores.redis import RedisStore
from fastmcp_sessions.stores.redis.pipelining import ClusterPipeline, _Link
from tests._support.servers import RedisCluster as ClusterLauncher
from tests._support.servers import RedisServer

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def ns() -> str:
    return "p" + secrets.token_hex(6)


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


class Writes:
    """Counts the store's pipelined writes per server port (one write, one round trip)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.by_port: Counter[int] = Counter()
        original = _Link.send
        counter = self.by_port

        def counting(link: _Link, *args: Any) -> None:
            counter[int(link.connection.port)] += 1
            original(link, *args)

        monkeypatch.setattr(_Link, "send", counting)

    @property
    def total(self) -> int:
        return sum(self.by_port.values())


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> Writes:
    return Writes(monkeypatch)


async def _in_flight(store: RedisStore, n: int) -> None:
    """``n`` puts at once, then ``n`` gets at once: none fails, every value reads back."""
    values = [{"i": i, "token": secrets.token_hex(8)} for i in range(n)]
    results = await asyncio.gather(
        *(store.put(f"k{i}", values[i], ttl=300) for i in range(n)), return_exceptions=True
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, f"{len(errors)} of {n} puts failed, e.g. {errors[0]!r}"
    got = await asyncio.gather(*(store.get(f"k{i}") for i in range(n)), return_exceptions=True)
    errors = [r for r in got if isinstance(r, BaseException)]
    assert not errors, f"{len(errors)} of {n} gets failed, e.g. {errors[0]!r}"
    assert got == values


@pytest.mark.parametrize("query", ["", "&pipelining=false"], ids=["pipelined", "pipelining=false"])
async def test_5000_operations_in_flight_all_complete_with_default_settings(
    redis_server: RedisServer, ns: str, query: str
) -> None:
    async with open_store(f"{redis_server.url}?namespace={ns}{query}") as store:
        assert isinstance(store, RedisStore)
        await _in_flight(store, 5000)
        # batches too: migrate's and rotate-key's 200 and 500 at once, many at a time
        keys = [f"b{i}" for i in range(500)]
        await asyncio.gather(*(store.put_many(keys, [{"i": i}] * 500, collection=f"c{i}") for i in range(20)))
        assert all(
            v == [{"i": i}] * 500
            for i, v in enumerate(
                await asyncio.gather(*(store.get_many(keys, collection=f"c{i}") for i in range(20)))
            )
        )


async def test_5000_operations_in_flight_on_a_cluster(redis_cluster: ClusterLauncher, ns: str) -> None:
    for colocate in ("true", "false"):
        async with open_store(f"{redis_cluster.url}?namespace={ns}&colocate={colocate}") as store:
            assert isinstance(store, RedisStore)
            await _in_flight(store, 5000)


async def test_commands_of_one_tick_share_one_write(
    redis_server: RedisServer, ns: str, writes: Writes
) -> None:
    async with RedisStore(redis_server.url, namespace=ns) as store:
        await store.put("warm", {"v": 0})
        await store.get_versioned("warm")  # script loaded
        writes.by_port.clear()
        await asyncio.gather(
            *(store.put(f"k{i}", {"i": i}) for i in range(64)),
            store.put_if_absent("once", {"v": 1}),
            store.get_versioned("warm"),
            store.get_many(["warm", "k1"]),
        )
        assert writes.total == 1, writes.by_port
        writes.by_port.clear()
        got = await asyncio.gather(*(store.get(f"k{i}") for i in range(64)))
        assert got == [{"i": i} for i in range(64)]
        assert writes.total == 1


async def test_one_commands_error_never_reaches_another(
    redis_server: RedisServer, raw: Redis, ns: str, writes: Writes
) -> None:
    async with RedisStore(redis_server.url, namespace=ns) as store:
        await store.put_many([f"k{i}" for i in range(20)], [{"i": i} for i in range(20)])
        # Another program's list and a corrupt string under the store's own keys.
        await raw.rpush(store.redis_key("list"), "x")
        await raw.set(store.redis_key("corrupt"), b"fms1:nonsense")
        writes.by_port.clear()
        calls = []
        for i in range(20):
            calls.append(store.get(f"k{i}"))
            calls.append(store.get("list") if i % 2 else store.get("corrupt"))
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert writes.total == 1  # all forty in one pipeline
        for i in range(20):
            assert results[2 * i] == {"i": i}
            assert isinstance(results[2 * i + 1], DeserializationError), results[2 * i + 1]
        # The connection is fine afterwards: errors are replies, not failures.
        assert await store.get("k3") == {"i": 3}


async def test_a_dropped_connection_fails_only_the_commands_in_flight_and_the_next_reconnects(
    redis_server: RedisServer, raw: Redis, ns: str
) -> None:
    async with RedisStore(redis_server.url, namespace=ns, timeout=10) as store:
        await store.put("k", {"v": 1})
        node = store._node
        assert node is not None
        connection_id = int(await node.send(("CLIENT", "ID")))
        # A blocking command holds the connection; the gets queue behind it, in flight.
        blocked = node.send(("BLPOP", f"{ns}:nothing", 8))
        in_flight = [asyncio.ensure_future(store.get("k")) for _ in range(10)]
        await asyncio.sleep(0.2)  # written, waiting for their replies
        assert not any(f.done() for f in in_flight)
        started = time.monotonic()
        assert await raw.client_kill_filter(_id=connection_id) == 1
        results = await asyncio.gather(*in_flight, return_exceptions=True)
        assert time.monotonic() - started < 2
        assert all(isinstance(r, StoreConnectionError) for r in results), results
        assert "could not be reached" in str(results[0])
        with pytest.raises(Exception, match="closed"):
            await blocked
        # The next command opens a new connection.
        assert await store.get("k") == {"v": 1}
        assert int(await node.send(("CLIENT", "ID"))) != connection_id


async def test_scripts_reload_after_noscript_inside_a_pipeline(
    redis_server: RedisServer, raw: Redis, ns: str
) -> None:
    async with RedisStore(redis_server.url, namespace=ns) as store:
        await store.put_many([f"k{i}" for i in range(30)], [{"n": 0}] * 30)
        await raw.script_flush()  # as after a restart or failover: every EVALSHA gets NOSCRIPT
        entries = await asyncio.gather(*(store.get_versioned(f"k{i}") for i in range(30)))
        assert all(e is not None and e.value == {"n": 0} for e in entries)
        await raw.script_flush()
        swapped = await asyncio.gather(
            *(
                store.compare_and_set(f"k{i}", {"n": 1}, version=e.version)
                for i, e in enumerate(entries)
                if e is not None
            )
        )
        assert all(swapped)
        await raw.script_flush()
        counters = await asyncio.gather(*(store.update("counter", _increment) for _ in range(50)))
        assert sorted(c["n"] for c in counters if c) == list(range(1, 51))


def _increment(value: dict[str, Any] | None) -> dict[str, Any]:
    return {"n": (value or {"n": 0})["n"] + 1}


async def test_without_pipelining_a_wait_for_a_connection_is_bounded_and_says_what_to_change(
    redis_server: RedisServer, ns: str
) -> None:
    store = open_store(f"{redis_server.url}?namespace={ns}&pipelining=false&max_connections=2&timeout=0.3")
    assert isinstance(store, RedisStore) and store.pipelining is False
    await store.put("k", {"v": 1})
    # Both connections busy for longer than the timeout (as with commands slower than it):
    # a further operation waits its turn, then gives up with advice that helps.
    await store._gate.acquire()
    await store._gate.acquire()
    started = time.monotonic()
    with pytest.raises(StoreConnectionError, match="pipelining") as info:
        await store.put("k", {"v": 2})
    assert 0.25 < time.monotonic() - started < 1.5
    assert "raise timeout" in str(info.value)
    store._gate.release()
    store._gate.release()
    # Waits shorter than the timeout simply wait their turn.
    await asyncio.gather(*(store.put(f"k{i}", {"v": i}) for i in range(300)))
    assert await store.get("k299") == {"v": 299}
    await store.close()


# -- Redis Cluster: one pipeline per node, redirects followed ----------------------------


def _cluster_nodes(cluster: ClusterLauncher) -> list[tuple[str, int, list[tuple[int, int]]]]:
    """(node id, port, [(first slot, last slot)]) of every master."""
    out = []
    for line in str(cluster.servers[0].command("CLUSTER", "NODES")).splitlines():
        fields = line.split()
        port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
        ranges = []
        for part in fields[8:]:
            if part.startswith("["):
                continue
            first, _, last = part.partition("-")
            ranges.append((int(first), int(last or first)))
        out.append((fields[0], port, ranges))
    return out


async def test_a_slot_moved_while_in_use_is_followed_through_ask_and_moved(ns: str) -> None:
    with ClusterLauncher(masters=3) as cluster:
        by_port = {s.port: s for s in cluster.servers}
        async with RedisStore(cluster.url, namespace=ns) as store:  # one collection, one slot
            keys = [f"k{i}" for i in range(40)]
            await store.put_many(keys, [{"i": i} for i in range(40)], collection="c")
            slot = key_slot(store.redis_key("k0", collection="c").encode())
            nodes = _cluster_nodes(cluster)
            source = next(n for n in nodes if any(a <= slot <= b for a, b in n[2]))
            target = next(n for n in nodes if n is not source)
            src, dst = by_port[source[1]], by_port[target[1]]
            dst.command("CLUSTER", "SETSLOT", slot, "IMPORTING", source[0])
            src.command("CLUSTER", "SETSLOT", slot, "MIGRATING", target[0])
            moved = [store.redis_key(k, collection="c") for k in keys[:20]]
            assert src.command("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS", *moved) == "OK"

            # Mid-migration: moved keys answer ASK, the rest are still on the source.
            got = await asyncio.gather(*(store.get(k, collection="c") for k in keys))
            assert got == [{"i": i} for i in range(40)]
            await asyncio.gather(*(store.put(f"new{i}", {"new": i}, collection="c") for i in range(10)))
            assert await store.put_if_absent("new0", {"x": 1}, collection="c") is False

            rest = [
                n.decode() if isinstance(n, bytes) else str(n)
                for n in src.command("CLUSTER", "GETKEYSINSLOT", slot, 1000)  # type: ignore[union-attr]
            ]
            if rest:
                assert src.command("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS", *rest) == "OK"
            for server in (dst, src, *(s for s in cluster.servers if s not in (src, dst))):
                server.command("CLUSTER", "SETSLOT", slot, "NODE", target[0])

            # Done: the source answers MOVED once; the store reloads its slot map and goes on.
            got = await asyncio.gather(*(store.get(k, collection="c") for k in keys))
            assert got == [{"i": i} for i in range(40)]
            assert await store.get_many([f"new{i}" for i in range(10)], collection="c") == [
                {"new": i} for i in range(10)
            ]
            await store.put_many(keys, [{"i": -i} for i in range(40)], collection="c")
            assert await store.get_many(keys, collection="c") == [{"i": -i} for i in range(40)]
            assert await store.update("counter", _increment, collection="c") == {"n": 1}
            assert sorted(await store.keys("c")) == sorted(
                [*keys, "counter", *(f"new{i}" for i in range(10))]
            )
            assert store._router is not None
            assert store._router.node_for(store.redis_key("k0", collection="c")).port == dst.port


# -- wait_replicas -------------------------------------------------------------------------


async def test_wait_replicas_confirms_each_write_on_the_replica(ns: str) -> None:
    sync = ["repl-diskless-sync-delay 0"]
    with (
        RedisServer(extra_config=sync) as primary,
        RedisServer(extra_config=[*sync, f"replicaof 127.0.0.1 {primary.port}"]) as replica,
    ):
        deadline = time.monotonic() + 20
        while "master_link_status:up" not in str(replica.command("INFO", "replication")):
            assert time.monotonic() < deadline, "the replica never synced"
            await asyncio.sleep(0.1)
        async with open_store(f"{primary.url}?namespace={ns}&wait_replicas=1") as store:
            assert isinstance(store, RedisStore)
            await asyncio.gather(*(store.put(f"k{i}", {"i": i}) for i in range(300)))
            await store.put_many([f"m{i}" for i in range(50)], [{"m": 1}] * 50, ttl=60)
            assert await store.put_if_absent("once", {"v": 1}) is True
            # Acknowledged means on the replica already: read it there, straight away.
            on_replica = Redis(host="127.0.0.1", port=replica.port)
            try:
                names = [store.redis_key(f"k{i}") for i in range(300)] + [store.redis_key("once")]
                assert all(v is not None for v in await on_replica.mget(names))
                assert await on_replica.exists(*(store.redis_key(f"m{i}") for i in range(50))) == 50
            finally:
                await on_replica.aclose()


async def test_wait_replicas_without_a_replica_fails_typed_and_bounded(
    redis_server: RedisServer, ns: str, writes: Writes
) -> None:
    async with open_store(f"{redis_server.url}?namespace={ns}&wait_replicas=1&timeout=1") as store:
        await store.get("warm")  # connected
        writes.by_port.clear()
        started = time.monotonic()
        results = await asyncio.gather(
            *(store.put(f"k{i}", {"i": i}) for i in range(64)), return_exceptions=True
        )
        # One WAIT for the whole batch (it blocks the connection while it waits), not 64 in a row.
        assert time.monotonic() - started < 1.5
        assert writes.total == 1
        assert all(isinstance(r, StoreConnectionError) for r in results), results
        assert "wait_replicas=1" in str(results[0]) and "failover" in str(results[0])
        assert await store.get("k1") == {"i": 1}  # written on the primary all the same


async def test_redis_cli_reshard_under_load_loses_nothing(ns: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``redis-cli --cluster reshard`` moves 1,000 slots (keys and all, one slot at a time,
    through ASK and MOVED) while writers and readers keep going: no error, no wrong value."""
    with ClusterLauncher(masters=3) as cluster:
        async with RedisStore(cluster.url, namespace=ns, colocate=False) as store:
            keys = [f"k{i}" for i in range(2000)]
            await store.put_many(keys, [{"i": i, "gen": 0} for i in range(2000)])
            nodes = _cluster_nodes(cluster)
            source, target = nodes[0], nodes[1]
            latest = dict.fromkeys(keys, 0)
            problems: list[str] = []
            stop = asyncio.Event()
            redirects: Counter[str] = Counter()
            original = ClusterPipeline._redirected

            async def counting(self: ClusterPipeline, args: Any, key: Any, exc: Exception) -> Any:
                redirects[type(exc).__name__] += 1
                return await original(self, args, key, exc)

            monkeypatch.setattr(ClusterPipeline, "_redirected", counting)

            async def worker(w: int) -> None:
                gen = 0
                while not stop.is_set():
                    gen += 1
                    mine = keys[w::4][:100]
                    try:
                        await store.put_many(mine, [{"i": keys.index(k), "gen": gen} for k in mine])
                        for k in mine:
                            latest[k] = gen
                        got = await asyncio.gather(*(store.get(k) for k in mine))
                        problems.extend(
                            f"{k}: {v}"
                            for k, v in zip(mine, got, strict=True)
                            if v != {"i": keys.index(k), "gen": gen}
                        )
                    except Exception as exc:  # any error during the move is a failure of the test
                        problems.append(repr(exc))
                        return

            workers = [asyncio.create_task(worker(w)) for w in range(4)]
            command = [
                "redis-cli",
                "--cluster",
                "reshard",
                f"127.0.0.1:{source[1]}",
                "--cluster-from",
                source[0],
                "--cluster-to",
                target[0],
                "--cluster-slots",
                "1000",
                "--cluster-yes",
                "--cluster-pipeline",
                "10",
            ]
            proc = await asyncio.create_subprocess_exec(
                *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )
            output, _ = await asyncio.wait_for(proc.communicate(), 120)
            stop.set()
            await asyncio.gather(*workers)
            assert proc.returncode == 0, output.decode()[-2000:]
            assert not problems, problems[:5]
            after = next(n for n in _cluster_nodes(cluster) if n[0] == target[0])
            assert sum(b - a + 1 for a, b in after[2]) == sum(b - a + 1 for a, b in target[2]) + 1000
            print(f"\nredirects followed during the reshard: {dict(redirects)}")
            assert redirects["MovedError"] > 0, redirects  # the store really met the move
            got = await store.get_many(keys)
            assert [v["gen"] for v in got] == [latest[k] for k in keys]
