"""The store contract. Every backend in tests/_support/backends.py runs every test here."""

from __future__ import annotations

import asyncio
import math
import os
import random
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from key_value.aio.adapters.pydantic import PydanticAdapter
from pydantic import BaseModel

from fastmcp_sessions import Store
from fastmcp_sessions.errors import (
    ConflictError,
    InvalidKeyError,
    InvalidTTLError,
    KeyValueOperationError,
    SerializationError,
    StaleFencingTokenError,
    StoreClosedError,
)
from fastmcp_sessions.stores._names import HASH_MARKER, stored_name
from fastmcp_sessions.stores.fencing import FENCES_FIELD
from tests._support import WORKERS
from tests._support.backends import Backend

TRICKY_NAMES = [
    ":",
    "::",
    "a::b",
    "*",
    "?",
    "[",
    "[a-z]",
    "%",
    "%2F",
    "\\",
    "a\\*",
    "/",
    "tools/list",
    "https://host/mcp/tokens",
    "https://host/mcp/tokens?x=1&y=%20",
    "key with spaces",
    "ключ",
    "鍵",
    "emoji 🔑",
    "{braces}",
    "default_collection",
    "\t\n",
]


# -- the AsyncKeyValue protocol ---------------------------------------------------------


async def test_put_get_delete_round_trip(store: Store) -> None:
    assert await store.get("k") is None
    await store.put("k", {"a": 1, "b": [1, 2, {"c": None}], "d": "x", "e": 1.5, "f": True})
    assert await store.get("k") == {"a": 1, "b": [1, 2, {"c": None}], "d": "x", "e": 1.5, "f": True}
    await store.put("k", {"a": 2})
    assert await store.get("k") == {"a": 2}
    assert await store.delete("k") is True
    assert await store.delete("k") is False
    assert await store.get("k") is None


async def test_ttl_of_missing_and_unexpiring_entries(store: Store) -> None:
    assert await store.ttl("missing") == (None, None)
    await store.put("k", {"v": 1})
    assert await store.ttl("k") == ({"v": 1}, None)


async def test_collections_are_separate(store: Store) -> None:
    await store.put("k", {"v": "default"})
    await store.put("k", {"v": "one"}, collection="one")
    await store.put("k", {"v": "two"}, collection="two")
    assert await store.get("k") == {"v": "default"}
    assert await store.get("k", collection="one") == {"v": "one"}
    assert await store.get("k", collection="two") == {"v": "two"}
    await store.delete("k", collection="one")
    assert await store.get("k", collection="two") == {"v": "two"}
    assert await store.get("k") == {"v": "default"}


async def test_many_forms_keep_order_and_report_missing(store: Store) -> None:
    keys = [f"k{i}" for i in range(30)]
    await store.put_many(keys, [{"i": i} for i in range(30)], collection="many")
    got = await store.get_many(["k3", "nope", "k0", "k3"], collection="many")
    assert got == [{"i": 3}, None, {"i": 0}, {"i": 3}]
    ttls = await store.ttl_many(["k1", "nope"], collection="many")
    assert ttls == [({"i": 1}, None), (None, None)]
    assert await store.delete_many(["k1", "k2", "nope", "k1"], collection="many") == 2
    assert await store.get_many(["k1", "k2", "k4"], collection="many") == [None, None, {"i": 4}]
    assert await store.get_many([], collection="many") == []
    await store.put_many([], [], collection="many")
    assert await store.delete_many([], collection="many") == 0


async def test_put_many_with_ttl(store: Store) -> None:
    await store.put_many(["a", "b"], [{"v": 1}, {"v": 2}], ttl=60)
    for value, ttl in await store.ttl_many(["a", "b"]):
        assert value is not None
        assert ttl is not None and 55 < ttl <= 60


async def test_put_many_rejects_mismatched_lengths(store: Store) -> None:
    with pytest.raises(SerializationError):
        await store.put_many(["a", "b"], [{"v": 1}])
    assert await store.get("a") is None


