"""Real test servers for the storage backends, started on 127.0.0.1.

Plain Python (stdlib only; ``cryptography`` only for Redis TLS), no pytest.
Every launcher binds 127.0.0.1 on a free port, runs the server as a child
process with its data and log in a temporary directory, and stops it by PID.

    with RedisServer() as redis:
        client = redis_py.Redis.from_url(redis.url)
        ...
        redis.restart()          # same port, empty data set (outage test)

Launchers (each has start(), stop(), restart(), kill(), pause(), resume(),
``port``, ``pid``, ``running``, ``log_path``, ``log_tail()`` and works as a
context manager):

* ``RedisServer(tls=False, password=None, username=None)``  -> ``.url``
* ``RedisCluster(masters=3)``       -> ``.url``, ``.nodes``, ``.servers``
* ``MongoServer(kind="nx"|"mongoeco")``   -> ``.url``
* ``DynamoDBServer(kind="local"|"moto")`` -> ``.endpoint_url``

The servers that do not come from Debian's packages live under
``.cache/test-servers/`` at the repository root, put there by
``scripts/install-test-servers.sh``; ``ensure_installed()`` says what is
missing.

Semantics shared by all launchers:

* The port is chosen once, on the first start(), and kept for the life of
  the object: stop() followed by start(), or restart(), comes back on the
  same port.
* stop() terminates the process by PID (SIGTERM, then SIGKILL after a
  grace period) and removes the data/log directory.  restart() and kill()
  keep the directory (Redis Cluster needs its nodes.conf to come back
  as the same cluster).  Data is in memory only: a restarted server is empty.
* TLS material (Redis) is made once per object and kept until the object is
  garbage-collected or the interpreter exits, so ``ca_file`` stays valid
  across stop()/start().
* Servers still running when the interpreter exits are stopped (atexit).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Self

__all__ = [
    "CACHE_DIR",
    "INSTALL_SCRIPT",
    "REPO_ROOT",
    "DynamoDBServer",
    "LocalServer",
    "ManagedServer",
    "MongoServer",
    "RedisCluster",
    "RedisServer",
    "ServerStartError",
    "available",
    "ensure_installed",
    "free_port",
    "port_is_free",
]

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache" / "test-servers"
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-test-servers.sh"

# Layout written by scripts/install-test-servers.sh.
_NX_BIN = CACHE_DIR / "nx-27017" / "venv" / "bin" / "nx-27017"
_NX_MARKER = CACHE_DIR / "nx-27017" / ".installed"
_MOTO_BIN = CACHE_DIR / "moto" / "venv" / "bin" / "moto_server"
_MOTO_MARKER = CACHE_DIR / "moto" / ".installed"
_ECO_PYTHON = CACHE_DIR / "mongoeco" / "venv" / "bin" / "python"
_ECO_MARKER = CACHE_DIR / "mongoeco" / ".installed"
_DDB_DIR = CACHE_DIR / "dynamodb-local"
_DDB_JAR = _DDB_DIR / "emulator" / "DynamoDBLocal.jar"
_DDB_LIB = _DDB_DIR / "emulator" / "DynamoDBLocal_lib"
_DDB_CLASSES = _DDB_DIR / "classes"
_DDB_LAUNCHER = _DDB_CLASSES / "DynamoDBLocalLoopback.class"
_DDB_MARKER = _DDB_DIR / ".installed"


class ServerStartError(RuntimeError):
    """A server did not become ready; the message ends with its log's tail."""


# --------------------------------------------------------------------------
# installation checks


def _which(name: str) -> str | None:
    return shutil.which(name)


def _java() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return _which("java")


def _component_problems(component: str) -> list[str]:
    """Why ``component`` can't run here (empty list: it can)."""
    if component == "redis":
        return [f"`{b}` not found on PATH" for b in ("redis-server",) if not _which(b)]
    if component == "redis-cluster":
        return [f"`{b}` not found on PATH" for b in ("redis-server", "redis-cli") if not _which(b)]
    if component == "redis-tls":
        problems = _component_problems("redis")
        try:
            import cryptography  # noqa: F401
        except ImportError:
            problems.append("python package `cryptography` is not importable")
        return problems
    if component in ("nx", "nx-27017"):
        return [] if _NX_BIN.is_file() and _NX_MARKER.is_file() else [f"{_NX_BIN} missing"]
    if component == "mongoeco":
        if _ECO_PYTHON.is_file() and _ECO_MARKER.is_file():
            return []
        return [
            f"{_ECO_PYTHON} missing (mongoeco needs Python >= 3.13; the install "
            "script skips it where there is none)"
        ]
    if component == "moto":
        return [] if _MOTO_BIN.is_file() and _MOTO_MARKER.is_file() else [f"{_MOTO_BIN} missing"]
    if component in ("local", "dynamodb-local"):
        problems = []
        if not _java():
            problems.append("`java` not found (JAVA_HOME or PATH)")
        for path in (_DDB_JAR, _DDB_LIB, _DDB_LAUNCHER, _DDB_MARKER):
            if not path.exists():
                problems.append(f"{path} missing")
        return problems
    raise ValueError(f"unknown test-server component {component!r}")


