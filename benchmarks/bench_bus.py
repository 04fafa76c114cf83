"""Change-notification buses: publish-to-delivery latency at a paced rate and events per second
in a burst, across processes, beside the in-memory buses in one process.

Starts its own servers on free loopback ports (tests/_support/servers*.py): a redis-server, a
3-node Redis Cluster (skipped with a note when it cannot start) and a PostgreSQL cluster.
Contenders:

  * mcp InMemorySubscriptionBus, one process (the SDK's default)
  * fastmcp-sessions MemoryBus, one process
  * RedisBus on a stream (durable, the default), publisher and listener in two processes
  * RedisBus on pub/sub (``durable=False``), two processes
  * RedisBus on a stream on a Redis Cluster, two processes
  * PostgreSQLBus (events table + payload-free NOTIFY), two processes
  * UnixSocketBus (the disk store's: SQLite journal, datagram wake-ups), two processes

    .venv/bin/python benchmarks/bench_bus.py [--rate 500] [--seconds 5] [--burst 20000]

Latency: ``rate * seconds`` events published on a fixed schedule (event i at i / rate s);
each carries its publish time (``time.monotonic_ns``, one clock for every process on Linux)
and the listener records arrival minus publish. Throughput: ``--burst`` distinct events
published back to back; events per second from the first publish to the last arrival.
Prints p50/p99, ratios against MemoryBus, the cost of durability (durable Redis against
pub/sub Redis) and whether p99 stays under 50 ms at the paced rate, per bus.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mcp.server.subscriptions import (  # noqa: E402
    InMemorySubscriptionBus,
    ResourceUpdated,
    ServerEvent,
    ToolsListChanged,
)

from fastmcp_sessions.buses import Bus, MemoryBus, QueuedBus, bus_for_url  # noqa: E402
from fastmcp_sessions.buses.unix import UnixSocketBus  # noqa: E402

TARGET_P99_MS = 50.0
END = "bench://end"
DURABLE = "RedisBus stream (durable)"
PUBSUB = "RedisBus pub/sub (durable=False)"


def make_bus(spec: dict[str, Any], capacity: int) -> Bus:
    """The bus a process of one contender uses: ``spec`` is ``{"kind", "where", "options"}``."""
    if spec["kind"] == "unix":
        # The journal keeps the whole burst, so a listener that falls behind still reads every event.
        return UnixSocketBus(
            spec["where"],
            server_name=spec["name"],
            max_outbox=capacity,
            max_buffered_events=capacity,
            retain_events=capacity,
        )
    return bus_for_url(
        spec["where"],
        server_name=spec["name"],
        max_outbox=capacity,
        max_buffered_events=capacity,
        **spec["options"],
    )


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


async def child(spec: dict[str, Any], capacity: int) -> None:
    """The listening process: prints READY, then its measurements as JSON at the end marker."""
    bus = make_bus(spec, capacity)
    collector = Collector()
    bus.subscribe(collector)
    assert await bus.ready(30.0), f"{bus!r} did not subscribe"
    print("READY", flush=True)
    await asyncio.wait_for(collector.done.wait(), 600)
    print(json.dumps({"lat": collector.latencies, "last_ns": collector.last_ns, "stats": vars(bus.stats)}))
    await bus.close()


async def publish_paced(bus: Any, rate: float, count: int) -> float:
    """Event i at ``i / rate`` seconds after the start (no drift); the rate achieved."""
    started = time.monotonic()
    for i in range(count):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await bus.publish(ResourceUpdated(uri=f"bench://{i}/{time.monotonic_ns()}"))
    return count / max(time.monotonic() - started, 1e-9)


async def publish_burst(bus: Any, events: int) -> int:
    started = time.monotonic_ns()
    for i in range(events):
        await bus.publish(ResourceUpdated(uri=f"bench://{i}/{time.monotonic_ns()}"))
    return started


async def in_process(make: Callable[[], Any], args: argparse.Namespace) -> dict[str, Any]:
    bus = make()
    collector = Collector()
    bus.subscribe(collector)
    achieved = await publish_paced(bus, args.rate, int(args.rate * args.seconds))
    await bus.publish(ResourceUpdated(uri=END))
    await collector.done.wait()
    latencies = collector.latencies
    collector = Collector()
    bus = make()
    bus.subscribe(collector)
    started = await publish_burst(bus, args.burst)
    await bus.publish(ResourceUpdated(uri=END))
    await collector.done.wait()
    received = len(collector.latencies)
    return {
        "lat": latencies,
        "rate": achieved,
        "eps": received / ((collector.last_ns - started) / 1e9),
        "received": received,
        "dropped": 0,
    }


async def across(spec: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    capacity = max(args.burst, 1024) + 10

    async def phase(publish: Callable[[Any], Any]) -> tuple[dict[str, Any], Any]:
        phase_spec = {**spec, "name": "bench-" + secrets.token_hex(4)}  # no phase reads another's events
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--child", json.dumps(phase_spec), str(capacity), stdout=subprocess.PIPE
        )
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 120)
        assert line.strip() == b"READY", line
        bus = make_bus(phase_spec, capacity)
        if isinstance(bus, QueuedBus):  # connections open before the clock starts (listeners ignore it)
            await bus.publish(ToolsListChanged())
            await bus.flush(30.0)
        outcome = await publish(bus)
        if isinstance(bus, QueuedBus):
            await bus.flush(120.0)
        await bus.publish(ResourceUpdated(uri=END))
        if isinstance(bus, QueuedBus):
            await bus.flush(60.0)
        out, _ = await asyncio.wait_for(proc.communicate(), 600)
        dropped = bus.stats.dropped_overflow
        await bus.close()
        measured = json.loads(out.decode().strip().splitlines()[-1])
        measured["stats"]["dropped_overflow"] += dropped  # the publisher's drops, with the listener's
        return measured, outcome

    paced, achieved = await phase(lambda bus: publish_paced(bus, args.rate, int(args.rate * args.seconds)))
    burst_result, started = await phase(lambda bus: publish_burst(bus, args.burst))
    received = len(burst_result["lat"])
    return {
        "lat": paced["lat"],
        "rate": achieved,
        "sent": int(args.rate * args.seconds),
        "eps": received / ((burst_result["last_ns"] - started) / 1e9),
        "received": received,
        "dropped": burst_result["stats"]["dropped_overflow"],
    }


def pct(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


@contextmanager
def redis_cluster() -> Iterator[str | None]:
    """A 3-node Redis Cluster's URL, or ``None`` (with a note) when one cannot start here."""
    from tests._support.servers import RedisCluster

    try:
        cluster = RedisCluster().start()
    except Exception as error:
        print(f"(no Redis Cluster: {type(error).__name__}: {error})", file=sys.stderr)
        yield None
        return
    try:
        yield cluster.url
    finally:
        cluster.stop()


