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

__all__ = [
    "BaseKeyValueError",
    "ConflictError",
    "DecryptionError",
    "DeserializationError",
    "EncryptionError",
    "InvalidKeyError",
    "InvalidTTLError",
    "KeyValueOperationError",
    "KeyValueStoreError",
    "SerializationError",
    "StoreClosedError",
    "StoreConnectionError",
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


class StoreClosedError(KeyValueStoreError):
    """The store was used after ``close()``."""

    def __init__(self, store: str) -> None:
        super().__init__(f"{store} is closed; open a new store (or use it inside `async with`)")