_ALL_REQUIRED = ("redis", "redis-cluster", "redis-tls", "nx", "moto", "dynamodb-local")


def available(component: str) -> bool:
    """Whether ``component`` is installed and can be started here.

    Components: redis, redis-cluster, redis-tls, nx, mongoeco, moto,
    dynamodb-local (alias local).
    """
    return not _component_problems(component)


def ensure_installed(*components: str) -> None:
    """Raise RuntimeError naming what is missing for ``components``.

    With no argument, checks every server but the optional mongoeco.
    """
    wanted = components or _ALL_REQUIRED
    problems = [f"{c}: {p}" for c in wanted for p in _component_problems(c)]
    if problems:
        raise RuntimeError(
            "test servers are not installed:\n  - "
            + "\n  - ".join(problems)
            + f"\nRun `bash {INSTALL_SCRIPT.relative_to(REPO_ROOT)}` from the repository root "
            f"({REPO_ROOT}); it installs them under {CACHE_DIR.relative_to(REPO_ROOT)}/."
        )


# --------------------------------------------------------------------------
# ports


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Whether 127.0.0.1:port can be bound (and nothing listens there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _tcp_connects(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(port: int, proc: subprocess.Popen[str], timeout: float = 30.0) -> None:
    """Wait until ``proc`` listens on 127.0.0.1:``port``; fail at once if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.communicate()[1]}")
        if _tcp_connects(port):
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {HOST}:{port}")


# --------------------------------------------------------------------------
# process management

_live: set[LocalServer] = set()
_live_lock = threading.Lock()


@atexit.register
def _stop_leftovers() -> None:
    with _live_lock:
        leftovers = list(_live)
    for server in leftovers:
        with contextlib.suppress(Exception):
            server.stop()


class LocalServer:
    """What every test server shares: 127.0.0.1:``port``, a work directory with its log,
    ``with`` support, and a registry that stops it at exit if a test did not.

    Subclasses implement ``start()`` and ``stop()``, calling ``_track()`` and ``_untrack()``.
    """

    name = "server"
    start_timeout = 20.0

    def __init__(self, *, port: int | None = None) -> None:
        self._port: int | None = port
        self.workdir: Path | None = None
        self.last_start_seconds: float | None = None

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{self.name}: not started yet, no port chosen")
        return self._port

    @property
    def pid(self) -> int | None:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self.pid is not None

    @property
    def log_path(self) -> Path | None:
        return self.workdir / f"{self.name}.log" if self.workdir else None

    def log_tail(self, lines: int = 40) -> str:
        path = self.log_path
        if path is None or not path.exists():
            return "(no log)"
        text = path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:]) or "(log is empty)"

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"<{type(self).__name__} {HOST}:{self._port} {state}>"

    def _track(self) -> None:
        with _live_lock:
            _live.add(self)  # until stop(): process and/or directory to clean up

    def _untrack(self) -> None:
        with _live_lock:
            _live.discard(self)

    @staticmethod
    def _wait_port_free(port: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not port_is_free(port):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


class ManagedServer(LocalServer):
    """One server process on 127.0.0.1:``port``; subclasses say how to run it.

    Subclasses implement ``_command()`` (argv, run in ``workdir``) and
    ``_probe()`` (True once the server answers), and may override
    ``_prepare()`` (write config files into ``workdir`` before each start).
    """

    stop_timeout = 10.0

    def __init__(self, *, port: int | None = None, start_timeout: float | None = None):
        super().__init__(port=port)
        self._fixed_port = port is not None
        self._proc: subprocess.Popen | None = None
        self._log_file = None
        if start_timeout is not None:
            self.start_timeout = start_timeout

    # -- public API ---------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        """Start the server and wait until it answers; returns self."""
        if self.running:
            return self
        self._ensure_installed()
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix=f"test-{self.name}-"))
        self._track()
        first_start = self._port is None
        attempts = 3 if first_start and not self._fixed_port else 1
        for attempt in range(attempts):
            if self._port is None:
                self._port = self._pick_port()
            try:
                # a port picked just now is either free or lost: no waiting
                self._spawn_and_wait(port_wait=5.0 if not first_start or self._fixed_port else 0.0)
                return self
            except ServerStartError as error:
                port_taken = "in use" in str(error).lower() or "bind" in str(error).lower()
                if attempt + 1 < attempts and port_taken:
                    self._port = None  # lost the race for the port: try another one
                    continue
                raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Terminate by PID (SIGTERM, then SIGKILL), remove the data/log dir."""
        self._terminate(signal.SIGTERM)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        self._untrack()

    def kill(self) -> None:
        """SIGKILL the process (a crash); keeps the dir; start() brings it back."""
        self._terminate(signal.SIGKILL)

    def restart(self) -> Self:
        """Stop the process and start it again on the same port (data is lost)."""
        self._terminate(signal.SIGTERM)
        return self.start()

    def pause(self) -> None:
        """SIGSTOP: the port stays open but nothing answers (a hung server)."""
        if self._proc is not None and self.running:
            os.kill(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after pause()."""
        if self._proc is not None and self.running:
            os.kill(self._proc.pid, signal.SIGCONT)

    # -- for subclasses -----------------------------------------------------

    def _ensure_installed(self) -> None:
        pass

    def _pick_port(self) -> int:
        return free_port()

    def _prepare(self) -> None:
        pass

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _env(self) -> dict[str, str] | None:
        return None

    def _probe(self) -> bool:
        raise NotImplementedError

    # -- internals ----------------------------------------------------------

    def _spawn_and_wait(self, port_wait: float = 5.0) -> None:
        assert self.workdir is not None
        if not self._wait_port_free(self.port, port_wait):
            raise ServerStartError(f"{self.name}: port {HOST}:{self.port} is still in use by another process")
        self._prepare()
        command = self._command()
        log_path = self.log_path
        self._log_file = open(log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self._log_file.write(f"$ {' '.join(command)}\n".encode())
        self._log_file.flush()
        started = time.monotonic()
        self._proc = subprocess.Popen(
            command,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=self._env(),
            start_new_session=True,  # ^C in the test run does not hit it first
        )
        deadline = started + self.start_timeout
        last_error: BaseException | None = None
        while True:
            code = self._proc.poll()
            if code is not None:
                self._close_log()
                self._proc = None
                raise ServerStartError(
                    f"{self.name} exited with code {code} while starting on {HOST}:{self.port}\n"
                    f"command: {' '.join(command)}\n--- {log_path} (tail) ---\n{self.log_tail()}"
                )
            try:
                if self._probe():
                    self.last_start_seconds = time.monotonic() - started
                    return
            except Exception as error:  # not ready yet
                last_error = error
            if time.monotonic() > deadline:
                tail = self.log_tail()
                self._terminate(signal.SIGKILL)
                raise ServerStartError(
                    f"{self.name} did not become ready on {HOST}:{self.port} within "
                    f"{self.start_timeout:.0f}s (last probe error: {last_error!r})\n"
                    f"command: {' '.join(command)}\n--- {log_path} (tail) ---\n{tail}"
                )
            time.sleep(0.05)

    def _terminate(self, sig: int) -> None:
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGCONT)  # in case it was paused
                    os.kill(proc.pid, sig)
                try:
                    proc.wait(timeout=self.stop_timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=self.stop_timeout)
            self._proc = None
        self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            with contextlib.suppress(OSError):
                self._log_file.close()
            self._log_file = None


# --------------------------------------------------------------------------
# Redis


class RedisProtocolError(Exception):
    pass


def _resp_encode(*args: str | bytes | int) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _resp_read(reader) -> object:
    line = reader.readline()
    if not line.endswith(b"\r\n"):
        raise RedisProtocolError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RedisProtocolError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        data = reader.read(size + 2)
        return data[:-2].decode(errors="replace")
    if kind == b"*":
        size = int(rest)
        return None if size < 0 else [_resp_read(reader) for _ in range(size)]
    raise RedisProtocolError(f"unexpected reply {line!r}")


def redis_command(
    port: int,
    *commands: Sequence[str | bytes | int],
    ssl_context: ssl.SSLContext | None = None,
    auth: Sequence[str] | None = None,
    timeout: float = 2.0,
) -> list[object]:
    """Send each command (a sequence of args) to 127.0.0.1:port, return replies.

    A tiny RESP2 client: enough for PING, CLUSTER INFO and the like.  ``auth``
    is (password,) or (username, password); error replies raise
    RedisProtocolError.
    """
    sock = socket.create_connection((HOST, port), timeout=timeout)
    try:
        if ssl_context is not None:
            sock = ssl_context.wrap_socket(sock, server_hostname=HOST)
        reader = sock.makefile("rb")
        all_commands = ([("AUTH", *auth)] if auth else []) + [tuple(c) for c in commands]
        sock.sendall(b"".join(_resp_encode(*c) for c in all_commands))
        replies = [_resp_read(reader) for _ in all_commands]
        return replies[1:] if auth else replies
    finally:
        sock.close()


def _redis_conf_quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


class _TlsMaterial:
    """A CA, a server certificate (127.0.0.1, ::1, localhost) and a client one."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="test-tls-"))
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.dir), True)
        self.ca_file = self.dir / "ca.crt"
        self.cert_file = self.dir / "server.crt"
        self.key_file = self.dir / "server.key"
        self.client_cert_file = self.dir / "client.crt"
        self.client_key_file = self.dir / "client.key"
        self._generate()

    def _generate(self) -> None:
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        now = datetime.datetime.now(datetime.UTC)
        not_before = now - datetime.timedelta(hours=1)
        not_after = now + datetime.timedelta(days=2)

        def key():
            return ec.generate_private_key(ec.SECP256R1())

        def pem_key(k) -> bytes:
            return k.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )

        def name(cn: str) -> x509.Name:
            return x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fastmcp-sessions tests"),
                    x509.NameAttribute(NameOID.COMMON_NAME, cn),
                ]
            )

        ca_key = key()
        ca_name = name("fastmcp-sessions test CA")
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )

        def leaf(cn: str, usage, sans) -> tuple[bytes, bytes]:
            leaf_key = key()
            builder = (
                x509.CertificateBuilder()
                .subject_name(name(cn))
                .issuer_name(ca_name)
                .public_key(leaf_key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(not_before)
                .not_valid_after(not_after)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                    critical=False,
                )
            )
            if sans:
                builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
            cert = builder.sign(ca_key, hashes.SHA256())
            return cert.public_bytes(serialization.Encoding.PEM), pem_key(leaf_key)

        server_pem, server_key = leaf(
            "localhost",
            ExtendedKeyUsageOID.SERVER_AUTH,
            [
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("::1")),
            ],
        )
        client_pem, client_key = leaf("test-client", ExtendedKeyUsageOID.CLIENT_AUTH, [])

        self.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        self.cert_file.write_bytes(server_pem)
        self.key_file.write_bytes(server_key)
        self.client_cert_file.write_bytes(client_pem)
        self.client_key_file.write_bytes(client_key)
        for private in (self.key_file, self.client_key_file):
            private.chmod(0o600)

    def cleanup(self) -> None:
        self._finalizer()


