"""The in-process bus: listen streams and publishers of one process, nothing in between."""

from __future__ import annotations

from fastmcp_sessions.buses.base import Bus

__all__ = ["MemoryBus"]


class MemoryBus(Bus):
    """Fan-out inside one process (one replica).

    Like mcp's ``InMemorySubscriptionBus``, but with the isolation every bus here has:
    publishing returns without calling any listener, each listener's buffer is bounded
    (overflow counted in ``stats.dropped_overflow``), and a raising listener is logged and
    counted. Use it for a single process (stdio, one HTTP worker) and in tests.
    """
