"""DynamoDB store: one item per entry in one table, through aiobotocore.

Table layout (see docs/dynamodb.md)::

    pk          S   partition key: the collection (hashed when over 2,048 bytes)
    sk          S   sort key: the key (hashed when over 1,024 bytes)
    cn, kn      S   the collection / key as given, only where pk / sk holds it hashed
    value       S   the value as compact JSON text (exact, and cheaper than DynamoDB maps)
    version     S   random token, new on every write
    expires_ms  N   exact expiry, epoch milliseconds (rounded up); absent: never expires
    ttl         N   expires_ms in epoch seconds, rounded up: the table's TTL attribute

Every read is strongly consistent and filters expired items itself, since DynamoDB
deletes expired items only eventually (days, in AWS); ``ttl`` is rounded up so that
native deletion never comes early. The atomic operations are single conditional
writes (``ConditionExpression`` on ``version`` and ``expires_ms``). ``get_many`` uses
BatchGetItem (100 keys a call) and ``put_many``/``delete_many`` BatchWriteItem (25 a
call), retrying unprocessed items with backoff. DynamoDB's limits (400 KB items) are
checked before anything is sent. Names too long for a key attribute are stored by the
shared scheme of ``fastmcp_sessions.stores._names``: names that fit are stored as they
are.

The package, one module per job:

- ``store.py``: ``DynamoDBStore``, its options and operations;
- ``connection.py``: the aiobotocore driver and the client made from the options;
- ``table.py``: checking (and creating) the table and its TTL;
- ``encoding.py``: entries as items, sizes, expiry;
- ``batches.py``: BatchGetItem/BatchWriteItem with backoff on unprocessed items;
- ``errors.py``: botocore errors to typed errors with advice.
"""

from fastmcp_sessions.stores.dynamodb.connection import _DRIVER as _DRIVER
from fastmcp_sessions.stores.dynamodb.connection import HAVE_AIOBOTOCORE
from fastmcp_sessions.stores.dynamodb.encoding import (
    MAX_ITEM_BYTES,
    MAX_PARTITION_KEY_BYTES,
    MAX_SORT_KEY_BYTES,
)
from fastmcp_sessions.stores.dynamodb.store import DEFAULT_TABLE, DynamoDBStore

__all__ = [
    "DEFAULT_TABLE",
    "HAVE_AIOBOTOCORE",
    "MAX_ITEM_BYTES",
    "MAX_PARTITION_KEY_BYTES",
    "MAX_SORT_KEY_BYTES",
    "DynamoDBStore",
]
