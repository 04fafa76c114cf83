"""The PostgreSQL store's SQL: names and values as stored, and every statement it runs."""

from __future__ import annotations

import hashlib
import json
import secrets

from fastmcp_sessions.errors import DeserializationError, EntryTooLargeError
from fastmcp_sessions.stores.base import Value

MAX_VALUE_BYTES = 1024**3 - 1024
"""Longest value as JSON text: PostgreSQL's 1 GB field limit, less the row's other columns."""

_NOW = "extract(epoch FROM statement_timestamp())::float8"
_LIVE = f"(expires IS NULL OR expires > {_NOW})"
_ESC_COLLECTION, _ESC_KEY = 1, 2


def digest(name: str) -> bytes:
    """The 32-byte row id of a collection or key: sha256 of its UTF-8 bytes."""
    return hashlib.sha256(name.encode("utf-8")).digest()


def _stored_name(name: str) -> tuple[str, bool]:
    """The text to store for ``name`` and whether it is escaped (``text`` cannot hold NUL)."""
    if "\x00" in name:
        return json.dumps(name, ensure_ascii=True), True
    return name, False


def _loaded_name(text: str, escaped: bool) -> str:
    if not escaped:
        return text
    name = json.loads(text)
    if not isinstance(name, str):
        raise DeserializationError(f"an escaped name in the table is not a JSON string: {text[:40]!r}")
    return name


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _derived(table: str, suffix: str) -> str:
    """``<table>_<suffix>``, shortened with a hash to PostgreSQL's 63-byte identifier limit."""
    name = f"{table}_{suffix}"
    if len(name) <= 63:
        return name
    tag = hashlib.sha256(table.encode()).hexdigest()[:8]
    return f"{table[: 63 - len(suffix) - 10]}_{tag}_{suffix}"


def _new_version() -> int:
    return secrets.randbits(63)


# ensure_ascii: the text is valid in a database of any encoding, and NUL becomes \u0000.
_encoder = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def _json(collection: str, key: str, value: Value) -> str:
    text = _encoder.encode(value)
    if len(text) > MAX_VALUE_BYTES:
        raise EntryTooLargeError(
            len(text),
            MAX_VALUE_BYTES,
            collection,
            key,
            "a PostgreSQL field holds at most 1 GB; keep large data elsewhere and store a reference",
        )
    return text


def _new_row(collection: str, key: str, value: Value) -> tuple[bytes, bytes, str, str, int, str, int]:
    """Parameters ``$1`` to ``$7`` of the ``write`` and ``insert`` statements, for a new entry."""
    c, c_esc = _stored_name(collection)
    k, k_esc = _stored_name(key)
    flags = c_esc * _ESC_COLLECTION + k_esc * _ESC_KEY
    return digest(collection), digest(key), c, k, flags, _json(collection, key, value), _new_version()


def _version_arg(version: str) -> int | None:
    """The stored form of an opaque version string, or ``None`` if we never issued it."""
    if not (0 < len(version) <= 19 and version.isdigit()):
        return None
    number = int(version)
    return number if number < 2**63 and str(number) == version else None


def _statements(table: str) -> dict[str, str]:
    """Every statement the store runs, for ``table`` (already quoted and qualified)."""
    row = "(cid, kid, collection, key, escaped, value, version, expires)"
    upsert = "DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version, expires = EXCLUDED.expires"
    return {
        "read": (
            f"SELECT value, version, expires - {_NOW} FROM {table} WHERE cid = $1 AND kid = $2 AND {_LIVE}"
        ),
        # Aggregates over one row stream stay aligned: values[i] belongs to positions[i].
        "read_many": (
            f"SELECT json_agg(e.value)::text, array_agg(u.i), array_agg(e.version), "
            f"array_agg(e.expires - {_NOW}) FROM unnest($2::bytea[]) WITH ORDINALITY AS u(kid, i) "
            f"JOIN {table} e ON e.cid = $1 AND e.kid = u.kid WHERE {_LIVE}"
        ),
        "write": (
            f"INSERT INTO {table} AS e {row} VALUES ($1, $2, $3, $4, $5, $6::json, $7, {_NOW} + $8::float8) "
            f"ON CONFLICT (cid, kid) {upsert}"
        ),
        "write_many": (
            f"INSERT INTO {table} AS e {row} "
            f"SELECT $1, u.kid, $2, u.key, u.escaped, u.value::json, u.version, {_NOW} + $8::float8 "
            "FROM unnest($3::bytea[], $4::text[], $5::int2[], $6::text[], $7::int8[]) "
            "AS u(kid, key, escaped, value, version) "
            f"ON CONFLICT (cid, kid) {upsert}"
        ),
        "remove": (
            f"WITH d AS (DELETE FROM {table} WHERE cid = $1 AND kid = $2 RETURNING expires) "
            f"SELECT count(*) FROM d WHERE {_LIVE}"
        ),
        "remove_many": (
            f"WITH d AS (DELETE FROM {table} WHERE cid = $1 AND kid = ANY($2::bytea[]) RETURNING expires) "
            f"SELECT count(*) FROM d WHERE {_LIVE}"
        ),
        # An expired row counts as absent: the conflicting row is taken over only when expired.
        "insert": (
            f"INSERT INTO {table} AS e {row} VALUES ($1, $2, $3, $4, $5, $6::json, $7, {_NOW} + $8::float8) "
            f"ON CONFLICT (cid, kid) {upsert} WHERE e.expires IS NOT NULL AND e.expires <= {_NOW} RETURNING 1"
        ),
        "swap": (
            f"UPDATE {table} SET value = $3::json, version = $4, expires = {_NOW} + $5::float8 "
            f"WHERE cid = $1 AND kid = $2 AND version = $6 AND {_LIVE}"
        ),
        "remove_if_version": f"DELETE FROM {table} WHERE cid = $1 AND kid = $2 AND version = $3 AND {_LIVE}",
        "list_keys": f"SELECT key, escaped FROM {table} WHERE cid = $1 AND {_LIVE} LIMIT $2",
        "list_collections": (
            f"SELECT DISTINCT ON (cid) collection, escaped FROM {table} WHERE {_LIVE} ORDER BY cid"
        ),
        "drop": (
            f"WITH d AS (DELETE FROM {table} WHERE cid = $1 RETURNING expires) "
            f"SELECT count(*) FROM d WHERE {_LIVE}"
        ),
        # Oldest first through the expiry index; SKIP LOCKED: never wait for a row a writer holds.
        "purge": (
            f"WITH doomed AS (SELECT cid, kid FROM {table} WHERE expires <= {_NOW} ORDER BY expires "
            f"LIMIT $1 FOR UPDATE SKIP LOCKED), gone AS (DELETE FROM {table} t USING doomed "
            "WHERE t.cid = doomed.cid AND t.kid = doomed.kid RETURNING 1) SELECT count(*) FROM gone"
        ),
    }
