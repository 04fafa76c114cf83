"""Events in DynamoDB: an item per event in the store's own table.

Each event is ``{pk: <marker>events/<stream key>, sk: <seq, 20 digits>, t: tag, d:
payload, expires_ms, ttl}``: the partition key begins with the table's hashed-name
marker followed by a name no hash has, so it never meets a store collection, and the
table's TTL attribute ``ttl`` lets DynamoDB delete expired events (reads skip them before
that). ``store_event`` is one conditional ``PutItem`` (a position already taken fails,
never overwrites; positions come from ``ClockSequence``); replay one strongly consistent
``Query`` (paged past 1 MB). Trimming rides along with about one insert in
``max_events_per_stream // 2``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Unpack

from botocore.exceptions import BotoCoreError, ClientError

from fastmcp_sessions.encryption import Keyring
from fastmcp_sessions.events.base import (
    ClockSequence,
    EventStoreOptions,
    NativeEventStore,
    Row,
    raw,
    unreachable,
)
from fastmcp_sessions.stores._names import HASH_MARKER

__all__ = ["DynamoDBEventStore"]


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class DynamoDBEventStore(NativeEventStore):
    """Events of every replica sharing one DynamoDB table.

    Args:
        client: A coroutine function returning the aiobotocore client
            (``DynamoDBStore.open_client``).
        table: The table (the store's: partition key ``pk``, sort key ``sk``, TTL on ``ttl``).
        keyring, namespace, max_events_per_stream, ttl: See ``NativeEventStore``.
    """

    backend = "dynamodb"

    def __init__(
        self,
        client: Callable[[], Awaitable[Any]],
        *,
        table: str,
        keyring: Keyring | None = None,
        **options: Unpack[EventStoreOptions],
    ) -> None:
        super().__init__(keyring=keyring, **options)
        self._client_source = client
        self._client: Any = None
        self.table = table
        self._clock = ClockSequence()

    async def _prepare(self) -> None:
        try:
            self._client = await self._client_source()
        except (BotoCoreError, ClientError) as exc:
            raise unreachable(self.backend, exc) from None
        await super()._prepare()

    @staticmethod
    def _pk(key: str) -> dict[str, str]:
        return {"S": f"{HASH_MARKER}events/{key}"}

    async def _append(self, key: str, tag: str, data: bytes) -> str:
        item: dict[str, Any] = {"pk": self._pk(key), "t": {"S": tag}, "d": {"B": data}}
        if self.ttl is not None:
            expires_ms = math.ceil((time.time() + self.ttl) * 1000)
            item["expires_ms"] = {"N": str(expires_ms)}
            item["ttl"] = {"N": str(-(-expires_ms // 1000))}
        try:
            while True:
                seq = self._clock.next(key)
                item["sk"] = {"S": f"{seq:020d}"}
                try:
                    await self._client.put_item(
                        TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)"
                    )
                    break
                except ClientError as exc:
                    if _code(exc) != "ConditionalCheckFailedException":
                        raise
            if seq % self._trim_every == 0:
                await self._trim(key)
        except (BotoCoreError, ClientError) as exc:
            raise unreachable(self.backend, exc) from None
        return str(seq)

    async def _query(self, **options: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = await self._client.query(TableName=self.table, ConsistentRead=True, **options)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            options["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    async def _trim(self, key: str) -> None:
        items = await self._query(
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": self._pk(key)},
            ProjectionExpression="pk, sk",
            ScanIndexForward=False,
        )
        old = items[self.max_events_per_stream :]
        for start in range(0, len(old), 25):
            requests = [
                {"DeleteRequest": {"Key": {"pk": i["pk"], "sk": i["sk"]}}} for i in old[start : start + 25]
            ]
            await self._client.batch_write_item(RequestItems={self.table: requests})

    async def _read_from(self, key: str, seq: str) -> Sequence[Row]:
        try:
            items = await self._query(
                KeyConditionExpression="pk = :p AND sk >= :s",
                ExpressionAttributeValues={":p": self._pk(key), ":s": {"S": f"{int(seq):020d}"}},
            )
        except (BotoCoreError, ClientError) as exc:
            raise unreachable(self.backend, exc) from None
        now_ms = time.time() * 1000
        rows = []
        for item in items:
            if "expires_ms" in item and int(item["expires_ms"]["N"]) <= now_ms:
                continue
            position = int(item["sk"]["S"])
            self._clock.seen(key, position)
            rows.append(Row(str(position), item["t"]["S"], raw(item["d"]["B"])))
        return rows