async def test_large_batches(store: Store) -> None:
    keys = [f"key-{i}" for i in range(1200)]
    await store.put_many(keys, [{"i": i} for i in range(1200)], collection="big")
    got = await store.get_many(keys, collection="big")
    assert [v["i"] for v in got if v is not None] == list(range(1200))
    assert len(await store.keys("big")) == 1200
    assert await store.delete_many(keys, collection="big") == 1200
    assert await store.keys("big") == []


# -- listing ----------------------------------------------------------------------------


async def test_keys_collections_and_limits(store: Store) -> None:
    for i in range(25):
        await store.put(f"k{i:02}", {"i": i}, collection="listing")
    await store.put("x", {"v": 1}, collection="other")
    keys = await store.keys("listing")
    assert sorted(keys) == [f"k{i:02}" for i in range(25)]
    assert len(await store.keys("listing", limit=10)) == 10
    assert await store.keys("listing", limit=0) == []
    assert set(await store.collections()) >= {"listing", "other"}
    assert len(await store.collections(limit=1)) == 1
    assert await store.keys("never-used") == []


async def test_destroy_collection_removes_only_that_collection(store: Store) -> None:
    await store.put_many(["a", "b"], [{"v": 1}, {"v": 2}], collection="doomed")
    await store.put("a", {"v": "keep"}, collection="kept")
    assert await store.destroy_collection("doomed") is True
    assert await store.keys("doomed") == []
    assert await store.get("a", collection="doomed") is None
    assert await store.get("a", collection="kept") == {"v": "keep"}
    assert "doomed" not in await store.collections()
    assert await store.destroy_collection("doomed") is False
    # the collection is usable again afterwards
    await store.put("c", {"v": 3}, collection="doomed")
    assert await store.get("c", collection="doomed") == {"v": 3}


# -- names ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TRICKY_NAMES)
async def test_special_characters_are_data(store: Store, name: str) -> None:
    await store.put(name, {"as": "key"}, collection="names")
    await store.put("k", {"as": "collection"}, collection=name)
    assert await store.get(name, collection="names") == {"as": "key"}
    assert await store.get("k", collection=name) == {"as": "collection"}
    assert name in await store.keys("names")
    assert "k" in await store.keys(name)
    assert name in await store.collections()


async def test_no_two_pairs_share_storage(store: Store) -> None:
    pairs = [
        ("a", "b::c"),
        ("a::b", "c"),
        ("a:b", ":c"),
        ("a", "b:c"),
        ("a:", "b"),
        ("a", ":b"),
        ("a*", "b"),
        ("a", "*"),
    ]
    for i, (collection, key) in enumerate(pairs):
        await store.put(key, {"i": i}, collection=collection)
    for i, (collection, key) in enumerate(pairs):
        assert await store.get(key, collection=collection) == {"i": i}
    # a glob-looking collection lists only its own keys
    assert await store.keys("a*") == ["b"]
    assert sorted(await store.keys("a")) == sorted(["b::c", "b:c", ":b", "*"])
    await store.destroy_collection("a*")
    assert await store.get("b", collection="a:") == {"i": 4}


@pytest.mark.parametrize("bad", ["", "\ud800", "x" * 10_000 + "\udc80", None, 5, b"bytes", ["k"]])
async def test_invalid_keys_are_refused(store: Store, bad: Any) -> None:
    with pytest.raises(InvalidKeyError):
        await store.put(bad, {"v": 1})
    with pytest.raises(InvalidKeyError):
        await store.get(bad)
    with pytest.raises(InvalidKeyError):
        await store.get_many(["ok", bad])
    with pytest.raises(InvalidKeyError):
        await store.put_if_absent(bad, {"v": 1})


@pytest.mark.parametrize("bad", ["", "\udfff", "c" * 10_000 + "\ud800", 7, b"c"])
async def test_invalid_collections_are_refused(store: Store, bad: Any) -> None:
    with pytest.raises(InvalidKeyError):
        await store.put("k", {"v": 1}, collection=bad)
    with pytest.raises(InvalidKeyError):
        await store.keys(bad)
    with pytest.raises(InvalidKeyError):
        await store.destroy_collection(bad)


