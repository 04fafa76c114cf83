"""The store contract: one abstract base that every backend implements.

A store is a py-key-value-aio ``AsyncKeyValue`` (so FastMCP accepts it in every slot
that takes storage) plus listing, culling and the atomic operations FastMCP's own
protocol lacks: put-if-absent, versioned reads, compare-and-set, delete-if-version
and a retrying read-modify-write ``update``.

The public methods here validate their arguments once and translate driver errors;
a backend implements the underscore methods, which receive validated input:
``collection`` and ``key`` are valid names, ``ttl`` is ``None`` or positive finite
seconds, and a value is a private, validated copy.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, SupportsFloat

from fastmcp_sessions import telemetry
from fastmcp_sessions._closing import AsyncClosing
from fastmcp_sessions._retry import Retries
from fastmcp_sessions._values import (
    DEFAULT_COLLECTION,
    check_collection,
    check_key,
    check_ttl,
    clone,
    copy_value,
)
from fastmcp_sessions.errors import (
    BaseKeyValueError,
    ConflictError,
    InvalidArgumentError,
    InvalidKeyError,
    SerializationError,
    StoreClosedError,
    StoreConnectionError,
)
from fastmcp_sessions.stores.fencing import check_token, fenced

Value = dict[str, Any]
RotationProgress = Callable[[int, str], object]
"""Called by ``rotate()`` after each batch with (entries looked at, collection)."""
UpdateFn = Callable[[Value | None], "Mapping[str, Any] | Awaitable[Mapping[str, Any] | None] | None"]


@dataclass(frozen=True, slots=True)
class Versioned:
    """A stored value together with its version and remaining lifetime.

    ``version`` is opaque: compare it only for equality, and pass it back to
    ``compare_and_set`` or ``delete_if_version``. It changes on every write, so a
    key that was deleted and written again never reuses an old version.
    """

    value: Value
    version: str
    ttl: float | None


class Store(AsyncClosing, ABC):
    """Base class of every fastmcp-sessions store.

    Subclasses declare the URL schemes they serve in ``url_schemes`` and build
    themselves from a URL in ``from_url``; ``open_store`` picks the backend by scheme.
    """

    url_schemes: ClassVar[tuple[str, ...]] = ()
    """URL schemes this backend serves, e.g. ``("redis", "rediss")``."""

    pip_extra: ClassVar[str | None] = None
    """The ``pip install fastmcp-sessions[...]`` extra this backend needs, if any."""

    handles_encryption: ClassVar[bool] = False
    """True when the backend takes ``encryption=`` itself (the disk store)."""

    shared_over_network: ClassVar[bool] = False
    """True when the data lives on a server that several machines (replicas) share.

    An ``EncryptedStore`` over such a backend never creates a local key file: every
    replica must be given the same keys (``keys=`` or env ``FASTMCP_SESSIONS_KEYS``).
    """

    driver_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    """Every driver exception this backend can raise. ``_call`` catches them, the one place
    errors are translated: ``_translate_error`` turns each into a typed error of ours."""

    update_attempts: int = 32
    """How many times ``update`` retries a lost race before raising ``ConflictError``."""

    db_system_name: ClassVar[str | None] = None
    """The OpenTelemetry ``db.system.name`` of this backend's spans and metrics (default:
    its first URL scheme). A store wrapping another (``inner``) reports the inner one's."""

    instrumented_fast_paths: ClassVar[tuple[str, ...]] = ()
    """Public operations this class overrides and instruments itself (by calling the base
    method while ``telemetry.SWITCH.on``); every other override is wrapped for telemetry."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for scheme in cls.__dict__.get("url_schemes", ()):
            register_backend(scheme, cls)
        telemetry.instrument_overrides(cls, cls.__dict__.get("instrumented_fast_paths", ()))

    def __init__(self, *, default_collection: str | None = None) -> None:
        self.default_collection = (
            DEFAULT_COLLECTION if default_collection is None else check_collection(default_collection)
        )
        self._closed = False
        self._telemetry: dict[str, Any] | None = None
        telemetry.refresh()

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Store:
        """Build a store of this backend from ``url`` (one of ``url_schemes``) and options."""
        raise NotImplementedError(f"{cls.__name__} cannot be built from a URL")

    # -- the AsyncKeyValue protocol -----------------------------------------------------

    @telemetry.store_operation("get")
    async def get(self, key: str, *, collection: str | None = None) -> Value | None:
        """Return the value stored at ``key``, or ``None`` if it is missing or expired."""
        entry = await self._call(self._get_versioned, self._resolve_collection(collection), check_key(key))
        return None if entry is None else entry.value

    @telemetry.store_operation("ttl")
    async def ttl(self, key: str, *, collection: str | None = None) -> tuple[Value | None, float | None]:
        """Return ``(value, remaining seconds)``; ``(value, None)`` when it never expires,
        ``(None, None)`` when it is missing."""
        entry = await self._call(self._get_versioned, self._resolve_collection(collection), check_key(key))
        return (None, None) if entry is None else (entry.value, entry.ttl)

    @telemetry.store_operation("put")
    async def put(
        self,
        key: str,
        value: Mapping[str, Any],
        *,
        collection: str | None = None,
        ttl: SupportsFloat | None = None,
    ) -> None:
        """Store ``value`` at ``key``, replacing what was there, expiring after ``ttl`` seconds."""
        c, k, seconds = self._resolve_collection(collection), check_key(key), check_ttl(ttl)
        await self._call(self._put, c, k, copy_value(value), seconds)

    @telemetry.store_operation("delete")
    async def delete(self, key: str, *, collection: str | None = None) -> bool:
        """Delete ``key``; return whether a live entry was there."""
        return bool(await self._call(self._delete, self._resolve_collection(collection), check_key(key)))

    @telemetry.store_operation("get_many")
    async def get_many(self, keys: Sequence[str], *, collection: str | None = None) -> list[Value | None]:
        """Return the values of ``keys`` in order, ``None`` for each missing one."""
        entries = await self._call(
            self._get_versioned_many, self._resolve_collection(collection), self._keys_arg(keys)
        )
        return [None if e is None else e.value for e in entries]

    @telemetry.store_operation("ttl_many")
    async def ttl_many(
        self, keys: Sequence[str], *, collection: str | None = None
    ) -> list[tuple[Value | None, float | None]]:
        """Return ``(value, remaining seconds)`` for each of ``keys``, in order."""
        entries = await self._call(
            self._get_versioned_many, self._resolve_collection(collection), self._keys_arg(keys)
        )
        return [(None, None) if e is None else (e.value, e.ttl) for e in entries]

    @telemetry.store_operation("put_many")
    async def put_many(
        self,
        keys: Sequence[str],
        values: Sequence[Mapping[str, Any]],
        *,
        collection: str | None = None,
        ttl: SupportsFloat | None = None,
    ) -> None:
        """Store each value at its key (all with the same ``ttl``), as one batch where the backend allows."""
        c, ks, seconds = self._resolve_collection(collection), self._keys_arg(keys), check_ttl(ttl)
        if isinstance(values, Mapping) or len(values) != len(ks):
            raise SerializationError("put_many needs a sequence of values, exactly one per key")
        await self._call(self._put_many, c, ks, [copy_value(v) for v in values], seconds)

    @telemetry.store_operation("delete_many")
    async def delete_many(self, keys: Sequence[str], *, collection: str | None = None) -> int:
        """Delete ``keys``; return how many live entries were deleted."""
        return int(
            await self._call(self._delete_many, self._resolve_collection(collection), self._keys_arg(keys))
        )

    # -- listing and housekeeping -------------------------------------------------------

    @telemetry.store_operation("keys")
    async def keys(self, collection: str | None = None, limit: int | None = None) -> list[str]:
        """Return the live keys of ``collection`` (all of them unless ``limit`` is given; a
        ``limit`` of 2**31 - 1 or more means all)."""
        return list(await self._call(self._keys, self._resolve_collection(collection), _check_limit(limit)))

    @telemetry.store_operation("collections")
    async def collections(self, limit: int | None = None) -> list[str]:
        """Return the names of the collections that hold at least one live entry."""
        return list(await self._call(self._collections, _check_limit(limit)))

    @telemetry.store_operation("destroy_collection")
    async def destroy_collection(self, collection: str) -> bool:
        """Delete every entry of ``collection``; return whether it held any."""
        return bool(await self._call(self._destroy_collection, check_collection(collection)))

    @telemetry.store_operation("cull")
    async def cull(self) -> None:
        """Delete expired entries now and reclaim their space (stores also do this on their own)."""
        await self._call(self._cull)

    async def close(self) -> None:
        """Release connections and threads. Idempotent; the store is unusable afterwards."""
        if not self._closed:
            self._closed = True
            await self._close()

    # -- atomic operations --------------------------------------------------------------

    @telemetry.store_operation("put_if_absent")
    async def put_if_absent(
        self,
        key: str,
        value: Mapping[str, Any],
        *,
        collection: str | None = None,
        ttl: SupportsFloat | None = None,
    ) -> bool:
        """Store ``value`` only if ``key`` holds no live entry; return whether it was stored.

        Atomic across processes: of any number of concurrent callers exactly one wins.
        """
        c, k, seconds = self._resolve_collection(collection), check_key(key), check_ttl(ttl)
        return bool(await self._call(self._put_if_absent, c, k, copy_value(value), seconds))

    @telemetry.store_operation("get_versioned")
    async def get_versioned(self, key: str, *, collection: str | None = None) -> Versioned | None:
        """Return the value with its opaque version and remaining TTL, or ``None``."""
        result: Versioned | None = await self._call(
            self._get_versioned, self._resolve_collection(collection), check_key(key)
        )
        return result

    @telemetry.store_operation("compare_and_set")
    async def compare_and_set(
        self,
        key: str,
        value: Mapping[str, Any],
        *,
        version: str,
        collection: str | None = None,
        ttl: SupportsFloat | None = None,
    ) -> bool:
        """Replace the entry only if its version is still ``version``; return whether it did.

        Fails (returns ``False``) when the entry changed, was deleted or expired since
        ``version`` was read.
        """
        c, k, seconds = self._resolve_collection(collection), check_key(key), check_ttl(ttl)
        if not isinstance(version, str):
            return False
        return bool(await self._call(self._compare_and_set, c, k, copy_value(value), version, seconds))

    @telemetry.store_operation("delete_if_version")
    async def delete_if_version(self, key: str, version: str, *, collection: str | None = None) -> bool:
        """Delete the entry only if its version is still ``version``; return whether it did."""
        c, k = self._resolve_collection(collection), check_key(key)
        if not isinstance(version, str):
            return False
        return bool(await self._call(self._delete_if_version, c, k, version))

    @telemetry.store_operation("update")
    async def update(
        self,
        key: str,
        fn: UpdateFn,
        *,
        collection: str | None = None,
        ttl: SupportsFloat | None = None,
        max_attempts: int | None = None,
    ) -> Value | None:
        """Atomically replace the value at ``key`` with ``fn(current)``; return the new value.

        ``fn`` receives a private copy of the current value (``None`` when absent) and
        returns the new mapping, or ``None`` to delete the entry; it may be a coroutine
        function. It can run more than once, so it must not have side effects. With
        ``ttl=None`` an existing entry keeps its remaining lifetime. When other writers
        win the race ``max_attempts`` times in a row, ``ConflictError`` is raised and
        nothing of ours was written.
        """
        c, k, seconds = self._resolve_collection(collection), check_key(key), check_ttl(ttl)
        attempts = self.update_attempts if max_attempts is None else max_attempts
        # Each lost race backs off with jitter so that competing writers spread out.
        async for attempt in Retries(attempts, first=0.001, cap=0.05):
            if attempt:
                telemetry.record_retry("store.update")
            current: Versioned | None = await self._call(self._get_versioned, c, k)
            result = fn(None if current is None else clone(current.value))
            if inspect.isawaitable(result):
                result = await result
            if result is None:
                if current is None or await self._call(self._delete_if_version, c, k, current.version):
                    return None
            else:
                new = copy_value(result)
                if current is None:
                    if await self._call(self._put_if_absent, c, k, new, seconds):
                        return clone(new)
                else:
                    # An entry about to expire keeps a minimal lifetime rather than an invalid 0.
                    keep = (
                        seconds
                        if seconds is not None
                        else None
                        if current.ttl is None
                        else max(current.ttl, 0.001)
                    )
                    if await self._call(self._compare_and_set, c, k, new, current.version, keep):
                        return clone(new)
        telemetry.record_conflict("store.update")
        raise ConflictError(c, k, attempts)

    @telemetry.store_operation("put_fenced")
    async def put_fenced(
        self,
        key: str,
        value: Mapping[str, Any],
        *,
        lock: str,
        token: int,
        collection: str | None = None,
        ttl: SupportsFloat | None = None,
    ) -> None:
        """Store ``value`` unless a write with a higher fencing token of ``lock`` landed first.

        ``token`` is the holder's ``Lock.fencing_token``. The record keeps the highest
        token written per lock in its reserved field ``__fences__`` (readers see it), so
        the check and the write are one compare-and-set: atomic on every backend. A
        lower token raises ``StaleFencingTokenError`` and writes nothing; an equal one
        (the same holder again) is accepted. Every writer of a fenced record should use
        this method, since a plain ``put`` replaces the fences too.
        """
        c, k, seconds = self._resolve_collection(collection), check_key(key), check_ttl(ttl)
        lock, token = check_token(lock, token)
        new_value = copy_value(value)
        async for _ in Retries(self.update_attempts, first=0.001, cap=0.05):
            current: Versioned | None = await self._call(self._get_versioned, c, k)
            old = None if current is None else current.value
            record = fenced(old, new_value, lock=lock, token=token, collection=c, key=k)
            if current is None:
                done = await self._call(self._put_if_absent, c, k, record, seconds)
            else:
                done = await self._call(self._compare_and_set, c, k, record, current.version, seconds)
            if done:
                return
        raise ConflictError(c, k, self.update_attempts)

    # -- helpers ------------------------------------------------------------------------

    def _resolve_collection(self, collection: str | None) -> str:
        return self.default_collection if collection is None else check_collection(collection)

    @staticmethod
    def _keys_arg(keys: Sequence[str]) -> list[str]:
        if isinstance(keys, str):
            raise InvalidKeyError("pass a list of keys, not a single str")
        return [check_key(k) for k in keys]

    async def _call(self, method: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run one backend operation; the single place driver errors become ours.

        A backend declares ``driver_errors`` and overrides the three hooks below as it
        needs; none catches driver exceptions itself.
        """
        if self._closed:
            raise StoreClosedError(repr(self))
        try:
            return await method(*args)
        except self.driver_errors as exc:
            if not self._recover(exc):
                raise self._raised(exc) from exc
        try:
            return await method(*args)  # once more, after the backend repaired what it could
        except self.driver_errors as exc:
            raise self._raised(exc) from exc

    def _raised(self, exc: BaseException) -> BaseKeyValueError:
        error = self._translate_error(exc)
        if isinstance(error, StoreConnectionError):
            self._connection_lost()
        return error

    def _translate_error(self, exc: BaseException) -> BaseKeyValueError:
        """The typed error to raise for the driver error ``exc`` (default: the backend is
        unreachable). Override to map the backend's other failures; keep advice in the
        message, never a secret or a raw key."""
        return self._connection_error(exc)

    def _recover(self, exc: BaseException) -> bool:
        """Repair what ``exc`` says is missing (a table dropped under us) and return True
        to run the operation once more; the default repairs nothing."""
        return False

    def _connection_lost(self) -> None:
        """Called when an operation failed because the backend was unreachable: forget
        what may not hold when it comes back (a restored server may lack our table)."""

    def _telemetry_server(self) -> tuple[str | None, int | None]:
        """``(server.address, server.port)`` for telemetry: host and port only, never
        credentials (override in backends that talk to a server)."""
        return None, None

    def _telemetry_attributes(self) -> dict[str, Any]:
        """The attributes every span and duration sample of this store carries (cached)."""
        if getattr(self, "_telemetry", None) is None:
            inner = getattr(self, "inner", None)
            if isinstance(inner, Store):
                self._telemetry = inner._telemetry_attributes()
            else:
                fallback = self.url_schemes[0] if self.url_schemes else type(self).__name__
                system = self.db_system_name or fallback
                try:
                    address, port = self._telemetry_server()
                except Exception:  # telemetry must never break a store call
                    address, port = None, None
                self._telemetry = telemetry.server_attributes(system, address, port)
        assert self._telemetry is not None
        return self._telemetry

    def _telemetry_chain(self) -> frozenset[int]:
        """Ids of this store and the stores it wraps: one public call, one span."""
        chain: set[int] = set()
        store: object = self
        while isinstance(store, Store) and id(store) not in chain:
            chain.add(id(store))
            store = getattr(store, "inner", None)
        return frozenset(chain)

    def _connection_error(self, exc: BaseException) -> StoreConnectionError:
        """``StoreConnectionError`` for a backend that cannot be reached (override to add
        advice that fits the backend)."""
        return StoreConnectionError(
            f"{self!r} could not be reached ({type(exc).__name__}: {exc}); check that the server is "
            "running and reachable, then retry: the store reconnects on its own"
        )

    # -- what a backend implements ------------------------------------------------------

    @abstractmethod
    async def _get_versioned(self, collection: str, key: str) -> Versioned | None:
        """The live entry at (collection, key), or ``None``. ``value`` must be a private copy."""

    async def _get_versioned_many(self, collection: str, keys: list[str]) -> list[Versioned | None]:
        return [await self._get_versioned(collection, k) for k in keys]

    @abstractmethod
    async def _put(self, collection: str, key: str, value: Value, ttl: float | None) -> None:
        """Unconditionally store ``value`` with a fresh version."""

    async def _put_many(
        self, collection: str, keys: list[str], values: list[Value], ttl: float | None
    ) -> None:
        for k, v in zip(keys, values, strict=True):
            await self._put(collection, k, v, ttl)

    @abstractmethod
    async def _delete(self, collection: str, key: str) -> bool:
        """Delete the entry; True if a live one was there."""

    async def _delete_many(self, collection: str, keys: list[str]) -> int:
        return sum([await self._delete(collection, k) for k in dict.fromkeys(keys)])

    @abstractmethod
    async def _put_if_absent(self, collection: str, key: str, value: Value, ttl: float | None) -> bool:
        """Store ``value`` only if no live entry exists (an expired one counts as absent)."""

    @abstractmethod
    async def _compare_and_set(
        self, collection: str, key: str, value: Value, version: str, ttl: float | None
    ) -> bool:
        """Replace the live entry only if its version equals ``version``."""

    @abstractmethod
    async def _delete_if_version(self, collection: str, key: str, version: str) -> bool:
        """Delete the live entry only if its version equals ``version``."""

    @abstractmethod
    async def _keys(self, collection: str, limit: int | None) -> list[str]:
        """Live keys of ``collection``, at most ``limit``."""

    @abstractmethod
    async def _collections(self, limit: int | None) -> list[str]:
        """Collections holding at least one live entry, at most ``limit``."""

    @abstractmethod
    async def _destroy_collection(self, collection: str) -> bool:
        """Delete every entry of ``collection``."""

    async def _cull(self) -> None:
        """Delete expired entries (backends whose server expires entries need nothing here)."""

    async def _close(self) -> None:
        """Release resources."""


_BACKENDS: dict[str, type[Store]] = {}


def register_backend(scheme: str, cls: type[Store]) -> None:
    """Make ``open_store`` build ``cls`` for URLs with ``scheme`` (subclasses declaring
    ``url_schemes`` are registered on their own)."""
    _BACKENDS[scheme.lower()] = cls


def registered_backends() -> dict[str, type[Store]]:
    """A copy of the scheme table: every registered URL scheme and the class serving it."""
    return dict(_BACKENDS)


_NO_LIMIT = 2**31 - 1
"""Limits at or above this mean "all": no store holds that many keys, and backends cap theirs lower."""


def _check_limit(limit: int | None) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise InvalidArgumentError(f"limit must be a non-negative int or None, got {limit!r}")
    return None if limit >= _NO_LIMIT else int(limit)
