"""OpenTelemetry: store spans under FastMCP's tool-call span on every backend, metrics,
errors recorded by type only, and no planted secret in anything exported.

The OpenTelemetry SDK's in-memory span exporter and metric reader receive everything.
FastMCP records into the global tracer provider, so this module installs one for its
own tests and takes it away again afterwards (the API sets it once per process; the
reset is the one OpenTelemetry's own test utilities do).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastmcp import Client, FastMCP
from mcp.shared.auth import OAuthToken
from mcp.shared.subscriptions import ResourceUpdated, ToolsListChanged
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.util._once import Once

from fastmcp_sessions import EncryptedStore, Keyring, MemoryStore, Store, telemetry
from fastmcp_sessions.buses.memory import MemoryBus
from fastmcp_sessions.errors import ConflictError, DecryptionError, SerializationError
from fastmcp_sessions.sessions import Lock, LockTimeoutError, ServerRegistry, SessionStore
from tests._support.backends import Backend

SYSTEMS = {
    "memory": "memory",
    "disk": "sqlite",
    "redis": "redis",
    "mongodb": "mongodb",
    "dynamodb": "aws.dynamodb",
    "postgres": "postgresql",
}


def expected_system(backend: Backend) -> str:
    return next(system for prefix, system in SYSTEMS.items() if backend.name.startswith(prefix))


@dataclass
class Otel:
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def points(self, name: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        found: list[Any] = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found


@pytest.fixture(scope="module")
def _providers() -> Iterator[Otel]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    trace.set_tracer_provider(tracer_provider)
    telemetry.configure(meter_provider=meter_provider)
    try:
        yield Otel(exporter, reader)
    finally:
        trace_api: Any = trace
        trace_api._TRACER_PROVIDER = None
        trace_api._TRACER_PROVIDER_SET_ONCE = Once()
        telemetry.configure()
        tracer_provider.shutdown()
        meter_provider.shutdown()
        assert not telemetry.SWITCH.on


@pytest.fixture
def otel(_providers: Otel) -> Otel:
    _providers.spans.clear()
    _providers.metrics.get_metrics_data()  # collected: reset delta state, keep cumulative
    return _providers


def ancestors(span: ReadableSpan, spans: list[ReadableSpan]) -> list[ReadableSpan]:
    by_id = {s.context.span_id: s for s in spans}
    chain = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        span = by_id[parent.span_id]
        chain.append(span)
        parent = span.parent
    return chain


async def test_store_spans_nest_under_a_fastmcp_tool_call(otel: Otel, backend: Backend, store: Store) -> None:
    mcp = FastMCP("telemetry")

    @mcp.tool
    async def remember(fact: str) -> str:
        await store.put("note", {"fact": fact}, collection="notes")
        await store.get("note", collection="notes")
        await store.get_many(["note", "other"], collection="notes")
        await store.update("note", lambda v: {"fact": "updated"}, collection="notes")
        await store.delete("note", collection="notes")
        return "noted"

    async with Client(mcp) as client:
        assert (await client.call_tool("remember", {"fact": "sky"})).data == "noted"

    spans = otel.finished()
    ours = [
        s for s in spans if s.instrumentation_scope and s.instrumentation_scope.name == "fastmcp_sessions"
    ]
    assert [s.attributes["db.operation.name"] for s in ours if s.attributes] == [
        "put",
        "get",
        "get_many",
        "update",
        "delete",
    ]
    system = expected_system(backend)
    for s in ours:
        assert s.kind is SpanKind.CLIENT
        assert s.attributes is not None
        assert s.attributes["db.system.name"] == system
        assert s.attributes["db.collection.name"] == "notes"
        assert s.name == f"{s.attributes['db.operation.name']} notes"
        assert s.status.status_code is StatusCode.UNSET
        tool_spans = [a for a in ancestors(s, spans) if "remember" in a.name]
        assert tool_spans, (
            f"{s.name} is not under the tool call span: {[a.name for a in ancestors(s, spans)]}"
        )
        assert tool_spans[0].instrumentation_scope is not None
        assert tool_spans[0].instrumentation_scope.name == "fastmcp"
        if system not in ("memory", "sqlite"):
            assert s.attributes["server.address"]
    if backend.name in ("disk", "disk+plain"):  # the worker thread's queue is its pool
        waits = otel.points("db.client.connection.wait_time")
        assert any(p.attributes["db.system.name"] == "sqlite" and p.count for p in waits)
    batch = next(s for s in ours if s.attributes and s.attributes["db.operation.name"] == "get_many")
    assert batch.attributes is not None and batch.attributes["db.operation.batch.size"] == 2

    durations = [
        p
        for p in otel.points("db.client.operation.duration")
        if p.attributes["db.system.name"] == system and p.attributes.get("db.collection.name") == "notes"
    ]
    assert {p.attributes["db.operation.name"] for p in durations} >= {
        "put",
        "get",
        "get_many",
        "update",
        "delete",
    }
    assert all(p.attributes["fastmcp_sessions.outcome"] == "ok" and p.count >= 1 for p in durations)


async def test_errors_are_recorded_by_type_without_the_message(otel: Otel) -> None:
    store = MemoryStore()
    writes = 0

    def racing(value: dict[str, Any] | None) -> dict[str, Any]:
        nonlocal writes
        writes += 1
        store._store("c", "code-SECRET", {"n": writes}, None)  # another writer wins every race
        return {"n": -1}

    with pytest.raises(ConflictError):
        await store.update("code-SECRET", racing, collection="c", max_attempts=3)
    failed = [
        s for s in otel.finished() if s.attributes and s.attributes.get("db.operation.name") == "update"
    ]
    assert len(failed) == 1
    span = failed[0]
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "ConflictError"
    assert span.attributes is not None
    assert str(span.attributes["error.type"]).endswith("ConflictError")
    assert [e.name for e in span.events] == ["exception"]
    assert dict(span.events[0].attributes or {}) == {"exception.type": span.attributes["error.type"]}
    retries = {
        p.attributes["fastmcp_sessions.operation"]: p.value for p in otel.points("fastmcp_sessions.retries")
    }
    conflicts = {
        p.attributes["fastmcp_sessions.operation"]: p.value for p in otel.points("fastmcp_sessions.conflicts")
    }
    assert retries["store.update"] >= 2 and conflicts["store.update"] >= 1
    errors = [
        p
        for p in otel.points("db.client.operation.duration")
        if p.attributes.get("fastmcp_sessions.outcome") == "error"
        and p.attributes["db.operation.name"] == "update"
    ]
    assert errors and str(errors[0].attributes["error.type"]).endswith("ConflictError")


async def test_a_wrapped_store_call_is_one_span(otel: Otel) -> None:
    store = EncryptedStore(MemoryStore(), keys=[Keyring.generate_key()])
    await store.put("k", {"v": 1})
    await store.update("k", lambda v: {"v": 2})
    assert [s.name for s in otel.finished()] == ["put default_collection", "update default_collection"]
    other = EncryptedStore(store.inner, keys=[Keyring.generate_key()], key_check=False)
    with pytest.raises(DecryptionError):
        await other.get("k")
    reasons = {
        p.attributes["fastmcp_sessions.decryption.reason"]: p.value
        for p in otel.points("fastmcp_sessions.decryption.failures")
    }
    assert reasons["ciphertext"] >= 1


async def test_locks_refresh_and_buses_have_spans_and_metrics(otel: Otel) -> None:
    store = MemoryStore()
    lock = Lock(store, "lock-name", lease=5)
    token = await lock.acquire()
    other = Lock(store, "lock-name", lease=5)
    with pytest.raises(LockTimeoutError):
        await other.acquire(timeout=0.05)
    await lock.release()
    spans = {s.name: s for s in otel.finished() if s.name.startswith("fastmcp_sessions.lock")}
    acquired = [s for s in otel.finished() if s.name == "fastmcp_sessions.lock.acquire"]
    assert [s.attributes["fastmcp_sessions.lock.outcome"] for s in acquired if s.attributes] == [
        "acquired",
        "timeout",
    ]
    assert (
        acquired[0].attributes is not None
        and acquired[0].attributes["fastmcp_sessions.lock.fencing_token"] == token
    )
    assert acquired[1].status.status_code is StatusCode.ERROR
    assert "fastmcp_sessions.lock.release" in spans
    # The lock's own store calls nest under its span.
    inner = [
        s for s in otel.finished() if s.parent is not None and s.parent.span_id == acquired[0].context.span_id
    ]
    assert inner and all(
        s.attributes and s.attributes["db.collection.name"] == "fastmcp_sessions_locks" for s in inner
    )
    waits = {
        p.attributes["fastmcp_sessions.lock.outcome"]
        for p in otel.points("fastmcp_sessions.lock.wait.duration")
    }
    assert waits >= {"acquired", "timeout"}

    bus = MemoryBus(server_name="srv")
    got: list[Any] = []
    bus.subscribe(got.append)
    await bus.publish(ToolsListChanged())
    for _ in range(5):
        await asyncio.sleep(0)
    assert got == [ToolsListChanged()]
    names = [s.name for s in otel.finished()]
    assert "publish srv" in names and "deliver srv" in names
    published = [
        p.value
        for p in otel.points("fastmcp_sessions.bus.events.published")
        if p.attributes["messaging.system"] == "memory"
    ]
    delivered = [
        p.value
        for p in otel.points("fastmcp_sessions.bus.events.delivered")
        if p.attributes["messaging.system"] == "memory"
    ]
    assert published and published[0] >= 1 and delivered and delivered[0] >= 1
    await bus.close()


def test_record_pipeline_batch_is_exported(otel: Otel) -> None:
    telemetry.record_pipeline_batch(7, "redis")
    points = [
        p
        for p in otel.points("fastmcp_sessions.pipeline.batch_size")
        if p.attributes["db.system.name"] == "redis"
    ]
    assert points and points[0].sum >= 7


SECRETS = (
    "code-7Hq2SECRETKEY",  # a key: an authorization code
    "value-9ZpSECRETVALUE",
    "tok-4LmSECRETTOKEN",
    "pw-3XvSECRETPASSWORD",
    "ident-5RtSECRETIDENTITY",
    "lock-8UwSECRETLOCK",
    "uri-6KnSECRETURI",
)


def _exported_text(otel: Otel) -> str:
    """Every exported span and metric, as JSON text (names, attributes, events, statuses, resources)."""
    parts = [s.to_json() for s in otel.finished()]
    data = otel.metrics.get_metrics_data()
    parts.append(data.to_json() if data else "")
    return "\n".join(parts)


async def test_no_planted_secret_reaches_any_span_or_metric(otel: Otel, store: Store) -> None:
    key, value, token, password, identity, lock_name, uri = SECRETS
    url = f"https://admin:{password}@mcp.example.com/mcp?token={token}"
    await store.put(key, {"secret": value, "url": url}, collection="mcp-authorization-codes")
    await store.get(key, collection="mcp-authorization-codes")
    await store.get_many([key, token], collection="mcp-authorization-codes")
    await store.put_if_absent(key, {"v": value}, collection="mcp-authorization-codes")
    await store.update(key, lambda v: {"v": token}, collection="mcp-authorization-codes")
    with pytest.raises(SerializationError):  # a typed error whose message may name the key
        await store.put(key, {"bad": object()}, collection="mcp-authorization-codes")
    await store.delete(key, collection="mcp-authorization-codes")

    sessions = SessionStore(store, registry=ServerRegistry(store))
    session = await sessions.create(identity, server_url=url, headers={"Authorization": f"Bearer {token}"})
    await sessions.get(identity, session.session_id)
    tokens = sessions.token_storage(identity, session.session_id)
    await tokens.set_tokens(OAuthToken(access_token=token, token_type="Bearer", refresh_token=value))
    await tokens.get_tokens()
    await sessions.delete(identity, session.session_id)

    lock = Lock(store, lock_name, lease=5)
    await lock.acquire()
    await lock.release()

    bus = MemoryBus(server_name="srv")
    bus.subscribe(lambda event: None)
    await bus.publish(ResourceUpdated(uri=f"file:///{uri}/{token}"))
    await asyncio.sleep(0)
    await bus.close()

    other = EncryptedStore(MemoryStore(), keys=[Keyring.generate_key()])
    await other.inner.put(key, {"plain": value})
    with pytest.raises(DecryptionError):  # its message names the key
        await other.get(key)

    exported = _exported_text(otel)
    assert len(otel.finished()) > 10 and "fastmcp_sessions.session.create" in exported
    for secret in SECRETS:
        assert secret not in exported, f"{secret} leaked into telemetry"
    assert json.dumps(session.session_id)[1:-1] not in exported
