"""Memory and disk stores side by side with py-key-value-aio's, in one run.

    python -m benchmarks.bench_core [--ops 2000] [--rounds 5]

Contenders per operation (~150-byte values, sequential awaits):
- memory: a plain async dict wrapper (the ceiling), py-key-value-aio MemoryStore, ours
- disk: py-key-value-aio DiskStore (diskcache), the same under its FernetEncryptionWrapper,
  our DiskStore plaintext and encrypted (the default)
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from key_value.aio.stores.disk import DiskStore as PeerDiskStore
from key_value.aio.stores.memory import MemoryStore as PeerMemoryStore
from key_value.aio.wrappers.encryption import FernetEncryptionWrapper

from benchmarks._harness import Report, main
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


async def bench_concurrent(report: Report, name: str, store: Any, ops: int, rounds: int) -> None:
    keys = [f"key-{i}" for i in range(ops)]
    width = 32

    async def gets(i: int) -> None:
        await asyncio.gather(
            *(store.get(keys[(i * width + j) % ops], collection="bench") for j in range(width))
        )

    result = await report.run(
        f"disk get x{width} concurrent", name, gets, max(ops // width, 10), rounds=rounds
    )
    result.ops_per_sec *= width  # each timed op is `width` gets


async def run(args: argparse.Namespace) -> None:
    report = Report("core")
    ops, rounds = args.ops, args.rounds
    tmp = Path(tempfile.mkdtemp(prefix="fms-bench-"))
    try:
        await bench_pair(report, "memory", "dict", DictStore(), ops, rounds)
        await bench_pair(report, "memory", "py-key-value MemoryStore", PeerMemoryStore(), ops, rounds)
        ours = MemoryStore()
        await bench_pair(report, "memory", "fastmcp-sessions MemoryStore", ours, ops, rounds)

        key = Fernet.generate_key()
        peer_disk = PeerDiskStore(directory=str(tmp / "peer"))
        await bench_pair(report, "disk", "py-key-value DiskStore", peer_disk, ops, rounds)
        peer_enc = FernetEncryptionWrapper(PeerDiskStore(directory=str(tmp / "peer-enc")), fernet=Fernet(key))
        await bench_pair(report, "disk", "py-key-value DiskStore+Fernet", peer_enc, ops, rounds)
        plain = DiskStore(tmp / "ours-plain.sqlite3", encryption=False)
        await bench_pair(report, "disk", "fastmcp-sessions DiskStore plain", plain, ops, rounds)
        encrypted = DiskStore(tmp / "ours.sqlite3", keys=Keyring([key.decode()]))
        await bench_pair(report, "disk", "fastmcp-sessions DiskStore", encrypted, ops, rounds)
        inline = DiskStore(tmp / "ours-inline.sqlite3", keys=Keyring([key.decode()]), offload=False)
        await bench_pair(report, "disk", "fastmcp-sessions DiskStore offload=False", inline, ops, rounds)

        # Many requests at once, as an HTTP server sees them: the off-loop store keeps the
        # loop free while its worker drains the queue.
        await bench_concurrent(report, "py-key-value DiskStore+Fernet", peer_enc, ops, rounds)
        await bench_concurrent(report, "fastmcp-sessions DiskStore", encrypted, ops, rounds)
        for store in (plain, encrypted, inline):
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
        ("disk put", "fastmcp-sessions DiskStore offload=False", "py-key-value DiskStore+Fernet"),
        ("disk get", "fastmcp-sessions DiskStore offload=False", "py-key-value DiskStore+Fernet"),
        ("disk get x32 concurrent", "fastmcp-sessions DiskStore", "py-key-value DiskStore+Fernet"),
    ]
    report.print_table(ratios)
    print(f"\nJSON: {report.save(ratios, args.json)}")


if __name__ == "__main__":
    main(run, __doc__ or "")
