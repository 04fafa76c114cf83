"""OAuth proxy replicas on one Redis: a replica whose OAuth keys differ refuses to start
(fail closed), so no login ever meets an HTTP 500; replicas with the shared key serve
each other's client registrations."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import time
from typing import Any

import httpx

from fastmcp_sessions import Keyring
from fastmcp_sessions.encryption import fingerprint
from fastmcp_sessions.fastmcp import OAUTH_KEYS_ENV
from tests._support import WORKERS
from tests._support.servers import free_port

APP = WORKERS / "oauth_proxy_app.py"
REDIRECT = "http://127.0.0.1:9999/callback"


def _start(url: str, key: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(APP), url, str(port)],
        env={**os.environ, OAUTH_KEYS_ENV: key},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    return proc, port


def _wait_ready(proc: subprocess.Popen[bytes], port: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"replica exited: {proc.communicate()[1].decode()}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/.well-known/oauth-authorization-server", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("replica did not start in time")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _authorize(port: int, client_id: str) -> httpx.Response:
    verifier = "v" * 64
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return httpx.get(
        f"http://127.0.0.1:{port}/authorize",
        params={
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": "state-123",
        },
        timeout=30,
    )


def test_replica_with_other_oauth_keys_refuses_to_start(redis_server: Any) -> None:
    url = f"{redis_server.url}?namespace=oauthkeys{os.getpid()}"
    shared, other = Keyring.generate_key(), Keyring.generate_key()
    a, port_a = _start(url, shared)
    try:
        _wait_ready(a, port_a)
        registered = httpx.post(
            f"http://127.0.0.1:{port_a}/register",
            json={"redirect_uris": [REDIRECT], "client_name": "t", "token_endpoint_auth_method": "none"},
            timeout=30,
        )
        assert registered.status_code == 201, registered.text
        client_id = registered.json()["client_id"]
        first = _authorize(port_a, client_id)
        assert first.status_code in (200, 302, 303, 307), first.text  # consent page or redirect upstream

        # A replica with different OAuth keys fails at startup and never serves a request.
        b, port_b = _start(url, other)
        try:
            _, err = b.communicate(timeout=120)
        finally:
            _stop(b)
        assert b.returncode not in (0, None)
        log = err.decode()
        assert "KeyMismatchError" in log, log
        assert fingerprint(shared) in log and fingerprint(other) in log
        assert shared not in log and other not in log
        try:
            httpx.get(f"http://127.0.0.1:{port_b}/authorize", timeout=2)
        except httpx.TransportError:
            pass
        else:
            raise AssertionError("the refused replica answered HTTP")

        # A replica with the shared key serves the login that began on replica a.
        c, port_c = _start(url, shared)
        try:
            _wait_ready(c, port_c)
            again = _authorize(port_c, client_id)
            assert again.status_code == first.status_code, again.text
        finally:
            _stop(c)
    finally:
        _stop(a)
