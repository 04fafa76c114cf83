"""DynamoDBStore side by side with py-key-value-aio's DynamoDBStore, on the same endpoint.

Starts Amazon's DynamoDB Local and moto_server on loopback ports (tests/_support/servers.py), runs
both contenders in this one process against each, interleaved, and prints ratios:

    .venv/bin/python benchmarks/bench_dynamodb.py [--ops 300] [--rounds 5]

Groups: single put and get, then get_many / put_many / delete_many of 100 keys. Each
result also records the HTTP requests one call takes (counted in aiobotocore's
endpoint, which both contenders use). delete_many deletes 100 keys that exist: they are
put back, untimed, before each call. Our reads are strongly consistent (the peer's are
eventually consistent, which costs half the read capacity on AWS; the emulators do not
care). Results go to benchmarks/results/dynamodb.json; compare the ratios.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiobotocore.endpoint import AioEndpoint  # noqa: E402

from benchmarks._batch_ops import BATCH, VALUE, close_all, get_op, put_op, run_batches  # noqa: E402
from benchmarks._harness import Group, Report, main  # noqa: E402
from fastmcp_sessions.stores.dynamodb import DynamoDBStore  # noqa: E402
from tests._support.servers import DynamoDBServer, available  # noqa: E402

OURS = "fastmcp-sessions DynamoDBStore"
PEER = "py-key-value-aio DynamoDBStore"
REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


class _Requests:
    """Counts the HTTP requests every aiobotocore client sends."""

    count = 0

    @classmethod
    def install(cls) -> None:
        original = AioEndpoint._send

        async def counting(self: AioEndpoint, request: Any) -> Any:
            cls.count += 1
            return await original(self, request)

        AioEndpoint._send = counting  # type: ignore[method-assign]


def _count() -> int:
    return _Requests.count


async def bench_server(report: Report, kind: str, ops: int, rounds: int) -> list[tuple[str, str, str]]:
    from key_value.aio.stores.dynamodb import DynamoDBStore as PeerStore

    print(f"\n-- DynamoDB endpoint: {kind}", file=sys.stderr)
    with DynamoDBServer(kind=kind) as server:
        endpoint = server.endpoint_url
        ours = DynamoDBStore(
            "bench_ours", region=REGION, endpoint_url=endpoint, create_table=True, **CREDENTIALS
        )
        peer = PeerStore(table_name="bench_peer", region_name=REGION, endpoint_url=endpoint, **CREDENTIALS)
        group = Group(report, f"{kind}: ", ops, rounds, _count)
        keys = [f"b{i}" for i in range(BATCH)]
        values = [dict(VALUE, i=i) for i in range(BATCH)]
        batch_ops = max(ops // 15, 5)
        try:
            for name, store in ((OURS, ours), (PEER, peer)):
                group.contender(name, store)
                for i in range(200):  # untimed: let the server (a JVM for Local) warm up
                    await store.put(f"w{i}", VALUE, collection="warm-up")
                    await store.get(f"w{i}", collection="warm-up")
            await group.run("put", put_op)
            await group.run("get", lambda s: get_op(s, "bench", 1000))
            await run_batches(group, keys, values, batch_ops)
        finally:
            await close_all(ours, peer)
    return group.ratios(OURS, PEER)


async def run(args: argparse.Namespace) -> None:
    _Requests.install()
    report = Report("dynamodb")
    ratios: list[tuple[str, str, str]] = []
    for kind in ("local", "moto"):
        if not available("dynamodb-local" if kind == "local" else "moto"):
            print(f"\n-- {kind}: not installed here, skipped", file=sys.stderr)
            continue
        ratios += await bench_server(report, kind, args.ops, args.rounds)
    report.print_table(ratios)
    print("\nHTTP requests per call:")
    for r in report.results:
        if "calls" in r.extra:
            print(f"  {r.group:<32} {r.contender:<40} {r.extra['calls']}")
    for r in report.results:
        if r.extra.get("failed"):
            print(f"  FAILED {r.group} {r.contender}: {r.extra['failed']}")
    path = report.save(ratios, args.json)
    print(f"\nsaved {path}")


if __name__ == "__main__":
    main(run, __doc__.splitlines()[0], default_ops=300)
