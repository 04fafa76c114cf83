"""PostgreSQL store: one row per entry in one table, through asyncpg.

Table layout (schema version 1; see docs/postgresql.md)::

    CREATE TABLE <schema>.<table> (
        cid        bytea  NOT NULL,   -- sha256 of the collection's UTF-8 bytes
        kid        bytea  NOT NULL,   -- sha256 of the key's UTF-8 bytes
        collection text   NOT NULL,   -- the collection as given, for listing
        key        text   NOT NULL,   -- the key as given, for listing
        escaped    int2   NOT NULL,   -- bit 1: collection, bit 2: key held as a JSON string literal
        value      json   NOT NULL,   -- the value as JSON text, exactly as written
        version    int8   NOT NULL,   -- random, new on every write
        expires    float8,            -- epoch seconds on the server's clock; NULL: never
        PRIMARY KEY (cid, kid)
    );
    CREATE INDEX <table>_expires ON <schema>.<table> (expires) WHERE expires IS NOT NULL;
    CREATE TABLE <schema>.<table>_meta (id int2 PRIMARY KEY, schema_version int4 NOT NULL);

Names of any length are indexed by fixed-size digests (a B-tree entry holds at most
about 2.7 KB), in two columns, so no two (collection, key) pairs can share a row.
``text`` cannot hold NUL, so a name containing one is stored as its JSON string
literal and flagged in ``escaped``. Values are ``json``, not ``jsonb``: ``json``
keeps the text exactly (key order, ``-0.0``, ``1e+16`` as a float) and accepts the
``\\u0000`` escape that ``jsonb`` refuses.

Every statement filters expiry in SQL against the server's clock, so replicas with
skewed clocks agree. The atomic operations are single statements: put-if-absent is
``INSERT ... ON CONFLICT DO UPDATE ... WHERE <expired>``, compare-and-set and
delete-if-version are ``UPDATE``/``DELETE ... WHERE version = $n``; batches are one
statement over ``unnest``/``ANY`` arrays. Expired rows are deleted in small batches
through the expiry index, in the background and by ``cull()``.
"""

from fastmcp_sessions.stores.postgresql._sql import MAX_VALUE_BYTES, digest
from fastmcp_sessions.stores.postgresql.store import (
    _DRIVER as _DRIVER,
)
from fastmcp_sessions.stores.postgresql.store import (
    _MIGRATIONS as _MIGRATIONS,
)
from fastmcp_sessions.stores.postgresql.store import (
    DEFAULT_PURGE_INTERVAL,
    DEFAULT_SCHEMA,
    DEFAULT_TABLE,
    DEFAULT_TIMEOUT,
    HAVE_ASYNCPG,
    PURGE_BATCH,
    SCHEMA_VERSION,
    PostgreSQLStore,
)

__all__ = [
    "DEFAULT_PURGE_INTERVAL",
    "DEFAULT_SCHEMA",
    "DEFAULT_TABLE",
    "DEFAULT_TIMEOUT",
    "HAVE_ASYNCPG",
    "MAX_VALUE_BYTES",
    "PURGE_BATCH",
    "SCHEMA_VERSION",
    "PostgreSQLStore",
    "digest",
]