LONG_NAMES = {
    "ascii": "n" * 10_000,
    "latin": "é" * 5_000,  # 2 bytes a character
    "cjk": "鍵" * 3_334,  # 3 bytes
    "emoji": "🔑" * 2_500,  # 4 bytes
    "mixed": ("a:é/鍵{🔑}*" * 700)[:5_000],
}
"""Names of about 10 KB of UTF-8: far over every backend's key field (DynamoDB 1,024/2,048 bytes)."""


def _near_miss(name: str) -> str:
    """``name`` with its last character changed: the same long prefix, another name."""
    return name[:-1] + ("x" if name[-1] != "x" else "y")


@pytest.mark.parametrize("kind", list(LONG_NAMES))
async def test_long_names_round_trip(store: Store, kind: str) -> None:
    name = LONG_NAMES[kind]
    collection, key = "c-" + name, "k-" + name
    await store.put(key, {"v": 1}, collection=collection, ttl=600)
    assert await store.get(key, collection=collection) == {"v": 1}
    value, remaining = await store.ttl(key, collection=collection)
    assert value == {"v": 1} and remaining is not None and 500 < remaining <= 600
    # listing gives back the names exactly as they were put
    assert await store.keys(collection) == [key]
    assert collection in await store.collections()
    # a long key in a short collection, a short key in a long collection
    await store.put(key, {"v": 2})
    await store.put("short", {"v": 3}, collection=collection)
    assert await store.get(key) == {"v": 2}
    assert sorted(await store.keys(collection)) == sorted([key, "short"])
    assert await store.delete(key, collection=collection) is True
    assert await store.delete(key, collection=collection) is False
    assert await store.get(key, collection=collection) is None
    assert await store.get(key) == {"v": 2}
    assert await store.keys(collection) == ["short"]


async def test_py_key_value_long_names(store: Store) -> None:
    # The names py-key-value-aio's own store suite uses: a 1,500-byte collection, an 800-byte key.
    collection, key = "test_collection" * 100, "test_key" * 100
    await store.put(key="test_key", value={"test": "test"}, collection=collection)
    assert await store.get(key="test_key", collection=collection) == {"test": "test"}
    await store.put(key=key, value={"test": "test"}, collection="test_collection")
    assert await store.get(key=key, collection="test_collection") == {"test": "test"}
    await store.put(key=key, value={"both": True}, collection=collection)
    assert await store.get(key=key, collection=collection) == {"both": True}
    assert sorted(await store.keys(collection)) == sorted(["test_key", key])
    assert collection in await store.collections()


async def test_long_names_sharing_a_prefix_are_distinct_entries(store: Store) -> None:
    base = LONG_NAMES["mixed"] + LONG_NAMES["ascii"]
    # Names a prefix-truncating scheme would merge: equal for thousands of bytes.
    names = [base, _near_miss(base), base + "!", base[:-1], base[:1024], base[:1025], base[:2049]]
    for i, name in enumerate(names):
        await store.put(name, {"i": i}, collection="prefixes")
        await store.put("k", {"i": i}, collection=name)
    for i, name in enumerate(names):
        assert await store.get(name, collection="prefixes") == {"i": i}
        assert await store.get("k", collection=name) == {"i": i}
        assert await store.keys(name) == ["k"]
    assert sorted(await store.keys("prefixes")) == sorted(names)
    assert set(names) <= set(await store.collections())
    assert await store.delete(names[1], collection="prefixes") is True
    assert await store.get(names[0], collection="prefixes") == {"i": 0}
    assert await store.destroy_collection(names[0]) is True
    assert await store.get("k", collection=names[1]) == {"i": 1}
    assert names[0] not in await store.collections()


