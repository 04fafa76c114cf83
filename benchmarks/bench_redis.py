"""RedisStore side by side with raw redis-py and py-key-value-aio's RedisStore.

Starts its own redis-server on a free loopback port (tests/_support/servers.py), runs every
contender in this one process against it, and prints ratios:

    .venv/bin/python benchmarks/bench_redis.py [--ops 2000] [--rounds 5]

Contenders:
  * fastmcp-sessions RedisStore (this package)
  * raw redis.asyncio: GET/SET/MGET/MSET with json, the floor any wrapper pays for
  * py-key-value-aio RedisStore (key_value.aio.stores.redis)

Contenders run interleaved in slices of 100 operations, so load from anything else on
the machine hits all of them alike. Beyond one task at a time it measures 64 concurrent
tasks (throughput and p99 latency; raw redis-py's pool raised to 1,000 so that it does
not fail), 5,000 operations in flight at once with default settings (errors and wrong
read-backs counted), and 64 tasks on a three-master Redis Cluster against raw
``RedisCluster``. It prints whether hiredis is installed (redis-py and the store's
pipelining both use it when it is). Batches are 1000 keys; each batch result also
records how many round trips one call took (counted by wrapping redis-py's
``Connection.send_packed_command``: one call is one write of one or more commands,
answered before the next). Results go to benchmarks/results/redis.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from redis.asyncio import Redis  # noqa: E402
from redis.asyncio.cluster import ClusterNode  # noqa: E402
from redis.asyncio.cluster import RedisCluster as RawCluster  # noqa: E402
from redis.asyncio.connection import Connection  # noqa: E402
from redis.exceptions import WatchError  # noqa: E402

from benchmarks._harness import Report, Result, main  # noqa: E402
from fastmcp_sessions.stores.redis import RedisStore  # noqa: E402
from fastmcp_sessions.stores.redis.pipelining import _Link  # noqa: E402
from tests._support.servers import RedisCluster, RedisServer  # noqa: E402

OURS = "fastmcp-sessions RedisStore"
RAW = "raw redis.asyncio + json"
PEER = "py-key-value-aio RedisStore"
RAW_CLUSTER = "raw redis.asyncio RedisCluster + json"
BATCH = 1000
TASKS = 64
IN_FLIGHT = 5000
TARGETS = [
    ("get", RAW, 0.95),
    ("put", RAW, 0.95),
    ("get", PEER, 1.3),
    ("put", PEER, 1.3),
    (f"get x{TASKS} tasks", RAW, 2.5),
    (f"put x{TASKS} tasks", RAW, 2.5),
    (f"cluster get x{TASKS} tasks", RAW_CLUSTER, 2.0),
    (f"cluster put x{TASKS} tasks", RAW_CLUSTER, 2.0),
]
VALUE: dict[str, Any] = {
    "access_token": "eyJhbGciOiJIUzI1NiJ9." + "x" * 80,
    "token_type": "Bearer",
    "expires_in": 3600,
    "scope": "read write",
}


class _RoundTrips:
    """Counts writes, only while counting (the timed runs use everything untouched): redis-py's
    ``send_packed_command`` and the store's pipelined connection writes."""

    @staticmethod
    async def of(call: Callable[[], Awaitable[Any]]) -> int:
        """Round trips taken by one ``call()`` (after a warm-up call, so connections exist)."""
        await call()
        original = Connection.send_packed_command
        count = 0

        async def counting(self: Connection, *args: Any, **kwargs: Any) -> None:
            nonlocal count
            count += 1
            await original(self, *args, **kwargs)

        original_send = _Link.send

        def counting_send(self: _Link, *args: Any) -> None:
            nonlocal count
            count += 1
            original_send(self, *args)

        Connection.send_packed_command = counting  # type: ignore[method-assign]
        _Link.send = counting_send  # type: ignore[method-assign]
        try:
            await call()
        finally:
            Connection.send_packed_command = original  # type: ignore[method-assign]
            _Link.send = original_send  # type: ignore[method-assign]
        return count


