"""The Unix-socket bus's journal: every published event, in a small SQLite file of its own.

Tables (created on first use)::

    CREATE TABLE events (
        seq    INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, even after a prune
        server TEXT NOT NULL,                      -- the bus's server_name
        event  TEXT NOT NULL,                      -- the event's wire form (JSON)
        at     REAL NOT NULL                       -- seconds since the epoch
    );
    CREATE INDEX events_server ON events (server, seq);
    CREATE TABLE trims (server TEXT PRIMARY KEY, through INTEGER NOT NULL);

SQLite has one writer at a time, so sequence numbers commit in order: a reader that saw
number N has already seen every smaller one. ``AUTOINCREMENT`` keeps numbers growing after
every row was pruned (a plain rowid would hand out the pruned numbers again, and a listener
past them would skip the new events). The file is created 0600 (SQLite gives its ``-wal``
and ``-shm`` files the same mode), in WAL mode with a busy timeout, and is never the store's
own database: it holds no store data and needs no key. Every statement runs on one worker
thread per journal, never on the event loop.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from fastmcp_sessions.encryption import make_private_dir
from fastmcp_sessions.errors import StoreConnectionError, StoreSetupError
from fastmcp_sessions.stores._thread import WorkerThread

__all__ = ["Journal", "journal_beside"]

T = TypeVar("T")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, server TEXT NOT NULL, "
    "event TEXT NOT NULL, at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS events_server ON events (server, seq)",
    "CREATE TABLE IF NOT EXISTS trims (server TEXT PRIMARY KEY, through INTEGER NOT NULL)",
)

# The trim mark first (event NULL): rows after our number were pruned unread.
_READ = (
    "SELECT seq, event FROM (SELECT seq, event FROM events WHERE server = ?1 AND seq > ?2 "
    "UNION ALL SELECT through, NULL FROM trims WHERE server = ?1 AND through > ?2) "
    "ORDER BY event IS NOT NULL, seq LIMIT ?3"
)
_CURRENT = (
    "SELECT max(coalesce((SELECT max(seq) FROM events WHERE server = ?1), 0), "
    "coalesce((SELECT through FROM trims WHERE server = ?1), 0))"
)
_DOOMED = (
    "SELECT max(seq) FROM events WHERE server = ?1 AND (at < ?2 OR seq <= coalesce((SELECT seq FROM "
    "events WHERE server = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?3), 0))"
)


def journal_beside(store_file: str | os.PathLike[str]) -> Path:
    """The journal of the disk store at ``store_file``: ``<store file>.bus.sqlite3``, same directory."""
    path = Path(store_file)
    return path.with_name(path.name + ".bus.sqlite3")


class Journal:
    """One process's handle on a journal file (opened on first use, on a worker thread).

    Args:
        path: The journal file (created 0600 if missing; its directory must exist or be creatable).
        timeout: Seconds a statement waits for another process's write lock (SQLite's busy timeout).
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float) -> None:
        self.path = Path(path)
        self.timeout = float(timeout)
        self._conn: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None
        self._worker: WorkerThread | None = None

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    async def append(self, server: str, events: list[str]) -> int:
        """Commit ``events`` (in order) for ``server``; the sequence number of the last one."""
        return await self._run(self._append, server, events)

    async def current(self, server: str) -> int:
        """The highest sequence number of ``server`` written or pruned so far (0 for none)."""
        return await self._run(self._current, server)

    async def read_after(self, server: str, seq: int, limit: int) -> list[tuple[int, str | None]]:
        """Up to ``limit`` ``(seq, event)`` of ``server`` after ``seq``, oldest first; a
        ``(through, None)`` row first when events after ``seq`` up to ``through`` were pruned."""
        return await self._run(self._read_after, server, seq, limit)

    async def prune(self, server: str, *, older_than: float, keep: int) -> None:
        """Delete ``server``'s events older than ``older_than`` seconds or beyond the newest
        ``keep``, and move its trim mark past them (one transaction)."""
        await self._run(self._prune, server, older_than, keep)

    async def close(self) -> None:
        """Close the connection and stop the worker thread."""
        worker, self._worker = self._worker, None
        if worker is not None:
            with contextlib.suppress(Exception):
                await worker.run(self._close_conn)
            worker.stop()

    # -- internals (on the worker thread) -------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._worker is None:
            self._worker = WorkerThread(f"fastmcp-sessions-journal:{self.path.name}")
        try:
            return await self._worker.run(fn, *args)
        except sqlite3.Error as error:
            self._worker.submit(self._close_conn)  # opened again, and checked, on the next call
            raise StoreConnectionError(
                f"the change-notification journal {self.path} could not be used ({type(error).__name__}: "
                f"{error}); make sure its directory is writable by this user and the disk is not full "
                "(the bus keeps retrying)"
            ) from None

    def _db(self) -> sqlite3.Connection:
        if self._conn is not None:
            # A journal removed or replaced under us (by hand, or a restored backup): writing on
            # into the old file would reach no listener, so open the one at the path again.
            try:
                info = os.stat(self.path)
                same = (info.st_dev, info.st_ino) == self._identity
            except FileNotFoundError:
                same = False
            if not same:
                self._close_conn()
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        path = self.path
        try:
            make_private_dir(path.parent)
            # Created by us so it is 0600 from its first byte (O_NOFOLLOW: never through a link).
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600))
            info = os.lstat(path)
        except OSError as error:
            raise StoreSetupError(
                f"cannot open the change-notification journal {path}: {error.strerror}; make its "
                "directory writable by this user (it sits beside the store's database)"
            ) from None
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
            raise StoreSetupError(
                f"{path} is not a file owned by this user; the change-notification bus will not use it "
                "(someone else could read or inject events): remove it"
            )
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.chmod(path, 0o600)
        self._identity = (info.st_dev, info.st_ino)
        conn = sqlite3.connect(
            f"file:{quote(str(path))}?mode=rw",
            uri=True,
            timeout=self.timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            deadline = time.monotonic() + self.timeout
            while True:
                # Switching to WAL needs an exclusive lock SQLite does not always wait for.
                try:
                    conn.execute("PRAGMA journal_mode = WAL")
                    break
                except sqlite3.OperationalError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)
            # An event lost to a power cut costs a refetch, not data: NORMAL is enough in WAL.
            conn.execute("PRAGMA synchronous = NORMAL")
            for statement in _SCHEMA:
                conn.execute(statement)
        except BaseException:
            conn.close()
            raise
        return conn

    def _close_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _append(self, server: str, events: list[str]) -> int:
        conn = self._db()
        now = time.time()
        with _transaction(conn):
            conn.executemany(
                "INSERT INTO events (server, event, at) VALUES (?, ?, ?)", [(server, e, now) for e in events]
            )
            last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
        return int(last)

    def _current(self, server: str) -> int:
        return int(self._db().execute(_CURRENT, (server,)).fetchone()[0])

    def _read_after(self, server: str, seq: int, limit: int) -> list[tuple[int, str | None]]:
        rows = self._db().execute(_READ, (server, seq, limit)).fetchall()
        return [(int(n), e) for n, e in rows]

    def _prune(self, server: str, older_than: float, keep: int) -> None:
        conn = self._db()
        with _transaction(conn):
            through = conn.execute(_DOOMED, (server, time.time() - older_than, keep)).fetchone()[0]
            if through is None:
                return
            conn.execute("DELETE FROM events WHERE server = ? AND seq <= ?", (server, through))
            conn.execute(
                "INSERT INTO trims (server, through) VALUES (?, ?) ON CONFLICT (server) "
                "DO UPDATE SET through = max(through, excluded.through)",
                (server, through),
            )


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
