"""URL helpers shared by the backends' ``from_url``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

_SECRET_PARAMS = ("password", "secret", "token", "key", "keys", "credential", "sig")


def is_secret_param(name: str) -> bool:
    """Whether the query parameter ``name`` holds a secret value (printed as ``***``).

    ``*_env`` parameters (``key_env=VAR``) hold the *name* of an environment variable,
    which an operator needs to see; the variable's value is what stays secret.
    """
    lowered = name.lower()
    if lowered.endswith("_env"):
        return False
    return any(s in lowered for s in _SECRET_PARAMS)


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


def redact_url(url: str) -> str:
    """``url`` with its password and secret-looking query values replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0] if ":" in userinfo else ""
        netloc = f"{user}:***@{hosts}" if ":" in userinfo else f"***@{hosts}" if not user else netloc
    query = "&".join(
        f"{name}=***" if is_secret_param(name) else f"{name}={value}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return _join(url, netloc, query)


def replace_query(url: str, query: str) -> str:
    """``url`` with its query string replaced (scheme, ``//`` and path kept exactly)."""
    return _join(url, urlsplit(url).netloc, query)


def _join(url: str, netloc: str, query: str) -> str:
    # urlunsplit drops "//" for schemes it does not know (memory://), so build the string here.
    parts = urlsplit(url)
    has_authority = url[len(parts.scheme) + 1 :].startswith("//")
    # No scheme (a typo such as "redis//host"): print the text as given, without a stray ":".
    text = (
        (f"{parts.scheme}:" if parts.scheme else "")
        + (f"//{netloc}" if has_authority else netloc)
        + parts.path
    )
    if query:
        text += f"?{query}"
    if parts.fragment:
        text += f"#{parts.fragment}"
    return text
