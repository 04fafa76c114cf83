"""The bus for processes on one machine (the disk store's replicas): Unix datagram sockets.

No broker: every process that has listeners binds one datagram socket in a private
directory of the server; publishing sends the event, one datagram, to every socket found
there. A socket whose process died refuses the datagram and is removed by the next
publisher. Datagrams never block the publisher: when a receiver's queue is full, the
datagrams for it wait in a bounded per-receiver queue (``max_buffered_events``) that is
sent as soon as the receiver has room; past the bound they are dropped and counted
(``stats.dropped_overflow``).

The directory is ``$XDG_RUNTIME_DIR`` (else the system temp dir)
``/fastmcp-sessions-<uid>/<hash of store path and server name>/``, created 0700 and
refused when another user owns it, so no other account can read or inject events.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import socket
import stat
import tempfile
from collections import deque
from collections.abc import Callable
from pathlib import Path

from mcp.server.subscriptions import ServerEvent

from fastmcp_sessions.buses.base import DEFAULT_MAX_BUFFERED_EVENTS, Bus, decode_event, encode_event
from fastmcp_sessions.errors import StoreSetupError
from fastmcp_sessions.stores.base import Store

__all__ = ["HAVE_UNIX_SOCKETS", "UnixSocketBus", "default_directory"]

HAVE_UNIX_SOCKETS = hasattr(socket, "AF_UNIX") and os.name == "posix"
"""Whether this platform has Unix datagram sockets (not Windows)."""

_SUFFIX = ".sock"
_RCVBUF = 1 << 20


def default_directory(scope: str, server_name: str) -> Path:
    """The socket directory for ``server_name`` of the store at ``scope`` (e.g. its file path)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    digest = hashlib.sha256(f"{scope}\0{server_name}".encode()).hexdigest()[:16]
    return Path(base) / f"fastmcp-sessions-{os.getuid()}" / digest


def _private_dir(path: Path) -> None:
    for directory in (path.parent, path):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
        info = os.lstat(directory)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            raise StoreSetupError(
                f"{directory} is not a directory owned by this user; the change-notification bus will "
                "not use it (someone else could read or inject events): remove it or set XDG_RUNTIME_DIR"
            )
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.chmod(directory, 0o700)


