"""MongoDB store: one document per entry, through pymongo's native asyncio client.

Every store collection lives in one MongoDB collection (``entries`` in database
``fastmcp_sessions`` by default; see docs/mongodb.md)::

    {
      "_id": "18:default_collection:user-42",   # len(c) ":" c ":" k
      "c": "default_collection",                # collection (hashed over 255 bytes), indexed
      "k": "user-42",                           # key (hashed over 1,024 bytes), indexed
      "cn": "...", "kn": "...",                 # collection / key as given, only where hashed
      "d": {...},                               # the value as a BSON sub-document, or
      "j": "{...}",                             #   as JSON text when BSON can't hold it exactly
      "v": "Jx3k...",                           # version: a random token, new on every write
      "x": 1767225600.123456,                   # exact expiry (epoch seconds); absent: never
      "expires_at": ISODate(...)                # x rounded UP to the millisecond, for the TTL index
    }

    indexes: {expires_at: 1} expireAfterSeconds=0 (MongoDB deletes expired documents),
             {c: 1, k: 1} (listing keys and collections)

The length prefix makes ``_id`` unambiguous for any collection and key. Names longer
than 255 bytes (collections) or 1,024 bytes (keys) are stored hashed by the shared scheme
of ``fastmcp_sessions.stores._names``, which keeps ``_id`` and every index entry under
about 1.3 KB; names that fit are stored as they are. Reads filter
on ``x`` themselves, so an entry expires exactly on time although MongoDB's TTL
monitor only runs every minute; ``expires_at`` is rounded up so that monitor never
deletes an entry early. The atomic operations are single conditional statements on
(``_id``, ``v``, liveness): put-if-absent is an insert on the unique ``_id`` (taking
over an expired document with a conditional update), compare-and-set is
``update_one``, delete-if-version is ``delete_one``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from fastmcp_sessions.errors import (
    BaseKeyValueError,
    DeserializationError,
    EntryTooLargeError,
    KeyValueOperationError,
    SerializationError,
    StoreConnectionError,
    StoreOptionError,
    StoreSetupError,
    key_ref,
)
from fastmcp_sessions.stores._driver import Driver, Requirement
from fastmcp_sessions.stores._names import is_hashed, stored_name
from fastmcp_sessions.stores._url import address_from_url, parse_bool, redact_url, split_own_options
from fastmcp_sessions.stores.base import Store, Value, Versioned

_DRIVER = Driver("MongoDBStore", "mongodb", Requirement("pymongo", "4.12", imports=("pymongo", "bson")))
try:
    import bson
    from bson.codec_options import CodecOptions, TypeDecoder, TypeRegistry
    from bson.int64 import Int64
    from pymongo import ASCENDING, AsyncMongoClient, UpdateOne
    from pymongo.errors import (
        BulkWriteError,
        ConfigurationError,
        ConnectionFailure,
        DocumentTooLarge,
        DuplicateKeyError,
        ExecutionTimeout,
        InvalidName,
        OperationFailure,
        PyMongoError,
    )

    HAVE_PYMONGO = True
except ImportError as exc:  # pragma: no cover - exercised by monkeypatching HAVE_PYMONGO
    _DRIVER.failed(exc)
    HAVE_PYMONGO = False

if TYPE_CHECKING:
    from pymongo.asynchronous.collection import AsyncCollection

logger = logging.getLogger("fastmcp_sessions")

DEFAULT_DATABASE = "fastmcp_sessions"
DEFAULT_MONGO_COLLECTION = "entries"
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
"""MongoDB's document size limit."""

MAX_COLLECTION_FIELD_BYTES = 255
"""Longest collection stored as it is in ``c`` (and ``_id``); longer ones are hashed."""
MAX_KEY_FIELD_BYTES = 1024
"""Longest key stored as it is in ``k`` (and ``_id``); longer ones are hashed."""

