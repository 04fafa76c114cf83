"""DynamoDBStore beyond the shared contract: table setup, item layout, batching, limits,
outages. Runs against DynamoDB Local and moto; the contract itself is in tests/conformance.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aiobotocore.session import AioSession
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from fastmcp_sessions import open_store
from fastmcp_sessions.errors import (
    EntryTooLargeError,
    InvalidKeyError,
    StoreConnectionError,
    StoreSetupError,
    ValueTooLargeError,
    key_ref,
)
from fastmcp_sessions.stores import dynamodb
from fastmcp_sessions.stores._names import HASH_MARKER, stored_name
from fastmcp_sessions.stores.dynamodb import (
    MAX_ITEM_BYTES,
    MAX_PARTITION_KEY_BYTES,
    MAX_SORT_KEY_BYTES,
    DynamoDBStore,
)
from tests._support.backends_dynamodb import CREDENTIALS, REGION
from tests._support.servers import DynamoDBServer


@pytest.fixture(params=["local", "moto"])
def ddb(request: pytest.FixtureRequest) -> DynamoDBServer:
    server: DynamoDBServer = request.getfixturevalue(f"dynamodb_{request.param}_server")
    return server


@pytest.fixture
def raw(ddb: DynamoDBServer) -> Any:
    return boto3.client("dynamodb", **ddb.client_kwargs())


@pytest.fixture
def table(raw: Any) -> Iterator[str]:
    name = "t" + secrets.token_hex(6)
    yield name
    with contextlib.suppress(raw.exceptions.ResourceNotFoundException):
        raw.delete_table(TableName=name)


def make(ddb: DynamoDBServer, table: str, **options: Any) -> DynamoDBStore:
    options.setdefault("create_table", True)
    return DynamoDBStore(table, region=REGION, endpoint_url=ddb.endpoint_url, **CREDENTIALS, **options)


class Calls:
    """Records every DynamoDB API call a session's clients make (operation name, parameters)."""

    def __init__(self) -> None:
        self.session = AioSession()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.session.register("provide-client-params.dynamodb", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, params))

    def named(self, name: str) -> list[dict[str, Any]]:
        return [params for op, params in self.calls if op == name]

    def clear(self) -> None:
        self.calls.clear()


# -- the table ----------------------------------------------------------------------------


async def test_a_missing_table_is_a_clear_setup_error(ddb: DynamoDBServer, table: str, raw: Any) -> None:
    async with make(ddb, table, create_table=False) as s:
        with pytest.raises(StoreSetupError) as info:
            await s.get("k")
    message = str(info.value)
    assert repr(table) in message and "create_table=true" in message and "'pk'" in message
    with pytest.raises(raw.exceptions.ResourceNotFoundException):
        raw.describe_table(TableName=table)


async def test_create_table_makes_an_on_demand_table_with_ttl(
    ddb: DynamoDBServer, table: str, raw: Any
) -> None:
    async with make(ddb, table) as s:
        await s.put("k", {"v": 1})
    description = raw.describe_table(TableName=table)["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in description["KeySchema"]} == {
        "pk": "HASH",
        "sk": "RANGE",
    }
    assert description.get("BillingModeSummary", {}).get("BillingMode") == "PAY_PER_REQUEST"
    ttl = raw.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}


async def test_create_table_can_be_provisioned(ddb: DynamoDBServer, table: str, raw: Any) -> None:
    async with make(ddb, table, billing_mode="provisioned", read_capacity=3, write_capacity=4) as s:
        await s.put("k", {"v": 1})
    throughput = raw.describe_table(TableName=table)["Table"]["ProvisionedThroughput"]
    assert (throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]) == (3, 4)


async def test_a_table_with_another_schema_is_refused(ddb: DynamoDBServer, table: str, raw: Any) -> None:
    raw.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    async with make(ddb, table) as s:
        with pytest.raises(StoreSetupError, match="partition key 'pk'"):
            await s.put("k", {"v": 1})


async def test_an_existing_table_without_ttl_works_and_warns(
    ddb: DynamoDBServer, table: str, raw: Any, caplog: pytest.LogCaptureFixture
) -> None:
    raw.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    with caplog.at_level(logging.WARNING, logger="fastmcp_sessions"):
        async with make(ddb, table, create_table=False) as s:
            await s.put("k", {"v": 1})
            assert await s.get("k") == {"v": 1}
    assert "enable TTL on attribute 'ttl'" in caplog.text
    # the store does not change a table it did not create
    assert (
        raw.describe_time_to_live(TableName=table)["TimeToLiveDescription"]["TimeToLiveStatus"] == "DISABLED"
    )


