"""The PostgreSQL store: its pool, schema set-up, purge and operations (SQL: ``_sql``)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import random
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fastmcp_sessions.errors import (
    BaseKeyValueError,
    DeserializationError,
    KeyValueOperationError,
    StoreConnectionError,
    StoreOptionError,
    StoreSetupError,
)
from fastmcp_sessions.stores._driver import Driver, Requirement
from fastmcp_sessions.stores._url import address_from_url, parse_bool, redact_url, split_own_options
from fastmcp_sessions.stores.base import Store, Value, Versioned
from fastmcp_sessions.stores.postgresql._sql import (
    _ESC_COLLECTION,
    _ESC_KEY,
    _derived,
    _json,
    _loaded_name,
    _new_row,
    _new_version,
    _quote,
    _statements,
    _stored_name,
    _version_arg,
    digest,
)

_DRIVER = Driver("PostgreSQLStore", "postgresql", Requirement("asyncpg", "0.30"))
try:
    import asyncpg
    from asyncpg import exceptions as pg_errors

    _DRIVER_ERRORS: tuple[type[BaseException], ...] = (
        OSError,  # refused, reset, TLS failures and timeouts (TimeoutError is an OSError)
        pg_errors.PostgresConnectionError,
        pg_errors.OperatorInterventionError,  # shutdown, crash recovery, statement canceled
        pg_errors.InsufficientResourcesError,  # too many connections
        pg_errors.InterfaceError,  # the connection closed under the driver
    )
    _STATEMENT_ERRORS: tuple[type[BaseException], ...] = (pg_errors.PostgresError,)
    HAVE_ASYNCPG = True
except ImportError as exc:
    _DRIVER.failed(exc)
    _DRIVER_ERRORS = ()
    _STATEMENT_ERRORS = ()
    HAVE_ASYNCPG = False

if TYPE_CHECKING:
    from asyncpg import Pool

logger = logging.getLogger("fastmcp_sessions")

SCHEMA_VERSION = 1
"""The table layout this module writes; ``migrate_schema()`` brings older tables here."""

DEFAULT_SCHEMA = "public"
DEFAULT_TABLE = "fastmcp_sessions"
DEFAULT_TIMEOUT = 5.0
DEFAULT_PURGE_INTERVAL = 60.0
PURGE_BATCH = 500
"""Expired rows deleted per statement: small, so a purge never holds locks for long."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_HOUSEKEEPING_TIMEOUT = 120.0
_URL_OPTIONS: dict[str, Callable[[str], Any]] = {
    "schema": str,
    "table": str,
    "timeout": float,
    "create_table": parse_bool,
    "migrate": parse_bool,
    "purge_interval": float,
    "min_connections": int,
    "max_connections": int,
    "statement_cache_size": int,
    "default_collection": str,
}

# Steps from schema version N to N + 1, run in one transaction by migrate_schema().
# Each is a list of statements with {table}, {meta} and {index} placeholders.
_MIGRATIONS: dict[int, list[str]] = {}


