"""The PostgreSQL bus across OS processes, on a PostgreSQL this module starts: every update a
publisher's ``flush()`` confirmed reaches a listener once, in order, while the listener's
connections are terminated (``pg_terminate_backend``) and the server is stopped with
``-m immediate`` and started again; large events cross; a listener away longer than the
bus keeps events gets the list-changed events, counted."""

from __future__ import annotations

import asyncio
import secrets
import signal
import time
from collections.abc import Iterator

import pytest
from mcp.server.subscriptions import ResourceUpdated, ServerEvent

from fastmcp_sessions import open_store
from fastmcp_sessions.buses import bus_for_store
from fastmcp_sessions.buses.base import MAX_URI_LENGTH
from fastmcp_sessions.buses.postgresql import PostgreSQLBus
from tests._support.bus_faults import Worker, confirmed_updates_arrive_once_in_order
from tests._support.servers_postgresql import PostgresServer

LISTENER_APP = "bus-listener"


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    """A PostgreSQL of this module's own: the test crashes and restarts it."""
    with PostgresServer() as server:
        yield server


def terminate_listener(pg: PostgresServer) -> None:
    """Cut the listener's connection, once it has one again: two faults in a row would
    otherwise hit one gap, and the second would cut nothing."""
    listener_connected(pg)
    killed = pg.psql(
        f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '{LISTENER_APP}'"
    )
    assert int(killed) >= 1, "the listener had no connection to terminate"


def listener_connected(pg: PostgresServer) -> None:
    deadline = time.monotonic() + 20
    while (
        int(pg.psql(f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{LISTENER_APP}'")) < 1
    ):
        assert time.monotonic() < deadline, "the listener did not connect again within 20 s"
        time.sleep(0.05)


def crash_and_start(pg: PostgresServer) -> None:
    listener_connected(pg)  # a crash during the previous gap would cut nothing new
    pg.crash()
    time.sleep(1.0)  # publishing goes on against a dead server
    pg.start()


def test_confirmed_updates_survive_terminated_connections_and_a_crash_restart(pg: PostgresServer) -> None:
    url = f"{pg.url}?schema=faults&timeout=2"
    faults = (
        [lambda: terminate_listener(pg)] * 3
        + [lambda: crash_and_start(pg)]
        + [lambda: terminate_listener(pg)]
    )
    confirmed, received, stats = confirmed_updates_arrive_once_in_order(
        url, "srv" + secrets.token_hex(3), 300, faults, listener_url=f"{url}&application_name={LISTENER_APP}"
    )
    assert len(confirmed) == 300
    assert received == confirmed
    assert reconnects(stats) >= 5, stats  # every fault cut the listener off


def reconnects(stats: str) -> int:
    return int(stats.split("reconnects=")[1].split(",")[0].rstrip(")"))


async def test_events_of_the_longest_accepted_uri_cross(pg: PostgresServer) -> None:
    store = open_store(f"{pg.url}?schema=large")
    publisher, listener = (bus_for_store(store, server_name="big") for _ in range(2))
    assert isinstance(listener, PostgreSQLBus) and isinstance(publisher, PostgreSQLBus)
    got: list[ServerEvent] = []
    listener.subscribe(got.append)
    assert await listener.ready(10)
    uri = "test://" + "x" * (MAX_URI_LENGTH - len("test://"))
    await publisher.publish(ResourceUpdated(uri=uri))
    assert await publisher.flush(10)
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert got == [ResourceUpdated(uri=uri)]
    for bus in (publisher, listener):
        await bus.close()
    await store.close()


async def test_a_listener_away_longer_than_retained_gets_list_changed_and_counts_it(
    pg: PostgresServer,
) -> None:
    url = f"{pg.url}?schema=trim"
    listener = Worker("listen", url, "t")
    store = open_store(url)
    try:
        listener.wait_for(lambda w: bool(w.values("READY")), 60, "the listener's READY")
        listener.proc.send_signal(signal.SIGSTOP)  # away: it reads nothing until SIGCONT
        publisher = bus_for_store(store, server_name="t", retain_events=5, prune_interval=0)
        for i in range(20):
            await publisher.publish(ResourceUpdated(uri=f"test://{i}"))
            assert await publisher.flush(10)
        await publisher.close()
        listener.proc.send_signal(signal.SIGCONT)
        listener.wait_for(lambda w: len(w.values("R")) >= 4, 30, "the retained updates")
        time.sleep(0.3)
    finally:
        listener.stop()
        await store.close()
    assert listener.values("L") == ["ToolsListChanged", "PromptsListChanged", "ResourcesListChanged"]
    # Pruned after each write to the newest 5: the listener gets the newest ones only.
    received = listener.values("R")
    assert received == [f"test://{i}" for i in range(20 - len(received), 20)] and len(received) <= 5
    assert "missed=1" in listener.values("STATS")[0]
