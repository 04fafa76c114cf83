"""Publisher and listener processes of tests/bus_worker.py, and the delivery check every
cross-process bus must pass: each update the publisher's ``flush()`` confirmed arrives at
the listener once, in order, whatever faults the test injects meanwhile."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from tests._support import WORKERS

WORKER = WORKERS / "bus_worker.py"


class Worker:
    """One bus_worker.py process; its stdout lines collected by a thread as they come."""

    def __init__(self, *args: str) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            start_new_session=True,
        )
        self._stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    def values(self, tag: str) -> list[str]:
        """The payloads of the lines that start with ``tag``, in order."""
        with self._lock:
            return [line[len(tag) + 1 :] for line in self.lines if line.startswith(tag + " ") or line == tag]

    def wait_for(self, predicate: Callable[[Worker], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if self.proc.poll() is not None and not predicate(self):
                raise AssertionError(f"worker exited ({self.proc.returncode}) before {what}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}:\n{self.log()}")
            time.sleep(0.02)

    def log(self) -> str:
        with self._lock:
            tail = self.lines[-10:]
        return "stdout tail: " + repr(tail) + "\nstderr tail:\n" + "".join(self._stderr[-30:])

    def stop(self) -> None:
        """SIGTERM (the worker closes its bus), then SIGKILL by PID if it lingers."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def confirmed_updates_arrive_once_in_order(
    store_url: str,
    server_name: str,
    count: int,
    faults: list[Callable[[], None]],
    *,
    listener_url: str | None = None,
    timeout: float = 120.0,
) -> tuple[list[str], list[str], str]:
    """Run a listener (on ``listener_url``, default ``store_url``) and a publisher of
    ``count`` updates; call each fault once the publisher has confirmed a further
    ``count // (len(faults) + 1)`` updates; return (confirmed, received URIs, the
    listener's final ``BusStats`` line)."""
    listener = Worker("listen", listener_url or store_url, server_name)
    publisher: Worker | None = None
    try:
        listener.wait_for(lambda w: bool(w.values("READY")), 60, "the listener's READY")
        publisher = Worker("publish", store_url, server_name, str(count))
        step = count // (len(faults) + 1)
        for n, fault in enumerate(faults, start=1):
            publisher.wait_for(
                lambda w, n=n: len(w.values("C")) >= n * step, timeout, f"{n * step} confirmations"
            )
            fault()
        publisher.wait_for(lambda w: bool(w.values("DONE")), timeout, "the publisher's DONE")
        confirmed = publisher.values("C")
        listener.wait_for(
            lambda w: len(w.values("R")) >= len(confirmed), 30, f"{len(confirmed)} updates at the listener"
        )
        time.sleep(0.5)  # a duplicate arriving late would show here
    finally:
        if publisher is not None:
            publisher.stop()
        listener.stop()
    stats = listener.values("STATS")
    return confirmed, listener.values("R"), stats[0] if stats else ""
