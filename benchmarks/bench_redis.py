"""RedisStore side by side with raw redis-py and py-key-value-aio's RedisStore.

Starts its own redis-server on a free loopback port (tests/servers.py), runs every
contender in this one process against it, and prints ratios:

    .venv/bin/python benchmarks/bench_redis.py [--ops 2000] [--rounds 5]

Contenders:
  * fastmcp-sessions RedisStore (this package)
  * raw redis.asyncio: GET/SET/MGET/MSET with json, the floor any wrapper pays for
  * py-key-value-aio RedisStore (key_value.aio.stores.redis)

Contenders run interleaved in slices of 100 operations, so load from anything else on
the machine hits all of them alike. Batches are 1000 keys; each batch result also
records how many round trips one call took (counted by wrapping redis-py's
``Connection.send_packed_command``: one call is one write of one or more commands,
answered before the next). Results go to benchmarks/results/redis.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from redis.asyncio import Redis  # noqa: E402
from redis.asyncio.connection import Connection  # noqa: E402
from redis.exceptions import WatchError  # noqa: E402
from servers import RedisServer  # noqa: E402

from benchmarks._harness import Report, Result, main  # noqa: E402
from fastmcp_sessions.stores.redis import RedisStore  # noqa: E402

OURS = "fastmcp-sessions RedisStore"
RAW = "raw redis.asyncio + json"
PEER = "py-key-value-aio RedisStore"
BATCH = 1000
TARGETS = [("get", RAW, 0.9), ("put", RAW, 0.9), ("get", PEER, 1.2), ("put", PEER, 1.2)]
VALUE: dict[str, Any] = {
    "access_token": "eyJhbGciOiJIUzI1NiJ9." + "x" * 80,
    "token_type": "Bearer",
    "expires_in": 3600,
    "scope": "read write",
}


class _RoundTrips:
    """Counts ``send_packed_command`` calls on redis-py asyncio connections, only while
    counting (the timed runs use redis-py untouched)."""

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

        Connection.send_packed_command = counting  # type: ignore[method-assign]
        try:
            await call()
        finally:
            Connection.send_packed_command = original  # type: ignore[method-assign]
        return count


async def run(args: argparse.Namespace) -> None:
    from key_value.aio.stores.redis import RedisStore as PeerStore

    report = Report("redis")
    ops, rounds = args.ops, args.rounds
    with RedisServer() as server:
        raw = Redis(host="127.0.0.1", port=server.port)
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
        finally:  # the server, and all it holds, goes away with the with-block
            await ours.close()
            await peer.close()
            await raw.aclose()

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
    ]
    report.print_table(ratios)
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
