"""Every read of OpenTelemetry API internals, and the public-API answers that replace them.

The API keeps the global providers in module globals that stay None until one is set;
reading them is the cheapest exact test of "is there a provider to record into", made on
every store call while telemetry is off. Should a later API release rename them, the
public getters answer the same question a little more slowly (``use_public_api``, which
``tests/stores/test_telemetry_seam.py`` runs).
"""

from __future__ import annotations

from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

_trace_api: Any = trace
_metrics_api: Any = getattr(metrics, "_internal", None)
FAST_GLOBALS = hasattr(_trace_api, "_TRACER_PROVIDER") and hasattr(_metrics_api, "_METER_PROVIDER")
"""Whether this API release keeps its global providers where the fast reads look."""


def _fast_tracer_provider() -> TracerProvider | None:
    provider: TracerProvider | None = _trace_api._TRACER_PROVIDER
    return provider


def _fast_meter_provider() -> MeterProvider | None:
    provider: MeterProvider | None = _metrics_api._METER_PROVIDER
    return provider


def _fast_provider_set() -> bool:
    return _trace_api._TRACER_PROVIDER is not None or _metrics_api._METER_PROVIDER is not None


def public_tracer_provider() -> TracerProvider | None:
    """The global tracer provider an application set, through the public getter; None if none."""
    provider = trace.get_tracer_provider()
    return None if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider) else provider


def public_meter_provider() -> MeterProvider | None:
    """The global meter provider an application set, through the public getter; None if none."""
    provider = metrics.get_meter_provider()
    proxy = getattr(_metrics_api, "_ProxyMeterProvider", metrics.NoOpMeterProvider)
    return None if isinstance(provider, metrics.NoOpMeterProvider | proxy) else provider


def _public_provider_set() -> bool:
    return public_tracer_provider() is not None or public_meter_provider() is not None


global_tracer_provider = _fast_tracer_provider if FAST_GLOBALS else public_tracer_provider
"""The global tracer provider an application set, or None."""
global_meter_provider = _fast_meter_provider if FAST_GLOBALS else public_meter_provider
"""The global meter provider an application set, or None."""
provider_set = _fast_provider_set if FAST_GLOBALS else _public_provider_set
"""Whether a global tracer or meter provider is set (cheap: read on every call while off)."""


def use_public_api(public: bool = True) -> None:
    """Answer through the public getters only (``public=False``: the fast reads again, if present)."""
    global global_tracer_provider, global_meter_provider, provider_set
    fast = FAST_GLOBALS and not public
    global_tracer_provider = _fast_tracer_provider if fast else public_tracer_provider
    global_meter_provider = _fast_meter_provider if fast else public_meter_provider
    provider_set = _fast_provider_set if fast else _public_provider_set
