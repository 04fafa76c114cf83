"""A real PostgreSQL for the tests, started on 127.0.0.1 (see tests/_support/servers.py for the others).

Plain Python (stdlib only), no pytest. Debian's binaries (``/usr/lib/postgresql/*/bin``,
installed by ``scripts/install-test-servers.sh``) refuse to run as root, so as root
``initdb`` and ``pg_ctl`` run through ``runuser -u postgres --``, in a temporary
directory owned by that user::

    with PostgresServer() as pg:
        store = PostgreSQLStore(pg.url)
        ...
        pg.crash()          # pg_ctl stop -m immediate: connections cut, no shutdown checkpoint
        pg.start()          # same port, same data directory (crash recovery replays the WAL)

``port``, ``pid`` (the postmaster's, from ``postmaster.pid``), ``running``,
``log_path``, ``log_tail()``, ``url``, ``psql(sql)``. The port is chosen once and kept
across stop/start; ``stop()`` is ``pg_ctl -m fast stop`` (the postmaster, by PID, if
that fails) and removes the directory. The server runs with ``fsync`` and
``synchronous_commit`` on, so an acknowledged commit survives ``crash()``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests._support.servers import HOST, LocalServer, ServerStartError, free_port

__all__ = ["PostgresServer", "postgres_bin_dir"]


def postgres_bin_dir() -> Path | None:
    """The directory of the newest installed ``initdb``/``pg_ctl``, or ``None``."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3].split(".")[0])
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer(LocalServer):
    """One PostgreSQL cluster (data directory + postmaster) on 127.0.0.1:``port``."""

    name = "postgresql"
    start_timeout = 60.0
    run_as = "postgres"

    def __init__(self, *, port: int | None = None, extra_settings: dict[str, str] | None = None) -> None:
        super().__init__(port=port)
        self.extra_settings = dict(extra_settings or {})
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise ServerStartError(
                "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); run "
                "scripts/install-test-servers.sh"
            )
        self.bin_dir = bin_dir

    # -- public API ---------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "sock"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/postgres"

    @property
    def pid(self) -> int | None:
        """The postmaster's PID while it runs (first line of ``postmaster.pid``)."""
        if self.workdir is None:
            return None
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def start(self) -> PostgresServer:
        """Create the cluster on first use, start the postmaster and wait until it accepts logins."""
        if self.running:
            return self
        self._track()
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="test-postgresql-"))
            self.socket_dir.mkdir()
            self._chown(self.workdir, self.socket_dir)
            self._run(
                [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-A", "trust", "-U", "postgres",
                 "-E", "UTF8", "--locale=C", "-N"],
                "initdb",
            )  # fmt: skip
        if self._port is None:
            self._port = free_port()
        if not self._wait_port_free(self.port, 5.0):
            raise ServerStartError(f"{self.name}: port {HOST}:{self.port} is still in use")
        settings = {
            "listen_addresses": HOST,
            "fsync": "on",
            "synchronous_commit": "on",
            "max_connections": "200",
            **self.extra_settings,
        }
        options = f"-p {self.port} -k {self.socket_dir} " + " ".join(
            f"-c {k}={v}" for k, v in settings.items()
        )
        started = time.monotonic()
        self._run(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_path), "-w",
             "-t", str(int(self.start_timeout)), "-o", options, "start"],
            "pg_ctl start",
        )  # fmt: skip
        self.last_start_seconds = time.monotonic() - started
        return self

    def crash(self) -> None:
        """``pg_ctl stop -m immediate``: every backend is killed at once; the data directory stays."""
        self._pg_ctl_stop("immediate")

    def restart(self) -> PostgresServer:
        """A clean stop (``-m fast``) and a start on the same port, data kept."""
        self._pg_ctl_stop("fast")
        return self.start()

    def stop(self) -> None:
        """``pg_ctl -m fast stop`` (SIGKILL to the postmaster's PID if that fails); removes the directory."""
        if self.workdir is not None:
            try:
                self._pg_ctl_stop("fast")
            except ServerStartError:
                pid = self.pid
                if pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        self._untrack()

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` with psql over the Unix socket; its output (tuples only, unaligned)."""
        result = subprocess.run(
            [str(self.bin_dir / "psql"), "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres",
             "-d", database, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    # -- internals ----------------------------------------------------------

    def _pg_ctl_stop(self, mode: str) -> None:
        if not self.running:
            return
        self._run(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "-t", "30", "stop"],
            f"pg_ctl stop -m {mode}",
        )

    def _as_user(self, command: list[str]) -> list[str]:
        return ["runuser", "-u", self.run_as, "--", *command] if os.geteuid() == 0 else command

    def _chown(self, *paths: Path) -> None:
        if os.geteuid() != 0:
            return
        user = pwd.getpwnam(self.run_as)
        for path in paths:
            os.chown(path, user.pw_uid, user.pw_gid)
            path.chmod(0o700)

    def _run(self, command: list[str], what: str) -> None:
        result = subprocess.run(
            self._as_user(command),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=self.start_timeout + 30,
        )
        if result.returncode != 0:
            raise ServerStartError(
                f"{self.name}: {what} failed with code {result.returncode}\n{result.stdout}{result.stderr}\n"
                f"--- {self.log_path} (tail) ---\n{self.log_tail()}"
            )