class RedisServer(ManagedServer):
    """Debian's redis-server on 127.0.0.1, nothing saved to disk.

    * ``tls=True``: TLS only (``--port 0``), certificates made with
      ``cryptography`` for 127.0.0.1/localhost; ``ca_file``, ``cert_file``,
      ``key_file``, ``client_cert_file``, ``client_key_file``; client
      certificates are optional (``tls_auth_clients="optional"``; pass "yes"
      to require them).
    * ``password`` alone: ``requirepass`` (user ``default``).
    * ``username`` + ``password``: an ACL user with all rights, and the
      ``default`` user switched off, so an unauthenticated client gets NOAUTH.

    ``url`` is ``redis://[user:password@]127.0.0.1:P/0`` (``rediss://`` with TLS).
    ``extra_config`` lines are appended to the generated redis.conf.
    """

    name = "redis"
    start_timeout = 15.0

    def __init__(
        self,
        tls: bool = False,
        password: str | None = None,
        username: str | None = None,
        *,
        port: int | None = None,
        db: int = 0,
        tls_auth_clients: str = "optional",
        extra_config: Sequence[str] = (),
        start_timeout: float | None = None,
    ) -> None:
        super().__init__(port=port, start_timeout=start_timeout)
        if username is not None and not password:
            raise ValueError("username needs a password")
        if tls_auth_clients not in ("no", "yes", "optional"):
            raise ValueError("tls_auth_clients is one of no, yes, optional")
        self.tls = tls
        self.password = password
        self.username = username
        self.db = db
        self.tls_auth_clients = tls_auth_clients
        self.extra_config = list(extra_config)
        self._tls: _TlsMaterial | None = None

    # TLS files (None without tls)
    @property
    def ca_file(self) -> Path | None:
        return self._tls_material().ca_file if self.tls else None

    @property
    def cert_file(self) -> Path | None:
        return self._tls_material().cert_file if self.tls else None

    @property
    def key_file(self) -> Path | None:
        return self._tls_material().key_file if self.tls else None

    @property
    def client_cert_file(self) -> Path | None:
        return self._tls_material().client_cert_file if self.tls else None

    @property
    def client_key_file(self) -> Path | None:
        return self._tls_material().client_key_file if self.tls else None

    def ssl_context(self, client_cert: bool = False) -> ssl.SSLContext | None:
        """A client SSLContext trusting the test CA (None without tls)."""
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if client_cert:
            context.load_cert_chain(str(self.client_cert_file), str(self.client_key_file))
        return context

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        credentials = ""
        if self.password:
            user = urllib.parse.quote(self.username or "", safe="")
            credentials = f"{user}:{urllib.parse.quote(self.password, safe='')}@"
        return f"{scheme}://{credentials}{HOST}:{self.port}/{self.db}"

    @property
    def auth(self) -> tuple[str, ...] | None:
        """Arguments for AUTH: (password,) or (username, password), or None."""
        if not self.password:
            return None
        return (self.username, self.password) if self.username else (self.password,)

    def command(self, *args: str | bytes | int, timeout: float = 2.0) -> object:
        """Run one command over a fresh connection (raw RESP, no redis package)."""
        return redis_command(
            self.port, args, ssl_context=self.ssl_context(), auth=self.auth, timeout=timeout
        )[0]

    def _tls_material(self) -> _TlsMaterial:
        if self._tls is None:
            self._tls = _TlsMaterial()
        return self._tls

    def _ensure_installed(self) -> None:
        ensure_installed("redis-tls" if self.tls else "redis")

    def _config_lines(self) -> list[str]:
        assert self.workdir is not None
        lines = [
            f"bind {HOST}",
            "protected-mode yes",
            f"dir {_redis_conf_quote(str(self.workdir))}",
            'save ""',
            "appendonly no",
            "daemonize no",
            'logfile ""',
            "databases 16",
        ]
        if self.tls:
            material = self._tls_material()
            lines += [
                "port 0",
                f"tls-port {self.port}",
                f"tls-cert-file {_redis_conf_quote(str(material.cert_file))}",
                f"tls-key-file {_redis_conf_quote(str(material.key_file))}",
                f"tls-ca-cert-file {_redis_conf_quote(str(material.ca_file))}",
                f"tls-auth-clients {self.tls_auth_clients}",
            ]
        else:
            lines.append(f"port {self.port}")
        if self.password and self.username:
            lines += [
                "user default off",
                f"user {self.username} on {_redis_conf_quote('>' + self.password)} ~* &* +@all",
            ]
        elif self.password:
            lines.append(f"requirepass {_redis_conf_quote(self.password)}")
        return lines + list(self.extra_config)

    def _prepare(self) -> None:
        assert self.workdir is not None
        (self.workdir / "redis.conf").write_text("\n".join(self._config_lines()) + "\n")

    def _command(self) -> list[str]:
        assert self.workdir is not None
        return [_which("redis-server") or "redis-server", str(self.workdir / "redis.conf")]

    def _probe(self) -> bool:
        return self.command("PING", timeout=1.0) == "PONG"


