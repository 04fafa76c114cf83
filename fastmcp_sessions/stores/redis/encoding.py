"""Key layout and value encoding of the Redis store (pure functions, no redis-py).

Layout (see docs/redis.md)::

    <namespace>:{<collection>}:<key>     one Redis string per entry (colocate=True, default)
    <namespace>:{}:<collection>:<key>    the same with an empty hash tag (colocate=False)

In ``<collection>``, ``{``, ``}`` and ``:`` are written ``%7B``, ``%7D`` and ``%3A``, and a
``%`` is written ``%25`` only where it would otherwise be read as one of these four
escapes: no two (collection, key) pairs share a Redis key, a collection's keys are
exactly those under its own prefix, and a name that is already percent-escaped by a
layer above (``tools%2Flist``) keeps its spelling instead of being escaped a second time.

Each value is ``fms1:<20 hex version chars><compact JSON>``.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from fastmcp_sessions._values import dumps_validated
from fastmcp_sessions.errors import DeserializationError, key_ref
from fastmcp_sessions.stores.base import Value

SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster", "redis+sentinel", "rediss+sentinel")
"""The URL schemes the store answers to."""

MAGIC = "fms1:"
MAGIC_BYTES = MAGIC.encode()
VERSION_BYTES = 10  # 80 random bits, written as 20 hex characters
HEADER = len(MAGIC) + 2 * VERSION_BYTES
MAX_PX = 2**47  # ~4,400 years; longer TTLs would overflow Redis's expiry arithmetic

_ESCAPES = {"{": "%7B", "}": "%7D", ":": "%3A"}
_CODES = {"%25": "%", "%7B": "{", "%7D": "}", "%3A": ":"}
_CODE = re.compile("%(?:25|7B|7D|3A)")
_GLOB_SPECIAL = "*?[]\\"


def escape_collection(collection: str) -> str:
    """``collection`` as it appears in a Redis key (see the module docstring)."""
    if "%" not in collection and "{" not in collection and "}" not in collection and ":" not in collection:
        return collection
    out: list[str] = []
    for i, char in enumerate(collection):
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char == "%" and collection[i : i + 3] in _CODES:
            out.append("%25")
        else:
            out.append(char)
    return "".join(out)


def unescape_collection(escaped: str) -> str:
    """The inverse of ``escape_collection``."""
    return _CODE.sub(lambda m: _CODES[m.group()], escaped) if "%" in escaped else escaped


def glob_escape(text: str) -> str:
    """``text`` as a literal in a ``SCAN MATCH`` / ``KEYS`` pattern."""
    # A backslash makes any of * ? [ ] and \ literal.
    if any(c in text for c in _GLOB_SPECIAL):
        return "".join("\\" + c if c in _GLOB_SPECIAL else c for c in text)
    return text


class KeyLayout:
    """Where the entries of one namespace live: prefixes, and the way back from a key name."""

    __slots__ = ("_prefixes", "base", "colocate")

    def __init__(self, namespace: str, colocate: bool) -> None:
        self.colocate = colocate
        self.base = f"{namespace}:{{" if colocate else f"{namespace}:{{}}:"
        self._prefixes: dict[str, str] = {}

    def prefix(self, collection: str) -> str:
        """The start of every Redis key of ``collection``."""
        prefix = self._prefixes.get(collection)
        if prefix is None:
            escaped = escape_collection(collection)
            # "{collection}" is a Redis Cluster hash tag: the collection decides the slot. "{}" is
            # an empty tag, so Redis hashes the whole key. Either way the first brace ends the
            # namespace, which cannot contain one: no namespace can reach into another's keys.
            prefix = f"{self.base}{escaped}}}:" if self.colocate else f"{self.base}{escaped}:"
            # Bounded in count and size: names may be any length, and a long one costs more
            # to keep than to escape again.
            if len(collection) <= 256:
                if len(self._prefixes) >= 4096:
                    self._prefixes.clear()
                self._prefixes[collection] = prefix
        return prefix

    def split(self, name: str) -> tuple[str, str] | None:
        """``(collection, key)`` of a Redis key under this namespace, or ``None`` if it is not ours."""
        base = self.base
        if not name.startswith(base):
            return None
        if self.colocate:
            end = name.find("}", len(base))
            if end < 0 or name[end + 1 : end + 2] != ":":
                return None
            escaped, key = name[len(base) : end], name[end + 2 :]
        else:
            end = name.find(":", len(base))
            if end < 0:
                return None
            escaped, key = name[len(base) : end], name[end + 1 :]
        collection = unescape_collection(escaped)
        if not escaped or not key or escape_collection(collection) != escaped:
            return None
        return collection, key


def _reject_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


_decoder = json.JSONDecoder(parse_constant=_reject_constant)


def payload(value: Value) -> bytes:
    """The stored form of a validated value, under a fresh version."""
    # Validated values hold only valid Unicode, so the encoding cannot fail.
    return (MAGIC + os.urandom(VERSION_BYTES).hex() + dumps_validated(value)).encode()


def ms(seconds: float) -> int:
    """A TTL in whole milliseconds for ``PX``: rounded up (never early), at least 1 ms."""
    return min(max(1, int(seconds * 1000 + 0.999)), MAX_PX)


def ttl_seconds(pttl: int) -> float | None:
    """A ``PTTL`` reply in seconds (``None``: no expiry)."""
    return None if pttl < 0 else pttl / 1000.0


def _foreign(collection: str, key: str, why: str) -> DeserializationError:
    return DeserializationError(
        f"the Redis value at collection {collection!r}, key {key_ref(key)} is not fastmcp-sessions data "
        f"({why}); another program wrote it, or it is corrupt. Delete the entry (store.delete) or "
        "give this store its own namespace= so it never shares keys with other programs"
    )


def parse(collection: str, key: str, raw: Any) -> tuple[str, Value]:
    """The (header, value) of a stored string; ``DeserializationError`` when it is not ours."""
    if type(raw) is not bytes:  # only a client without the raw-reply option gives str
        raw = raw.encode() if isinstance(raw, str) else raw
        if not isinstance(raw, bytes):
            raise _foreign(collection, key, f"Redis returned a {type(raw).__name__}")
    if not raw.startswith(MAGIC_BYTES) or len(raw) <= HEADER:
        raise _foreign(collection, key, "it does not start with the fms1: format tag")
    try:
        text = raw.decode()
        value, end = _decoder.raw_decode(text, HEADER)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _foreign(collection, key, f"its JSON does not parse: {exc}") from None
    if end != len(text) or type(value) is not dict:
        raise _foreign(collection, key, "its JSON is not a single object")
    return text[:HEADER], value