async def run(args: argparse.Namespace) -> None:
    from key_value.aio.stores.redis import RedisStore as PeerStore

    report = Report("redis")
    ops, rounds = args.ops, args.rounds
    try:
        import hiredis  # noqa: F401

        print("hiredis: installed (used by redis-py and by the store's pipelining)", file=sys.stderr)
    except ImportError:
        print("hiredis: not installed (pure-Python reply parsing)", file=sys.stderr)
    p99: dict[str, dict[str, float]] = {}
    in_flight: dict[str, tuple[int, int]] = {}
    with RedisServer() as server:
        raw = Redis(host="127.0.0.1", port=server.port, max_connections=1000)
        ours = RedisStore(server.url, namespace="bench")
        peer = PeerStore(url=server.url)
        collection = "bench"
        try:
            await raw.ping()

            # -- single put ----------------------------------------------------------
            async def raw_put(i: int) -> None:
                await raw.set(f"raw:{i % 1000}", json.dumps(VALUE))

            async def ours_put(i: int) -> None:
                await ours.put(f"k{i % 1000}", VALUE, collection=collection)

            async def peer_put(i: int) -> None:
                await peer.put(f"k{i % 1000}", VALUE, collection=collection)

            await _group(report, "put", ops, rounds, [(RAW, raw_put), (OURS, ours_put), (PEER, peer_put)])

            # -- single get ----------------------------------------------------------
            async def raw_get(i: int) -> None:
                data = await raw.get(f"raw:{i % 1000}")
                assert data is not None and json.loads(data)

            async def ours_get(i: int) -> None:
                assert await ours.get(f"k{i % 1000}", collection=collection)

            async def peer_get(i: int) -> None:
                assert await peer.get(f"k{i % 1000}", collection=collection)

            await _group(report, "get", ops, rounds, [(RAW, raw_get), (OURS, ours_get), (PEER, peer_get)])

            # -- put with a TTL --------------------------------------------------------
            async def raw_put_ttl(i: int) -> None:
                await raw.set(f"raw:{i % 1000}", json.dumps(VALUE), px=60_000)

            async def ours_put_ttl(i: int) -> None:
                await ours.put(f"k{i % 1000}", VALUE, collection=collection, ttl=60)

            async def peer_put_ttl(i: int) -> None:
                await peer.put(f"k{i % 1000}", VALUE, collection=collection, ttl=60)

            await _group(
                report,
                "put ttl=60",
                ops,
                rounds,
                [(RAW, raw_put_ttl), (OURS, ours_put_ttl), (PEER, peer_put_ttl)],
            )

            # -- batches of 1000 -------------------------------------------------------
            keys = [f"b{i}" for i in range(BATCH)]
            raw_keys = [f"raw:b{i}" for i in range(BATCH)]
            values = [dict(VALUE, i=i) for i in range(BATCH)]
            batch_ops = max(ops // 100, 5)

            async def raw_put_many(i: int) -> None:
                await raw.mset({k: json.dumps(v) for k, v in zip(raw_keys, values, strict=True)})

            async def ours_put_many(i: int) -> None:
                await ours.put_many(keys, values, collection=collection)

            async def peer_put_many(i: int) -> None:
                await peer.put_many(keys, values, collection=collection)

            await _group(
                report,
                f"put_many({BATCH})",
                batch_ops,
                rounds,
                [(RAW, raw_put_many), (OURS, ours_put_many), (PEER, peer_put_many)],
                round_trips=True,
            )

            async def raw_get_many(i: int) -> None:
                got = [json.loads(v) for v in await raw.mget(raw_keys)]
                assert len(got) == BATCH

            async def ours_get_many(i: int) -> None:
                assert len(await ours.get_many(keys, collection=collection)) == BATCH

            async def peer_get_many(i: int) -> None:
                assert len(await peer.get_many(keys, collection=collection)) == BATCH

            await _group(
                report,
                f"get_many({BATCH})",
                batch_ops,
                rounds,
                [(RAW, raw_get_many), (OURS, ours_get_many), (PEER, peer_get_many)],
                round_trips=True,
            )

            # -- atomic read-modify-write ----------------------------------------------
            # raw: the optimistic WATCH/MULTI/EXEC loop one would write by hand. The peer
            # has no atomic operation; its get+put is listed for scale, not as an equal.
            async def raw_update(i: int) -> None:
                async with raw.pipeline(transaction=True) as pipe:
                    while True:
                        try:
                            await pipe.watch("raw:counter")
                            data = await pipe.get("raw:counter")
                            n = json.loads(data)["n"] + 1 if data else 1
                            pipe.multi()
                            pipe.set("raw:counter", json.dumps({"n": n}))
                            await pipe.execute()
                            return
                        except WatchError:
                            continue

            async def ours_update(i: int) -> None:
                await ours.update("counter", _increment, collection=collection)

            async def peer_get_put(i: int) -> None:
                current = await peer.get("counter", collection=collection)
                await peer.put("counter", _increment(current), collection=collection)

            await _group(
                report,
                "update (atomic RMW)",
                ops,
                rounds,
                [(RAW, raw_update), (OURS, ours_update), (PEER + " get+put, NOT atomic", peer_get_put)],
            )

            async def ours_put_if_absent(i: int) -> None:
                await ours.put_if_absent(f"pia{i % 1000}", VALUE, collection=collection)

            async def raw_set_nx(i: int) -> None:
                await raw.set(f"raw:pia{i % 1000}", json.dumps(VALUE), nx=True)

            await _group(
                report, "put_if_absent", ops, rounds, [(RAW, raw_set_nx), (OURS, ours_put_if_absent)]
            )
            # -- many tasks at once ----------------------------------------------------
            p99["put"] = await _concurrent_group(
                report,
                f"put x{TASKS} tasks",
                ops * 4,
                rounds,
                [(RAW, raw_put), (OURS, ours_put), (PEER, peer_put)],
            )
            p99["get"] = await _concurrent_group(
                report,
                f"get x{TASKS} tasks",
                ops * 4,
                rounds,
                [(RAW, raw_get), (OURS, ours_get), (PEER, peer_get)],
            )

            # -- 5,000 in flight, default settings -------------------------------------
            default_raw = Redis(host="127.0.0.1", port=server.port)
            default_peer = PeerStore(url=server.url)
            try:
                in_flight[OURS] = await _all_at_once(
                    lambda i, v: ours.put(f"f{i}", v, collection="flight"),
                    lambda i: ours.get(f"f{i}", collection="flight"),
                )
                in_flight[RAW + " (default pool)"] = await _all_at_once(
                    lambda i, v: default_raw.set(f"raw:f{i}", json.dumps(v)),
                    lambda i: _raw_json(default_raw, f"raw:f{i}"),
                )
                in_flight[PEER] = await _all_at_once(
                    lambda i, v: default_peer.put(f"f{i}", v, collection="flight"),
                    lambda i: default_peer.get(f"f{i}", collection="flight"),
                )
            finally:
                await default_raw.aclose()
                await default_peer.close()
        finally:  # the server, and all it holds, goes away with the with-block
            await ours.close()
            await peer.close()
            await raw.aclose()

    with RedisCluster(masters=3) as cluster:
        raw_cluster = RawCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in cluster.nodes], max_connections=1000
        )
        ours_cluster = RedisStore(cluster.url, namespace="bench")
        try:
            await raw_cluster.initialize()

            async def rc_put(i: int) -> None:
                await raw_cluster.set(f"raw:{i % 1000}", json.dumps(VALUE))

            async def oc_put(i: int) -> None:
                await ours_cluster.put(f"k{i % 1000}", VALUE, collection=f"c{i % 64}")

            async def rc_get(i: int) -> None:
                assert await _raw_json(raw_cluster, f"raw:{i % 1000}")

            async def oc_get(i: int) -> None:
                assert await ours_cluster.get(f"k{i % 1000}", collection=f"c{i % 64}")

            for i in range(1000):  # every key the gets read
                await oc_put(i)
                await rc_put(i)
            p99["cluster put"] = await _concurrent_group(
                report,
                f"cluster put x{TASKS} tasks",
                ops * 4,
                rounds,
                [(RAW_CLUSTER, rc_put), (OURS, oc_put)],
            )
            p99["cluster get"] = await _concurrent_group(
                report,
                f"cluster get x{TASKS} tasks",
                ops * 4,
                rounds,
                [(RAW_CLUSTER, rc_get), (OURS, oc_get)],
            )
        finally:
            await ours_cluster.close()
            await raw_cluster.aclose()

    ratios = [
        ("put", OURS, RAW),
        ("put", OURS, PEER),
        ("get", OURS, RAW),
        ("get", OURS, PEER),
        ("put ttl=60", OURS, RAW),
        ("put ttl=60", OURS, PEER),
        (f"put_many({BATCH})", OURS, RAW),
        (f"put_many({BATCH})", OURS, PEER),
        (f"get_many({BATCH})", OURS, RAW),
        (f"get_many({BATCH})", OURS, PEER),
        ("update (atomic RMW)", OURS, RAW),
        ("put_if_absent", OURS, RAW),
        (f"put x{TASKS} tasks", OURS, RAW),
        (f"put x{TASKS} tasks", OURS, PEER),
        (f"get x{TASKS} tasks", OURS, RAW),
        (f"get x{TASKS} tasks", OURS, PEER),
        (f"cluster put x{TASKS} tasks", OURS, RAW_CLUSTER),
        (f"cluster get x{TASKS} tasks", OURS, RAW_CLUSTER),
    ]
    report.print_table(ratios)
    print(f"\np99 latency at {TASKS} tasks (ms):")
    for group, by in p99.items():
        cells = "  ".join(f"{name}: {ms:.2f}" for name, ms in by.items())
        base = RAW_CLUSTER if group.startswith("cluster") else RAW
        verdict = "ok" if by[OURS] <= by[base] else "MISSED"
        print(f"  {group:<12} {cells}  (ours <= raw: {verdict})")
    print(f"\n{IN_FLIGHT:,} operations in flight at once (puts, then gets), default settings:")
    for name, (errors, wrong) in in_flight.items():
        verdict = "ok" if errors == wrong == 0 else ("MISSED" if name == OURS else "")
        print(f"  {name:<44} {errors:>5} errors, {wrong:>5} wrong or missing read-backs {verdict}")
    print("\ntargets:")
    for group, baseline, target in TARGETS:
        ratio = report.ratio(group, OURS, baseline)
        verdict = "ok" if ratio >= target else "MISSED"
        print(f"  {group:<12} {OURS} / {baseline} = {ratio:.2f}x (target >= {target}x) {verdict}")
    print("\nround trips per call:")
    for r in report.results:
        if "round_trips" in r.extra:
            print(f"  {r.group:<28} {r.contender:<44} {r.extra['round_trips']}")
    path = report.save(ratios, args.json)
    print(f"\nsaved {path}")


