"""How a collection or key name longer than a backend's key field is stored.

Memory, disk (SQLite) and Redis store every name as it is. DynamoDB (partition key
2,048 bytes, sort key 1,024), MongoDB (index entries) and PostgreSQL (B-tree entries of
about 2.7 KB) cannot, so their stores put ``stored_name(name, limit)`` in the key field
and, only when that differs from the name, the name itself in a plain field of the same
record, which is what ``keys()`` and ``collections()`` return.

The scheme, shared by every such backend:

- A name that fits in ``limit`` UTF-8 bytes and does not begin with ``HASH_MARKER`` is
  stored as itself, so data written with such names never moves.
- Any other name is stored as ``HASH_MARKER + sha256(name).hexdigest() + ":" + head``,
  where ``head`` is the longest prefix of the name (whole characters) that keeps the
  result within ``limit`` bytes. The head only helps a person reading the table; the
  hash of the *whole* name is what keeps names apart, so two names that share any
  prefix still differ (a bare prefix is never used).
- A literal name can never equal a hashed one: every stored form that begins with the
  marker is a hash, because every name that begins with it is hashed too. The marker
  starts with the control character U+001F, which every backend stores and no real name
  is expected to begin with.
"""

from __future__ import annotations

import hashlib

from fastmcp_sessions.errors import StoreOptionError

HASH_MARKER = "\x1fsha256:"
"""How every hashed stored form begins (8 bytes of UTF-8)."""

_OVERHEAD = len(HASH_MARKER) + 64 + 1  # marker, hex digest, ":"
MIN_LIMIT = _OVERHEAD + 32
"""The smallest ``limit`` accepted: room for the marker, the digest and a short head."""


def stored_name(name: str, limit: int) -> str:
    """Return the form of ``name`` to store in a key field of at most ``limit`` UTF-8 bytes.

    ``name`` itself when it fits and does not begin with ``HASH_MARKER``; otherwise the
    marker, the SHA-256 of the whole name in hex, ``":"`` and as much of the name's start
    as fits. Deterministic, so every process finds the same record; distinct names give
    distinct results (barring a SHA-256 collision), and a literal name never equals a
    hashed form. ``name`` must be a validated (UTF-8-encodable) name.
    """
    size = len(name)
    # Each character takes at most 4 bytes: only a long non-ASCII name needs encoding.
    if (
        size <= limit
        and (size * 4 <= limit or name.isascii() or len(name.encode("utf-8")) <= limit)
        and not name.startswith(HASH_MARKER)
    ):
        return name
    if limit < MIN_LIMIT:
        raise StoreOptionError(f"a stored name needs a limit of at least {MIN_LIMIT} bytes, got {limit}")
    encoded = name.encode("utf-8")
    digest = hashlib.sha256(encoded).hexdigest()
    # Cutting may split a character: "ignore" drops its partial bytes.
    head = encoded[: limit - _OVERHEAD].decode("utf-8", "ignore")
    return f"{HASH_MARKER}{digest}:{head}"


def is_hashed(stored: str) -> bool:
    """Whether ``stored`` (a value of a key field) is the hashed form of a longer name."""
    return stored.startswith(HASH_MARKER)


__all__ = ["HASH_MARKER", "MIN_LIMIT", "is_hashed", "stored_name"]