_NEAR_LIMIT = MAX_DOCUMENT_BYTES - 8 * 1024  # room for _id, c, k, v, x, expires_at (cn, kn counted apart)
_SOCKET_TIMEOUT_MS = 30_000
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_DUPLICATE_KEY = 11000
_INDEX_CONFLICTS = (85, 86)  # IndexOptionsConflict, IndexKeySpecsConflict
_AUTH_FAILURES = (13, 18)  # Unauthorized, AuthenticationFailed
_URL_OPTIONS: dict[str, Callable[[str], Any]] = {
    "database": str,
    "collection": str,
    "timeout": float,
    "create_indexes": parse_bool,
    "default_collection": str,
}


if HAVE_PYMONGO:

    class _PlainInt(TypeDecoder):
        """Decode BSON int64 as ``int``: values must hold plain JSON types only."""

        bson_type = Int64

        def transform_bson(self, value: Any) -> int:
            return int(value)

    _CODEC_OPTIONS: Any = CodecOptions(type_registry=TypeRegistry([_PlainInt()]))


def entry_id(collection: str, key: str) -> str:
    """The ``_id`` of the document holding (collection, key): unambiguous for any names."""
    return _id_of(_stored_collection(collection), _stored_key(key))


def _id_of(c: str, k: str) -> str:
    """The ``_id`` for the stored forms ``c`` and ``k``."""
    return f"{len(c)}:{c}:{k}"


def _stored_collection(collection: str) -> str:
    return stored_name(collection, MAX_COLLECTION_FIELD_BYTES)


def _stored_key(key: str) -> str:
    return stored_name(key, MAX_KEY_FIELD_BYTES)


def _new_version() -> str:
    return secrets.token_urlsafe(12)


def _live(now: float, **match: Any) -> dict[str, Any]:
    """A filter for live documents that also match ``match``.

    "No expiry or not yet expired" is spelled with ``$or`` (nx-27017 lacks ``$not``) and
    joined by an explicit ``$and``: nx-27017's updates and deletes treat a top-level
    ``$or`` beside other fields as an alternative to them, matching stale versions.
    """
    live = {"$or": [{"x": None}, {"x": {"$gt": now}}]}
    return {"$and": [match, live]} if match else live


def _expired(doc: dict[str, Any], now: float) -> bool:
    x = doc.get("x")
    return x is not None and x <= now


def _ttl_date(expires: float) -> dt.datetime:
    # BSON dates hold milliseconds: round up, so the TTL monitor never deletes early.
    return dt.datetime.fromtimestamp(math.ceil(expires * 1000) / 1000, dt.UTC)


def _bson_size(value: dict[str, Any]) -> int:
    """An upper bound of ``value``'s size as BSON, or -1 when BSON cannot hold it exactly.

    BSON field names are C strings (no NUL), servers before 5.0 refuse ``$``-prefixed and
    dotted field names, BSON integers stop at int64, and strings must be valid UTF-8.
    """
    size = 5
    for k, v in value.items():
        if not k or k[0] == "$" or "." in k or "\x00" in k:
            return -1
        n = _bson_item_size(v)
        if n < 0:
            return -1
        if k.isascii():
            size += 2 + len(k) + n
        else:
            try:
                size += 2 + len(k.encode("utf-8")) + n
            except UnicodeEncodeError:
                return -1
    return size


def _bson_item_size(v: Any) -> int:
    t = type(v)
    if t is str:
        if v.isascii():
            return 5 + len(v)
        try:
            return 5 + len(v.encode("utf-8"))
        except UnicodeEncodeError:
            return -1
    if t is int:
        return 8 if _INT64_MIN <= v <= _INT64_MAX else -1
    if t is dict:
        return _bson_size(v)
    if t is list:
        size = 5
        for i, item in enumerate(v):
            n = _bson_item_size(item)
            if n < 0:
                return -1
            size += 2 + len(str(i)) + n
        return size
    return 8  # float, bool, None: at most a double


def _json(value: Value) -> str:
    # ensure_ascii: lone surrogates become escapes, so the text is always valid UTF-8.
    return json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))


