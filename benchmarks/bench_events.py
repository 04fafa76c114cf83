"""Event stores for resumable streams side by side, per backend, in one run.

Contenders on each backend, over the same server:
  * fastmcp-sessions ``event_store(store)`` (this package)
  * FastMCP's ``EventStore(storage=store)`` over the same fastmcp-sessions store (what
    ``server_storage`` used before)
  * mcp-persist 2.2's event store for the backend (Redis, SQLite, PostgreSQL), when it is
    importable: it is never a dependency of this project. Install it apart and point
    ``--peers`` at it, for instance
    ``uv pip install --target /tmp/peers --no-deps mcp-persist==2.2.0 aiosqlite``.

Operations: ``store_event`` of a ~150-byte notification, and a replay of 99 events after
a stream's priming event. Contenders run interleaved in short slices (benchmarks/_harness.py)
and every report leads with ratios:

    .venv/bin/python benchmarks/bench_events.py [--ops 1000] [--rounds 5] [--peers DIR]

Stores are unencrypted, as mcp-persist's are by default. Results go to
benchmarks/results/events.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fastmcp.server.event_store import EventStore as KeyValueEventStore  # noqa: E402
from mcp.server.streamable_http import EventMessage, EventStore  # noqa: E402
from mcp_types import JSONRPCNotification  # noqa: E402
from servers import RedisServer  # noqa: E402
from servers_postgresql import PostgresServer  # noqa: E402

from benchmarks._harness import Group, Report  # noqa: E402
from fastmcp_sessions import DiskStore, MemoryStore, Store, open_store  # noqa: E402
from fastmcp_sessions.events import event_store  # noqa: E402

OURS = "fastmcp-sessions event_store"
FASTMCP = "FastMCP EventStore(our store)"
PERSIST = "mcp-persist 2.2"
MESSAGE = JSONRPCNotification(
    jsonrpc="2.0",
    method="notifications/message",
    params={"level": "info", "data": {"msg": "x" * 90, "extra": None}},
)


async def _noop(event: EventMessage) -> None:
    return None


def _store_op(events: EventStore) -> Callable[[int], Any]:
    async def op(i: int) -> None:
        await events.store_event(f"stream-{i % 16}", MESSAGE)

    return op


def _replay_op(events: EventStore, first: dict[int, str]) -> Callable[[int], Any]:
    async def op(i: int) -> None:
        assert await events.replay_events_after(first[id(events)], _noop) is not None

    return op


async def _fill(events: EventStore) -> str:
    """A stream of a priming event and 99 messages; the priming event's id."""
    first = await events.store_event("replayed", None)
    for _ in range(99):
        await events.store_event("replayed", MESSAGE)
    return first


@contextlib.asynccontextmanager
async def _persist(kind: str, where: str) -> AsyncIterator[EventStore | None]:
    try:
        if kind == "redis":
            from mcp_persist.redis import RedisEventStore
            from redis.asyncio import Redis

            client = Redis.from_url(where)
            try:
                yield RedisEventStore(client, ttl=3600, max_stream_length=1000)
            finally:
                await client.aclose()
        elif kind == "sqlite":
            from mcp_persist.sqlite import SQLiteEventStore

            async with SQLiteEventStore.create(where, ttl=3600) as sqlite_store:
                yield sqlite_store
        else:
            from mcp_persist.postgres import PostgresEventStore

            async with PostgresEventStore.create(where, ttl=3600) as pg_store:
                yield pg_store
    except ImportError as exc:
        print(f"  mcp-persist not importable ({exc}); pass --peers", file=sys.stderr)
        yield None


async def _backend(
    report: Report, name: str, store: Store, peer: EventStore | None, ops: int, rounds: int
) -> list[tuple[str, str, str]]:
    contenders: list[tuple[str, EventStore]] = [
        (OURS, event_store(store, max_events_per_stream=1000)),
        (FASTMCP, KeyValueEventStore(storage=store, max_events_per_stream=1000)),
    ]
    if peer is not None:
        contenders.append((PERSIST, peer))
    group = Group(report, f"{name} ", ops, rounds, lambda: 0)
    first: dict[int, str] = {}
    for contender, events in contenders:
        group.contender(contender, events)
        first[id(events)] = await _fill(events)
    await group.run("store_event", _store_op)
    await group.run("replay 99", lambda events: _replay_op(events, first), max(ops // 20, 20))
    ratios = group.ratios(OURS, FASTMCP)
    if peer is not None:
        ratios += group.ratios(OURS, PERSIST)
    close = getattr(contenders[0][1], "close", None)
    if close is not None:
        await close()
    return ratios


async def run(args: argparse.Namespace) -> None:
    if args.peers:
        sys.path.insert(0, str(args.peers))
    report = Report("events")
    ratios: list[tuple[str, str, str]] = []
    ratios += await _backend(report, "memory", MemoryStore(), None, args.ops, args.rounds)
    with (
        tempfile.TemporaryDirectory() as tmp,
        RedisServer() as redis,
        PostgresServer(extra_settings={"fsync": "off", "synchronous_commit": "off"}) as pg,
    ):
        disk = DiskStore(Path(tmp) / "store.sqlite3", encryption=False)
        async with _persist("sqlite", str(Path(tmp) / "persist.sqlite3")) as peer:
            ratios += await _backend(report, "disk/sqlite", disk, peer, args.ops, args.rounds)
        await disk.close()
        store = open_store(redis.url)
        async with _persist("redis", redis.url) as peer:
            ratios += await _backend(report, "redis", store, peer, args.ops, args.rounds)
        await store.close()
        store = open_store(pg.url)
        async with _persist("postgres", pg.url) as peer:
            ratios += await _backend(report, "postgresql", store, peer, args.ops, args.rounds)
        await store.close()
    report.print_table(ratios)
    print(f"\nwritten to {report.save(ratios)}")


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=1000, help="operations per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per contender (median is reported)")
    parser.add_argument(
        "--peers", type=Path, default=None, help="a directory holding mcp-persist (and aiosqlite)"
    )
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(run(_args()))
