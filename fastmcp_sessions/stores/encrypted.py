"""Encryption over any store.

Each value is stored in the inner store as ``{"__encrypted__": "fernet-v1",
"ciphertext": "..."}``. Anything else found there (plaintext, another library's
envelope, a record copied from elsewhere) raises ``DecryptionError``: nothing is ever
passed through unencrypted. The atomic operations pass straight through, so they
stay atomic; versions are the inner store's.

Keys are checked when the store opens (its first operation), as the disk store does:
the inner store keeps a key-check record (collection ``fastmcp_sessions_key_check``,
hidden from ``collections()``) listing, by fingerprint, every key the data may be
encrypted with, each beside a constant encrypted with that key. A process whose keys
lack any listed key fails with ``KeyMismatchError`` naming the missing fingerprints
and its own, before it reads or writes anything, instead of failing value by value
later. A process whose newest key is not listed yet adds it (a rotation begins).
So a replica holding only an older key keeps working until some replica encrypts with
the new key, and is refused from then on; after ``rotate()`` the record lists the
newest key alone, and a replica without the old key is accepted.

Over a backend shared over the network (``Store.shared_over_network``: Redis,
MongoDB, DynamoDB...) no key file is ever created: the keys must come from ``keys=``
or env ``FASTMCP_SESSIONS_KEYS``, else ``MissingKeyError`` says how to make one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from cryptography.fernet import InvalidToken

from fastmcp_sessions import telemetry
from fastmcp_sessions.encryption import KEYS_ENV, FernetCodec, Keyring, load_keyring
from fastmcp_sessions.errors import DecryptionError, KeyMismatchError, StoreSetupError, key_ref
from fastmcp_sessions.stores._layers import layers
from fastmcp_sessions.stores.base import RotationProgress, Store, Value, Versioned

ENVELOPE_MARK = "__encrypted__"
ENVELOPE_VERSION = "fernet-v1"
KEY_CHECK_COLLECTION = "fastmcp_sessions_key_check"
KEY_CHECK_KEY = "key_check"
_KEY_CHECK_PLAIN = b"fastmcp-sessions key check"


def shared_over_network(store: Store) -> bool:
    """Whether ``store``, or the store it wraps (``.inner``, at any depth), lives on a shared server."""
    return any(type(layer).shared_over_network for layer in layers(store))


def key_check_record(keyring: Keyring, previous: Mapping[str, Any] | None = None) -> Value:
    """The key-check record listing ``keyring``'s newest key beside the keys of ``previous``.

    The record maps the fingerprint of every key the store's data may be encrypted
    with to a constant encrypted with that key (proof that the fingerprint is real).
    """
    keys = dict(_listed_keys(previous))
    keys[keyring.fingerprints[0]] = keyring.encrypt(_KEY_CHECK_PLAIN).decode("ascii")
    return {"keys": keys}


def _listed_keys(record: Mapping[str, Any] | None) -> dict[str, str]:
    keys = None if record is None else record.get("keys")
    if not isinstance(keys, dict):
        return {}
    return {fp: token for fp, token in keys.items() if isinstance(fp, str) and isinstance(token, str)}


def _opens(keyring: Keyring, token: str) -> bool:
    try:
        return keyring.decrypt(token.encode("ascii")) == _KEY_CHECK_PLAIN
    except (InvalidToken, TypeError, ValueError):
        return False


def check_key_record(record: Mapping[str, Any], keyring: Keyring, where: str) -> list[str]:
    """Return the fingerprints the record lists, once ``keyring`` is shown to hold every one of them.

    Raises ``KeyMismatchError``, naming the keys this process lacks and the keys it has
    (fingerprints only), when any listed key is not in ``keyring``: some of the data
    may be encrypted with it, so this process could not read it.
    """
    listed = _listed_keys(record)
    missing = [fp for fp, token in listed.items() if not _opens(keyring, token)] if listed else ["unknown"]
    if missing:
        in_use = ", ".join(keyring.fingerprints)
        raise KeyMismatchError(
            f"{where} is encrypted with key {', '.join(missing)}, which is not among the keys in use here "
            f"({in_use}, from {keyring.source}). Every replica must use the same keys: set {KEYS_ENV} to "
            "the keys the other replicas use (during a rotation: new,old). Nothing was read or written",
            stored=", ".join(missing),
            in_use=keyring.fingerprints,
        )
    return list(listed)


async def read_key_check(inner: Store) -> Value | None:
    """The key-check record kept in ``inner`` (``None`` when no encrypted store opened it yet)."""
    return await inner.get(KEY_CHECK_KEY, collection=KEY_CHECK_COLLECTION)


class EncryptedStore(Store):
    """Encrypts every value before it reaches ``inner`` and decrypts it on the way back.

    Args:
        inner: Any fastmcp-sessions store.
        keys: A ``Keyring``, Fernet keys (newest first), or ``None`` to use env
            ``FASTMCP_SESSIONS_KEYS`` and then the key file of ``app_name`` (never a key
            file when ``inner`` is shared over the network: ``MissingKeyError``).
        app_name: Names the key file's directory when keys come from it.
        key_check: Check the keys against the inner store's key-check record on the
            first operation (creating the record if there is none). Turn it off only
            to read without writing anything (``fastmcp-sessions doctor`` does).
        create_key: Create the key file with a new key if it is missing (default);
            ``False`` makes a missing key file a ``StoreSetupError``.
    """

    def __init__(
        self,
        inner: Store,
        *,
        keys: Keyring | Sequence[str | bytes] | str | None = None,
        app_name: str = "fastmcp",
        key_check: bool = True,
        create_key: bool = True,
    ) -> None:
        super().__init__(default_collection=inner.default_collection)
        self.inner = inner
        shared = repr(inner) if shared_over_network(inner) else None
        self.keyring = load_keyring(keys, app_name=app_name, shared_store=shared, create=create_key)
        self._codec = FernetCodec(self.keyring)
        self._key_check = key_check
        self._signed_by: str | None = None
        self._key_error: KeyMismatchError | None = None
        self._key_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"EncryptedStore({self.inner!r}, keys={list(self.keyring.fingerprints)})"

    # -- the key check ------------------------------------------------------------------

    async def verify_keys(self) -> str:
        """Check that the keys in use can open this store; return a fingerprint the record lists.

        Runs once (the first operation calls it). Creates the key-check record when there
        is none, and adds the newest key to it when it lists only older ones. Raises
        ``KeyMismatchError`` when the record lists a key the keyring lacks, and every
        later operation raises it again.
        """
        if self._key_error is not None:
            raise self._key_error
        if self._signed_by is not None:
            return self._signed_by
        async with self._key_lock:
            if self._key_error is not None:
                raise self._key_error
            if self._signed_by is None:
                self._signed_by = await self._check_or_create()
        return self._signed_by

    async def _check_or_create(self) -> str:
        newest = self.keyring.fingerprints[0]
        for _ in range(16):
            entry = await self.inner.get_versioned(KEY_CHECK_KEY, collection=KEY_CHECK_COLLECTION)
            if entry is None:
                fresh = key_check_record(self.keyring)
                if await self.inner.put_if_absent(KEY_CHECK_KEY, fresh, collection=KEY_CHECK_COLLECTION):
                    return newest
                continue  # another process created it first: check theirs
            try:
                listed = check_key_record(entry.value, self.keyring, repr(self.inner))
            except KeyMismatchError as exc:
                self._key_error = exc
                raise
            if newest in listed:
                return listed[0]
            # This process encrypts with a key the record does not list yet (a rotation has
            # begun): list it first, so that a replica without it is refused when it opens.
            announced = key_check_record(self.keyring, entry.value)
            if await self.inner.compare_and_set(
                KEY_CHECK_KEY, announced, version=entry.version, collection=KEY_CHECK_COLLECTION
            ):
                return newest
        raise StoreSetupError(
            f"the key-check record of {self.inner!r} kept changing while this store opened; retry, and "
            "check that nothing else rewrites the collection " + repr(KEY_CHECK_COLLECTION)
        )

    async def _resign_key_check(self) -> None:
        """After a rotation: list only the newest key (and keys other processes listed meanwhile
        that this ring lacks, whose data this rotation could not have touched)."""
        for _ in range(16):
            entry = await self.inner.get_versioned(KEY_CHECK_KEY, collection=KEY_CHECK_COLLECTION)
            others = {
                fp: token
                for fp, token in _listed_keys(None if entry is None else entry.value).items()
                if not _opens(self.keyring, token)
            }
            record = key_check_record(self.keyring, {"keys": others})
            if entry is None:
                done = await self.inner.put_if_absent(KEY_CHECK_KEY, record, collection=KEY_CHECK_COLLECTION)
            else:
                done = await self.inner.compare_and_set(
                    KEY_CHECK_KEY, record, version=entry.version, collection=KEY_CHECK_COLLECTION
                )
            if done:
                self._signed_by = self.keyring.fingerprints[0]
                return
        raise StoreSetupError(
            f"could not update the key-check record of {self.inner!r}; run the rotation again"
        )

    async def _call(self, method: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        if self._key_check and self._signed_by is None and not self._closed:
            await self.verify_keys()
        return await super()._call(method, *args)

    # -- values -------------------------------------------------------------------------

    def _seal(self, collection: str, key: str, value: Value) -> Value:
        token = self._codec.encode(collection, key, value)
        return {ENVELOPE_MARK: ENVELOPE_VERSION, "ciphertext": token.decode("ascii")}

    def _open(self, collection: str, key: str, stored: Value) -> Value:
        token = stored.get("ciphertext")
        if stored.get(ENVELOPE_MARK) != ENVELOPE_VERSION or not isinstance(token, str) or len(stored) != 2:
            telemetry.record_decryption_failure("not_encrypted")
            raise DecryptionError(
                f"the value at collection {collection!r}, key {key_ref(key)} is not encrypted by "
                "fastmcp-sessions (plaintext or foreign data); refusing to return it. Re-write it through "
                "this store, or migrate plaintext data with `fastmcp-sessions migrate`"
            )
        return self._codec.decode(collection, key, token.encode("ascii"))

    def _versioned(self, collection: str, key: str, entry: Versioned | None) -> Versioned | None:
        if entry is None:
            return None
        return Versioned(self._open(collection, key, entry.value), entry.version, entry.ttl)

    async def _get_versioned(self, collection: str, key: str) -> Versioned | None:
        return self._versioned(collection, key, await self.inner.get_versioned(key, collection=collection))

    async def _get_versioned_many(self, collection: str, keys: list[str]) -> list[Versioned | None]:
        pairs = await self.inner.ttl_many(keys, collection=collection)
        # ttl_many carries no version; versions are only needed by the atomic paths, which use _get_versioned.
        return [
            None if value is None else Versioned(self._open(collection, key, value), "", ttl)
            for key, (value, ttl) in zip(keys, pairs, strict=True)
        ]

    async def _put(self, collection: str, key: str, value: Value, ttl: float | None) -> None:
        await self.inner.put(key, self._seal(collection, key, value), collection=collection, ttl=ttl)

    async def _put_many(
        self, collection: str, keys: list[str], values: list[Value], ttl: float | None
    ) -> None:
        sealed = [self._seal(collection, k, v) for k, v in zip(keys, values, strict=True)]
        await self.inner.put_many(keys, sealed, collection=collection, ttl=ttl)

    async def _delete(self, collection: str, key: str) -> bool:
        return await self.inner.delete(key, collection=collection)

    async def _delete_many(self, collection: str, keys: list[str]) -> int:
        return await self.inner.delete_many(keys, collection=collection)

    async def _put_if_absent(self, collection: str, key: str, value: Value, ttl: float | None) -> bool:
        sealed = self._seal(collection, key, value)
        return await self.inner.put_if_absent(key, sealed, collection=collection, ttl=ttl)

    async def _compare_and_set(
        self, collection: str, key: str, value: Value, version: str, ttl: float | None
    ) -> bool:
        sealed = self._seal(collection, key, value)
        return await self.inner.compare_and_set(key, sealed, version=version, collection=collection, ttl=ttl)

    async def _delete_if_version(self, collection: str, key: str, version: str) -> bool:
        return await self.inner.delete_if_version(key, version, collection=collection)

    async def _keys(self, collection: str, limit: int | None) -> list[str]:
        return await self.inner.keys(collection, limit=limit)

    async def _collections(self, limit: int | None) -> list[str]:
        names = await self.inner.collections(limit=None if limit is None else limit + 1)
        names = [n for n in names if n != KEY_CHECK_COLLECTION]
        return names if limit is None else names[:limit]

    async def _destroy_collection(self, collection: str) -> bool:
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
        if self._key_check:
            await self.verify_keys()
        rewritten = 0
        for collection in await self._collections(None):
            keys = await self.inner.keys(collection)
            for start in range(0, len(keys), batch_size):
                batch = keys[start : start + batch_size]
                rewritten += sum(await asyncio.gather(*(self._rotate_one(collection, k) for k in batch)))
                if progress is not None:
                    progress(len(batch), collection)
        # Every entry is under the newest key now: the key check lists only that key, so a
        # process without it is refused from here on, and one without the old keys is not.
        await self._resign_key_check()
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
