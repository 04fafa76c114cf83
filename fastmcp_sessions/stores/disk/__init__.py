"""On-disk store: one SQLite file, WAL mode, encrypted by default.

Layout (see docs/disk.md)::

    entries(collection TEXT, key TEXT, value BLOB, expires_at REAL, version INTEGER,
            PRIMARY KEY (collection, key)) WITHOUT ROWID
    entries_expiry  index on expires_at (only rows that expire)
    meta(name TEXT PRIMARY KEY, value TEXT)     format, codec, key check, store id

Values are JSON, encrypted with Fernet unless ``encryption=False``; nothing is ever
pickled. Each operation is a single statement or an explicit ``BEGIN IMMEDIATE``
transaction, so several processes can share the file: writes are serialised by
SQLite's lock and the conditional statements make the atomic operations atomic
across processes too.

Where the work runs (``offload="auto"``, the default): a statement that cannot block
runs inline on the event loop, on a connection whose busy timeout is zero. WAL readers
never wait for a lock, and a write either gets the write lock at once or fails at once
with SQLITE_BUSY, having changed nothing; it is then handed to the store's worker
thread, whose own connection waits up to ``busy_timeout``. Everything that can take
long always runs on the worker: WAL checkpoints (the inline connection never
checkpoints), purges of expired rows, batches of more than ``_INLINE_ROWS`` rows, full
listings, rotation, backups, opening and closing, and every write under
``synchronous=FULL`` (each commit there waits for fsync). See docs/disk.md.
"""

from fastmcp_sessions.stores.disk._files import DB_FILE_NAME, default_path, marker_path, resolve_path
from fastmcp_sessions.stores.disk.store import DiskStore

__all__ = ["DB_FILE_NAME", "DiskStore", "default_path", "marker_path", "resolve_path"]
