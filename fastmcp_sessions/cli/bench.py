"""``fastmcp-sessions bench``: the chosen store against the store a user would pick instead.

The comparison is py-key-value-aio's own store for the same kind of URL, on the same
server or directory, with the same protection: ``memory://`` against its
``MemoryStore``, ``disk://`` against its ``DiskStore`` (diskcache) in a temporary
directory, ``redis://`` / ``rediss://`` against its ``RedisStore`` on the same Redis; an
encrypted store is compared with the peer under ``FernetEncryptionWrapper``. The peer
has no atomic update, so its ``update`` is the ``get`` then ``put`` a user would write.
When no equivalent is installed (or exists, e.g. Redis Cluster) only our numbers are
printed, and the output says why.

Both run back to back in one process, so the ratio means something even on a noisy
machine. Writes go to a fresh collection (``fastmcp-sessions-bench-<random>``) that is
removed from both afterwards. The full suite lives in the repository's ``benchmarks/``
directory (``python -m benchmarks.bench_core``, ``benchmarks.bench_redis``...).
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastmcp_sessions import _timing
from fastmcp_sessions.cli._common import Console, Result, UsageError, format_table, safe_url
from fastmcp_sessions.cli._stores import chosen_url, close_quietly, open_cli_store
from fastmcp_sessions.stores._url import replace_query
from fastmcp_sessions.stores.base import Store

VALUE: dict[str, Any] = {
    "access_token": "eyJhbGciOiJIUzI1NiJ9.payload.signature",
    "token_type": "Bearer",
    "expires_in": 3600,
    "scope": "read write",
    "refresh": None,
}
MANY = 10
MIN_OPS = MANY + 1
"""The fewest ``--ops``: the batch operations read ``MANY`` keys at a time from the ``--ops`` written."""
"""Keys per ``get_many`` call."""

YIELD_EVERY = 256
"""Operations between two turns given to the event loop (a few microseconds each)."""

Op = Callable[[int], Awaitable[Any]]


def _bump(value: dict[str, Any] | None) -> dict[str, Any]:
    return {"n": (value or {"n": 0})["n"] + 1}


@dataclass
class Peer:
    """py-key-value-aio's store for the same kind of URL, and how to clean up after it."""

    label: str
    store: Any
    cleanup: Callable[[list[str]], Awaitable[None]]
    """Removes the given keys of the bench collection and closes the store."""


