"""The OpenTelemetry seam: its fast reads of API internals and its public-API fallback agree."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from fastmcp_sessions import _otel_seam, telemetry
from fastmcp_sessions.stores.memory import MemoryStore


def _answers() -> tuple[bool, object, object]:
    return _otel_seam.provider_set(), _otel_seam.global_tracer_provider(), _otel_seam.global_meter_provider()


@pytest.fixture
def public_api() -> Iterator[None]:
    _otel_seam.use_public_api()
    try:
        yield
    finally:
        _otel_seam.use_public_api(False)
        telemetry.refresh()


@pytest.fixture
def global_tracer() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    try:
        yield exporter
    finally:
        trace_api: Any = trace
        trace_api._TRACER_PROVIDER = None
        trace_api._TRACER_PROVIDER_SET_ONCE = Once()
        provider.shutdown()
        telemetry.refresh()


def test_the_fast_reads_are_available_on_the_locked_api() -> None:
    # When this fails, the API moved its globals: the fallback below keeps telemetry right.
    assert _otel_seam.FAST_GLOBALS


def test_without_a_provider_both_ways_answer_none() -> None:
    fast = _answers()
    _otel_seam.use_public_api()
    try:
        assert _answers() == fast == (False, None, None)
    finally:
        _otel_seam.use_public_api(False)


def test_with_a_global_tracer_both_ways_find_it(global_tracer: InMemorySpanExporter) -> None:
    fast = _answers()
    _otel_seam.use_public_api()
    try:
        assert _answers() == fast
    finally:
        _otel_seam.use_public_api(False)
    assert fast[0] and fast[1] is trace.get_tracer_provider()


async def test_store_calls_are_traced_through_the_public_fallback(
    public_api: None, global_tracer: InMemorySpanExporter
) -> None:
    async with MemoryStore() as store:
        await store.put_if_absent("k", {"v": 1}, collection="c")
    assert [span.name for span in global_tracer.get_finished_spans()] == ["put_if_absent c"]
