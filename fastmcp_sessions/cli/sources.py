"""Where ``migrate`` reads from: our stores, py-key-value-aio's, and FastMCP's OAuth proxy default.

Every source lists collections and keys and reads ``(value, remaining ttl)`` pairs. Our
stores list everything themselves. py-key-value-aio's stores list keys on some backends
only, so each supported one gets an enumerator here:

* ``kv+disk:///dir``: its ``DiskStore`` (diskcache); keys are ``collection::key`` in the cache.
* ``kv+filetree:///dir``: its ``FileTreeStore`` with the V1 sanitization FastMCP uses;
  collection names come from the ``*-info.json`` files, keys from file names. A key
  that had to be sanitized (file name ``S_...``) is recovered from the value: the
  string field whose sanitized form is the file name.
* ``kv+redis://...`` / ``kv+rediss://...``: its ``RedisStore``; keys by ``SCAN``.
* ``kv+postgresql://...`` / ``kv+postgres://...``: its ``PostgreSQLStore`` (``?table=`` names
  its table, default ``kv_store``); collections and keys by SQL on its own table.
* any other py-key-value store object with ``keys()`` (``KvSource``): through that protocol.
* ``+fernet`` anywhere in the scheme (``kv+fernet+disk://``) decrypts
  ``FernetEncryptionWrapper`` values; ``?key_env=VAR`` (or ``?key=...``) gives the key.
* ``fastmcp-oauth-proxy://`` is the encrypted FileTreeStore FastMCP's ``OAuthProxy``
  creates when it gets no ``client_storage``; ``?jwt_signing_key_env=VAR`` or
  ``?client_secret_env=VAR`` derives its key and directory exactly as FastMCP does.
"""

from __future__ import annotations

import json
import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from fastmcp_sessions.cli._common import UsageError, safe_url
from fastmcp_sessions.stores._url import replace_query
from fastmcp_sessions.stores.base import Store
from fastmcp_sessions.stores.redis.encoding import glob_escape

KV_PAGE_LIMIT = 10_000
"""py-key-value-aio stores return at most this many keys from one ``keys()`` call."""

ReadResult = tuple[dict[str, Any] | None, float | None]


class SourceError(UsageError):
    """A migration source that cannot be opened or listed; the message says what to pass instead."""

    exit_code = 1


class Source(ABC):
    """A store ``migrate`` copies from."""

    label: str = ""
    """How to name this source in output (secrets redacted)."""

    lists_collections: bool = True
    """False when the source cannot enumerate its collections (then ``--collection`` or FastMCP's)."""

    problems: list[str]
    """Entries that could not be listed (e.g. a key that cannot be recovered), for the report."""

    def __init__(self) -> None:
        self.problems = []

    @abstractmethod
    async def collections(self) -> list[str]:
        """Every collection with at least one entry."""

    @abstractmethod
    async def keys(self, collection: str) -> list[str]:
        """Every key of ``collection``."""

    @abstractmethod
    async def read(self, collection: str, keys: Sequence[str]) -> list[ReadResult]:
        """``(value, remaining seconds or None)`` per key; ``(None, None)`` when gone."""

    async def close(self) -> None:
        """Release connections and files."""


class StoreSource(Source):
    """One of our stores (any ``open_store`` URL)."""

    def __init__(self, store: Store, label: str) -> None:
        super().__init__()
        self.store = store
        self.label = label

    async def collections(self) -> list[str]:
        """Every collection with a live entry."""
        return await self.store.collections()

    async def keys(self, collection: str) -> list[str]:
        """Every live key of ``collection``."""
        return await self.store.keys(collection)

    async def read(self, collection: str, keys: Sequence[str]) -> list[ReadResult]:
        """Values with their remaining TTLs."""
        return await self.store.ttl_many(list(keys), collection=collection)

    async def close(self) -> None:
        """Close the store."""
        await self.store.close()


# -- py-key-value-aio sources ------------------------------------------------------------


