"""Redaction of secrets: in URLs and in model reprs, one mask for both.

Shared by the stores, the session models, the MCP SDK model reprs and the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

MASK = "***"
"""What a redacted secret is replaced with, everywhere (URLs, reprs, CLI output)."""

SECRET_PARAM_PARTS = ("password", "secret", "token", "key", "credential", "sig")
"""A query parameter whose name contains one of these (any case) holds a secret."""


def is_secret_param(name: str) -> bool:
    """Whether the query parameter ``name`` holds a secret (``api_key``, ``token``, ``sig``...).

    ``*_env`` parameters (``key_env=VAR``) hold the *name* of an environment variable,
    which an operator needs to see; the variable's value is what stays secret.
    """
    lowered = name.lower()
    if lowered.endswith("_env"):
        return False
    return any(part in lowered for part in SECRET_PARAM_PARTS)


def redact_url(url: str) -> str:
    """``url`` with its password and secret-looking query values replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0] if ":" in userinfo else ""
        netloc = f"{user}:{MASK}@{hosts}" if ":" in userinfo else f"{MASK}@{hosts}" if not user else netloc
    query = "&".join(
        f"{name}={MASK}" if is_secret_param(name) else f"{name}={value}"
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
    scheme = f"{parts.scheme}:" if parts.scheme else ""
    text = scheme + (f"//{netloc}" if has_authority else netloc) + parts.path
    if query:
        text += f"?{query}"
    if parts.fragment:
        text += f"#{parts.fragment}"
    return text


def mask_fields(
    args: Iterable[tuple[str | None, Any]], secret: frozenset[str]
) -> Iterator[tuple[str | None, Any]]:
    """``__repr_args__`` pairs with the value of every field named in ``secret`` (and set) masked."""
    for name, value in args:
        yield name, (MASK if name in secret and value is not None else value)
