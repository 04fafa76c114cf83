"""Events in MongoDB: a document per event in a collection beside the store's.

Each event is ``{_id: "<stream key>/<seq>", s: stream key, q: seq, t: tag, d: payload,
x: expiry (epoch seconds), expires_at: expiry (date)}``; an index on ``(s, q)`` serves
replay with one query, a TTL index on ``expires_at`` lets the server delete expired
events (reads skip them before that). ``store_event`` is one ``insert_one``; positions
come from ``ClockSequence`` (``_id`` makes a taken one fail, never overwrite). Trimming
rides along with about one insert in ``max_events_per_stream // 2``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Sequence
from typing import Any, Unpack

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError, PyMongoError

from fastmcp_sessions.encryption import Keyring
from fastmcp_sessions.events.base import (
    ClockSequence,
    EventStoreOptions,
    NativeEventStore,
    Row,
    raw,
    unreachable,
)

__all__ = ["MongoDBEventStore"]


class MongoDBEventStore(NativeEventStore):
    """Events of every replica sharing one MongoDB database.

    Args:
        collection: A pymongo ``AsyncCollection`` for the events (indexes created on first use).
        keyring, namespace, max_events_per_stream, ttl: See ``NativeEventStore``.
    """

    backend = "mongodb"

    def __init__(
        self,
        collection: Any,
        *,
        keyring: Keyring | None = None,
        **options: Unpack[EventStoreOptions],
    ) -> None:
        super().__init__(keyring=keyring, **options)
        self.collection = collection
        self._clock = ClockSequence()
        self._setup_lock = asyncio.Lock()

    async def _prepare(self) -> None:
        async with self._setup_lock:
            if self._prepared:
                return
            try:
                await self.collection.create_index([("s", ASCENDING), ("q", ASCENDING)])
                await self.collection.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0)
            except PyMongoError as exc:
                raise unreachable(self.backend, exc) from None
            await super()._prepare()

    async def _append(self, key: str, tag: str, data: bytes) -> str:
        doc: dict[str, Any] = {"s": key, "t": tag, "d": data}
        if self.ttl is not None:
            expires = time.time() + self.ttl
            doc["x"] = expires
            doc["expires_at"] = dt.datetime.fromtimestamp(expires, dt.UTC)
        try:
            while True:
                seq = self._clock.next(key)
                doc.update(_id=f"{key}/{seq}", q=seq)
                try:
                    await self.collection.insert_one(doc)
                    break
                except DuplicateKeyError:
                    continue  # another process took this position: take the next
            if seq % self._trim_every == 0:
                await self._trim(key)
        except PyMongoError as exc:
            raise unreachable(self.backend, exc) from None
        return str(seq)

    async def _trim(self, key: str) -> None:
        cursor = (
            self.collection.find({"s": key}, {"q": 1}).sort("q", DESCENDING).skip(self.max_events_per_stream)
        )
        oldest_kept = await cursor.to_list(1)
        if oldest_kept:
            await self.collection.delete_many({"s": key, "q": {"$lte": oldest_kept[0]["q"]}})

    async def _read_from(self, key: str, seq: str) -> Sequence[Row]:
        try:
            docs = (
                await self.collection.find({"s": key, "q": {"$gte": int(seq)}})
                .sort("q", ASCENDING)
                .to_list(None)
            )
        except PyMongoError as exc:
            raise unreachable(self.backend, exc) from None
        now = time.time()
        rows = []
        for doc in docs:
            if doc.get("x") is not None and doc["x"] <= now:
                continue
            self._clock.seen(key, doc["q"])
            rows.append(Row(str(doc["q"]), doc["t"], raw(doc["d"])))
        return rows