class KvSource(Source):
    """A py-key-value-aio store (``kv``: the store, possibly wrapped in Fernet; ``inner``: the store)."""

    def __init__(self, kv: Any, inner: Any, label: str, decryptor: Any | None) -> None:
        super().__init__()
        self.kv = kv
        self.inner = inner
        self.label = label
        self.decryptor = decryptor
        self.lists_collections = callable(getattr(inner, "collections", None))

    async def collections(self) -> list[str]:
        """The store's own ``collections()``, where it has one."""
        if not self.lists_collections:
            raise SourceError(f"{self.label} cannot list its collections; pass --collection NAME")
        names: list[str] = await self.inner.collections(limit=KV_PAGE_LIMIT)
        return sorted(names)

    async def keys(self, collection: str) -> list[str]:
        """The store's own ``keys()``; refuses to guess when a page may be truncated."""
        lister = getattr(self.inner, "keys", None)
        if not callable(lister):
            raise SourceError(
                f"{self.label} ({type(self.inner).__name__}) cannot list its keys, so it cannot be "
                "migrated key by key; supported py-key-value sources: kv+disk://, kv+filetree://, "
                "kv+redis://, kv+postgresql://"
            )
        keys: list[str] = await lister(collection, limit=KV_PAGE_LIMIT)
        if len(keys) >= KV_PAGE_LIMIT:
            raise SourceError(
                f"{self.label}: collection {collection!r} has at least {KV_PAGE_LIMIT} keys, more than "
                f"{type(self.inner).__name__}.keys() returns at once; migrate it with a dedicated source"
            )
        return sorted(keys)

    async def read(self, collection: str, keys: Sequence[str]) -> list[ReadResult]:
        """Values (decrypted when the source is Fernet-wrapped) with their remaining TTLs."""
        results: list[ReadResult] = await self.kv.ttl_many(list(keys), collection=collection)
        return results

    async def close(self) -> None:
        """Close the store if it has anything to close."""
        close = getattr(self.inner, "close", None)
        if callable(close):
            await close()


class KvDiskSource(KvSource):
    """py-key-value-aio's ``DiskStore``: a diskcache ``Cache`` with ``collection::key`` keys."""

    lists_collections = True

    def __init__(self, kv: Any, inner: Any, label: str, decryptor: Any | None) -> None:
        super().__init__(kv, inner, label, decryptor)
        self.lists_collections = True
        self._index: dict[str, list[str]] | None = None

    def _build_index(self) -> dict[str, list[str]]:
        if self._index is None:
            cache = self.inner._cache
            index: dict[str, list[str]] = {}
            for raw in cache.iterkeys():
                if not isinstance(raw, str) or "::" not in raw:
                    continue
                collection, key = raw.split("::", 1)
                if raw.count("::") > 1:
                    # A collection name with "::" in it: the stored document names both parts.
                    collection, key = _names_from_document(cache.get(raw), collection, key)
                index.setdefault(collection, []).append(key)
            self._index = {c: sorted(ks) for c, ks in index.items()}
        return self._index

    async def collections(self) -> list[str]:
        """Collections found among the cache's keys."""
        return sorted(self._build_index())

    async def keys(self, collection: str) -> list[str]:
        """Keys of ``collection`` found among the cache's keys (expired ones are skipped on read)."""
        return list(self._build_index().get(collection, []))


def _names_from_document(raw: Any, collection: str, key: str) -> tuple[str, str]:
    if isinstance(raw, str):
        try:
            document = json.loads(raw)
        except ValueError:
            return collection, key
        if isinstance(document, dict):
            c, k = document.get("collection"), document.get("key")
            if isinstance(c, str) and isinstance(k, str):
                return c, k
    return collection, key


class KvRedisSource(KvSource):
    """py-key-value-aio's ``RedisStore``: ``collection::key`` strings, listed by ``SCAN``."""

    def __init__(self, kv: Any, inner: Any, label: str, decryptor: Any | None) -> None:
        super().__init__(kv, inner, label, decryptor)
        self.lists_collections = True

    async def collections(self) -> list[str]:
        """Collections found by scanning every ``*::*`` key."""
        found: set[str] = set()
        client = self.inner._client
        async for raw in client.scan_iter(match="*::*", count=1000):
            collection, key = str(raw).split("::", 1)
            if "::" in key:
                collection, key = _names_from_document(await client.get(raw), collection, key)
            found.add(collection)
        return sorted(found)

    async def keys(self, collection: str) -> list[str]:
        """Keys of ``collection``, by ``SCAN MATCH collection::*`` (complete, unlike ``keys()``)."""
        client = self.inner._client
        prefix = f"{collection}::"
        keys: list[str] = []
        async for raw in client.scan_iter(match=glob_escape(collection) + "::*", count=1000):
            keys.append(str(raw)[len(prefix) :])
        return sorted(set(keys))