class RedisCluster:
    """``masters`` redis-server nodes (no replicas) joined into one cluster.

    ``nodes``: [(host, port)]; ``url``: ``redis+cluster://h:p1,h:p2,...``;
    ``servers``: the RedisServer of each node, to stop, kill, pause or
    restart one node alone.  start() waits for ``cluster_state:ok`` and all
    nodes known on every node.  restart() restarts every node on its port
    with its nodes.conf, so the same cluster comes back (empty).
    """

    name = "redis-cluster"

    def __init__(self, masters: int = 3, *, start_timeout: float = 30.0) -> None:
        if masters < 3:
            raise ValueError("a Redis Cluster needs at least 3 masters")
        self.masters = masters
        self.start_timeout = start_timeout
        self.servers: list[RedisServer] = []
        self.last_start_seconds: float | None = None

    @property
    def nodes(self) -> list[tuple[str, int]]:
        return [(HOST, server.port) for server in self.servers]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"{h}:{p}" for h, p in self.nodes)

    @property
    def running(self) -> bool:
        return bool(self.servers) and all(server.running for server in self.servers)

    def start(self) -> RedisCluster:
        ensure_installed("redis-cluster")
        started = time.monotonic()
        if not self.servers:
            for _ in range(self.masters):
                bus_port = free_port()
                self.servers.append(
                    RedisServer(
                        extra_config=[
                            "cluster-enabled yes",
                            "cluster-config-file nodes.conf",
                            "cluster-node-timeout 2000",
                            f"cluster-port {bus_port}",
                            "cluster-require-full-coverage yes",
                        ]
                    )
                )
            for server in self.servers:
                server.name = "redis-cluster-node"
        try:
            for server in self.servers:
                server.start()
            if self._cluster_info(self.servers[0]).get("cluster_slots_assigned") != "16384":
                self._create()
            self._wait_ok(started + self.start_timeout)
        except BaseException:
            logs = "\n".join(f"--- node {s._port} ---\n{s.log_tail(15)}" for s in self.servers)
            self.stop()
            raise ServerStartError(f"Redis Cluster did not start\n{logs}") from sys.exc_info()[1]
        self.last_start_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def restart(self) -> RedisCluster:
        started = time.monotonic()
        for server in self.servers:
            server._terminate(signal.SIGTERM)
        for server in self.servers:
            server.start()
        self._wait_ok(started + self.start_timeout)
        self.last_start_seconds = time.monotonic() - started
        return self

    def wait_ok(self, timeout: float | None = None) -> None:
        """Wait for cluster_state:ok on every running node (after a node restart)."""
        self._wait_ok(time.monotonic() + (timeout or self.start_timeout))

    def cluster_info(self, index: int = 0) -> dict[str, str]:
        return self._cluster_info(self.servers[index])

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<RedisCluster {self.url if self.servers else '(not started)'}>"

    @staticmethod
    def _cluster_info(server: RedisServer) -> dict[str, str]:
        text = server.command("CLUSTER", "INFO")
        info = {}
        for line in str(text).splitlines():
            key, _, value = line.partition(":")
            info[key.strip()] = value.strip()
        return info

    def _create(self) -> None:
        command = [
            _which("redis-cli") or "redis-cli",
            "--cluster",
            "create",
            *[f"{h}:{p}" for h, p in self.nodes],
            "--cluster-replicas",
            "0",
            "--cluster-yes",
        ]
        result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise ServerStartError(
                f"`{' '.join(command)}` failed ({result.returncode}):\n"
                f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )

    def _wait_ok(self, deadline: float) -> None:
        last: object = None
        while True:
            try:
                infos = [self._cluster_info(s) for s in self.servers if s.running]
                last = infos
                if infos and all(
                    i.get("cluster_state") == "ok" and i.get("cluster_known_nodes") == str(self.masters)
                    for i in infos
                ):
                    return
            except (OSError, RedisProtocolError) as error:
                last = error
            if time.monotonic() > deadline:
                raise ServerStartError(f"Redis Cluster not ok in time; last CLUSTER INFO: {last}")
            time.sleep(0.1)


