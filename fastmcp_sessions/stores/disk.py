"""On-disk store: one SQLite file, WAL mode, encrypted by default.

Layout (see docs/disk.md)::

    entries(collection TEXT, key TEXT, value BLOB, expires_at REAL, version INTEGER,
            PRIMARY KEY (collection, key)) WITHOUT ROWID
    entries_expiry  index on expires_at (only rows that expire)
    meta(name TEXT PRIMARY KEY, value TEXT)     format, codec, key check

Values are JSON, encrypted with Fernet unless ``encryption=False``; nothing is ever
pickled. Every SQLite call runs on one worker thread that owns the connection, so the
event loop never blocks. Each operation is a single statement or an explicit
``BEGIN IMMEDIATE`` transaction, so several processes can share the file: writes are
serialised by SQLite's lock and the conditional statements make the atomic operations
atomic across processes too. Expired rows are filtered on read and deleted by a
periodic purge (and ``cull()``), which also returns their pages to the file system.
"""

from __future__ import annotations

import os
import random
import secrets
import sqlite3
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import unquote, urlsplit

from fastmcp_sessions.encryption import (
    FernetCodec,
    JsonCodec,
    Keyring,
    ValueCodec,
    load_keyring,
    make_private_dir,
)
from fastmcp_sessions.errors import DecryptionError, StoreConnectionError, StoreSetupError
from fastmcp_sessions.stores._thread import WorkerThread
from fastmcp_sessions.stores._url import parse_bool, take_query_options
from fastmcp_sessions.stores.base import RotationProgress, Store, Value, Versioned

T = TypeVar("T")

DB_FILE_NAME = "store.sqlite3"
_SCHEMA_VERSION = "1"
_KEY_CHECK = b"fastmcp-sessions key check"
_LIVE = "(expires_at IS NULL OR expires_at > ?)"
_CHUNK = 500  # keys per IN (...) list, well under SQLite's bound-parameter limit
_PURGE_EVERY = 30.0  # seconds between automatic purges of expired rows
_URL_OPTIONS: dict[str, Callable[[str], Any]] = {
    "encryption": parse_bool,
    "app_name": str,
    "key_file": str,
    "busy_timeout": float,
    "synchronous": str.upper,
    "default_collection": str,
    "offload": parse_bool,
}


def default_path(app_name: str) -> Path:
    """The database file used when no path is given: under ``platformdirs.user_data_dir(app_name)``."""
    import platformdirs

    return Path(platformdirs.user_data_dir(app_name)) / "fastmcp-sessions" / DB_FILE_NAME


def resolve_path(path: str | os.PathLike[str] | None, app_name: str) -> Path:
    """A database file path from ``path``: a directory (existing, or ending in a separator)
    gets ``store.sqlite3`` inside it; anything else is the file itself."""
    if path is None:
        return default_path(app_name)
    text = os.fspath(path)
    p = Path(text).expanduser()
    if p.is_dir() or text.endswith(("/", os.sep)):
        return p / DB_FILE_NAME
    return p


def _new_version() -> int:
    return secrets.randbits(63)


