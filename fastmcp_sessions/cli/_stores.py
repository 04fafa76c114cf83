"""Opening the store a command works on, with errors that say what to do."""

from __future__ import annotations

import contextlib
from typing import Any

from key_value.aio.errors import BaseKeyValueError

from fastmcp_sessions.cli._common import StoreUnavailableError, UsageError, safe_url
from fastmcp_sessions.stores.base import Store
from fastmcp_sessions.stores.schemes import open_store, selected_url, supported_schemes


def chosen_url(url: str | None) -> tuple[str | None, str]:
    """The URL a command uses (``None``: the default disk store) and why: ``--url`` or the environment."""
    if url is not None:
        return url, "--url"
    return selected_url()


def open_cli_store(url: str | None, *, read_only: bool = False, **options: Any) -> Store:
    """``open_store(url)``; bad URLs raise ``UsageError``, missing drivers ``StoreUnavailableError``.

    ``read_only=True`` is for commands that only look: they open an existing store and never
    create a database file or a key file (``create=False``).
    """
    if read_only:
        options["create"] = False
    try:
        return open_store(url, **options)
    except ValueError as exc:
        raise UsageError(f"{safe_url(url)}: {exc}") from exc
    except TypeError as exc:
        raise UsageError(
            f"{safe_url(url)}: {exc}; supported schemes: " + ", ".join(f"{s}://" for s in supported_schemes())
        ) from exc
    except ImportError as exc:
        raise StoreUnavailableError(f"cannot open {safe_url(url)}: {exc}") from exc
    except BaseKeyValueError as exc:
        raise StoreUnavailableError(f"cannot open {safe_url(url)}: {exc}") from exc


async def close_quietly(store: Store | None) -> None:
    """Close ``store``, ignoring errors (it may never have connected)."""
    if store is None:
        return
    # Closing a store that failed to open must not hide the real error.
    with contextlib.suppress(Exception):
        await store.close()
