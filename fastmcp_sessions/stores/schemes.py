"""Choosing a store by URL: each backend declares its schemes, ``open_store`` looks them up.

Backends register themselves when their module is imported (``Store.url_schemes``, kept
in the scheme table of ``fastmcp_sessions.stores.base``).
The built-in modules are imported on first use; third-party backends register by
subclassing ``Store`` in a module listed under the ``fastmcp_sessions.stores``
entry-point group.
"""

from __future__ import annotations

import importlib
import logging
import os
from importlib.metadata import entry_points
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastmcp_sessions.errors import StoreOptionError
from fastmcp_sessions.stores._url import parse_bool, redact_url, replace_query
from fastmcp_sessions.stores.base import Store, register_backend, registered_backends

__all__ = [
    "APP_ENV",
    "URL_ENV",
    "app_name_from_env",
    "open_store",
    "register_backend",
    "selected_url",
    "store_class",
    "supported_schemes",
]

logger = logging.getLogger("fastmcp_sessions")

URL_ENV = "FASTMCP_SESSIONS_URL"
APP_ENV = "FASTMCP_SESSIONS_APP"
DEFAULT_APP_NAME = "fastmcp"

_BUILTIN_MODULES = ("memory", "disk", "redis", "mongodb", "dynamodb", "postgresql")
_loaded = False


def _load_backends() -> None:
    global _loaded
    if _loaded:
        return
    for name in _BUILTIN_MODULES:
        try:
            importlib.import_module(f"fastmcp_sessions.stores.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"fastmcp_sessions.stores.{name}":
                raise
    for entry in entry_points(group="fastmcp_sessions.stores"):
        entry.load()
    _loaded = True


def supported_schemes() -> list[str]:
    """Every URL scheme ``open_store`` understands."""
    _load_backends()
    return sorted(registered_backends())


def store_class(scheme: str) -> type[Store]:
    """The store class serving ``scheme``; ``ValueError`` listing the supported schemes if none does."""
    _load_backends()
    cls = registered_backends().get(scheme.lower())
    if cls is None:
        raise StoreOptionError(
            f"unknown store URL scheme {scheme!r}; supported: "
            + ", ".join(f"{s}://" for s in supported_schemes())
        )
    return cls


def app_name_from_env() -> str:
    """The app name that names default data and key directories (env ``FASTMCP_SESSIONS_APP``)."""
    return os.environ.get(APP_ENV, "").strip() or DEFAULT_APP_NAME


def selected_url() -> tuple[str | None, str]:
    """The URL the environment selects (``None`` for the default disk store) and why."""
    url = os.environ.get(URL_ENV, "").strip()
    if url:
        return url, f"env {URL_ENV}"
    return None, f"default: encrypted disk store for app {app_name_from_env()!r} (env {URL_ENV} unset)"


def open_store(url: str | None = None, **options: Any) -> Store:
    """Open the store that ``url`` names.

    ``url=None`` uses env ``FASTMCP_SESSIONS_URL``, else the encrypted disk store in
    the platform data directory of app ``FASTMCP_SESSIONS_APP`` (default ``fastmcp``).
    Options come from the URL's query string or keywords (keywords win). Every backend
    takes ``encryption=true`` (and ``keys=``) to encrypt values with Fernet; the disk
    store is encrypted unless ``encryption=false``.
    """
    from fastmcp_sessions.stores.disk import DiskStore
    from fastmcp_sessions.stores.encrypted import EncryptedStore

    if url is None:
        url, _ = selected_url()
    if url is None:
        options.setdefault("app_name", app_name_from_env())
        store: Store = DiskStore(**options)
    else:
        cls = store_class(urlsplit(url).scheme)
        if cls.handles_encryption:
            options.setdefault("app_name", app_name_from_env())
            store = cls.from_url(url, **options)
        else:
            url, encryption = _pop_encryption(url, options)
            keys = options.pop("keys", None)
            app_name = options.pop("app_name", app_name_from_env())
            # create=False (the read-only CLI commands): a server store has no file to create,
            # but its encryption must not create a key file either.
            create = options.pop("create", True)
            store = cls.from_url(url, **options)
            if encryption:
                store = EncryptedStore(store, keys=keys, app_name=app_name, create_key=create)
    logger.debug("opened %r from %s", store, redact_url(url) if url else "the default location")
    return store


def _pop_encryption(url: str, options: dict[str, Any]) -> tuple[str, bool]:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    encryption = options.pop("encryption", None)
    rest = []
    for name, value in query:
        if name == "encryption":
            if encryption is None:
                encryption = parse_bool(value)
        else:
            rest.append((name, value))
    return replace_query(url, urlencode(rest)), bool(encryption)
