"""The disk store's files: where the database lives, its marker, and online backups."""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
from pathlib import Path

from fastmcp_sessions.encryption import make_private_dir
from fastmcp_sessions.errors import StoreSetupError

logger = logging.getLogger("fastmcp_sessions")

DB_FILE_NAME = "store.sqlite3"


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


def marker_path(db: Path) -> Path:
    """The marker written beside a database the store created: while it exists, a missing or
    empty database file is an error (``StoreCorruptedError``), never a new empty store."""
    return db.with_name(f".{db.name}.marker")


def _backup(conn: sqlite3.Connection, dest: Path) -> Path:
    dest = dest.expanduser()
    if dest.is_dir():
        dest = dest / DB_FILE_NAME
    if dest.exists():
        raise StoreSetupError(f"the backup target {dest} already exists; choose a new file name")
    try:
        make_private_dir(dest.parent)
        tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.tmp")
        os.close(os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise StoreSetupError(
            f"cannot create the backup file {dest}: {exc.strerror}; choose a writable path"
        ) from None
    try:
        target = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.backup(target)  # all pages in one step: one consistent snapshot
            target.execute("PRAGMA journal_mode = WAL")
        finally:
            target.close()
        try:
            os.link(tmp, dest)
        except FileExistsError:
            raise StoreSetupError(
                f"the backup target {dest} already exists; choose a new file name"
            ) from None
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            leftover.unlink(missing_ok=True)
    return dest


def _write_marker(marker: Path, store_id: str) -> None:
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        logger.warning(
            "cannot write the store marker %s (%s); a deleted database would go unnoticed", marker, exc
        )
        return
    with os.fdopen(fd, "w") as f:
        f.write(
            "fastmcp-sessions: a store was created beside this file; while this marker exists, a missing "
            "or empty database is reported as an error, not replaced by an empty store.\n"
            f"store_id {store_id}\n"
        )
