"""One key policy for every entry point that finds keys beside a store.

``open_store`` (through the disk store), ``server_storage``'s OAuth keyring, the CLI
and ``rotate-key`` all ask here: a key file is created only while the store holds no
data yet; once it does, a missing key file is a ``MissingKeyError`` naming what to
restore, and nothing is created (a new key would make the data unreadable, and the
next process would report a key mismatch instead of the missing file).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from fastmcp_sessions.encryption import KEYS_ENV, Keyring, key_file_path, load_keyring
from fastmcp_sessions.stores._layers import layer_of
from fastmcp_sessions.stores.base import Store
from fastmcp_sessions.stores.disk import DiskStore, marker_path
from fastmcp_sessions.stores.encrypted import shared_over_network

__all__ = ["existing_data", "keyring_beside", "layer_of", "local_disk_store", "store_key_file"]


def local_disk_store(store: Store) -> DiskStore | None:
    """The disk store ``store`` is or wraps (through views and encryption layers), if any."""
    return layer_of(store, DiskStore)


def existing_data(store: Store) -> str | None:
    """What already holds this store's data on this machine (``"the database /path"``), or ``None``.

    Only a disk store keeps data between processes on this machine; a store on a server
    never uses a key file, and an in-memory store starts empty.
    """
    disk = local_disk_store(store)
    if disk is not None and (disk.path.exists() or marker_path(disk.path).exists()):
        return f"the database {disk.path}"
    return None


def store_key_file(store: Store, app_name: str) -> Path:
    """The key file the keys of ``store`` come from when neither ``keys=`` nor env give them."""
    disk = local_disk_store(store)
    return disk.key_file if disk is not None else key_file_path(app_name)


def keyring_beside(
    store: Store,
    keys: Keyring | Sequence[str | bytes] | str | None,
    *,
    app_name: str,
    what: str,
    env: str | None = None,
    env_names: Sequence[str] = (KEYS_ENV,),
) -> Keyring:
    """Keys for a part of ``store`` (``what`` names it): ``keys``, else env ``env``, else the
    store's keys (env ``FASTMCP_SESSIONS_KEYS``, then its key file, by the one policy)."""
    if keys is None and env is not None:
        given = os.environ.get(env, "").strip()
        if given:
            return Keyring(given.split(","), source=f"env {env}")
    return load_keyring(
        keys,
        app_name=app_name,
        key_file=store_key_file(store, app_name),
        shared_store=f"{what} on {store!r}" if shared_over_network(store) else None,
        env_names=env_names,
        encrypted_data=existing_data(store),
    )
