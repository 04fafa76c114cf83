"""Every bus (memory, Redis server, Redis Cluster, PostgreSQL, Unix sockets) on listener isolation,
overflow counting and scoping; the cross-process buses also on fan-out between bus
instances (each its own origin, as in two replicas), resilience to a dead backend and
resubscription after a Redis restart."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from mcp.server.subscriptions import ResourceUpdated, ServerEvent, ToolsListChanged

from fastmcp_sessions import open_store
from fastmcp_sessions.buses import Bus, MemoryBus, QueuedBus, bus_for_store
from fastmcp_sessions.buses.postgresql import PostgreSQLBus
from fastmcp_sessions.buses.redis import RedisBus
from fastmcp_sessions.buses.unix import UnixSocketBus
from fastmcp_sessions.errors import StoreOptionError
from fastmcp_sessions.stores.base import Store
from tests._support.servers import RedisServer, free_port

MakeBus = Callable[..., Bus]
BUSES = ["memory", "redis", "redis-cluster", "postgresql", "unix"]


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest.fixture(params=BUSES)
async def make_bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MakeBus]:
    """A factory of bus instances of one kind; instances of one name share a backend."""
    kind = request.param
    made: list[Bus] = []
    stores: list[Store] = []
    # Short: a Unix socket's path is limited to 107 bytes, and pytest's temp paths are long.
    base = Path(tempfile.mkdtemp(prefix="b", dir="/tmp"))
    schema = "b" + secrets.token_hex(6)

    def make(server_name: str = "srv", **options: Any) -> Bus:
        bus: Bus
        if kind == "memory":
            bus = MemoryBus(server_name=server_name, **options)
        elif kind == "unix":
            bus = UnixSocketBus(base / server_name, server_name=server_name, **options)
        elif kind == "postgresql":
            url = request.getfixturevalue("postgres_server").url
            store = open_store(f"{url}?schema={schema}")
            stores.append(store)
            bus = bus_for_store(store, server_name=server_name, **options)
            assert isinstance(bus, PostgreSQLBus)
        else:
            fixture = "redis_server" if kind == "redis" else "redis_cluster"
            store = open_store(request.getfixturevalue(fixture).url)
            stores.append(store)
            found = bus_for_store(store, server_name=server_name, **options)
            assert isinstance(found, RedisBus) and found.cluster == (kind == "redis-cluster")
            bus = found
        made.append(bus)
        return bus

    make.kind = kind  # type: ignore[attr-defined]
    yield make
    for bus in made:
        await bus.close()
    for store in stores:
        await store.close()
    shutil.rmtree(base, ignore_errors=True)


def collector() -> tuple[list[ServerEvent], Callable[[ServerEvent], None]]:
    got: list[ServerEvent] = []
    return got, got.append


async def ready(*buses: Bus) -> None:
    for bus in buses:
        assert await bus.ready(10.0), f"{bus!r} did not subscribe"


async def test_a_raising_or_slow_listener_affects_no_other_listener(make_bus: MakeBus) -> None:
    bus = make_bus()
    good, good_fn = collector()
    slow_done: list[float] = []
    good_times: list[float] = []

    def raising(event: ServerEvent) -> None:
        raise RuntimeError("listener bug")

    def slow(event: ServerEvent) -> None:
        time.sleep(0.02)
        slow_done.append(time.monotonic())

    bus.subscribe(raising)
    bus.subscribe(slow)
    bus.subscribe(lambda e: (good_fn(e), good_times.append(time.monotonic())))
    events = [ResourceUpdated(uri=f"res://{i}") for i in range(40)]
    for event in events:
        bus.publish_nowait(event)
    # Nothing is called inline: publishing returned before any listener ran.
    assert good == [] and slow_done == []
    await eventually(lambda: len(good) == 40 and len(slow_done) == 40)
    assert good == events
    assert bus.stats.listener_errors == 40
    # The good listener was served in slices between the slow one's, not after all of them.
    assert good_times[0] < slow_done[-1]


async def test_overflow_drops_for_that_listener_only_and_counts(make_bus: MakeBus) -> None:
    bus = make_bus(max_buffered_events=10)
    got, fn = collector()
    bus.subscribe(fn)
    for i in range(25):  # no await in between: the buffer fills before it can drain
        bus.publish_nowait(ResourceUpdated(uri=f"res://{i}"))
    await eventually(lambda: len(got) == 10)
    await asyncio.sleep(0.05)
    assert [e.uri for e in got if isinstance(e, ResourceUpdated)] == [f"res://{i}" for i in range(10)]
    assert bus.stats.dropped_overflow == 15
    await bus.publish(ToolsListChanged())  # drained: the listener takes events again
    await eventually(lambda: got[-1] == ToolsListChanged())


async def test_unsubscribe_is_idempotent_and_stops_delivery(make_bus: MakeBus) -> None:
    bus = make_bus()
    got, fn = collector()
    unsubscribe = bus.subscribe(fn)
    await bus.publish(ToolsListChanged())
    await eventually(lambda: len(got) == 1)
    unsubscribe()
    unsubscribe()
    await bus.publish(ToolsListChanged())
    await asyncio.sleep(0.1)
    assert len(got) == 1 and bus.listener_count == 0


async def test_events_cross_instances_of_one_server_name_only(make_bus: MakeBus) -> None:
    name = "s" + secrets.token_hex(4)
    publisher, same, other = make_bus(name), make_bus(name), make_bus(name + "x")
    mine, mine_fn = collector()
    same_got, same_fn = collector()
    other_got, other_fn = collector()
    publisher.subscribe(mine_fn)
    same.subscribe(same_fn)
    other.subscribe(other_fn)
    await ready(publisher, same, other)
    await publisher.publish(ResourceUpdated(uri="res://x"))
    await publisher.publish(ToolsListChanged())
    # The publisher's own listeners hear it once (not again when it comes back from the backend).
    await eventually(lambda: len(mine) == 2)
    if publisher.crosses_processes:
        await eventually(lambda: len(same_got) == 2)
        assert same_got == [ResourceUpdated(uri="res://x"), ToolsListChanged()]
        assert same.stats.received == 2
    else:
        assert not same.crosses_processes
    await asyncio.sleep(0.3)
    assert len(mine) == 2
    assert other_got == []  # another server's bus on the same backend hears nothing


async def test_wrong_events_are_refused_with_advice(make_bus: MakeBus) -> None:
    bus = make_bus()
    with pytest.raises(TypeError, match="ResourceUpdated"):
        await bus.publish("tools changed")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="uri"):
        await bus.publish(ResourceUpdated(uri="x" * 10_000))


BAD_OPTIONS: dict[str, list[tuple[str, object]]] = {
    "memory": [("max_buffered_events", 0), ("max_buffered_events", True)],
    "redis": [("max_outbox", 0), ("timeout", -1), ("health_interval", 0)],
    "redis-cluster": [("max_outbox", 1.5)],
    "postgresql": [
        ("poll_interval", 0),
        ("retain_events", 0),
        ("prune_interval", -1),
        ("retain_seconds", "1"),
    ],
    "unix": [("poll_interval", float("inf")), ("retain_events", -3), ("prune_interval", -0.5)],
}


async def test_a_bad_option_is_a_store_option_error_naming_it(make_bus: MakeBus) -> None:
    for option, value in BAD_OPTIONS[make_bus.kind]:  # type: ignore[attr-defined]
        with pytest.raises(StoreOptionError, match=f"^{option} must be ") as raised:
            make_bus(**{option: value})
        assert repr(value) in str(raised.value)
    with pytest.raises(StoreOptionError, match="server_name must be a non-empty str without '/'"):
        make_bus(server_name="a/b")


@pytest.mark.parametrize("kind", ["redis", "unix"])
async def test_foreign_messages_on_the_channel_are_ignored_and_counted(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    got, fn = collector()
    bus: Bus
    if kind == "redis":
        store = open_store(request.getfixturevalue("redis_server").url)
        bus = bus_for_store(store, server_name="s" + secrets.token_hex(4))
        assert isinstance(bus, RedisBus)
        bus.subscribe(fn)
        await ready(bus)
        await bus.client.xadd(bus.stream, {"e": b"not an event"})
    else:
        bus = UnixSocketBus(tmp_path / "bus", server_name="s")
        bus.subscribe(fn)
        await ready(bus)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as raw:
            for path in (tmp_path / "bus").glob("*.sock"):
                raw.sendto(b"{}", str(path))
    await eventually(lambda: bus.stats.malformed == 1)
    assert got == []
    await bus.close()
    if kind == "redis":
        await store.close()


async def test_unix_bus_delivers_a_burst_beyond_a_socket_queue_in_order(tmp_path: Path) -> None:
    # The listener's buffer holds the whole burst: what is measured here is the bus, not it.
    receiver = UnixSocketBus(tmp_path / "bus", server_name="s", max_buffered_events=100_000)
    got, fn = collector()
    receiver.subscribe(fn)
    await ready(receiver)
    publisher = UnixSocketBus(tmp_path / "bus", server_name="s", max_outbox=100_000)
    events = [ResourceUpdated(uri=f"res://{i}") for i in range(5000)]
    for event in events:  # far more than a socket queue holds, with no await in between
        publisher.publish_nowait(event)
    assert await publisher.flush(30)
    await eventually(lambda: len(got) == len(events), timeout=30)
    assert got == events
    assert publisher.stats.dropped_overflow == 0 and receiver.stats.duplicates == 0
    await publisher.close()
    await receiver.close()


async def test_unix_socket_of_a_dead_process_is_removed(tmp_path: Path) -> None:
    directory = tmp_path / "bus"
    directory.mkdir(mode=0o700)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(directory / "0123456789abcdef.sock"))
    dead.close()  # its process died: the file stays, nobody reads
    assert len(list(directory.glob("*.sock"))) == 1
    publisher = UnixSocketBus(directory, server_name="s")
    await publisher.publish(ToolsListChanged())
    assert await publisher.flush(10)
    assert list(directory.glob("*.sock")) == []
    await publisher.close()


async def test_redis_bus_with_redis_down_never_fails_the_publisher_and_bounds_its_outbox() -> None:
    from redis.asyncio import Redis

    client = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2, socket_timeout=0.2)
    bus = RedisBus(client, server_name="down", max_outbox=5, timeout=0.5)
    got, fn = collector()
    bus.subscribe(fn)
    for i in range(20):
        await bus.publish(ResourceUpdated(uri=f"res://{i}"))
    await bus.publish(ResourceUpdated(uri="res://0"))  # still queued: kept once
    # Local listeners still hear everything; the backend's share waits, bounded.
    await eventually(lambda: len(got) == 21)
    assert bus.pending == 5
    assert bus.stats.dropped_overflow == 15
    await eventually(lambda: bus.stats.publish_failures >= 1)
    assert not await bus.ready(0.3)
    bus.timeout = 0.2  # close() waits at most this for the outbox
    await bus.close()
    await client.aclose()


async def test_redis_bus_reads_on_after_a_restart_and_delivers_queued_events() -> None:
    with RedisServer() as server:
        receiver_store, publisher_store = (
            open_store(server.url, timeout=1.0),
            open_store(server.url, timeout=1.0),
        )
        receiver = bus_for_store(receiver_store, server_name="r")
        publisher = bus_for_store(publisher_store, server_name="r")
        assert isinstance(receiver, QueuedBus) and isinstance(publisher, QueuedBus)
        got, fn = collector()
        receiver.subscribe(fn)
        await ready(receiver)
        server.kill()
        await eventually(lambda: not receiver.subscribed)
        await publisher.publish(ResourceUpdated(uri="res://during-outage"))
        await eventually(lambda: publisher.stats.publish_failures >= 1)
        server.start()  # same port, empty server
        await ready(receiver)
        assert receiver.stats.reconnects >= 1
        await publisher.publish(ResourceUpdated(uri="res://after"))
        await eventually(lambda: ResourceUpdated(uri="res://after") in got)
        assert await publisher.flush(10.0)
        await eventually(lambda: ResourceUpdated(uri="res://during-outage") in got)
        # Nothing was lost (the event waited in the publisher's outbox), so nothing is announced.
        assert got == [ResourceUpdated(uri="res://during-outage"), ResourceUpdated(uri="res://after")]
        assert receiver.stats.missed == 0
        for closing in (receiver, publisher):
            await closing.close()
        await receiver_store.close()
        await publisher_store.close()
