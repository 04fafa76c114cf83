"""Encryption over any store.

Each value is stored in the inner store as ``{"__encrypted__": "fernet-v1",
"ciphertext": "..."}``. Anything else found there (plaintext, another library's
envelope, a record copied from elsewhere) raises ``DecryptionError``: nothing is ever
passed through unencrypted. The atomic operations pass straight through, so they
stay atomic; versions are the inner store's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fastmcp_sessions import telemetry
from fastmcp_sessions.encryption import FernetCodec, Keyring, load_keyring
from fastmcp_sessions.errors import DecryptionError
from fastmcp_sessions.stores.base import RotationProgress, Store, Value, Versioned

ENVELOPE_MARK = "__encrypted__"
ENVELOPE_VERSION = "fernet-v1"


class EncryptedStore(Store):
    """Encrypts every value before it reaches ``inner`` and decrypts it on the way back.

    Args:
        inner: Any fastmcp-sessions store.
        keys: A ``Keyring``, Fernet keys (newest first), or ``None`` to use env
            ``FASTMCP_SESSIONS_KEYS`` and then the key file of ``app_name``.
        app_name: Names the key file's directory when keys come from it.
    """

    def __init__(
        self,
        inner: Store,
        *,
        keys: Keyring | Sequence[str | bytes] | str | None = None,
        app_name: str = "fastmcp",
    ) -> None:
        super().__init__(default_collection=inner.default_collection)
        self.inner = inner
        self.keyring = load_keyring(keys, app_name=app_name)
        self._codec = FernetCodec(self.keyring)

    def __repr__(self) -> str:
        return f"EncryptedStore({self.inner!r}, keys={list(self.keyring.fingerprints)})"

    def _seal(self, collection: str, key: str, value: Value) -> Value:
        token = self._codec.encode(collection, key, value)
        return {ENVELOPE_MARK: ENVELOPE_VERSION, "ciphertext": token.decode("ascii")}

    def _open(self, collection: str, key: str, stored: Value) -> Value:
        token = stored.get("ciphertext")
        if stored.get(ENVELOPE_MARK) != ENVELOPE_VERSION or not isinstance(token, str) or len(stored) != 2:
            telemetry.record_decryption_failure("not_encrypted")
            raise DecryptionError(
                f"the value at collection {collection!r}, key {key!r} is not encrypted by fastmcp-sessions "
                "(plaintext or foreign data); refusing to return it. Re-write it through this store, or "
                "migrate plaintext data with `fastmcp-sessions migrate`"
            )
        return self._codec.decode(collection, key, token.encode("ascii"))

    def _versioned(self, collection: str, key: str, entry: Versioned | None) -> Versioned | None:
        if entry is None:
            return None
        return Versioned(self._open(collection, key, entry.value), entry.version, entry.ttl)

    async def _read(self, collection: str, key: str) -> Versioned | None:
        return self._versioned(collection, key, await self.inner.get_versioned(key, collection=collection))

    async def _read_many(self, collection: str, keys: list[str]) -> list[Versioned | None]:
        pairs = await self.inner.ttl_many(keys, collection=collection)
        # ttl_many carries no version; versions are only needed by the atomic paths, which use _read.
        return [
            None if value is None else Versioned(self._open(collection, key, value), "", ttl)
            for key, (value, ttl) in zip(keys, pairs, strict=True)
        ]

    async def _write(self, collection: str, key: str, value: Value, ttl: float | None) -> None:
        await self.inner.put(key, self._seal(collection, key, value), collection=collection, ttl=ttl)

    async def _write_many(
        self, collection: str, keys: list[str], values: list[Value], ttl: float | None
    ) -> None:
        sealed = [self._seal(collection, k, v) for k, v in zip(keys, values, strict=True)]
        await self.inner.put_many(keys, sealed, collection=collection, ttl=ttl)

    async def _remove(self, collection: str, key: str) -> bool:
        return await self.inner.delete(key, collection=collection)

    async def _remove_many(self, collection: str, keys: list[str]) -> int:
        return await self.inner.delete_many(keys, collection=collection)

    async def _insert(self, collection: str, key: str, value: Value, ttl: float | None) -> bool:
        sealed = self._seal(collection, key, value)
        return await self.inner.put_if_absent(key, sealed, collection=collection, ttl=ttl)

    async def _swap(self, collection: str, key: str, value: Value, version: str, ttl: float | None) -> bool:
        sealed = self._seal(collection, key, value)
        return await self.inner.compare_and_set(key, sealed, version=version, collection=collection, ttl=ttl)

    async def _remove_if_version(self, collection: str, key: str, version: str) -> bool:
        return await self.inner.delete_if_version(key, version, collection=collection)

    async def _list_keys(self, collection: str, limit: int | None) -> list[str]:
        return await self.inner.keys(collection, limit=limit)

    async def _list_collections(self, limit: int | None) -> list[str]:
        return await self.inner.collections(limit=limit)

    async def _drop_collection(self, collection: str) -> bool:
        return await self.inner.destroy_collection(collection)

    async def _cull(self) -> None:
        await self.inner.cull()

    async def _close(self) -> None:
        await self.inner.close()

    async def rotate(self, *, batch_size: int = 100, progress: RotationProgress | None = None) -> int:
        """Re-encrypt every entry not yet under the newest key; return how many were rewritten.

        Safe to interrupt and run again: each entry is swapped by compare-and-set, so a
        concurrent write is never overwritten with older data, and entries already under
        the newest key are skipped. ``progress(entries, collection)`` is called after
        each batch of up to ``batch_size`` entries (rotated concurrently).
        """
        rewritten = 0
        for collection in await self.inner.collections():
            keys = await self.inner.keys(collection)
            for start in range(0, len(keys), batch_size):
                batch = keys[start : start + batch_size]
                rewritten += sum(await asyncio.gather(*(self._rotate_one(collection, k) for k in batch)))
                if progress is not None:
                    progress(len(batch), collection)
        return rewritten

    async def _rotate_one(self, collection: str, key: str) -> int:
        entry = await self.inner.get_versioned(key, collection=collection)
        if entry is None:
            return 0
        token = entry.value.get("ciphertext")
        if isinstance(token, str) and self.keyring.is_current(token.encode("ascii")):
            return 0
        value = self._open(collection, key, entry.value)
        sealed = self._seal(collection, key, value)
        # An entry about to expire keeps a minimal lifetime rather than an invalid 0.
        ttl = None if entry.ttl is None else max(entry.ttl, 0.001)
        swapped = await self.inner.compare_and_set(
            key, sealed, version=entry.version, collection=collection, ttl=ttl
        )
        return int(swapped)
