"""``DynamoDBStore``: options, URL parsing and the store operations (items: ``encoding``)."""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from fastmcp_sessions.errors import BaseKeyValueError, StoreOptionError
from fastmcp_sessions.stores._url import address_from_url, parse_bool, take_query_options
from fastmcp_sessions.stores.base import Store, Value, Versioned
from fastmcp_sessions.stores.dynamodb import connection
from fastmcp_sessions.stores.dynamodb.batches import (
    GET_BATCH,
    WRITE_BATCH,
    batch_get,
    batch_write,
    chunks,
    run_all,
)
from fastmcp_sessions.stores.dynamodb.connection import (
    _DRIVER,
    DRIVER_ERRORS,
    ClientError,
    condition_held,
    error_code,
)
from fastmcp_sessions.stores.dynamodb.encoding import (
    LIVE,
    Item,
    deletes,
    is_live,
    item_key,
    live_now,
    make_item,
    pk,
    read_entry,
    sk,
)
from fastmcp_sessions.stores.dynamodb.errors import translate_error
from fastmcp_sessions.stores.dynamodb.table import Table

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.client import DynamoDBClient

DEFAULT_TABLE = "fastmcp_sessions"
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_URL_OPTIONS: dict[str, Callable[[str], Any]] = {
    "region": str,
    "endpoint_url": str,
    "create_table": parse_bool,
    "billing_mode": str,
    "read_capacity": int,
    "write_capacity": int,
    "timeout": float,
    "max_attempts": int,
    "profile": str,
    "default_collection": str,
}


