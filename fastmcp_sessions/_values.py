"""Validation of keys, collections, TTLs and values, shared by every store.

These run on every call, so they are written for the common case: a short ASCII
key, a float TTL, a flat dict of scalars.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from fastmcp_sessions.errors import InvalidKeyError, InvalidTTLError, SerializationError

DEFAULT_COLLECTION = "default_collection"
"""The collection used when none is given (the same name py-key-value-aio uses)."""

_SCALARS = (str, int, float, bool, type(None))


def check_key(key: object) -> str:
    """Return ``key`` if it is a valid key, else raise ``InvalidKeyError``.

    A valid name is a non-empty ``str`` that UTF-8 can encode (no lone surrogates), of
    any length: a backend whose key fields are bounded stores long names hashed (see
    ``fastmcp_sessions.stores._names``).
    """
    return _check_name(key, "key")


def check_collection(collection: object) -> str:
    """Return ``collection`` if it is a valid collection name, else raise ``InvalidKeyError``."""
    return _check_name(collection, "collection")


def _check_name(name: object, what: str) -> str:
    if type(name) is not str:
        if isinstance(name, str):
            return _check_name(str(name), what)
        raise InvalidKeyError(f"a {what} must be a str, got {type(name).__name__}")
    if not name:
        raise InvalidKeyError(f"a {what} must not be empty")
    if not name.isascii():
        try:
            name.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidKeyError(
                f"a {what} must be encodable as UTF-8 (it contains a lone surrogate at index {exc.start})"
            ) from None
    return name


def check_ttl(ttl: object) -> float | None:
    """Return ``ttl`` as float seconds (``None`` for no expiry), else raise ``InvalidTTLError``.

    A TTL is a positive, finite number of seconds. ``bool`` is refused even though it
    is an ``int``: ``ttl=True`` is always a bug.
    """
    if ttl is None:
        return None
    if type(ttl) is float or type(ttl) is int:
        seconds = float(ttl)
    elif isinstance(ttl, bool | str | bytes):
        raise InvalidTTLError(
            ttl, extra_info={"reason": f"a TTL must be a number of seconds, not a {type(ttl).__name__}"}
        )
    else:
        try:
            seconds = float(ttl)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InvalidTTLError(ttl, extra_info={"reason": "a TTL must be a number of seconds"}) from None
    if not (seconds > 0.0 and math.isfinite(seconds)):
        raise InvalidTTLError(ttl, extra_info={"reason": "a TTL must be positive and finite"})
    return seconds


def copy_value(value: object) -> dict[str, Any]:
    """Validate a value and return a private deep copy of it.

    A value is a mapping with ``str`` keys whose leaves are JSON scalars (finite
    floats only); lists and tuples nest (tuples are stored as lists). Anything else
    raises ``SerializationError``. The copy is what gets stored, so the caller's later
    mutations never reach the store.
    """
    if not isinstance(value, Mapping):
        raise SerializationError(f"a value must be a mapping (dict), got {type(value).__name__}")
    return _copy_mapping(value, "value")


def _copy_mapping(mapping: Mapping[Any, Any], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in mapping.items():
        if type(k) is not str:
            raise SerializationError(
                f"{path} has a key of type {type(k).__name__}; JSON objects only have str keys"
            )
        if not k.isascii():
            _check_text(k, f"{path} key {k!r}")
        t = type(v)
        if t is str:
            if not v.isascii():
                _check_text(v, f"{path}[{k!r}]")
            out[k] = v
        elif t is int or t is bool or v is None:
            out[k] = v
        elif t is float:
            if not math.isfinite(v):
                raise SerializationError(f"{path}[{k!r}] is {v}; only finite numbers are JSON")
            out[k] = v
        else:
            out[k] = _copy_nested(v, f"{path}[{k!r}]")
    return out


def _copy_nested(v: object, path: str) -> Any:
    if isinstance(v, Mapping):
        return _copy_mapping(v, path)
    if isinstance(v, list | tuple):
        return [_copy_item(item, f"{path}[{i}]") for i, item in enumerate(v)]
    if isinstance(v, _SCALARS):
        # subclasses of str/int/float (enums, numpy-like scalars) are stored as the base type
        if isinstance(v, bool):
            return bool(v)
        if isinstance(v, str):
            return _copy_item(str(v), path)
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            return _copy_item(float(v), path)
    raise SerializationError(f"{path} is a {type(v).__name__}, which is not JSON-compatible")


def _copy_item(v: object, path: str) -> Any:
    t = type(v)
    if t is str:
        if not v.isascii():  # type: ignore[attr-defined]
            _check_text(v, path)  # type: ignore[arg-type]
        return v
    if t is int or t is bool or v is None:
        return v
    if t is float:
        if not math.isfinite(v):  # type: ignore[arg-type]
            raise SerializationError(f"{path} is {v}; only finite numbers are JSON")
        return v
    return _copy_nested(v, path)


def _check_text(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SerializationError(
            f"{path} holds a lone surrogate at index {exc.start}, which no JSON encoder can store"
        ) from None


def clone(value: dict[str, Any]) -> dict[str, Any]:
    """Deep-copy a value that was already validated by ``copy_value`` (no checks)."""
    return {k: v if type(v) in _SCALARS else _clone_nested(v) for k, v in value.items()}


def _clone_nested(v: Any) -> Any:
    if type(v) is dict:
        return clone(v)
    return [item if type(item) in _SCALARS else _clone_nested(item) for item in v]


_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def dumps(value: object) -> str:
    """Validate a value and serialise it as compact JSON text."""
    return _encoder.encode(copy_value(value))


def dumps_validated(value: dict[str, Any]) -> str:
    """Serialise a value that was already validated by ``copy_value``."""
    return _encoder.encode(value)