@pytest.mark.parametrize("limit", [255, 1024, 2048])
async def test_long_names_never_meet_a_literal_name_of_their_stored_form(store: Store, limit: int) -> None:
    # A backend that stores long names hashed must still keep a literal name equal to that
    # hashed form (or beginning with the marker) apart from the long name it stands for.
    long = LONG_NAMES["latin"]
    lookalikes = [stored_name(long, limit), HASH_MARKER, HASH_MARKER + "x", HASH_MARKER + long]
    await store.put(long, {"v": "long"}, collection=long)
    for i, name in enumerate(lookalikes):
        await store.put(name, {"v": i}, collection=long)
        await store.put(long, {"v": i}, collection=name)
    assert await store.get(long, collection=long) == {"v": "long"}
    for i, name in enumerate(lookalikes):
        assert await store.get(name, collection=long) == {"v": i}
        assert await store.get(long, collection=name) == {"v": i}
        assert await store.keys(name) == [long]
    assert sorted(await store.keys(long)) == sorted([long, *lookalikes])
    assert {long, *lookalikes} <= set(await store.collections())


async def test_long_names_in_batches(store: Store) -> None:
    collection = LONG_NAMES["cjk"]
    keys = [f"{LONG_NAMES['emoji']}{i}" for i in range(30)]
    await store.put_many(keys, [{"i": i} for i in range(30)], collection=collection, ttl=600)
    got = await store.get_many([keys[3], "nope", keys[0], keys[3]], collection=collection)
    assert got == [{"i": 3}, None, {"i": 0}, {"i": 3}]
    ttls = await store.ttl_many([keys[1], _near_miss(keys[1])], collection=collection)
    assert ttls[0][0] == {"i": 1} and ttls[0][1] is not None and 500 < ttls[0][1] <= 600
    assert ttls[1] == (None, None)
    assert sorted(await store.keys(collection)) == sorted(keys)
    assert len(await store.keys(collection, limit=5)) == 5
    assert await store.delete_many([keys[1], keys[2], "nope", keys[1]], collection=collection) == 2
    assert await store.get_many(keys[:5], collection=collection) == [{"i": 0}, None, None, {"i": 3}, {"i": 4}]
    assert len(await store.keys(collection)) == 28
    assert await store.destroy_collection(collection) is True
    assert await store.keys(collection) == []
    assert collection not in await store.collections()
    assert await store.destroy_collection(collection) is False


async def test_long_names_in_atomic_operations(store: Store) -> None:
    collection, key = LONG_NAMES["emoji"], LONG_NAMES["mixed"]
    assert await store.put_if_absent(key, {"n": 0}, collection=collection) is True
    assert await store.put_if_absent(key, {"n": 9}, collection=collection) is False
    assert await store.put_if_absent(_near_miss(key), {"n": 9}, collection=collection) is True
    current = await store.get_versioned(key, collection=collection)
    assert current is not None and current.value == {"n": 0}
    assert await store.compare_and_set(key, {"n": 1}, version=current.version, collection=collection)
    assert not await store.compare_and_set(key, {"n": 2}, version=current.version, collection=collection)
    await asyncio.gather(
        *(
            store.update(key, lambda v: {"n": (v or {"n": 0})["n"] + 1}, collection=collection)
            for _ in range(10)
        )
    )
    latest = await store.get_versioned(key, collection=collection)
    assert latest is not None and latest.value == {"n": 11}
    assert not await store.delete_if_version(key, current.version, collection=collection)
    assert await store.delete_if_version(key, latest.version, collection=collection)
    assert await store.get(key, collection=collection) is None
    assert await store.update(key, lambda v: {"n": 100}, collection=collection, ttl=600) == {"n": 100}
    assert await store.update(key, lambda v: None, collection=collection) is None
    assert await store.keys(collection) == [_near_miss(key)]


# -- TTL --------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [True, False, 0, 0.0, -1, -0.5, math.nan, math.inf, -math.inf, "10", [1]])
async def test_invalid_ttls_are_refused(store: Store, bad: Any) -> None:
    with pytest.raises(InvalidTTLError):
        await store.put("k", {"v": 1}, ttl=bad)
    with pytest.raises(InvalidTTLError):
        await store.put_if_absent("k", {"v": 1}, ttl=bad)
    assert await store.get("k") is None


