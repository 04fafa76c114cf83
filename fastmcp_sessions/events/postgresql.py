"""Events in PostgreSQL: one table beside the store's, ordered by one identity sequence.

``store_event`` is one ``INSERT … RETURNING seq``; replay one ``SELECT … WHERE stream = $1
AND seq >= $2 ORDER BY seq`` on the ``(stream, seq)`` index. Trimming and the removal of
expired rows ride along with inserts, batched: an insert whose ``seq`` falls on a multiple
of the trim interval trims its stream to the newest ``max_events_per_stream`` events, one
on a multiple of 512 deletes up to 500 expired rows, so storage is reclaimed with no
sweeper while most inserts pay nothing for it. Reads skip expired rows themselves.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any, Unpack

from asyncpg.exceptions import UndefinedTableError

from fastmcp_sessions.encryption import Keyring
from fastmcp_sessions.events.base import EventStoreOptions, NativeEventStore, Row, raw, unreachable

__all__ = ["PostgreSQLEventStore", "events_table"]

_PURGE_EVERY = 512
_PURGE_BATCH = 500


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def events_table(table: str) -> str:
    """The events table's name beside ``table``, within PostgreSQL's 63-byte limit."""
    name = f"{table}_events"
    if len(name.encode()) <= 63:
        return name
    return f"{table[:40]}_{hashlib.sha256(table.encode()).hexdigest()[:12]}_events"


class PostgreSQLEventStore(NativeEventStore):
    """Events of every replica sharing one PostgreSQL database.

    Args:
        pool: An asyncpg pool, or a zero-argument coroutine function returning one (the
            PostgreSQL store's pool is made on first use).
        schema: Schema of the events table (created if missing).
        table: Name of the events table.
        errors: Driver exceptions to report as ``StoreConnectionError``.
        keyring, namespace, max_events_per_stream, ttl: See ``NativeEventStore``.
    """

    backend = "postgresql"

    def __init__(
        self,
        pool: Any,
        *,
        schema: str = "public",
        table: str = "fastmcp_sessions_events",
        errors: tuple[type[BaseException], ...] = (),
        keyring: Keyring | None = None,
        **options: Unpack[EventStoreOptions],
    ) -> None:
        super().__init__(keyring=keyring, **options)
        self._pool_source = pool
        self._pool: Any = None if callable(pool) else pool
        self._errors: tuple[type[BaseException], ...] = (*errors, OSError, asyncio.TimeoutError)
        self._ready = False
        self._setup_lock = asyncio.Lock()
        self.schema, self.table = schema, table
        t = f"{_quote(schema)}.{_quote(table)}"
        self.qualified_table = t
        expires = "NULL" if self.ttl is None else f"now() + make_interval(secs => {self.ttl!r})"
        self._insert = (
            f"INSERT INTO {t} (stream, tag, data, expires_at) VALUES ($1, $2, $3, {expires}) RETURNING seq"
        )
        self._select = (
            f"SELECT seq, tag, data FROM {t} WHERE stream = $1 AND seq >= $2 "
            "AND (expires_at IS NULL OR expires_at > now()) ORDER BY seq"
        )
        self._trim = (
            f"DELETE FROM {t} WHERE stream = $1 AND seq <= "
            f"(SELECT seq FROM {t} WHERE stream = $1 ORDER BY seq DESC OFFSET $2 LIMIT 1)"
        )
        self._purge = (
            f"DELETE FROM {t} WHERE seq IN "
            f"(SELECT seq FROM {t} WHERE expires_at < now() LIMIT {_PURGE_BATCH})"
        )
        index = _quote(f"{table[:50]}_stream")
        expiry = _quote(f"{table[:50]}_expiry")
        self._create = (
            f"CREATE SCHEMA IF NOT EXISTS {_quote(schema)}; "
            f"CREATE TABLE IF NOT EXISTS {t} (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            "stream text NOT NULL, tag text NOT NULL, data bytea NOT NULL, expires_at timestamptz); "
            f"CREATE INDEX IF NOT EXISTS {index} ON {t} (stream, seq); "
            f"CREATE INDEX IF NOT EXISTS {expiry} ON {t} (expires_at) WHERE expires_at IS NOT NULL"
        )

    async def _db(self) -> Any:
        if self._ready:
            return self._pool
        async with self._setup_lock:
            if not self._ready:
                try:
                    if self._pool is None:
                        self._pool = await self._pool_source()
                    async with self._pool.acquire() as conn, conn.transaction():
                        # Replicas starting together would race on the catalog otherwise.
                        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self.qualified_table)
                        await conn.execute(self._create)
                except self._errors as exc:
                    raise unreachable(self.backend, exc) from None
                self._ready = True
        return self._pool

    def _valid_seq(self, seq: str) -> bool:
        return seq.isdigit() and len(seq) <= 18

    async def _append(self, key: str, tag: str, data: bytes) -> str:
        return str(await self._run(self._append_on, key, tag, data))

    async def _append_on(self, pool: Any, key: str, tag: str, data: bytes) -> int:
        seq: int = await pool.fetchval(self._insert, key, tag, data)
        if seq % self._trim_every == 0:
            await pool.execute(self._trim, key, self.max_events_per_stream)
        if seq % _PURGE_EVERY == 0 and self.ttl is not None:
            await pool.execute(self._purge)
        return seq

    async def _run(self, fn: Any, *args: Any, again: bool = True) -> Any:
        pool = await self._db()
        try:
            return await fn(pool, *args)
        except UndefinedTableError as exc:
            # The table was dropped under us (or the server came back empty): create it again, once.
            self._ready = False
            if not again:
                raise unreachable(self.backend, exc) from None
        except self._errors as exc:
            raise unreachable(self.backend, exc) from None
        return await self._run(fn, *args, again=False)

    async def _read_from(self, key: str, seq: str) -> Sequence[Row]:
        records = await self._run(lambda pool: pool.fetch(self._select, key, int(seq)))
        return [Row(str(r[0]), r[1], raw(r[2])) for r in records]