async def test_a_table_deleted_under_the_store_is_created_again(
    ddb: DynamoDBServer, table: str, raw: Any
) -> None:
    async with make(ddb, table) as s:
        await s.put("k", {"v": 1})
        raw.delete_table(TableName=table)
        await s.put("k", {"v": 2})
        assert await s.get("k") == {"v": 2}


# -- items ----------------------------------------------------------------------------------


async def test_item_layout_and_expiry_rounding(ddb: DynamoDBServer, table: str, raw: Any) -> None:
    value = {"f": 0.1, "n": 2**70, "s": "ключ 🔑", "l": [None, True, {"x": -0.0}]}
    async with make(ddb, table) as s:
        before = time.time()
        await s.put("k", value, ttl=1.2345)
        item = raw.get_item(TableName=table, Key={"pk": {"S": "default_collection"}, "sk": {"S": "k"}})[
            "Item"
        ]
        assert json.loads(item["value"]["S"]) == value, "the value is JSON text in a string attribute"
        assert isinstance(item["version"]["S"], str) and len(item["version"]["S"]) >= 16
        expires_ms = int(item["expires_ms"]["N"])
        assert math.ceil((before + 1.2345) * 1000) <= expires_ms <= math.ceil((time.time() + 1.2345) * 1000)
        assert int(item["ttl"]["N"]) == math.ceil(expires_ms / 1000), "TTL seconds are rounded up"
        assert await s.get("k") == value

        await s.put("k", {"v": 2})
        item = raw.get_item(TableName=table, Key={"pk": {"S": "default_collection"}, "sk": {"S": "k"}})[
            "Item"
        ]
        assert "expires_ms" not in item and "ttl" not in item, "overwriting without a TTL removes the expiry"


