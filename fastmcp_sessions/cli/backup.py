"""``fastmcp-sessions backup FILE``: a consistent copy of a disk store while it stays in use.

Uses SQLite's online backup API (``DiskStore.backup``): other processes keep reading and
writing meanwhile. Never creates the store it copies; refuses to overwrite ``FILE``.
"""

from __future__ import annotations

from pathlib import Path

from fastmcp_sessions.cli._common import Result, UsageError, safe_url
from fastmcp_sessions.cli._stores import chosen_url, close_quietly, open_cli_store
from fastmcp_sessions.encryption import KEYS_ENV
from fastmcp_sessions.stores.base import Store
from fastmcp_sessions.stores.disk import DiskStore


async def run_backup(console: object, url_arg: str | None, target: Path) -> Result:
    """Copy the disk store ``url_arg`` (or the environment's) to the new file ``target``."""
    url, _ = chosen_url(url_arg)
    store: Store | None = None
    try:
        store = open_cli_store(url, read_only=True)
        if not isinstance(store, DiskStore):
            raise UsageError(
                f"{safe_url(url)} is not a disk store; back up a server store with the server's own tools, "
                "or copy it into a file with: fastmcp-sessions migrate URL disk:///path/backup.sqlite3"
            )
        dest = await store.backup(target)
        keyring = store.keyring
    finally:
        await close_quietly(store)
    size = dest.stat().st_size
    data = {
        "store": safe_url(url),
        "backup": str(dest),
        "bytes": size,
        "encrypted": keyring is not None,
        "key_source": None if keyring is None else keyring.source,
        "key_fingerprints": [] if keyring is None else list(keyring.fingerprints),
    }
    lines = [f"backed up {safe_url(url)} to {dest} ({size:,} bytes, mode 0600)"]
    if keyring is not None:
        lines.append(
            f"the copy is encrypted with {', '.join(keyring.fingerprints)} ({keyring.source}): keep that key "
            f"(the key file, or {KEYS_ENV}) with the backup, or it cannot be read"
        )
    lines.append("restore: see docs/disk.md#backup-and-restore")
    return Result(data, "\n".join(lines))
