"""Events beside the disk store: a SQLite file of their own, on a worker thread.

The file sits next to the store's (``store.sqlite3`` -> ``store.events.sqlite3``),
created 0600 in WAL mode, so processes sharing the store share its events and an event
append never waits for the store's own writes. Every statement runs on the event store's
worker thread, never on the event loop. ``store_event`` is one ``INSERT``; replay one
``SELECT`` on the ``(stream, seq)`` index; trimming and expiry ride along with inserts,
batched as in the PostgreSQL event store. Under the encrypted disk store events are
encrypted with its keyring.
"""

from __future__ import annotations

import os
import sqlite3
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Unpack

from fastmcp_sessions.encryption import Keyring
from fastmcp_sessions.events.base import EventStoreOptions, NativeEventStore, Row, raw, unreachable
from fastmcp_sessions.stores._thread import WorkerThread

__all__ = ["DiskEventStore", "events_path"]

_PURGE_EVERY = 512
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL, "
    "tag TEXT NOT NULL, data BLOB NOT NULL, expires_at REAL);"
    "CREATE INDEX IF NOT EXISTS events_stream ON events (stream, seq);"
    "CREATE INDEX IF NOT EXISTS events_expiry ON events (expires_at) WHERE expires_at IS NOT NULL;"
)
_INSERT = "INSERT INTO events (stream, tag, data, expires_at) VALUES (?, ?, ?, ?)"
_SELECT = (
    "SELECT seq, tag, data FROM events WHERE stream = ? AND seq >= ? "
    "AND (expires_at IS NULL OR expires_at > ?) ORDER BY seq"
)
_TRIM = (
    "DELETE FROM events WHERE stream = ?1 AND seq <= "
    "(SELECT seq FROM events WHERE stream = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)"
)
_PURGE = "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE expires_at < ? LIMIT 500)"


def events_path(store_path: Path) -> Path:
    """The events file beside the store file ``store_path``."""
    return store_path.with_name(f"{store_path.stem}.events{store_path.suffix or '.sqlite3'}")


class DiskEventStore(NativeEventStore):
    """Events of every process sharing one disk store.

    Args:
        path: The events file (created 0600 if missing).
        keyring: A keyring, or a coroutine function returning the one to use (the disk
            store knows its keyring once open); ``None``: plaintext.
        busy_timeout: Seconds a write waits for another process's write.
        namespace, max_events_per_stream, ttl: See ``NativeEventStore``.
    """

    backend = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        keyring: Keyring | Callable[[], Awaitable[Keyring | None]] | None = None,
        busy_timeout: float = 30.0,
        **options: Unpack[EventStoreOptions],
    ) -> None:
        super().__init__(keyring=keyring if isinstance(keyring, Keyring) else None, **options)
        self.path = Path(path)
        self._keyring_source = None if isinstance(keyring, Keyring) else keyring
        self._busy_timeout = float(busy_timeout)
        self._conn: sqlite3.Connection | None = None
        self._worker: WorkerThread | None = None

    async def _prepare(self) -> None:
        if self._keyring_source is not None:
            self.keyring = await self._keyring_source()
        self._worker = WorkerThread(name=f"fastmcp-sessions-events:{self.path.name}")
        # An event store dropped without close() must not leave its thread waiting forever.
        weakref.finalize(self, self._worker.stop)
        try:
            await self._worker.run(self._open)
        except (sqlite3.Error, OSError) as exc:
            self._worker.stop()
            self._worker = None
            raise unreachable(self.backend, exc, f"check that {self.path} is writable") from None
        await super()._prepare()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        self._conn = conn

    def _append_now(self, key: str, tag: str, data: bytes) -> int:
        conn = self._conn
        assert conn is not None
        now = time.time()
        expires = None if self.ttl is None else now + self.ttl
        seq = conn.execute(_INSERT, (key, tag, data, expires)).lastrowid
        assert seq is not None
        if seq % self._trim_every == 0:
            conn.execute(_TRIM, (key, self.max_events_per_stream))
        if seq % _PURGE_EVERY == 0 and self.ttl is not None:
            conn.execute(_PURGE, (now,))
        return seq

    def _read_now(self, key: str, seq: int) -> list[Row]:
        conn = self._conn
        assert conn is not None
        return [Row(str(s), t, raw(d)) for s, t, d in conn.execute(_SELECT, (key, seq, time.time()))]

    async def _append(self, key: str, tag: str, data: bytes) -> str:
        assert self._worker is not None
        try:
            return str(await self._worker.run(self._append_now, key, tag, data))
        except sqlite3.Error as exc:
            raise unreachable(
                self.backend, exc, f"check that {self.path} is writable and not locked"
            ) from None

    async def _read_from(self, key: str, seq: str) -> Sequence[Row]:
        assert self._worker is not None
        try:
            return await self._worker.run(self._read_now, key, int(seq))
        except sqlite3.Error as exc:
            raise unreachable(self.backend, exc, f"check that {self.path} is readable") from None

    async def close(self) -> None:
        """Close the events file and end the worker thread."""
        worker, self._worker = self._worker, None
        if worker is not None:
            conn, self._conn = self._conn, None
            if conn is not None:
                await worker.run(conn.close)
            worker.stop()
        self._prepared = False
