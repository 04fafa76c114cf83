"""URL helpers shared by the backends' ``from_url``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastmcp_sessions._redact import is_secret_param, redact_url, replace_query

__all__ = ["is_secret_param", "parse_bool", "redact_url", "replace_query", "take_query_options"]


def parse_bool(text: str) -> bool:
    """``true/false``, ``1/0``, ``yes/no``, ``on/off`` (any case)."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def take_query_options(
    url: str, converters: Mapping[str, Callable[[str], Any]], options: dict[str, Any]
) -> dict[str, Any]:
    """Move the URL's query options into ``options`` (explicit keyword options win).

    Raises ``ValueError`` naming any option the backend does not know.
    """
    scheme = urlsplit(url).scheme
    for name, raw in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        convert = converters.get(name)
        if convert is None:
            raise ValueError(
                f"{scheme}:// does not take the option {name!r}; it takes: {', '.join(sorted(converters))}"
            )
        try:
            options.setdefault(name, convert(raw))
        except ValueError as exc:
            raise ValueError(f"{scheme}:// option {name}: {exc}") from None
    return options
