"""What telemetry costs the memory store's get and put, side by side in one run.

    python -m benchmarks.bench_telemetry [--ops 20000] [--rounds 15]

Contenders take turns round by round; each round is timed in thread CPU time and the
best round counts (see ``compare``):
- uninstrumented: the memory store's get/put fast paths exactly as they are, minus the
  one telemetry check (the baseline);
- ours, no SDK: ``MemoryStore`` with only opentelemetry-api present and no provider
  set (the state of every FastMCP server that has not installed the SDK);
- ours, SDK: the same after an SDK tracer provider (in-memory exporter, simple span
  processor) and meter provider (in-memory reader) are configured: a span and a
  duration sample per call.

The goal is "no SDK" within 3% of uninstrumented (a ratio of 0.97 or more).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from typing import Any, SupportsFloat

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from benchmarks._harness import Report, Result, main
from fastmcp_sessions import MemoryStore, telemetry
from fastmcp_sessions._values import check_collection, check_key, check_ttl, clone, copy_value
from fastmcp_sessions.stores.base import Value

VALUE: dict[str, Any] = {
    "access_token": "eyJhbGciOiJIUzI1NiJ9.payload.signature",
    "token_type": "Bearer",
    "expires_in": 3600,
    "scope": "read write",
    "refresh": None,
}


class UninstrumentedMemoryStore(MemoryStore):
    """``MemoryStore`` whose get/put are its fast paths without the telemetry check."""

    instrumented_fast_paths = ("get", "put")

    async def get(self, key: str, *, collection: str | None = None) -> Value | None:
        entry = self._live(collection, key)
        return None if entry is None else clone(entry[0])

    async def put(
        self,
        key: str,
        value: Mapping[str, Any],
        *,
        collection: str | None = None,
        ttl: SupportsFloat | None = None,
    ) -> None:
        if self._closed:
            self._raise_closed()
        c = self.default_collection if collection is None else check_collection(collection)
        check_key(key)
        self._store(c, key, copy_value(value), check_ttl(ttl))


async def compare(
    report: Report, group: str, contenders: list[tuple[str, Any]], make_op: Any, ops: int, rounds: int
) -> None:
    """Time ``ops`` calls per contender per round, contenders taking turns every round.

    Each round is timed as a whole in this thread's CPU time, and a contender's result is
    its best round: on a shared machine, other processes' load stretches wall-clock time
    and some rounds, never the work itself, so the fastest round is the cost of the code.
    """
    calls = [(name, make_op(store)) for name, store in contenders]
    for _, op in calls:  # warm up
        for i in range(ops):
            await op(i)
    times: dict[str, list[float]] = {name: [] for name, _ in calls}
    for _ in range(rounds):
        for name, op in calls:
            began = time.thread_time()
            for i in range(ops):
                await op(i)
            times[name].append(time.thread_time() - began)
    for name, _ in calls:
        best = min(times[name])
        per_round = [ops / t for t in times[name] if t > 0]
        report.results.append(
            Result(group, name, ops / best, ops, per_round, {"clock": "thread CPU, best round"})
        )
        print(f"  {group:<28} {name:<28} {ops / best:>12,.0f} ops/s", file=sys.stderr)


async def run_pair(
    report: Report, prefix: str, contenders: list[tuple[str, Any]], ops: int, rounds: int
) -> None:
    keys = [f"key-{i}" for i in range(ops)]

    def put(store: Any) -> Any:
        async def op(i: int) -> None:
            await store.put(keys[i % ops], VALUE, collection="bench")

        return op

    def get(store: Any) -> Any:
        async def op(i: int) -> None:
            await store.get(keys[i % ops], collection="bench")

        return op

    await compare(report, f"{prefix} put", contenders, put, ops, rounds)
    await compare(report, f"{prefix} get", contenders, get, ops, rounds)


async def run(args: argparse.Namespace) -> None:
    report = Report("telemetry")
    baseline = "uninstrumented"
    if telemetry.active():
        raise SystemExit("a global OpenTelemetry provider is already set here; run this in a clean process")
    rounds = max(args.rounds, 15)

    plain = [(baseline, UninstrumentedMemoryStore()), ("ours, no SDK", MemoryStore())]
    await run_pair(report, "memory, no SDK", plain, args.ops, rounds)

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    telemetry.configure(tracer_provider=tracer_provider, meter_provider=meter_provider)
    sdk = [(baseline, UninstrumentedMemoryStore()), ("ours, SDK", MemoryStore())]
    await run_pair(report, "memory, SDK", sdk, args.ops, max(rounds // 3, 3))
    spans = len(exporter.get_finished_spans())
    telemetry.configure()

    ratios = [
        ("memory, no SDK put", "ours, no SDK", baseline),
        ("memory, no SDK get", "ours, no SDK", baseline),
        ("memory, SDK put", "ours, SDK", baseline),
        ("memory, SDK get", "ours, SDK", baseline),
    ]
    report.print_table(ratios)
    print("\nthe same ratios to three places:")
    for group, contender, base in ratios:
        print(f"  {group:<28} {contender} / {base} = {report.ratio(group, contender, base):.3f}")
    print(f"\nspans exported with the SDK: {spans:,}")
    print(f"JSON: {report.save(ratios, args.json)}")


if __name__ == "__main__":
    main(run, __doc__ or "", default_ops=20000)