async def test_names_that_fit_are_stored_as_they_are(ddb: DynamoDBServer, table: str, raw: Any) -> None:
    # The layout of names within the key limits never changes, so older data stays readable.
    collection, key = "c" * MAX_PARTITION_KEY_BYTES, "é" * (MAX_SORT_KEY_BYTES // 2)
    async with make(ddb, table) as s:
        await s.put(key, {"v": 1}, collection=collection)
        item = raw.get_item(TableName=table, Key={"pk": {"S": collection}, "sk": {"S": key}})["Item"]
        assert "cn" not in item and "kn" not in item
        # an item as an earlier version wrote it is found, listed and deleted
        raw.put_item(
            TableName=table,
            Item={
                "pk": {"S": "old"},
                "sk": {"S": "k" * 1024},
                "value": {"S": '{"old":true}'},
                "version": {"S": "v" * 16},
            },
        )
        assert await s.get("k" * 1024, collection="old") == {"old": True}
        assert await s.keys("old") == ["k" * 1024]
        assert "old" in await s.collections()
        assert await s.delete("k" * 1024, collection="old") is True


async def test_long_names_are_hashed_with_the_names_kept(ddb: DynamoDBServer, table: str, raw: Any) -> None:
    collection, key = "c" * (MAX_PARTITION_KEY_BYTES + 1), "鍵" * 400  # 2,049 and 1,200 bytes
    async with make(ddb, table) as s:
        await s.put(key, {"v": 1}, collection=collection, ttl=600)
        items = raw.scan(TableName=table)["Items"]
        assert len(items) == 1
        item = items[0]
        assert item["pk"]["S"] == stored_name(collection, MAX_PARTITION_KEY_BYTES)
        assert item["sk"]["S"] == stored_name(key, MAX_SORT_KEY_BYTES)
        assert item["pk"]["S"].startswith(HASH_MARKER) and item["sk"]["S"].startswith(HASH_MARKER)
        assert len(item["pk"]["S"].encode()) <= MAX_PARTITION_KEY_BYTES
        assert len(item["sk"]["S"].encode()) <= MAX_SORT_KEY_BYTES
        assert (item["cn"]["S"], item["kn"]["S"]) == (collection, key)
        assert await s.keys(collection) == [key]
        assert await s.collections() == [collection]
        # a key that is only long in one part: the other stays as it is
        await s.put("short", {"v": 2}, collection=collection)
        await s.put(key, {"v": 3}, collection="short")
        assert raw.get_item(
            TableName=table, Key={"pk": {"S": "short"}, "sk": {"S": stored_name(key, MAX_SORT_KEY_BYTES)}}
        )["Item"]["kn"] == {"S": key}
        assert sorted(await s.keys(collection)) == sorted([key, "short"])
        assert await s.destroy_collection(collection) is True
        assert await s.collections() == ["short"]


async def test_values_json_escapes_round_trip(ddb: DynamoDBServer, table: str) -> None:
    values = [{"$x": {"a.b": 2**80}}, {"": "\x00"}, {"ключ": "日本"}]
    async with make(ddb, table) as s:
        for i, value in enumerate(values):
            await s.put(f"k{i}", value)
        assert await s.get_many([f"k{i}" for i in range(len(values))]) == values


async def test_reads_are_strongly_consistent(ddb: DynamoDBServer, table: str) -> None:
    calls = Calls()
    async with make(ddb, table, session=calls.session) as s:
        await s.put_many(["a", "b"], [{"v": 1}, {"v": 2}])
        await s.get("a")
        await s.ttl("a")
        await s.get_versioned("a")
        await s.get_many(["a", "b"])
        await s.keys()
        await s.collections()
    reads = [(op, p) for op, p in calls.calls if op in ("GetItem", "Query", "Scan")]
    assert {op for op, _ in reads} == {"GetItem", "Query", "Scan"}
    assert all(p.get("ConsistentRead") is True for _, p in reads)
    assert all(p["RequestItems"][table]["ConsistentRead"] is True for p in calls.named("BatchGetItem"))


async def test_batches_respect_dynamodb_limits(ddb: DynamoDBServer, table: str) -> None:
    calls = Calls()
    keys = [f"k{i}" for i in range(260)]
    async with make(ddb, table, session=calls.session) as s:
        await s.put("warm-up", {"v": 0})
        calls.clear()
        await s.put_many(keys + keys[:5], [{"i": i} for i in range(265)])  # duplicates: last wins
        writes = calls.named("BatchWriteItem")
        assert len(writes) == math.ceil(260 / 25)
        assert all(len(p["RequestItems"][table]) <= 25 for p in writes)
        calls.clear()

        got = await s.get_many([*keys, "k0", "missing"])
        gets = calls.named("BatchGetItem")
        assert len(gets) == 3 and all(len(p["RequestItems"][table]["Keys"]) <= 100 for p in gets)
        assert got[:5] == [{"i": 260 + i} for i in range(5)] and got[5] == {"i": 5}
        assert got[-2:] == [{"i": 260}, None]
        calls.clear()

        assert await s.delete_many([*keys, "missing"]) == 260
        assert len(calls.named("BatchGetItem")) == 3
        assert len(calls.named("BatchWriteItem")) == math.ceil(260 / 25)
        assert await s.keys() == ["warm-up"]


async def test_unprocessed_items_are_retried_until_done(ddb: DynamoDBServer, table: str) -> None:
    session = AioSession()
    async with session.create_client("dynamodb", **_client_kwargs(ddb)) as client:
        real_write, real_get = client.batch_write_item, client.batch_get_item
        throttled = {"write": 0, "get": 0}

        async def stingy_write(**params: Any) -> Any:
            # Like a throttled table: do the first item, hand the rest back, three times.
            requests = params["RequestItems"][table]
            if throttled["write"] < 3 and len(requests) > 1:
                throttled["write"] += 1
                await real_write(RequestItems={table: requests[:1]})
                return {"UnprocessedItems": {table: requests[1:]}}
            return await real_write(**params)

        async def stingy_get(**params: Any) -> Any:
            request = params["RequestItems"][table]
            if throttled["get"] < 3 and len(request["Keys"]) > 1:
                throttled["get"] += 1
                response = await real_get(RequestItems={table: {**request, "Keys": request["Keys"][:1]}})
                response["UnprocessedKeys"] = {table: {**request, "Keys": request["Keys"][1:]}}
                return response
            return await real_get(**params)

        client.batch_write_item = stingy_write  # type: ignore[method-assign]
        client.batch_get_item = stingy_get  # type: ignore[method-assign]
        async with DynamoDBStore(table, client=client, create_table=True) as s:
            await s.put_many([f"k{i}" for i in range(10)], [{"i": i} for i in range(10)])
            assert await s.get_many([f"k{i}" for i in range(10)]) == [{"i": i} for i in range(10)]
        assert throttled == {"write": 3, "get": 3}
        # the store did not close a client it was given
        await client.describe_table(TableName=table)


async def test_too_large_items_fail_before_any_call(ddb: DynamoDBServer, table: str) -> None:
    calls = Calls()
    async with make(ddb, table, session=calls.session) as s:
        await s.put("fits", {"v": "x" * (MAX_ITEM_BYTES - 1000)})
        assert await s.get("fits") is not None
        calls.clear()
        big = {"v": "x" * MAX_ITEM_BYTES}
        with pytest.raises(EntryTooLargeError) as info:
            await s.put("big", big)
        assert isinstance(info.value, ValueTooLargeError)
        assert (
            "400 KB" in str(info.value)
            and key_ref("big") in str(info.value)
            and "'big'" not in str(info.value)
        )
        with pytest.raises(ValueTooLargeError):
            await s.put_many(["small", "big"], [{"v": 1}, big])
        with pytest.raises(ValueTooLargeError):
            await s.put_if_absent("big", big)
        # multi-byte characters count by their UTF-8 size
        with pytest.raises(ValueTooLargeError):
            await s.put("wide", {"v": "é" * (MAX_ITEM_BYTES // 2)})
        # the names count too: a long key is stored in full beside its hashed sort key
        near = {"v": "x" * (MAX_ITEM_BYTES - 6000)}
        with pytest.raises(ValueTooLargeError):
            await s.put("k" * 5000, near)
        with pytest.raises(ValueTooLargeError):
            await s.put("k", near, collection="c" * 5000)
        assert calls.calls == [], "nothing may be sent for an entry that cannot fit"
        with pytest.raises(InvalidKeyError):
            await s.put("\udc00", {"v": 1})
        assert calls.calls == []
        assert await s.get_many(["small", "big"]) == [None, None]
        await s.put("k", near, collection="c" * 1000)
        assert await s.get("k", collection="c" * 1000) == near


async def test_delete_many_counts_live_entries_only(ddb: DynamoDBServer, table: str, raw: Any) -> None:
    async with make(ddb, table) as s:
        await s.put_many(["a", "b"], [{"v": 1}, {"v": 2}])
        await s.put("gone", {"v": 3}, ttl=0.1)
        await asyncio.sleep(0.2)
        assert await s.delete_many(["a", "gone", "nope", "a"]) == 1
        assert await s.get_many(["a", "b"]) == [None, {"v": 2}]
    # the expired item was deleted as well, not just skipped
    assert raw.scan(TableName=table)["Count"] == 1


async def test_cull_deletes_expired_items_now(ddb: DynamoDBServer, table: str, raw: Any) -> None:
    async with make(ddb, table) as s:
        await s.put_many([f"e{i}" for i in range(30)], [{"v": i} for i in range(30)], ttl=0.1)
        await s.put("kept", {"v": 1})
        await asyncio.sleep(0.2)
        await s.cull()
        assert await s.keys() == ["kept"]
    assert raw.scan(TableName=table)["Count"] == 1


# -- construction ---------------------------------------------------------------------------


async def test_url_options(ddb: DynamoDBServer, table: str) -> None:
    url = (
        f"dynamodb://{table}?region={REGION}&endpoint_url={ddb.endpoint_url}&create_table=true"
        "&billing_mode=on-demand&timeout=2.5&max_attempts=4&default_collection=dc"
    )
    s = open_store(url, **CREDENTIALS)
    assert isinstance(s, DynamoDBStore)
    assert (s.table, s.region, s.endpoint_url, s.create_table) == (table, REGION, ddb.endpoint_url, True)
    assert (s.billing_mode, s.timeout, s.max_attempts, s.default_collection) == (
        "PAY_PER_REQUEST",
        2.5,
        4,
        "dc",
    )
    async with s:
        await s.put("k", {"v": 1})
        assert await s.keys("dc") == ["k"]
    assert table in repr(s) and ddb.endpoint_url in repr(s)
    assert open_store("dynamodb:///my.table-1").table == "my.table-1"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("dynamodb://", "needs a table name"),
        ("dynamodb://ab", "invalid DynamoDB table name"),
        ("dynamodb://bad*name", "invalid DynamoDB table name"),
        ("dynamodb://key:secret@table", "carry no credentials"),
        ("dynamodb://table?aws_secret_access_key=x", "does not take the option"),
        ("dynamodb://table?billing_mode=free", "billing_mode"),
        ("dynamodb://table?timeout=-1", "timeout"),
        ("dynamodb://table?max_attempts=0", "max_attempts"),
        ("dynamodb://table?create_table=perhaps", "create_table"),
    ],
)
def test_bad_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_store(url)


async def test_no_region_is_a_setup_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    async with DynamoDBStore("table", **CREDENTIALS) as s:
        with pytest.raises(StoreSetupError, match="region"):
            await s.get("k")


async def test_no_credentials_is_a_setup_error(
    ddb: DynamoDBServer, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    async with DynamoDBStore(table, region=REGION, endpoint_url=ddb.endpoint_url, create_table=True) as s:
        with pytest.raises(StoreSetupError, match="credentials"):
            await s.get("k")


async def test_an_aioboto3_session_is_accepted(ddb: DynamoDBServer, table: str) -> None:
    import aioboto3

    session = aioboto3.Session(region_name=REGION, **CREDENTIALS)
    async with DynamoDBStore(table, endpoint_url=ddb.endpoint_url, session=session, create_table=True) as s:
        await s.put("k", {"v": 1})
        assert await s.get("k") == {"v": 1}


def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dynamodb.connection, "HAVE_AIOBOTOCORE", False)
    with pytest.raises(ImportError, match=r"pip install 'fastmcp-sessions\[dynamodb\]'"):
        open_store("dynamodb://table?region=us-east-1")
    with pytest.raises(ImportError, match=r"fastmcp-sessions\[dynamodb\]"):
        DynamoDBStore("table")


def test_the_module_imports_without_the_driver() -> None:
    code = (
        "import sys\n"
        "for name in ('aioboto3', 'aiobotocore', 'botocore'): sys.modules[name] = None\n"
        "from fastmcp_sessions import open_store\n"
        "try:\n"
        "    open_store('dynamodb://table?region=us-east-1')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=os.environ
    )
    assert out.returncode == 0, out.stderr
    assert "pip install 'fastmcp-sessions[dynamodb]'" in out.stdout


# -- outages ------------------------------------------------------------------------------


def _client_kwargs(server: DynamoDBServer) -> dict[str, Any]:
    return {"region_name": REGION, "endpoint_url": server.endpoint_url, **CREDENTIALS}


@pytest.mark.parametrize("kind", ["local", "moto"])
async def test_outage_raises_connection_error_in_bounded_time_then_recovers(kind: str) -> None:
    with DynamoDBServer(kind=kind) as server:
        table = "outage"
        s = DynamoDBStore(
            table, region=REGION, endpoint_url=server.endpoint_url, create_table=True, timeout=1, max_attempts=2,
            **CREDENTIALS,
        )  # fmt: skip
        try:
            await s.put("k", {"v": 1}, ttl=60)

            server.kill()  # stopped mid-run
            for op in (
                s.get("k"),
                s.put("k", {"v": 2}),
                s.get_many(["k", "j"]),
                s.update("k", lambda v: {"v": 3}),
            ):
                started = time.monotonic()
                with pytest.raises(StoreConnectionError) as info:
                    await op
                assert time.monotonic() - started < 5, "took too long to give up"
                assert isinstance(info.value.__cause__, EndpointConnectionError)
                assert "reconnects on its own" in str(info.value)

            server.start()  # same port, no tables: create_table makes it again
            await s.put("k", {"v": 4})
            assert await s.get("k") == {"v": 4}

            server.pause()  # accepts connections, answers nothing
            started = time.monotonic()
            with pytest.raises(StoreConnectionError) as info:
                await s.get("k")
            assert isinstance(info.value.__cause__, ReadTimeoutError)
            assert time.monotonic() - started < 6
            server.resume()
            assert await s.get("k") == {"v": 4}
        finally:
            server.resume()
            await s.close()
