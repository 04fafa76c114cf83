"""The PostgreSQL bus: events in a table, ``NOTIFY`` only as a wake-up.

Tables (created on first use, in the store's schema, beside its table)::

    CREATE TABLE <schema>.<table>_events (
        seq    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        server text        NOT NULL,   -- the bus's server_name
        event  text        NOT NULL,   -- the event's wire form (JSON)
        at     timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX <table>_events_server ON <schema>.<table>_events (server, seq);
    CREATE TABLE <schema>.<table>_events_trim (server text PRIMARY KEY, through bigint NOT NULL);

A publisher inserts a batch in a short transaction of its own (never inside a data
transaction) and sends a ``NOTIFY`` with no payload, so an event of any size the bus
accepts crosses and the notification queue never holds data. Publishers of one server
name take one advisory lock per transaction, so their sequence numbers commit in order
and a reader that saw number N has already seen every smaller one of that server.

Each listening process holds one dedicated connection with ``LISTEN`` on it and reads
every row after the last sequence number it delivered: on every wake-up, and every
``poll_interval`` seconds (a lost ``NOTIFY`` costs latency, never an event). After a
dropped connection or a server restart it reads on from the same number, so nothing
committed is missed. Rows older than ``retain_seconds`` or beyond the newest
``retain_events`` of a server are pruned; the highest pruned number is kept in the trim
table, and a listener that was away longer than that delivers the three list-changed
events instead (counted in ``BusStats.missed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastmcp_sessions.buses import _options
from fastmcp_sessions.buses.base import DEFAULT_MAX_BUFFERED_EVENTS, DEFAULT_MAX_OUTBOX, QueuedBus
from fastmcp_sessions.errors import StoreOptionError

if TYPE_CHECKING:
    from asyncpg import Pool

    from fastmcp_sessions.stores.postgresql import PostgreSQLStore

__all__ = ["DEFAULT_EVENTS_TABLE", "PostgreSQLBus"]

DEFAULT_EVENTS_TABLE = "fastmcp_sessions_events"
"""The events table when neither ``table`` nor a store is given."""

_READ_BATCH = 500  # rows per read; a listener that fell behind reads on until it is current
_MAX_SERVER_NAME = 1000  # the (server, seq) index entry must stay well under PostgreSQL's ~2.7 KB


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _suffixed(table: str, suffix: str) -> str:
    """``<table>_<suffix>`` within PostgreSQL's 63-byte identifiers (a hash keeps long names apart)."""
    name = f"{table}_{suffix}"
    if len(name.encode()) <= 63:
        return name
    tag = hashlib.sha256(table.encode()).hexdigest()[:8]
    return f"{table[: 63 - len(suffix) - 10]}_{tag}_{suffix}"


