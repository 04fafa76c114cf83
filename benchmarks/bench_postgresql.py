"""PostgreSQLStore side by side with py-key-value-aio's PostgreSQLStore, on the same server.

Starts a PostgreSQL (Debian's binaries, see tests/_support/servers_postgresql.py) on a loopback
port, runs both contenders in this one process against it, interleaved, and prints ratios:

    .venv/bin/python benchmarks/bench_postgresql.py [--ops 1000] [--rounds 5] [--purge-rows 100000]

Groups: single put and get, then get_many / put_many / delete_many of 100 keys. Each
result also records the statements one call sends (each is one round trip once
prepared). delete_many deletes 100 keys that exist: they are put back, untimed, before
each call.

The server runs with fsync off unless ``--fsync`` is given: with it on, every write of
either store waits for the same flush of this machine's disk, which hides the stores' own
cost (both put at about 300/s here).

Then the purge: ``--purge-rows`` expired rows are deleted by ``cull()`` (batches of
``PURGE_BATCH`` through the expiry index) while four tasks keep writing, some of them to
the very rows being purged, and reading; the worst latency of those operations is
reported, against the same operations with no purge running and during one plain
``DELETE ... WHERE expires <= now`` of as many rows. py-key-value's store never deletes
expired rows, so it has no purge to compare. Results go to benchmarks/results/postgresql.json.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from benchmarks._batch_ops import BATCH, VALUE, close_all, get_op, put_op, run_batches  # noqa: E402
from benchmarks._harness import Group, Report, Result  # noqa: E402
from fastmcp_sessions.stores.postgresql import PURGE_BATCH, PostgreSQLStore  # noqa: E402
from tests._support.servers_postgresql import PostgresServer  # noqa: E402

OURS = "fastmcp-sessions PostgreSQLStore"
PEER = "py-key-value-aio PostgreSQLStore"
BLOCK_TARGET_MS = 50.0


class _Statements:
    """Counts the statements every asyncpg connection sends: prepared ones, and simple queries
    such as the reset query asyncpg's pool sends when a connection is released."""

    count = 0

    @classmethod
    def install(cls) -> None:
        prepared, simple = asyncpg.Connection._execute, asyncpg.Connection.execute

        async def counting(conn: asyncpg.Connection, *args: Any, **kwargs: Any) -> Any:
            cls.count += 1
            return await prepared(conn, *args, **kwargs)

        async def counting_simple(conn: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
            if not args:  # with arguments, execute() goes through _execute, counted there
                cls.count += 1
            return await simple(conn, query, *args, **kwargs)

        asyncpg.Connection._execute = counting  # type: ignore[method-assign]
        asyncpg.Connection.execute = counting_simple  # type: ignore[method-assign]


def _count() -> int:
    return _Statements.count


async def bench_ops(report: Report, url: str, ops: int, rounds: int) -> list[tuple[str, str, str]]:
    from key_value.aio.stores.postgresql import PostgreSQLStore as PeerStore

    ours = PostgreSQLStore(f"{url}?schema=bench_ours&purge_interval=0")
    peer = PeerStore(url=url, table_name="bench_peer")
    group = Group(report, "", ops, rounds, _count)
    keys = [f"b{i}" for i in range(BATCH)]
    values = [dict(VALUE, i=i) for i in range(BATCH)]
    try:
        for name, store in ((OURS, ours), (PEER, peer)):
            group.contender(name, store)
        await group.run("put", put_op)
        for _, store in group.stores:
            await store.put_many(keys, values, collection="fresh")
        await group.run("get", lambda s: get_op(s, "fresh", BATCH))
        await run_batches(group, keys, values, max(ops // 20, 10))
    finally:
        await close_all(ours, peer)
    return group.ratios(OURS, PEER)


async def _fill_expired(store: PostgreSQLStore, rows: int) -> list[str]:
    keys = [f"x{i}" for i in range(rows)]
    chunk = 10_000
    for start in range(0, rows, chunk):
        part = keys[start : start + chunk]
        await store.put_many(part, [dict(VALUE, i=i) for i in range(len(part))], collection="purge", ttl=0.5)
    await asyncio.sleep(1.0)  # every one of them expired now
    return keys


async def _under_load(
    store: PostgreSQLStore, expired: list[str], work: Callable[[], Awaitable[Any]] | None, seconds: float
) -> tuple[float, list[float]]:
    """Run ``work`` (or wait ``seconds``) while four tasks write and read; (work's seconds, latencies)."""
    latencies: list[float] = []
    stop = asyncio.Event()
    rng = random.Random(7)

    async def worker(w: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            started = time.perf_counter()
            if i % 3 == 0:  # a row the purge may be deleting right now
                await store.put(rng.choice(expired), {"w": w, "i": i}, collection="purge", ttl=0.2)
            elif i % 3 == 1:
                await store.put(f"live{w}", {"w": w, "i": i}, collection="live")
            else:
                await store.get(f"live{w}", collection="live")
            latencies.append(time.perf_counter() - started)

    tasks = [asyncio.create_task(worker(w)) for w in range(4)]
    await asyncio.sleep(0.2)
    latencies.clear()
    started = time.perf_counter()
    if work is None:
        await asyncio.sleep(seconds)
    else:
        await work()
    took = time.perf_counter() - started
    stop.set()
    await asyncio.gather(*tasks)
    return took, latencies


def _summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "ops": len(ordered),
        "median_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[int(len(ordered) * 0.99)] * 1000,
        "worst_ms": ordered[-1] * 1000,
    }


async def bench_purge(report: Report, url: str, rows: int) -> dict[str, dict[str, float]]:
    store = PostgreSQLStore(f"{url}?schema=bench_purge&purge_interval=0&max_connections=10")
    out: dict[str, dict[str, float]] = {}
    try:
        await store.put("warm", {"v": 1}, collection="live")
        expired = await _fill_expired(store, rows)
        _, idle = await _under_load(store, expired, None, 3.0)
        out["no purge running"] = _summary(idle)

        took, during = await _under_load(store, expired, store.cull, 0)
        out[f"cull(): batches of {PURGE_BATCH}"] = {**_summary(during), "purge_s": took, "rows": rows}

        expired = await _fill_expired(store, rows)
        pool = store.pool
        assert pool is not None
        table = store.qualified_table

        async def one_delete() -> None:
            await pool.execute(
                f"DELETE FROM {table} WHERE expires <= extract(epoch FROM now())::float8", timeout=600
            )

        took, naive = await _under_load(store, expired, one_delete, 0)
        out["one DELETE statement"] = {**_summary(naive), "purge_s": took, "rows": rows}
    finally:
        await store.close()
    for name, numbers in out.items():
        report.results.append(Result(f"purge {rows} expired rows", name, numbers["ops"], 0, [], numbers))
    return out


async def run(args: argparse.Namespace) -> None:
    _Statements.install()
    report = Report("postgresql")
    fsync = "on" if args.fsync else "off"
    print(f"PostgreSQL with fsync={fsync} (--fsync turns it on)", file=sys.stderr)
    with PostgresServer(extra_settings={"fsync": fsync, "synchronous_commit": fsync}) as server:
        ratios = await bench_ops(report, server.url, args.ops, args.rounds)
        purge = await bench_purge(report, server.url, args.purge_rows)
    report.print_table(ratios)
    print(f"\n(server fsync={fsync}: with it on, every write of either store waits for the same disk flush)")
    print("\nstatements (round trips) per call:")
    for r in report.results:
        if "calls" in r.extra:
            print(f"  {r.group:<28} {r.contender:<40} {r.extra['calls']}")
    print(f"\npurge of {args.purge_rows} expired rows, 4 tasks writing and reading meanwhile:")
    for name, n in purge.items():
        took = f"  purge took {n['purge_s']:.2f}s" if "purge_s" in n else ""
        print(
            f"  {name:<28} ops {n['ops']:>6.0f}  median {n['median_ms']:6.2f} ms  p99 {n['p99_ms']:7.2f} ms  "
            f"worst {n['worst_ms']:8.2f} ms{took}"
        )
    worst = purge[f"cull(): batches of {PURGE_BATCH}"]["worst_ms"]
    verdict = "met" if worst < BLOCK_TARGET_MS else "MISSED"
    print(f"  target: no operation blocked >= {BLOCK_TARGET_MS:.0f} ms by cull(): {verdict} ({worst:.1f} ms)")
    print("  py-key-value-aio PostgreSQLStore: never deletes expired rows (no purge to compare)")
    failures = [r for r in report.results if r.extra.get("failed")]
    for r in failures:
        print(f"  FAILED {r.group} {r.contender}: {r.extra['failed']}")
    path = report.save(ratios, args.json)
    print(f"\nsaved {path}")


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1000, help="operations per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per contender (median is reported)")
    parser.add_argument("--purge-rows", type=int, default=100_000, help="expired rows the purge deletes")
    parser.add_argument(
        "--fsync",
        action="store_true",
        help="run the server with fsync and synchronous_commit on (then writes measure the disk's flush)",
    )
    parser.add_argument("--json", type=Path, default=None, help="where to write the JSON report")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(run(_args()))
