"""DynamoDB store: one item per entry in one table, through aiobotocore.

Table layout (see docs/dynamodb.md)::

    pk          S   partition key: the collection (hashed when over 2,048 bytes)
    sk          S   sort key: the key (hashed when over 1,024 bytes)
    cn, kn      S   the collection / key as given, only where pk / sk holds it hashed
    value       S   the value as compact JSON text (exact, and cheaper than DynamoDB maps)
    version     S   random token, new on every write
    expires_ms  N   exact expiry, epoch milliseconds (rounded up); absent: never expires
    ttl         N   expires_ms in epoch seconds, rounded up: the table's TTL attribute

Every read is strongly consistent and filters expired items itself, since DynamoDB
deletes expired items only eventually (days, in AWS); ``ttl`` is rounded up so that
native deletion never comes early. The atomic operations are single conditional
writes (``ConditionExpression`` on ``version`` and ``expires_ms``). ``get_many`` uses
BatchGetItem (100 keys a call) and ``put_many``/``delete_many`` BatchWriteItem (25 a
call), retrying unprocessed items with backoff. DynamoDB's limits (400 KB items) are
checked before anything is sent. Names too long for a key attribute are stored by the
shared scheme of ``fastmcp_sessions.stores._names``: names that fit are stored as they
are.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit

from fastmcp_sessions._values import dumps_validated
from fastmcp_sessions.errors import (
    BaseKeyValueError,
    DeserializationError,
    EntryTooLargeError,
    KeyValueOperationError,
    StoreConnectionError,
    StoreOptionError,
    StoreSetupError,
    key_ref,
)
from fastmcp_sessions.stores._driver import Driver, Requirement
from fastmcp_sessions.stores._names import stored_name
from fastmcp_sessions.stores._url import parse_bool, take_query_options
from fastmcp_sessions.stores.base import Store, Value, Versioned
from fastmcp_sessions.telemetry import address_from_url

_DRIVER = Driver(
    "DynamoDBStore", "dynamodb", Requirement("aioboto3", "13.3", imports=("aiobotocore", "botocore"))
)
try:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import AioSession
    from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, NoRegionError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    _CONNECTION_ERRORS: tuple[type[BaseException], ...] = (BotoConnectionError, HTTPClientError)
    HAVE_AIOBOTOCORE = True
except ImportError as exc:  # pragma: no cover - exercised by monkeypatching HAVE_AIOBOTOCORE
    _DRIVER.failed(exc)
    _CONNECTION_ERRORS = ()
    HAVE_AIOBOTOCORE = False

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.client import DynamoDBClient

T = TypeVar("T")
logger = logging.getLogger("fastmcp_sessions")

DEFAULT_TABLE = "fastmcp_sessions"
MAX_ITEM_BYTES = 400_000
"""DynamoDB's item size limit, "400 KB" of attribute names and values, read strictly as
400,000 bytes (moto enforces that; DynamoDB Local takes up to 409,600) so that an item
this store accepts is never refused by the server."""

MAX_PARTITION_KEY_BYTES = 2048
"""DynamoDB's partition key limit: longer collection names are stored hashed."""
MAX_SORT_KEY_BYTES = 1024
"""DynamoDB's sort key limit: longer keys are stored hashed."""

_GET_BATCH = 100  # BatchGetItem's limit
_WRITE_BATCH = 25  # BatchWriteItem's limit
_CONCURRENCY = 8  # batch calls in flight at once for one put_many/get_many/delete_many
_UNPROCESSED_ROUNDS = 12  # backoff 0.05 s doubling to 2 s: about 15 s of throttling before giving up
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_LIVE = "(attribute_not_exists(#x) OR #x > :now)"
_THROTTLED = (
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "LimitExceededException",
)
_DENIED = (
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "MissingAuthenticationTokenException",
    "ExpiredTokenException",
    "IncompleteSignature",
)
_UNAVAILABLE = ("InternalServerError", "ServiceUnavailable", "ServiceUnavailableException")
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