def _lock_key(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


class PostgreSQLBus(QueuedBus):
    """A bus through PostgreSQL, shared by every replica on one database; loses nothing committed.

    Args:
        url: ``postgresql://`` URL; the bus opens a small pool of its own (closed by ``close()``).
        pool: An ``asyncpg`` pool to use instead (for instance ``PostgreSQLStore.pool``); the
            bus holds one of its connections for listening and borrows one to publish.
        server_name: Scopes the events (rows of other server names are never read).
        schema, table: Where the events table lives (default ``public.fastmcp_sessions_events``).
        poll_interval: Seconds between reads when no ``NOTIFY`` arrives (the upper bound of
            the latency a lost notification adds).
        retain_seconds, retain_events: Keep at most this old / this many events per server;
            a listener away longer than that gets the list-changed events instead.
        prune_interval: Seconds between two prunes by one publisher; 0 prunes after every write.
        max_buffered_events, max_outbox, timeout: See ``Bus`` and ``QueuedBus``.
    """

    messaging_system = "postgresql"
    replays = True

    def __init__(
        self,
        url: str | None = None,
        *,
        pool: Pool | None = None,
        server_name: str,
        schema: str = "public",
        table: str = DEFAULT_EVENTS_TABLE,
        poll_interval: float = 1.0,
        retain_seconds: float = 3600.0,
        retain_events: int = 100_000,
        prune_interval: float = 30.0,
        max_buffered_events: int = DEFAULT_MAX_BUFFERED_EVENTS,
        max_outbox: int = DEFAULT_MAX_OUTBOX,
        timeout: float = 5.0,
        _pool_source: Callable[[], Awaitable[Pool]] | None = None,
    ) -> None:
        super().__init__(
            server_name=server_name,
            max_buffered_events=max_buffered_events,
            max_outbox=max_outbox,
            timeout=timeout,
        )
        if sum(x is not None for x in (url, pool, _pool_source)) != 1:
            raise StoreOptionError("PostgreSQLBus needs exactly one of a postgresql:// URL or pool=")
        if url is not None and not url.startswith(("postgresql://", "postgres://")):
            raise StoreOptionError("PostgreSQLBus needs a postgresql:// or postgres:// URL")
        if len(server_name) > _MAX_SERVER_NAME:
            raise StoreOptionError(
                f"server_name must be at most {_MAX_SERVER_NAME} characters for PostgreSQLBus"
            )
        for what, name in (("schema", schema), ("table", table)):
            if not isinstance(name, str) or not name or len(name.encode()) > 63:
                raise StoreOptionError(f"{what} must be a PostgreSQL identifier of 1-63 bytes, got {name!r}")
        self.schema, self.table = schema, table
        self.poll_interval = _options.seconds("poll_interval", poll_interval)
        self.retain_seconds = _options.seconds("retain_seconds", retain_seconds)
        self.retain_events = _options.count("retain_events", retain_events)
        self.prune_interval = _options.seconds("prune_interval", prune_interval, zero_ok=True)
        self._url = url
        self._pool = pool
        self._own_pool: Pool | None = None
        self._pool_source = _pool_source
        self._tables_ready = False
        self._last_seq: int | None = None
        self._last_prune = -math.inf
        where = f"{schema}.{table}"
        self._events = f"{_quote(schema)}.{_quote(table)}"
        self._trims = f"{_quote(schema)}.{_quote(_suffixed(table, 'trim'))}"
        self._index = _quote(_suffixed(table, "server"))
        self.channel = "fastmcp_" + hashlib.sha256(f"{where}/{server_name}".encode()).hexdigest()[:32]
        self._publish_lock = _lock_key(f"fastmcp-sessions-bus:{where}/{server_name}")
        self._setup_lock = _lock_key(f"fastmcp-sessions-bus:{where}")

    @classmethod
    def for_store(cls, store: PostgreSQLStore, *, server_name: str, **options: Any) -> PostgreSQLBus:
        """The bus beside ``store``: its pool, its schema, a table named after its table."""

        async def pool_of_store() -> Pool:
            if store.pool is None:
                await store.schema_version()  # opens the store's pool
            if store.pool is None:
                raise ConnectionError(f"{store!r} has no connection pool (closed?)")
            return store.pool

        options.setdefault("schema", store.schema)
        options.setdefault("table", _suffixed(store.table, "events"))
        return cls(server_name=server_name, _pool_source=pool_of_store, **options)

    def __repr__(self) -> str:
        return f"PostgreSQLBus(table={self.schema}.{self.table}, server_name={self.server_name!r})"

    def _describe(self) -> str:
        return f"PostgreSQLBus:{self.server_name}"

    # -- backend ----------------------------------------------------------------------------

    async def _db(self) -> Pool:
        pool = self._pool
        if pool is None:
            if self._pool_source is not None:
                pool = await self._pool_source()
            else:
                pool = self._own_pool = self._pool = await self._open_pool()
        if not self._tables_ready:
            await self._create_tables(pool)
            self._tables_ready = True
        return pool

    async def _open_pool(self) -> Pool:
        import asyncpg

        assert self._url is not None
        pool: Pool = await asyncpg.create_pool(
            self._url,
            min_size=1,
            max_size=3,  # one listening, one publishing, one spare
            timeout=self.timeout,
            command_timeout=self.timeout,
            server_settings={"application_name": "fastmcp-sessions-bus"},
        )
        return pool

    async def _create_tables(self, pool: Pool) -> None:
        async with pool.acquire(timeout=self.timeout) as conn, conn.transaction():
            # One process at a time: CREATE ... IF NOT EXISTS races with itself.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._setup_lock)
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(self.schema)}")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._events} (seq bigint GENERATED ALWAYS AS IDENTITY "
                "PRIMARY KEY, server text NOT NULL, event text NOT NULL, "
                "at timestamptz NOT NULL DEFAULT now())"
            )
            await conn.execute(f"CREATE INDEX IF NOT EXISTS {self._index} ON {self._events} (server, seq)")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._trims} (server text PRIMARY KEY, through bigint NOT NULL)"
            )

    async def _send_batch(self, payloads: list[bytes]) -> None:
        try:
            pool = await self._db()
            async with pool.acquire(timeout=self.timeout) as conn:
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", self._publish_lock)
                    await conn.execute(
                        f"WITH ins AS (INSERT INTO {self._events} (server, event) SELECT $1, u.e "
                        "FROM unnest($2::text[]) WITH ORDINALITY AS u(e, i) ORDER BY u.i RETURNING 1) "
                        "SELECT pg_notify($3, '')",
                        self.server_name,
                        [p.decode("utf-8") for p in payloads],
                        self.channel,
                    )
                if time.monotonic() - self._last_prune >= self.prune_interval:
                    self._last_prune = time.monotonic()
                    await self._prune(conn)
        except Exception:
            self._tables_ready = False  # a restored or recreated database: check the tables again
            raise

    async def _prune(self, conn: Any) -> None:
        # One statement: the rows go and the trim mark moves together.
        await conn.execute(
            f"WITH doomed AS (DELETE FROM {self._events} WHERE server = $1 AND (at < now() - "
            "make_interval(secs => $2) OR seq <= coalesce((SELECT seq FROM "
            f"{self._events} WHERE server = $1 ORDER BY seq DESC OFFSET $3 LIMIT 1), 0)) RETURNING seq) "
            f"INSERT INTO {self._trims} AS t (server, through) SELECT $1, max(seq) FROM doomed "
            "HAVING max(seq) IS NOT NULL ON CONFLICT (server) DO UPDATE SET through = "
            "greatest(t.through, EXCLUDED.through)",
            self.server_name,
            self.retain_seconds,
            self.retain_events,
        )

    async def _listen(self, on_message: Callable[[bytes], None], on_ready: Callable[[], None]) -> None:
        try:
            pool = await self._db()
        except Exception:
            self._tables_ready = False
            raise
        conn = await pool.acquire(timeout=self.timeout)
        wake = asyncio.Event()

        def notified(*_: object) -> None:
            wake.set()

        try:
            await conn.add_listener(self.channel, notified)
            conn.add_termination_listener(notified)
            # LISTEN first, then read: a row committed in between is read now or woken for.
            if self._last_seq is None:
                self._last_seq = int(
                    await conn.fetchval(
                        f"SELECT greatest((SELECT max(seq) FROM {self._events} WHERE server = $1), "
                        f"(SELECT through FROM {self._trims} WHERE server = $1), 0)",
                        self.server_name,
                        timeout=self.timeout,
                    )
                )
            on_ready()
            while True:
                await self._read_after(conn, on_message)
                # The timer also proves the connection alive: its read fails on a dead one.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self.poll_interval)
                wake.clear()
                if conn.is_closed():
                    raise ConnectionError("the listening connection closed")
        finally:
            with contextlib.suppress(Exception):
                conn.remove_termination_listener(notified)
                if not conn.is_closed():
                    await conn.remove_listener(self.channel, notified)
            with contextlib.suppress(Exception):
                await pool.release(conn, timeout=self.timeout)

    async def _read_after(self, conn: Any, on_message: Callable[[bytes], None]) -> None:
        while True:
            assert self._last_seq is not None
            # The trim mark first (event NULL): rows after our number were pruned unread.
            rows = await conn.fetch(
                f"SELECT seq, event FROM (SELECT seq, event FROM {self._events} WHERE server = $1 "
                f"AND seq > $2 UNION ALL SELECT through, NULL FROM {self._trims} WHERE server = $1 "
                "AND through > $2) AS r ORDER BY event IS NOT NULL, seq LIMIT $3",
                self.server_name,
                self._last_seq,
                _READ_BATCH,
                timeout=self.timeout,
            )
            for seq, event in rows:
                if event is None:
                    self._missed_events(f"events up to #{seq} were pruned before this process read them")
                else:
                    on_message(event.encode("utf-8"))
                self._last_seq = max(self._last_seq, int(seq))
            if len(rows) < _READ_BATCH:
                return

    async def _close_backend(self) -> None:
        pool, self._own_pool = self._own_pool, None
        if pool is not None:
            self._pool = None
            try:
                await asyncio.wait_for(pool.close(), self.timeout)
            except Exception:
                pool.terminate()  # the server is gone: drop the connections without goodbyes