async def test_subsecond_ttl_is_neither_truncated_nor_early(store: Store) -> None:
    await store.put("short", {"v": 1}, ttl=0.6)
    value, remaining = await store.ttl("short")
    assert value == {"v": 1}
    assert remaining is not None and 0.3 < remaining <= 0.6
    await asyncio.sleep(0.25)
    assert await store.get("short") == {"v": 1}, "expired early"
    await asyncio.sleep(0.6)
    assert await store.get("short") is None, "did not expire"


async def test_ttl_is_not_rounded_down_to_whole_seconds(store: Store) -> None:
    await store.put("two", {"v": 1}, ttl=1.5)
    await asyncio.sleep(1.05)
    assert await store.get("two") == {"v": 1}
    _, remaining = await store.ttl("two")
    assert remaining is not None and 0 < remaining < 0.5


async def test_expired_entries_vanish_from_every_read(store: Store) -> None:
    await store.put("gone", {"v": 1}, collection="exp", ttl=0.2)
    await store.put("kept", {"v": 2}, collection="exp")
    await store.put("only", {"v": 3}, collection="exp-only", ttl=0.2)
    await asyncio.sleep(0.4)
    assert await store.get("gone", collection="exp") is None
    assert await store.ttl("gone", collection="exp") == (None, None)
    assert await store.get_many(["gone", "kept"], collection="exp") == [None, {"v": 2}]
    assert await store.keys("exp") == ["kept"]
    assert "exp-only" not in await store.collections()
    assert await store.get_versioned("gone", collection="exp") is None
    assert await store.delete("gone", collection="exp") is False
    await store.cull()
    assert await store.keys("exp") == ["kept"]


async def test_overwrite_without_ttl_removes_expiry(store: Store) -> None:
    await store.put("k", {"v": 1}, ttl=0.3)
    await store.put("k", {"v": 2})
    await asyncio.sleep(0.5)
    assert await store.ttl("k") == ({"v": 2}, None)


# -- values -----------------------------------------------------------------------------


class _Thing:
    pass


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "string",
        [1, 2],
        42,
        {1: "int key"},
        {"nan": math.nan},
        {"inf": [math.inf]},
        {"set": {1, 2}},
        {"bytes": b"x"},
        {"obj": _Thing()},
        {"nested": {"deep": [{"x": object()}]}},
        {"surrogate": "bad \ud800 text"},
        {"bad \udfff key": 1},
        {"list": ["ok", "\ud801"]},
    ],
)
async def test_non_json_values_are_refused_and_nothing_is_stored(store: Store, bad: Any) -> None:
    with pytest.raises(SerializationError):
        await store.put("k", bad)
    with pytest.raises(SerializationError):
        await store.put_if_absent("k", bad)
    with pytest.raises(SerializationError):
        await store.put_many(["k", "k2"], [{"ok": 1}, bad])
    assert await store.get_many(["k", "k2"]) == [None, None]


async def test_stored_values_are_isolated_from_callers(store: Store) -> None:
    value: dict[str, Any] = {"list": [1, {"x": 1}], "map": {"a": "b"}}
    await store.put("k", value)
    value["list"][1]["x"] = 99
    value["map"]["a"] = "changed"
    got = await store.get("k")
    assert got == {"list": [1, {"x": 1}], "map": {"a": "b"}}
    assert got is not None
    got["list"].append(3)
    got["map"].clear()
    assert await store.get("k") == {"list": [1, {"x": 1}], "map": {"a": "b"}}
    versioned = await store.get_versioned("k")
    assert versioned is not None
    versioned.value["map"]["a"] = "again"
    assert await store.get("k") == {"list": [1, {"x": 1}], "map": {"a": "b"}}


async def test_tuples_are_stored_as_lists_and_unicode_survives(store: Store) -> None:
    await store.put("k", {"t": (1, 2), "u": "ключ 🔑", "big": 2**53, "neg": -1.25e-10})
    assert await store.get("k") == {"t": [1, 2], "u": "ключ 🔑", "big": 2**53, "neg": -1.25e-10}


# -- atomic operations ------------------------------------------------------------------


