"""NamespacedStore on every backend: both scopes isolate, pass atomics and TTLs through."""

from __future__ import annotations

import pytest

from fastmcp_sessions import Store
from fastmcp_sessions.stores.namespaced import NamespacedStore


@pytest.mark.parametrize("scope", ["collection", "key"])
async def test_views_are_isolated(store: Store, scope: str) -> None:
    a = NamespacedStore(store, "a", scope=scope)  # type: ignore[arg-type]
    b = NamespacedStore(store, "b", scope=scope)  # type: ignore[arg-type]
    await a.put("k", {"v": "a"}, collection="c")
    await b.put("k", {"v": "b"}, collection="c")
    await a.put_many(["x", "y"], [{"v": 1}, {"v": 2}], collection="c")
    assert await a.get("k", collection="c") == {"v": "a"}
    assert await b.get("k", collection="c") == {"v": "b"}
    assert await a.get_many(["k", "x", "missing"], collection="c") == [{"v": "a"}, {"v": 1}, None]
    assert sorted(await a.keys("c")) == ["k", "x", "y"]
    assert await b.keys("c") == ["k"]
    assert await a.collections() == ["c"]
    assert await a.delete_many(["x", "y"], collection="c") == 2
    assert await b.destroy_collection("c") is True
    assert await b.get("k", collection="c") is None
    assert await a.get("k", collection="c") == {"v": "a"}
    assert await b.collections() == []
    if scope == "collection":
        assert "a/c" in await store.collections()
    else:
        assert "a/k" in await store.keys("c")


@pytest.mark.parametrize("scope", ["collection", "key"])
async def test_atomics_and_ttl_pass_through(store: Store, scope: str) -> None:
    view = NamespacedStore(store, "ns", scope=scope)  # type: ignore[arg-type]
    assert await view.put_if_absent("k", {"n": 1}, ttl=60) is True
    assert await view.put_if_absent("k", {"n": 2}) is False
    entry = await view.get_versioned("k")
    assert entry is not None and entry.value == {"n": 1} and entry.ttl is not None and 55 < entry.ttl <= 60
    assert await view.compare_and_set("k", {"n": 3}, version=entry.version, ttl=30) is True
    assert await view.compare_and_set("k", {"n": 4}, version=entry.version) is False
    assert await view.update("k", lambda v: {"n": (v or {"n": 0})["n"] + 1}) == {"n": 4}
    value, ttl = await view.ttl("k")
    assert value == {"n": 4} and ttl is not None and ttl <= 30
    latest = await view.get_versioned("k")
    assert latest is not None
    assert await view.delete_if_version("k", latest.version) is True
    assert await view.get("k") is None


async def test_closing_a_view_keeps_the_store_open(store: Store) -> None:
    view = NamespacedStore(store, "ns")
    await view.put("k", {"v": 1})
    await view.close()
    assert await NamespacedStore(store, "ns").get("k") == {"v": 1}
    with pytest.raises(ValueError, match="scope"):
        NamespacedStore(store, "ns", scope="nope")  # type: ignore[arg-type]