class MongoDBStore(Store):
    """A store in MongoDB (or any server speaking its wire protocol), shared by any number
    of processes.

    Args:
        url: ``mongodb://`` or ``mongodb+srv://`` connection string; every option pymongo
            understands may be in it. Ignored when ``client`` is given.
        client: An ``AsyncMongoClient`` to use instead of ``url``; the store does not
            close it, and its own timeouts apply.
        database: Database name. Default: the URL's path (``mongodb://host/NAME``), else
            ``fastmcp_sessions``.
        collection: MongoDB collection holding every entry (default ``entries``).
        timeout: Seconds to wait for an unreachable server before raising
            ``StoreConnectionError`` (server selection and connect timeouts), unless the
            URL sets ``serverSelectionTimeoutMS``/``connectTimeoutMS`` itself.
        create_indexes: Ensure the TTL and listing indexes on first use (default True).
        default_collection: Collection used when a call passes none.
        **client_options: Further keyword options for ``AsyncMongoClient``.
    """

    url_schemes = ("mongodb", "mongodb+srv")
    db_system_name = "mongodb"
    pip_extra = "mongodb"
    shared_over_network = True
    driver_errors = (PyMongoError,) if HAVE_PYMONGO else ()

    def __init__(
        self,
        url: str | None = None,
        *,
        client: AsyncMongoClient[dict[str, Any]] | None = None,
        database: str | None = None,
        collection: str | None = None,
        timeout: float | None = None,
        create_indexes: bool | None = None,
        default_collection: str | None = None,
        **client_options: Any,
    ) -> None:
        if not HAVE_PYMONGO:
            raise _DRIVER.error()
        if url is None and client is None:
            raise StoreOptionError("MongoDBStore needs a mongodb:// URL or client=AsyncMongoClient(...)")
        # This store's options may sit in the URL's query; the keywords win.
        url, ours = (None, {}) if client is not None or url is None else split_own_options(url, _URL_OPTIONS)
        timeout = ours.get("timeout", 5.0) if timeout is None else timeout
        if isinstance(timeout, bool) or not (isinstance(timeout, int | float) and 0 < timeout < math.inf):
            raise StoreOptionError(f"timeout must be a positive number of seconds, got {timeout!r}")
        super().__init__(
            default_collection=ours.get("default_collection")
            if default_collection is None
            else default_collection
        )
        self.timeout = float(timeout)
        self._url = url
        self._owns_client = client is None
        if client is None:
            assert url is not None
            client = self._make_client(url, client_options)
        self._client: AsyncMongoClient[dict[str, Any]] = client
        self.database = database or ours.get("database") or _database_from_url(url) or DEFAULT_DATABASE
        self.collection_name = collection or ours.get("collection") or DEFAULT_MONGO_COLLECTION
        try:
            self._coll: AsyncCollection[dict[str, Any]] = client.get_database(
                self.database, codec_options=_CODEC_OPTIONS
            ).get_collection(self.collection_name)
        except (InvalidName, TypeError) as exc:
            raise StoreOptionError(
                f"invalid MongoDB database or collection name ({exc}); database names may not contain "
                "/\\. \"$ or spaces, collection names may not be empty or start with 'system.'"
            ) from None
        self._create_indexes = ours.get("create_indexes", True) if create_indexes is None else create_indexes
        self._ready = not self._create_indexes

    def _make_client(self, url: str, options: dict[str, Any]) -> AsyncMongoClient[dict[str, Any]]:
        given = {name.lower() for name, _ in parse_qsl(urlsplit(url).query)} | {k.lower() for k in options}
        millis = int(self.timeout * 1000)
        defaults = (
            ("serverSelectionTimeoutMS", millis),
            ("connectTimeoutMS", millis),
            # A server that accepts connections but stops answering fails after this long.
            ("socketTimeoutMS", _SOCKET_TIMEOUT_MS),
            ("appname", "fastmcp-sessions"),
        )
        for name, value in defaults:
            if name.lower() not in given:
                options[name] = value
        try:
            return AsyncMongoClient(url, **options)
        except (ConfigurationError, ValueError) as exc:
            raise StoreSetupError(
                f"cannot use the MongoDB URL {redact_url(url)}: {exc}; see "
                "https://www.mongodb.com/docs/manual/reference/connection-string/"
            ) from exc

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MongoDBStore:
        """``mongodb://[user:pass@]host[:port][,host...]/[database]?options`` (or ``mongodb+srv://``).

        The query options ``database``, ``collection``, ``timeout``, ``create_indexes``
        and ``default_collection`` are this store's; every other one goes to pymongo.
        """
        return cls(url, **options)

    def __repr__(self) -> str:
        where = redact_url(self._url) if self._url else "client=<given>"
        return f"MongoDBStore({where}, database={self.database!r}, collection={self.collection_name!r})"

    def _telemetry_server(self) -> tuple[str | None, int | None]:
        return address_from_url(self._url, 27017)

    @property
    def client(self) -> AsyncMongoClient[dict[str, Any]]:
        """The pymongo ``AsyncMongoClient`` this store uses (not to be closed by others)."""
        return self._client

    # -- setup and errors ----------------------------------------------------------------

    async def _entries(self) -> AsyncCollection[dict[str, Any]]:
        if not self._ready:
            await self._ensure_indexes()
            self._ready = True
        return self._coll

    async def _ensure_indexes(self) -> None:
        # Idempotent, so concurrent first calls (or processes) may all run it.
        coll = self._coll
        await coll.create_index([("c", ASCENDING), ("k", ASCENDING)])
        try:
            await coll.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0)
        except OperationFailure as exc:
            if exc.code not in _INDEX_CONFLICTS:
                raise
            await self._adopt_expiry_index(exc)

    async def _adopt_expiry_index(self, conflict: OperationFailure) -> None:
        # An index on expires_at already exists with other options (someone else's, or a
        # TTL with a delay). Any TTL only deletes later than ours would, never earlier, so
        # try to make it expire at once and otherwise carry on: reads filter expiry anyway.
        try:
            await self._coll.database.command(
                {
                    "collMod": self.collection_name,
                    "index": {"keyPattern": {"expires_at": 1}, "expireAfterSeconds": 0},
                }
            )
        except OperationFailure as exc:
            logger.warning(
                "%r: the index on expires_at conflicts with the TTL index this store needs (%s) and "
                "collMod could not change it (%s); expired entries are still never returned, but "
                "MongoDB will not delete them promptly. Drop that index (the store recreates it) "
                "or call cull() periodically",
                self,
                conflict.details.get("errmsg") if conflict.details else conflict,
                exc.details.get("errmsg") if exc.details else exc,
            )

    def _connection_lost(self) -> None:
        # The server may come back empty (a new primary, a restored backup): check the
        # indexes again on the next call.
        self._ready = not self._create_indexes

    def _connection_error(self, exc: BaseException) -> StoreConnectionError:
        return StoreConnectionError(
            f"{self!r}: MongoDB is unreachable or not answering ({type(exc).__name__}: {exc}); check that "
            "the server is running and the URL's hosts are reachable, then retry: the store reconnects on "
            f"its own (it waits timeout={self.timeout:g}s for a server; raise it to wait longer)"
        )

    def _translate_error(self, exc: BaseException) -> BaseKeyValueError:
        if isinstance(exc, ConnectionFailure | ExecutionTimeout):
            return self._connection_error(exc)
        if isinstance(exc, OperationFailure) and (
            exc.code in _AUTH_FAILURES or "authentication failed" in str(exc).lower()
        ):
            return StoreSetupError(
                f"{self!r}: MongoDB refused access ({exc}); check the user and password in the URL "
                f"(and authSource), and that the user may read and write database {self.database!r}"
            )
        if isinstance(exc, DocumentTooLarge):
            return SerializationError(
                f"{self!r}: a document is too large for MongoDB ({exc}); keep entries under 16 MiB"
            )
        return KeyValueOperationError(
            f"{self!r}: MongoDB refused the operation ({type(exc).__name__}: {exc}); check the server's "
            "log and version (MongoDB 4.2 or newer is needed)"
        )

    # -- documents <-> values -----------------------------------------------------------

    @staticmethod
    def _fields(collection: str, key: str, value: Value, ttl: float | None, now: float) -> dict[str, Any]:
        c, k = _stored_collection(collection), _stored_key(key)
        fields: dict[str, Any] = {"c": c, "k": k}
        size = _bson_size(value)
        if size >= 0:
            fields["d"] = value
        else:
            fields["j"] = text = _json(value)
            size = len(text)  # ASCII
        # The original names of hashed ones: unbounded, so outside the room _NEAR_LIMIT keeps.
        if c != collection:
            fields["cn"] = collection
            size += _bson_item_size(collection) + 4
        if k != key:
            fields["kn"] = key
            size += _bson_item_size(key) + 4
        fields["v"] = _new_version()
        if ttl is not None:
            expires = now + ttl
            fields["x"] = expires
            fields["expires_at"] = _ttl_date(expires)
        if size > _NEAR_LIMIT:
            # Only near the limit is the exact size worth encoding for. Checked here, before
            # any call: in a bulk write pymongo leaves it to the server, and stand-ins accept it.
            document = {"_id": _id_of(c, k), **fields}
            exact = len(bson.encode(document, codec_options=_CODEC_OPTIONS))
            if exact > MAX_DOCUMENT_BYTES:
                raise EntryTooLargeError(
                    exact,
                    MAX_DOCUMENT_BYTES,
                    collection,
                    key,
                    "MongoDB documents are limited to 16 MiB; keep large data elsewhere (GridFS, object "
                    "storage) and store a reference",
                )
        return fields

    @staticmethod
    def _update(fields: dict[str, Any]) -> dict[str, Any]:
        # Unset whatever the previous write may have left: the other value form, and the
        # expiry when this write has none (overwriting without a TTL removes the expiry).
        unset = {name: "" for name in ("d", "j", "x", "expires_at") if name not in fields}
        return {"$set": fields, "$unset": unset}

    def _entry(self, doc: dict[str, Any], now: float) -> Versioned:
        value = doc.get("d")
        if type(value) is not dict:
            text = doc.get("j")
            try:
                value = json.loads(text) if isinstance(text, str) else None
            except ValueError:
                value = None
            if type(value) is not dict:
                raise DeserializationError(
                    f"{self!r}: the document for key {key_ref(doc.get('k'))} holds no value this store "
                    f"wrote; is another program writing to collection {self.collection_name!r}?"
                )
        x = doc.get("x")
        return Versioned(value, str(doc.get("v")), None if x is None else max(x - now, 0.0))

    # -- the backend interface ----------------------------------------------------------

    async def _get_versioned(self, collection: str, key: str) -> Versioned | None:
        coll = await self._entries()
        doc = await coll.find_one({"_id": entry_id(collection, key)})
        now = time.time()
        return None if doc is None or _expired(doc, now) else self._entry(doc, now)

    async def _get_versioned_many(self, collection: str, keys: list[str]) -> list[Versioned | None]:
        if not keys:
            return []
        coll = await self._entries()
        ids = [entry_id(collection, k) for k in dict.fromkeys(keys)]
        docs = await coll.find({"_id": {"$in": ids}}).to_list()
        now = time.time()
        found = {doc["k"]: self._entry(doc, now) for doc in docs if not _expired(doc, now)}
        return [found.get(_stored_key(k)) for k in keys]

    async def _put(self, collection: str, key: str, value: Value, ttl: float | None) -> None:
        coll = await self._entries()
        update = self._update(self._fields(collection, key, value, ttl, time.time()))
        try:
            await coll.update_one({"_id": entry_id(collection, key)}, update, upsert=True)
        except DuplicateKeyError:
            # Two upserts of a new key raced and the other inserted first: now it exists.
            await coll.update_one({"_id": entry_id(collection, key)}, update, upsert=True)

    async def _put_many(
        self, collection: str, keys: list[str], values: list[Value], ttl: float | None
    ) -> None:
        if not keys:
            return
        coll = await self._entries()
        now = time.time()
        # One write per key, the last value winning, whatever order the server applies them in.
        latest = dict(zip(keys, values, strict=True))
        ops = [
            UpdateOne(
                {"_id": entry_id(collection, k)},
                self._update(self._fields(collection, k, v, ttl, now)),
                upsert=True,
            )
            for k, v in latest.items()
        ]
        try:
            await coll.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if not errors or any(e.get("code") != _DUPLICATE_KEY for e in errors):
                raise
            # Upserts that lost an insert race against another writer: the keys exist now.
            await coll.bulk_write([ops[e["index"]] for e in errors], ordered=False)

    async def _delete(self, collection: str, key: str) -> bool:
        coll = await self._entries()
        doc = await coll.find_one_and_delete(
            {"_id": entry_id(collection, key)}, projection={"_id": 0, "x": 1}
        )
        return doc is not None and not _expired(doc, time.time())

    async def _delete_many(self, collection: str, keys: list[str]) -> int:
        if not keys:
            return 0
        coll = await self._entries()
        ids = [entry_id(collection, k) for k in dict.fromkeys(keys)]
        # Expired documents are left to the TTL monitor; only live ones count.
        result = await coll.delete_many(_live(time.time(), _id={"$in": ids}))
        return result.deleted_count

    async def _put_if_absent(self, collection: str, key: str, value: Value, ttl: float | None) -> bool:
        coll = await self._entries()
        _id = entry_id(collection, key)
        for _ in range(3):
            now = time.time()
            fields = self._fields(collection, key, value, ttl, now)
            try:
                await coll.insert_one({"_id": _id, **fields})
                return True
            except DuplicateKeyError:
                pass
            # Taken, but an expired document counts as absent: take it over, conditionally,
            # so that of several callers only the first one succeeds.
            result = await coll.update_one({"_id": _id, "x": {"$lte": now}}, self._update(fields))
            if result.matched_count:
                return True
            holder = await coll.find_one({"_id": _id}, projection={"_id": 0, "x": 1})
            if holder is not None and not _expired(holder, time.time()):
                return False
            # The holder expired or was deleted meanwhile: try again.
        return False

    async def _compare_and_set(
        self, collection: str, key: str, value: Value, version: str, ttl: float | None
    ) -> bool:
        coll = await self._entries()
        now = time.time()
        update = self._update(self._fields(collection, key, value, ttl, now))
        result = await coll.update_one(_live(now, _id=entry_id(collection, key), v=version), update)
        return result.matched_count == 1

    async def _delete_if_version(self, collection: str, key: str, version: str) -> bool:
        coll = await self._entries()
        result = await coll.delete_one(_live(time.time(), _id=entry_id(collection, key), v=version))
        return result.deleted_count == 1

    async def _keys(self, collection: str, limit: int | None) -> list[str]:
        if limit == 0:
            return []
        coll = await self._entries()
        cursor = coll.find(
            _live(time.time(), c=_stored_collection(collection)), projection={"_id": 0, "k": 1, "kn": 1}
        )
        cursor = cursor.sort([("c", ASCENDING), ("k", ASCENDING)])
        if limit is not None:
            cursor = cursor.limit(limit)
        return [doc.get("kn", doc["k"]) async for doc in cursor]

    async def _collections(self, limit: int | None) -> list[str]:
        coll = await self._entries()
        names = []
        for c in await coll.distinct("c", _live(time.time())):
            if is_hashed(c):
                # Every document of the collection holds its name; rare, so one lookup each.
                doc = await coll.find_one({"c": c}, projection={"_id": 0, "cn": 1})
                if doc is None or not isinstance(doc.get("cn"), str):
                    continue  # dropped since the distinct
                c = doc["cn"]
            names.append(c)
        names.sort()
        return names if limit is None else names[:limit]

    async def _destroy_collection(self, collection: str) -> bool:
        coll = await self._entries()
        c = _stored_collection(collection)
        live = await coll.delete_many(_live(time.time(), c=c))
        await coll.delete_many({"c": c})  # and the expired leftovers
        return live.deleted_count > 0

    async def _cull(self) -> None:
        coll = await self._entries()
        await coll.delete_many({"x": {"$lte": time.time()}})

    async def _close(self) -> None:
        if self._owns_client:
            await self._client.close()


def _database_from_url(url: str | None) -> str | None:
    if not url:
        return None
    name = unquote(urlsplit(url).path.lstrip("/"))
    return name or None


__all__ = ["MongoDBStore", "entry_id"]