class DynamoDBStore(Store):
    """A store in one DynamoDB table, shared by any number of processes.

    Args:
        table: Table name (3-255 characters of ``A-Za-z0-9_.-``).
        region: AWS region; default from the environment (``AWS_REGION``/``AWS_DEFAULT_REGION``,
            the profile).
        endpoint_url: Another endpoint, e.g. ``http://localhost:8000`` for DynamoDB Local.
        create_table: Create the table (and enable its TTL) when it does not exist.
        billing_mode: For a created table: ``PAY_PER_REQUEST`` (on-demand, default) or
            ``PROVISIONED`` with ``read_capacity``/``write_capacity`` (default 5 each).
        timeout: Seconds for connecting and for each response (botocore's connect and read
            timeouts); with ``max_attempts`` it bounds how long an unreachable endpoint
            takes to raise ``StoreConnectionError``.
        max_attempts: Attempts per request, including the first (botocore's standard retries).
        profile: AWS profile for credentials and region.
        session: An aiobotocore ``AioSession`` or ``aioboto3.Session`` to create the client from.
        client: A DynamoDB client (already entered) to use as is; the store does not close it.
        aws_access_key_id, aws_secret_access_key, aws_session_token: Explicit credentials
            (never taken from the URL); default: botocore's credential chain.
        default_collection: Collection used when a call passes none.
    """

    url_schemes = ("dynamodb",)
    db_system_name = "aws.dynamodb"
    pip_extra = "dynamodb"
    shared_over_network = True
    driver_errors = DRIVER_ERRORS

    def __init__(
        self,
        table: str = DEFAULT_TABLE,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        create_table: bool = False,
        billing_mode: str = "PAY_PER_REQUEST",
        read_capacity: int | None = None,
        write_capacity: int | None = None,
        timeout: float = 5.0,
        max_attempts: int = 3,
        profile: str | None = None,
        session: Any = None,
        client: DynamoDBClient | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        default_collection: str | None = None,
    ) -> None:
        if not connection.HAVE_AIOBOTOCORE:
            raise _DRIVER.error()
        super().__init__(default_collection=default_collection)
        if not isinstance(table, str) or not _TABLE_NAME.fullmatch(table):
            raise StoreOptionError(
                f"invalid DynamoDB table name {table!r}: use 3-255 characters of A-Z, a-z, 0-9, '_', '-', '.'"
            )
        mode = billing_mode.upper().replace("-", "_")
        if mode in ("ON_DEMAND", "PAY_PER_REQUEST"):
            mode = "PAY_PER_REQUEST"
        elif mode != "PROVISIONED":
            raise StoreOptionError(
                f"billing_mode must be PAY_PER_REQUEST (on-demand) or PROVISIONED, got {billing_mode!r}"
            )
        if not (isinstance(timeout, int | float) and 0 < timeout < math.inf):
            raise StoreOptionError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise StoreOptionError(f"max_attempts must be a positive int, got {max_attempts!r}")
        self.table = table
        self.region = region
        self.endpoint_url = endpoint_url
        self.create_table = bool(create_table)
        self.billing_mode = mode
        self.read_capacity = read_capacity or 5
        self.write_capacity = write_capacity or 5
        self.timeout = float(timeout)
        self.max_attempts = max_attempts
        self.profile = profile
        self._session = session
        self._credentials = {
            "aws_access_key_id": aws_access_key_id,
            "aws_secret_access_key": aws_secret_access_key,
            "aws_session_token": aws_session_token,
        }
        self._client: DynamoDBClient | None = client
        self._client_context: Any = None
        self._owns_client = client is None
        self._ready = False
        self._setup_lock = asyncio.Lock()
        # Options are fixed from here on, so the name used in messages is made once.
        self._label = repr(self)
        self._table = Table(
            table,
            self._label,
            region,
            endpoint_url,
            self.create_table,
            mode,
            self.read_capacity,
            self.write_capacity,
        )

    @classmethod
    def from_url(cls, url: str, **options: Any) -> DynamoDBStore:
        """``dynamodb://TABLE?region=R&endpoint_url=URL&create_table=true`` and the other options
        (``billing_mode``, ``read_capacity``, ``write_capacity``, ``timeout``, ``max_attempts``,
        ``profile``, ``default_collection``). Credentials never go in the URL."""
        parts = urlsplit(url)
        if parts.username or parts.password:
            raise StoreOptionError(
                "dynamodb:// URLs carry no credentials: use the environment (AWS_ACCESS_KEY_ID, "
                "AWS_PROFILE, an instance role) or pass session=/aws_access_key_id= as options"
            )
        path = parts.path.strip("/")
        if parts.netloc and path:
            raise StoreOptionError(
                f"dynamodb:// URLs name one table: dynamodb://TABLE, not {parts.netloc}/{path}"
            )
        table = unquote(parts.netloc or path)
        if not table:
            raise StoreOptionError("a dynamodb:// URL needs a table name: dynamodb://TABLE?region=...")
        take_query_options(url, _URL_OPTIONS, options)
        return cls(table, **options)

    def __repr__(self) -> str:
        where = f", region={self.region!r}" if self.region else ""
        where += f", endpoint_url={self.endpoint_url!r}" if self.endpoint_url else ""
        return f"DynamoDBStore(table={self.table!r}{where})"

    def _telemetry_server(self) -> tuple[str | None, int | None]:
        if self.endpoint_url:
            return address_from_url(self.endpoint_url, 443)
        return (f"dynamodb.{self.region}.amazonaws.com", 443) if self.region else (None, None)

    # -- client and table setup ---------------------------------------------------------

    async def _db(self) -> DynamoDBClient:
        if not self._ready:
            async with self._setup_lock:
                if not self._ready:
                    if self._client is None:
                        self._client_context, self._client = await connection.open_client(
                            self._label,
                            session=self._session,
                            profile=self.profile,
                            region=self.region,
                            endpoint_url=self.endpoint_url,
                            timeout=self.timeout,
                            max_attempts=self.max_attempts,
                            credentials=self._credentials,
                        )
                    await self._table.ensure(self._client)
                    self._ready = True
        assert self._client is not None
        return self._client

    async def open_client(self) -> DynamoDBClient:
        """The aiobotocore DynamoDB client this store uses, made (and the table checked) on first use."""
        return await self._db()

    # -- errors ---------------------------------------------------------------------------

    def _recover(self, exc: BaseException) -> bool:
        if isinstance(exc, ClientError) and error_code(exc) == "ResourceNotFoundException":
            self._ready = False  # the table was deleted under us: create it again, once
            return self.create_table
        return False

    def _connection_lost(self) -> None:
        # The endpoint may come back without our table (a fresh DynamoDB Local, a restored
        # account): look at the table again on the next call.
        self._ready = False

    def _translate_error(self, exc: BaseException) -> BaseKeyValueError:
        return translate_error(exc, self._table, self.max_attempts, self.timeout)

    # -- batches --------------------------------------------------------------------------

    async def _get_items(self, collection: str, keys: list[str], projection: str | None = None) -> list[Item]:
        client = await self._db()
        unique = [item_key(collection, k) for k in dict.fromkeys(keys)]
        jobs = [
            partial(batch_get, client, self.table, self._label, c, projection)
            for c in chunks(unique, GET_BATCH)
        ]
        results = await run_all(jobs)
        return [item for items in results for item in items]

    async def _write_requests(self, requests: list[Item]) -> None:
        client = await self._db()
        await run_all(
            [partial(batch_write, client, self.table, self._label, c) for c in chunks(requests, WRITE_BATCH)]
        )

    def _entry(self, item: Mapping[str, Any], now: float) -> Versioned | None:
        return read_entry(item, now, self._label, self.table)

    # -- the backend interface ----------------------------------------------------------

    async def _get_versioned(self, collection: str, key: str) -> Versioned | None:
        client = await self._db()
        response = await client.get_item(
            TableName=self.table, Key=item_key(collection, key), ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else self._entry(item, time.time())

    async def _get_versioned_many(self, collection: str, keys: list[str]) -> list[Versioned | None]:
        if not keys:
            return []
        items = await self._get_items(collection, keys)
        now = time.time()
        found = {item["sk"]["S"]: self._entry(item, now) for item in items}
        return [found.get(sk(k)) for k in keys]

    async def _put(self, collection: str, key: str, value: Value, ttl: float | None) -> None:
        client = await self._db()  # first: setting up the table must not eat into the TTL
        item = make_item(collection, key, value, ttl, time.time())
        await client.put_item(TableName=self.table, Item=item)

    async def _put_many(
        self, collection: str, keys: list[str], values: list[Value], ttl: float | None
    ) -> None:
        if not keys:
            return
        await self._db()
        now = time.time()
        # One request per key (a batch may not name a key twice), the last value winning;
        # every item is built and size-checked before the first call.
        latest = dict(zip(keys, values, strict=True))
        requests = [
            {"PutRequest": {"Item": make_item(collection, k, v, ttl, now)}} for k, v in latest.items()
        ]
        await self._write_requests(requests)

    async def _delete(self, collection: str, key: str) -> bool:
        client = await self._db()
        response = await client.delete_item(
            TableName=self.table, Key=item_key(collection, key), ReturnValues="ALL_OLD"
        )
        old = response.get("Attributes")
        return old is not None and is_live(old)

    async def _delete_many(self, collection: str, keys: list[str]) -> int:
        # BatchWriteItem does not say what it deleted, so a consistent BatchGetItem first
        # finds the items there and counts the live ones. Not atomic: an entry written
        # between the two steps survives (as if written just after this call).
        if not keys:
            return 0
        items = await self._get_items(collection, keys, projection="sk, #x")
        now_ms = time.time() * 1000
        live = sum(1 for item in items if is_live(item, now_ms))
        await self._write_requests(deletes(collection, items))
        return live

    async def _put_if_absent(self, collection: str, key: str, value: Value, ttl: float | None) -> bool:
        client = await self._db()
        now = time.time()
        item = make_item(collection, key, value, ttl, now)
        return await condition_held(
            client.put_item(
                TableName=self.table,
                Item=item,
                # An expired item counts as absent.
                ConditionExpression="attribute_not_exists(#pk) OR #x <= :now",
                ExpressionAttributeNames={"#pk": "pk", "#x": "expires_ms"},
                ExpressionAttributeValues={":now": {"N": str(int(now * 1000))}},
            )
        )

    async def _compare_and_set(
        self, collection: str, key: str, value: Value, version: str, ttl: float | None
    ) -> bool:
        client = await self._db()
        now = time.time()
        item = make_item(collection, key, value, ttl, now)
        return await condition_held(
            client.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression=f"#ver = :ver AND {LIVE}",
                ExpressionAttributeNames={"#ver": "version", "#x": "expires_ms"},
                ExpressionAttributeValues={":ver": {"S": version}, ":now": {"N": str(int(now * 1000))}},
            )
        )

    async def _delete_if_version(self, collection: str, key: str, version: str) -> bool:
        client = await self._db()
        return await condition_held(
            client.delete_item(
                TableName=self.table,
                Key=item_key(collection, key),
                ConditionExpression=f"#ver = :ver AND {LIVE}",
                ExpressionAttributeNames={"#ver": "version", "#x": "expires_ms"},
                ExpressionAttributeValues={":ver": {"S": version}, **live_now()},
            )
        )

    async def _query(self, collection: str, *, live_only: bool, limit: int | None = None) -> list[Item]:
        client = await self._db()
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "#pk = :c",
            "ProjectionExpression": "sk, kn, #x",
            "ExpressionAttributeNames": {"#pk": "pk", "#x": "expires_ms"},
            "ExpressionAttributeValues": {":c": {"S": pk(collection)}},
            "ConsistentRead": True,
        }
        if live_only:
            params["FilterExpression"] = LIVE
            params["ExpressionAttributeValues"].update(live_now())
        items: list[Item] = []
        while True:
            response = await client.query(**params)
            items.extend(response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last or (limit is not None and len(items) >= limit):
                return items if limit is None else items[:limit]
            params["ExclusiveStartKey"] = last

    async def _keys(self, collection: str, limit: int | None) -> list[str]:
        if limit == 0:
            return []
        items = await self._query(collection, live_only=True, limit=limit)
        return [(item.get("kn") or item["sk"])["S"] for item in items]

    async def _collections(self, limit: int | None) -> list[str]:
        # A Scan reads the whole table: fine for housekeeping, not for a hot path.
        if limit == 0:
            return []
        client = await self._db()
        params: dict[str, Any] = {
            "TableName": self.table,
            "ProjectionExpression": "#pk, cn",
            "FilterExpression": LIVE,
            "ExpressionAttributeNames": {"#pk": "pk", "#x": "expires_ms"},
            "ExpressionAttributeValues": live_now(),
            "ConsistentRead": True,
        }
        names: dict[str, None] = {}
        while True:
            response = await client.scan(**params)
            # cn holds the name of a collection whose pk is hashed.
            for item in response.get("Items", []):
                names[(item.get("cn") or item["pk"])["S"]] = None
            last = response.get("LastEvaluatedKey")
            if not last or (limit is not None and len(names) >= limit):
                break
            params["ExclusiveStartKey"] = last
        found = sorted(names)
        return found if limit is None else found[:limit]

    async def _destroy_collection(self, collection: str) -> bool:
        items = await self._query(collection, live_only=False)
        if not items:
            return False
        now_ms = time.time() * 1000
        live = any(is_live(item, now_ms) for item in items)
        await self._write_requests(deletes(collection, items))
        return live

    async def _cull(self) -> None:
        client = await self._db()
        params: dict[str, Any] = {
            "TableName": self.table,
            "ProjectionExpression": "#pk, sk",
            "FilterExpression": "#x <= :now",
            "ExpressionAttributeNames": {"#pk": "pk", "#x": "expires_ms"},
            "ExpressionAttributeValues": live_now(),
        }
        expired: list[Item] = []
        while True:
            response = await client.scan(**params)
            expired.extend(response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                break
            params["ExclusiveStartKey"] = last

        async def delete(item: Item) -> None:
            # Conditional, so an entry rewritten since the scan is left alone.
            await condition_held(
                client.delete_item(
                    TableName=self.table,
                    Key={"pk": item["pk"], "sk": item["sk"]},
                    ConditionExpression="#x <= :now",
                    ExpressionAttributeNames={"#x": "expires_ms"},
                    ExpressionAttributeValues=live_now(),
                )
            )

        if expired:
            await run_all([partial(delete, item) for item in expired])

    async def _close(self) -> None:
        if self._owns_client and self._client_context is not None:
            context, self._client_context, self._client = self._client_context, None, None
            await context.__aexit__(None, None, None)


__all__ = ["DEFAULT_TABLE", "DynamoDBStore"]