async def test_put_if_absent(store: Store) -> None:
    assert await store.put_if_absent("k", {"v": 1}) is True
    assert await store.put_if_absent("k", {"v": 2}) is False
    assert await store.get("k") == {"v": 1}
    await store.delete("k")
    assert await store.put_if_absent("k", {"v": 3}, ttl=0.2) is True
    await asyncio.sleep(0.35)
    assert await store.put_if_absent("k", {"v": 4}) is True, "an expired entry must count as absent"
    assert await store.ttl("k") == ({"v": 4}, None)


async def test_put_if_absent_has_exactly_one_winner(store: Store) -> None:
    results = await asyncio.gather(*(store.put_if_absent("race", {"who": i}) for i in range(20)))
    assert sum(results) == 1
    winner = results.index(True)
    assert await store.get("race") == {"who": winner}


async def test_versioned_compare_and_set(store: Store) -> None:
    assert await store.get_versioned("k") is None
    await store.put("k", {"v": 1}, ttl=60)
    first = await store.get_versioned("k")
    assert first is not None and first.value == {"v": 1}
    assert first.ttl is not None and 55 < first.ttl <= 60
    assert await store.compare_and_set("k", {"v": 2}, version=first.version) is True
    second = await store.get_versioned("k")
    assert second is not None and second.value == {"v": 2} and second.version != first.version
    assert second.ttl is None, "compare_and_set without ttl stores an unexpiring value"
    assert await store.compare_and_set("k", {"v": 3}, version=first.version) is False
    assert await store.get("k") == {"v": 2}
    assert await store.compare_and_set("k", {"v": 3}, version=second.version, ttl=30) is True
    third = await store.get_versioned("k")
    assert third is not None and third.ttl is not None and 25 < third.ttl <= 30


async def test_stale_versions_fail_on_expiring_entries(store: Store) -> None:
    assert await store.put_if_absent("k", {"v": 1}, ttl=60) is True
    first = await store.get_versioned("k")
    assert first is not None
    assert await store.compare_and_set("k", {"v": 2}, version=first.version, ttl=30) is True
    second = await store.get_versioned("k")
    assert second is not None
    assert await store.compare_and_set("k", {"v": 3}, version=first.version, ttl=30) is False
    assert await store.compare_and_set("k", {"v": 3}, version=first.version) is False
    assert await store.delete_if_version("k", first.version) is False
    assert await store.get("k") == {"v": 2}
    assert await store.delete_if_version("k", second.version) is True


async def test_compare_and_set_never_creates_and_ignores_junk_versions(store: Store) -> None:
    assert await store.compare_and_set("missing", {"v": 1}, version="1") is False
    assert await store.get("missing") is None
    await store.put("k", {"v": 1})
    for junk in ["", "not-a-version", "0", "-1", "9" * 40]:
        assert await store.compare_and_set("k", {"v": 2}, version=junk) is False
        assert await store.delete_if_version("k", junk) is False
    assert await store.get("k") == {"v": 1}


async def test_versions_are_not_reused_after_delete(store: Store) -> None:
    await store.put("k", {"v": 1})
    old = await store.get_versioned("k")
    assert old is not None
    await store.delete("k")
    await store.put("k", {"v": 1})
    assert await store.compare_and_set("k", {"v": 2}, version=old.version) is False
    assert await store.delete_if_version("k", old.version) is False
    assert await store.get("k") == {"v": 1}


async def test_delete_if_version(store: Store) -> None:
    await store.put("k", {"v": 1})
    entry = await store.get_versioned("k")
    assert entry is not None
    await store.put("k", {"v": 2})
    assert await store.delete_if_version("k", entry.version) is False
    latest = await store.get_versioned("k")
    assert latest is not None
    assert await store.delete_if_version("k", latest.version) is True
    assert await store.get("k") is None
    assert await store.delete_if_version("k", latest.version) is False


async def test_atomic_operations_skip_expired_entries(store: Store) -> None:
    await store.put("k", {"v": 1}, ttl=0.2)
    entry = await store.get_versioned("k")
    assert entry is not None
    await asyncio.sleep(0.35)
    assert await store.compare_and_set("k", {"v": 2}, version=entry.version) is False
    assert await store.delete_if_version("k", entry.version) is False
    assert await store.get("k") is None


