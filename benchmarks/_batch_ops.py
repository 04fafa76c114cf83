"""Operations the MongoDB and DynamoDB benchmarks time, shared so both measure the same thing."""

from __future__ import annotations

import traceback
from typing import Any

from benchmarks._harness import Group, Op

BATCH = 100
VALUE: dict[str, Any] = {
    "access_token": "eyJhbGciOiJIUzI1NiJ9." + "x" * 80,
    "token_type": "Bearer",
    "expires_in": 3600,
    "scope": "read write",
}


def put_op(store: Any) -> Op:
    async def op(i: int) -> None:
        await store.put(f"k{i % 1000}", VALUE, collection="bench")

    return op


def get_op(store: Any, collection: str, distinct: int) -> Op:
    prefix = "k" if collection == "bench" else "b"

    async def op(i: int) -> None:
        got = await store.get(f"{prefix}{i % distinct}", collection=collection)
        assert got is not None, "get returned None for a key that was just written"

    return op


def get_many_op(store: Any, keys: list[str]) -> Op:
    async def op(i: int) -> None:
        got = await store.get_many(keys, collection="bench")
        assert len(got) == BATCH and all(v is not None for v in got)

    return op


def put_many_op(store: Any, keys: list[str], values: list[dict[str, Any]]) -> Op:
    async def op(i: int) -> None:
        await store.put_many(keys, values, collection="bench")

    return op


def delete_many_op(store: Any, keys: list[str]) -> Op:
    async def op(i: int) -> None:
        assert await store.delete_many(keys, collection="bench") == BATCH

    return op


async def run_batches(group: Group, keys: list[str], values: list[dict[str, Any]], ops: int) -> None:
    """put_many, get_many and delete_many of ``keys``; deleted keys are put back untimed."""
    await group.run(f"put_many({BATCH})", lambda s: put_many_op(s, keys, values), ops)
    await group.run(f"get_many({BATCH})", lambda s: get_many_op(s, keys), ops)
    await group.run(
        f"delete_many({BATCH})",
        lambda s: delete_many_op(s, keys),
        ops,
        prepare=lambda s: put_many_op(s, keys, values),
    )


async def close_all(*stores: Any) -> None:
    """Close every store; a failing one is reported, never allowed to hide the results."""
    for store in stores:
        try:
            await store.close()
        except Exception:
            traceback.print_exc()