class DiskStore(Store):
    """A SQLite-backed store in one file, shared safely by several processes.

    Args:
        path: Database file, or a directory to hold ``store.sqlite3``. Default:
            ``platformdirs.user_data_dir(app_name)/fastmcp-sessions/store.sqlite3``.
        app_name: Names the default data and key-file directories.
        encryption: Encrypt values with Fernet (default). ``False`` stores plain JSON.
        keys: Fernet keys (newest first) or a ``Keyring``; default: env
            ``FASTMCP_SESSIONS_KEYS``, then a key file created on first use.
        key_file: Where to keep the generated key instead of the platform config dir.
        busy_timeout: Seconds to wait for another process's write lock.
        synchronous: ``"NORMAL"`` (default; durable across application crashes) or
            ``"FULL"`` (also across power loss, slower).
        offload: Run SQLite on the store's worker thread (default), so the event loop
            never waits on disk or on another process's lock. ``False`` runs each call
            inline on the loop instead: it saves the two thread wake-ups per call (tens of
            microseconds on an idle virtual machine), which suits a single-client local
            server, but a write waiting for another process's lock then stalls the loop
            for up to ``busy_timeout``.
    """

    url_schemes = ("disk",)
    db_system_name = "sqlite"
    handles_encryption = True
    driver_errors = (sqlite3.Error,)

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        app_name: str = "fastmcp",
        encryption: bool = True,
        keys: Keyring | Sequence[str | bytes] | str | None = None,
        key_file: str | os.PathLike[str] | None = None,
        busy_timeout: float = 30.0,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        default_collection: str | None = None,
        offload: bool = True,
    ) -> None:
        super().__init__(default_collection=default_collection)
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError("synchronous must be 'NORMAL' or 'FULL'")
        self.path = resolve_path(path, app_name)
        self.app_name = app_name
        self.encryption = bool(encryption)
        self._keys = keys
        self._key_file = key_file
        self._busy_timeout = float(busy_timeout)
        self._synchronous = synchronous
        self._codec: ValueCodec = JsonCodec()
        self.keyring: Keyring | None = None
        self._conn: sqlite3.Connection | None = None
        self._setup_error: BaseException | None = None
        self._key_error: str | None = None
        self._next_purge = 0.0
        self.offload = bool(offload)
        self._worker: WorkerThread | None = None
        self._opened = False
        if self.offload:
            self._worker = WorkerThread(name=f"fastmcp-sessions-disk:{self.path.name}")
            # A store dropped without close() must not leave its thread waiting forever.
            weakref.finalize(self, self._worker.stop)
            # Queued first, so every later job runs after it; its error is re-raised by each job.
            self._worker.submit(self._open_database)
            self._opened = True

    @classmethod
    def from_url(cls, url: str, **options: Any) -> DiskStore:
        """``disk://`` (platform default location) or ``disk:///abs/path``, with query options
        ``encryption``, ``app_name``, ``key_file``, ``busy_timeout``, ``synchronous``,
        ``default_collection``, ``offload``."""
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise ValueError(
                f"disk URLs take an absolute path: disk:///path/to/store.sqlite3 (got host {parts.netloc!r})"
            )
        take_query_options(url, _URL_OPTIONS, options)
        path = unquote(parts.path) or None
        return cls(path, **options)

    def __repr__(self) -> str:
        mode = "encrypted" if self.encryption else "plaintext"
        return f"DiskStore(path={str(self.path)!r}, {mode})"

    # -- opening -----------------------------------------------------------------------

    def _open_database(self) -> None:
        try:
            self._conn = self._connect()
        except BaseException as exc:
            self._setup_error = exc

    def _connect(self) -> sqlite3.Connection:
        path = self.path
        try:
            make_private_dir(path.parent)
            # Create the file ourselves so it is 0600 from its first byte; SQLite gives the
            # -wal and -shm files the database file's mode.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        except OSError as exc:
            raise StoreSetupError(
                f"cannot create the database file {path}: {exc.strerror}; choose a writable path "
                "(disk:///path/to/store.sqlite3) or fix the directory's permissions"
            ) from exc
        if self.encryption:
            self.keyring = load_keyring(self._keys, app_name=self.app_name, key_file=self._key_file)
            self._codec = FernetCodec(self.keyring)
        deadline = time.monotonic() + self._busy_timeout
        while True:
            conn = sqlite3.connect(
                path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=True
            )
            try:
                self._prepare(conn)
                return conn
            except sqlite3.OperationalError as exc:
                conn.close()
                # Switching a new file to WAL needs an exclusive lock, and SQLite does not always
                # wait for it (deadlock avoidance): processes opening one new file at once retry.
                if _is_busy(exc) and time.monotonic() < deadline:
                    time.sleep(random.uniform(0.005, 0.05))
                    continue
                raise StoreSetupError(
                    f"cannot open {path}: {exc}; is another process holding it locked?"
                ) from exc
            except sqlite3.DatabaseError as exc:
                conn.close()
                raise StoreSetupError(
                    f"cannot open {path} as a fastmcp-sessions database ({exc}); "
                    "is it another program's file?"
                ) from exc

    def _prepare(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            # auto_vacuum only takes effect on a database without tables, so set it first.
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        self._init_schema(conn)

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        with _transaction(conn):
            conn.execute(
                "CREATE TABLE IF NOT EXISTS entries (collection TEXT NOT NULL, key TEXT NOT NULL, "
                "value BLOB NOT NULL, expires_at REAL, version INTEGER NOT NULL, "
                "PRIMARY KEY (collection, key)) WITHOUT ROWID"
            )
            conn.execute(
                "CREATE INDEX IF NOT EXISTS entries_expiry ON entries (expires_at) "
                "WHERE expires_at IS NOT NULL"
            )
            conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            codec = "fernet" if self.encryption else "json"
            key_check = self.keyring.encrypt(_KEY_CHECK).decode("ascii") if self.keyring else ""
            conn.executemany(
                "INSERT OR IGNORE INTO meta (name, value) VALUES (?, ?)",
                [("format", _SCHEMA_VERSION), ("codec", codec), ("key_check", key_check)],
            )
            meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
        if meta["codec"] != codec:
            if meta["codec"] == "fernet":
                advice = "it holds encrypted data: open it with encryption on (drop encryption=false)"
            else:
                advice = (
                    "it holds plaintext data: open it with encryption=false, or move the data into an "
                    "encrypted store with `fastmcp-sessions migrate`"
                )
            raise StoreSetupError(f"{self.path}: {advice}")
        if self.keyring is not None:
            try:
                self.keyring.decrypt(meta["key_check"].encode("ascii"))
            except Exception:
                self._key_error = (
                    f"the database {self.path} was encrypted with a key that is not among the keys in use "
                    f"({', '.join(self.keyring.fingerprints)}, from {self.keyring.source}); set "
                    "FASTMCP_SESSIONS_KEYS to include the original key (newest first). Nothing was read or "
                    "written"
                )

    def _db(self, collection: str = "", key: str = "") -> sqlite3.Connection:
        if self._setup_error is not None:
            raise self._setup_error
        if self._key_error is not None:
            where = f" (collection {collection!r}, key {key!r})" if key else ""
            raise DecryptionError(self._key_error.replace("; set", f"{where}; set", 1))
        assert self._conn is not None
        return self._conn

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._worker is not None:
            return await self._worker.run(fn, *args)
        if not self._opened:
            self._opened = True
            self._open_database()
        return fn(*args)

    def _connection_error(self, exc: BaseException) -> StoreConnectionError:
        return StoreConnectionError(
            f"{self!r}: SQLite failed ({exc}); if another process holds a long write lock, retry or raise "
            "busy_timeout; if the disk is full or the file unwritable, fix that first"
        )

    # -- rows <-> values ----------------------------------------------------------------

    def _entry(self, collection: str, key: str, row: tuple[Any, ...], now: float) -> Versioned:
        data, expires_at, version = row
        value = self._codec.decode(collection, key, data)
        return Versioned(value, str(version), None if expires_at is None else max(expires_at - now, 0.0))

    def _row(self, collection: str, key: str, value: Value, ttl: float | None, now: float) -> tuple[Any, ...]:
        expires_at = None if ttl is None else now + ttl
        return (collection, key, self._codec.encode(collection, key, value), expires_at, _new_version())

    def _after_write(self, conn: sqlite3.Connection, now: float) -> None:
        if now >= self._next_purge:
            self._next_purge = now + _PURGE_EVERY
            self._purge(conn, now)

    @staticmethod
    def _purge(conn: sqlite3.Connection, now: float) -> None:
        if conn.execute("DELETE FROM entries WHERE expires_at <= ?", (now,)).rowcount:
            conn.execute("PRAGMA incremental_vacuum")

    # -- the backend interface (each method runs one job on the worker thread) ----------

    async def _read(self, collection: str, key: str) -> Versioned | None:
        return await self._run(self._sync_read, collection, key)

    def _sync_read(self, collection: str, key: str) -> Versioned | None:
        now = time.time()
        row = (
            self._db(collection, key)
            .execute(
                "SELECT value, expires_at, version FROM entries "
                f"WHERE collection = ? AND key = ? AND {_LIVE}",
                (collection, key, now),
            )
            .fetchone()
        )
        return None if row is None else self._entry(collection, key, row, now)

    async def _read_many(self, collection: str, keys: list[str]) -> list[Versioned | None]:
        return await self._run(self._sync_read_many, collection, keys)

    def _sync_read_many(self, collection: str, keys: list[str]) -> list[Versioned | None]:
        conn, now = self._db(collection), time.time()
        found: dict[str, Versioned] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT key, value, expires_at, version FROM entries "
                f"WHERE collection = ? AND key IN ({marks}) AND {_LIVE}",
                (collection, *chunk, now),
            )
            for key, *row in rows:
                found[key] = self._entry(collection, key, tuple(row), now)
        return [found.get(k) for k in keys]

    async def _write(self, collection: str, key: str, value: Value, ttl: float | None) -> None:
        await self._run(self._sync_write, collection, key, value, ttl)

    _UPSERT = (
        "INSERT INTO entries (collection, key, value, expires_at, version) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (collection, key) DO UPDATE SET value = excluded.value, "
        "expires_at = excluded.expires_at, version = excluded.version"
    )

    def _sync_write(self, collection: str, key: str, value: Value, ttl: float | None) -> None:
        conn, now = self._db(collection, key), time.time()
        conn.execute(self._UPSERT, self._row(collection, key, value, ttl, now))
        self._after_write(conn, now)

    async def _write_many(
        self, collection: str, keys: list[str], values: list[Value], ttl: float | None
    ) -> None:
        await self._run(self._sync_write_many, collection, keys, values, ttl)

    def _sync_write_many(
        self, collection: str, keys: list[str], values: list[Value], ttl: float | None
    ) -> None:
        conn, now = self._db(collection), time.time()
        rows = [self._row(collection, k, v, ttl, now) for k, v in zip(keys, values, strict=True)]
        with _transaction(conn):
            conn.executemany(self._UPSERT, rows)
        self._after_write(conn, now)

    async def _remove(self, collection: str, key: str) -> bool:
        return await self._run(self._sync_remove_many, collection, [key]) > 0

    async def _remove_many(self, collection: str, keys: list[str]) -> int:
        return await self._run(self._sync_remove_many, collection, keys)

    def _sync_remove_many(self, collection: str, keys: list[str]) -> int:
        conn, now = self._db(collection, keys[0] if len(keys) == 1 else ""), time.time()
        unique = list(dict.fromkeys(keys))
        live = 0
        with _transaction(conn):
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"DELETE FROM entries WHERE collection = ? AND key IN ({marks}) RETURNING expires_at",
                    (collection, *chunk),
                ).fetchall()
                live += sum(1 for (expires_at,) in rows if expires_at is None or expires_at > now)
        return live

    async def _insert(self, collection: str, key: str, value: Value, ttl: float | None) -> bool:
        return await self._run(self._sync_insert, collection, key, value, ttl)

    def _sync_insert(self, collection: str, key: str, value: Value, ttl: float | None) -> bool:
        conn, now = self._db(collection, key), time.time()
        # An expired row counts as absent: the upsert replaces it only in that case.
        cursor = conn.execute(
            "INSERT INTO entries (collection, key, value, expires_at, version) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (collection, key) DO UPDATE SET value = excluded.value, "
            "expires_at = excluded.expires_at, version = excluded.version "
            "WHERE entries.expires_at IS NOT NULL AND entries.expires_at <= ?",
            (*self._row(collection, key, value, ttl, now), now),
        )
        self._after_write(conn, now)
        return cursor.rowcount == 1

    async def _swap(self, collection: str, key: str, value: Value, version: str, ttl: float | None) -> bool:
        return await self._run(self._sync_swap, collection, key, value, version, ttl)

    def _sync_swap(self, collection: str, key: str, value: Value, version: str, ttl: float | None) -> bool:
        expected = _parse_version(version)
        if expected is None:
            return False
        conn, now = self._db(collection, key), time.time()
        _, _, data, expires_at, new_version = self._row(collection, key, value, ttl, now)
        cursor = conn.execute(
            "UPDATE entries SET value = ?, expires_at = ?, version = ? "
            f"WHERE collection = ? AND key = ? AND version = ? AND {_LIVE}",
            (data, expires_at, new_version, collection, key, expected, now),
        )
        return cursor.rowcount == 1

    async def _remove_if_version(self, collection: str, key: str, version: str) -> bool:
        return await self._run(self._sync_remove_if_version, collection, key, version)

    def _sync_remove_if_version(self, collection: str, key: str, version: str) -> bool:
        expected = _parse_version(version)
        if expected is None:
            return False
        conn, now = self._db(collection, key), time.time()
        cursor = conn.execute(
            f"DELETE FROM entries WHERE collection = ? AND key = ? AND version = ? AND {_LIVE}",
            (collection, key, expected, now),
        )
        return cursor.rowcount == 1

    async def _list_keys(self, collection: str, limit: int | None) -> list[str]:
        return await self._run(self._sync_list_keys, collection, limit)

    def _sync_list_keys(self, collection: str, limit: int | None) -> list[str]:
        rows = self._db(collection).execute(
            f"SELECT key FROM entries WHERE collection = ? AND {_LIVE} ORDER BY key LIMIT ?",
            (collection, time.time(), -1 if limit is None else limit),
        )
        return [key for (key,) in rows]

    async def _list_collections(self, limit: int | None) -> list[str]:
        return await self._run(self._sync_list_collections, limit)

    def _sync_list_collections(self, limit: int | None) -> list[str]:
        rows = self._db().execute(
            f"SELECT DISTINCT collection FROM entries WHERE {_LIVE} ORDER BY collection LIMIT ?",
            (time.time(), -1 if limit is None else limit),
        )
        return [name for (name,) in rows]

    async def _drop_collection(self, collection: str) -> bool:
        return await self._run(self._sync_drop_collection, collection)

    def _sync_drop_collection(self, collection: str) -> bool:
        conn = self._db(collection)
        rows = conn.execute(
            "DELETE FROM entries WHERE collection = ? RETURNING expires_at", (collection,)
        ).fetchall()
        now = time.time()
        return any(expires_at is None or expires_at > now for (expires_at,) in rows)

    async def _cull(self) -> None:
        await self._run(self._sync_cull)

    def _sync_cull(self) -> None:
        conn, now = self._db(), time.time()
        self._next_purge = now + _PURGE_EVERY
        self._purge(conn, now)

    async def _close(self) -> None:
        await self._run(self._sync_close)
        if self._worker is not None:
            self._worker.stop()

    def _sync_close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- key rotation --------------------------------------------------------------------

    async def rotate(self, *, batch_size: int = 500, progress: RotationProgress | None = None) -> int:
        """Re-encrypt every entry not yet under the newest key; return how many were rewritten.

        Runs in batches of ``batch_size`` rows, each its own transaction, so it can be
        interrupted and run again; rows already under the newest key are skipped and a
        row changed concurrently keeps the newer write. ``progress(rows, collection)`` is
        called after each batch with the number of rows it looked at.
        """
        if not self.encryption:
            raise StoreSetupError(f"{self!r} is not encrypted; there is nothing to rotate")
        total = 0
        after: tuple[str, str] = ("", "")
        after_next: tuple[str, str] | None
        while True:
            count: int
            scanned: int
            count, scanned, after_next = await self._call(
                self._run, self._sync_rotate_batch, after, batch_size
            )
            total += count
            if after_next is None:
                break
            if progress is not None:
                progress(scanned, after_next[0])
            after = after_next
        await self._call(self._run, self._sync_rotate_key_check)
        return total

    def _sync_rotate_batch(
        self, after: tuple[str, str], batch_size: int
    ) -> tuple[int, int, tuple[str, str] | None]:
        conn = self._db()
        assert self.keyring is not None
        rows = conn.execute(
            "SELECT collection, key, value, version FROM entries WHERE (collection, key) > (?, ?) "
            "ORDER BY collection, key LIMIT ?",
            (*after, batch_size),
        ).fetchall()
        if not rows:
            return 0, 0, None
        rewritten = 0
        with _transaction(conn):
            for collection, key, data, version in rows:
                if self.keyring.is_current(data):
                    continue
                value = self._codec.decode(collection, key, data)
                new = self._codec.encode(collection, key, value)
                rewritten += conn.execute(
                    "UPDATE entries SET value = ? WHERE collection = ? AND key = ? AND version = ?",
                    (new, collection, key, version),
                ).rowcount
        last = rows[-1]
        return rewritten, len(rows), (last[0], last[1])

    def _sync_rotate_key_check(self) -> None:
        assert self.keyring is not None
        token = self.keyring.encrypt(_KEY_CHECK).decode("ascii")
        self._db().execute("UPDATE meta SET value = ? WHERE name = 'key_check'", (token,))


class _transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on error: takes the write lock up front,
    so a transaction never fails half-way on a lock upgrade."""

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:
            self.conn.execute("ROLLBACK")


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _parse_version(version: str) -> int | None:
    try:
        number: int = int(version)
    except ValueError:
        return None
    return number if 0 <= number < 2**63 else None
