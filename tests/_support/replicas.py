"""Replicas of one HTTP app, each its own OS process on a free loopback port.

The app is a script (a worker in ``tests/_support/workers/`` or an example) that serves
``/mcp`` with uvicorn on ``127.0.0.1:$PORT``; it learns its label from ``$REPLICA``. Every
replica gets the same environment otherwise (the store URL, the keys, the server name), and
one ``HOME`` so none of them reads the user's files::

    with start_replicas(APP, ("A", "B"), home=tmp, env={"FASTMCP_SESSIONS_URL": url}) as fleet:
        fleet["A"].url   # http://127.0.0.1:<port>/mcp

All processes start at once, then each is waited for (a replica that exits first fails
with the tail of its log). On leaving, each gets SIGTERM, then SIGKILL after 15 s.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests._support.servers import HOST, free_port, wait_for_port

__all__ = ["Replica", "start_replicas"]

STOP_TIMEOUT = 15.0


@dataclass
class Replica:
    """One running replica: its label, port, process and log file."""

    label: str
    port: int
    proc: subprocess.Popen[str]
    log: Path

    @property
    def url(self) -> str:
        """The replica's MCP endpoint."""
        return f"http://{HOST}:{self.port}/mcp"

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines the replica wrote (stdout and stderr together)."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``STOP_TIMEOUT`` seconds."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _spawn(script: Path, label: str, home: Path, env: Mapping[str, str]) -> Replica:
    port = free_port()
    environment = dict(
        os.environ,
        FASTMCP_CHECK_FOR_UPDATES="off",
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
    )
    environment.update(env)
    environment.update(REPLICA=label, PORT=str(port))
    log = home / f"{script.stem}-{label}.log"
    with log.open("w") as out:  # the child holds its own descriptor
        proc = subprocess.Popen(
            [sys.executable, str(script)],
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # a Ctrl-C of the test run reaches it through stop(), once
        )
    return Replica(label, port, proc, log)


@contextlib.contextmanager
def start_replicas(
    script: Path,
    labels: Sequence[str] = ("A", "B"),
    *,
    home: Path,
    env: Mapping[str, str],
    timeout: float = 120.0,
) -> Iterator[dict[str, Replica]]:
    """Run ``script`` once per label and yield the replicas by label once each one listens."""
    home.mkdir(parents=True, exist_ok=True)
    fleet: dict[str, Replica] = {}
    try:
        for label in labels:
            fleet[label] = _spawn(script, label, home, env)
        for replica in fleet.values():
            try:
                wait_for_port(replica.port, replica.proc, timeout=timeout)
            except AssertionError as error:
                raise AssertionError(
                    f"replica {replica.label} of {script.name} did not start: {error}\n{replica.log_tail()}"
                ) from None
        yield fleet
    finally:
        for replica in fleet.values():
            if replica.proc.poll() is None:
                replica.proc.send_signal(signal.SIGTERM)
        for replica in fleet.values():
            replica.stop()
