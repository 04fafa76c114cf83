"""BatchGetItem and BatchWriteItem: chunks in flight together, unprocessed items retried with backoff."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from fastmcp_sessions.errors import KeyValueOperationError
from fastmcp_sessions.stores.dynamodb.connection import CONCURRENCY
from fastmcp_sessions.stores.dynamodb.encoding import Item

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.client import DynamoDBClient

T = TypeVar("T")

GET_BATCH = 100  # BatchGetItem's limit
WRITE_BATCH = 25  # BatchWriteItem's limit
_UNPROCESSED_ROUNDS = 12  # backoff 0.05 s doubling to 2 s: about 15 s of throttling before giving up


async def run_all(jobs: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run ``jobs`` with at most ``CONCURRENCY`` in flight; the first error cancels the rest."""
    if len(jobs) == 1:
        return [await jobs[0]()]
    gate = asyncio.Semaphore(CONCURRENCY)

    async def run(job: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await job()

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(run(job)) for job in jobs]
    except BaseExceptionGroup as errors:
        raise errors.exceptions[0] from None
    return [task.result() for task in tasks]


def chunks(items: list[Item], size: int) -> list[list[Item]]:
    """``items`` cut into lists of at most ``size``."""
    return [items[i : i + size] for i in range(0, len(items), size)]


async def _backoff(rounds: int, what: str, label: str) -> None:
    if rounds >= _UNPROCESSED_ROUNDS:
        raise KeyValueOperationError(
            f"{label}: DynamoDB left items of a {what} unprocessed {rounds} times in a row "
            "(throttling); part of the batch may be done: retry it, and raise the table's capacity"
        )
    await asyncio.sleep(min(2.0, 0.05 * 2**rounds) * random.uniform(0.5, 1.0))


async def batch_get(
    client: DynamoDBClient, table: str, label: str, keys: list[Item], projection: str | None
) -> list[Item]:
    """The items at ``keys`` (at most ``GET_BATCH``), read consistently, with ``projection`` if given."""
    request: Any = {"Keys": keys, "ConsistentRead": True}
    if projection:
        request["ProjectionExpression"] = projection
        request["ExpressionAttributeNames"] = {"#x": "expires_ms"}
    items: list[Item] = []
    rounds = 0
    while True:
        response = await client.batch_get_item(RequestItems={table: request})
        items.extend(response.get("Responses", {}).get(table, []))
        pending: Any = response.get("UnprocessedKeys", {}).get(table)
        if not pending or not pending.get("Keys"):
            return items
        request = pending
        await _backoff(rounds, "BatchGetItem", label)
        rounds += 1


async def batch_write(client: DynamoDBClient, table: str, label: str, requests: list[Item]) -> None:
    """Send ``requests`` (at most ``WRITE_BATCH``) until DynamoDB has processed them all."""
    rounds = 0
    pending: Any = requests
    while pending:
        response = await client.batch_write_item(RequestItems={table: pending})
        pending = response.get("UnprocessedItems", {}).get(table)
        if pending:
            await _backoff(rounds, "BatchWriteItem", label)
            rounds += 1
