"""The one timing loop behind ``fastmcp-sessions bench`` and the repository's benchmarks."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

Op = Callable[[int], Awaitable[Any]]
"""One timed operation; receives the iteration number."""


async def measure(
    op: Op, ops: int, *, rounds: int = 5, warmup: int | None = None, yield_every: int | None = None
) -> tuple[float, list[float]]:
    """Run ``op`` ``ops`` times per round; return the median ops/s over ``rounds`` and each round's.

    ``warmup`` calls (default: a tenth of ``ops``, at least 10) run first, untimed. With
    ``yield_every``, the loop gives the event loop a turn after that many calls: an
    in-memory store never suspends, and Ctrl-C is delivered only at a suspension. The
    yield is outside the innermost loop, so timing pays no per-call check for it.
    """
    for i in range(warmup if warmup is not None else max(ops // 10, 10)):
        await op(i)
    step = yield_every or max(ops, 1)
    per_round: list[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        for first in range(0, ops, step):
            for i in range(first, min(first + step, ops)):
                await op(i)
            if yield_every:
                await asyncio.sleep(0)
        per_round.append(ops / max(time.perf_counter() - start, 1e-9))
    return statistics.median(per_round), per_round