class _ReadModifyWrite:
    """The peer with an ``update``: ``get`` then ``put``, as a py-key-value user writes it (not atomic)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def put(self, key: str, value: Any, *, collection: str) -> None:
        """Store ``value``."""
        await self.inner.put(key, value, collection=collection)

    async def get(self, key: str, *, collection: str) -> Any:
        """Read a value."""
        return await self.inner.get(key, collection=collection)

    async def get_many(self, keys: list[str], *, collection: str) -> Any:
        """Read several values."""
        return await self.inner.get_many(keys, collection=collection)

    async def update(self, key: str, fn: Callable[[Any], Any], *, collection: str) -> Any:
        """Read, change and write a value."""
        new = fn(await self.inner.get(key, collection=collection))
        await self.inner.put(key, new, collection=collection)
        return new


async def _no_close() -> None:
    return None


def _is_encrypted(store: Store) -> bool:
    from fastmcp_sessions.stores.encrypted import EncryptedStore

    return isinstance(store, EncryptedStore) or bool(getattr(store, "encryption", False))


def peer_for(url: str | None, store: Store, collection: str) -> tuple[Peer | None, str]:
    """The py-key-value-aio equivalent of ``store`` (opened from ``url``), or ``None`` and why not."""
    scheme = "disk" if url is None else urlsplit(url).scheme.lower()
    encrypted = _is_encrypted(store)
    shared = False  # whether the peer writes where others read (then its keys are deleted after)
    try:
        if scheme == "memory":
            from key_value.aio.stores.memory import MemoryStore

            inner: Any = MemoryStore()
            label, close = "py-key-value MemoryStore", _no_close
        elif scheme == "disk":
            from key_value.aio.stores.disk import DiskStore

            directory = tempfile.mkdtemp(prefix="fastmcp-sessions-bench-")
            inner = DiskStore(directory=directory)

            async def close() -> None:
                try:
                    await inner.close()
                finally:
                    shutil.rmtree(directory, ignore_errors=True)

            label = "py-key-value DiskStore (diskcache, temporary directory)"
        elif scheme in ("redis", "rediss") and url is not None:
            from key_value.aio.stores.redis import RedisStore

            # Our query options (namespace, encryption, timeouts) mean nothing to the peer.
            inner = RedisStore(url=replace_query(url, ""))
            label, close, shared = "py-key-value RedisStore (same server)", inner.close, True
        else:
            return None, f"py-key-value-aio has no store bench can compare with {scheme}:// here"
    except ImportError as exc:
        return None, f"py-key-value-aio's equivalent is not installed ({exc.name or exc})"
    if encrypted:
        from cryptography.fernet import Fernet
        from key_value.aio.wrappers.encryption import FernetEncryptionWrapper

        wrapped: Any = FernetEncryptionWrapper(inner, fernet=Fernet(Fernet.generate_key()))
        label += " + FernetEncryptionWrapper"
    else:
        wrapped = inner

    async def cleanup(keys: list[str]) -> None:
        try:
            if shared:
                await wrapped.delete_many(keys, collection=collection)
        finally:
            await close()

    return Peer(label, _ReadModifyWrite(wrapped), cleanup), "the store a py-key-value-aio user would pick"


async def measure(op: Op, ops: int, rounds: int) -> float:
    """Median ops/s of ``rounds`` rounds of ``ops`` calls (after a short warm-up)."""
    rate, _ = await _timing.measure(op, ops, rounds=rounds, warmup=min(ops, 20), yield_every=YIELD_EVERY)
    return rate


def _operations(target: Any, collection: str, ops: int) -> dict[str, Op]:
    keys = [f"key-{i}" for i in range(ops)]

    async def put(i: int) -> None:
        await target.put(keys[i % ops], VALUE, collection=collection)

    async def get(i: int) -> None:
        await target.get(keys[i % ops], collection=collection)

    async def get_many(i: int) -> None:
        start = (i * MANY) % max(ops - MANY, 1)
        await target.get_many(keys[start : start + MANY], collection=collection)

    async def update(i: int) -> None:
        await target.update(f"counter-{i % 16}", _bump, collection=collection)

    return {"put": put, "get": get, f"get_many({MANY})": get_many, "update": update}


async def run_bench(console: Console, url_arg: str | None, *, ops: int = 500, rounds: int = 3) -> Result:
    """Benchmark the store ``url_arg`` (or the environment's) against py-key-value-aio's equivalent."""
    if ops < MIN_OPS or rounds < 1:
        raise UsageError(f"--ops must be at least {MIN_OPS} and --rounds at least 1")
    url, reason = chosen_url(url_arg)
    console.redactor.add_url(url)
    collection = f"fastmcp-sessions-bench-{uuid.uuid4().hex[:8]}"
    keys = [f"key-{i}" for i in range(ops)] + [f"counter-{i}" for i in range(16)]
    store: Store | None = None
    peer: Peer | None = None
    rows: list[tuple[str, float, float | None]] = []
    try:
        store = open_cli_store(url)
        peer, why = peer_for(url, store, collection)
        store_ops = _operations(store, collection, ops)
        peer_ops = _operations(peer.store, collection, ops) if peer else {}
        for name in store_ops:
            console.note(f"bench: {name} ...")
            # Ours first: an unreachable store fails with its own typed error, not the peer's.
            store_rate = await measure(store_ops[name], ops, rounds)
            peer_rate = None
            if peer is not None:
                try:
                    peer_rate = await measure(peer_ops[name], ops, rounds)
                except Exception as exc:
                    why = f"{peer.label} failed ({type(exc).__name__}: {exc}); ours only"
                    await _cleanup(peer, keys)
                    peer = None
            rows.append((name, store_rate, peer_rate))
        backend = type(store).__name__
        await store.destroy_collection(collection)
    finally:
        if peer is not None:
            await _cleanup(peer, keys)
        await close_quietly(store)
    label = peer.label if peer else None
    compared = any(p is not None for _, _, p in rows)
    data = {
        "store": safe_url(url),
        "chosen_by": reason,
        "backend": backend,
        "peer": label if compared else None,
        "peer_note": why,
        "ops_per_round": ops,
        "rounds": rounds,
        "results": [
            {
                "op": name,
                "store_ops_per_sec": round(s, 1),
                "peer_ops_per_sec": None if p is None else round(p, 1),
                "ratio": None if p is None else round(s / p, 3),
            }
            for name, s, p in rows
        ],
    }
    if compared:
        table = format_table(
            ["op", "ours ops/s", "peer ops/s", "ours / peer"],
            [
                [n, f"{s:,.0f}", "-" if p is None else f"{p:,.0f}", "-" if p is None else f"{s / p:.2f}x"]
                for n, s, p in rows
            ],
        )
        against = f"against {label}: {why}"
    else:
        table = format_table(["op", "ours ops/s"], [[n, f"{s:,.0f}"] for n, s, _ in rows])
        against = f"no comparison: {why}"
    text = "\n".join(
        [
            f"store  {safe_url(url)} ({reason}), {backend}",
            against,
            f"{ops} ops x {rounds} rounds per operation, median; sequential awaits, ~150-byte values"
            + ("; the peer's update is get then put (it has no atomic update)" if compared else ""),
            "",
            table,
            "",
            "ratios are what to compare between machines and runs: absolute ops/s drift with load",
        ]
    )
    return Result(data, text)


async def _cleanup(peer: Peer, keys: list[str]) -> None:
    try:
        await peer.cleanup(keys)
    except Exception:
        return