_Item = dict[str, Any]


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _now_ms() -> int:
    return int(time.time() * 1000)


def _pk(collection: str) -> str:
    return stored_name(collection, MAX_PARTITION_KEY_BYTES)


def _sk(key: str) -> str:
    return stored_name(key, MAX_SORT_KEY_BYTES)


def _deletes(collection: str, items: list[_Item]) -> list[_Item]:
    """BatchWriteItem requests deleting ``items`` (read with their stored ``sk``) of ``collection``."""
    pk = {"S": _pk(collection)}
    return [{"DeleteRequest": {"Key": {"pk": pk, "sk": item["sk"]}}} for item in items]


def _utf8_size(text: str) -> int:
    # Validated names and values hold only valid Unicode, so the encoding cannot fail.
    return len(text) if text.isascii() else len(text.encode("utf-8"))


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
    driver_errors = (BotoCoreError, ClientError) if HAVE_AIOBOTOCORE else ()

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
        if not HAVE_AIOBOTOCORE:
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
                        self._client = await self._open_client()
                    await self._ensure_table(self._client)
                    self._ready = True
        assert self._client is not None
        return self._client

    async def open_client(self) -> DynamoDBClient:
        """The aiobotocore DynamoDB client this store uses, made (and the table checked) on first use."""
        return await self._db()

    async def _open_client(self) -> DynamoDBClient:
        session: Any = self._session if self._session is not None else AioSession(profile=self.profile)
        # aiobotocore sessions spell it create_client; aioboto3 sessions spell it client.
        factory: Callable[..., Any] = getattr(session, "create_client", None) or session.client
        config = AioConfig(
            connect_timeout=self.timeout,
            read_timeout=self.timeout,
            retries={"mode": "standard", "total_max_attempts": self.max_attempts},
            max_pool_connections=4 * _CONCURRENCY,
        )
        try:
            context = factory(
                "dynamodb",
                region_name=self.region,
                endpoint_url=self.endpoint_url,
                config=config,
                **self._credentials,
            )
            client: DynamoDBClient = await context.__aenter__()
        except NoRegionError:
            raise StoreSetupError(
                f"{self!r}: no AWS region: add ?region=... to the URL (or region=), or set AWS_REGION"
            ) from None
        self._client_context = context
        return client

    async def _ensure_table(self, client: DynamoDBClient) -> None:
        table: Mapping[str, Any]
        try:
            table = (await client.describe_table(TableName=self.table))["Table"]
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
            if not self.create_table:
                raise self._missing_table() from None
            table = await self._create(client)
        self._check_schema(table)
        if table.get("TableStatus") != "ACTIVE":
            await self._wait_active(client)
        await self._ensure_ttl(client)

    async def _create(self, client: DynamoDBClient) -> Mapping[str, Any]:
        capacity: dict[str, Any] = {}
        if self.billing_mode == "PROVISIONED":
            capacity["ProvisionedThroughput"] = {
                "ReadCapacityUnits": self.read_capacity,
                "WriteCapacityUnits": self.write_capacity,
            }
        try:
            created = await client.create_table(
                TableName=self.table,
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                BillingMode=self.billing_mode,  # type: ignore[arg-type]
                **capacity,
            )
        except ClientError as exc:
            if _code(exc) != "ResourceInUseException":
                raise
            # Another store (or process) created it first.
            return (await client.describe_table(TableName=self.table))["Table"]
        logger.info("%r: created DynamoDB table %r (%s)", self, self.table, self.billing_mode)
        return created["TableDescription"]

    async def _wait_active(self, client: DynamoDBClient) -> None:
        delay, deadline = 0.05, time.monotonic() + 300
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            table = (await client.describe_table(TableName=self.table))["Table"]
            if table.get("TableStatus") == "ACTIVE":
                return
            delay = min(delay * 2, 2.0)
        raise StoreSetupError(
            f"{self!r}: table {self.table!r} did not become ACTIVE within 5 minutes; retry later"
        )

    async def _ensure_ttl(self, client: DynamoDBClient) -> None:
        description = (await client.describe_time_to_live(TableName=self.table)).get(
            "TimeToLiveDescription", {}
        )
        status, attribute = description.get("TimeToLiveStatus"), description.get("AttributeName")
        if status in ("ENABLED", "ENABLING") and attribute == "ttl":
            return
        if status in (None, "DISABLED") and self.create_table:
            try:
                await client.update_time_to_live(
                    TableName=self.table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"}
                )
                return
            except ClientError as exc:
                if _code(exc) != "ValidationException":  # enabled meanwhile by another store
                    raise
                return
        logger.warning(
            "%r: the table's TTL is %s on attribute %r, not enabled on 'ttl'; expired entries are never "
            "returned, but DynamoDB will not delete them: enable TTL on attribute 'ttl' or call cull()",
            self,
            status,
            attribute,
        )

    def _check_schema(self, table: Mapping[str, Any]) -> None:
        keys = {k["AttributeName"]: k["KeyType"] for k in table.get("KeySchema", [])}
        types = {a["AttributeName"]: a["AttributeType"] for a in table.get("AttributeDefinitions", [])}
        if keys != {"pk": "HASH", "sk": "RANGE"} or types.get("pk") != "S" or types.get("sk") != "S":
            raise StoreSetupError(
                f"{self!r}: table {self.table!r} has key schema {keys} but this store needs partition key "
                "'pk' (string) and sort key 'sk' (string); use another table name or see docs/dynamodb.md"
            )

    def _missing_table(self) -> StoreSetupError:
        return StoreSetupError(
            f"DynamoDB table {self.table!r} does not exist (region {self.region or 'from the environment'}"
            f"{', endpoint ' + self.endpoint_url if self.endpoint_url else ''}); create it with partition "
            "key 'pk' and sort key 'sk', both strings (see docs/dynamodb.md), or open the store with "
            "create_table=true (URL option ?create_table=true) to have it created"
        )

    # -- errors ---------------------------------------------------------------------------

    def _recover(self, exc: BaseException) -> bool:
        if isinstance(exc, ClientError) and _code(exc) == "ResourceNotFoundException":
            self._ready = False  # the table was deleted under us: create it again, once
            return self.create_table
        return False

    def _connection_lost(self) -> None:
        # The endpoint may come back without our table (a fresh DynamoDB Local, a restored
        # account): look at the table again on the next call.
        self._ready = False

    def _connection_error(self, exc: BaseException) -> StoreConnectionError:
        return StoreConnectionError(
            f"{self!r} could not reach DynamoDB ({type(exc).__name__}: {exc}) after {self.max_attempts} "
            f"attempt(s) of up to {self.timeout:g}s; check the network, region and endpoint_url, then retry: "
            "the store reconnects on its own (raise timeout=/max_attempts= to wait longer)"
        )

    def _translate_error(self, exc: BaseException) -> BaseKeyValueError:
        if isinstance(exc, _CONNECTION_ERRORS):
            return self._connection_error(exc)
        if not isinstance(exc, ClientError):
            name = type(exc).__name__
            if name in ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"):
                return StoreSetupError(
                    f"{self!r}: no usable AWS credentials ({exc}); set AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an instance role (any values work for DynamoDB "
                    "Local), or pass session="
                )
            return KeyValueOperationError(f"{self!r}: botocore failed ({name}: {exc})")
        code, message = _code(exc), exc.response.get("Error", {}).get("Message", "")
        if code == "ResourceNotFoundException":
            return self._missing_table()
        if code in _THROTTLED:
            return KeyValueOperationError(
                f"{self!r}: DynamoDB throttled the request after {self.max_attempts} attempts ({code}); "
                "retry later, raise the table's provisioned capacity, or switch it to on-demand billing"
            )
        if code in _DENIED:
            return StoreSetupError(
                f"{self!r}: AWS refused the request ({code}: {message}); check the credentials and that "
                f"they may use table {self.table!r} (GetItem, PutItem, DeleteItem, Query, Scan, "
                "BatchGetItem, BatchWriteItem, DescribeTable, DescribeTimeToLive)"
            )
        if code in _UNAVAILABLE:
            return self._connection_error(exc)
        return KeyValueOperationError(f"{self!r}: DynamoDB refused the request ({code}: {message})")

    # -- items <-> values ------------------------------------------------------------------

    def _item(self, collection: str, key: str, value: Value, ttl: float | None, now: float) -> _Item:
        text = dumps_validated(value)
        size = _utf8_size(text)
        version = secrets.token_urlsafe(12)
        pk, sk = _pk(collection), _sk(key)
        item: _Item = {"pk": {"S": pk}, "sk": {"S": sk}, "value": {"S": text}, "version": {"S": version}}
        # Attribute names count too: pk, sk, value, version (and cn, kn).
        size += 2 + _utf8_size(pk) + 2 + _utf8_size(sk) + 5 + 7 + len(version)
        if pk != collection:
            item["cn"] = {"S": collection}
            size += 2 + _utf8_size(collection)
        if sk != key:
            item["kn"] = {"S": key}
            size += 2 + _utf8_size(key)
        if ttl is not None:
            expires_ms = math.ceil((now + ttl) * 1000)
            ttl_seconds = -(-expires_ms // 1000)
            item["expires_ms"] = {"N": str(expires_ms)}
            item["ttl"] = {"N": str(ttl_seconds)}
            size += 10 + 3 + 2 * 21  # a number takes at most 21 bytes
        if size > MAX_ITEM_BYTES:
            raise EntryTooLargeError(
                size,
                MAX_ITEM_BYTES,
                collection,
                key,
                "DynamoDB items are limited to 400 KB; keep large data in S3 and store a reference",
            )
        return item

    @staticmethod
    def _key(collection: str, key: str) -> _Item:
        return {"pk": {"S": _pk(collection)}, "sk": {"S": _sk(key)}}

    def _entry(self, item: Mapping[str, Any], now: float) -> Versioned | None:
        expires = item.get("expires_ms")
        remaining = None
        if expires is not None:
            remaining = float(expires["N"]) / 1000 - now
            if remaining <= 0:
                return None
        try:
            value = json.loads(item["value"]["S"])
            version = item["version"]["S"]
        except (KeyError, TypeError, ValueError):
            value = version = None
        if type(value) is not dict or not isinstance(version, str):
            raise DeserializationError(
                f"{self!r}: the item for key {key_ref(item.get('sk'))} holds no value this store "
                f"wrote; is another program writing to table {self.table!r}?"
            )
        return Versioned(value, version, remaining)

    @staticmethod
    def _live_now() -> dict[str, Any]:
        return {":now": {"N": str(_now_ms())}}

    # -- batches --------------------------------------------------------------------------

    async def _all(self, jobs: list[Callable[[], Awaitable[T]]]) -> list[T]:
        """Run ``jobs`` with at most ``_CONCURRENCY`` in flight; the first error cancels the rest."""
        if len(jobs) == 1:
            return [await jobs[0]()]
        gate = asyncio.Semaphore(_CONCURRENCY)

        async def run(job: Callable[[], Awaitable[T]]) -> T:
            async with gate:
                return await job()

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(run(job)) for job in jobs]
        except BaseExceptionGroup as errors:
            raise errors.exceptions[0] from None
        return [task.result() for task in tasks]

    async def _backoff(self, rounds: int, what: str) -> None:
        if rounds >= _UNPROCESSED_ROUNDS:
            raise KeyValueOperationError(
                f"{self!r}: DynamoDB left items of a {what} unprocessed {rounds} times in a row "
                "(throttling); part of the batch may be done: retry it, and raise the table's capacity"
            )
        await asyncio.sleep(min(2.0, 0.05 * 2**rounds) * random.uniform(0.5, 1.0))

    async def _batch_get(
        self, client: DynamoDBClient, keys: list[_Item], projection: str | None
    ) -> list[_Item]:
        request: Any = {"Keys": keys, "ConsistentRead": True}
        if projection:
            request["ProjectionExpression"] = projection
            request["ExpressionAttributeNames"] = {"#x": "expires_ms"}
        items: list[_Item] = []
        rounds = 0
        while True:
            response = await client.batch_get_item(RequestItems={self.table: request})
            items.extend(response.get("Responses", {}).get(self.table, []))
            pending: Any = response.get("UnprocessedKeys", {}).get(self.table)
            if not pending or not pending.get("Keys"):
                return items
            request = pending
            await self._backoff(rounds, "BatchGetItem")
            rounds += 1

    async def _get_items(
        self, collection: str, keys: list[str], projection: str | None = None
    ) -> list[_Item]:
        client = await self._db()
        unique = [self._key(collection, k) for k in dict.fromkeys(keys)]
        chunks = [unique[i : i + _GET_BATCH] for i in range(0, len(unique), _GET_BATCH)]
        results = await self._all([partial(self._batch_get, client, chunk, projection) for chunk in chunks])
        return [item for items in results for item in items]

    async def _batch_write(self, client: DynamoDBClient, requests: list[_Item]) -> None:
        rounds = 0
        pending: Any = requests
        while pending:
            response = await client.batch_write_item(RequestItems={self.table: pending})
            pending = response.get("UnprocessedItems", {}).get(self.table)
            if pending:
                await self._backoff(rounds, "BatchWriteItem")
                rounds += 1

    async def _write_requests(self, requests: list[_Item]) -> None:
        client = await self._db()
        chunks = [requests[i : i + _WRITE_BATCH] for i in range(0, len(requests), _WRITE_BATCH)]
        await self._all([partial(self._batch_write, client, chunk) for chunk in chunks])

    # -- the backend interface ----------------------------------------------------------

    async def _get_versioned(self, collection: str, key: str) -> Versioned | None:
        client = await self._db()
        response = await client.get_item(
            TableName=self.table, Key=self._key(collection, key), ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else self._entry(item, time.time())

    async def _get_versioned_many(self, collection: str, keys: list[str]) -> list[Versioned | None]:
        if not keys:
            return []
        items = await self._get_items(collection, keys)
        now = time.time()
        found = {item["sk"]["S"]: self._entry(item, now) for item in items}
        return [found.get(_sk(k)) for k in keys]

    async def _put(self, collection: str, key: str, value: Value, ttl: float | None) -> None:
        client = await self._db()  # first: setting up the table must not eat into the TTL
        item = self._item(collection, key, value, ttl, time.time())
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
            {"PutRequest": {"Item": self._item(collection, k, v, ttl, now)}} for k, v in latest.items()
        ]
        await self._write_requests(requests)

    async def _delete(self, collection: str, key: str) -> bool:
        client = await self._db()
        response = await client.delete_item(
            TableName=self.table, Key=self._key(collection, key), ReturnValues="ALL_OLD"
        )
        old = response.get("Attributes")
        return old is not None and self._entry_is_live(old)

    @staticmethod
    def _entry_is_live(item: Mapping[str, Any], now_ms: float | None = None) -> bool:
        expires = item.get("expires_ms")
        return expires is None or float(expires["N"]) > (time.time() * 1000 if now_ms is None else now_ms)

    async def _delete_many(self, collection: str, keys: list[str]) -> int:
        # BatchWriteItem does not say what it deleted, so a consistent BatchGetItem first
        # finds the items there and counts the live ones. Not atomic: an entry written
        # between the two steps survives (as if written just after this call).
        if not keys:
            return 0
        items = await self._get_items(collection, keys, projection="sk, #x")
        now_ms = time.time() * 1000
        live = sum(1 for item in items if self._entry_is_live(item, now_ms))
        await self._write_requests(_deletes(collection, items))
        return live

    async def _put_if_absent(self, collection: str, key: str, value: Value, ttl: float | None) -> bool:
        client = await self._db()
        now = time.time()
        item = self._item(collection, key, value, ttl, now)
        try:
            await client.put_item(
                TableName=self.table,
                Item=item,
                # An expired item counts as absent.
                ConditionExpression="attribute_not_exists(#pk) OR #x <= :now",
                ExpressionAttributeNames={"#pk": "pk", "#x": "expires_ms"},
                ExpressionAttributeValues={":now": {"N": str(int(now * 1000))}},
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    async def _compare_and_set(
        self, collection: str, key: str, value: Value, version: str, ttl: float | None
    ) -> bool:
        client = await self._db()
        now = time.time()
        item = self._item(collection, key, value, ttl, now)
        try:
            await client.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression=f"#ver = :ver AND {_LIVE}",
                ExpressionAttributeNames={"#ver": "version", "#x": "expires_ms"},
                ExpressionAttributeValues={":ver": {"S": version}, ":now": {"N": str(int(now * 1000))}},
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    async def _delete_if_version(self, collection: str, key: str, version: str) -> bool:
        client = await self._db()
        try:
            await client.delete_item(
                TableName=self.table,
                Key=self._key(collection, key),
                ConditionExpression=f"#ver = :ver AND {_LIVE}",
                ExpressionAttributeNames={"#ver": "version", "#x": "expires_ms"},
                ExpressionAttributeValues={":ver": {"S": version}, **self._live_now()},
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    async def _query(self, collection: str, *, live_only: bool, limit: int | None = None) -> list[_Item]:
        client = await self._db()
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "#pk = :c",
            "ProjectionExpression": "sk, kn, #x",
            "ExpressionAttributeNames": {"#pk": "pk", "#x": "expires_ms"},
            "ExpressionAttributeValues": {":c": {"S": _pk(collection)}},
            "ConsistentRead": True,
        }
        if live_only:
            params["FilterExpression"] = _LIVE
            params["ExpressionAttributeValues"].update(self._live_now())
        items: list[_Item] = []
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
            "FilterExpression": _LIVE,
            "ExpressionAttributeNames": {"#pk": "pk", "#x": "expires_ms"},
            "ExpressionAttributeValues": self._live_now(),
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
        live = any(self._entry_is_live(item, now_ms) for item in items)
        await self._write_requests(_deletes(collection, items))
        return live

    async def _cull(self) -> None:
        client = await self._db()
        params: dict[str, Any] = {
            "TableName": self.table,
            "ProjectionExpression": "#pk, sk",
            "FilterExpression": "#x <= :now",
            "ExpressionAttributeNames": {"#pk": "pk", "#x": "expires_ms"},
            "ExpressionAttributeValues": self._live_now(),
        }
        expired: list[_Item] = []
        while True:
            response = await client.scan(**params)
            expired.extend(response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                break
            params["ExclusiveStartKey"] = last

        async def delete(item: _Item) -> None:
            # Conditional, so an entry rewritten since the scan is left alone.
            try:
                await client.delete_item(
                    TableName=self.table,
                    Key={"pk": item["pk"], "sk": item["sk"]},
                    ConditionExpression="#x <= :now",
                    ExpressionAttributeNames={"#x": "expires_ms"},
                    ExpressionAttributeValues=self._live_now(),
                )
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise

        if expired:
            await self._all([partial(delete, item) for item in expired])

    async def _close(self) -> None:
        if self._owns_client and self._client_context is not None:
            context, self._client_context, self._client = self._client_context, None, None
            await context.__aexit__(None, None, None)


__all__ = [
    "DEFAULT_TABLE",
    "MAX_ITEM_BYTES",
    "MAX_PARTITION_KEY_BYTES",
    "MAX_SORT_KEY_BYTES",
    "DynamoDBStore",
]