async def test_update_creates_modifies_and_deletes(store: Store) -> None:
    assert await store.update("n", lambda v: {"count": 1 if v is None else v["count"] + 1}) == {"count": 1}
    assert await store.update("n", lambda v: {"count": v["count"] + 1}) == {"count": 2}

    async def add_ten(v: dict[str, Any] | None) -> dict[str, Any]:
        await asyncio.sleep(0)
        assert v is not None
        return {"count": v["count"] + 10}

    assert await store.update("n", add_ten) == {"count": 12}
    assert await store.update("n", lambda v: None) is None
    assert await store.get("n") is None


async def test_update_keeps_remaining_ttl_unless_given(store: Store) -> None:
    await store.put("k", {"v": 1}, ttl=60)
    await store.update("k", lambda v: {"v": 2})
    value, ttl = await store.ttl("k")
    assert value == {"v": 2} and ttl is not None and 50 < ttl <= 60
    await store.update("k", lambda v: {"v": 3}, ttl=10)
    _, ttl = await store.ttl("k")
    assert ttl is not None and 5 < ttl <= 10


async def test_update_gives_up_with_conflict_error(store: Store) -> None:
    calls = 0

    async def always_loses(v: dict[str, Any] | None) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        await store.put("hot", {"other": calls})  # a competing writer wins every time
        return {"mine": True}

    await store.put("hot", {"start": True})
    with pytest.raises(ConflictError) as info:
        await store.update("hot", always_loses, max_attempts=3)
    assert calls == 3
    assert "attempts" in str(info.value)
    assert await store.get("hot") == {"other": 3}


async def test_update_refuses_bad_results_without_writing(store: Store) -> None:
    await store.put("k", {"v": 1})
    with pytest.raises(SerializationError):
        await store.update("k", lambda v: {"bad": object()})
    assert await store.get("k") == {"v": 1}


async def test_concurrent_updates_lose_nothing(store: Store) -> None:
    async def increment() -> None:
        await store.update("counter", lambda v: {"n": (v or {"n": 0})["n"] + 1})

    await asyncio.gather(*(increment() for _ in range(50)))
    assert await store.get("counter") == {"n": 50}


async def test_concurrent_instances_share_atomicity(shared_backend: Backend) -> None:
    backend = shared_backend
    stores = [backend.open() for _ in range(3)]
    try:
        results = await asyncio.gather(*(s.put_if_absent("once", {"i": i}) for i, s in enumerate(stores)))
        assert sum(results) == 1

        async def increment(s: Store) -> None:
            for _ in range(10):
                await s.update("shared", lambda v: {"n": (v or {"n": 0})["n"] + 1})

        await asyncio.gather(*(increment(s) for s in stores))
        assert await stores[0].get("shared") == {"n": 30}
    finally:
        for s in stores:
            await s.close()


WORKER = WORKERS / "contention_worker.py"


