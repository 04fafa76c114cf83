"""The event loop keeps running while ANOTHER OS PROCESS holds the SQLite write lock."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from fastmcp_sessions import DiskStore, Keyring
from tests._support import REPO

ROOT = REPO
BOUND = 0.150  # seconds; generous for a loaded machine, and half of one 300 ms hold
HOLD = 0.300


async def test_loop_never_stalls_while_another_process_holds_the_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    async with DiskStore(path, keys=[Keyring.generate_key()]) as store:
        await store.put("k", {"v": 0})
        holder = await asyncio.to_thread(
            subprocess.Popen,
            [sys.executable, "-m", "benchmarks._lock_holder", str(path), str(HOLD), "0.05", "2.5"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert holder.stdout is not None
        assert (await asyncio.to_thread(holder.stdout.readline)).strip() == "ready"
        stop = asyncio.Event()
        worst, slowest_put, writes = 0.0, 0.0, 0

        async def ticker() -> None:
            nonlocal worst
            last = time.perf_counter()
            while not stop.is_set():
                await asyncio.sleep(0.001)
                now = time.perf_counter()
                worst = max(worst, now - last)
                last = now

        async def writer(n: int) -> None:
            nonlocal slowest_put, writes
            i = 0
            while not stop.is_set():
                began = time.perf_counter()
                await store.put(f"w{n}-{i % 20}", {"i": i})
                slowest_put = max(slowest_put, time.perf_counter() - began)
                assert await store.get(f"w{n}-{i % 20}") == {"i": i}
                i, writes = i + 1, writes + 1

        tasks = [asyncio.create_task(ticker()), *(asyncio.create_task(writer(n)) for n in range(3))]
        await asyncio.to_thread(holder.wait)
        stop.set()
        await asyncio.gather(*tasks)
        held = int((await asyncio.to_thread(holder.stdout.read)).split()[-1])
    assert held >= 3, "the other process held the lock several times"
    assert slowest_put >= HOLD / 3, "some writes really waited for the other process's lock"
    assert writes > 20
    assert worst < BOUND, f"the event loop stalled {worst * 1000:.0f} ms"
