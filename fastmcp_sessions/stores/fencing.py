"""Fencing tokens kept inside the record they protect, so a fenced write is one compare-and-set.

A fenced record carries ``"__fences__": {<lock name>: <highest token written>}`` next
to its own fields. Keeping the fences in the same record as the data is what makes the
check atomic on every backend: the read that sees the highest token and the write that
raises it are one ``get_versioned`` + ``compare_and_set`` (or ``put_if_absent``) pair.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastmcp_sessions.errors import InvalidArgumentError, StaleFencingTokenError

FENCES_FIELD = "__fences__"
"""The reserved field of a fenced record: the highest fencing token written per lock."""


def fences_of(stored: Mapping[str, Any] | None) -> dict[str, int]:
    """The fences a stored record carries (empty when it has none)."""
    fences = None if stored is None else stored.get(FENCES_FIELD)
    if not isinstance(fences, dict):
        return {}
    return {k: v for k, v in fences.items() if isinstance(v, int) and not isinstance(v, bool)}


def check_token(lock: object, token: object) -> tuple[str, int]:
    """Validate a fence's lock name and token."""
    if not isinstance(lock, str) or not lock:
        raise InvalidArgumentError("a fenced write needs the lock's name (a non-empty str)")
    if isinstance(token, bool) or not isinstance(token, int):
        raise InvalidArgumentError(
            f"a fencing token must be an int (Lock.fencing_token), got {type(token).__name__}"
        )
    return lock, token


def fenced(
    current: Mapping[str, Any] | None,
    value: Mapping[str, Any],
    *,
    lock: str,
    token: int,
    collection: str,
    key: str,
) -> dict[str, Any]:
    """``value`` with the fences of ``current`` and ``token`` recorded for ``lock``.

    Raises ``StaleFencingTokenError`` when ``current`` already carries a higher token
    for ``lock``. An equal token is the same holder writing again and is accepted.
    """
    fences = fences_of(current)
    highest = fences.get(lock)
    if highest is not None and token < highest:
        raise StaleFencingTokenError(collection, key, lock, token, highest)
    fences[lock] = token
    return {**value, FENCES_FIELD: fences}


def carry_fences(current: Mapping[str, Any] | None, value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` keeping the fences of ``current``: an unfenced write to a fenced record must not
    erase them, or a stale holder's next write would be accepted."""
    fences = fences_of(current)
    return {**value, FENCES_FIELD: fences} if fences else dict(value)
