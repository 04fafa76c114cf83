"""``fastmcp-sessions doctor``: selection and reason, reachability, files and modes, keys, warnings."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from fastmcp_sessions import Keyring, open_store
from fastmcp_sessions.cli.doctor import Report, _check_transport
from fastmcp_sessions.encryption import default_key_file, fingerprint
from tests._support.cli_runner import CliRunner, assert_one_line_error
from tests._support.servers import free_port


def make_store(url: str | None = None) -> None:
    async def go() -> None:
        store = open_store(url)
        await store.put("k", {"v": 1}, collection="c")
        await store.close()

    asyncio.run(go())


def findings(result: Any, level: str) -> list[str]:
    return [f["message"] for f in result.json()["findings"] if f["level"] == level]


def test_default_store_not_created_yet_is_left_alone(cli: CliRunner) -> None:
    result = cli("doctor", "--json")
    assert result.code == 0, result.all
    report = result.json()
    assert report["backend"] == "DiskStore"
    assert "FASTMCP_SESSIONS_URL unset" in report["chosen_by"]
    assert report["reachable"] is None
    files = {f["role"]: f for f in report["files"]}
    assert not files["database"]["exists"] and not files["key file"]["exists"]
    assert not Path(files["database"]["path"]).exists(), "doctor never creates the database"
    assert not Path(files["key file"]["path"]).exists(), "doctor never creates a key file"


def test_existing_default_store_reports_modes_latency_and_key_source(cli: CliRunner) -> None:
    make_store()
    result = cli("doctor", "--json")
    assert result.code == 0, result.all
    report = result.json()
    assert report["reachable"] is True and report["latency_ms"] >= 0
    assert report["key_source"].startswith("key file ")
    assert report["key_fingerprints"][0].startswith("sha256:")
    modes = {f["role"]: f["mode"] for f in report["files"]}
    assert modes["database"] == "0600" and modes["data directory"] == "0700" and modes["key file"] == "0600"
    assert findings(result, "warning") == [] and findings(result, "error") == []
    text = cli("doctor")
    assert "reachable    yes" in text.out and "0600" in text.out


def test_world_readable_files_are_warnings_and_strict_fails(cli: CliRunner) -> None:
    make_store()
    report = cli("doctor", "--json").json()
    files = {f["role"]: Path(f["path"]) for f in report["files"]}
    os.chmod(files["database"], 0o644)
    os.chmod(files["key file"], 0o604)
    result = cli("doctor", "--json")
    assert result.code == 0
    warnings = findings(result, "warning")
    assert any("database" in w and "chmod 600" in w for w in warnings)
    assert any("key file" in w and "chmod 600" in w for w in warnings)
    strict = cli("doctor", "--strict")
    assert_one_line_error(strict, 1)


def test_plaintext_disk_store_is_a_warning(cli: CliRunner, tmp_path: Path) -> None:
    url = f"disk://{tmp_path / 'plain.sqlite3'}?encryption=false"
    make_store(url)
    result = cli("--url", url, "doctor", "--json")
    assert result.code == 0
    assert result.json()["chosen_by"] == "--url"
    assert any("plaintext on disk" in w for w in findings(result, "warning"))


def test_env_selects_the_store_and_says_so(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"disk://{tmp_path / 'env.sqlite3'}"
    monkeypatch.setenv("FASTMCP_SESSIONS_URL", url)
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", Keyring.generate_key())
    make_store(url)
    result = cli("doctor", "--json")
    report = result.json()
    assert report["chosen_by"] == "env FASTMCP_SESSIONS_URL" and report["store"] == url
    assert report["key_source"] == "env FASTMCP_SESSIONS_KEYS"


def test_wrong_key_is_an_error(cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"disk://{tmp_path / 's.sqlite3'}"
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", Keyring.generate_key())
    make_store(url)
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", Keyring.generate_key())
    result = cli("doctor", "--url", url)
    assert_one_line_error(result, 1)
    assert "cannot decrypt" in result.out


def test_missing_key_file_for_existing_data_is_an_error(cli: CliRunner) -> None:
    make_store()
    report = cli("doctor", "--json").json()
    key_file = next(Path(f["path"]) for f in report["files"] if f["role"] == "key file")
    key_file.unlink()
    result = cli("doctor")
    assert_one_line_error(result, 1)
    assert "key file" in result.out and "missing" in result.out
    assert not key_file.exists(), "doctor must not create a new key over existing data"


def test_unreachable_redis_is_an_error(cli: CliRunner) -> None:
    result = cli("doctor", "--url", f"redis://:s3cret-pass@127.0.0.1:{free_port()}/0")
    assert_one_line_error(result, 1)
    assert "unreachable" in result.out
    assert "s3cret-pass" not in result.all


def test_reachable_redis_on_loopback(cli: CliRunner, redis_server: Any) -> None:
    result = cli("doctor", "--url", redis_server.url, "--json")
    assert result.code == 0, result.all
    report = result.json()
    assert report["reachable"] is True and report["backend"] == "RedisStore"
    [plaintext] = findings(result, "warning")
    assert "unencrypted on the server" in plaintext and "?encryption=true" in plaintext
    # --strict is the deployment check docs/fastmcp.md promises: an unencrypted store fails it.
    assert_one_line_error(cli("doctor", "--strict", "--url", redis_server.url), 1)


def _connects(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_a_peer_that_is_not_redis_is_named_so(cli: CliRunner) -> None:

    port = free_port()
    # A real TCP server in its own process that answers every command like an HTTP server.
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import socket, sys\n"
            "s = socket.create_server(('127.0.0.1', int(sys.argv[1])))\n"
            "while True:\n"
            "    c, _ = s.accept()\n"
            "    while c.recv(4096):\n"
            "        c.sendall(b'HTTP/1.1 400 Bad Request\\r\\n\\r\\n')\n",
            str(port),
        ]
    )
    try:
        deadline = time.monotonic() + 30
        while not _connects(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        result = cli("doctor", "--url", f"redis://127.0.0.1:{port}/0")
    finally:
        server.kill()
        server.wait()
    assert_one_line_error(result, 1)
    assert "does not speak the Redis protocol" in result.out and "host and port" in result.out
    assert "Redis >= 6.2" not in result.out


@pytest.mark.parametrize(
    ("url", "expect"),
    [
        ("redis://10.0.0.5:6379/0", {"TLS", "authentication"}),
        ("redis://:pw@10.0.0.5:6379/0", {"TLS"}),
        ("rediss://10.0.0.5:6379/0", {"authentication"}),
        ("rediss://user:pw@redis.internal:6379/0", set()),
        ("redis://127.0.0.1:6379/0", set()),
        ("redis://localhost:6379/0", set()),
        ("redis://[::1]:6379/0", set()),
        ("redis+cluster://10.0.0.1:7000,10.0.0.2:7000", {"TLS", "authentication"}),
        ("unix:///run/redis.sock", set()),
        ("mongodb://db.internal:27017", {"TLS", "credentials"}),
        ("mongodb+srv://u:p@cluster.example.net", set()),
    ],
)
def test_transport_warnings(url: str, expect: set[str]) -> None:
    report = Report(url=url, chosen_by="--url")
    scheme = url.split("://", 1)[0]
    _check_transport(report, url, scheme, {})
    got = {
        word
        for _, message in report.findings
        for word in ("TLS", "authentication", "credentials")
        if word in message
    }
    assert got == expect, report.findings


def _encrypted_redis(redis_server: Any, name: str) -> str:
    return f"{redis_server.url}?namespace=doctor-{name}&encryption=true"


def test_encrypted_redis_without_a_key_is_an_error(cli: CliRunner, redis_server: Any) -> None:
    url = _encrypted_redis(redis_server, "nokey")
    for args in (("doctor", "--url", url), ("doctor", "--strict", "--url", url)):
        result = cli(*args)
        assert_one_line_error(result, 1)
        assert "key missing" in result.out and "FASTMCP_SESSIONS_KEYS" in result.out
        assert "Keyring.generate_key()" in result.out
        assert "no unsafe settings" not in result.all
    assert not default_key_file("fastmcp").exists(), "no key file for a store shared over the network"


def test_key_mismatch_across_replicas_is_an_error(
    cli: CliRunner, redis_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _encrypted_redis(redis_server, "mismatch")
    first, other = Keyring.generate_key(), Keyring.generate_key()
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", first)
    make_store(url)
    ok = cli("doctor", "--strict", "--url", url)
    assert ok.code == 0, ok.all
    assert "no unsafe settings found" in ok.out

    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", other)
    for args in (("doctor", "--url", url), ("doctor", "--strict", "--url", url)):
        result = cli(*args)
        assert_one_line_error(result, 1)
        assert "key mismatch" in result.out
        assert fingerprint(first) in result.out and fingerprint(other) in result.out
        assert first not in result.all and other not in result.all
        assert "no unsafe settings" not in result.all

    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", f"{other},{first}")  # the new key first: a rotation
    rotating = cli("doctor", "--url", url, "--json")
    assert rotating.code == 0, rotating.all
    assert any("starts a rotation" in m for m in findings(rotating, "info"))


def test_doctor_reports_whether_telemetry_records(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer doctor-SECRET-header")
    result = cli("doctor", "--url", "memory://", "--json")
    status = result.json()["telemetry"]
    assert status["active"] is False  # no SDK provider is set in the CLI's process
    assert status["sdk_installed"] is True
    assert "OTEL_EXPORTER_OTLP_HEADERS" in status["otel_env"]
    text = cli("doctor", "--url", "memory://").all
    line = next(line for line in text.splitlines() if line.startswith("telemetry"))
    assert "inactive in this process" in line and "OTEL_EXPORTER_OTLP_HEADERS" in line
    assert "doctor-SECRET-header" not in result.all + text
