"""``fastmcp-sessions bench``: a quick benchmark of the chosen store against a plain dict.

Both run back to back in one process, so the ratio means something even on a noisy
machine. Writes go to a fresh collection (``fastmcp-sessions-bench-<random>``) that is
destroyed afterwards. The full suite comparing against py-key-value-aio's stores lives
in the repository's ``benchmarks/`` directory (``python -m benchmarks.bench_core``).
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastmcp_sessions.cli._common import Console, Result, UsageError, format_table, safe_url
from fastmcp_sessions.cli._stores import chosen_url, close_quietly, open_cli_store
from fastmcp_sessions.stores.base import Store

VALUE: dict[str, Any] = {
    "access_token": "eyJhbGciOiJIUzI1NiJ9.payload.signature",
    "token_type": "Bearer",
    "expires_in": 3600,
    "scope": "read write",
    "refresh": None,
}
MANY = 10
"""Keys per ``get_many`` call."""

Op = Callable[[int], Awaitable[Any]]


class DictBaseline:
    """The ceiling: the same operations on a plain dict, no validation, no copies, no I/O."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], Any] = {}

    async def put(self, key: str, value: Any, *, collection: str) -> None:
        """Store ``value``."""
        self.data[(collection, key)] = value

    async def get(self, key: str, *, collection: str) -> Any:
        """Read a value."""
        return self.data.get((collection, key))

    async def get_many(self, keys: list[str], *, collection: str) -> list[Any]:
        """Read several values."""
        return [self.data.get((collection, k)) for k in keys]

    async def update(self, key: str, fn: Callable[[Any], Any], *, collection: str) -> Any:
        """Read, change and write a value."""
        new = fn(self.data.get((collection, key)))
        self.data[(collection, key)] = new
        return new


def _bump(value: dict[str, Any] | None) -> dict[str, Any]:
    return {"n": (value or {"n": 0})["n"] + 1}


async def measure(op: Op, ops: int, rounds: int) -> float:
    """Median ops/s of ``rounds`` rounds of ``ops`` calls (after a short warm-up)."""
    for i in range(min(ops, 20)):
        await op(i)
    per_round = []
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(ops):
            await op(i)
        per_round.append(ops / max(time.perf_counter() - start, 1e-9))
    return statistics.median(per_round)


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
    """Benchmark the store ``url_arg`` (or the environment's) against a dict; print ops/s and ratios."""
    if ops < MANY + 1 or rounds < 1:
        raise UsageError(f"--ops must be at least {MANY + 1} and --rounds at least 1")
    url, reason = chosen_url(url_arg)
    console.redactor.add_url(url)
    collection = f"fastmcp-sessions-bench-{uuid.uuid4().hex[:8]}"
    store: Store | None = None
    rows = []
    try:
        store = open_cli_store(url)
        baseline = DictBaseline()
        store_ops = _operations(store, collection, ops)
        dict_ops = _operations(baseline, collection, ops)
        for name in store_ops:
            console.note(f"bench: {name} ...")
            dict_rate = await measure(dict_ops[name], ops, rounds)
            store_rate = await measure(store_ops[name], ops, rounds)
            rows.append((name, store_rate, dict_rate))
        backend = type(store).__name__
        await store.destroy_collection(collection)
    finally:
        await close_quietly(store)
    data = {
        "store": safe_url(url),
        "chosen_by": reason,
        "backend": backend,
        "ops_per_round": ops,
        "rounds": rounds,
        "results": [
            {
                "op": name,
                "store_ops_per_sec": round(s, 1),
                "dict_ops_per_sec": round(d, 1),
                "ratio": round(s / d, 5),
            }
            for name, s, d in rows
        ],
    }
    table = format_table(
        ["op", "store ops/s", "dict ops/s", "store / dict", "dict is"],
        [[n, f"{s:,.0f}", f"{d:,.0f}", f"{s / d:.4f}x", f"{d / s:,.0f}x faster"] for n, s, d in rows],
    )
    text = "\n".join(
        [
            f"store  {safe_url(url)} ({reason}), {backend}",
            f"{ops} ops x {rounds} rounds per operation, median; sequential awaits, ~150-byte values",
            "",
            table,
            "",
            "ratios are what to compare between machines and runs: absolute ops/s drift with load",
        ]
    )
    return Result(data, text)
