"""Entries as DynamoDB items: key attributes, the value as JSON text, version and expiry, sizes."""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Mapping
from typing import Any

from fastmcp_sessions._values import dumps_validated
from fastmcp_sessions.errors import DeserializationError, EntryTooLargeError, key_ref
from fastmcp_sessions.stores._names import stored_name
from fastmcp_sessions.stores.base import Value, Versioned

MAX_ITEM_BYTES = 400_000
"""DynamoDB's item size limit, "400 KB" of attribute names and values, read strictly as
400,000 bytes (moto enforces that; DynamoDB Local takes up to 409,600) so that an item
this store accepts is never refused by the server."""

MAX_PARTITION_KEY_BYTES = 2048
"""DynamoDB's partition key limit: longer collection names are stored hashed."""
MAX_SORT_KEY_BYTES = 1024
"""DynamoDB's sort key limit: longer keys are stored hashed."""

LIVE = "(attribute_not_exists(#x) OR #x > :now)"
"""The condition an unexpired item meets, with ``#x`` for ``expires_ms`` and ``:now`` from ``live_now``."""

Item = dict[str, Any]


def now_ms() -> int:
    """The current time in epoch milliseconds, as stored in ``expires_ms``."""
    return int(time.time() * 1000)


def live_now() -> dict[str, Any]:
    """The ``:now`` expression value that ``LIVE`` compares against."""
    return {":now": {"N": str(now_ms())}}


def pk(collection: str) -> str:
    """The partition key of ``collection``: the name, or its hashed form when too long."""
    return stored_name(collection, MAX_PARTITION_KEY_BYTES)


def sk(key: str) -> str:
    """The sort key of ``key``: the key, or its hashed form when too long."""
    return stored_name(key, MAX_SORT_KEY_BYTES)


def item_key(collection: str, key: str) -> Item:
    """The primary key attributes of an entry."""
    return {"pk": {"S": pk(collection)}, "sk": {"S": sk(key)}}


def deletes(collection: str, items: list[Item]) -> list[Item]:
    """BatchWriteItem requests deleting ``items`` (read with their stored ``sk``) of ``collection``."""
    partition = {"S": pk(collection)}
    return [{"DeleteRequest": {"Key": {"pk": partition, "sk": item["sk"]}}} for item in items]


def _utf8_size(text: str) -> int:
    # Validated names and values hold only valid Unicode, so the encoding cannot fail.
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def make_item(collection: str, key: str, value: Value, ttl: float | None, now: float) -> Item:
    """The item holding ``value`` with a new version; raises ``EntryTooLargeError`` past DynamoDB's limit."""
    text = dumps_validated(value)
    size = _utf8_size(text)
    version = secrets.token_urlsafe(12)
    partition, sort = pk(collection), sk(key)
    item: Item = {"pk": {"S": partition}, "sk": {"S": sort}, "value": {"S": text}, "version": {"S": version}}
    # Attribute names count too: pk, sk, value, version (and cn, kn).
    size += 2 + _utf8_size(partition) + 2 + _utf8_size(sort) + 5 + 7 + len(version)
    if partition != collection:
        item["cn"] = {"S": collection}
        size += 2 + _utf8_size(collection)
    if sort != key:
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


def read_entry(item: Mapping[str, Any], now: float, label: str, table: str) -> Versioned | None:
    """The entry an item holds, ``None`` once expired; ``label`` and ``table`` name the store in errors."""
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
            f"{label}: the item for key {key_ref(item.get('sk'))} holds no value this store "
            f"wrote; is another program writing to table {table!r}?"
        )
    return Versioned(value, version, remaining)


def is_live(item: Mapping[str, Any], now_ms: float | None = None) -> bool:
    """Whether ``item`` has not expired at ``now_ms`` (default: now)."""
    expires = item.get("expires_ms")
    return expires is None or float(expires["N"]) > (time.time() * 1000 if now_ms is None else now_ms)
