"""The session layer: SessionStore operations per backend, round trips, and list flatness.

    python -m benchmarks.bench_sessions [--ops 1000] [--rounds 5] [--others 1000,100000]

Reports, in one run:

* ops/s of ``create``, ``get``, ``list(identity)`` and ``update`` on the memory store,
  the (encrypted) disk store and Redis (started from ``tests/_support/servers.py`` when
  ``redis-server`` is installed and ``fastmcp_sessions.stores.redis`` exists; otherwise
  the Redis contender is skipped with a note), with each backend's ratio to memory;
* store round trips per operation, counted by a wrapper store around the memory store
  (targets: create <= 2, update <= 2, get = 1);
* ``list(identity)`` ops/s for one identity with 5 sessions while *other* identities
  hold 1,000 and then 100,000 sessions, on the memory store (and the disk store up to
  ``--disk-others``): the ratio shows the cost does not grow with other identities.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from counting import CountingStore  # noqa: E402

from benchmarks._harness import Report, main  # noqa: E402
from fastmcp_sessions import DiskStore, Keyring, MemoryStore, Store  # noqa: E402
from fastmcp_sessions.sessions import SessionStore  # noqa: E402

URL = "https://mcp.example.com/mcp"
HEADERS = {"X-Tenant": "acme"}


async def bench_store(report: Report, name: str, store: Store, ops: int, rounds: int) -> None:
    """create / get / list / update of one backend (each identity keeps a few sessions)."""
    sessions = SessionStore(store, touch_interval=3600)
    identities = [f"user-{i}" for i in range(64)]
    created: list[tuple[str, str]] = []
    for identity in identities:
        for _ in range(3):
            s = await sessions.create(identity, server_url=URL, headers=HEADERS)
            created.append((identity, s.session_id))

    async def create(i: int) -> None:
        # A fresh identity per call, so the record size stays realistic however many ops run.
        await sessions.create(f"new-{name}-{time.perf_counter_ns()}", server_url=URL, headers=HEADERS)

    async def get(i: int) -> None:
        identity, sid = created[i % len(created)]
        await sessions.get(identity, sid)

    async def list_(i: int) -> None:
        await sessions.list(identities[i % len(identities)])

    async def update(i: int) -> None:
        identity, sid = created[i % len(created)]
        await sessions.update(identity, sid, active=bool(i % 2))

    await report.run("create", name, create, ops, rounds=rounds)
    await report.run("get", name, get, ops, rounds=rounds)
    await report.run("list(identity)", name, list_, ops, rounds=rounds)
    await report.run("update", name, update, ops, rounds=rounds)


async def round_trips() -> dict[str, int]:
    counting = CountingStore(MemoryStore())
    sessions = SessionStore(counting, touch_interval=3600)
    for _ in range(3):
        await sessions.create("alice", server_url=URL)
    counts: dict[str, int] = {}

    async def count(name: str, op: Any) -> Any:
        before = counting.calls
        result = await op
        counts[name] = counting.calls - before
        return result

    s = await count("create", sessions.create("alice", server_url=URL, headers=HEADERS))
    await count("get", sessions.get("alice", s.session_id))
    await count("list(identity)", sessions.list("alice"))
    await count("update", sessions.update("alice", s.session_id, active=False))
    await count("token_storage.get_tokens", sessions.token_storage("alice", s.session_id).get_tokens())
    await count("delete", sessions.delete("alice", s.session_id))
    await count("purge", sessions.purge("alice"))
    return counts


async def seed_others(sessions: SessionStore, total: int, already: int, per_identity: int = 2) -> None:
    """Give other identities sessions until ``total`` exist (two per identity)."""
    for n in range(already, total):
        await sessions.create(f"other-{n // per_identity}", server_url=f"https://s{n % 50}.example.com/mcp")


async def bench_flat(
    report: Report, name: str, store: Store, sizes: list[int], ops: int, rounds: int
) -> None:
    sessions = SessionStore(store, touch_interval=3600)
    for _ in range(5):
        await sessions.create("me", server_url=URL, headers=HEADERS)

    async def list_mine(i: int) -> None:
        await sessions.list("me")

    seeded = 0
    for size in sizes:
        started = time.perf_counter()
        await seed_others(sessions, size, seeded)
        seeded = size
        print(
            f"  seeded {size:,} other sessions on {name} in {time.perf_counter() - started:.1f}s",
            file=sys.stderr,
        )
        gc.collect()  # do not bill the seeding's garbage to the measurement
        await report.run(f"list(me) flat: {name}", f"others={size:,}", list_mine, ops, rounds=max(rounds, 7))


def redis_contender() -> tuple[Any, Store] | None:
    """Start a Redis server and open our Redis store on it, or ``None`` (with a note) if impossible."""
    try:
        from fastmcp_sessions import open_store
        from tests._support.servers import RedisServer, available  # tests/_support/servers.py: stdlib only

        if not available("redis"):
            print("  redis: redis-server not installed; skipped", file=sys.stderr)
            return None
        import fastmcp_sessions.stores.redis  # noqa: F401 - the backend must exist
    except ImportError as exc:
        print(f"  redis: skipped ({exc}); HOOK: add it here once the backend exists", file=sys.stderr)
        return None
    server = RedisServer()
    server.start()
    return server, open_store(server.url)


async def run(args: argparse.Namespace) -> None:
    report = Report("sessions")
    ratios: list[tuple[str, str, str]] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-sessions-"))
    key = Keyring.generate_key()
    redis = redis_contender()
    try:
        stores: list[tuple[str, Store]] = [
            ("memory", MemoryStore()),
            ("disk (encrypted)", DiskStore(tmp / "bench.sqlite3", keys=[key])),
        ]
        if redis is not None:
            stores.append(("redis", redis[1]))
        for name, store in stores:
            await bench_store(report, name, store, args.ops, args.rounds)
        for group in ("create", "get", "list(identity)", "update"):
            for name, _ in stores[1:]:
                ratios.append((group, name, "memory"))

        others = [int(x) for x in args.others.split(",")]
        await bench_flat(report, "memory", MemoryStore(), others, args.ops, args.rounds)
        ratios.append(("list(me) flat: memory", f"others={others[-1]:,}", f"others={others[0]:,}"))
        disk_sizes = [n for n in others if n <= args.disk_others] or others[:1]
        if len(disk_sizes) > 1:
            flat_disk = DiskStore(tmp / "flat.sqlite3", keys=[key])
            await bench_flat(report, "disk", flat_disk, disk_sizes, args.ops, args.rounds)
            ratios.append(("list(me) flat: disk", f"others={disk_sizes[-1]:,}", f"others={disk_sizes[0]:,}"))
            await flat_disk.close()
        for _, store in stores:
            await store.close()

        counts = await round_trips()
        report.print_table(ratios)
        print("\nstore round trips per operation (counting wrapper):")
        for op, n in counts.items():
            print(f"  {op:<28} {n}")
        path = report.save(ratios, args.json)
        extra = path.with_name("sessions_round_trips.json")
        extra.write_text(json.dumps(counts, indent=2))
        print(f"\nsaved {path} and {extra}")
    finally:
        if redis is not None:
            redis[0].stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _main() -> None:
    parser_args = sys.argv[1:]
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument(
        "--others", default="1000,10000,100000", help="other identities' session counts for the flat test"
    )
    extra.add_argument("--disk-others", type=int, default=20000, help="largest flat-test size run on disk")
    known, rest = extra.parse_known_args(parser_args)
    sys.argv = [sys.argv[0], *rest]

    async def go(args: argparse.Namespace) -> None:
        args.others, args.disk_others = known.others, known.disk_others
        await run(args)

    main(go, __doc__ or "session layer benchmark", default_ops=1000)


if __name__ == "__main__":
    _main()
