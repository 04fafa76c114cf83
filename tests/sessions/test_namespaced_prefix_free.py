"""Namespaces are prefix-free: no view ever reads, lists or destroys another view's data."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastmcp_sessions import MemoryStore, Store
from fastmcp_sessions.stores.namespaced import NamespacedStore, escape, unescape

# Names rich in the characters an encoding could confuse.
_names = st.text(alphabet=st.sampled_from("tx/%2Fc5_"), min_size=1, max_size=8)
_scopes = st.sampled_from(["collection", "key"])


@given(st.text(max_size=20))
def test_escape_is_reversible_and_slash_free(name: str) -> None:
    assert "/" not in escape(name)
    assert unescape(escape(name)) == name


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(ns1=_names, ns2=_names, c1=_names, c2=_names, k1=_names, k2=_names, scope=_scopes)
def test_two_views_never_overlap(ns1: str, ns2: str, c1: str, c2: str, k1: str, k2: str, scope: str) -> None:
    if ns1 == ns2:
        return

    async def run() -> None:
        inner = MemoryStore()
        a = NamespacedStore(inner, ns1, scope=scope)  # type: ignore[arg-type]
        b = NamespacedStore(inner, ns2, scope=scope)  # type: ignore[arg-type]
        await b.put(k2, {"who": "b"}, collection=c2)
        # a sees nothing of b: not by reading any name, nor by listing
        assert await a.get(k2, collection=c2) is None
        assert await a.collections() == []
        assert await a.keys(c2) == []
        await a.put(k1, {"who": "a"}, collection=c1)
        assert await b.get(k2, collection=c2) == {"who": "b"}
        assert await a.get(k1, collection=c1) == {"who": "a"}
        assert await a.keys(c1) == [k1] and await a.collections() == [c1]
        assert await b.keys(c2) == [k2] and await b.collections() == [c2]
        # destroying or deleting in a leaves b alone
        assert await a.delete(k2, collection=c2) is (c1 == c2 and k1 == k2)
        await a.destroy_collection(c2)
        await a.destroy_collection(c1)
        assert await b.get(k2, collection=c2) == {"who": "b"}
        assert await a.get(k1, collection=c1) is None

    asyncio.run(run())


@pytest.mark.parametrize("scope", ["collection", "key"])
async def test_the_reported_overlap_is_gone(store: Store, scope: str) -> None:
    t = NamespacedStore(store, "t", scope=scope)  # type: ignore[arg-type]
    tx = NamespacedStore(store, "t/x", scope=scope)  # type: ignore[arg-type]
    await tx.put("k", {"v": "t/x"}, collection="c")
    name = "x/c" if scope == "collection" else "c"
    key = "k" if scope == "collection" else "x/k"
    assert await t.get(key, collection=name) is None
    assert await t.keys(name) == [] and await t.collections() == []
    assert await t.destroy_collection(name) is False
    assert await tx.get("k", collection="c") == {"v": "t/x"}
    await t.put(key, {"v": "t"}, collection=name)
    assert await t.get(key, collection=name) == {"v": "t"}
    assert await tx.get("k", collection="c") == {"v": "t/x"}
    assert await tx.keys("c") == ["k"]


async def test_names_without_slash_or_percent_keep_their_inner_layout(store: Store) -> None:
    await NamespacedStore(store, "fastmcp/srv/events").put("k", {"v": 1}, collection="fastmcp_events")
    assert await store.get("k", collection="fastmcp/srv/events/fastmcp_events") == {"v": 1}
    await NamespacedStore(store, "id/abc", scope="key").put("mcp-oauth-token", {"v": 2}, collection="c")
    assert await store.get("id/abc/mcp-oauth-token", collection="c") == {"v": 2}