async def test_processes_updating_one_key_lose_nothing(shared_backend: Backend) -> None:
    backend = shared_backend
    assert backend.url is not None
    processes, increments = 4, 25
    env = {**os.environ, **backend.env}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            backend.url,
            str(increments),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(processes)
    ]
    outputs = [await p.communicate() for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err.decode()
    s = backend.open()
    try:
        assert await s.get("counter", collection="contention") == {"n": processes * increments}
        assert await s.get("claims", collection="contention") is not None
        claimed = [int(line) for out, _ in outputs for line in out.decode().split()]
        assert sum(claimed) == 1, "put_if_absent had more than one winner across processes"
    finally:
        await s.close()


# -- lifecycle --------------------------------------------------------------------------


async def test_closed_store_refuses_work(backend: Backend) -> None:
    s = backend.open()
    async with s:
        await s.put("k", {"v": 1})
    with pytest.raises(StoreClosedError):
        await s.get("k")
    with pytest.raises(StoreClosedError):
        await s.put("k", {"v": 1})
    await s.close()  # idempotent


async def test_repr_is_informative(store: Store) -> None:
    assert type(store).__name__ in repr(store)


# -- FastMCP's view of a store ----------------------------------------------------------


class _Token(BaseModel):
    access_token: str
    expires_in: int | None = None


async def test_pydantic_adapter_round_trip(store: Store) -> None:
    adapter = PydanticAdapter[_Token](
        key_value=store, pydantic_model=_Token, default_collection="mcp-oauth-token"
    )
    await adapter.put("https://host/mcp/tokens", _Token(access_token="abc", expires_in=5), ttl=60)
    got = await adapter.get("https://host/mcp/tokens")
    assert got == _Token(access_token="abc", expires_in=5)
    assert await adapter.delete("https://host/mcp/tokens") is True


# -- properties -------------------------------------------------------------------------

names = st.text(min_size=1, max_size=40).filter(lambda s: "\x00" not in s)
json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30).filter(lambda s: "\x00" not in s)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
values = st.dictionaries(st.text(max_size=12), json_values, max_size=5)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(st.tuples(names, names, values), min_size=1, max_size=6))
async def test_any_names_and_values_round_trip_without_collisions(
    store: Store, entries: list[tuple[str, str, dict[str, Any]]]
) -> None:
    expected: dict[tuple[str, str], dict[str, Any]] = {}
    for collection, key, value in entries:
        await store.put(key, value, collection=collection)
        expected[(collection, key)] = value
    for (collection, key), value in expected.items():
        assert await store.get(key, collection=collection) == value
        assert key in await store.keys(collection)
    for collection, key in expected:
        await store.delete(key, collection=collection)
    for collection, _ in expected:
        assert await store.keys(collection) == []


# -- fenced writes ----------------------------------------------------------------------


async def test_put_fenced_refuses_a_lower_token(store: Store) -> None:
    await store.put_fenced("r", {"v": 1}, lock="L", token=10, collection="f")
    await store.put_fenced("r", {"v": 2}, lock="L", token=10, collection="f")  # the same holder again
    await store.put_fenced("r", {"v": 3}, lock="L", token=12, collection="f", ttl=60)
    with pytest.raises(StaleFencingTokenError) as caught:
        await store.put_fenced("r", {"v": "stale"}, lock="L", token=11, collection="f")
    assert isinstance(caught.value, KeyValueOperationError)
    assert "token 11" in str(caught.value) and "token 12" in str(caught.value)
    value, ttl = await store.ttl("r", collection="f")
    assert value == {"v": 3, FENCES_FIELD: {"L": 12}}
    assert ttl is not None and 0 < ttl <= 60
    # Each lock keeps its own fence; a lower token of another lock is not stale.
    await store.put_fenced("r", {"v": 4}, lock="M", token=1, collection="f")
    assert await store.get("r", collection="f") == {"v": 4, FENCES_FIELD: {"L": 12, "M": 1}}
    with pytest.raises(StaleFencingTokenError):
        await store.put_fenced("r", {"v": "stale"}, lock="L", token=5, collection="f")
    with pytest.raises(ValueError, match="fencing token"):
        await store.put_fenced("r", {"v": 5}, lock="L", token="13", collection="f")  # type: ignore[arg-type]


async def test_concurrent_fenced_writers_leave_the_highest_token(backend: Backend) -> None:
    stores = [backend.open() for _ in range(3)] if backend.shared_across_instances else [backend.open()]
    try:
        tokens = list(range(1, 31))
        random.Random(7).shuffle(tokens)
        outcomes: dict[int, bool] = {}

        async def write(token: int) -> None:
            s = stores[token % len(stores)]
            try:
                await s.put_fenced("r", {"token": token}, lock="L", token=token, collection="race")
                outcomes[token] = True
            except StaleFencingTokenError:
                outcomes[token] = False

        await asyncio.gather(*(write(t) for t in tokens))
        final = await stores[0].get("r", collection="race")
        assert final == {"token": 30, FENCES_FIELD: {"L": 30}}
        assert outcomes[30] is True and len(outcomes) == len(tokens)
    finally:
        for s in stores:
            await s.close()
