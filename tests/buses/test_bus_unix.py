"""The Unix-socket bus across OS processes on one disk store: every update a publisher's
``flush()`` confirmed reaches a listener once, in order, while the listener's socket is
removed from under it, the listener is stopped (SIGSTOP) long enough for its wake-ups to
overflow, and the publisher is killed (SIGKILL) and started again; a lost wake-up costs
latency, not the event; a listener away longer than the journal keeps events gets the
list-changed events, counted; a journal that starts over is announced; the journal is a
0600 file beside the store's database."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import stat
import time
from collections.abc import Callable
from pathlib import Path

from mcp.server.subscriptions import (
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
    ToolsListChanged,
)

from fastmcp_sessions import open_store
from fastmcp_sessions.buses import bus_for_store
from fastmcp_sessions.buses.unix import UnixSocketBus, default_directory
from tests._support.bus_faults import Worker


def store_url(tmp_path: Path) -> str:
    # The bus never reads the store's data, so the store's key plays no part here.
    return f"disk://{tmp_path / 's.sqlite3'}?encryption=false"


def remove_sockets(directory: Path) -> None:
    found = list(directory.glob("*.sock"))
    assert found, "the listener had no socket to remove"
    for path in found:
        path.unlink()


def stop_for(listener: Worker, seconds: float) -> None:
    listener.proc.send_signal(signal.SIGSTOP)
    try:
        time.sleep(seconds)  # the publisher goes on; the listener's wake-ups pile up and overflow
    finally:
        listener.proc.send_signal(signal.SIGCONT)


def after(worker: Worker, confirmed: int) -> None:
    worker.wait_for(lambda w: len(w.values("C")) >= confirmed, 120, f"{confirmed} confirmations")


def stat_value(stats: str, name: str) -> int:
    return int(stats.split(f"{name}=")[1].split(",")[0].rstrip(")"))


def test_confirmed_updates_survive_removed_sockets_a_stopped_listener_and_a_publisher_restart(
    tmp_path: Path,
) -> None:
    url, name = store_url(tmp_path), "srv" + secrets.token_hex(3)
    sockets = default_directory(str((tmp_path / "s.sqlite3").resolve()), name)
    listener = Worker("listen", url, name)
    workers = [listener]
    try:
        listener.wait_for(lambda w: bool(w.values("READY")), 60, "the listener's READY")
        first = Worker("publish", url, name, "1:400")
        workers.append(first)
        for confirmed in (50, 100):
            after(first, confirmed)
            remove_sockets(sockets)
            listener.wait_for(lambda w: any(sockets.glob("*.sock")), 30, "the listener's new socket")
        after(first, 150)
        stop_for(listener, 2.0)
        after(first, 250)
        first.proc.send_signal(signal.SIGKILL)  # mid-run, right after confirmed flushes
        first.proc.wait()
        before_kill = first.values("C")
        second = Worker("publish", url, name, "1001:1150")
        workers.append(second)
        after(second, 50)
        remove_sockets(sockets)
        second.wait_for(lambda w: bool(w.values("DONE")), 120, "the second publisher's DONE")
        confirmed = before_kill + second.values("C")
        listener.wait_for(
            lambda w: len(w.values("R")) >= len(confirmed), 30, f"{len(confirmed)} updates at the listener"
        )
        time.sleep(0.5)  # a duplicate arriving late would show here
    finally:
        for worker in reversed(workers):
            worker.stop()
    received = listener.values("R")
    stats = listener.values("STATS")[0]
    # The killed publisher may have committed one more update than it lived to confirm.
    in_flight = f"test://{len(before_kill) + 1}"
    assert len(before_kill) >= 250 and len(confirmed) == len(before_kill) + 150
    assert [uri for uri in received if uri != in_flight] == confirmed
    assert received.count(in_flight) <= 1
    assert listener.values("L") == []  # nothing was pruned, so nothing was announced as missed
    assert stat_value(stats, "reconnects") >= 3, stats  # every removed socket was noticed and bound anew
    assert stat_value(stats, "missed") == 0, stats


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def test_a_lost_wake_up_costs_latency_not_the_event(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    # Two socket directories: no wake-up from the publisher ever reaches the listener.
    listener = UnixSocketBus(tmp_path / "a", server_name="s", journal=journal, poll_interval=0.2)
    publisher = UnixSocketBus(tmp_path / "b", server_name="s", journal=journal)
    got: list[ServerEvent] = []
    listener.subscribe(got.append)
    assert await listener.ready(10)
    events = [ResourceUpdated(uri=f"res://{i}") for i in range(20)] + [ToolsListChanged()]
    for event in events:
        await publisher.publish(event)
    assert await publisher.flush(10)
    await eventually(lambda: len(got) == len(events))
    assert got == events and listener.stats.received == len(events)
    await publisher.close()
    await listener.close()


async def test_a_listener_starts_at_the_events_accepted_after_it_subscribed(tmp_path: Path) -> None:
    directory = tmp_path / "bus"
    publisher = UnixSocketBus(directory, server_name="s")
    await publisher.publish(ResourceUpdated(uri="res://before"))
    assert await publisher.flush(10)
    listener = UnixSocketBus(directory, server_name="s")
    other_server = UnixSocketBus(tmp_path / "other", server_name="t", journal=publisher.journal_path)
    got: list[ServerEvent] = []
    other: list[ServerEvent] = []
    listener.subscribe(got.append)
    other_server.subscribe(other.append)
    assert await listener.ready(10) and await other_server.ready(10)
    await publisher.publish(ResourceUpdated(uri="res://after"))
    assert await publisher.flush(10)
    await eventually(lambda: len(got) == 1)
    await asyncio.sleep(0.3)
    assert got == [ResourceUpdated(uri="res://after")]
    assert other == []  # one journal, two server names: rows of another server are never read
    for bus in (publisher, listener, other_server):
        await bus.close()


async def test_a_listener_away_longer_than_retained_gets_list_changed_and_counts_it(tmp_path: Path) -> None:
    url = store_url(tmp_path)
    listener = Worker("listen", url, "t")
    store = open_store(url)
    try:
        listener.wait_for(lambda w: bool(w.values("READY")), 60, "the listener's READY")
        listener.proc.send_signal(signal.SIGSTOP)  # away: it reads nothing until SIGCONT
        publisher = bus_for_store(store, server_name="t", retain_events=5, prune_interval=0)
        assert isinstance(publisher, UnixSocketBus)
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


async def test_the_journal_is_a_private_file_beside_the_store(tmp_path: Path) -> None:
    store = open_store(store_url(tmp_path))
    bus = bus_for_store(store, server_name="s")
    assert isinstance(bus, UnixSocketBus)
    assert bus.journal_path == (tmp_path / "s.sqlite3.bus.sqlite3").resolve()
    old = os.umask(0)  # a permissive umask must not widen the file
    try:
        await bus.publish(ResourceUpdated(uri="res://x"))
        assert await bus.flush(10)
    finally:
        os.umask(old)
    files = [bus.journal_path] + [
        bus.journal_path.with_name(bus.journal_path.name + suffix)
        for suffix in ("-wal", "-shm")
        if bus.journal_path.with_name(bus.journal_path.name + suffix).exists()
    ]
    assert len(files) == 3  # WAL mode
    for path in files:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    await bus.close()
    await store.close()


async def test_a_journal_left_readable_by_others_is_made_private(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    journal.touch()
    journal.chmod(0o644)
    bus = UnixSocketBus(tmp_path / "bus", server_name="s", journal=journal)
    await bus.publish(ToolsListChanged())
    assert await bus.flush(10)
    assert stat.S_IMODE(os.stat(journal).st_mode) == 0o600
    await bus.close()


async def test_a_journal_that_starts_over_is_announced_and_delivery_goes_on(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    listener = UnixSocketBus(tmp_path / "bus", server_name="s", journal=journal, poll_interval=0.2)
    publisher = UnixSocketBus(tmp_path / "bus", server_name="s", journal=journal)
    got: list[ServerEvent] = []
    listener.subscribe(got.append)
    assert await listener.ready(10)
    for i in range(3):
        await publisher.publish(ResourceUpdated(uri=f"res://{i}"))
    assert await publisher.flush(10)
    await eventually(lambda: len(got) == 3)
    for suffix in ("", "-wal", "-shm"):  # removed by hand while both processes run
        journal.with_name(journal.name + suffix).unlink(missing_ok=True)
    await publisher.publish(ResourceUpdated(uri="res://new-1"))
    assert await publisher.flush(10)
    assert journal.exists()  # the publisher wrote to a new journal at the path, not the removed one
    await eventually(lambda: listener.stats.missed == 1)
    await publisher.publish(ResourceUpdated(uri="res://new-2"))
    assert await publisher.flush(10)
    await eventually(lambda: ResourceUpdated(uri="res://new-2") in got)
    assert got[3:6] == [ToolsListChanged(), PromptsListChanged(), ResourcesListChanged()]
    await publisher.close()
    await listener.close()
