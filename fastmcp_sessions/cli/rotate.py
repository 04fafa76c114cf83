"""``fastmcp-sessions rotate-key``: re-encrypt every entry with the newest key, with progress.

It runs ``DiskStore.rotate()`` / ``EncryptedStore.rotate()`` with a progress bar: each
batch is its own transaction (disk) or a set of compare-and-set swaps (any other store),
so Ctrl-C loses nothing and running it again skips what is already under the newest key.
A concurrent write is never overwritten.
"""

from __future__ import annotations

import asyncio

from fastmcp_sessions.cli._common import CliError, CommandInterrupted, Console, Progress, Result, safe_url
from fastmcp_sessions.cli._stores import chosen_url, open_cli_store
from fastmcp_sessions.encryption import KEYS_ENV
from fastmcp_sessions.stores.base import Store
from fastmcp_sessions.stores.disk import DiskStore
from fastmcp_sessions.stores.encrypted import EncryptedStore


class NotEncryptedError(CliError):
    """``rotate-key`` on a store that is not encrypted."""


async def run_rotate(console: Console, url_arg: str | None, *, batch_size: int = 500) -> Result:
    """Re-encrypt the store ``url_arg`` (or the environment's) under the newest key."""
    if batch_size < 1:
        raise CliError("--batch-size must be at least 1", exit_code=2)
    url, reason = chosen_url(url_arg)
    console.redactor.add_url(url)
    store = open_cli_store(url)
    try:
        if isinstance(store, DiskStore):
            if not store.encryption:
                raise NotEncryptedError(
                    f"{safe_url(url)} is a plaintext disk store: there is nothing to rotate. To encrypt it, "
                    "copy it into an encrypted one: fastmcp-sessions migrate 'disk:///OLD?encryption=false' "
                    "disk:///NEW"
                )
            # Open the database first: a key check failure is reported before any work.
            await store.collections(limit=1)
            total = await _count(store)
            progress = console.progress("rotate-key", total)
            rewritten = await _rotate(store, progress, batch_size)
        elif isinstance(store, EncryptedStore):
            total = await _count(store.inner)
            progress = console.progress("rotate-key", total)
            rewritten = await _rotate(store, progress, batch_size)
        else:
            raise NotEncryptedError(
                f"{safe_url(url)} is not encrypted ({type(store).__name__}): there is nothing to rotate; "
                "add ?encryption=true to encrypt new writes, and migrate existing data into it"
            )
        progress.finish()
        keyring = store.keyring
        assert keyring is not None
        fingerprints = list(keyring.fingerprints)
    finally:
        await store.close()
    data = {
        "store": safe_url(url),
        "chosen_by": reason,
        "newest_key": fingerprints[0],
        "keys": fingerprints,
        "key_source": keyring.source,
        "entries": total,
        "rewritten": rewritten,
    }
    lines = [
        f"store       {safe_url(url)} ({reason})",
        f"keys        {', '.join(fingerprints)} (newest first, from {keyring.source})",
        f"re-encrypted {rewritten} of {total} entries with {fingerprints[0]}; the rest were already under it",
    ]
    if len(fingerprints) > 1:
        lines.append(
            f"every entry is now under {fingerprints[0]}: once every process runs with the new key first, "
            f"drop the older keys from {KEYS_ENV} (keep a backup of them until you are sure)"
        )
    return Result(data, "\n".join(lines))


async def _count(store: Store) -> int:
    total = 0
    for collection in await store.collections():
        total += len(await store.keys(collection))
    return total


async def _rotate(store: DiskStore | EncryptedStore, progress: Progress, batch_size: int) -> int:
    try:
        return await store.rotate(batch_size=batch_size, progress=progress.advance)
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise _interrupted(progress) from None


def _interrupted(progress: Progress) -> CommandInterrupted:
    progress.finish()
    return CommandInterrupted(
        f"interrupted after looking at {progress.done} entries; every finished batch is saved and nothing "
        "is half-written: run rotate-key again to finish"
    )
