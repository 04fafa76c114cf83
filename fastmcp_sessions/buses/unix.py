"""The bus for processes on one machine (the disk store's replicas): a SQLite journal that
holds the events, and Unix datagram sockets that only wake the listeners.

Publishing appends the event to the journal (``<store file>.bus.sqlite3`` beside the disk
store's database, see ``buses/_journal.py``) on a worker thread, then sends a tiny wake-up
datagram, carrying the new sequence number, to every listening process's socket. The
datagram is never the carrier of truth: each listening process keeps the last sequence
number it delivered and reads every journal row after it, on every wake-up and every
``poll_interval`` seconds, in order, once. So a datagram lost to a full socket queue, a
socket removed from under a process, or a process not bound yet costs latency, never an
event; and a publisher restarted after ``flush()`` confirmed its events left them in the
journal. A listener starts at the journal's newest number: it gets the events accepted
after it subscribed. Events older than ``retain_seconds`` or beyond the newest
``retain_events`` of a server are pruned; a listener that was away longer than that
delivers the three list-changed events instead (counted in ``BusStats.missed``).

The journal holds the events' wire form (a ``ResourceUpdated`` URI in plain text), as
the PostgreSQL bus's events table does; the file is 0600 and the store's data never goes
there. The sockets live in ``$XDG_RUNTIME_DIR`` (else the system temp dir)
``/fastmcp-sessions-<uid>/<hash of store path and server name>/``, created 0700 and
refused when another user owns it, so no other account can read or inject wake-ups.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import os
import secrets
import socket
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastmcp_sessions.buses import _options
from fastmcp_sessions.buses._journal import Journal, journal_beside
from fastmcp_sessions.buses.base import DEFAULT_MAX_BUFFERED_EVENTS, DEFAULT_MAX_OUTBOX, QueuedBus
from fastmcp_sessions.errors import StoreSetupError
from fastmcp_sessions.stores.base import Store

__all__ = ["HAVE_UNIX_SOCKETS", "UnixSocketBus", "default_directory"]

HAVE_UNIX_SOCKETS = hasattr(socket, "AF_UNIX") and os.name == "posix"
"""Whether this platform has Unix datagram sockets (not Windows)."""

_SUFFIX = ".sock"
_RCVBUF = 1 << 16  # wake-ups are tiny, and one waiting is as good as a thousand
_JOURNAL_NAME = "events.sqlite3"  # in the socket directory, for a bus made from a directory alone
_READ_BATCH = 500  # rows per read; a listener that fell behind reads on until it is current


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


def _wake_up(seq: int) -> bytes:
    return b'{"v":"1","w":%d}' % seq


def _woken_for(data: bytes) -> int | None:
    """The sequence number a wake-up datagram announces, or ``None`` for anything else."""
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict) or body.get("v") != "1":
        return None
    seq = body.get("w")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) and seq > 0 else None


class UnixSocketBus(QueuedBus):
    """Fan-out across the processes of one machine: a SQLite journal, woken through Unix sockets.

    Args:
        directory: Where the processes of this server meet (see ``default_directory``;
            ``Path`` + socket name must stay under about 100 characters).
        server_name: Scopes the bus (part of the default directory's name, and of every
            journal row).
        journal: The journal file; default ``events.sqlite3`` in ``directory``
            (``for_store`` puts it beside the store's database: ``<file>.bus.sqlite3``).
        poll_interval: Seconds between reads when no wake-up arrives (the upper bound of
            the latency a lost datagram adds).
        retain_seconds, retain_events: Keep at most this old / this many events per server;
            a listener away longer than that gets the list-changed events instead.
        prune_interval: Seconds between two prunes by one publisher (it also prunes after
            every ``retain_events // 10`` events it wrote); 0 prunes after every write.
        max_buffered_events, max_outbox, timeout: See ``Bus`` and ``QueuedBus``; ``timeout``
            is also the journal's busy timeout.
    """

    messaging_system = "unix"
    replays = True

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        server_name: str,
        journal: str | os.PathLike[str] | None = None,
        poll_interval: float = 1.0,
        retain_seconds: float = 3600.0,
        retain_events: int = 10_000,
        prune_interval: float = 30.0,
        max_buffered_events: int = DEFAULT_MAX_BUFFERED_EVENTS,
        max_outbox: int = DEFAULT_MAX_OUTBOX,
        timeout: float = 5.0,
    ) -> None:
        if not HAVE_UNIX_SOCKETS:
            raise StoreSetupError("UnixSocketBus needs Unix datagram sockets; on this platform use MemoryBus")
        super().__init__(
            server_name=server_name,
            max_buffered_events=max_buffered_events,
            max_outbox=max_outbox,
            timeout=timeout,
        )
        self.directory = Path(directory)
        self.journal_path = Path(journal) if journal is not None else self.directory / _JOURNAL_NAME
        self.poll_interval = _options.seconds("poll_interval", poll_interval)
        self.retain_seconds = _options.seconds("retain_seconds", retain_seconds)
        self.retain_events = _options.count("retain_events", retain_events)
        self.prune_interval = _options.seconds("prune_interval", prune_interval, zero_ok=True)
        self._journal = Journal(self.journal_path, timeout=timeout)
        self._last_seq: int | None = None
        self._last_prune = -math.inf
        self._since_prune = 0
        self._own_path: Path | None = None
        self._senders: dict[str, socket.socket] = {}
        self._peers: list[str] = []
        self._peers_stamp: tuple[int, int] | None = None

    @classmethod
    def for_store(cls, store: Store, *, server_name: str, **options: Any) -> UnixSocketBus:
        """The bus of ``server_name`` for a store with a ``path`` (the disk store): its
        journal beside the store's database, its sockets in ``default_directory``."""
        path = getattr(store, "path", None)
        scope = str(Path(path).resolve()) if path is not None else repr(store)
        if path is not None:
            options.setdefault("journal", journal_beside(Path(path).resolve()))
        return cls(default_directory(scope, server_name), server_name=server_name, **options)

    def __repr__(self) -> str:
        return f"UnixSocketBus({str(self.directory)!r}, listeners={self.listener_count})"

    def _describe(self) -> str:
        return f"UnixSocketBus:{self.server_name}"

    # -- publishing --------------------------------------------------------------------------

    async def _send_batch(self, payloads: list[bytes]) -> None:
        last = await self._journal.append(self.server_name, [p.decode("utf-8") for p in payloads])
        # Committed: from here on nothing may raise, or the batch would be written twice.
        self._since_prune += len(payloads)
        now = time.monotonic()
        due = self._since_prune >= max(1, self.retain_events // 10)
        if due or now - self._last_prune >= self.prune_interval:
            self._last_prune, self._since_prune = now, 0
            try:
                await self._journal.prune(
                    self.server_name, older_than=self.retain_seconds, keep=self.retain_events
                )
            except Exception as error:  # pruning is housekeeping: the next publish tries again
                self._warn("prune", "%r: could not prune the journal (%s)", self, error)
        self._wake_peers(_wake_up(last))

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

    def _wake_peers(self, payload: bytes) -> None:
        paths = self._peer_paths()
        for gone in set(self._senders) - set(paths):
            self._drop_peer(gone, unlink=False)
        for path in paths:
            sock = self._senders.get(path) or self._connect(path)
            if sock is None:
                continue
            try:
                sock.send(payload)
            except BlockingIOError:
                pass  # its queue is full of wake-ups already: it will read the journal
            except (ConnectionRefusedError, FileNotFoundError):
                self._drop_peer(path, unlink=True)
            except OSError as error:
                self._warn(
                    "send", "%r: could not wake a listening process (%s); it reads on its timer", self, error
                )

    def _connect(self, path: str) -> socket.socket | None:
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
            self._warn(
                "send", "%r: could not reach a listening process (%s); it reads on its timer", self, error
            )
            return None
        self._senders[path] = sock
        return sock

    def _drop_peer(self, path: str, *, unlink: bool) -> None:
        sock = self._senders.pop(path, None)
        if sock is not None:
            sock.close()
        if unlink:
            with contextlib.suppress(OSError):
                os.unlink(path)  # its process is gone
            self._peers_stamp = None

    # -- listening ---------------------------------------------------------------------------

    async def _listen(self, on_message: Callable[[bytes], None], on_ready: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        sock, path, identity = self._open_socket()
        wake = asyncio.Event()

        def readable() -> None:
            while True:
                try:
                    data = sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    wake.set()  # the loop below finds out what broke
                    return
                seq = _woken_for(data)
                if seq is None:
                    self.stats.malformed += 1
                    self._warn("malformed", "%r: ignored a datagram that is not a wake-up", self)
                elif self._last_seq is None or seq > self._last_seq:
                    wake.set()

        loop.add_reader(sock.fileno(), readable)
        try:
            # Bound first, then read the start: a row committed in between is read now or woken for.
            if self._last_seq is None:
                self._last_seq = await self._journal.current(self.server_name)
            on_ready()
            while True:
                await self._read_after(on_message)
                try:
                    await asyncio.wait_for(wake.wait(), self.poll_interval)
                except TimeoutError:
                    await self._check_journal()
                wake.clear()
                if not _still_bound(path, identity):
                    raise ConnectionError("this process's socket was removed")
        finally:
            loop.remove_reader(sock.fileno())
            sock.close()
            if _still_bound(path, identity):
                with contextlib.suppress(OSError):
                    os.unlink(path)
            if self._own_path == path:
                self._own_path = None

    def _open_socket(self) -> tuple[socket.socket, Path, tuple[int, int]]:
        _private_dir(self.directory)
        path = self.directory / f"{secrets.token_hex(8)}{_SUFFIX}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
            sock.bind(str(path))
            os.chmod(path, 0o600)
            sock.setblocking(False)
            info = os.stat(path)
        except OSError as error:
            sock.close()
            raise StoreSetupError(f"could not open the change-notification socket {path}: {error}") from None
        self._own_path = path
        self._peers_stamp = None
        return sock, path, (info.st_dev, info.st_ino)

    async def _read_after(self, on_message: Callable[[bytes], None]) -> None:
        while True:
            assert self._last_seq is not None
            rows = await self._journal.read_after(self.server_name, self._last_seq, _READ_BATCH)
            for seq, event in rows:
                if event is None:
                    self._missed_events(f"events up to #{seq} were pruned before this process read them")
                else:
                    on_message(event.encode("utf-8"))
                self._last_seq = max(self._last_seq, seq)
            if len(rows) < _READ_BATCH:
                return

    async def _check_journal(self) -> None:
        # A journal that starts over (removed by hand, an older copy restored) numbers from
        # below our mark: without this the listener would wait for numbers never to come.
        current = await self._journal.current(self.server_name)
        if self._last_seq is not None and current < self._last_seq:
            self._last_seq = current
            self._missed_events(f"the journal {self._journal.path} started over")

    async def _close_backend(self) -> None:
        for path in list(self._senders):
            self._drop_peer(path, unlink=False)
        await self._journal.close()


def _still_bound(path: Path, identity: tuple[int, int]) -> bool:
    try:
        info = os.stat(path)
    except OSError:
        return False
    return (info.st_dev, info.st_ino) == identity