class UnixSocketBus(Bus):
    """Fan-out across the processes of one machine through Unix datagram sockets.

    Args:
        directory: Where the processes of this server meet (see ``default_directory``;
            ``Path`` + socket name must stay under about 100 characters).
        server_name: Scopes the bus (part of the default directory's name).
        max_buffered_events: See ``Bus``.
    """

    messaging_system = "unix"

    crosses_processes = True

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        server_name: str,
        max_buffered_events: int = DEFAULT_MAX_BUFFERED_EVENTS,
    ) -> None:
        if not HAVE_UNIX_SOCKETS:
            raise StoreSetupError("UnixSocketBus needs Unix datagram sockets; on this platform use MemoryBus")
        super().__init__(server_name=server_name, max_buffered_events=max_buffered_events)
        self.directory = Path(directory)
        self._own_path: Path | None = None
        self._recv: socket.socket | None = None
        self._senders: dict[str, _Peer] = {}
        self._peers: list[str] = []
        self._peers_stamp: tuple[int, int] | None = None

    @classmethod
    def for_store(
        cls, store: Store, *, server_name: str, max_buffered_events: int = DEFAULT_MAX_BUFFERED_EVENTS
    ) -> UnixSocketBus:
        """The bus of ``server_name`` for a store with a ``path`` (the disk store)."""
        path = getattr(store, "path", None)
        scope = str(Path(path).resolve()) if path is not None else repr(store)
        return cls(
            default_directory(scope, server_name),
            server_name=server_name,
            max_buffered_events=max_buffered_events,
        )

    def __repr__(self) -> str:
        return f"UnixSocketBus({str(self.directory)!r}, listeners={self.listener_count})"

    def _started(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._listeners:
            self._open_receiver(loop)

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        """Register ``listener``; the first one opens this process's socket."""
        unsubscribe = super().subscribe(listener)
        if self._loop is not None and not self._loop.is_closed():
            self._open_receiver(self._loop)
        return unsubscribe

    async def close(self) -> None:
        """Remove this process's socket and stop delivering."""
        await super().close()
        if self._recv is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._recv.fileno())
            self._recv.close()
            self._recv = None
        if self._own_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._own_path.unlink()
            self._own_path = None
        for path in list(self._senders):
            self._drop_peer(path, unlink=False)

    def _open_receiver(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._recv is not None or self._closed:
            return
        _private_dir(self.directory)
        path = self.directory / f"{secrets.token_hex(8)}{_SUFFIX}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
            sock.bind(str(path))
            os.chmod(path, 0o600)
            sock.setblocking(False)
        except OSError as error:
            sock.close()
            raise StoreSetupError(f"could not open the change-notification socket {path}: {error}") from None
        self._recv, self._own_path = sock, path
        loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        sock = self._recv
        while sock is not None:
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self._on_datagram(data)

    def _on_datagram(self, data: bytes) -> None:
        decoded = decode_event(data)
        if decoded is None:
            self.stats.malformed += 1
            self._warn("malformed", "%r: ignored a datagram that is not an event", self)
            return
        origin, event = decoded
        if origin != self.origin:
            self.stats.received += 1
            self._deliver_local(event)

    def _peer_paths(self) -> list[str]:
        try:
            info = os.stat(self.directory)
        except FileNotFoundError:
            return []
        stamp = (info.st_mtime_ns, info.st_ino)
        if stamp != self._peers_stamp:  # a socket came or went: the directory changed
            own = str(self._own_path) if self._own_path is not None else None
            with os.scandir(self.directory) as entries:
                self._peers = [e.path for e in entries if e.name.endswith(_SUFFIX) and e.path != own]
            self._peers_stamp = stamp
        return self._peers

    def _send(self, event: ServerEvent) -> None:
        payload = encode_event(event, self.origin)
        paths = self._peer_paths()
        for gone in set(self._senders) - set(paths):
            self._drop_peer(gone, unlink=False)
        for path in paths:
            peer = self._senders.get(path) or self._connect(path)
            if peer is None:
                continue
            if peer.pending:  # keep the order: behind what already waits
                self._queue(path, peer, payload)
                continue
            try:
                peer.sock.send(payload)
            except BlockingIOError:
                self._queue(path, peer, payload)
            except (ConnectionRefusedError, FileNotFoundError):
                self._drop_peer(path, unlink=True)
            except OSError as error:
                self.stats.publish_failures += 1
                self._warn("send", "%r: could not send an event (%s)", self, error)

    def _connect(self, path: str) -> _Peer | None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            sock.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            sock.close()
            with contextlib.suppress(OSError):
                os.unlink(path)  # its process is gone
            self._peers_stamp = None
            return None
        except OSError as error:
            sock.close()
            self.stats.publish_failures += 1
            self._warn("send", "%r: could not reach a listening process (%s)", self, error)
            return None
        peer = self._senders[path] = _Peer(sock)
        return peer

    def _queue(self, path: str, peer: _Peer, payload: bytes) -> None:
        if len(peer.pending) >= self.max_buffered_events:
            self.stats.dropped_overflow += 1
            self._warn(
                "peer-full",
                "%r: a listening process is not keeping up; dropped an event for it (%d dropped so far)",
                self,
                self.stats.dropped_overflow,
            )
            return
        peer.pending.append(payload)
        if not peer.waiting and self._loop is not None:
            peer.waiting = True
            # A connected datagram socket turns writable when the receiver's queue has room.
            self._loop.add_writer(peer.sock.fileno(), self._flush_peer, path)

    def _flush_peer(self, path: str) -> None:
        peer = self._senders.get(path)
        if peer is None:
            return
        while peer.pending:
            try:
                peer.sock.send(peer.pending[0])
            except BlockingIOError:
                return
            except OSError:
                self._drop_peer(path, unlink=True)
                return
            peer.pending.popleft()
        peer.waiting = False
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_writer(peer.sock.fileno())

    def _drop_peer(self, path: str, *, unlink: bool) -> None:
        peer = self._senders.pop(path, None)
        if peer is not None:
            if peer.waiting and self._loop is not None and not self._loop.is_closed():
                self._loop.remove_writer(peer.sock.fileno())
            peer.sock.close()
        if unlink:
            with contextlib.suppress(OSError):
                os.unlink(path)  # its process is gone
            self._peers_stamp = None


class _Peer:
    __slots__ = ("pending", "sock", "waiting")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pending: deque[bytes] = deque()
        self.waiting = False
