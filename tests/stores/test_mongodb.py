"""MongoDBStore beyond the shared contract: layout, indexes, BSON edge cases, outages.

Runs against every MongoDB stand-in installed here (nx-27017 always, mongoeco where
Python >= 3.13 exists); the contract itself is in tests/conformance.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import ConnectionFailure

from fastmcp_sessions import open_store
from fastmcp_sessions.errors import (
    EntryTooLargeError,
    StoreConnectionError,
    StoreSetupError,
    ValueTooLargeError,
    key_ref,
)
from fastmcp_sessions.stores import mongodb
from fastmcp_sessions.stores._names import HASH_MARKER, stored_name
from fastmcp_sessions.stores.mongodb import (
    MAX_COLLECTION_FIELD_BYTES,
    MAX_DOCUMENT_BYTES,
    MAX_KEY_FIELD_BYTES,
    MongoDBStore,
    entry_id,
)
from tests._support.servers import MongoServer, available

KINDS = ["nx", *(["mongoeco"] if available("mongoeco") else [])]


@pytest.fixture(params=KINDS)
def mongo(request: pytest.FixtureRequest) -> MongoServer:
    server: MongoServer = request.getfixturevalue(f"mongo_{request.param}_server")
    return server


@pytest.fixture
def dbname(mongo: MongoServer) -> Iterator[str]:
    name = "t" + secrets.token_hex(6)
    yield name
    from pymongo import MongoClient

    with MongoClient(mongo.url, serverSelectionTimeoutMS=2000) as client:
        client.drop_database(name)


@pytest.fixture
async def raw(mongo: MongoServer) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo.url, serverSelectionTimeoutMS=3000)
    yield client
    await client.close()


@pytest.fixture
async def mstore(mongo: MongoServer, dbname: str) -> AsyncIterator[MongoDBStore]:
    s = MongoDBStore(f"{mongo.url}/?database={dbname}")
    yield s
    await s.close()


async def _doc(
    raw: AsyncMongoClient[dict[str, Any]], db: str, collection: str, key: str
) -> dict[str, Any] | None:
    return await raw[db]["entries"].find_one({"_id": entry_id(collection, key)})


def _epoch(date: dt.datetime) -> float:
    return (date if date.tzinfo else date.replace(tzinfo=dt.UTC)).timestamp()


# -- layout -------------------------------------------------------------------------------


async def test_one_document_per_entry_with_a_native_sub_document(
    mstore: MongoDBStore, raw: AsyncMongoClient[dict[str, Any]], dbname: str
) -> None:
    value = {"user": {"name": "ada", "roles": ["admin", {"scope": 2}]}, "n": 1.5}
    before = time.time()
    await mstore.put("k", value, ttl=100.0005)
    doc = await _doc(raw, dbname, "default_collection", "k")
    assert doc is not None
    assert doc["_id"] == "18:default_collection:k"
    assert (doc["c"], doc["k"]) == ("default_collection", "k")
    assert doc["d"] == value, "the value is a BSON sub-document, not a JSON string"
    assert "j" not in doc
    assert isinstance(doc["v"], str) and len(doc["v"]) >= 16
    # exact expiry kept as a double; the TTL-index date is that rounded UP to the millisecond
    assert before + 100.0005 <= doc["x"] <= time.time() + 100.0005
    expires_at = _epoch(doc["expires_at"])
    assert doc["x"] <= expires_at < doc["x"] + 0.0011

    await mstore.put("k", {"v": 2})
    doc2 = await _doc(raw, dbname, "default_collection", "k")
    assert doc2 is not None
    assert "x" not in doc2 and "expires_at" not in doc2, "overwriting without a TTL removes the expiry"
    assert doc2["v"] != doc["v"]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("a:b", "c"), ("a", "b:c")),
        (("a", ":b"), ("a:", "b")),
        (("1:a", "b"), ("1", "a:b")),
        (("ab", "c"), ("a", "bc")),
    ],
)
def test_ids_are_unambiguous(a: tuple[str, str], b: tuple[str, str]) -> None:
    assert entry_id(*a) != entry_id(*b)


async def test_names_that_fit_are_stored_as_they_are(
    mstore: MongoDBStore, raw: AsyncMongoClient[dict[str, Any]], dbname: str
) -> None:
    # The layout of names within the field limits never changes, so older data stays readable.
    collection, key = "c" * MAX_COLLECTION_FIELD_BYTES, "é" * (MAX_KEY_FIELD_BYTES // 2)
    await mstore.put(key, {"v": 1}, collection=collection)
    doc = await raw[dbname]["entries"].find_one({"_id": f"{len(collection)}:{collection}:{key}"})
    assert doc is not None and (doc["c"], doc["k"]) == (collection, key)
    assert "cn" not in doc and "kn" not in doc
    # a document as an earlier version wrote it is found, listed and deleted
    old_key = "k" * 1024
    await raw[dbname]["entries"].insert_one(
        {"_id": f"3:old:{old_key}", "c": "old", "k": old_key, "d": {"old": True}, "v": "v" * 16}
    )
    assert await mstore.get(old_key, collection="old") == {"old": True}
    assert await mstore.keys("old") == [old_key]
    assert "old" in await mstore.collections()
    assert await mstore.delete(old_key, collection="old") is True


async def test_long_names_are_hashed_with_the_names_kept(
    mstore: MongoDBStore, raw: AsyncMongoClient[dict[str, Any]], dbname: str
) -> None:
    collection, key = "c" * (MAX_COLLECTION_FIELD_BYTES + 1), "鍵" * 3400  # 256 and 10,200 bytes
    await mstore.put(key, {"v": 1}, collection=collection, ttl=600)
    docs = await raw[dbname]["entries"].find({}).to_list()
    assert len(docs) == 1
    doc = docs[0]
    c, k = stored_name(collection, MAX_COLLECTION_FIELD_BYTES), stored_name(key, MAX_KEY_FIELD_BYTES)
    assert (doc["c"], doc["k"]) == (c, k) and doc["_id"] == entry_id(collection, key) == f"{len(c)}:{c}:{k}"
    assert c.startswith(HASH_MARKER) and k.startswith(HASH_MARKER)
    assert len(doc["_id"].encode()) < 1400, "_id and the (c, k) index entry stay small"
    assert (doc["cn"], doc["kn"]) == (collection, key)
    assert await mstore.keys(collection) == [key]
    assert await mstore.collections() == [collection]
    await mstore.put("short", {"v": 2}, collection=collection)
    await mstore.put(key, {"v": 3}, collection="short")
    short_doc = await _doc(raw, dbname, "short", key)
    assert short_doc is not None and short_doc["c"] == "short" and "cn" not in short_doc
    assert sorted(await mstore.keys(collection)) == sorted([key, "short"])
    assert await mstore.destroy_collection(collection) is True
    assert await mstore.collections() == ["short"]


async def test_the_size_check_counts_long_names(mstore: MongoDBStore) -> None:
    # Under the 16 MiB limit with short names; over it with a long key kept in full beside its hash.
    near = {"blob": "x" * (MAX_DOCUMENT_BYTES - 9 * 1024)}
    with pytest.raises(EntryTooLargeError):
        await mstore.put("k" * 20_000, near)
    with pytest.raises(EntryTooLargeError):
        await mstore.put("k", near, collection="c" * 20_000)
    assert await mstore.collections() == []


async def test_indexes_are_ensured_on_an_existing_collection(
    mongo: MongoServer, raw: AsyncMongoClient[dict[str, Any]], dbname: str
) -> None:
    # A collection somebody created before, without our indexes.
    await raw[dbname]["kv"].insert_one({"_id": "someone-else", "x": 1})
    async with MongoDBStore(f"{mongo.url}/{dbname}?collection=kv") as s:
        assert await s.get("k") is None
    indexes = await raw[dbname]["kv"].index_information()
    ttl = [i for i in indexes.values() if list(i["key"]) == [("expires_at", 1)]]
    assert ttl and ttl[0].get("expireAfterSeconds") == 0
    assert any(list(i["key"]) == [("c", 1), ("k", 1)] for i in indexes.values())


async def test_create_indexes_false_touches_nothing(
    mongo: MongoServer, raw: AsyncMongoClient[dict[str, Any]], dbname: str
) -> None:
    async with MongoDBStore(f"{mongo.url}/?database={dbname}&create_indexes=false") as s:
        await s.put("k", {"v": 1})
    indexes = await raw[dbname]["entries"].index_information()
    assert all(list(i["key"]) == [("_id", 1)] for i in indexes.values())


# -- values -------------------------------------------------------------------------------

UNBSONABLE = [
    {"$set": {"x": 1}},
    {"a.b": 1},
    {"nul\x00key": 1},
    {"": "empty key"},
    {"big": 2**63},
    {"small": -(2**63) - 1},
    {"deep": [1, {"inner": [{"$ref": "x", "y.z": 2}]}]},
]
# Lone surrogates are refused for every backend before they reach one (the conformance suite).


@pytest.mark.parametrize("value", UNBSONABLE, ids=range(len(UNBSONABLE)))
async def test_values_bson_cannot_hold_round_trip_as_json(
    mstore: MongoDBStore, raw: AsyncMongoClient[dict[str, Any]], dbname: str, value: dict[str, Any]
) -> None:
    await mstore.put("k", value)
    assert await mstore.get("k") == value
    assert await mstore.get_many(["k"]) == [value]
    doc = await _doc(raw, dbname, "default_collection", "k")
    assert doc is not None and isinstance(doc["j"], str) and "d" not in doc
    # and the atomic paths take the same road
    assert await mstore.update("k", lambda v: {**(v or {}), "$n": 1}) == {**value, "$n": 1}
    assert await mstore.put_if_absent("k2", value) is True
    assert await mstore.get("k2") == value


async def test_switching_between_the_two_value_forms_leaves_no_trace(
    mstore: MongoDBStore, raw: AsyncMongoClient[dict[str, Any]], dbname: str
) -> None:
    await mstore.put("k", {"$x": 1})
    await mstore.put("k", {"plain": 1})
    doc = await _doc(raw, dbname, "default_collection", "k")
    assert doc is not None and doc["d"] == {"plain": 1} and "j" not in doc
    await mstore.put("k", {"a.b": 2})
    doc = await _doc(raw, dbname, "default_collection", "k")
    assert doc is not None and "d" not in doc and isinstance(doc["j"], str)
    assert await mstore.get("k") == {"a.b": 2}


async def test_int64_and_float_edges_stay_native_and_read_back_as_plain_types(
    mstore: MongoDBStore, raw: AsyncMongoClient[dict[str, Any]], dbname: str
) -> None:
    value = {
        "max": 2**63 - 1,
        "min": -(2**63),
        "mid": 2**40,
        "list": [2**40, {"n": -(2**50)}],
        "neg0": -0.0,
        "tiny": 5e-324,
        "sum": 0.1 + 0.2,
        "huge": 1.7976931348623157e308,
    }
    await mstore.put("k", value)
    doc = await _doc(raw, dbname, "default_collection", "k")
    assert doc is not None and "d" in doc
    got = await mstore.get("k")
    assert got == value
    assert got is not None
    assert type(got["max"]) is int and type(got["list"][0]) is int and type(got["list"][1]["n"]) is int
    assert math.copysign(1.0, got["neg0"]) == -1.0
    # update() deep-copies what it read: plain types only, or it would fail
    assert await mstore.update("k", lambda v: {**(v or {}), "mid": 1}) == {**value, "mid": 1}


async def test_too_large_documents_are_a_typed_error_and_nothing_is_stored(mstore: MongoDBStore) -> None:
    huge = {"blob": "x" * (17 * 1024 * 1024)}
    with pytest.raises(EntryTooLargeError) as info:
        await mstore.put("big", huge)
    assert isinstance(info.value, ValueTooLargeError)
    assert (
        "16 MiB" in str(info.value) and key_ref("big") in str(info.value) and "'big'" not in str(info.value)
    )
    with pytest.raises(ValueTooLargeError):
        await mstore.put_many(["small", "big"], [{"v": 1}, huge])
    with pytest.raises(ValueTooLargeError):
        await mstore.put_if_absent("big", huge)
    assert await mstore.get("big") is None


# -- atomic operations ----------------------------------------------------------------------


async def test_put_if_absent_takes_over_an_expired_document_exactly_once(
    mstore: MongoDBStore, raw: AsyncMongoClient[dict[str, Any]], dbname: str
) -> None:
    await mstore.put("k", {"old": True}, ttl=0.1)
    await asyncio.sleep(0.2)
    # The document is still there (the TTL monitor has not run), but expired.
    results = await asyncio.gather(*(mstore.put_if_absent("k", {"who": i}) for i in range(10)))
    assert sum(results) == 1
    assert await mstore.get("k") == {"who": results.index(True)}
    assert await mstore.ttl("k") == ({"who": results.index(True)}, None)


async def test_delete_many_counts_live_entries_only(mstore: MongoDBStore) -> None:
    await mstore.put_many(["a", "b"], [{"v": 1}, {"v": 2}])
    await mstore.put("gone", {"v": 3}, ttl=0.1)
    await asyncio.sleep(0.2)
    assert await mstore.delete_many(["a", "gone", "nope", "a"]) == 1
    assert await mstore.get_many(["a", "b", "gone"]) == [None, {"v": 2}, None]


async def test_cull_deletes_expired_documents_now(
    mstore: MongoDBStore, raw: AsyncMongoClient[dict[str, Any]], dbname: str
) -> None:
    await mstore.put("gone", {"v": 1}, ttl=0.1)
    await mstore.put("kept", {"v": 2})
    await asyncio.sleep(0.2)
    await mstore.cull()
    assert await raw[dbname]["entries"].count_documents({}) == 1


# -- construction -------------------------------------------------------------------------


async def test_url_options_are_ours_or_pymongo_s(mongo: MongoServer) -> None:
    s = open_store(f"{mongo.url}/pathdb?collection=kv&timeout=1.5&appname=custom&default_collection=dc")
    assert isinstance(s, MongoDBStore)
    try:
        assert (s.database, s.collection_name, s.timeout, s.default_collection) == ("pathdb", "kv", 1.5, "dc")
        options = s._client.options
        assert options.server_selection_timeout == 1.5
        assert options.pool_options.connect_timeout == 1.5
        assert options.pool_options.socket_timeout == 30
        assert options.pool_options.metadata["application"]["name"] == "custom"
    finally:
        await s.close()
    # the URL's own pymongo settings win over our defaults; the query database over the path
    s = MongoDBStore(f"{mongo.url}/pathdb?serverSelectionTimeoutMS=700&database=querydb", timeout=9)
    try:
        assert s.database == "querydb"
        assert s._client.options.server_selection_timeout == 0.7
        assert s._client.options.pool_options.connect_timeout == 9
    finally:
        await s.close()
    # keywords win over the URL
    s = MongoDBStore(f"{mongo.url}/?database=a&collection=b", database="c", collection="d")
    assert (s.database, s.collection_name) == ("c", "d")
    await s.close()


def test_bad_options_are_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="timeout"):
        open_store("mongodb://127.0.0.1:1/?timeout=soon")
    with pytest.raises(ValueError, match="timeout"):
        MongoDBStore("mongodb://127.0.0.1:1/", timeout=0)
    with pytest.raises(ValueError, match="database"):
        MongoDBStore("mongodb://127.0.0.1:1/", database="has space/and.dot")
    with pytest.raises(ValueError, match="URL or client"):
        MongoDBStore()
    with pytest.raises(StoreSetupError, match="connection-string"):
        MongoDBStore("mongodb://127.0.0.1:1,127.0.0.2:1/?directConnection=true")
    with pytest.raises(StoreSetupError, match="connection-string"):
        MongoDBStore("mongodb://127.0.0.1:notaport/")


async def test_srv_urls_pick_this_store_without_any_network_io() -> None:
    s = open_store("mongodb+srv://user:secret@cluster0.example.net/app?collection=kv&retryWrites=false")
    assert isinstance(s, MongoDBStore)
    assert (s.database, s.collection_name) == ("app", "kv")
    assert "secret" not in repr(s) and "cluster0.example.net" in repr(s)
    await s.close()


async def test_a_given_client_is_used_and_not_closed(mongo: MongoServer, dbname: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo.url)
    try:
        async with MongoDBStore(client=client, database=dbname) as s:
            await s.put("k", {"v": 1})
            assert "client=<given>" in repr(s)
        # still usable after the store closed
        assert await client[dbname]["entries"].count_documents({}) == 1
    finally:
        await client.close()


def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mongodb, "HAVE_PYMONGO", False)
    with pytest.raises(ImportError, match=r"pip install 'fastmcp-sessions\[mongodb\]'"):
        open_store("mongodb://127.0.0.1:1/")
    with pytest.raises(ImportError, match=r"fastmcp-sessions\[mongodb\]"):
        MongoDBStore("mongodb://127.0.0.1:1/")


def test_the_module_imports_without_pymongo() -> None:
    # A fresh interpreter where pymongo and bson cannot be imported at all.
    code = (
        "import sys; sys.modules['pymongo'] = None; sys.modules['bson'] = None\n"
        "from fastmcp_sessions import open_store\n"
        "try:\n"
        "    open_store('mongodb://127.0.0.1:1/')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=os.environ
    )
    assert out.returncode == 0, out.stderr
    assert "pip install 'fastmcp-sessions[mongodb]'" in out.stdout


# -- outages ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_outage_raises_connection_error_in_bounded_time_then_recovers(kind: str) -> None:
    with MongoServer(kind=kind) as server:
        s = MongoDBStore(f"{server.url}/?database=outage&socketTimeoutMS=1000", timeout=1)
        try:
            await s.put("k", {"v": 1}, ttl=60)

            server.kill()  # stopped mid-run
            for op in (s.get("k"), s.put("k", {"v": 2}), s.update("k", lambda v: {"v": 3})):
                started = time.monotonic()
                with pytest.raises(StoreConnectionError) as info:
                    await op
                assert time.monotonic() - started < 5, "took too long to give up"
                assert isinstance(info.value.__cause__, ConnectionFailure)
                assert "reconnects on its own" in str(info.value)

            server.start()  # same port, empty (in-memory) data
            await s.put("k", {"v": 4}, ttl=60)
            assert await s.get("k") == {"v": 4}
            # the indexes were ensured again on the fresh server
            indexes = await s._coll.index_information()
            assert any(i.get("expireAfterSeconds") == 0 for i in indexes.values())

            server.pause()  # accepts connections, answers nothing
            started = time.monotonic()
            with pytest.raises(StoreConnectionError):
                await s.get("k")
            assert time.monotonic() - started < 8
            server.resume()
            assert await s.get("k") == {"v": 4}
        finally:
            server.resume()
            await s.close()


if available("mongoeco"):

    async def test_wrong_credentials_are_a_setup_error() -> None:
        with MongoServer(kind="mongoeco", username="app", password="right") as server:
            good = MongoDBStore(server.url + "&database=auth")
            await good.put("k", {"v": 1})
            await good.close()
            bad_url = server.url.replace(":right@", ":wrong@") + "&database=auth"
            async with MongoDBStore(bad_url, timeout=2) as bad:
                with pytest.raises(StoreSetupError, match="user and password") as info:
                    await bad.get("k")
            assert "wrong" not in str(info.value), "the password leaked into the message"
