"""Exceptions raised by fastmcp-sessions.

Every error is a member of py-key-value-aio's ``key_value.aio.errors`` family, so
code written against ``AsyncKeyValue`` (FastMCP included) handles ours unchanged.
The classes below only add what that family has no name for.
"""

from __future__ import annotations

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
    "EncryptionError",
    "EntryTooLargeError",
    "InvalidKeyError",
    "InvalidTTLError",
    "KeyValueOperationError",
    "KeyValueStoreError",
    "SerializationError",
    "StoreClosedError",
    "StoreConnectionError",
    "StoreCorruptedError",
    "StoreOptionError",
    "StoreSetupError",
    "ValueTooLargeError",
]


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
            extra_info={"collection": collection, "key": key, "attempts": attempts},
        )


class EntryTooLargeError(ValueTooLargeError, _KeyValueEntryTooLargeError):
    """An entry is larger than the backend can hold; raised before anything is sent.

    Both a ``ValueTooLargeError`` and py-key-value-aio's ``EntryTooLargeError``, so
    either ``except`` catches it.
    """

    def __init__(self, size: int, max_size: int, collection: str, key: str, advice: str) -> None:
        KeyValueOperationError.__init__(
            self,
            message=(
                f"the entry for key {key!r} in collection {collection!r} is about {size} bytes, over "
                f"the backend's limit of {max_size} bytes; {advice}"
            ),
            extra_info={"size": size, "max_size": max_size, "collection": collection, "key": key},
        )


class StoreClosedError(KeyValueStoreError):
    """The store was used after ``close()``."""

    def __init__(self, store: str) -> None:
        super().__init__(f"{store} is closed; open a new store (or use it inside `async with`)")


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
