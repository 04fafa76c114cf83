"""The timing loop shared by ``fastmcp-sessions bench`` and the benchmarks."""

from __future__ import annotations

import asyncio

from fastmcp_sessions import _timing
from fastmcp_sessions.cli import bench


async def test_every_round_runs_every_call_after_the_warm_up() -> None:
    seen: list[int] = []

    async def op(i: int) -> None:
        seen.append(i)

    rate, rounds = await _timing.measure(op, 30, rounds=3, warmup=4)
    assert seen == list(range(4)) + list(range(30)) * 3
    assert len(rounds) == 3 and rate == sorted(rounds)[1] and rate > 0


async def test_yield_every_gives_the_loop_a_turn_without_skipping_calls() -> None:
    calls = 0
    turns = 0

    async def op(i: int) -> None:
        nonlocal calls
        calls += 1

    async def count_turns() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    watcher = asyncio.create_task(count_turns())
    await asyncio.sleep(0)
    await _timing.measure(op, 100, rounds=1, warmup=0, yield_every=10)
    watcher.cancel()
    assert calls == 100
    assert turns >= 9  # the never-suspending op would give it none


async def test_the_cli_and_the_benchmarks_time_with_the_same_loop() -> None:
    from benchmarks import _harness

    assert _harness.measure is _timing.measure

    async def op(i: int) -> None:
        return None

    assert await bench.measure(op, 50, 3) > 0
