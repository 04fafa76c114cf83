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

MAX_DEPTH = 100
"""Deepest nesting of dicts and lists inside a value (the value itself is depth 1)."""

MAX_INT_DIGITS = 4300
"""Most decimal digits an integer in a value may have: Python's default limit for turning
an int into text (``sys.int_info.default_max_str_digits``), so every backend, whether it
serialises or not, accepts the same values."""

_INT_BOUND = 10**MAX_INT_DIGITS

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
    if type(ttl) is float:
        seconds = ttl
    elif isinstance(ttl, bool | str | bytes):
        raise InvalidTTLError(
            ttl, extra_info={"reason": f"a TTL must be a number of seconds, not a {type(ttl).__name__}"}
        )
    else:
        try:
            seconds = float(ttl)  # type: ignore[arg-type]
        except OverflowError:
            raise InvalidTTLError(
                _short(ttl), extra_info={"reason": "a TTL must be positive and finite (this one is too big)"}
            ) from None
        except (TypeError, ValueError):
            raise InvalidTTLError(ttl, extra_info={"reason": "a TTL must be a number of seconds"}) from None
    if not (seconds > 0.0 and math.isfinite(seconds)):
        raise InvalidTTLError(ttl, extra_info={"reason": "a TTL must be positive and finite"})
    return seconds


def _short(number: object) -> str:
    """A printable stand-in for a number too large to print in full."""
    if type(number) is int and number.bit_length() > 64:
        return f"an integer of about {int(number.bit_length() * 0.30103)} digits"
    return repr(number)


def copy_value(value: object) -> dict[str, Any]:
    """Validate a value and return a private deep copy of it.

    A value is a mapping with ``str`` keys whose leaves are JSON scalars (finite
    floats, integers of at most ``MAX_INT_DIGITS`` digits); lists and tuples nest
    (tuples are stored as lists), at most ``MAX_DEPTH`` levels deep. Anything else
    raises ``SerializationError``. The copy is what gets stored, so the caller's later
    mutations never reach the store.
    """
    if not isinstance(value, Mapping):
        raise SerializationError(f"a value must be a mapping (dict), got {type(value).__name__}")
    return _copy_mapping(value, "value", 1)


def _check_int(v: int, path: str) -> int:
    if -_INT_BOUND < v < _INT_BOUND:
        return v
    raise SerializationError(
        f"{path} is {_short(v)}; integers in a value may have at most {MAX_INT_DIGITS} digits "
        "(store larger numbers as text)"
    )


def _copy_mapping(mapping: Mapping[Any, Any], path: str, depth: int) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise SerializationError(f"{path} is nested more than {MAX_DEPTH} levels deep (the limit)")
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
        elif t is int:
            out[k] = v if -_INT_BOUND < v < _INT_BOUND else _check_int(v, f"{path}[{k!r}]")
        elif t is bool or v is None:
            out[k] = v
        elif t is float:
            if not math.isfinite(v):
                raise SerializationError(f"{path}[{k!r}] is {v}; only finite numbers are JSON")
            out[k] = v
        else:
            out[k] = _copy_nested(v, f"{path}[{k!r}]", depth + 1)
    return out


def _copy_nested(v: object, path: str, depth: int) -> Any:
    if isinstance(v, Mapping):
        return _copy_mapping(v, path, depth)
    if isinstance(v, list | tuple):
        if depth > MAX_DEPTH:
            raise SerializationError(f"{path} is nested more than {MAX_DEPTH} levels deep (the limit)")
        return [_copy_item(item, f"{path}[{i}]", depth) for i, item in enumerate(v)]
    if isinstance(v, _SCALARS):
        # subclasses of str/int/float (enums, numpy-like scalars) are stored as the base type
        if isinstance(v, bool):
            return bool(v)
        if isinstance(v, str):
            return _copy_item(str(v), path, depth)
        if isinstance(v, int):
            return _check_int(int(v), path)
        if isinstance(v, float):
            return _copy_item(float(v), path, depth)
    raise SerializationError(f"{path} is a {type(v).__name__}, which is not JSON-compatible")


def _copy_item(v: object, path: str, depth: int) -> Any:
    t = type(v)
    if t is str:
        if not v.isascii():  # type: ignore[attr-defined]
            _check_text(v, path)  # type: ignore[arg-type]
        return v
    if t is int:
        return _check_int(v, path)  # type: ignore[arg-type]
    if t is bool or v is None:
        return v
    if t is float:
        if not math.isfinite(v):  # type: ignore[arg-type]
            raise SerializationError(f"{path} is {v}; only finite numbers are JSON")
        return v
    return _copy_nested(v, path, depth + 1)


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
