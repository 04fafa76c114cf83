"""What every native event store shares: the event id, the stored payload, replay.

An event id is ``<stream key>.<seq>.<tag>``:

- the stream key is 32 hex digits of SHA-256 over the store's namespace and the MCP
  stream id, so the id names where its stream lives and replay needs no lookup first;
- ``seq`` is the event's position, assigned by the backend (a Redis stream entry id,
  a table sequence), increasing along the stream;
- the tag is 128 random bits from ``secrets``, stored with the event and compared on
  replay: knowing (or guessing) a stream id and a position gives nothing without it.

Replay reads the given event and every later one of its stream in one round trip,
checks the tag of the first, and sends the rest in order. The payload holds the MCP
stream id beside the message; under a keyring it is Fernet ciphertext bound to the
event's stream key and tag, so a row copied elsewhere does not decrypt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, NamedTuple, TypedDict

from cryptography.fernet import InvalidToken
from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp_types import JSONRPCError, JSONRPCMessage, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse
from pydantic import BaseModel, ValidationError

from fastmcp_sessions.encryption import Keyring
from fastmcp_sessions.errors import (
    DecryptionError,
    DeserializationError,
    StoreConnectionError,
    StoreOptionError,
)

__all__ = ["ClockSequence", "EventStoreOptions", "NativeEventStore", "Row", "stream_key"]

logger = logging.getLogger("fastmcp_sessions")

# A payload's message begins with one byte naming its model, so a replay validates each
# message against that model alone instead of trying every member of the union.
_MODELS: dict[bytes, type[BaseModel]] = {
    b"q": JSONRPCRequest,
    b"n": JSONRPCNotification,
    b"r": JSONRPCResponse,
    b"e": JSONRPCError,
}
_KINDS = {model: kind for kind, model in _MODELS.items()}
_KEY = re.compile(r"[0-9a-f]{32}")
_TAG = re.compile(r"[A-Za-z0-9_-]{22}")


class Row(NamedTuple):
    """One stored event as a backend returns it."""

    seq: str
    tag: str
    data: bytes


def stream_key(namespace: str, stream_id: str) -> str:
    """Where the events of ``stream_id`` live: 128 bits of SHA-256, in hex."""
    digest = hashlib.sha256(f"{len(namespace)}:{namespace}\0{stream_id}".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


class EventStoreOptions(TypedDict, total=False):
    """The options every native event store takes beside its backend's (see ``NativeEventStore``)."""

    namespace: str
    max_events_per_stream: int
    ttl: float | None


