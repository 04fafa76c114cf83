"""Masking secret fields in pydantic reprs, shared by the session models and the MCP SDK models."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["MASK", "mask_fields"]

MASK = "**********"
"""What a secret's value is shown as."""


def mask_fields(
    args: Iterable[tuple[str | None, Any]], secret: frozenset[str]
) -> Iterator[tuple[str | None, Any]]:
    """``__repr_args__`` pairs with the value of every field named in ``secret`` (and set) masked."""
    for name, value in args:
        yield name, (MASK if name in secret and value is not None else value)
