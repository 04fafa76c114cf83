"""The disk store's SQL: each statement is a function taking the connection it runs on first,
so the store can run it inline on the event loop or on its worker thread unchanged.

Each is one statement or one ``BEGIN IMMEDIATE`` transaction, which is what makes the
store's atomic operations atomic across processes.
"""

from __future__ import annotations

import sqlite3
from typing import Any

LIVE = "(expires_at IS NULL OR expires_at > ?)"
CHUNK = 500  # keys per IN (...) list, well under SQLite's bound-parameter limit

# SQLite's primary result codes (``sqlite3.Error.sqlite_errorcode & 0xFF``).
BUSY, LOCKED, READONLY, IOERR, CORRUPT, FULL, CANTOPEN, NOTADB = 5, 6, 8, 10, 11, 13, 14, 26


UPSERT = (
    "INSERT INTO entries (collection, key, value, expires_at, version) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (collection, key) DO UPDATE SET value = excluded.value, "
    "expires_at = excluded.expires_at, version = excluded.version"
)


def nothing() -> None:
    """Do nothing (a job that waits for the jobs queued before it)."""


SELECT_VALUE = f"SELECT value FROM entries WHERE collection = ? AND key = ? AND {LIVE}"
SELECT_ONE = f"SELECT value, expires_at, version FROM entries WHERE collection = ? AND key = ? AND {LIVE}"


def select_one(conn: sqlite3.Connection, collection: str, key: str, now: float) -> tuple[Any, ...] | None:
    """The live row's (value, expires_at, version), or None."""
    rows = conn.execute(SELECT_ONE, (collection, key, now)).fetchall()
    return rows[0] if rows else None


def select_many(
    conn: sqlite3.Connection, collection: str, keys: list[str], now: float
) -> list[tuple[Any, ...]]:
    """(key, value, expires_at, version) of the live rows among ``keys``."""
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        marks = ",".join("?" * len(chunk))
        found += conn.execute(
            f"SELECT key, value, expires_at, version FROM entries "
            f"WHERE collection = ? AND key IN ({marks}) AND {LIVE}",
            (collection, *chunk, now),
        ).fetchall()
    return found


def upsert(conn: sqlite3.Connection, row: tuple[Any, ...]) -> None:
    """Insert or replace one row."""
    conn.execute(UPSERT, row)


def upsert_many(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert or replace ``rows`` in one transaction."""
    with transaction(conn):
        conn.executemany(UPSERT, rows)


def delete_many(conn: sqlite3.Connection, collection: str, keys: list[str]) -> list[float | None]:
    """Delete ``keys``; return the expiry of each row deleted (to count the live ones)."""
    expiries: list[float | None] = []
    with transaction(conn):
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            marks = ",".join("?" * len(chunk))
            expiries += [
                expires_at
                for (expires_at,) in conn.execute(
                    f"DELETE FROM entries WHERE collection = ? AND key IN ({marks}) RETURNING expires_at",
                    (collection, *chunk),
                ).fetchall()
            ]
    return expiries


def insert(conn: sqlite3.Connection, row: tuple[Any, ...], now: float) -> bool:
    """Insert ``row`` unless a live row holds its key; return whether it did."""
    # An expired row counts as absent: the upsert replaces it only in that case.
    cursor = conn.execute(
        "INSERT INTO entries (collection, key, value, expires_at, version) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (collection, key) DO UPDATE SET value = excluded.value, "
        "expires_at = excluded.expires_at, version = excluded.version "
        "WHERE entries.expires_at IS NOT NULL AND entries.expires_at <= ?",
        (*row, now),
    )
    return cursor.rowcount == 1


def swap(conn: sqlite3.Connection, params: tuple[Any, ...]) -> bool:
    """Replace the live row only if its version matches; return whether it did."""
    cursor = conn.execute(
        "UPDATE entries SET value = ?, expires_at = ?, version = ? "
        f"WHERE collection = ? AND key = ? AND version = ? AND {LIVE}",
        params,
    )
    return cursor.rowcount == 1


def delete_if_version(conn: sqlite3.Connection, params: tuple[Any, ...]) -> bool:
    """Delete the live row only if its version matches; return whether it did."""
    cursor = conn.execute(
        f"DELETE FROM entries WHERE collection = ? AND key = ? AND version = ? AND {LIVE}", params
    )
    return cursor.rowcount == 1


def select_keys(conn: sqlite3.Connection, collection: str, now: float, limit: int | None) -> list[str]:
    """Live keys of ``collection`` in order, at most ``limit``."""
    rows = conn.execute(
        f"SELECT key FROM entries WHERE collection = ? AND {LIVE} ORDER BY key LIMIT ?",
        (collection, now, -1 if limit is None else limit),
    ).fetchall()
    return [key for (key,) in rows]


def select_collections(conn: sqlite3.Connection, now: float, limit: int | None) -> list[str]:
    """Collections with a live row, in order, at most ``limit``."""
    rows = conn.execute(
        f"SELECT DISTINCT collection FROM entries WHERE {LIVE} ORDER BY collection LIMIT ?",
        (now, -1 if limit is None else limit),
    ).fetchall()
    return [name for (name,) in rows]


def delete_collection(conn: sqlite3.Connection, collection: str) -> list[float | None]:
    """Delete every row of ``collection``; return each one's expiry."""
    rows = conn.execute(
        "DELETE FROM entries WHERE collection = ? RETURNING expires_at", (collection,)
    ).fetchall()
    return [expires_at for (expires_at,) in rows]


def purge(conn: sqlite3.Connection, now: float) -> None:
    """Delete expired rows and give their pages back to the file system."""
    if conn.execute("DELETE FROM entries WHERE expires_at <= ?", (now,)).rowcount:
        conn.execute("PRAGMA incremental_vacuum")


def checkpoint(conn: sqlite3.Connection) -> None:
    """Copy the WAL into the database file as far as readers allow."""
    # PASSIVE never waits for readers or writers: it copies what it can and returns.
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


class transaction:
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


def code(exc: sqlite3.Error) -> int | None:
    """SQLite's primary result code of ``exc`` (None when the driver gave none)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF
