"""Memory and disk stores side by side with py-key-value-aio's, in one run.

    python -m benchmarks.bench_core [--ops 2000] [--rounds 5]

Contenders per operation (~150-byte values, sequential awaits; the disk stores interleaved
in short slices so that load from the rest of the machine hits each alike):
- memory: a plain async dict wrapper (the ceiling), py-key-value-aio MemoryStore, ours
- disk: py-key-value-aio DiskStore (diskcache), the same under its FernetEncryptionWrapper,
  our DiskStore plaintext and encrypted (the default, offload="auto"), and encrypted with
  every statement on its worker thread (offload=True) or inline (offload=False)
- stall: the worst event-loop stall seen by a 1 ms ticker while the store serves puts and
  gets and ANOTHER PROCESS holds the database's SQLite write lock 300 ms at a time
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from key_value.aio.stores.disk import DiskStore as PeerDiskStore
from key_value.aio.stores.memory import MemoryStore as PeerMemoryStore
from key_value.aio.wrappers.encryption import FernetEncryptionWrapper

from benchmarks._harness import Group, Report, Result, main
from fastmcp_sessions import DiskStore, Keyring, MemoryStore

VALUE: dict[str, Any] = {
    "access_token": "eyJhbGciOiJIUzI1NiJ9.payload.signature",
    "token_type": "Bearer",
    "expires_in": 3600,
    "scope": "read write",
    "refresh": None,
}


class DictStore:
    """The ceiling: an async wrapper around a dict, no validation, no copies."""

    def __init__(self) -> None:
        self.data: dict[tuple[str | None, str], Any] = {}

    async def put(self, key: str, value: Any, *, collection: str | None = None) -> None:
        self.data[(collection, key)] = value

    async def get(self, key: str, *, collection: str | None = None) -> Any:
        return self.data.get((collection, key))


async def bench_pair(report: Report, group: str, name: str, store: Any, ops: int, rounds: int) -> None:
    keys = [f"key-{i}" for i in range(ops)]

    async def put(i: int) -> None:
        await store.put(keys[i % ops], VALUE, collection="bench")

    async def get(i: int) -> None:
        await store.get(keys[i % ops], collection="bench")

    await report.run(f"{group} put", name, put, ops, rounds=rounds)
    await report.run(f"{group} get", name, get, ops, rounds=rounds)


async def bench_disk(report: Report, contenders: list[tuple[str, Any]], ops: int, rounds: int) -> None:
    """The disk stores, interleaved in short slices (``Group``) so that load from the rest of
    a shared machine hits every contender alike."""
    keys = [f"key-{i}" for i in range(ops)]
    width = 32
    group = Group(report, "disk ", ops, rounds, calls=lambda: 0)
    for name, store in contenders:
        group.contender(name, store)

    def put(store: Any) -> Any:
        async def op(i: int) -> None:
            await store.put(keys[i % ops], VALUE, collection="bench")

        return op

    def get(store: Any) -> Any:
        async def op(i: int) -> None:
            await store.get(keys[i % ops], collection="bench")

        return op

    def gets(store: Any) -> Any:
        # Many requests at once, as an HTTP server sees them.
        async def op(i: int) -> None:
            await asyncio.gather(
                *(store.get(keys[(i * width + j) % ops], collection="bench") for j in range(width))
            )

        return op

    await group.run("put", put)
    await group.run("get", get)
    await group.run(f"get x{width} concurrent", gets, max(ops // width, 10))
    for result in report.results:
        if result.group == f"disk get x{width} concurrent":
            result.ops_per_sec *= width  # each timed op is `width` gets


async def worst_stall(
    store: Any, db_file: Path, *, seconds: float = 3.0, hold: float = 0.3, gap: float = 0.05
) -> tuple[float, int, int]:
    """Serve puts and gets on ``store`` while another process holds ``db_file``'s write lock
    ``hold`` seconds at a time; return (worst gap between 1 ms ticks beyond 1 ms, in seconds,
    operations done, times the other process held the lock)."""
    command = [
        sys.executable,
        "-m",
        "benchmarks._lock_holder",
        str(db_file),
        str(hold),
        str(gap),
        str(seconds),
    ]
    holder = await asyncio.to_thread(subprocess.Popen, command, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    # Wait off the loop for the first hold, so the measurement starts under contention.
    await asyncio.to_thread(holder.stdout.readline)
    stop, worst, done = asyncio.Event(), 0.0, 0

    async def ticker() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst = max(worst, now - last - 0.001)
            last = now

    async def client(n: int) -> None:
        nonlocal done
        i = 0
        while not stop.is_set():
            await store.put(f"stall-{n}-{i % 50}", VALUE, collection="bench")
            await store.get(f"stall-{n}-{(i * 7) % 50}", collection="bench")
            i, done = i + 1, done + 2
            await asyncio.sleep(0)  # a request handler yields between requests; diskcache never does

    tasks = [asyncio.create_task(ticker()), *(asyncio.create_task(client(n)) for n in range(4))]
    await asyncio.to_thread(holder.wait)
    stop.set()
    await asyncio.gather(*tasks)
    held = int((await asyncio.to_thread(holder.stdout.read)).split()[-1])
    return worst, done, held


async def bench_stall(report: Report, name: str, store: Any, db_file: Path) -> None:
    await store.put("warm", VALUE, collection="bench")
    worst, done, held = await worst_stall(store, db_file)
    report.results.append(
        Result("stall", name, 0.0, done, extra={"worst_stall_ms": round(worst * 1000, 2), "lock_held": held})
    )
    print(f"  {'stall (worst, ms)':<28} {name:<44} {worst * 1000:>12,.1f} ms", file=sys.stderr)


async def run(args: argparse.Namespace) -> None:
    report = Report("core")
    ops, rounds = args.ops, args.rounds
    tmp = Path(tempfile.mkdtemp(prefix="fms-bench-"))
    try:
        await bench_pair(report, "memory", "dict", DictStore(), ops, rounds)
        await bench_pair(report, "memory", "py-key-value MemoryStore", PeerMemoryStore(), ops, rounds)
        memory = MemoryStore()
        await bench_pair(report, "memory", "fastmcp-sessions MemoryStore", memory, ops, rounds)

        key = Fernet.generate_key()
        peer_disk = PeerDiskStore(directory=str(tmp / "peer"))
        peer_enc = FernetEncryptionWrapper(PeerDiskStore(directory=str(tmp / "peer-enc")), fernet=Fernet(key))
        plain = DiskStore(tmp / "ours-plain.sqlite3", encryption=False)
        encrypted = DiskStore(tmp / "ours.sqlite3", keys=Keyring([key.decode()]))
        threaded = DiskStore(tmp / "ours-thread.sqlite3", keys=Keyring([key.decode()]), offload=True)
        inline = DiskStore(tmp / "ours-inline.sqlite3", keys=Keyring([key.decode()]), offload=False)
        await bench_disk(
            report,
            [
                ("py-key-value DiskStore", peer_disk),
                ("py-key-value DiskStore+Fernet", peer_enc),
                ("fastmcp-sessions DiskStore plain", plain),
                ("fastmcp-sessions DiskStore", encrypted),
                ("fastmcp-sessions DiskStore offload=True", threaded),
                ("fastmcp-sessions DiskStore offload=False", inline),
            ],
            ops,
            rounds,
        )

        # Another process holds the write lock 300 ms at a time: how long does the loop stall?
        ours = "fastmcp-sessions DiskStore"
        await bench_stall(report, ours, encrypted, tmp / "ours.sqlite3")
        await bench_stall(report, f"{ours} offload=True", threaded, tmp / "ours-thread.sqlite3")
        await bench_stall(report, f"{ours} offload=False", inline, tmp / "ours-inline.sqlite3")
        await bench_stall(report, "py-key-value DiskStore+Fernet", peer_enc, tmp / "peer-enc" / "cache.db")
        for store in (plain, encrypted, threaded, inline):
            await store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    ratios = [
        ("memory put", "fastmcp-sessions MemoryStore", "py-key-value MemoryStore"),
        ("memory get", "fastmcp-sessions MemoryStore", "py-key-value MemoryStore"),
        ("memory put", "fastmcp-sessions MemoryStore", "dict"),
        ("memory get", "fastmcp-sessions MemoryStore", "dict"),
        ("disk put", "fastmcp-sessions DiskStore", "py-key-value DiskStore+Fernet"),
        ("disk get", "fastmcp-sessions DiskStore", "py-key-value DiskStore+Fernet"),
        ("disk put", "fastmcp-sessions DiskStore plain", "py-key-value DiskStore"),
        ("disk get", "fastmcp-sessions DiskStore plain", "py-key-value DiskStore"),
        ("disk put", "fastmcp-sessions DiskStore offload=True", "py-key-value DiskStore+Fernet"),
        ("disk get", "fastmcp-sessions DiskStore offload=True", "py-key-value DiskStore+Fernet"),
        ("disk put", "fastmcp-sessions DiskStore offload=False", "py-key-value DiskStore+Fernet"),
        ("disk get", "fastmcp-sessions DiskStore offload=False", "py-key-value DiskStore+Fernet"),
        ("disk get x32 concurrent", "fastmcp-sessions DiskStore", "py-key-value DiskStore+Fernet"),
        (
            "disk get x32 concurrent",
            "fastmcp-sessions DiskStore offload=True",
            "py-key-value DiskStore+Fernet",
        ),
    ]
    stalls = [r for r in report.results if r.group == "stall"]
    report.results = [r for r in report.results if r.group != "stall"]
    report.print_table(ratios)
    report.results += stalls
    print("\nworst event-loop stall (1 ms ticker; another process holds the write lock 300 ms at a time):")
    for r in stalls:
        print(
            f"  {r.contender:<44} {r.extra['worst_stall_ms']:>9.1f} ms  "
            f"({r.ops} ops served, lock held {r.extra['lock_held']} times)"
        )
    print(f"\nJSON: {report.save(ratios, args.json)}")


if __name__ == "__main__":
    main(run, __doc__ or "")
