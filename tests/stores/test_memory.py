"""What the memory store promises beyond the shared contract."""

from __future__ import annotations

import asyncio

import pytest

from fastmcp_sessions import MemoryStore, open_store


async def test_lru_bound_evicts_least_recently_used() -> None:
    store = MemoryStore(max_entries=3)
    for key in "abc":
        await store.put(key, {"k": key})
    await store.get("a")  # a is now the most recent
    await store.put("d", {"k": "d"})
    assert await store.get("b") is None
    assert [await store.get(k) for k in "acd"] == [{"k": "a"}, {"k": "c"}, {"k": "d"}]


async def test_expired_entries_are_reclaimed_by_later_writes() -> None:
    store = MemoryStore()
    await store.put_many([f"k{i}" for i in range(100)], [{"i": i} for i in range(100)], ttl=0.05)
    await asyncio.sleep(0.1)
    await store.put("fresh", {"v": 1})
    assert store._size == 1, "expired entries must be deleted, not only hidden"
    assert len(store._expiries) == 0


async def test_rewriting_ttl_keys_keeps_the_expiry_heap_bounded() -> None:
    store = MemoryStore()
    for i in range(20_000):
        await store.put(f"k{i % 10}", {"i": i}, ttl=3600)
    assert len(store._expiries) <= 2 * 10 + 1024


async def test_destroyed_collection_can_be_used_again() -> None:
    store = MemoryStore()
    await store.put("k", {"v": 1}, collection="c")
    await store.destroy_collection("c")
    await store.put("k", {"v": 2}, collection="c")
    assert await store.get("k", collection="c") == {"v": 2}


def test_url_options() -> None:
    store = open_store("memory://?max_entries=5")
    assert isinstance(store, MemoryStore) and store.max_entries == 5
    with pytest.raises(ValueError, match="does not take the option 'nope'"):
        open_store("memory://?nope=1")
    with pytest.raises(ValueError):
        MemoryStore(max_entries=0)
