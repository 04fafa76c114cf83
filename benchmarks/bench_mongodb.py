"""MongoDBStore side by side with py-key-value-aio's MongoDBStore, on the same server.

Starts each MongoDB stand-in installed here (nx-27017, and mongoeco where Python >= 3.13
exists; see tests/_support/servers.py) on a loopback port, runs both contenders in this one
process against it, interleaved, and prints ratios:

    .venv/bin/python benchmarks/bench_mongodb.py [--ops 500] [--rounds 5]

Groups: single put and get, then get_many / put_many / delete_many of 100 keys. Each
result also records the server commands one call takes (a pymongo CommandListener).
delete_many deletes 100 keys that exist: they are put back, untimed, before each call.
Results go to benchmarks/results/mongodb.json. Absolute ops/s say little (both servers
are Python or SQLite emulations, not mongod); compare the ratios.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pymongo import monitoring  # noqa: E402

from benchmarks._batch_ops import BATCH, VALUE, close_all, get_op, put_op, run_batches  # noqa: E402
from benchmarks._harness import Group, Report, main  # noqa: E402
from fastmcp_sessions.stores.mongodb import MongoDBStore  # noqa: E402
from tests._support.servers import MongoServer, available  # noqa: E402

OURS = "fastmcp-sessions MongoDBStore"
PEER = "py-key-value-aio MongoDBStore"


class _Commands(monitoring.CommandListener):
    """Counts the commands every pymongo client sends (registered before any client exists)."""

    count = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        type(self).count += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def _count() -> int:
    return _Commands.count


async def bench_server(report: Report, kind: str, ops: int, rounds: int) -> list[tuple[str, str, str]]:
    from key_value.aio.stores.mongodb import MongoDBStore as PeerStore

    print(f"\n-- MongoDB stand-in: {kind}", file=sys.stderr)
    with MongoServer(kind=kind) as server:
        ours = MongoDBStore(f"{server.url}/?database=bench_ours")
        peer = PeerStore(url=server.url, db_name="bench_peer", coll_name="kv")
        group = Group(report, f"{kind}: ", ops, rounds, _count)
        keys = [f"b{i}" for i in range(BATCH)]
        values = [dict(VALUE, i=i) for i in range(BATCH)]
        batch_ops = max(ops // 25, 5)
        try:
            for name, store in ((OURS, ours), (PEER, peer)):
                group.contender(name, store)
            await group.run("put", put_op)
            # get reads keys written once; the keys above were overwritten many times, which
            # nx-27017 mishandles for the peer (see "get (overwritten keys)").
            for _, store in group.stores:
                await store.put_many(keys, values, collection="fresh")
            await group.run("get", lambda s: get_op(s, "fresh", BATCH))
            await group.run("get (overwritten keys)", lambda s: get_op(s, "bench", 1000))
            await run_batches(group, keys, values, batch_ops)
        finally:
            await close_all(ours, peer)
    return group.ratios(OURS, PEER)


async def run(args: argparse.Namespace) -> None:
    monitoring.register(_Commands())
    report = Report("mongodb")
    ratios: list[tuple[str, str, str]] = []
    for kind in ("nx", "mongoeco"):
        if not available(kind):
            print(f"\n-- {kind}: not installed here, skipped", file=sys.stderr)
            continue
        ratios += await bench_server(report, kind, args.ops, args.rounds)
    report.print_table(ratios)
    print("\nserver commands per call:")
    for r in report.results:
        if "calls" in r.extra:
            print(f"  {r.group:<32} {r.contender:<40} {r.extra['calls']}")
    failures = [r for r in report.results if r.extra.get("failed")]
    for r in failures:
        print(f"  FAILED {r.group} {r.contender}: {r.extra['failed']}")
    path = report.save(ratios, args.json)
    print(f"\nsaved {path}")


if __name__ == "__main__":
    main(run, __doc__.splitlines()[0], default_ops=500)