class RedisSentinelNode(RedisServer):
    """One Redis Sentinel (``redis-server FILE --sentinel``) watching ``service`` on
    127.0.0.1:``master_port``. Sentinel rewrites its config file, so it lives in the
    node's own writable directory."""

    name = "redis-sentinel"

    def __init__(self, service: str, master_port: int, *, quorum: int = 2, down_after_ms: int = 1000) -> None:
        super().__init__()
        self.service = service
        self.master_port = master_port
        self.quorum = quorum
        self.down_after_ms = down_after_ms

    def _config_lines(self) -> list[str]:
        assert self.workdir is not None
        return [
            f"bind {HOST}",
            f"port {self.port}",
            f"dir {_redis_conf_quote(str(self.workdir))}",
            'logfile ""',
            f"sentinel monitor {self.service} {HOST} {self.master_port} {self.quorum}",
            f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}",
            f"sentinel failover-timeout {self.service} 10000",
            f"sentinel parallel-syncs {self.service} 1",
        ]

    def _command(self) -> list[str]:
        assert self.workdir is not None
        return [_which("redis-server") or "redis-server", str(self.workdir / "redis.conf"), "--sentinel"]

    def master_address(self) -> tuple[str, int] | None:
        """Where this sentinel says the primary is."""
        reply = self.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
        if not isinstance(reply, list) or len(reply) != 2:
            return None
        return str(reply[0]), int(str(reply[1]))


