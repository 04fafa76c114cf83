"""``fastmcp-sessions rotate-key``: re-encrypt every entry with the newest key, with progress.

It runs ``DiskStore.rotate()`` / ``EncryptedStore.rotate()`` with a progress bar: each
batch is its own transaction (disk) or a set of compare-and-set swaps (any other store),
so Ctrl-C loses nothing and running it again skips what is already under the newest key.
A concurrent write is never overwritten. The OAuth proxy storage of every FastMCP server
in the store (``server_storage``'s ``fastmcp/<name>/oauth`` part) is rotated too, with
the OAuth keys.

Where the keys come from decides the steps. From the key file (a local disk store without
``FASTMCP_SESSIONS_KEYS``): ``--new-key`` writes a new key first into the key file,
keeping the old ones, then re-encrypts; ``--drop-old`` removes the old keys from the file
once every entry is under the newest. The file is replaced atomically each time, so a
server started with the key file alone reads everything at every step. From the
environment: the operator puts the new key first there; a key file that servers started
without the variable would read is refused, with the command to run instead.
"""

from __future__ import annotations

import asyncio
import os
import shlex
from pathlib import Path

from fastmcp_sessions.cli._common import CliError, CommandInterrupted, Console, Progress, Result, safe_url
from fastmcp_sessions.cli._stores import chosen_url, close_quietly, open_cli_store
from fastmcp_sessions.encryption import (
    GENERATE_KEY_COMMAND,
    KEYS_ENV,
    Keyring,
    read_key_file,
    write_key_file,
)
from fastmcp_sessions.fastmcp import OAUTH_KEYS_ENV
from fastmcp_sessions.stores.base import Store
from fastmcp_sessions.stores.disk import DiskStore
from fastmcp_sessions.stores.encrypted import KEY_CHECK_COLLECTION, EncryptedStore
from fastmcp_sessions.stores.key_policy import keyring_beside, local_disk_store
from fastmcp_sessions.stores.namespaced import NamespacedStore
from fastmcp_sessions.stores.schemes import app_name_from_env

_OAUTH_PART = "/oauth/" + KEY_CHECK_COLLECTION


class NotEncryptedError(CliError):
    """``rotate-key`` on a store that is not encrypted."""


class KeyFileLeftBehindError(CliError):
    """``rotate-key`` with env keys on a store whose servers may read a key file instead."""


async def run_rotate(
    console: Console,
    url_arg: str | None,
    *,
    batch_size: int = 500,
    new_key: bool = False,
    drop_old: bool = False,
) -> Result:
    """Re-encrypt the store ``url_arg`` (or the environment's) under the newest key.

    ``new_key``: add a new key first to the key file the store's keys come from;
    ``drop_old``: afterwards, keep only the newest key in that file.
    """
    if batch_size < 1:
        raise CliError("--batch-size must be at least 1", exit_code=2)
    url, reason = chosen_url(url_arg)
    console.redactor.add_url(url)
    store = open_cli_store(url)
    try:
        key_file = _key_file_in_use(store, url, url_arg, new_key=new_key)
        if key_file is not None and new_key:
            # The key file must open the store before a new key joins it.
            await store.collections(limit=1)
            await store.close()
            write_key_file(key_file, [Keyring.generate_key(), *read_key_file(key_file)])
            store = open_cli_store(url)
        total, rewritten, keyring, servers = await _rotate_all(console, store, url, batch_size)
    finally:
        await close_quietly(store)
    if drop_old and key_file is not None and len(read_key_file(key_file)) > 1:
        # Only now: every entry, in the store and in each OAuth part, is under the newest key.
        write_key_file(key_file, [read_key_file(key_file)[0]])
    fingerprints = list(keyring.fingerprints)
    data = {
        "store": safe_url(url),
        "chosen_by": reason,
        "newest_key": fingerprints[0],
        "keys": fingerprints,
        "key_source": keyring.source,
        "key_file": None if key_file is None else str(key_file),
        "oauth_servers": servers,
        "entries": total,
        "rewritten": rewritten,
    }
    lines = [
        f"store       {safe_url(url)} ({reason})",
        f"keys        {', '.join(fingerprints)} (newest first, from {keyring.source})",
        f"re-encrypted {rewritten} of {total} entries with {fingerprints[0]}; the rest were already under it",
    ]
    if servers:
        lines.append(f"oauth       the OAuth proxy storage of {', '.join(servers)} is rotated as well")
    lines.append(_next_step(key_file, fingerprints, url_arg, drop_old=drop_old))
    return Result(data, "\n".join(line for line in lines if line))