class PostgreSQLStore(Store):
    """A store in one PostgreSQL table, shared by any number of processes.

    Args:
        url: ``postgresql://`` or ``postgres://`` connection URL (user, password, host,
            port, database and libpq query options such as ``sslmode``,
            ``sslrootcert``, ``target_session_attrs``, ``application_name``). Ignored
            when ``pool`` is given.
        pool: An ``asyncpg`` pool to use instead of ``url``; the store never closes it.
        schema: Schema of the table (default ``public``); created when missing.
        table: Table name (default ``fastmcp_sessions``); letters, digits and ``_``.
        timeout: Seconds to wait for a connection or a statement before raising
            ``StoreConnectionError`` (housekeeping statements get longer).
        create_table: Create the schema, table and index when missing (default True).
        migrate: Bring a table of an older schema version up to date on first use
            (default False: such a table raises ``StoreSetupError`` saying how).
        purge_interval: Seconds between background purges of expired rows (default
            60; 0 disables them, ``cull()`` still purges).
        min_connections, max_connections: Pool size for a pool the store creates
            (default 1 and 10).
        statement_cache_size: asyncpg's prepared-statement cache (0 behind PgBouncer
            in transaction mode).
        default_collection: Collection used when a call passes none.
    """

    url_schemes = ("postgresql", "postgres")
    shared_over_network = True
    db_system_name = "postgresql"
    pip_extra = "postgresql"
    driver_errors = _DRIVER_ERRORS + _STATEMENT_ERRORS

    def __init__(
        self,
        url: str | None = None,
        *,
        pool: Pool | None = None,
        schema: str | None = None,
        table: str | None = None,
        timeout: float | None = None,
        create_table: bool | None = None,
        migrate: bool | None = None,
        purge_interval: float | None = None,
        min_connections: int | None = None,
        max_connections: int | None = None,
        statement_cache_size: int | None = None,
        default_collection: str | None = None,
    ) -> None:
        if not HAVE_ASYNCPG:
            raise _DRIVER.error()
        if url is None and pool is None:
            raise StoreOptionError(
                "PostgreSQLStore needs a postgresql:// URL or pool=asyncpg.create_pool(...)"
            )
        if url is not None and pool is not None:
            raise StoreOptionError("pass either url= or pool=, not both")
        ours: dict[str, Any] = {}
        if url is not None:
            url, ours = split_own_options(url, _URL_OPTIONS)

        def option(name: str, given: Any, default: Any) -> Any:
            return given if given is not None else ours.get(name, default)

        super().__init__(default_collection=option("default_collection", default_collection, None))
        self.schema = option("schema", schema, DEFAULT_SCHEMA)
        self.table = option("table", table, DEFAULT_TABLE)
        for what, name in (("schema", self.schema), ("table", self.table)):
            if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
                raise StoreOptionError(
                    f"invalid PostgreSQL {what} name {name!r}: use 1-63 letters, digits and '_', not "
                    "starting with a digit"
                )
        self.timeout = float(option("timeout", timeout, DEFAULT_TIMEOUT))
        if not (0 < self.timeout < math.inf):
            raise StoreOptionError(f"timeout must be a positive number of seconds, got {self.timeout!r}")
        self.purge_interval = float(option("purge_interval", purge_interval, DEFAULT_PURGE_INTERVAL))
        if not (0 <= self.purge_interval < math.inf):
            raise StoreOptionError(f"purge_interval must be >= 0 seconds, got {self.purge_interval!r}")
        self.create_table = bool(option("create_table", create_table, True))
        self.migrate = bool(option("migrate", migrate, False))
        self.min_connections = int(option("min_connections", min_connections, 1))
        self.max_connections = int(option("max_connections", max_connections, 10))
        if not (0 <= self.min_connections <= self.max_connections and self.max_connections >= 1):
            raise StoreOptionError("need 0 <= min_connections <= max_connections and max_connections >= 1")
        self.statement_cache_size = option("statement_cache_size", statement_cache_size, None)
        self._url = url
        self._pool: Pool | None = pool
        self._owns_pool = pool is None
        self._ready = False
        self._setup_lock = asyncio.Lock()
        self._purger: asyncio.Task[None] | None = None
        self.qualified_table = f"{_quote(self.schema)}.{_quote(self.table)}"
        self._meta = f"{_quote(self.schema)}.{_quote(_derived(self.table, 'meta'))}"
        self._index = _quote(_derived(self.table, "expires"))
        self._sql = _statements(self.qualified_table)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PostgreSQLStore:
        """``postgresql://[user[:password]@][host][:port][/database][?options]`` (or ``postgres://``).

        The query options ``schema``, ``table``, ``timeout``, ``create_table``, ``migrate``,
        ``purge_interval``, ``min_connections``, ``max_connections``,
        ``statement_cache_size`` and ``default_collection`` are this store's; every other
        one (``sslmode``, ``sslrootcert``, ``host=/socket/dir``, ...) goes to asyncpg as libpq
        would take it. Keyword options win over the URL's.
        """
        return cls(url, **options)

    def __repr__(self) -> str:
        where = redact_url(self._url) if self._url else "pool=<given>"
        return f"PostgreSQLStore({where}, table={self.schema}.{self.table})"

    def _telemetry_server(self) -> tuple[str | None, int | None]:
        return address_from_url(self._url, 5432)

    @property
    def pool(self) -> Pool | None:
        """The asyncpg pool in use (``None`` until the first operation when the store makes it)."""
        return self._pool

    # -- setup ----------------------------------------------------------------------------

    async def _db(self) -> Pool:
        if not self._ready:
            async with self._setup_lock:
                if not self._ready:
                    if self._pool is None:
                        self._pool = await self._create_pool()
                    await self._ensure_schema(self._pool)
                    self._ready = True
                    self._start_purger()
        assert self._pool is not None
        return self._pool

    async def _create_pool(self) -> Pool:
        assert self._url is not None
        options: dict[str, Any] = {
            "min_size": self.min_connections,
            "max_size": self.max_connections,
            "timeout": self.timeout,  # connecting
            "command_timeout": self.timeout,
        }
        # The store leaves no session state behind (no SET, LISTEN, cursors or session-level
        # locks), so the reset query asyncpg sends on every release would only cost a round trip.
        options["reset"] = _keep_session
        if self.statement_cache_size is not None:
            options["statement_cache_size"] = self.statement_cache_size
        if "application_name" not in urlsplit(self._url).query:
            options["server_settings"] = {"application_name": "fastmcp-sessions"}
        try:
            pool: Pool = await asyncpg.create_pool(self._url, **options)
        except (ValueError, TypeError) as exc:
            raise StoreSetupError(
                f"cannot use the PostgreSQL URL {redact_url(self._url)}: {exc}; see "
                "https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING"
            ) from None
        return pool

    async def schema_version(self) -> int | None:
        """The schema version of the table (``None`` when the table does not exist yet)."""
        pool = self._pool
        if pool is None:
            pool = self._pool = await self._call(self._create_pool)
        version: int | None = await self._call(self._read_schema_version, pool)
        return version

    async def _read_schema_version(self, pool: Pool) -> int | None:
        async with pool.acquire() as conn:
            return await self._version_on(conn)

    async def _exists(self, conn: Any, name: str) -> bool:
        # A catalog query, not to_regclass(): that answers from a cache that taking an
        # advisory lock does not refresh, so it can miss a table created meanwhile.
        found = await conn.fetchval(
            "SELECT EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relname = $2)",
            self.schema,
            name,
        )
        return bool(found)

    async def _version_on(self, conn: Any) -> int | None:
        if not await self._exists(conn, self.table):
            return None
        if not await self._exists(conn, _derived(self.table, "meta")):
            raise StoreSetupError(
                f"{self!r}: table {self.schema}.{self.table} exists but has no "
                f"{_derived(self.table, 'meta')} table beside it, so fastmcp-sessions did not create it; "
                "choose another table= (or schema=)"
            )
        version = await conn.fetchval(f"SELECT schema_version FROM {self._meta} WHERE id = 1")
        if version is None:
            raise StoreSetupError(
                f"{self!r}: {_derived(self.table, 'meta')} holds no schema version; restore its row "
                f"(INSERT INTO {self._meta} VALUES (1, {SCHEMA_VERSION}) if the table has this layout, "
                "see docs/postgresql.md)"
            )
        return int(version)

    async def _ensure_schema(self, pool: Pool) -> None:
        async with pool.acquire() as conn:
            version = await self._version_on(conn)
            if version == SCHEMA_VERSION:
                return
            encoding = await conn.fetchval("SHOW server_encoding")
            if encoding not in ("UTF8", "SQL_ASCII"):
                raise StoreSetupError(
                    f"{self!r}: the database's encoding is {encoding}; fastmcp-sessions needs UTF8 "
                    "(CREATE DATABASE ... ENCODING 'UTF8')"
                )
            async with conn.transaction():
                # One process at a time creates or migrates (CREATE ... IF NOT EXISTS races).
                await conn.execute("SELECT pg_advisory_xact_lock($1)", self._lock_id())
                version = await self._version_on(conn)
                if version is None:
                    if not self.create_table:
                        raise StoreSetupError(
                            f"{self!r}: table {self.schema}.{self.table} does not exist; create it as "
                            "docs/postgresql.md shows, or open the store with create_table=true"
                        )
                    await self._create(conn)
                elif version > SCHEMA_VERSION:
                    raise StoreSetupError(
                        f"{self!r}: table {self.schema}.{self.table} has schema version {version}, newer "
                        f"than this fastmcp-sessions understands ({SCHEMA_VERSION}); upgrade fastmcp-sessions"
                    )
                elif version < SCHEMA_VERSION:
                    if not self.migrate:
                        raise StoreSetupError(
                            f"{self!r}: table {self.schema}.{self.table} has schema version {version}; this "
                            f"fastmcp-sessions needs {SCHEMA_VERSION}. Migrate it once (await "
                            "store.migrate_schema(), or open the store with ?migrate=true) after every "
                            "replica runs this version"
                        )
                    await self._apply_migrations(conn, version)

    def _lock_id(self) -> int:
        raw = hashlib.sha256(f"fastmcp-sessions:{self.schema}.{self.table}".encode()).digest()
        return int.from_bytes(raw[:8], "big", signed=True)

    async def _create(self, conn: Any) -> None:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(self.schema)}")
        await conn.execute(
            f"""CREATE TABLE {self.qualified_table} (
                cid bytea NOT NULL,
                kid bytea NOT NULL,
                collection text NOT NULL,
                key text NOT NULL,
                escaped int2 NOT NULL DEFAULT 0,
                value json NOT NULL,
                version int8 NOT NULL,
                expires float8,
                PRIMARY KEY (cid, kid)
            )"""
        )
        await conn.execute(
            f"CREATE INDEX {self._index} ON {self.qualified_table} (expires) WHERE expires IS NOT NULL"
        )
        await conn.execute(
            f"CREATE TABLE {self._meta} (id int2 PRIMARY KEY CHECK (id = 1), schema_version int4 NOT NULL)"
        )
        await conn.execute(f"INSERT INTO {self._meta} VALUES (1, $1)", SCHEMA_VERSION)
        logger.info(
            "%r: created table %s.%s (schema version %d)", self, self.schema, self.table, SCHEMA_VERSION
        )

    async def _apply_migrations(self, conn: Any, version: int) -> None:
        while version < SCHEMA_VERSION:
            for statement in _MIGRATIONS[version]:
                await conn.execute(
                    statement.format(table=self.qualified_table, meta=self._meta, index=self._index)
                )
            version += 1
            await conn.execute(f"UPDATE {self._meta} SET schema_version = $1 WHERE id = 1", version)
            logger.info(
                "%r: migrated table %s.%s to schema version %d", self, self.schema, self.table, version
            )

    async def migrate_schema(self) -> tuple[int | None, int]:
        """Create the table, or bring it to this version's schema; return ``(before, after)``.

        Safe to run from several processes at once (an advisory lock serialises them) and
        on a table that is already current. Run it once every replica runs this version.
        """
        before = await self.schema_version()
        self.migrate, self._ready = True, False
        await self._call(self._db)
        return before, SCHEMA_VERSION

    # -- background purge ------------------------------------------------------------------

    def _start_purger(self) -> None:
        if self.purge_interval > 0 and self._purger is None:
            self._purger = asyncio.get_running_loop().create_task(self._purge_loop())

    async def _purge_loop(self) -> None:
        while True:
            # Jittered, so replicas started together do not purge in lockstep.
            await asyncio.sleep(self.purge_interval * random.uniform(0.5, 1.0))
            try:
                deleted = await self._purge()
                if deleted:
                    logger.debug("%r: purged %d expired rows", self, deleted)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next round tries again; operations report outages
                logger.debug("%r: background purge failed: %s", self, exc)

    async def _purge(self, batch: int = PURGE_BATCH) -> int:
        """Delete expired rows, ``batch`` per statement, oldest first; return how many."""
        pool = await self._db()
        total = 0
        while True:
            deleted = int(await pool.fetchval(self._sql["purge"], batch, timeout=_HOUSEKEEPING_TIMEOUT))
            total += deleted
            if deleted < batch:
                return total
            await asyncio.sleep(0)  # let other operations have the pool between batches

    # -- errors ---------------------------------------------------------------------------

    def _recover(self, exc: BaseException) -> bool:
        if isinstance(exc, pg_errors.UndefinedTableError):
            self._ready = False  # the table was dropped under us: create it again, once
            return self.create_table
        return False

    def _connection_lost(self) -> None:
        self._ready = False  # the server may come back restored from elsewhere: check the table again

    def _connection_error(self, exc: BaseException) -> StoreConnectionError:
        text = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, TimeoutError):
            advice = (
                f"no answer within timeout={self.timeout:g}s: the server is down, paused or unreachable, or "
                "a statement was very slow (raise timeout= to wait longer)"
            )
        elif isinstance(exc, pg_errors.InsufficientResourcesError):
            advice = "the server has no connection slot left: raise its max_connections or lower ours"
        elif "ssl" in text.lower() or "certificate" in text.lower():
            advice = (
                "the TLS handshake failed: check sslmode= and pass sslrootcert= naming the CA that signed "
                "the server's certificate"
            )
        else:
            advice = "check that the server is running and reachable at this address"
        return StoreConnectionError(
            f"{self!r} could not reach PostgreSQL ({text}); {advice}, then retry: the store reconnects "
            "on its own"
        )

    def _translate_error(self, exc: BaseException) -> BaseKeyValueError:
        if isinstance(exc, _DRIVER_ERRORS):
            return self._connection_error(exc)
        if isinstance(exc, pg_errors.InvalidAuthorizationSpecificationError):
            return StoreSetupError(
                f"{self!r}: PostgreSQL refused the login ({type(exc).__name__}); check the user and password "
                "in the URL (or PGPASSFILE) and pg_hba.conf"
            )
        if isinstance(exc, pg_errors.InvalidCatalogNameError):
            return StoreSetupError(f"{self!r}: {exc}; create the database first (createdb NAME)")
        if isinstance(exc, pg_errors.InsufficientPrivilegeError):
            return StoreSetupError(
                f"{self!r}: {exc}; grant the user SELECT, INSERT, UPDATE, DELETE on "
                f"{self.schema}.{self.table} and its _meta table (and CREATE on the schema for the first "
                "run), see docs/postgresql.md"
            )
        if isinstance(exc, pg_errors.UndefinedTableError):
            return StoreSetupError(
                f"{self!r}: table {self.schema}.{self.table} does not exist ({exc}); create it or open the "
                "store with create_table=true"
            )
        if isinstance(exc, pg_errors.ReadOnlySQLTransactionError):
            return KeyValueOperationError(
                f"{self!r}: the server is a read-only standby; point the URL at the primary (or add "
                "target_session_attrs=read-write with several hosts)"
            )
        if isinstance(exc, pg_errors.ProgramLimitExceededError):
            return KeyValueOperationError(
                f"{self!r}: PostgreSQL refused the statement as over one of its limits ({exc}); keep values "
                "and batches smaller"
            )
        if isinstance(exc, pg_errors.UndefinedObjectError) and "configuration parameter" in str(exc):
            return StoreSetupError(
                f"{self!r}: {exc}: a query option of the URL is neither this store's nor a PostgreSQL "
                f"setting; this store takes {', '.join(sorted(_URL_OPTIONS))} and libpq's (sslmode, ...)"
            )
        return KeyValueOperationError(
            f"{self!r}: PostgreSQL refused the statement ({type(exc).__name__}: {exc}); check the server's "
            "log and version (PostgreSQL 13 or newer)"
        )

    # -- rows <-> values ------------------------------------------------------------------

    def _foreign(self) -> DeserializationError:
        return DeserializationError(
            f"{self!r}: a row holds no value this store wrote; is another program writing to table "
            f"{self.schema}.{self.table}?"
        )

    def _entry(self, row: Any) -> Versioned:
        try:
            value = json.loads(row[0])
        except (TypeError, ValueError):
            value = None
        if type(value) is not dict:
            raise self._foreign()
        remaining = row[2]
        return Versioned(value, str(row[1]), None if remaining is None else max(remaining, 0.0))

    # -- the backend interface ----------------------------------------------------------

    async def _get_versioned(self, collection: str, key: str) -> Versioned | None:
        pool = await self._db()
        row = await pool.fetchrow(self._sql["read"], digest(collection), digest(key))
        return None if row is None else self._entry(row)

    async def _get_versioned_many(self, collection: str, keys: list[str]) -> list[Versioned | None]:
        if not keys:
            return []
        pool = await self._db()
        positions: dict[str, int] = {}
        ids: list[bytes] = []
        for k in keys:
            if k not in positions:
                positions[k] = len(ids)
                ids.append(digest(k))
        row = await pool.fetchrow(self._sql["read_many"], digest(collection), ids)
        found: list[Versioned | None] = [None] * len(ids)
        if row[0] is not None:
            # The server aggregates the values into one JSON array: one parse, not one per row.
            values = json.loads(row[0])
            for value, at, version, remaining in zip(values, row[1], row[2], row[3], strict=True):
                if type(value) is not dict:
                    raise self._foreign()
                found[at - 1] = Versioned(
                    value, str(version), None if remaining is None else max(remaining, 0.0)
                )
        return [found[positions[k]] for k in keys]

    async def _put(self, collection: str, key: str, value: Value, ttl: float | None) -> None:
        pool = await self._db()
        await pool.execute(self._sql["write"], *_new_row(collection, key, value), ttl)

    async def _put_many(
        self, collection: str, keys: list[str], values: list[Value], ttl: float | None
    ) -> None:
        if not keys:
            return
        pool = await self._db()
        c, c_esc = _stored_name(collection)
        # One row per key, the last value winning: ON CONFLICT may not touch a row twice.
        latest = dict(zip(keys, values, strict=True))
        kids, names, flags, texts, versions = [], [], [], [], []
        for k, v in latest.items():
            text, k_esc = _stored_name(k)
            kids.append(digest(k))
            names.append(text)
            flags.append(c_esc * _ESC_COLLECTION + k_esc * _ESC_KEY)
            texts.append(_json(collection, k, v))
            versions.append(_new_version())
        await pool.execute(
            self._sql["write_many"], digest(collection), c, kids, names, flags, texts, versions, ttl
        )

    async def _delete(self, collection: str, key: str) -> bool:
        pool = await self._db()
        return bool(await pool.fetchval(self._sql["remove"], digest(collection), digest(key)))

    async def _delete_many(self, collection: str, keys: list[str]) -> int:
        if not keys:
            return 0
        pool = await self._db()
        ids = list(dict.fromkeys(digest(k) for k in keys))
        return int(await pool.fetchval(self._sql["remove_many"], digest(collection), ids))

    async def _put_if_absent(self, collection: str, key: str, value: Value, ttl: float | None) -> bool:
        pool = await self._db()
        inserted = await pool.fetchval(self._sql["insert"], *_new_row(collection, key, value), ttl)
        return inserted is not None

    async def _compare_and_set(
        self, collection: str, key: str, value: Value, version: str, ttl: float | None
    ) -> bool:
        expected = _version_arg(version)
        if expected is None:
            return False
        pool = await self._db()
        status = await pool.execute(
            self._sql["swap"],
            digest(collection),
            digest(key),
            _json(collection, key, value),
            _new_version(),
            ttl,
            expected,
        )
        return bool(status == "UPDATE 1")

    async def _delete_if_version(self, collection: str, key: str, version: str) -> bool:
        expected = _version_arg(version)
        if expected is None:
            return False
        pool = await self._db()
        status = await pool.execute(self._sql["remove_if_version"], digest(collection), digest(key), expected)
        return bool(status == "DELETE 1")

    async def _keys(self, collection: str, limit: int | None) -> list[str]:
        if limit == 0:
            return []
        pool = await self._db()
        rows = await pool.fetch(
            self._sql["list_keys"], digest(collection), limit, timeout=_HOUSEKEEPING_TIMEOUT
        )
        return [_loaded_name(row[0], bool(row[1] & _ESC_KEY)) for row in rows]

    async def _collections(self, limit: int | None) -> list[str]:
        if limit == 0:
            return []
        pool = await self._db()
        rows = await pool.fetch(self._sql["list_collections"], timeout=_HOUSEKEEPING_TIMEOUT)
        names = sorted(_loaded_name(row[0], bool(row[1] & _ESC_COLLECTION)) for row in rows)
        return names if limit is None else names[:limit]

    async def _destroy_collection(self, collection: str) -> bool:
        pool = await self._db()
        live = await pool.fetchval(self._sql["drop"], digest(collection), timeout=_HOUSEKEEPING_TIMEOUT)
        return bool(live)

    async def _cull(self) -> None:
        await self._purge()

    async def _close(self) -> None:
        purger, self._purger = self._purger, None
        if purger is not None:
            purger.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await purger
        if self._owns_pool and self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), self.timeout)
            except _DRIVER_ERRORS:
                pool.terminate()  # the server is gone: drop the connections without goodbyes


async def _keep_session(conn: Any) -> None:
    """Pool reset hook: asyncpg has already rolled back any open transaction; nothing else to undo."""
