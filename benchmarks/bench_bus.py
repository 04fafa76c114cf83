"""Change-notification buses: fan-out latency and events per second across processes, beside
the in-memory buses in one process.

Starts its own redis-server on a free loopback port (tests/_support/servers.py). Contenders:

  * mcp InMemorySubscriptionBus, one process (the SDK's default)
  * fastmcp-sessions MemoryBus, one process
  * fastmcp-sessions RedisBus, publisher and listener in two processes
  * fastmcp-sessions UnixSocketBus, publisher and listener in two processes

    .venv/bin/python benchmarks/bench_bus.py [--events 500] [--burst 20000]

Latency: ``--events`` events paced 2 ms apart; each carries its publish time
(``time.monotonic_ns``, one clock for every process on Linux) and the listener records
arrival minus publish. Throughput: ``--burst`` distinct events published back to back;
events per second from the first publish to the listener's last arrival. Prints p50/p99
and ratios against MemoryBus, and checks the 1 s cross-replica target on p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mcp.server.subscriptions import InMemorySubscriptionBus, ResourceUpdated, ServerEvent  # noqa: E402

from fastmcp_sessions.buses import Bus, MemoryBus  # noqa: E402
from fastmcp_sessions.buses.redis import RedisBus  # noqa: E402
from fastmcp_sessions.buses.unix import UnixSocketBus  # noqa: E402

TARGET_P99_MS = 1000.0
END = "bench://end"
PACE = 0.002


def make_bus(kind: str, where: str, capacity: int) -> tuple[Bus, Any]:
    if kind == "redis":
        from redis.asyncio import Redis

        client = Redis.from_url(where)
        return RedisBus(
            client, server_name="bench", max_outbox=capacity, max_buffered_events=capacity
        ), client
    return UnixSocketBus(where, server_name="bench", max_buffered_events=capacity), None


class Collector:
    """Arrival minus publish time of every event; ``done`` once the end marker arrives."""

    def __init__(self) -> None:
        self.latencies: list[int] = []
        self.last_ns = 0
        self.done = asyncio.Event()

    def __call__(self, event: ServerEvent) -> None:
        now = time.monotonic_ns()
        if not isinstance(event, ResourceUpdated):
            return
        if event.uri == END:
            self.done.set()
            return
        self.latencies.append(now - int(event.uri.rsplit("/", 1)[1]))
        self.last_ns = now


async def child(kind: str, where: str, capacity: int) -> None:
    """The listening process: prints READY, then its measurements as JSON at the end marker."""
    bus, client = make_bus(kind, where, capacity)
    collector = Collector()
    bus.subscribe(collector)
    assert await bus.ready(10.0)
    print("READY", flush=True)
    await asyncio.wait_for(collector.done.wait(), 600)
    print(json.dumps({"lat": collector.latencies, "last_ns": collector.last_ns, "stats": vars(bus.stats)}))
    await bus.close()
    if client is not None:
        await client.aclose()


async def publish_paced(bus: Any, events: int) -> None:
    for i in range(events):
        await bus.publish(ResourceUpdated(uri=f"bench://{i}/{time.monotonic_ns()}"))
        await asyncio.sleep(PACE)


async def publish_burst(bus: Any, events: int) -> int:
    started = time.monotonic_ns()
    for i in range(events):
        await bus.publish(ResourceUpdated(uri=f"bench://{i}/{time.monotonic_ns()}"))
    return started


async def in_process(make: Callable[[], Any], events: int, burst: int) -> dict[str, Any]:
    bus = make()
    collector = Collector()
    bus.subscribe(collector)
    await publish_paced(bus, events)
    await bus.publish(ResourceUpdated(uri=END))
    await collector.done.wait()
    latencies = collector.latencies
    collector = Collector()
    bus = make()
    bus.subscribe(collector)
    started = await publish_burst(bus, burst)
    await bus.publish(ResourceUpdated(uri=END))
    await collector.done.wait()
    received = len(collector.latencies)
    return {"lat": latencies, "eps": received / ((collector.last_ns - started) / 1e9), "received": received}


async def across(kind: str, where: str, events: int, burst: int) -> dict[str, Any]:
    capacity = max(burst, 1024) + 10

    async def phase(publish: Callable[[Any], Any]) -> tuple[dict[str, Any], Any]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--child",
            kind,
            where,
            str(capacity),
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 120)
        assert line.strip() == b"READY", line
        bus, client = make_bus(kind, where, capacity)
        started = await publish(bus)
        if isinstance(bus, RedisBus):
            await bus.flush(60.0)
        await bus.publish(ResourceUpdated(uri=END))
        if isinstance(bus, RedisBus):
            await bus.flush(60.0)
        out, _ = await asyncio.wait_for(proc.communicate(), 600)
        dropped = bus.stats.dropped_overflow
        await bus.close()
        if client is not None:
            await client.aclose()
        measured = json.loads(out.decode().strip().splitlines()[-1])
        measured["stats"]["dropped_overflow"] += dropped  # the publisher's drops, with the listener's
        return measured, started

    paced, _ = await phase(lambda bus: publish_paced(bus, events))
    burst_result, started = await phase(lambda bus: publish_burst(bus, burst))
    received = len(burst_result["lat"])
    return {
        "lat": paced["lat"],
        "eps": received / ((burst_result["last_ns"] - started) / 1e9),
        "received": received,
        "dropped": burst_result["stats"]["dropped_overflow"],
    }


def pct(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


async def run(args: argparse.Namespace) -> None:
    from tests._support.servers import RedisServer

    results: dict[str, dict[str, Any]] = {}
    results["mcp InMemorySubscriptionBus (1 process)"] = await in_process(
        InMemorySubscriptionBus, args.events, args.burst
    )
    results["MemoryBus (1 process)"] = await in_process(
        lambda: MemoryBus(server_name="bench", max_buffered_events=args.burst + 10), args.events, args.burst
    )
    with RedisServer() as redis:
        results["RedisBus (2 processes)"] = await across("redis", redis.url, args.events, args.burst)
    with tempfile.TemporaryDirectory(prefix="bench-bus-") as directory:
        results["UnixSocketBus (2 processes)"] = await across(
            "unix", os.path.join(directory, "b"), args.events, args.burst
        )

    base = results["MemoryBus (1 process)"]
    base_p50, base_eps = pct(base["lat"], 0.5), base["eps"]
    print(f"\n{'contender':<42} {'p50 ms':>9} {'p99 ms':>9} {'events/s':>11} {'p50/Mem':>9} {'eps/Mem':>8}")
    for name, r in results.items():
        p50, p99 = pct(r["lat"], 0.5), pct(r["lat"], 0.99)
        print(
            f"{name:<42} {p50:>9.3f} {p99:>9.3f} {r['eps']:>11,.0f} {p50 / base_p50:>8.1f}x "
            f"{r['eps'] / base_eps:>7.2f}x"
        )
        if r["received"] != args.burst:
            print(f"  ({r['received']} of {args.burst} burst events arrived; dropped {r.get('dropped', 0)})")
    print("\ntarget: cross-replica notification within 1 s (p99):")
    for name, r in results.items():
        if "2 processes" in name:
            p99 = pct(r["lat"], 0.99)
            print(f"  {name:<40} p99 {p99:.1f} ms -> {'ok' if p99 < TARGET_P99_MS else 'MISSED'}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        asyncio.run(child(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--events", type=int, default=500, help="paced events for latency")
        parser.add_argument("--burst", type=int, default=20000, help="back-to-back events for events/s")
        asyncio.run(run(parser.parse_args()))
