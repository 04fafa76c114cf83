"""``fastmcp-sessions rotate-key``: re-encrypts under the newest key, survives Ctrl-C, reruns safely."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fastmcp_sessions import Keyring, open_store
from fastmcp_sessions.cli._common import Progress
from tests._support.cli_runner import CliRunner, assert_one_line_error, run_subprocess

OLD, NEW = Keyring.generate_key(), Keyring.generate_key()


def fill(url: str, n: int) -> None:
    async def go() -> None:
        store = open_store(url)
        for i in range(n):
            await store.put(f"k{i}", {"i": i}, collection=f"c{i % 4}", ttl=None if i % 2 else 900)
        await store.close()

    asyncio.run(go())


def read_all(url: str) -> dict[tuple[str, str], Any]:
    async def go() -> dict[tuple[str, str], Any]:
        store = open_store(url)
        out = {}
        try:
            for c in await store.collections():
                for k in await store.keys(c):
                    out[(c, k)] = await store.get(k, collection=c)
        finally:
            await store.close()
        return out

    return asyncio.run(go())


def under_newest(path: Path) -> tuple[int, int]:
    keyring = Keyring([NEW])
    with sqlite3.connect(path) as conn:
        tokens = [bytes(v) for (v,) in conn.execute("SELECT value FROM entries")]
    return sum(keyring.is_current(t) for t in tokens), len(tokens)


def test_rotation_interrupted_and_run_again(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "store.sqlite3"
    url = f"disk://{path}"
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", OLD)
    fill(url, 300)
    before = read_all(url)
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", f"{NEW},{OLD}")

    real = Progress.advance
    calls = {"n": 0}

    def interrupt_after_two_batches(self: Progress, *args: Any) -> None:
        calls["n"] += 1
        real(self, *args)
        if calls["n"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(Progress, "advance", interrupt_after_two_batches)
    stopped = cli("rotate-key", "--url", url, "--batch-size", "50")
    assert_one_line_error(stopped, 130)
    assert "run rotate-key again" in stopped.err
    done, total = under_newest(path)
    assert done == 100 and total == 300, "finished batches stay rotated, nothing half-written"
    assert read_all(url) == before

    monkeypatch.setattr(Progress, "advance", real)
    again = cli("rotate-key", "--url", url, "--batch-size", "50", "--json")
    assert again.code == 0, again.all
    assert again.json()["rewritten"] == 200 and again.json()["entries"] == 300
    assert again.json()["newest_key"] == Keyring([NEW]).fingerprints[0]
    assert under_newest(path) == (300, 300)
    assert "rotate-key:" in again.err

    third = cli("rotate-key", "--url", url, "--json")
    assert third.json()["rewritten"] == 0

    # The old key can go now: every entry, and the key check, are under the new one.
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", NEW)
    assert read_all(url) == before
    assert cli("doctor", "--url", url).code == 0
    for secret in (OLD, NEW):
        assert secret not in stopped.all + again.all + third.all


def test_rotation_keeps_ttls(cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"disk://{tmp_path / 's.sqlite3'}"
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", OLD)
    fill(url, 10)
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", f"{NEW},{OLD}")
    assert cli("rotate-key", "--url", url).code == 0

    async def ttl() -> Any:
        store = open_store(url)
        try:
            return await store.ttl("k1", collection="c1"), await store.ttl("k0", collection="c0")
        finally:
            await store.close()

    (v1, t1), (v0, t0) = asyncio.run(ttl())
    assert v0 == {"i": 0} and t0 is not None and 850 < t0 <= 900
    assert v1 == {"i": 1} and t1 is None


def test_rotation_of_an_encrypted_server_store(
    cli: CliRunner, redis_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import secrets

    url = f"{redis_server.url}?namespace=rot{secrets.token_hex(4)}&encryption=true"
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", OLD)
    fill(url, 40)
    before = read_all(url)
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", f"{NEW},{OLD}")
    result = cli("rotate-key", "--url", url, "--batch-size", "7", "--json")
    assert result.code == 0, result.all
    assert result.json()["rewritten"] == 40
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", NEW)
    assert read_all(url) == before


@pytest.mark.parametrize("url", ["memory://", "disk:///{tmp}/plain.sqlite3?encryption=false"])
def test_unencrypted_store_has_nothing_to_rotate(cli: CliRunner, tmp_path: Path, url: str) -> None:
    result = cli("rotate-key", "--url", url.replace("/{tmp}", str(tmp_path)))
    assert_one_line_error(result, 1)
    assert "nothing to rotate" in result.err


def test_rotation_of_an_encrypted_redis_store_with_the_default_batch_size(
    redis_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import secrets

    from tests._support.cli_runner import run_subprocess

    url = f"{redis_server.url}?namespace=rot{secrets.token_hex(4)}&encryption=true"
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", OLD)
    fill(url, 1200)  # more than one default batch (500) per run
    before = read_all(url)
    result = run_subprocess(
        "rotate-key", "--url", url, "--json", env={"FASTMCP_SESSIONS_KEYS": f"{NEW},{OLD}"}
    )
    assert result.code == 0, result.all
    assert "Traceback" not in result.all
    assert result.json()["rewritten"] == 1200
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", NEW)
    assert read_all(url) == before


# -- keys from the key file, and the OAuth keyring ------------------------------------------------


def _db_under(path: Path, key: str) -> tuple[int, int]:
    keyring = Keyring([key])
    with sqlite3.connect(path) as conn:
        tokens = [bytes(v) for (v,) in conn.execute("SELECT value FROM entries")]
    return sum(keyring.is_current(t) for t in tokens), len(tokens)


def test_rotation_of_the_key_file_keeps_a_key_file_only_server_reading(tmp_path: Path) -> None:
    from fastmcp_sessions.encryption import default_key_file, read_key_file
    from tests._support.key_scripts import READ_BACK, WRITE, run_python

    path = tmp_path / "notes.sqlite3"
    url = f"disk://{path}"
    assert run_python(WRITE, url=url).returncode == 0
    key_file = default_key_file("fastmcp")
    [old] = read_key_file(key_file)

    first = run_subprocess("rotate-key", "--url", url, "--new-key")
    assert first.code == 0, first.all
    new, kept = read_key_file(key_file)
    assert kept == old and new != old, "the new key first, the old one kept until the rotation is done"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert "the OAuth proxy storage of notes is rotated as well" in first.out
    assert f"fastmcp-sessions rotate-key --url {url} --drop-old" in first.out
    assert _db_under(path, new) == (_db_under(path, new)[1], _db_under(path, new)[1])
    # A server started from the key file alone (as Claude Desktop starts it) reads everything.
    assert run_python(READ_BACK, url=url).stdout.strip() == "{'n': 1} {'id': 'client'}"

    second = run_subprocess("rotate-key", "--url", url, "--drop-old")
    assert second.code == 0, second.all
    assert read_key_file(key_file) == [new]
    assert "holds the newest key only; the older keys are dropped from it" in second.out
    assert run_python(READ_BACK, url=url).stdout.strip() == "{'n': 1} {'id': 'client'}"
    doctor = run_subprocess("doctor", "--url", url)
    assert doctor.code == 0, doctor.all
    for secret in (old, new):
        assert secret not in first.all + second.all + doctor.all


def test_env_keys_over_a_key_file_are_refused_with_the_command_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastmcp_sessions.encryption import default_key_file, read_key_file
    from tests._support.key_scripts import READ_BACK, WRITE, run_python

    url = f"disk://{tmp_path / 'notes.sqlite3'}"
    assert run_python(WRITE, url=url).returncode == 0
    [old] = read_key_file(default_key_file("fastmcp"))
    refused = run_subprocess("rotate-key", "--url", url, env={"FASTMCP_SESSIONS_KEYS": f"{NEW},{old}"})
    assert_one_line_error(refused, 1)
    command = f"env -u FASTMCP_SESSIONS_KEYS fastmcp-sessions rotate-key --url {url} --new-key"
    assert command in refused.err
    assert read_key_file(default_key_file("fastmcp")) == [old], "nothing changed"
    # The command it names, run by a shell as copied, does the job.
    env = {**os.environ, "FASTMCP_SESSIONS_KEYS": f"{NEW},{old}"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    done = subprocess.run(command, shell=True, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert read_key_file(default_key_file("fastmcp"))[1] == old
    assert run_python(READ_BACK, url=url).stdout.strip() == "{'n': 1} {'id': 'client'}"


def test_rotation_of_the_oauth_keys_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastmcp_sessions.encryption import default_key_file
    from tests._support.key_scripts import READ_BACK, WRITE, run_python

    url = f"disk://{tmp_path / 'notes.sqlite3'}"
    oauth_old, oauth_new = Keyring.generate_key(), Keyring.generate_key()
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", OLD)
    monkeypatch.setenv("FASTMCP_SESSIONS_OAUTH_KEYS", oauth_old)
    assert run_python(WRITE, url=url).returncode == 0
    monkeypatch.setenv("FASTMCP_SESSIONS_OAUTH_KEYS", oauth_new)
    assert "KeyMismatchError" in run_python(READ_BACK, url=url).stderr, "the new key alone cannot read yet"

    monkeypatch.setenv("FASTMCP_SESSIONS_OAUTH_KEYS", f"{oauth_new},{oauth_old}")
    rotated = run_subprocess("rotate-key", "--url", url, "--json")
    assert rotated.code == 0, rotated.all
    assert rotated.json()["oauth_servers"] == ["notes"]
    monkeypatch.setenv("FASTMCP_SESSIONS_OAUTH_KEYS", oauth_new)
    assert run_python(READ_BACK, url=url).stdout.strip() == "{'n': 1} {'id': 'client'}"
    assert not default_key_file("fastmcp").exists()
