"""The native event stores (``fastmcp_sessions.events``), on every backend against real servers:
exact replay of one stream, unguessable ids, isolation, encryption at rest, TTL and trimming,
concurrent appends in one process and in several, replay in another process."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastmcp.server.event_store import EventStore as KeyValueEventStore
from fastmcp.server.session_scoped_event_store import SessionScopedEventStore
from mcp.server.streamable_http import EventMessage, EventStore
from mcp_types import JSONRPCNotification

from fastmcp_sessions import Store
from fastmcp_sessions.events import NativeEventStore, event_store
from fastmcp_sessions.stores.namespaced import NamespacedStore
from tests._support import WORKERS
from tests._support.backends import BACKENDS, Backend

WORKER = WORKERS / "event_worker.py"
NAMESPACE = "fastmcp/worker/events"  # as event_worker.py, so its streams are ours
ENCRYPTED = {"memory+encrypted", "disk", "postgresql+encrypted"}
EVENT_BACKENDS = [
    "memory",
    "memory+encrypted",
    "redis",
    "redis-cluster",
    "postgresql",
    "postgresql+encrypted",
    "disk",
    "disk+plain",
    "mongodb-nx",
    "dynamodb-moto",
]
SHARED_EVENT_BACKENDS = [n for n in EVENT_BACKENDS if not n.startswith("memory")]


def note(text: str) -> JSONRPCNotification:
    return JSONRPCNotification(jsonrpc="2.0", method="notifications/message", params={"data": text})


@dataclass
class Opened:
    backend: Backend
    store: Store
    events: NativeEventStore

    def another(self, **options: Any) -> NativeEventStore:
        """A second event store over the same data (a new store instance where they share data)."""
        store = self.backend.open() if self.backend.shared_across_instances else self.store
        self.extra.append(store)
        made = event_store(NamespacedStore(store, NAMESPACE), **options)
        assert isinstance(made, NativeEventStore)
        return made

    def __post_init__(self) -> None:
        self.extra: list[Store] = []


async def _open(backend: Backend, **options: Any) -> Opened:
    store = backend.open()
    events = event_store(NamespacedStore(store, NAMESPACE), **options)
    assert isinstance(events, NativeEventStore), f"{backend.name} fell back to {type(events).__name__}"
    return Opened(backend, store, events)


async def _close(opened: Opened) -> None:
    await opened.events.close()
    for store in {id(s): s for s in [opened.store, *opened.extra]}.values():
        await store.close()


@pytest.fixture(params=EVENT_BACKENDS)
async def opened(request: pytest.FixtureRequest) -> AsyncIterator[Opened]:
    made = await _open(BACKENDS[request.param](request, "t" + secrets.token_hex(6)))
    try:
        yield made
    finally:
        await _close(made)


@pytest.fixture(params=SHARED_EVENT_BACKENDS)
async def shared(request: pytest.FixtureRequest) -> AsyncIterator[Opened]:
    made = await _open(
        BACKENDS[request.param](request, "t" + secrets.token_hex(6)), max_events_per_stream=10_000
    )
    try:
        yield made
    finally:
        await _close(made)


async def replay(events: EventStore, event_id: str) -> tuple[str | None, list[EventMessage]]:
    got: list[EventMessage] = []

    async def send(event: EventMessage) -> None:
        got.append(event)

    return await events.replay_events_after(event_id, send), got


def texts(events: list[EventMessage]) -> list[str]:
    return [e.message.params["data"] for e in events]  # type: ignore[union-attr]


async def test_replay_is_exact_for_its_stream_only(opened: Opened) -> None:
    events = opened.events
    prime_a = await events.store_event("a", None)
    prime_b = await events.store_event("b", None)
    ids = {}
    for i in range(5):
        ids[f"a{i}"] = await events.store_event("a", note(f"a{i}"))
        ids[f"b{i}"] = await events.store_event("b", note(f"b{i}"))
    stream, got = await replay(events, prime_a)
    assert stream == "a"
    assert texts(got) == [f"a{i}" for i in range(5)]
    assert [e.event_id for e in got] == [ids[f"a{i}"] for i in range(5)]
    stream, got = await replay(events, ids["b2"])
    assert (stream, texts(got)) == ("b", ["b3", "b4"])
    assert await replay(events, ids["a4"]) == ("a", [])  # the newest event: nothing after it
    # A priming event in the middle is a position, never a message.
    middle = await events.store_event("b", None)
    await events.store_event("b", note("b5"))
    assert texts((await replay(events, prime_b))[1]) == [f"b{i}" for i in range(6)]
    assert texts((await replay(events, middle))[1]) == ["b5"]


async def test_another_instance_replays_what_one_stored(opened: Opened) -> None:
    first = await opened.events.store_event("s", None)
    await opened.events.store_event("s", note("x"))
    other = opened.another()
    stream, got = await replay(other, first)
    assert (stream, texts(got)) == ("s", ["x"])


async def test_unknown_forged_and_foreign_ids_give_none(opened: Opened) -> None:
    events = opened.events
    first = await events.store_event("s", None)
    await events.store_event("s", note("secret"))
    key, seq, tag = first.split(".")
    assert len(tag) == 22 and len(key) == 32  # 128 random bits, 128-bit stream key
    flipped = tag[:-1] + ("A" if tag[-1] != "A" else "B")
    forged = [
        "",
        "nonsense",
        str(secrets.token_hex(16)),
        f"{key}.{seq}.{flipped}",  # right stream and position, wrong tag
        f"{key}.{seq}.{secrets.token_urlsafe(16)}",
        f"{secrets.token_hex(16)}.{seq}.{tag}",  # the tag on another stream
        f"{key}.{seq}.{tag}.x",
        f"{key}.{seq}x.{tag}",
        first.upper(),
    ]
    for bad in forged:
        assert await replay(events, bad) == (None, []), bad
    # A view with another namespace never sees these streams, though it shares the backend.
    stranger = event_store(NamespacedStore(opened.store, "fastmcp/other/events"))
    assert await replay(stranger, first) == (None, [])


async def test_ids_are_unique_and_random(opened: Opened) -> None:
    ids = [await opened.events.store_event("s", note(str(i))) for i in range(200)]
    tags = [i.split(".")[2] for i in ids]
    assert len(set(ids)) == len(set(tags)) == 200


async def test_fastmcp_session_scoping_wraps_it_unchanged(opened: Opened) -> None:
    alice = SessionScopedEventStore(opened.events, "alice-session")
    mallory = SessionScopedEventStore(opened.events, "mallory-session")
    first = await alice.store_event("req-1", None)
    await alice.store_event("req-1", note("for alice"))
    await mallory.store_event("req-1", note("for mallory"))
    stream, got = await replay(alice, first)
    assert (stream, texts(got)) == ("req-1", ["for alice"])
    assert await replay(mallory, first) == (None, [])


async def test_trimming_drops_the_oldest_events(opened: Opened) -> None:
    events = opened.another(max_events_per_stream=5)
    first = await events.store_event("s", None)
    ids = [await events.store_event("s", note(str(i))) for i in range(300)]
    assert await replay(events, first) == (None, [])  # trimmed
    stream, got = await replay(events, ids[-5])
    assert (stream, texts(got)) == ("s", [str(i) for i in range(296, 300)])


async def test_expired_streams_are_gone(opened: Opened) -> None:
    events = opened.another(ttl=0.5)
    first = await events.store_event("s", None)
    await events.store_event("s", note("x"))
    assert (await replay(events, first))[0] == "s"
    await asyncio.sleep(1.2)
    assert await replay(events, first) == (None, [])


async def test_events_are_encrypted_at_rest_when_the_store_is(opened: Opened) -> None:
    events = opened.events
    marker = "tool-result-" + secrets.token_hex(8)
    first = await events.store_event("stream-" + marker, None)
    await events.store_event("stream-" + marker, note(marker))
    key, seq, _ = first.split(".")
    rows = await events._read_from(key, seq)
    assert len(rows) == 2
    stored = b"".join(r.data for r in rows)
    if opened.backend.name in ENCRYPTED:
        assert events.keyring is not None
        assert marker.encode() not in stored
    else:
        assert events.keyring is None
        assert marker.encode() in stored


async def test_concurrent_appends_in_one_process_are_all_kept(opened: Opened) -> None:
    events = opened.another(max_events_per_stream=1000)
    first = await events.store_event("s", None)
    ids = await asyncio.gather(*(events.store_event("s", note(str(i))) for i in range(100)))
    stream, got = await replay(events, first)
    assert stream == "s"
    assert sorted(texts(got), key=int) == [str(i) for i in range(100)]
    assert {e.event_id for e in got} == set(ids)
    # Replay follows the positions the backend assigned.
    positions = [e.event_id.split(".")[1] for e in got]
    assert positions == sorted(positions, key=lambda p: [int(n) for n in p.split("-")])


def _worker(backend: Backend, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), args[0], backend.url or "", *args[1:]],
        env={**os.environ, **backend.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def test_appends_from_several_processes_are_never_lost(shared: Opened) -> None:
    first = await shared.events.store_event("shared", None)
    procs = [_worker(shared.backend, "append", "shared", "150", f"p{n}") for n in range(3)]
    outputs = [await asyncio.to_thread(p.communicate, timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    written = {line for out, _ in outputs for line in out.split()}
    assert len(written) == 450
    stream, got = await replay(shared.events, first)
    assert stream == "shared"
    assert {e.event_id for e in got} == written
    for n in range(3):  # each process's events keep their order
        mine = [t for t in texts(got) if t.startswith(f"p{n}-")]
        assert mine == [f"p{n}-{i}" for i in range(150)]


async def test_another_process_replays_the_stream(shared: Opened) -> None:
    first = await shared.events.store_event("far", None)
    ids = [await shared.events.store_event("far", note(f"m{i}")) for i in range(5)]
    out, err = await asyncio.to_thread(_worker(shared.backend, "replay", first).communicate, timeout=60)
    lines = out.splitlines()
    assert lines, err
    assert json.loads(lines[0]) == "far"
    assert [json.loads(line) for line in lines[1:]] == [[i, f"m{n}"] for n, i in enumerate(ids)]


async def test_other_stores_get_fastmcps_event_store() -> None:
    class Plain(Store):  # a store kind the events package does not know
        pass

    Plain.__abstractmethods__ = frozenset()  # never used for I/O here: only its kind matters
    made = event_store(NamespacedStore(Plain(), NAMESPACE), max_events_per_stream=7)
    assert isinstance(made, KeyValueEventStore)
    assert made._max_events_per_stream == 7
