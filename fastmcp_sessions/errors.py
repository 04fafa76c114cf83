"""Exceptions raised by fastmcp-sessions.

Every error is a member of py-key-value-aio's ``key_value.aio.errors`` family, so
code written against ``AsyncKeyValue`` (FastMCP included) handles ours unchanged.
The classes below only add what that family has no name for.
"""

from __future__ import annotations

import hashlib

from key_value.aio.errors import (
    BaseKeyValueError,
    DecryptionError,
    DeserializationError,
    EncryptionError,
    InvalidKeyError,
    InvalidTTLError,
    KeyValueOperationError,
    KeyValueStoreError,
    SerializationError,
    StoreConnectionError,
    StoreSetupError,
    ValueTooLargeError,
)
from key_value.aio.errors import EntryTooLargeError as _KeyValueEntryTooLargeError

__all__ = [
    "BaseKeyValueError",
    "ConflictError",
    "DecryptionError",
    "DeserializationError",
    "DriverImportError",
    "EncryptionError",
    "EntryTooLargeError",
    "InvalidArgumentError",
    "InvalidKeyError",
    "InvalidTTLError",
    "KeyMismatchError",
    "KeyValueOperationError",
    "KeyValueStoreError",
    "MissingKeyError",
    "SerializationError",
    "StaleFencingTokenError",
    "StoreClosedError",
    "StoreConnectionError",
    "StoreCorruptedError",
    "StoreOptionError",
    "StoreSetupError",
    "ValueTooLargeError",
]


def key_ref(key: object) -> str:
    """How a message names a key: a short hash, never the key itself.

    Keys can be secrets (FastMCP stores authorization codes and client ids as keys), so
    no error message, log line or ``extra_info`` carries one. The same key always gives
    the same reference: ``fastmcp-sessions`` tools print it next to each key they list.
    """
    text = key if isinstance(key, str) else repr(key)
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


class ConflictError(KeyValueOperationError):
    """An optimistic ``update`` kept losing races and gave up.

    Raised after the configured number of attempts; the stored value is whatever the
    competing writers left, never a partial result of ours.
    """

    def __init__(self, collection: str, key: str, attempts: int) -> None:
        super().__init__(
            message=(
                f"update() gave up after {attempts} attempts because other writers kept changing "
                "the entry; retry later, lower contention on this key, or pass a larger max_attempts"
            ),
            extra_info={"collection": collection, "key": key_ref(key), "attempts": attempts},
        )


class DriverImportError(StoreSetupError, ImportError):
    """A backend's driver cannot be imported: not installed, too old, or broken.

    An ``ImportError`` too, so ``except ImportError`` keeps working. The message says
    which: the pip extra to install when the package is absent, otherwise the module or
    name that is missing, the version found and the version needed. ``name`` is the
    module that could not be imported.
    """

    def __init__(self, message: str, *, module: str | None = None) -> None:
        super().__init__(message)
        self.name = module


class EntryTooLargeError(ValueTooLargeError, _KeyValueEntryTooLargeError):
    """An entry is larger than the backend can hold; raised before anything is sent.

    Both a ``ValueTooLargeError`` and py-key-value-aio's ``EntryTooLargeError``, so
    either ``except`` catches it.
    """

    def __init__(self, size: int, max_size: int, collection: str, key: str, advice: str) -> None:
        KeyValueOperationError.__init__(
            self,
            message=(
                f"the entry for key {key_ref(key)} in collection {collection!r} is about {size} bytes, over "
                f"the backend's limit of {max_size} bytes; {advice}"
            ),
            extra_info={"size": size, "max_size": max_size, "collection": collection, "key": key_ref(key)},
        )


class InvalidArgumentError(KeyValueOperationError, ValueError):
    """An argument to an operation is out of range (a negative ``limit``, a fencing token that
    is not an int); raised before any I/O, so nothing was read or written.

    Also a ``ValueError``, as a bad argument is in plain Python.
    """


class StoreClosedError(KeyValueStoreError):
    """The store was used after ``close()``."""

    def __init__(self, store: str) -> None:
        super().__init__(f"{store} is closed; open a new store (or use it inside `async with`)")


class StaleFencingTokenError(KeyValueOperationError):
    """A fenced write carried a fencing token lower than one already written for its lock.

    The writer lost its lock (its lease ran out, for instance while it was paused) and
    a later holder has written since; nothing was written.
    """

    def __init__(self, collection: str, key: str, lock: str, token: int, highest: int) -> None:
        super().__init__(
            message=(
                f"refused a write to key {key_ref(key)} in collection {collection!r}: it carries fencing "
                f"token {token} of lock {lock!r}, but token {highest} has already written there, so this "
                "holder lost the lock (its lease ran out). Nothing was written; acquire the lock again and "
                "re-read the value before writing"
            ),
            extra_info={
                "collection": collection,
                "key": key_ref(key),
                "lock": lock,
                "token": token,
                "highest": highest,
            },
        )


class MissingKeyError(StoreSetupError):
    """An encrypted store shared over the network was opened without keys.

    A key file would be local to one machine, so each replica would make its own key
    and none could read the others' data: the keys must be given.
    """


class KeyMismatchError(StoreSetupError, DecryptionError):
    """The store's data was encrypted with a key that is not among the keys in use.

    Raised when the store opens, before anything is read or written; also a
    ``DecryptionError``, so code that catches that keeps working.

    ``stored`` is the fingerprint of the key that wrote the store's key-check record,
    ``in_use`` the fingerprints of this process's keys (newest first); both are short
    non-secret hashes.
    """

    def __init__(self, message: str, *, stored: str, in_use: tuple[str, ...]) -> None:
        super().__init__(message)
        self.stored = stored
        self.in_use = in_use


class StoreCorruptedError(KeyValueStoreError):
    """The store's file is damaged, emptied or gone while a marker shows it existed.

    Never retried and never answered around: a damaged database can return wrong
    answers, so the store refuses to read or write it. The message names the file and
    how to restore it from a backup.
    """

    def __init__(self, path: str, problem: str, *, marker: str | None = None) -> None:
        steps = (
            f"stop every process using it, then restore it from a backup (`fastmcp-sessions backup` makes "
            f"one): copy the backup over {path} and delete {path}-wal and {path}-shm if present; "
            "see docs/disk.md#backup-and-restore"
        )
        if marker is not None:
            steps += f". If you removed it on purpose and want a new, empty store, delete {marker} too"
        super().__init__(message=f"the database {path} {problem}; {steps}")
        self.path = path


class StoreOptionError(StoreSetupError, ValueError):
    """A store option is out of range; raised when the store is built, before any I/O.

    Also a ``ValueError``, as a bad argument is in plain Python.
    """
