"""What telemetry costs the memory store's get and put, side by side in one run.

    python -m benchmarks.bench_telemetry [--ops 2000] [--rounds 9]

Contenders, interleaved in short slices (``Group``) so that machine load hits each alike:
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
from collections.abc import Mapping
from typing import Any, SupportsFloat

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from benchmarks._harness import Group, Report, main
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


async def run_group(group: Group, ops: int) -> None:
    keys = [f"key-{i}" for i in range(ops)]

    def put(store: Any) -> Any:
        async def op(i: int) -> None:
            await store.put(keys[i % ops], VALUE, collection="bench")

        return op

    def get(store: Any) -> Any:
        async def op(i: int) -> None:
            await store.get(keys[i % ops], collection="bench")

        return op

    await group.run("put", put)
    await group.run("get", get)


async def run(args: argparse.Namespace) -> None:
    report = Report("telemetry")
    baseline = "uninstrumented"
    if telemetry.active():
        raise SystemExit("a global OpenTelemetry provider is already set here; run this in a clean process")

    off = Group(report, "memory no SDK ", args.ops, args.rounds, lambda: 0)
    off.contender(baseline, UninstrumentedMemoryStore())
    off.contender("ours, no SDK", MemoryStore())
    await run_group(off, args.ops)

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    telemetry.configure(tracer_provider=tracer_provider, meter_provider=meter_provider)
    on = Group(report, "memory SDK ", args.ops, args.rounds, lambda: 0)
    on.contender(baseline, UninstrumentedMemoryStore())
    on.contender("ours, SDK", MemoryStore())
    await run_group(on, args.ops)
    spans = len(exporter.get_finished_spans())
    telemetry.configure()

    ratios = off.ratios("ours, no SDK", baseline) + on.ratios("ours, SDK", baseline)
    report.print_table(ratios)
    print(f"\nspans exported with the SDK: {spans:,}")
    print(f"JSON: {report.save(ratios, args.json)}")


if __name__ == "__main__":
    main(run, __doc__ or "", default_ops=2000)