class NativeEventStore(EventStore):
    """An MCP ``EventStore`` whose backend appends and reads events natively.

    A backend implements ``_append`` (store one event, return its position) and
    ``_read_from`` (the event at a position and every later one of its stream, in order).

    Args:
        namespace: Keeps apart the streams of different servers on one backend.
        keyring: Encrypt payloads with it (``None``: JSON in the clear).
        max_events_per_stream: Events kept per stream at least; older ones are trimmed.
        ttl: Seconds a stream is kept after its last event (``None``: until trimmed).
    """

    backend = "native"

    def __init__(
        self,
        *,
        namespace: str = "",
        keyring: Keyring | None = None,
        max_events_per_stream: int = 100,
        ttl: float | None = 3600,
    ) -> None:
        if not isinstance(max_events_per_stream, int) or max_events_per_stream < 1:
            raise StoreOptionError(
                f"max_events_per_stream must be an int >= 1, got {max_events_per_stream!r}"
            )
        if ttl is not None and (not isinstance(ttl, int | float) or not ttl > 0):
            raise StoreOptionError(f"ttl must be a number of seconds > 0 or None, got {ttl!r}")
        self.namespace = namespace
        self.keyring = keyring
        self.max_events_per_stream = max_events_per_stream
        self.ttl = None if ttl is None else float(ttl)
        self._prepared = False
        # Backends that trim by statement do it on about one append in this many, so a
        # stream holds between max_events_per_stream and half as many again.
        self._trim_every = max(1, min(64, max_events_per_stream // 2))

    def __repr__(self) -> str:
        mode = "encrypted" if self.keyring is not None else "plaintext"
        return f"{type(self).__name__}(namespace={self.namespace!r}, {mode})"

    # -- the backend's part ---------------------------------------------------------------

    @abstractmethod
    async def _append(self, key: str, tag: str, data: bytes) -> str:
        """Store one event at the end of stream ``key``; return its position."""

    @abstractmethod
    async def _read_from(self, key: str, seq: str) -> Sequence[Row]:
        """The event at ``seq`` (if still kept) and every later event of stream ``key``, in order."""

    async def _prepare(self) -> None:
        """Set up what the first operation needs (a table, a keyring known only once open)."""
        self._prepared = True

    def _valid_seq(self, seq: str) -> bool:
        """Whether ``seq`` has the form of this backend's positions (default: a decimal number)."""
        return seq.isdigit() and len(seq) <= 19

    # -- payloads -------------------------------------------------------------------------

    def _seal(self, key: str, tag: str, stream_id: str, message: JSONRPCMessage | None) -> bytes:
        head = json.dumps(stream_id).encode("utf-8", "surrogatepass")
        if message is None:
            body = b""
        else:
            kind = _KINDS.get(type(message)) or next(k for m, k in _KINDS.items() if isinstance(message, m))
            body = kind + message.model_dump_json(by_alias=True, exclude_unset=True).encode()
        plain = head + b"\n" + body
        if self.keyring is None:
            return plain
        return self.keyring.encrypt(f"{key}.{tag}\n".encode("ascii") + plain)

    def _unseal(self, key: str, tag: str, data: bytes) -> tuple[bytes, bytes]:
        """The stream id (JSON) and the message (kind byte, JSON; empty for priming) of a payload."""
        if self.keyring is not None:
            try:
                plain = self.keyring.decrypt(data)
            except (InvalidToken, TypeError, ValueError):
                raise DecryptionError(
                    f"cannot decrypt a stored event of stream {key[:12]}: it was not encrypted with any "
                    f"of the keys in use ({', '.join(self.keyring.fingerprints)})"
                    "; add the key it was written with"
                ) from None
            bound = f"{key}.{tag}\n".encode("ascii")
            if not plain.startswith(bound):
                raise DecryptionError(
                    f"a stored event of stream {key[:12]} was encrypted for another place (a copied row); "
                    "refusing to replay it"
                )
            data = plain[len(bound) :]
        head, sep, body = data.partition(b"\n")
        if not sep:
            raise DeserializationError(f"a stored event of stream {key[:12]} is not a fastmcp-sessions event")
        return head, body

    # -- the EventStore interface ---------------------------------------------------------

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        """Store one event of ``stream_id`` (``None``: a priming event) and return its id."""
        if not self._prepared:
            await self._prepare()
        key = stream_key(self.namespace, stream_id)
        tag = secrets.token_urlsafe(16)
        seq = await self._append(key, tag, self._seal(key, tag, stream_id, message))
        return f"{key}.{seq}.{tag}"

    async def replay_events_after(
        self, last_event_id: EventId, send_callback: EventCallback
    ) -> StreamId | None:
        """Send every event of its stream after ``last_event_id``, in order; return the stream id.

        ``None`` when the id is malformed, unknown, trimmed or expired: nothing is sent then.
        Priming events (message ``None``) are kept as positions and never sent.
        """
        parts = last_event_id.split(".") if isinstance(last_event_id, str) else []
        if len(parts) != 3 or not _KEY.fullmatch(parts[0]) or not _TAG.fullmatch(parts[2]):
            return None
        key, seq, tag = parts
        if not self._valid_seq(seq):
            return None
        if not self._prepared:
            await self._prepare()
        rows = await self._read_from(key, seq)
        if not rows or rows[0].seq != seq or not secrets.compare_digest(rows[0].tag, tag):
            logger.debug("event id of stream %s not found (unknown, trimmed or expired)", key[:12])
            return None
        head, _ = self._unseal(key, tag, rows[0].data)
        try:
            stream_id = json.loads(head)
        except ValueError:
            stream_id = None
        if not isinstance(stream_id, str) or stream_key(self.namespace, stream_id) != key:
            return None
        for row in rows[1:]:
            owner, body = self._unseal(key, row.tag, row.data)
            if owner != head or not body:
                continue  # a priming event: a position, never a message
            model = _MODELS.get(body[:1])
            try:
                message = None if model is None else model.model_validate_json(body[1:])
            except (ValidationError, ValueError):
                message = None
            if message is None:
                raise DeserializationError(
                    f"a stored event of stream {key[:12]} is not a JSON-RPC message"
                ) from None
            await send_callback(EventMessage(message, f"{key}.{row.seq}.{row.tag}"))  # type: ignore[arg-type]
        return stream_id

    async def close(self) -> None:
        """Release what the event store holds itself (the store it was built on stays open)."""


def text(value: Any) -> str:
    """``value`` as text (drivers hand back ``bytes`` or ``str``)."""
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)


def raw(value: Any) -> bytes:
    """``value`` as bytes (drivers hand back ``bytes``, ``memoryview`` or ``str``)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    return str(value).encode("utf-8", "surrogateescape")


def unreachable(
    backend: str, exc: BaseException, advice: str = "check that the server is running and reachable"
) -> StoreConnectionError:
    """The typed error for a driver failure while storing or replaying events."""
    return StoreConnectionError(
        f"the {backend} event store failed ({type(exc).__name__}); {advice}, then retry (the event was "
        "not stored or replayed)"
    )


class ClockSequence:
    """Positions for backends without a server-side sequence (MongoDB, DynamoDB).

    A position is the wall clock in microseconds, raised past every position this
    process has stored or read on the stream, so each process's events stay in order and
    an event stored after a replay sorts after the replayed ones. Positions are written
    with insert-if-absent: two processes picking the same one never overwrite each other
    (the loser takes the next). Streams are remembered in a bounded LRU.
    """

    def __init__(self, size: int = 10_000) -> None:
        self._last: OrderedDict[str, int] = OrderedDict()
        self._size = size

    def next(self, key: str) -> int:
        """A position after every one known on stream ``key``."""
        seq = max(time.time_ns() // 1000, self._last.get(key, 0) + 1)
        self.seen(key, seq)
        return seq

    def seen(self, key: str, seq: int) -> None:
        """Note that position ``seq`` exists on stream ``key``."""
        last = self._last
        if seq > last.get(key, 0):
            last[key] = seq
        if key in last:
            last.move_to_end(key)
        if len(last) > self._size:
            last.popitem(last=False)
