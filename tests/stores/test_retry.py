"""The retry loop shared by ``Store.update``, ``SessionStore`` and ``Lock.acquire``."""

from __future__ import annotations

import time

import pytest

from fastmcp_sessions._retry import Retries


async def _attempts(retries: Retries) -> list[int]:
    return [attempt async for attempt in retries]


async def test_a_limit_gives_that_many_attempts() -> None:
    assert await _attempts(Retries(3, first=0.0, cap=0.0)) == [0, 1, 2]
    assert await _attempts(Retries(0, first=0.0, cap=0.0)) == []


async def test_leaving_the_loop_early_stops_it() -> None:
    seen = []
    async for attempt in Retries(None, first=0.0, cap=0.0):
        seen.append(attempt)
        if attempt == 4:
            break
    assert seen == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("jitter", [1.0, 0.5, 0.0])
def test_pauses_grow_exponentially_up_to_the_cap_within_the_jitter(jitter: float) -> None:
    retries = Retries(None, first=0.001, cap=0.05, jitter=jitter)
    for attempt in range(12):
        ceiling = min(0.05, 0.001 * 2**attempt)
        for _ in range(200):
            assert (1 - jitter) * ceiling <= retries.pause(attempt) <= ceiling


def test_a_very_long_wait_does_not_overflow() -> None:
    # A lock waited on forever keeps counting attempts; 2**1100 is no float.
    assert 0 <= Retries(None, first=0.005, cap=0.1, jitter=0.5).pause(5000) <= 0.1


async def test_a_deadline_ends_the_loop_and_no_pause_runs_past_it() -> None:
    start = time.monotonic()
    attempts = await _attempts(Retries(None, first=0.5, cap=0.5, deadline=start + 0.3))
    elapsed = time.monotonic() - start
    assert attempts[0] == 0 and len(attempts) >= 1
    assert 0.3 <= elapsed < 3.0  # at most the deadline plus scheduling slack on a loaded machine


async def test_a_passed_deadline_allows_one_attempt() -> None:
    assert await _attempts(Retries(None, first=1.0, cap=1.0, deadline=time.monotonic() - 1)) == [0]


def test_jitter_must_be_a_fraction() -> None:
    with pytest.raises(ValueError, match="jitter"):
        Retries(1, first=0.1, cap=0.1, jitter=1.5)