def _key_file_in_use(store: Store, url: str | None, url_arg: str | None, *, new_key: bool) -> Path | None:
    """The key file the store's keys come from (``None``: from the environment or a server store).

    Refuses when keys come from the environment but a server started without it would read
    a key file: rotating would leave that file behind, and the server could no longer read.
    """
    disk = local_disk_store(store)
    if disk is None:
        if new_key:
            raise CliError(
                f"--new-key writes a key file, but {safe_url(url)} is on a server, whose keys come from "
                f"{KEYS_ENV} only: put a new key first there ({KEYS_ENV}=NEW,OLD; make NEW with "
                f"`{GENERATE_KEY_COMMAND}`) and run rotate-key again",
                exit_code=2,
            )
        return None
    key_file = disk.key_file
    if os.environ.get(KEYS_ENV, "").strip():
        if key_file.exists() or new_key:
            url_flag = "" if url_arg is None else f" --url {shlex.quote(url_arg)}"
            raise KeyFileLeftBehindError(
                f"the keys come from {KEYS_ENV}, but servers started without it (Claude Desktop, for "
                f"instance) read the key file {key_file}: rotating only the variable would leave that file "
                f"behind and strand them. Rotate the key file instead: env -u {KEYS_ENV} fastmcp-sessions "
                f"rotate-key{url_flag} --new-key; or, if every process sets {KEYS_ENV}, move the key file "
                f"away first: mv {shlex.quote(str(key_file))} {shlex.quote(str(key_file))}.bak"
            )
        return None
    if not key_file.exists():
        return None  # the store opens with the policy's own error (restore the key file)
    return key_file


async def _rotate_all(
    console: Console, store: Store, url: str | None, batch_size: int
) -> tuple[int, int, Keyring, list[str]]:
    """Rotate the store and every server's OAuth part; return entries, rewritten, keyring, servers."""
    encrypted = not isinstance(store, DiskStore) or store.encryption
    if isinstance(store, DiskStore) and encrypted:
        await store.collections(limit=1)  # open the database: a key failure is reported before any work
    servers = await _oauth_servers(store)
    if not servers and not isinstance(store, DiskStore | EncryptedStore):
        raise NotEncryptedError(
            f"{safe_url(url)} is not encrypted ({type(store).__name__}): there is nothing to rotate; "
            "add ?encryption=true to encrypt new writes, and migrate existing data into it"
        )
    if not servers and not encrypted:
        raise NotEncryptedError(
            f"{safe_url(url)} is a plaintext disk store: there is nothing to rotate. To encrypt it, "
            "copy it into an encrypted one: fastmcp-sessions migrate 'disk:///OLD?encryption=false' "
            "disk:///NEW"
        )
    total = rewritten = 0
    keyring: Keyring | None = None
    if isinstance(store, DiskStore | EncryptedStore) and encrypted:
        counted = store if isinstance(store, DiskStore) else store.inner
        n, done = await _rotate_one(console, "rotate-key", store, counted, batch_size)
        total, rewritten, keyring = total + n, rewritten + done, store.keyring
    for server in servers:
        view = NamespacedStore(store, f"fastmcp/{server}/oauth")
        oauth = EncryptedStore(view, keys=_oauth_keyring(store))
        n, done = await _rotate_one(console, f"rotate-key {server} oauth", oauth, view, batch_size)
        total, rewritten, keyring = total + n, rewritten + done, keyring or oauth.keyring
    assert keyring is not None
    return total, rewritten, keyring, servers


def _oauth_keyring(store: Store) -> Keyring:
    # The same keys server_storage gives the OAuth proxy storage of this store.
    return keyring_beside(
        store,
        None,
        app_name=app_name_from_env(),
        what="the OAuth proxy storage",
        env=OAUTH_KEYS_ENV,
        env_names=(OAUTH_KEYS_ENV, KEYS_ENV),
    )


async def _oauth_servers(store: Store) -> list[str]:
    """Names of the FastMCP servers whose encrypted OAuth proxy storage lives in ``store``."""
    names = []
    for collection in await store.collections():
        if collection.startswith("fastmcp/") and collection.endswith(_OAUTH_PART):
            names.append(collection[len("fastmcp/") : -len(_OAUTH_PART)])
    return sorted(names)


async def _rotate_one(
    console: Console, label: str, store: DiskStore | EncryptedStore, counted: Store, batch_size: int
) -> tuple[int, int]:
    total = await _count(counted)
    progress = console.progress(label, total)
    done = await _rotate(store, progress, batch_size)
    progress.finish()
    return total, done


def _next_step(key_file: Path | None, fingerprints: list[str], url_arg: str | None, *, drop_old: bool) -> str:
    url_flag = "" if url_arg is None else f" --url {shlex.quote(url_arg)}"
    if key_file is not None:
        kept = read_key_file(key_file)
        if len(kept) == 1:
            dropped = "; the older keys are dropped from it" if drop_old else ""
            return f"key file    {key_file} holds the newest key only{dropped}"
        return (
            f"key file    {key_file} holds {len(kept)} keys, newest first: restart every server so it "
            f"encrypts with the new key, then drop the old ones: fastmcp-sessions rotate-key{url_flag} "
            "--drop-old"
        )
    if len(fingerprints) > 1:
        return (
            f"every entry is now under {fingerprints[0]}: once every process runs with the new key first, "
            f"drop the older keys from {KEYS_ENV} (keep a backup of them until you are sure)"
        )
    return ""


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
