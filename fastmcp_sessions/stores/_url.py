"""URL helpers shared by the backends' ``from_url``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from fastmcp_sessions._redact import is_secret_param, redact_url, replace_query
from fastmcp_sessions.errors import StoreOptionError

__all__ = [
    "address_from_url",
    "is_secret_param",
    "parse_bool",
    "redact_url",
    "replace_query",
    "split_own_options",
    "take_query_options",
]


def parse_bool(text: str) -> bool:
    """``true/false``, ``1/0``, ``yes/no``, ``on/off`` (any case)."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise StoreOptionError(f"expected true or false, got {text!r}")


def take_query_options(
    url: str,
    converters: Mapping[str, Callable[[str], Any]],
    options: dict[str, Any],
    *,
    open_store_options: Sequence[str] = (),
) -> dict[str, Any]:
    """Move the URL's query options into ``options`` (explicit keyword options win).

    Raises ``StoreOptionError`` naming any option the backend does not know, and every
    option it takes, ``open_store_options`` (those ``open_store`` handles before the
    backend sees the URL, such as ``encryption``) included.
    """
    scheme = urlsplit(url).scheme
    for name, raw in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        convert = converters.get(name)
        if convert is None:
            accepted = ", ".join(sorted(converters))
            if open_store_options:
                accepted += f"; through open_store also {', '.join(open_store_options)}"
            raise StoreOptionError(f"{scheme}:// does not take the option {name!r}; it takes: {accepted}")
        try:
            options.setdefault(name, convert(raw))
        except ValueError as exc:
            raise StoreOptionError(f"{scheme}:// option {name}: {exc}") from None
    return options


def split_own_options(url: str, converters: Mapping[str, Callable[[str], Any]]) -> tuple[str, dict[str, Any]]:
    """``url`` without the query options named in ``converters``, and those options converted.

    The query is split by hand, so the options left for the driver (pymongo, libpq) stay
    exactly as written.
    """
    parts = urlsplit(url)
    ours: dict[str, Any] = {}
    rest = []
    for item in parts.query.split("&") if parts.query else []:
        name, _, raw = item.partition("=")
        convert = converters.get(unquote(name))
        if convert is None:
            rest.append(item)
            continue
        try:
            ours[unquote(name)] = convert(unquote(raw))
        except ValueError as exc:
            raise StoreOptionError(f"{parts.scheme}:// option {unquote(name)}: {exc}") from None
    return urlunsplit(parts._replace(query="&".join(rest))), ours


def address_from_url(url: str | None, default_port: int | None = None) -> tuple[str | None, int | None]:
    """``(host, port)`` of a URL's first host, never its credentials; ``(None, None)`` if none.

    What a store reports as ``server.address``/``server.port`` in its telemetry.
    """
    if not url or "://" not in url:
        return None, None
    netloc = url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0]
    first = netloc.rsplit("@", 1)[-1].split(",", 1)[0]
    try:
        parts = urlsplit("//" + first)
        return parts.hostname or None, parts.port or (default_port if parts.hostname else None)
    except ValueError:
        return None, None
