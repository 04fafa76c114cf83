"""The Redis bus across OS processes: every update a publisher's ``flush()`` confirmed reaches a
listener once, in order, while the listener's connection is killed (``CLIENT KILL``) and,
on a Redis with AOF (``appendfsync always``) this module starts, while the server is
SIGKILLed and started again. On a Cluster, the same across killed connections."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest

from tests._support.bus_faults import confirmed_updates_arrive_once_in_order
from tests._support.servers import RedisCluster, RedisServer


@pytest.fixture(scope="module")
def durable_redis() -> Iterator[RedisServer]:
    """A redis-server whose acknowledged writes survive SIGKILL (AOF, fsync on every write)."""
    with RedisServer(extra_config=["appendonly yes", "appendfsync always"]) as server:
        yield server


def reader_ids(server: RedisServer) -> list[str]:
    """Ids of the connections blocked in XREAD (the listener's: only it reads)."""
    listing = server.command("CLIENT", "LIST")
    text = listing.decode() if isinstance(listing, bytes) else str(listing)
    rows = (dict(f.split("=", 1) for f in line.split() if "=" in f) for line in text.splitlines())
    return [row["id"] for row in rows if row.get("cmd") == "xread"]


def wait_for_reader(server: RedisServer) -> list[str]:
    """The listener's connections, once it reads again: two faults in a row would otherwise
    hit one gap, and the second would cut nothing."""
    deadline = time.monotonic() + 20
    while not (ids := reader_ids(server)):
        assert time.monotonic() < deadline, "the listener did not read again within 20 s"
        time.sleep(0.02)
    return ids


def kill_readers(servers: list[RedisServer]) -> None:
    """CLIENT KILL every connection blocked in XREAD, on whichever node it reads from."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        killed = 0
        for server in servers:
            for client_id in reader_ids(server):
                server.command("CLIENT", "KILL", "ID", client_id)
                killed += 1
        if killed:
            return
        time.sleep(0.02)  # between two reads, or still reconnecting: try again
    raise AssertionError("no listener connection to kill")


def kill_and_start(server: RedisServer) -> None:
    wait_for_reader(server)
    server.kill()
    time.sleep(1.0)  # publishing goes on against a dead server
    server.start()


def reconnects(stats: str) -> int:
    return int(stats.split("reconnects=")[1].split(",")[0].rstrip(")"))


def test_confirmed_updates_survive_killed_connections_and_a_sigkill_restart(
    durable_redis: RedisServer,
) -> None:
    faults = [lambda: kill_readers([durable_redis])] * 3 + [lambda: kill_and_start(durable_redis)] * 2
    confirmed, received, stats = confirmed_updates_arrive_once_in_order(
        durable_redis.url, "srv" + secrets.token_hex(3), 300, faults
    )
    assert len(confirmed) == 300
    assert received == confirmed
    assert reconnects(stats) >= 5, stats
    assert "missed=0" in stats


def test_confirmed_updates_survive_killed_connections_on_a_cluster(redis_cluster: RedisCluster) -> None:
    faults = [lambda: kill_readers(redis_cluster.servers)] * 4
    confirmed, received, stats = confirmed_updates_arrive_once_in_order(
        redis_cluster.url, "srv" + secrets.token_hex(3), 250, faults
    )
    assert len(confirmed) == 250
    assert received == confirmed
    assert reconnects(stats) >= 4, stats
