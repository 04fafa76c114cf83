"""Checks of a bus's options, raised as ``StoreOptionError`` before any I/O.

Every bus validates its options here so that a bad one reads the same on every backend:
the option's name, what it accepts and what was given.
"""

from __future__ import annotations

import math

from fastmcp_sessions.errors import StoreOptionError


def seconds(name: str, value: object, *, zero_ok: bool = False) -> float:
    """``value`` as a float number of seconds, finite and positive (or zero, with ``zero_ok``)."""
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and (value >= 0 if zero_ok else value > 0)
        and value < math.inf
    )
    if not ok:
        accepted = "a number of seconds >= 0" if zero_ok else "a positive number of seconds"
        raise StoreOptionError(f"{name} must be {accepted}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def count(name: str, value: object) -> int:
    """``value`` as a positive int (bools refused: ``True`` is not a count)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise StoreOptionError(f"{name} must be a positive int, got {value!r}")
    return value


def text(name: str, value: object, *, accepted: str) -> str:
    """``value`` as a non-empty str; ``accepted`` says what else it must be."""
    if not isinstance(value, str) or not value:
        raise StoreOptionError(f"{name} must be {accepted}, got {value!r}")
    return value