class KvPostgreSQLSource(KvSource):
    """py-key-value-aio's ``PostgreSQLStore``: one row per entry in its table, listed by SQL."""

    def __init__(self, kv: Any, inner: Any, label: str, decryptor: Any | None) -> None:
        super().__init__(kv, inner, label, decryptor)
        self.lists_collections = True

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        try:
            await self.inner.setup()  # its pool; auto_create=False: a missing table is an error
        except ValueError as exc:
            raise SourceError(f"{self.label}: {exc}; pass ?table=NAME (default kv_store)") from None
        table = self.inner._table_name  # validated by the store: letters, digits, '_'
        rows: list[Any] = await self.inner._pool.fetch(sql.format(table=table), *args)
        return rows

    async def collections(self) -> list[str]:
        """Every collection with a row (expired ones are skipped on read)."""
        rows = await self._fetch("SELECT DISTINCT collection FROM {table}")
        return sorted(row[0] for row in rows)

    async def keys(self, collection: str) -> list[str]:
        """Every key of ``collection`` that has not expired."""
        rows = await self._fetch(
            "SELECT key FROM {table} WHERE collection = $1 AND (expires_at IS NULL OR expires_at > now())",
            collection,
        )
        return sorted(row[0] for row in rows)


class KvFileTreeSource(KvSource):
    """py-key-value-aio's ``FileTreeStore``: one directory per collection, one JSON file per key."""

    def __init__(self, kv: Any, inner: Any, label: str, decryptor: Any | None) -> None:
        super().__init__(kv, inner, label, decryptor)
        self.lists_collections = True
        self._dirs: dict[str, Path] | None = None

    def _collection_dirs(self) -> dict[str, Path]:
        if self._dirs is None:
            dirs: dict[str, Path] = {}
            metadata = Path(str(self.inner._metadata_directory))
            for info in sorted(metadata.glob("*-info.json")):
                try:
                    document = json.loads(info.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    self.problems.append(f"unreadable collection info file {info.name}")
                    continue
                name, directory = document.get("collection"), document.get("directory")
                if isinstance(name, str) and isinstance(directory, str):
                    dirs[name] = Path(directory)
            self._dirs = dirs
        return self._dirs

    async def collections(self) -> list[str]:
        """Collections named by the store's ``*-info.json`` files."""
        return sorted(c for c, d in self._collection_dirs().items() if d.is_dir())

    async def keys(self, collection: str) -> list[str]:
        """Original keys of ``collection``: file names, or recovered from the value when sanitized."""
        directory = self._collection_dirs().get(collection)
        if directory is None or not directory.is_dir():
            return []
        strategy = self.inner._key_sanitization_strategy
        keys: list[str] = []
        for path in sorted(directory.glob("*.json")):
            stem = path.stem
            if not stem.startswith(("S_", "H_")) and strategy.sanitize(stem) == stem:
                keys.append(stem)
                continue
            key = self._recover_key(path, stem, strategy)
            if key is None:
                self.problems.append(
                    f"collection {collection!r}: the original key of file {path.name} cannot be recovered "
                    "(FileTreeStore keeps only a sanitized file name and no value field matches it)"
                )
            else:
                keys.append(key)
        return sorted(keys)

    def _recover_key(self, path: Path, stem: str, strategy: Any) -> str | None:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        value = document.get("value") if isinstance(document, dict) else None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return None
        if not isinstance(value, dict):
            return None
        if self.decryptor is not None:
            try:
                value = self.decryptor._decrypt_value(value)
            except Exception:
                return None
        for candidate in _strings(value, depth=3):
            if strategy.sanitize(candidate) == stem:
                return candidate
        return None


def _strings(value: Any, depth: int) -> list[str]:
    found: list[str] = []
    if isinstance(value, str):
        found.append(value)
    elif depth > 0 and isinstance(value, dict):
        for item in value.values():
            found.extend(_strings(item, depth - 1))
    elif depth > 0 and isinstance(value, list):
        for item in value:
            found.extend(_strings(item, depth - 1))
    return found


# -- building a source from a URL ------------------------------------------------------


def is_kv_url(url: str) -> bool:
    """Whether ``url`` names a py-key-value-aio store or FastMCP's OAuth proxy default storage."""
    scheme = urlsplit(url).scheme.lower()
    return scheme.startswith("kv+") or scheme == "fastmcp-oauth-proxy"


def _take_options(url: str, names: Sequence[str]) -> tuple[str, dict[str, str]]:
    """Remove the query options ``names`` from ``url``; return the rest of the URL and them."""
    parts = urlsplit(url)
    taken: dict[str, str] = {}
    rest: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in names:
            taken[name] = value
        else:
            rest.append((name, value))
    return replace_query(url, urlencode(rest)), taken


OnSecret = Callable[[str], None]


def _secret(options: dict[str, str], name: str, what: str, on_secret: OnSecret | None) -> str | None:
    """A secret given as ``name=VALUE`` or ``name_env=VAR`` (read from the environment)."""
    env_name = options.get(f"{name}_env")
    if env_name:
        value = os.environ.get(env_name, "").strip()
        if not value:
            raise UsageError(f"{what}: environment variable {env_name} is not set or empty; export it first")
    else:
        value = options.get(name, "").strip()
    if value and on_secret is not None:
        for part in value.split(","):
            on_secret(part.strip())
    return value or None


def _fernet(keys: str, what: str) -> Any:
    from cryptography.fernet import Fernet, MultiFernet

    try:
        fernets = [Fernet(k.strip()) for k in keys.split(",") if k.strip()]
    except (ValueError, TypeError):
        raise UsageError(
            f"{what}: the key is not a Fernet key (32 url-safe base64-encoded bytes); check the value"
        ) from None
    if not fernets:
        raise UsageError(f"{what}: no key given")
    return fernets[0] if len(fernets) == 1 else MultiFernet(fernets)


def _path_of(url: str, what: str) -> Path:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost") or not parts.path:
        raise UsageError(f"{what} takes an absolute path: {parts.scheme}:///path/to/directory")
    path = Path(unquote(parts.path)).expanduser()
    if not path.is_dir():
        raise SourceError(f"{what}: {path} is not a directory; check the path (nothing was changed)")
    return path


def open_kv_source(url: str, *, fernet_key: str | None = None, on_secret: OnSecret | None = None) -> Source:
    """Open a py-key-value-aio store (``kv+...``) or FastMCP's OAuth proxy default storage as a source."""
    scheme = urlsplit(url).scheme.lower()
    label = safe_url(url)
    if scheme == "fastmcp-oauth-proxy":
        return _open_oauth_proxy_source(url, label, on_secret)
    url, options = _take_options(url, ("key", "key_env", "sanitize", "table"))
    parts = scheme.split("+")[1:]
    encrypted = "fernet" in parts
    kinds = [p for p in parts if p != "fernet"]
    if len(kinds) != 1:
        raise UsageError(
            f"cannot read {label}: py-key-value source URLs look like kv+disk:///dir, kv+filetree:///dir, "
            "kv+redis://host:6379/0 or kv+fernet+disk:///dir?key_env=VAR"
        )
    kind = kinds[0]
    key = _secret(options, "key", label, on_secret) or fernet_key
    if encrypted and not key:
        raise UsageError(f"{label} is Fernet-encrypted: add ?key_env=VAR (a variable holding the key)")
    try:
        inner, source_cls = _open_kv_store(kind, url, label, options)
    except ImportError as exc:
        raise SourceError(
            f"cannot read {label}: {exc}; install py-key-value-aio with the extra for that store, "
            f'e.g. pip install "py-key-value-aio[{kind}]"'
        ) from None
    kv: Any = inner
    decryptor = None
    if key:
        from key_value.aio.wrappers.encryption import FernetEncryptionWrapper

        decryptor = FernetEncryptionWrapper(inner, fernet=_fernet(key, label), raise_on_decryption_error=True)
        kv = decryptor
    return source_cls(kv, inner, label, decryptor)


def _open_kv_store(kind: str, url: str, label: str, options: dict[str, str]) -> tuple[Any, type[KvSource]]:
    rest = url.split("://", 1)[1]
    if kind == "disk":
        from key_value.aio.stores.disk import DiskStore

        path = _path_of(url, label)
        return DiskStore(directory=path, auto_create=False), KvDiskSource
    if kind == "filetree":
        path = _path_of(url, label)
        return _filetree(path, options.get("sanitize", "v1"), label), KvFileTreeSource
    if kind in ("redis", "rediss"):
        from key_value.aio.stores.redis import RedisStore

        return RedisStore(url=f"{kind}://{rest}"), KvRedisSource
    if kind in ("postgresql", "postgres"):
        from key_value.aio.stores.postgresql import PostgreSQLStore

        try:
            with warnings.catch_warnings():
                # "unstable store" is about writing through it; migrate only reads.
                warnings.simplefilter("ignore", UserWarning)
                store = PostgreSQLStore(
                    url=f"postgresql://{rest}", table_name=options.get("table"), auto_create=False
                )
        except ValueError as exc:
            raise UsageError(f"{label}: {exc}") from None
        return store, KvPostgreSQLSource
    raise UsageError(
        f"cannot read {label}: unsupported py-key-value store {kind!r}; supported: kv+disk://, "
        "kv+filetree://, kv+redis://, kv+rediss://, kv+postgresql:// (each optionally +fernet)"
    )


def _filetree(path: Path, sanitize: str, label: str) -> Any:
    from key_value.aio.stores.filetree import (
        FileTreeStore,
        FileTreeV1CollectionSanitizationStrategy,
        FileTreeV1KeySanitizationStrategy,
    )

    if sanitize == "v1":
        return FileTreeStore(
            data_directory=path,
            key_sanitization_strategy=FileTreeV1KeySanitizationStrategy(path),
            collection_sanitization_strategy=FileTreeV1CollectionSanitizationStrategy(path),
            auto_create=False,
        )
    if sanitize == "none":
        return FileTreeStore(data_directory=path, auto_create=False)
    raise UsageError(f"{label}: sanitize must be v1 (FastMCP's) or none, got {sanitize!r}")


def _open_oauth_proxy_source(url: str, label: str, on_secret: OnSecret | None) -> Source:
    """FastMCP ``OAuthProxy``'s default storage: Fernet over a FileTreeStore in
    ``<fastmcp home>/oauth-proxy/<sha256(storage key)[:12]>``, the key derived from the
    JWT signing key (itself given, or derived from the upstream client secret)."""
    _, options = _take_options(
        url, ("jwt_signing_key", "jwt_signing_key_env", "client_secret", "client_secret_env", "home")
    )
    unknown = {n for n, _ in parse_qsl(urlsplit(url).query)} - {
        "jwt_signing_key",
        "jwt_signing_key_env",
        "client_secret",
        "client_secret_env",
        "home",
    }
    if unknown:
        raise UsageError(
            f"fastmcp-oauth-proxy:// does not take {', '.join(sorted(unknown))}; it takes "
            "jwt_signing_key_env, "
            "client_secret_env (or jwt_signing_key, client_secret) and home"
        )
    signing = _secret(options, "jwt_signing_key", label, on_secret)
    client_secret = _secret(options, "client_secret", label, on_secret)
    if not signing and not client_secret:
        raise UsageError(
            "fastmcp-oauth-proxy:// needs the key the server used: ?jwt_signing_key_env=VAR (the "
            "jwt_signing_key passed to the provider) or ?client_secret_env=VAR (the upstream client "
            "secret, when no jwt_signing_key was set)"
        )
    from fastmcp_sessions.fastmcp._seam import oauth_proxy_default_storage

    storage_key, directory = oauth_proxy_default_storage(
        jwt_signing_key=signing, upstream_client_secret=client_secret, home=options.get("home")
    )
    if not directory.is_dir():
        raise SourceError(
            f"no FastMCP OAuth proxy storage at {directory} for that key; check the key (it names the "
            "directory) and, if FastMCP's home was moved, pass ?home=/path (its settings.home)"
        )
    inner = _filetree(directory, "v1", label)
    from cryptography.fernet import Fernet
    from key_value.aio.wrappers.encryption import FernetEncryptionWrapper

    decryptor = FernetEncryptionWrapper(inner, fernet=Fernet(storage_key), raise_on_decryption_error=True)
    return KvFileTreeSource(decryptor, inner, f"FastMCP OAuth proxy storage {directory}", decryptor)