async def run(args: argparse.Namespace) -> None:
    from tests._support.servers import RedisServer
    from tests._support.servers_postgresql import PostgresServer

    results: dict[str, dict[str, Any]] = {}
    results["mcp InMemorySubscriptionBus (1 process)"] = await in_process(InMemorySubscriptionBus, args)
    results["MemoryBus (1 process)"] = await in_process(
        lambda: MemoryBus(server_name="bench", max_buffered_events=args.burst + 10), args
    )
    with ExitStack() as servers:
        redis = servers.enter_context(RedisServer())
        cluster = servers.enter_context(redis_cluster()) if args.cluster else None
        postgres = servers.enter_context(PostgresServer())
        directory = servers.enter_context(tempfile.TemporaryDirectory(prefix="bench-bus-"))
        contenders: list[tuple[str, dict[str, Any]]] = [
            (DURABLE, {"kind": "redis", "where": redis.url, "options": {}}),
            (PUBSUB, {"kind": "redis", "where": redis.url, "options": {"durable": False}}),
        ]
        if cluster is not None:
            contenders.append(
                ("RedisBus stream on a Cluster", {"kind": "redis", "where": cluster, "options": {}})
            )
        contenders += [
            ("PostgreSQLBus", {"kind": "postgresql", "where": postgres.url, "options": {}}),
            ("UnixSocketBus", {"kind": "unix", "where": os.path.join(directory, "b"), "options": {}}),
        ]
        for name, spec in contenders:
            print(f"measuring {name} ...", file=sys.stderr, flush=True)
            results[f"{name} (2 processes)"] = await across(spec, args)

    base = results["MemoryBus (1 process)"]
    base_p50, base_eps = pct(base["lat"], 0.5), base["eps"]
    paced = int(args.rate * args.seconds)
    print(
        f"\nlatency: {paced} events at {args.rate:g}/s; events/s: {args.burst} back to back\n"
        f"{'contender':<48} {'p50 ms':>8} {'p99 ms':>8} {'events/s':>10} {'p50/Mem':>8} {'eps/Mem':>8}"
    )
    for name, r in results.items():
        p50, p99 = pct(r["lat"], 0.5), pct(r["lat"], 0.99)
        print(
            f"{name:<48} {p50:>8.3f} {p99:>8.3f} {r['eps']:>10,.0f} {p50 / base_p50:>7.1f}x "
            f"{r['eps'] / base_eps:>7.2f}x"
        )
        if r["received"] != args.burst:
            print(f"  ({r['received']} of {args.burst} burst events arrived; dropped {r['dropped']})")
        if len(r["lat"]) != paced:
            print(f"  ({len(r['lat'])} of {paced} paced events arrived)")

    durable, pubsub = results[f"{DURABLE} (2 processes)"], results[f"{PUBSUB} (2 processes)"]
    print("\ncost of durability (Redis stream against Redis pub/sub, same server):")
    for q, label in ((0.5, "p50"), (0.99, "p99")):
        print(f"  {label} latency  x{pct(durable['lat'], q) / pct(pubsub['lat'], q):.2f}")
    print(f"  burst events/s x{durable['eps'] / pubsub['eps']:.2f}")

    print(f"\ngoal: p99 < {TARGET_P99_MS:g} ms at {args.rate:g} events/s, across processes:")
    for name, r in results.items():
        if "2 processes" in name:
            p99 = pct(r["lat"], 0.99)
            verdict = "holds" if p99 < TARGET_P99_MS and len(r["lat"]) == paced else "MISSED"
            print(f"  {name:<46} p99 {p99:6.2f} ms at {r['rate']:.0f}/s -> {verdict}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        asyncio.run(child(json.loads(sys.argv[2]), int(sys.argv[3])))
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--rate", type=float, default=500.0, help="paced events per second")
        parser.add_argument("--seconds", type=float, default=5.0, help="how long the paced phase lasts")
        parser.add_argument("--burst", type=int, default=20000, help="back-to-back events for events/s")
        parser.add_argument("--no-cluster", dest="cluster", action="store_false", help="skip Redis Cluster")
        asyncio.run(run(parser.parse_args()))