class RedisSentinelGroup:
    """A primary, ``replicas`` replicas and ``sentinels`` sentinels, all on 127.0.0.1.

    ``url`` is ``redis+sentinel://127.0.0.1:S1,.../SERVICE``. ``servers`` holds the data
    nodes (``servers[0]`` starts as the primary); start() returns once every replica is
    in sync and every sentinel knows the replicas and the other sentinels.
    """

    name = "redis-sentinel-group"

    def __init__(
        self, replicas: int = 1, sentinels: int = 3, *, service: str = "fms", start_timeout: float = 40.0
    ):
        self.service = service
        self.replica_count = replicas
        self.sentinel_count = sentinels
        self.start_timeout = start_timeout
        self.servers: list[RedisServer] = []
        self.sentinels: list[RedisSentinelNode] = []

    @property
    def url(self) -> str:
        return "redis+sentinel://" + ",".join(f"{HOST}:{s.port}" for s in self.sentinels) + f"/{self.service}"

    def start(self) -> RedisSentinelGroup:
        ensure_installed("redis")
        deadline = time.monotonic() + self.start_timeout
        try:
            sync = ["repl-diskless-sync-delay 0", "repl-diskless-sync yes"]
            primary = RedisServer(extra_config=sync)
            self.servers.append(primary)
            primary.start()
            for _ in range(self.replica_count):
                replica = RedisServer(extra_config=[*sync, f"replicaof {HOST} {primary.port}"])
                self.servers.append(replica)
                replica.start()
            for _ in range(self.sentinel_count):
                sentinel = RedisSentinelNode(self.service, primary.port)
                self.sentinels.append(sentinel)
                sentinel.start()
            self._wait_ready(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def primary(self) -> RedisServer | None:
        """The data node the sentinels currently name as primary."""
        address = self.sentinels[0].master_address()
        return next((s for s in self.servers if address and s.port == address[1]), None)

    def wait_replicas_in_sync(self, count: int, timeout: float = 30.0) -> None:
        """Wait until the current primary reports ``count`` connected replicas."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                primary = self.primary()
                if primary is not None and primary.running:
                    info = str(primary.command("INFO", "replication"))
                    last = info
                    online = info.count("state=online")
                    if "role:master" in info and online >= count:
                        return
            except (OSError, RedisProtocolError) as error:
                last = error
            time.sleep(0.1)
        raise ServerStartError(f"replicas not in sync in time; last INFO: {last}")

    def _wait_ready(self, deadline: float) -> None:
        self.wait_replicas_in_sync(self.replica_count, max(1.0, deadline - time.monotonic()))
        last: object = None
        while time.monotonic() < deadline:
            try:
                ready = True
                for sentinel in self.sentinels:
                    fields = sentinel.command("SENTINEL", "MASTER", self.service)
                    info = (
                        dict(zip(fields[::2], fields[1::2], strict=True)) if isinstance(fields, list) else {}
                    )
                    last = info
                    ready = ready and int(str(info.get("num-slaves", 0))) >= self.replica_count
                    ready = ready and int(str(info.get("num-other-sentinels", 0))) >= self.sentinel_count - 1
                if ready:
                    return
            except (OSError, RedisProtocolError) as error:
                last = error
            time.sleep(0.1)
        raise ServerStartError(f"sentinels did not find the replicas and each other in time; last: {last}")

    def stop(self) -> None:
        for node in [*self.sentinels, *self.servers]:
            node.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<RedisSentinelGroup {self.url if self.sentinels else '(not started)'}>"


# --------------------------------------------------------------------------
# MongoDB wire-protocol stand-ins


def _bson_hello() -> bytes:
    def element_int32(key: str, value: int) -> bytes:
        return b"\x10" + key.encode() + b"\x00" + struct.pack("<i", value)

    def element_str(key: str, value: str) -> bytes:
        data = value.encode() + b"\x00"
        return b"\x02" + key.encode() + b"\x00" + struct.pack("<i", len(data)) + data

    body = element_int32("hello", 1) + element_str("$db", "admin")
    return struct.pack("<i", len(body) + 5) + body + b"\x00"


def mongo_hello(port: int, timeout: float = 2.0) -> bytes:
    """Send an OP_MSG ``hello`` to 127.0.0.1:port; return the reply's BSON.

    Raises OSError/ValueError when the server does not answer like MongoDB.
    """
    document = _bson_hello()
    payload = struct.pack("<I", 0) + b"\x00" + document  # flags, section kind 0
    header = struct.pack("<iiii", 16 + len(payload), 1, 0, 2013)  # OP_MSG
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(header + payload)
        reply = b""
        while len(reply) < 16:
            chunk = sock.recv(65536)
            if not chunk:
                raise ValueError("connection closed before a reply")
            reply += chunk
        length, _request_id, response_to, op_code = struct.unpack("<iiii", reply[:16])
        while len(reply) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise ValueError("connection closed mid-reply")
            reply += chunk
    if op_code != 2013 or response_to != 1:
        raise ValueError(f"unexpected reply opCode={op_code} responseTo={response_to}")
    body = reply[16 + 5 : length]
    if b"ok\x00" not in body:
        raise ValueError("reply has no ok field")
    return body


_MONGOECO_RUNNER = r"""
import asyncio, json, signal, sys
from mongoeco.wire import AsyncMongoEcoProxyServer, WireAuthUser

async def main(host, port, users):
    server = AsyncMongoEcoProxyServer(
        host=host, port=port,
        auth_users=tuple(WireAuthUser(u, p) for u, p in users),
    )
    address = await server.start()
    print(f"mongoeco listening on {address.host}:{address.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])))
"""


class MongoServer(ManagedServer):
    """A MongoDB wire-protocol server on 127.0.0.1 (there is no real mongod).

    * ``kind="nx"``: nx-27017 (NeoSQLite, in-memory SQLite), Python 3.11 venv.
    * ``kind="mongoeco"``: mongoeco's wire proxy (in-memory engine); only
      where the install script found Python >= 3.13.  It alone supports
      ``username``/``password`` (SCRAM users in ``admin``).

    ``url`` is ``mongodb://127.0.0.1:P`` (a single server is detected as
    standalone), or with credentials
    ``mongodb://user:password@127.0.0.1:P/?authSource=admin&authMechanism=SCRAM-SHA-256``.
    """

    KINDS = ("nx", "mongoeco")
    start_timeout = 30.0

    def __init__(
        self,
        kind: str = "nx",
        *,
        username: str | None = None,
        password: str | None = None,
        port: int | None = None,
        start_timeout: float | None = None,
    ) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, not {kind!r}")
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        if username is not None and kind != "mongoeco":
            raise ValueError("authentication is only supported with kind='mongoeco'")
        super().__init__(port=port, start_timeout=start_timeout)
        self.kind = kind
        self.name = f"mongo-{kind}"
        self.username = username
        self.password = password

    @classmethod
    def available(cls, kind: str = "nx") -> bool:
        """Whether this kind of server is installed here."""
        if kind not in cls.KINDS:
            raise ValueError(f"kind must be one of {cls.KINDS}, not {kind!r}")
        return available(kind)

    @property
    def url(self) -> str:
        if self.username is None:
            return f"mongodb://{HOST}:{self.port}"
        credentials = (
            f"{urllib.parse.quote(self.username, safe='')}:"
            f"{urllib.parse.quote(self.password or '', safe='')}@"
        )
        # mongoeco answers no saslSupportedMechs in hello, so drivers would
        # fall back to SCRAM-SHA-1, which it does not accept: name the mechanism.
        return f"mongodb://{credentials}{HOST}:{self.port}/?authSource=admin&authMechanism=SCRAM-SHA-256"

    def _ensure_installed(self) -> None:
        ensure_installed(self.kind)

    def _command(self) -> list[str]:
        assert self.workdir is not None
        if self.kind == "nx":
            return [
                str(_NX_BIN),
                "--host", HOST,
                "--port", str(self.port),
                "--db", "memory",
                "--log-file", str(self.workdir / "nx-27017.internal.log"),
                "--pid-file", str(self.workdir / "nx-27017.pid"),
            ]  # fmt: skip
        users = [[self.username, self.password]] if self.username is not None else []
        runner = self.workdir / "mongoeco_server.py"
        return [str(_ECO_PYTHON), str(runner), HOST, str(self.port), json.dumps(users)]

    def _prepare(self) -> None:
        assert self.workdir is not None
        if self.kind == "mongoeco":
            (self.workdir / "mongoeco_server.py").write_text(_MONGOECO_RUNNER.lstrip())

    def _probe(self) -> bool:
        mongo_hello(self.port, timeout=1.0)
        return True


# --------------------------------------------------------------------------
# DynamoDB


def dynamodb_list_tables(
    endpoint_url: str, region: str = "us-east-1", access_key: str = "test", timeout: float = 2.0
) -> tuple[int, dict]:
    """POST ListTables without a real signature; (HTTP status, JSON body).

    Neither DynamoDB Local nor moto checks signatures, but both read the
    credential scope (access key, region, and for moto the service name)
    from the Authorization header.  Raises OSError if nothing answers.
    """
    date = time.strftime("%Y%m%d")
    request = urllib.request.Request(
        endpoint_url.rstrip("/") + "/",
        data=b"{}",
        method="POST",
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={access_key}/{date}/{region}/dynamodb/aws4_request, "
                "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + "0" * 64
            ),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:  # a 4xx/5xx still proves it is up
        status, raw = error.code, error.read()
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = {"raw": raw[:500].decode(errors="replace")}
    return status, body


class DynamoDBServer(ManagedServer):
    """A DynamoDB endpoint on 127.0.0.1.

    * ``kind="local"``: Amazon DynamoDB Local 1.25 (Java), in memory,
      bound to 127.0.0.1 by scripts/DynamoDBLocalLoopback.java.  With
      ``shared_db=True`` (default) all credentials/regions see the same
      tables; with False, tables are per access key + region as in AWS.
    * ``kind="moto"``: ``moto_server`` (moto[server]) in its own venv.

    ``endpoint_url`` is ``http://127.0.0.1:P``.  Any credentials work;
    ``region``, ``access_key`` and ``secret_key`` are suggestions.
    """

    KINDS = ("local", "moto")
    region = "us-east-1"
    access_key = "test"
    secret_key = "test"

    def __init__(
        self,
        kind: str = "local",
        *,
        shared_db: bool = True,
        port: int | None = None,
        start_timeout: float | None = None,
    ) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, not {kind!r}")
        super().__init__(port=port, start_timeout=start_timeout)
        self.kind = kind
        self.name = f"dynamodb-{kind}"
        self.shared_db = shared_db
        self.start_timeout = start_timeout or (90.0 if kind == "local" else 45.0)

    @classmethod
    def available(cls, kind: str = "local") -> bool:
        if kind not in cls.KINDS:
            raise ValueError(f"kind must be one of {cls.KINDS}, not {kind!r}")
        return available("dynamodb-local" if kind == "local" else "moto")

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return self.endpoint_url

    def client_kwargs(self) -> dict[str, str]:
        """Keyword arguments for boto3/aioboto3 ``client("dynamodb", **kw)``."""
        return {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
        }

    def list_tables(self) -> tuple[int, dict]:
        return dynamodb_list_tables(self.endpoint_url, self.region, self.access_key)

    def _ensure_installed(self) -> None:
        ensure_installed("dynamodb-local" if self.kind == "local" else "moto")

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        # Nothing here may reach out: no AWS credentials or telemetry from the host.
        for key in list(env):
            if key.startswith("AWS_"):
                del env[key]
        env.update(
            AWS_ACCESS_KEY_ID=self.access_key,
            AWS_SECRET_ACCESS_KEY=self.secret_key,
            AWS_DEFAULT_REGION=self.region,
            DDB_LOCAL_TELEMETRY="0",  # read by DynamoDB Local's TelemetryUtil
        )
        return env

    def _command(self) -> list[str]:
        if self.kind == "moto":
            # moto_server's own entry point, with requests serialised (see moto_serialized.py).
            launcher = Path(__file__).parent / "workers" / "moto_serialized.py"
            return [str(_MOTO_BIN.with_name("python")), str(launcher), HOST, str(self.port)]
        command = [
            _java() or "java",
            "-Djava.net.preferIPv4Stack=true",
            f"-Ddynamodblocal.host={HOST}",
            f"-Djava.library.path={_DDB_LIB}",
            f"-Dsqlite4java.library.path={_DDB_LIB}",
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            "-XX:-UsePerfData",
            "-Xmx512m",
        ]
        command += [
            "-cp",
            f"{_DDB_CLASSES}{os.pathsep}{_DDB_JAR}",
            "DynamoDBLocalLoopback",
            "-inMemory",
            "-disableTelemetry",
            "-port",
            str(self.port),
        ]
        if self.shared_db:
            command.append("-sharedDb")
        return command

    def _probe(self) -> bool:
        status, body = self.list_tables()
        return status in (200, 400) and ("TableNames" in body or "__type" in body)