async def _raw_json(client: Any, key: str) -> Any:
    data = await client.get(key)
    return None if data is None else json.loads(data)


async def _all_at_once(
    put: Callable[[int, dict[str, Any]], Awaitable[Any]], get: Callable[[int], Awaitable[Any]]
) -> tuple[int, int]:
    """``IN_FLIGHT`` puts at once, then as many gets: (operations that raised, values that
    did not read back as written)."""
    values = [dict(VALUE, i=i) for i in range(IN_FLIGHT)]
    puts = await asyncio.gather(*(put(i, values[i]) for i in range(IN_FLIGHT)), return_exceptions=True)
    gets = await asyncio.gather(*(get(i) for i in range(IN_FLIGHT)), return_exceptions=True)
    errors = sum(isinstance(r, BaseException) for r in (*puts, *gets))
    wrong = sum(not isinstance(g, BaseException) and g != v for g, v in zip(gets, values, strict=True))
    return errors, wrong


async def _concurrent_group(
    report: Report,
    group: str,
    ops: int,
    rounds: int,
    contenders: list[tuple[str, Callable[[int], Awaitable[Any]]]],
) -> dict[str, float]:
    """``TASKS`` tasks share ``ops`` operations; contenders take turns round by round. Records
    the median round's throughput and returns each contender's p99 latency (ms) over all
    rounds."""
    per_task = max(ops // TASKS, 1)
    latencies: dict[str, list[float]] = {name: [] for name, _ in contenders}
    per_round: dict[str, list[float]] = {name: [] for name, _ in contenders}

    async def task(op: Callable[[int], Awaitable[Any]], t: int, sink: list[float]) -> None:
        for i in range(per_task):
            began = time.perf_counter()
            await op(t * per_task + i)
            sink.append(time.perf_counter() - began)

    for _name, op in contenders:  # warm up: connections made, scripts loaded
        await asyncio.gather(*(task(op, t, []) for t in range(TASKS)))
    for _ in range(rounds):
        for name, op in contenders:
            began = time.perf_counter()
            await asyncio.gather(*(task(op, t, latencies[name]) for t in range(TASKS)))
            per_round[name].append(per_task * TASKS / (time.perf_counter() - began))
    out: dict[str, float] = {}
    for name, _ in contenders:
        median = statistics.median(per_round[name])
        report.results.append(Result(group, name, median, per_task * TASKS, per_round[name], {}))
        ordered = sorted(latencies[name])
        out[name] = 1000 * ordered[int(0.99 * (len(ordered) - 1))]
        print(f"  {group:<28} {name:<44} {median:>12,.0f} ops/s  p99 {out[name]:.2f} ms", file=sys.stderr)
    return out


def _increment(v: dict[str, Any] | None) -> dict[str, Any]:
    return {"n": (v or {"n": 0})["n"] + 1}


async def _group(
    report: Report,
    group: str,
    ops: int,
    rounds: int,
    contenders: list[tuple[str, Callable[[int], Awaitable[Any]]]],
    *,
    round_trips: bool = False,
) -> None:
    """Measure the contenders interleaved in short slices, so that load from anything else
    on the machine hits all of them alike. Each round runs ``ops`` operations of every
    contender, in slices of at most 100 taking turns; a contender's result is its median
    round."""
    extra: dict[str, dict[str, Any]] = {name: {} for name, _ in contenders}
    for name, op in contenders:
        for i in range(max(ops // 10, 2)):  # connect and warm up
            await op(i)
        if round_trips:
            extra[name]["round_trips"] = await _RoundTrips.of(lambda op=op: op(0))  # type: ignore[misc]
    per_round: dict[str, list[float]] = {name: [] for name, _ in contenders}
    step = min(100, ops)
    for _ in range(rounds):
        elapsed = dict.fromkeys(per_round, 0.0)
        for start in range(0, ops, step):
            for name, op in contenders:
                began = time.perf_counter()
                for i in range(start, min(start + step, ops)):
                    await op(i)
                elapsed[name] += time.perf_counter() - began
        for name in per_round:
            per_round[name].append(ops / elapsed[name])
    for name, _ in contenders:
        median = statistics.median(per_round[name])
        report.results.append(Result(group, name, median, ops, per_round[name], extra[name]))
        print(f"  {group:<28} {name:<44} {median:>12,.0f} ops/s", file=sys.stderr)


if __name__ == "__main__":
    main(run, __doc__.splitlines()[0], default_ops=2000)
