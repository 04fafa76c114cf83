"""The disk store: where each statement runs, and the operations (opening: ``_opening``)."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import secrets
import sqlite3
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import unquote, urlsplit

from fastmcp_sessions._values import check_key
from fastmcp_sessions.encryption import (
    JsonCodec,
    Keyring,
    ValueCodec,
)
from fastmcp_sessions.errors import (
    BaseKeyValueError,
    DecryptionError,
    StoreConnectionError,
    StoreCorruptedError,
    StoreOptionError,
    StoreSetupError,
    key_ref,
)
from fastmcp_sessions.stores._thread import WorkerThread
from fastmcp_sessions.stores._url import parse_bool, take_query_options
from fastmcp_sessions.stores.base import RotationProgress, Store, Value, Versioned
from fastmcp_sessions.stores.disk import _sql as sql
from fastmcp_sessions.stores.disk._files import _backup, resolve_path
from fastmcp_sessions.stores.disk._opening import KEY_CHECK, DiskOpening

T = TypeVar("T")
Offload = bool | Literal["auto"]

logger = logging.getLogger("fastmcp_sessions")

_PURGE_EVERY = 30.0  # seconds between automatic purges of expired rows
_INLINE_ROWS = 64  # larger batches and listings run on the worker thread
_CHECKPOINT_EVERY = 1000  # inline commits between two WAL checkpoints on the worker (SQLite: 1000 pages)
_YIELD_EVERY = 32  # inline calls between two yields to the event loop

# How a statement may run (see the module docstring).
_READ, _WRITE, _SLOW = 0, 1, 2


def _parse_offload(text: str) -> Offload:
    if text.strip().lower() == "auto":
        return "auto"
    return parse_bool(text)


_URL_OPTIONS: dict[str, Callable[[str], Any]] = {
    "encryption": parse_bool,
    "app_name": str,
    "key_file": str,
    "busy_timeout": float,
    "synchronous": str.upper,
    "default_collection": str,
    "offload": _parse_offload,
    "create": parse_bool,
    "integrity_check": float,
}


def _new_version() -> int:
    return secrets.randbits(63)


def _seconds(name: str, value: object) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        seconds = math.nan
    if isinstance(value, bool) or not (math.isfinite(seconds) and seconds >= 0):
        raise StoreOptionError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    return seconds


class DiskStore(DiskOpening, Store):
    """A SQLite-backed store in one file, shared safely by several processes.

    Args:
        path: Database file, or a directory to hold ``store.sqlite3``. Default:
            ``platformdirs.user_data_dir(app_name)/fastmcp-sessions/store.sqlite3``.
        app_name: Names the default data and key-file directories.
        encryption: Encrypt values with Fernet (default). ``False`` stores plain JSON.
        keys: Fernet keys (newest first) or a ``Keyring``; default: env
            ``FASTMCP_SESSIONS_KEYS``, then a key file created together with the database.
        key_file: Where to keep the generated key instead of the platform config dir.
        busy_timeout: Seconds a write waits for another process's write lock (on the
            worker thread, never on the loop) before ``StoreConnectionError``.
        synchronous: ``"NORMAL"`` (default; durable across application crashes) or
            ``"FULL"`` (also across power loss; every commit waits for fsync, so writes
            always run on the worker thread).
        offload: ``"auto"`` (default): statements that cannot block run inline on the
            event loop, the rest on the store's worker thread (see docs/disk.md).
            ``True``: every statement on the worker thread (for file systems where even a
            page write can stall, such as network mounts). ``False``: every statement
            inline and no thread at all; a write waiting for another process's lock then
            stalls the loop for up to ``busy_timeout``.
        create: Create the database (and its key file) if missing (default). ``False``
            opens an existing store only and never creates a file: a missing database is
            a ``StoreSetupError``. Used by the read-only CLI commands.
        integrity_check: Seconds spent, when the store opens, on SQLite's
            ``PRAGMA integrity_check`` (default 1.0; ``0`` skips it). A file that fails is
            a ``StoreCorruptedError``; a file too large to finish in time is checked that
            far.
    """

    url_schemes = ("disk",)
    db_system_name = "sqlite"
    handles_encryption = True
    # UnicodeDecodeError: SQLite handed back text that is not UTF-8, which only a damaged file holds.
    driver_errors = (sqlite3.Error, UnicodeDecodeError)

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
        offload: Offload = "auto",
        create: bool = True,
        integrity_check: float = 1.0,
    ) -> None:
        super().__init__(default_collection=default_collection)
        if synchronous not in ("NORMAL", "FULL"):
            raise StoreOptionError(f"synchronous must be 'NORMAL' or 'FULL', got {synchronous!r}")
        if offload not in (True, False, "auto") or (offload != "auto" and not isinstance(offload, bool)):
            raise StoreOptionError(f"offload must be 'auto', True or False, got {offload!r}")
        self._busy_timeout = _seconds("busy_timeout", busy_timeout)
        self._integrity_budget = _seconds("integrity_check", integrity_check)
        self.path = resolve_path(path, app_name)
        self.app_name = app_name
        self.encryption = bool(encryption)
        self.create = bool(create)
        self._configured_keys = keys
        self._key_file = key_file
        self._synchronous = synchronous
        self._codec: ValueCodec = JsonCodec()
        self._rotate_codec: ValueCodec = JsonCodec()
        self.keyring: Keyring | None = None
        self._fast: sqlite3.Connection | None = None  # used on the loop (busy timeout 0 unless offload=False)
        self._slow: sqlite3.Connection | None = None  # owned by the worker thread
        self._setup_error: BaseException | None = None
        self._key_error: str | None = None
        self._next_purge = 0.0
        self.offload: Offload = offload
        self._inline_writes = offload == "auto" and synchronous == "NORMAL"
        self._pending = 0  # jobs handed to the worker and not finished yet
        self._inline_commits = 0
        self._inline_calls = 0
        self._checkpointing: asyncio.Future[None] | None = None
        self._worker: WorkerThread | None = None
        self._ready = False
        if offload is not False:
            self._worker = WorkerThread(name=f"fastmcp-sessions-disk:{self.path.name}")
            # A store dropped without close() must not leave its thread waiting forever.
            weakref.finalize(self, self._worker.stop)
            # Queued first, so every later job runs after it.
            self._worker.submit(self._open_database)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> DiskStore:
        """``disk://`` (platform default location) or ``disk:///abs/path``, with query options
        ``encryption``, ``app_name``, ``key_file``, ``busy_timeout``, ``synchronous``,
        ``default_collection``, ``offload`` (auto/true/false), ``create``, ``integrity_check``."""
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise StoreOptionError(
                f"disk URLs take an absolute path: disk:///path/to/store.sqlite3 (got host {parts.netloc!r})"
            )
        take_query_options(url, _URL_OPTIONS, options)
        path = unquote(parts.path) or None
        return cls(path, **options)

    def __repr__(self) -> str:
        mode = "encrypted" if self.encryption else "plaintext"
        return f"DiskStore(path={str(self.path)!r}, {mode})"

    # -- where a statement runs ----------------------------------------------------------

    async def _sql(self, kind: int, collection: str, key: str, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(connection, *args)``: inline when ``kind`` allows and it does not have to
        wait, otherwise on the worker thread. ``collection``/``key`` only name the entry in errors."""
        if not self._ready:
            await self._open_wait()
        if self._setup_error is not None:
            raise self._setup_error
        if self._key_error is not None:
            where = f" (collection {collection!r}, key {key_ref(key)})" if key else ""
            raise DecryptionError(self._key_error.replace("; set", f"{where}; set", 1))
        worker, fast = self._worker, self._fast
        if worker is None:
            assert fast is not None
            result = fn(fast, *args)
            await self._yield_now_and_then()
            return result
        # A write waits behind writes already handed to the worker, so this process's writes
        # stay in the order they were issued.
        if fast is not None and (
            kind == _READ or (kind == _WRITE and self._inline_writes and not self._pending)
        ):
            try:
                result = fn(fast, *args)
            except sqlite3.OperationalError as exc:
                # BUSY with a zero timeout: the statement changed nothing; the worker waits instead.
                if sql.code(exc) not in (sql.BUSY, sql.LOCKED) or fast.in_transaction:
                    raise
            else:
                if kind == _WRITE:
                    self._inline_commits += 1
                    if self._inline_commits >= _CHECKPOINT_EVERY and self._checkpointing is None:
                        self._inline_commits = 0
                        self._checkpointing = asyncio.ensure_future(self._checkpoint(worker))
                await self._yield_now_and_then()
                return result
        self._pending += 1
        try:
            return await worker.run(self._on_worker, fn, args)
        finally:
            self._pending -= 1

    async def _checkpoint(self, worker: WorkerThread) -> None:
        # Counted as pending, so writes queue behind it rather than append to the WAL while it
        # copies: it then catches up, and the next write starts the WAL over from its beginning
        # instead of growing it (a long WAL slows every read).
        self._pending += 1
        try:
            await worker.run(self._in_background, sql.checkpoint)
        except Exception as exc:  # a failed checkpoint is retried after the next batch of writes
            logger.debug("%r: WAL checkpoint failed: %s", self, exc)
        finally:
            self._pending -= 1
            self._checkpointing = None

    async def _yield_now_and_then(self) -> None:
        # A call answered inline does not suspend; a caller looping over the store must
        # still let other tasks run now and then.
        self._inline_calls += 1
        if self._inline_calls >= _YIELD_EVERY:
            self._inline_calls = 0
            await asyncio.sleep(0)

    async def _open_wait(self) -> None:
        if self._worker is not None:
            await self._worker.run(sql.nothing)  # the open job was queued first
        elif not self._ready:
            self._open_database()
        self._ready = True

    def _on_worker(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        conn = self._slow if self._slow is not None else self._fast
        assert conn is not None
        return fn(conn, *args)

    def _in_background(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._slow is not None and self._setup_error is None:
            fn(self._slow, *args)

    def _translate_error(self, exc: BaseException) -> BaseKeyValueError:
        code = sql.code(exc) if isinstance(exc, sqlite3.Error) else None
        detail = str(exc)
        if isinstance(exc, UnicodeDecodeError):
            detail, code = "text that is not UTF-8", sql.CORRUPT
        text = detail.lower()
        if code in (sql.CORRUPT, sql.NOTADB) or "malformed" in text or "not a database" in text:
            error = StoreCorruptedError(str(self.path), f"is damaged (SQLite: {detail})")
            # Refuse everything from now on: a damaged file can answer wrongly or lose writes.
            self._setup_error = error
            return error
        if code in (sql.BUSY, sql.LOCKED):
            advice = (
                f"another process held the write lock for more than busy_timeout ({self._busy_timeout:g} s); "
                "retry, or raise busy_timeout"
            )
        elif code == sql.READONLY:
            advice = (
                f"the file {self.path} or its directory became read-only for this process; make them "
                "writable (chmod 600 on the file, 700 on the directory)"
            )
        elif code == sql.FULL:
            advice = f"the disk holding {self.path} is full; free space, then retry"
        elif code in (sql.IOERR, sql.CANTOPEN):
            advice = (
                f"the operating system failed a read or write of {self.path} (a removed file, a failing disk "
                "or an unmounted volume); check it, then reopen the store"
            )
        else:
            advice = "retry; if it persists, run `fastmcp-sessions doctor`"
        return StoreConnectionError(f"{self!r}: SQLite failed ({exc}); {advice}")

    # -- rows <-> values ----------------------------------------------------------------

    def _entry(self, collection: str, key: str, row: tuple[Any, ...], now: float) -> Versioned:
        data, expires_at, version = row
        value = self._codec.decode(collection, key, data)
        return Versioned(value, str(version), None if expires_at is None else max(expires_at - now, 0.0))

    def _row(self, collection: str, key: str, value: Value, ttl: float | None, now: float) -> tuple[Any, ...]:
        # Callers await _open_wait() first: the codec is only known once the store is open.
        expires_at = None if ttl is None else now + ttl
        return (collection, key, self._codec.encode(collection, key, value), expires_at, _new_version())

    def _after_write(self, now: float) -> None:
        if now >= self._next_purge:
            self._next_purge = now + _PURGE_EVERY
            if self._worker is not None:
                self._worker.submit(self._in_background, sql.purge, now)
            elif self._fast is not None:
                sql.purge(self._fast, now)

    # -- the backend interface ------------------------------------------------------------

    async def get(self, key: str, *, collection: str | None = None) -> Value | None:
        """Return the value stored at ``key``, or ``None`` if it is missing or expired."""
        fast = self._fast
        if (
            self._ready
            and fast is not None
            and self._worker is not None
            and self._key_error is None
            and self._setup_error is None
            and not self._closed
        ):
            # The most frequent call: the base class's path and _sql's inline branch, written
            # out. Anything unusual (a busy file, an error) takes the general path.
            c, k = self._resolve_collection(collection), check_key(key)
            try:
                rows = fast.execute(sql.SELECT_VALUE, (c, k, time.time())).fetchall()
            except (sqlite3.Error, UnicodeDecodeError):
                return await super().get(key, collection=collection)
            self._inline_calls += 1
            if self._inline_calls >= _YIELD_EVERY:
                self._inline_calls = 0
                await asyncio.sleep(0)
            return self._codec.decode(c, k, rows[0][0]) if rows else None
        return await super().get(key, collection=collection)

    async def _get_versioned(self, collection: str, key: str) -> Versioned | None:
        now = time.time()
        row = await self._sql(_READ, collection, key, sql.select_one, collection, key, now)
        return None if row is None else self._entry(collection, key, row, now)

    async def _get_versioned_many(self, collection: str, keys: list[str]) -> list[Versioned | None]:
        now, unique = time.time(), list(dict.fromkeys(keys))
        kind = _READ if len(unique) <= _INLINE_ROWS else _SLOW
        rows = await self._sql(kind, collection, "", sql.select_many, collection, unique, now)
        found = {key: self._entry(collection, key, tuple(row), now) for key, *row in rows}
        return [found.get(k) for k in keys]

    async def _put(self, collection: str, key: str, value: Value, ttl: float | None) -> None:
        if not self._ready:
            await self._open_wait()
        now = time.time()
        row = self._row(collection, key, value, ttl, now)
        await self._sql(_WRITE, collection, key, sql.upsert, row)
        self._after_write(now)

    async def _put_many(
        self, collection: str, keys: list[str], values: list[Value], ttl: float | None
    ) -> None:
        if not self._ready:
            await self._open_wait()
        now = time.time()
        rows = [self._row(collection, k, v, ttl, now) for k, v in zip(keys, values, strict=True)]
        await self._sql(_WRITE if len(rows) <= _INLINE_ROWS else _SLOW, collection, "", sql.upsert_many, rows)
        self._after_write(now)

    async def _delete(self, collection: str, key: str) -> bool:
        return await self._delete_many(collection, [key]) > 0

    async def _delete_many(self, collection: str, keys: list[str]) -> int:
        now, unique = time.time(), list(dict.fromkeys(keys))
        kind = _WRITE if len(unique) <= _INLINE_ROWS else _SLOW
        expiries = await self._sql(
            kind, collection, keys[0] if len(keys) == 1 else "", sql.delete_many, collection, unique
        )
        return sum(1 for expires_at in expiries if expires_at is None or expires_at > now)

    async def _put_if_absent(self, collection: str, key: str, value: Value, ttl: float | None) -> bool:
        if not self._ready:
            await self._open_wait()
        now = time.time()
        row = self._row(collection, key, value, ttl, now)
        inserted = await self._sql(_WRITE, collection, key, sql.insert, row, now)
        self._after_write(now)
        return inserted

    async def _compare_and_set(
        self, collection: str, key: str, value: Value, version: str, ttl: float | None
    ) -> bool:
        expected = _parse_version(version)
        if expected is None:
            return False
        if not self._ready:
            await self._open_wait()
        now = time.time()
        _, _, data, expires_at, new_version = self._row(collection, key, value, ttl, now)
        return await self._sql(
            _WRITE, collection, key, sql.swap, (data, expires_at, new_version, collection, key, expected, now)
        )

    async def _delete_if_version(self, collection: str, key: str, version: str) -> bool:
        expected = _parse_version(version)
        if expected is None:
            return False
        return await self._sql(
            _WRITE, collection, key, sql.delete_if_version, (collection, key, expected, time.time())
        )

    async def _keys(self, collection: str, limit: int | None) -> list[str]:
        kind = _READ if limit is not None and limit <= _INLINE_ROWS else _SLOW
        return await self._sql(kind, collection, "", sql.select_keys, collection, time.time(), limit)

    async def _collections(self, limit: int | None) -> list[str]:
        return await self._sql(_SLOW, "", "", sql.select_collections, time.time(), limit)

    async def _destroy_collection(self, collection: str) -> bool:
        expiries = await self._sql(_SLOW, collection, "", sql.delete_collection, collection)
        now = time.time()
        return any(expires_at is None or expires_at > now for expires_at in expiries)

    async def _cull(self) -> None:
        now = time.time()
        self._next_purge = now + _PURGE_EVERY
        await self._sql(_SLOW, "", "", sql.purge, now)

    async def _close(self) -> None:
        if self._worker is not None:
            # Closing the last connection checkpoints the WAL: that belongs on the worker.
            await self._worker.run(self._close_connections)
            self._worker.stop()
        else:
            self._close_connections()

    # -- backup ------------------------------------------------------------------------------

    async def backup(self, target: str | os.PathLike[str]) -> Path:
        """Copy the store to the new file ``target`` (mode 0600) while it stays in use; return its path.

        Uses SQLite's online backup API: the copy is one consistent snapshot, other
        processes keep reading and writing meanwhile. ``target`` must not exist (a
        directory gets ``store.sqlite3`` inside it). An encrypted store's copy needs the
        same key: back up the key file (or ``FASTMCP_SESSIONS_KEYS``) separately.
        """
        result: Path = await self._call(self._sql, _SLOW, "", "", _backup, Path(os.fspath(target)))
        return result

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
                self._sql, _SLOW, "", "", self._sync_rotate_batch, after, batch_size
            )
            total += count
            if after_next is None:
                break
            if progress is not None:
                progress(scanned, after_next[0])
            after = after_next
        await self._call(self._sql, _SLOW, "", "", self._sync_rotate_key_check)
        return total

    def _sync_rotate_batch(
        self, conn: sqlite3.Connection, after: tuple[str, str], batch_size: int
    ) -> tuple[int, int, tuple[str, str] | None]:
        assert self.keyring is not None
        codec = self._rotate_codec
        rows = conn.execute(
            "SELECT collection, key, value, version FROM entries WHERE (collection, key) > (?, ?) "
            "ORDER BY collection, key LIMIT ?",
            (*after, batch_size),
        ).fetchall()
        if not rows:
            return 0, 0, None
        rewritten = 0
        with sql.transaction(conn):
            for collection, key, data, version in rows:
                if self.keyring.is_current(data):
                    continue
                value = codec.decode(collection, key, data)
                new = codec.encode(collection, key, value)
                rewritten += conn.execute(
                    "UPDATE entries SET value = ? WHERE collection = ? AND key = ? AND version = ?",
                    (new, collection, key, version),
                ).rowcount
        last = rows[-1]
        return rewritten, len(rows), (last[0], last[1])

    def _sync_rotate_key_check(self, conn: sqlite3.Connection) -> None:
        assert self.keyring is not None
        token = self.keyring.encrypt(KEY_CHECK).decode("ascii")
        conn.execute("UPDATE meta SET value = ? WHERE name = 'key_check'", (token,))


def _parse_version(version: str) -> int | None:
    try:
        number: int = int(version)
    except ValueError:
        return None
    return number if 0 <= number < 2**63 else None
