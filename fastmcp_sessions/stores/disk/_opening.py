"""Opening a disk store: find or create the file, check it is ours and whole, load the key.

Runs once per store, on its worker thread (or inline with ``offload=False``), before any
statement; the first error is kept and raised by every later operation.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import secrets
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from fastmcp_sessions.encryption import (
    KEYS_ENV,
    FernetCodec,
    Keyring,
    ValueCodec,
    key_file_path,
    load_keyring,
    make_private_dir,
)
from fastmcp_sessions.errors import KeyValueStoreError, StoreCorruptedError, StoreSetupError
from fastmcp_sessions.stores.disk import _sql as sql
from fastmcp_sessions.stores.disk._files import _write_marker, marker_path

logger = logging.getLogger("fastmcp_sessions")

SCHEMA_VERSION = "1"
KEY_CHECK = b"fastmcp-sessions key check"
_SQLITE_MAGIC = b"SQLite format 3\x00"
_WAL_SIZE_LIMIT = 4 * 1024 * 1024  # bytes the WAL file is cut back to when it starts over


class DiskOpening:
    """The opening half of ``DiskStore``: the state it sets up is declared here, assigned there."""

    path: Path
    app_name: str
    encryption: bool
    create: bool
    keyring: Keyring | None
    offload: bool | Literal["auto"]
    _configured_keys: Keyring | Sequence[str | bytes] | str | None
    _key_file: str | os.PathLike[str] | None
    _busy_timeout: float
    _integrity_budget: float
    _synchronous: str
    _codec: ValueCodec
    _rotate_codec: ValueCodec
    _fast: sqlite3.Connection | None
    _slow: sqlite3.Connection | None
    _setup_error: BaseException | None
    _key_error: str | None

    def _open_database(self) -> None:
        try:
            try:
                self._setup()
            except UnicodeDecodeError:
                raise StoreCorruptedError(
                    str(self.path), "is damaged: it holds text that is not UTF-8"
                ) from None
        except BaseException as exc:
            self._close_connections()
            self._setup_error = exc

    def _setup(self) -> None:
        path, marker = self.path, marker_path(self.path)
        try:
            size: int | None = path.stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            size = None
        except OSError as exc:
            raise StoreSetupError(
                f"cannot reach the database {path}: {exc.strerror}; check the path and the permissions "
                "of its directories"
            ) from None
        if size is None:
            if marker.exists():
                raise StoreCorruptedError(
                    str(path), f"is missing, but {marker} shows a store was created here", marker=str(marker)
                )
            if not self.create:
                raise StoreSetupError(
                    f"there is no database at {path}; check the path (nothing was created: this "
                    "command only reads existing stores)"
                )
            self._load_keys(create=True)
            self._create_file()
        else:
            if path.is_dir():
                raise StoreSetupError(
                    f"{path} is a directory; give the database file, or a directory path ending in /"
                )
            if size == 0:
                # Every database is created complete under a temporary name and then linked in,
                # so an empty file at this path was truncated, never freshly created.
                raise StoreCorruptedError(
                    str(path), "is empty (0 bytes): it was truncated or overwritten", marker=str(marker)
                )
            self._check_file(path, marker)
        self._slow = self._connect(self._busy_timeout, checkpoints=True)
        meta = self._read_meta(self._slow, marker)
        self._check_codec(meta)
        if self.encryption and self.keyring is None:
            # An existing database never gets a new key: a missing key file is an error.
            self._load_keys(create=False, encrypted_data=f"the database {path}")
        self._check_key(meta)
        self._verify(self._slow)
        if self.offload == "auto":
            self._fast = self._connect(0.0, checkpoints=False)
        elif self.offload is False:
            self._fast, self._slow = self._slow, None
        if self.create and not marker.exists():
            _write_marker(marker, meta.get("store_id", ""))

    @property
    def key_file(self) -> Path:
        """The key file this store reads when its keys come from neither ``keys=`` nor the environment."""
        return key_file_path(self.app_name, self._key_file)

    def _load_keys(self, *, create: bool, encrypted_data: str | None = None) -> None:
        if not self.encryption:
            return
        self.keyring = load_keyring(
            self._configured_keys,
            app_name=self.app_name,
            key_file=self._key_file,
            create=create,
            encrypted_data=encrypted_data,
        )
        self._codec = FernetCodec(self.keyring)
        # Rotation runs on the worker thread: it gets its own codec (the cache is not shared).
        self._rotate_codec = FernetCodec(self.keyring, cache_size=0)

    def _check_file(self, path: Path, marker: Path) -> None:
        """Tell a foreign file, a damaged header and an unusable location apart, before SQLite does."""
        try:
            with open(path, "rb") as f:
                header = f.read(len(_SQLITE_MAGIC))
        except OSError as exc:
            raise StoreSetupError(
                f"cannot read the database file {path}: {exc.strerror}; run as the user that owns it, or "
                f"fix its permissions (chmod 600 {path})"
            ) from None
        if header != _SQLITE_MAGIC:
            if marker.exists():
                raise StoreCorruptedError(
                    str(path), "is damaged: its SQLite header is gone", marker=str(marker)
                )
            raise StoreSetupError(
                f"{path} is not a SQLite database (another program's file, or a damaged store); choose "
                "another path (disk:///path/to/store.sqlite3), or restore the store from a backup"
            )
        if not os.access(path, os.W_OK):
            mode = path.stat().st_mode & 0o777
            raise StoreSetupError(
                f"the database file {path} is read-only for this user (mode {mode:04o}, owner uid "
                f"{path.stat().st_uid}); SQLite must write to it even to read in WAL mode: run as its "
                f"owner, or make it writable with chmod 600 {path}"
            )
        shm = path.with_name(path.name + "-shm")
        if not os.access(path.parent, os.W_OK | os.X_OK) and not shm.exists():
            raise StoreSetupError(
                f"the directory {path.parent} is read-only for this user: SQLite keeps {path.name}-wal and "
                f"{path.name}-shm beside the database and must create them there; make the directory "
                "writable (chmod 700), or move the database to a writable directory"
            )

    def _create_file(self) -> None:
        """Create the database complete under a temporary name, then link it into place: the
        path never holds a half-made (or empty) database, and concurrent creators agree on one."""
        path = self.path
        try:
            make_private_dir(path.parent)
            tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
            # Created by us so it is 0600 from its first byte; SQLite gives -wal and -shm the same mode.
            os.close(os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError as exc:
            parent = path.parent
            while not parent.exists() and parent != parent.parent:
                parent = parent.parent
            raise StoreSetupError(
                f"cannot create the database file {path}: {exc.strerror} (the directory {parent} is not "
                "writable by this user); choose a writable path (disk:///path/to/store.sqlite3) or fix the "
                "directory's permissions"
            ) from None
        try:
            conn = sqlite3.connect(tmp, isolation_level=None)
            try:
                # auto_vacuum only takes effect on a database without tables, so set it first.
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
                conn.execute("PRAGMA journal_mode = WAL")
                self._init_schema(conn)
            finally:
                conn.close()
            with contextlib.suppress(FileExistsError):  # another process created it first: use theirs
                os.link(tmp, path)
        finally:
            for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
                leftover.unlink(missing_ok=True)

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        with sql.transaction(conn):
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
            key_check = self.keyring.encrypt(KEY_CHECK).decode("ascii") if self.keyring else ""
            conn.executemany(
                "INSERT OR IGNORE INTO meta (name, value) VALUES (?, ?)",
                [
                    ("format", SCHEMA_VERSION),
                    ("codec", codec),
                    ("key_check", key_check),
                    ("store_id", secrets.token_hex(16)),
                ],
            )

    def _connect(self, busy_timeout: float, *, checkpoints: bool) -> sqlite3.Connection:
        path = self.path
        deadline = time.monotonic() + self._busy_timeout
        while True:
            # mode=rw: SQLite never creates the file (it exists, or we just created it).
            conn = sqlite3.connect(
                f"file:{quote(str(path))}?mode=rw",
                uri=True,
                timeout=busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            try:
                self._prepare(conn, checkpoints=checkpoints)
                return conn
            except sqlite3.Error as exc:
                conn.close()
                # Switching a file to WAL needs an exclusive lock, and SQLite does not always wait
                # for it (deadlock avoidance): processes opening one file at once retry.
                if sql.code(exc) in (sql.BUSY, sql.LOCKED) and time.monotonic() < deadline:
                    time.sleep(random.uniform(0.005, 0.05))
                    continue
                raise self._open_error(exc) from exc

    def _prepare(self, conn: sqlite3.Connection, *, checkpoints: bool) -> None:
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            # Another program's database is left exactly as it is (_read_meta then refuses it).
            if not tables or {"entries", "meta"} <= tables:
                conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        # When the WAL starts over after a checkpoint, shrink the file back to this size.
        conn.execute(f"PRAGMA journal_size_limit = {_WAL_SIZE_LIMIT}")
        if not checkpoints:
            # A checkpoint copies pages and fsyncs; the worker runs them, never the loop.
            conn.execute("PRAGMA wal_autocheckpoint = 0")

    def _open_error(self, exc: sqlite3.Error) -> KeyValueStoreError:
        path, code = self.path, sql.code(exc)
        if code in (sql.CORRUPT, sql.NOTADB):
            return StoreCorruptedError(str(path), f"is damaged (SQLite: {exc})", marker=None)
        if code in (sql.BUSY, sql.LOCKED):
            return StoreSetupError(
                f"cannot open {path}: another process kept it locked for more than busy_timeout "
                f"({self._busy_timeout:g} s); retry, or raise busy_timeout"
            )
        if code in (sql.READONLY, sql.CANTOPEN, 3):  # 3 = SQLITE_PERM
            return StoreSetupError(
                f"cannot open {path} for writing ({exc}): the file, its -wal/-shm files or the directory "
                f"{path.parent} are not writable by this user; fix their permissions"
            )
        return StoreSetupError(f"cannot open {path}: {exc}")

    def _read_meta(self, conn: sqlite3.Connection, marker: Path) -> dict[str, str]:
        try:
            tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables and self.create:
                self._init_schema(conn)  # a database left without tables (by an older version's crash)
                tables = {"entries", "meta"}
            if not {"entries", "meta"} <= tables:
                raise StoreSetupError(
                    f"{self.path} is another program's SQLite database (tables: "
                    f"{', '.join(sorted(tables)) or 'none'}), not a fastmcp-sessions store; choose another "
                    "path (disk:///path/to/store.sqlite3)"
                )
            return dict(conn.execute("SELECT name, value FROM meta").fetchall())
        except sqlite3.Error as exc:
            raise self._open_error(exc) from exc

    def _check_codec(self, meta: dict[str, str]) -> None:
        codec = "fernet" if self.encryption else "json"
        stored = meta.get("codec")
        if stored not in ("fernet", "json") or "key_check" not in meta:
            raise StoreCorruptedError(str(self.path), "has a damaged meta table (no codec or key check)")
        if stored != codec:
            if stored == "fernet":
                advice = "it holds encrypted data: open it with encryption on (drop encryption=false)"
            else:
                advice = (
                    "it holds plaintext data: open it with encryption=false, or move the data into an "
                    "encrypted store with `fastmcp-sessions migrate`"
                )
            raise StoreSetupError(f"{self.path}: {advice}")

    def _check_key(self, meta: dict[str, str]) -> None:
        if self.keyring is not None:
            try:
                self.keyring.decrypt(meta["key_check"].encode("ascii"))
            except Exception:
                self._key_error = (
                    f"the database {self.path} was encrypted with a key that is not among the keys in use "
                    f"({', '.join(self.keyring.fingerprints)}, from {self.keyring.source}); set "
                    f"{KEYS_ENV} to include the original key (newest first). Nothing was read or written"
                )

    def _verify(self, conn: sqlite3.Connection) -> None:
        """SQLite's integrity check, stopped after ``integrity_check`` seconds. It is stricter than
        ``quick_check``: it also finds rows out of key order, which make lookups miss silently."""
        if self._integrity_budget <= 0:
            return
        deadline = time.monotonic() + self._integrity_budget
        conn.set_progress_handler(lambda: time.monotonic() > deadline, 2000)
        try:
            problems = [text for (text,) in conn.execute("PRAGMA integrity_check(5)").fetchall()]
        except sqlite3.OperationalError as exc:
            if "interrupt" not in str(exc).lower():
                raise self._open_error(exc) from exc
            logger.info(
                "%s: the integrity check stopped after %.1f s (a large file); raise integrity_check= to "
                "check all of it",
                self.path,
                self._integrity_budget,
            )
            return
        except sqlite3.DatabaseError as exc:
            raise self._open_error(exc) from exc
        finally:
            conn.set_progress_handler(None, 0)
        if problems != ["ok"]:
            summary = "; ".join(problems)[:400]
            raise StoreCorruptedError(
                str(self.path), f"is damaged: SQLite's integrity check found: {summary}", marker=None
            )

    def _close_connections(self) -> None:
        for conn in (self._fast, self._slow):
            if conn is not None:
                conn.close()
        self._fast = self._slow = None
