"""OpenTelemetry spans and metrics for stores, sessions, locks, token refresh and buses.

Only ``opentelemetry-api`` is used (FastMCP brings it). Nothing is recorded until a real
tracer or meter provider exists: the global ones an application installs with the SDK
(``trace.set_tracer_provider``/``metrics.set_meter_provider``, or ``opentelemetry-instrument``),
or providers passed to ``configure()``. Until then an instrumented call reads
``SWITCH.on`` and the API's two provider globals (the memory store's get/put read only
``SWITCH.on``) and never builds a span, so the hot paths stay as fast as without
telemetry. See docs/observability.md for every name emitted.

What is never recorded: keys, values, tokens, lock names, URLs. Collection names are
(they are the table names of this store: ``fastmcp_state``, ``mcp-oauth-transactions``...).
Errors are recorded by type only, because our exception messages name keys to help the
reader of a log, and FastMCP's keys are authorization codes and client ids.

Hooks for store code (cheap when telemetry is off; call them freely):
``record_pipeline_batch(size, system)`` for every pipeline a backend sends,
``record_pool_wait(seconds, system, pool)`` for time spent waiting for a pooled
connection, ``record_retry(operation)``, ``record_conflict(operation)`` and
``record_decryption_failure(reason)``.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib.util
import os
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer, TracerProvider

from fastmcp_sessions import _otel_seam

__all__ = [
    "SWITCH",
    "active",
    "configure",
    "record_conflict",
    "record_decryption_failure",
    "record_lock_wait",
    "record_pipeline_batch",
    "record_pool_wait",
    "record_retry",
    "refresh",
    "span",
    "status",
    "store_operation",
    "watch_bus",
]

INSTRUMENTATION_NAME = "fastmcp_sessions"
DISABLE_ENV = "FASTMCP_SESSIONS_TELEMETRY"
"""Set to ``off`` (or ``0``/``false``) to switch every span and metric of this package off."""

DURATION_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
"""The semantic conventions' advisory buckets for ``db.client.operation.duration``, with
two below a millisecond for in-process stores."""

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")


class _Switch:
    """``on`` is True while some real provider (global or configured) is there to record.

    Hot paths read only ``SWITCH.on``; ``refresh()`` (run by every instrumented call that
    finds it off, by every store and bus constructor, and by ``configure()``) updates it.
    """

    __slots__ = ("disabled", "meter_provider", "on", "tracer_provider")

    def __init__(self) -> None:
        self.on = False
        self.disabled = os.environ.get(DISABLE_ENV, "").strip().lower() in ("off", "0", "false", "no")
        self.tracer_provider: TracerProvider | None = None
        self.meter_provider: MeterProvider | None = None


SWITCH = _Switch()


def _global_tracer_provider() -> TracerProvider | None:
    return _otel_seam.global_tracer_provider()


def _global_meter_provider() -> MeterProvider | None:
    return _otel_seam.global_meter_provider()


def _load_env_providers() -> None:
    # Providers named by OTEL_PYTHON_*_PROVIDER are loaded by the first getter call.
    if "OTEL_PYTHON_TRACER_PROVIDER" in os.environ:
        trace.get_tracer_provider()
    if "OTEL_PYTHON_METER_PROVIDER" in os.environ:
        metrics.get_meter_provider()


def refresh() -> bool:
    """Look again for a real provider and update ``SWITCH.on``; return it.

    Call it after installing a global provider late, if the only store calls since are
    the memory store's ``get``/``put`` (every other instrumented call refreshes by itself).
    """
    if SWITCH.disabled:
        SWITCH.on = False
        return False
    on = (
        SWITCH.tracer_provider is not None
        or SWITCH.meter_provider is not None
        or _global_tracer_provider() is not None
        or _global_meter_provider() is not None
    )
    SWITCH.on = on
    return on


def active() -> bool:
    """Whether spans or metrics of this package are recorded now."""
    return SWITCH.on or refresh()


def _on() -> bool:
    """``active()`` without the full look while no global provider exists."""
    return SWITCH.on or (_otel_seam.provider_set() and refresh())


def configure(
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    enabled: bool | None = None,
) -> None:
    """Record into these providers instead of the global ones (``None``: the global one).

    ``enabled=False`` switches this package's telemetry off whatever providers exist (as
    env ``FASTMCP_SESSIONS_TELEMETRY=off`` does); ``enabled=True`` switches it back on.
    """
    SWITCH.tracer_provider = tracer_provider
    SWITCH.meter_provider = meter_provider
    if enabled is not None:
        SWITCH.disabled = not enabled
    _Instruments.cache.clear()
    _TRACERS.clear()
    refresh()


def status() -> dict[str, Any]:
    """What ``fastmcp-sessions doctor`` reports: whether telemetry records, and into what."""
    refresh()
    tracer = SWITCH.tracer_provider or _global_tracer_provider()
    meter = SWITCH.meter_provider or _global_meter_provider()
    return {
        "active": SWITCH.on,
        "disabled": SWITCH.disabled,
        "tracer_provider": None if tracer is None else type(tracer).__qualname__,
        "meter_provider": None if meter is None else type(meter).__qualname__,
        "sdk_installed": importlib.util.find_spec("opentelemetry.sdk") is not None,
        # Names only: values such as OTEL_EXPORTER_OTLP_HEADERS carry credentials.
        "otel_env": sorted(name for name in os.environ if name.startswith("OTEL_")),
    }


_TRACERS: dict[int, tuple[TracerProvider, Tracer]] = {}


def _tracer() -> Tracer:
    provider = SWITCH.tracer_provider or _global_tracer_provider() or trace.get_tracer_provider()
    found = _TRACERS.get(id(provider))
    if found is None or found[0] is not provider:
        found = _TRACERS[id(provider)] = (provider, provider.get_tracer(INSTRUMENTATION_NAME))
    return found[1]


class _Instruments:
    """The instruments of one meter provider, created once."""

    cache: dict[int, _Instruments] = {}

    def __init__(self, provider: MeterProvider) -> None:
        self.provider = provider
        meter: Meter = provider.get_meter(INSTRUMENTATION_NAME)
        self.duration = meter.create_histogram(
            "db.client.operation.duration",
            unit="s",
            description="Duration of store operations",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.pool_wait = meter.create_histogram(
            "db.client.connection.wait_time",
            unit="s",
            description="Time spent waiting for a pooled connection or worker",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.pipeline = meter.create_histogram(
            "fastmcp_sessions.pipeline.batch_size",
            unit="{command}",
            description="Commands sent to the server in one pipeline",
            explicit_bucket_boundaries_advisory=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
        )
        self.retries = meter.create_counter(
            "fastmcp_sessions.retries",
            unit="{retry}",
            description="Optimistic writes tried again after a lost race",
        )
        self.conflicts = meter.create_counter(
            "fastmcp_sessions.conflicts",
            unit="{error}",
            description="ConflictErrors raised: every attempt of an optimistic write lost its race",
        )
        self.decryption = meter.create_counter(
            "fastmcp_sessions.decryption.failures",
            unit="{error}",
            description="Stored values that could not be decrypted (wrong key, tampering, plaintext)",
        )
        self.lock_wait = meter.create_histogram(
            "fastmcp_sessions.lock.wait.duration",
            unit="s",
            description="Time spent acquiring a lock, by outcome",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.refresh_wait = meter.create_histogram(
            "fastmcp_sessions.token_refresh.wait.duration",
            unit="s",
            description="Time spent taking the single-flight token refresh lock, by role",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        for name, field, what in _BUS_COUNTERS:
            meter.create_observable_counter(
                name, callbacks=[functools.partial(_observe_buses, field)], unit="{event}", description=what
            )

    @classmethod
    def get(cls) -> _Instruments:
        provider = SWITCH.meter_provider or _global_meter_provider() or metrics.get_meter_provider()
        found = cls.cache.get(id(provider))
        if found is None or found.provider is not provider:
            found = cls.cache[id(provider)] = cls(provider)
        return found


# -- stores ----------------------------------------------------------------------------------

# The stores whose operation is in progress in this task: a wrapper store (encrypted,
# namespaced) calls its inner store, and one public call gets one span, not one per layer.
_COVERED: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar(
    "fastmcp_sessions_store_operation", default=frozenset()
)

OPERATION_SPEC = "__fastmcp_sessions_operation__"

STORE_OPERATIONS: dict[str, tuple[bool, int | None]] = {
    "get": (False, None),
    "ttl": (False, None),
    "put": (False, None),
    "delete": (False, None),
    "get_many": (True, None),
    "ttl_many": (True, None),
    "put_many": (True, None),
    "delete_many": (True, None),
    "keys": (False, 0),
    "collections": (False, None),
    "destroy_collection": (False, 0),
    "cull": (False, None),
    "put_if_absent": (False, None),
    "get_versioned": (False, None),
    "compare_and_set": (False, None),
    "delete_if_version": (False, None),
    "update": (False, None),
    "put_fenced": (False, None),
}
"""The public store operations: (first argument is the key list, position of a positional
``collection`` argument or None for the ``collection=`` keyword)."""


_Method = Callable[Concatenate[S, P], Awaitable[R]]
_Operation = Callable[Concatenate[S, P], Coroutine[Any, Any, R]]


def store_operation(name: str) -> Callable[[_Method[S, P, R]], _Operation[S, P, R]]:
    """Decorate the public store operation ``name``: one CLIENT span and one duration sample
    per call while telemetry records, nothing but the check otherwise.

    ``Store`` decorates each of its public operations with it, and ``instrument_overrides``
    wraps a backend's own fast paths the same way; a call made inside an operation of the
    same store (a wrapper calling its inner store, an override calling ``super()``) adds no
    span of its own.
    """
    batch, collection_at = STORE_OPERATIONS[name]

    def decorate(fn: _Method[S, P, R]) -> _Operation[S, P, R]:
        @functools.wraps(fn)
        async def operation(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
            if SWITCH.on or (_otel_seam.provider_set() and refresh()):
                return await _traced(self, name, fn, args, kwargs, batch, collection_at)
            return await fn(self, *args, **kwargs)

        setattr(operation, OPERATION_SPEC, name)
        return operation

    return decorate


def instrument_overrides(cls: type, skip: Iterable[str] = ()) -> None:
    """Wrap every public store operation that ``cls`` defines (its own fast path).

    ``skip`` names the methods that instrument themselves (they call the base method
    while telemetry is on).
    """
    skipped = set(skip)
    for attr, fn in list(vars(cls).items()):
        if attr not in STORE_OPERATIONS or attr in skipped or not callable(fn) or hasattr(fn, OPERATION_SPEC):
            continue
        setattr(cls, attr, store_operation(attr)(fn))


async def _traced(
    store: Any,
    name: str,
    fn: Callable[..., Awaitable[R]],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    batch: bool,
    collection_at: int | None,
) -> R:
    covered = _COVERED.get()
    if id(store) in covered:
        return await fn(store, *args, **kwargs)
    base: dict[str, Any] = store._telemetry_attributes()
    collection = kwargs.get("collection")
    if collection is None and collection_at is not None and len(args) > collection_at:
        collection = args[collection_at]
    if collection is None and collection_at is None:
        collection = getattr(store, "default_collection", None)
    metric_attrs = dict(base)
    metric_attrs["db.operation.name"] = name
    if isinstance(collection, str):
        metric_attrs["db.collection.name"] = collection
    attributes = dict(metric_attrs)
    if batch and args:
        keys = args[0]
        if isinstance(keys, Sequence) and not isinstance(keys, str) and len(keys) > 1:
            # The conventions count only batches of two or more operations.
            attributes["db.operation.batch.size"] = len(keys)
    span_name = f"{name} {collection}" if isinstance(collection, str) else name
    token = _COVERED.set(covered | store._telemetry_chain())
    start = time.perf_counter()
    error: BaseException | None = None
    try:
        with _tracer().start_as_current_span(
            span_name,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as current:
            try:
                return await fn(store, *args, **kwargs)
            except BaseException as exc:
                error = exc
                _record_error(current, exc)
                raise
    finally:
        _COVERED.reset(token)
        metric_attrs["fastmcp_sessions.outcome"] = "ok" if error is None else "error"
        if error is not None:
            metric_attrs["error.type"] = _error_type(error)
        _Instruments.get().duration.record(time.perf_counter() - start, metric_attrs)


def _error_type(exc: BaseException) -> str:
    cls = type(exc)
    return f"{cls.__module__}.{cls.__qualname__}"


def _record_error(current: Span, exc: BaseException) -> None:
    """Mark ``current`` as failed with the exception's type and no message.

    ``span.record_exception`` would store ``str(exc)`` and the traceback, and our
    messages name keys; the type says what happened, the log line says where.
    """
    kind = _error_type(exc)
    current.set_attribute("error.type", kind)
    if isinstance(exc, Exception):
        current.set_status(StatusCode.ERROR, type(exc).__name__)
    current.add_event("exception", {"exception.type": kind})


def server_attributes(system: str, address: str | None = None, port: int | None = None) -> dict[str, Any]:
    """The attributes a store declares: ``db.system.name`` and, with a server, its address."""
    attributes: dict[str, Any] = {"db.system.name": system}
    if address:
        attributes["server.address"] = address
        if port is not None:
            attributes["server.port"] = int(port)
    return attributes


# -- spans of the other layers ----------------------------------------------------------------


@contextlib.contextmanager
def span(name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Span | None]:
    """An INTERNAL span under the current one while telemetry is on; ``None`` otherwise.

    An exception leaving the block marks the span failed by type only (see ``_record_error``).
    """
    if not _on() or _tracer_off():
        yield None
        return
    with _tracer().start_as_current_span(
        name, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as current:
        try:
            yield current
        except BaseException as exc:
            _record_error(current, exc)
            raise


def _tracer_off() -> bool:
    return SWITCH.tracer_provider is None and _global_tracer_provider() is None


def traced(name: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """Decorate a coroutine function with ``span(name)`` (no attributes: arguments may be secret)."""

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        @functools.wraps(fn)
        async def call(*args: P.args, **kwargs: P.kwargs) -> R:
            if not SWITCH.on and (not _otel_seam.provider_set() or not refresh()):
                return await fn(*args, **kwargs)
            with span(name):
                return await fn(*args, **kwargs)

        return call

    return decorate


# -- metrics hooks ----------------------------------------------------------------------------


def record_pipeline_batch(size: int, system: str) -> None:
    """Record one pipeline of ``size`` commands sent by a ``system`` (e.g. "redis") store."""
    if _on():
        _Instruments.get().pipeline.record(size, {"db.system.name": system})


def record_pool_wait(seconds: float, system: str, pool: str | None = None) -> None:
    """Record ``seconds`` spent waiting for a pooled connection (or worker) of a store."""
    if _on():
        attributes = {"db.system.name": system}
        if pool:
            attributes["db.client.connection.pool.name"] = pool
        _Instruments.get().pool_wait.record(seconds, attributes)


def record_retry(operation: str) -> None:
    """Count one more attempt of an optimistic write (``operation`` like "store.update")."""
    if _on():
        _Instruments.get().retries.add(1, {"fastmcp_sessions.operation": operation})


def record_conflict(operation: str) -> None:
    """Count one ``ConflictError`` raised by ``operation``."""
    if _on():
        _Instruments.get().conflicts.add(1, {"fastmcp_sessions.operation": operation})


def record_decryption_failure(reason: str) -> None:
    """Count one stored value that could not be decrypted.

    ``reason``: "ciphertext" (no key in use opens it, or it was tampered with or moved)
    or "not_encrypted" (plaintext or another library's envelope where ciphertext belongs).
    """
    if _on():
        _Instruments.get().decryption.add(1, {"fastmcp_sessions.decryption.reason": reason})


def record_lock_wait(seconds: float, outcome: str) -> None:
    """Record time spent in ``Lock.acquire`` (``outcome``: "acquired" or "timeout")."""
    if _on():
        _Instruments.get().lock_wait.record(seconds, {"fastmcp_sessions.lock.outcome": outcome})


def record_refresh_wait(seconds: float, role: str) -> None:
    """Record time spent taking the token refresh lock (``role``: "leader" or "follower")."""
    if _on():
        _Instruments.get().refresh_wait.record(seconds, {"fastmcp_sessions.token_refresh.role": role})


# -- buses ------------------------------------------------------------------------------------

_BUSES: weakref.WeakSet[Any] = weakref.WeakSet()
_BUS_COUNTERS = (
    ("fastmcp_sessions.bus.events.published", "published", "Events handed to a bus's publish"),
    ("fastmcp_sessions.bus.events.delivered", "delivered", "Listener calls that returned normally"),
    ("fastmcp_sessions.bus.events.received", "received", "Events that arrived from other processes"),
    ("fastmcp_sessions.bus.events.dropped", "dropped_overflow", "Events dropped because a buffer was full"),
)


def watch_bus(bus: Any) -> None:
    """Report ``bus.stats`` through the bus counters for as long as the bus exists."""
    _BUSES.add(bus)
    refresh()


def _observe_buses(field: str, options: CallbackOptions) -> Iterator[Observation]:
    totals: dict[str, int] = {}
    for bus in list(_BUSES):
        kind = getattr(bus, "messaging_system", type(bus).__name__)
        totals[kind] = totals.get(kind, 0) + int(getattr(bus.stats, field, 0))
    for kind, total in totals.items():
        yield Observation(total, {"messaging.system": kind})


_load_env_providers()
refresh()
