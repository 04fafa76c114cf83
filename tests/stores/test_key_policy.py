"""One key policy for every entry point: a key is created only while no encrypted data exists.

Each entry point runs in its own OS process, as a user's server, script or shell would:
data is written, the key file is deleted, and then the entry point must refuse at once,
say what to restore, and create nothing.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fastmcp_sessions import Keyring
from fastmcp_sessions.encryption import default_key_file
from tests._support.cli_runner import run_subprocess
from tests._support.key_scripts import READ_BACK, WRITE, run_python

OPEN_STORE = """
import asyncio
from fastmcp_sessions import open_store

async def main():
    store = open_store({url!r})
    try:
        await store.get("s1", collection="fastmcp/notes/state/fastmcp_state")
    finally:
        await store.close()

asyncio.run(main())
"""

SERVER_STORAGE = """
from fastmcp_sessions.fastmcp import server_storage

server_storage({url!r}, server_name="notes")
"""


def last_line(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stderr.strip().splitlines()[-1]


def written(tmp_path: Path, *, encrypted: bool = True) -> tuple[str, Path]:
    """A disk store written by a FastMCP server's storage in another process; its key file deleted.

    ``encrypted=False`` keeps the database in plaintext, so only the OAuth part needs the key.
    """
    path = tmp_path / "notes.sqlite3"
    url = f"disk://{path}" + ("" if encrypted else "?encryption=false")
    proc = run_python(WRITE, url=url)
    assert proc.returncode == 0, proc.stderr
    key_file = default_key_file("fastmcp")
    assert key_file.exists(), "the first start created the one key file"
    key_file.unlink()
    return url, key_file


def assert_refused(proc: subprocess.CompletedProcess[str], key_file: Path) -> None:
    assert proc.returncode != 0
    line = last_line(proc)
    assert line.startswith("fastmcp_sessions.errors.MissingKeyError"), proc.stderr
    assert f"the key file {key_file} does not exist: restore it from your backup" in line
    assert "nothing was created" in line
    assert not key_file.exists(), "no new key: it could never read the existing data"


def test_fresh_server_storage_creates_one_key_for_the_data_and_the_oauth_storage(tmp_path: Path) -> None:
    url = f"disk://{tmp_path / 'fresh.sqlite3'}"
    assert run_python(WRITE, url=url).returncode == 0
    assert default_key_file("fastmcp").read_text().count("\n") == 1
    assert run_python(READ_BACK, url=url).stdout.strip() == "{'n': 1} {'id': 'client'}"


def test_open_store_refuses_when_the_key_file_is_gone(tmp_path: Path) -> None:
    url, key_file = written(tmp_path)
    proc = run_python(OPEN_STORE, url=url)
    assert_refused(proc, key_file)
    assert f"the database {url.removeprefix('disk://')} holds encrypted data" in last_line(proc)


@pytest.mark.parametrize("encrypted", [True, False], ids=["encrypted", "plaintext-with-oauth"])
def test_server_storage_refuses_at_once_when_the_key_file_is_gone(tmp_path: Path, encrypted: bool) -> None:
    # The OAuth keyring used to make a new key file here, and every later read then failed
    # with a key mismatch instead of naming the missing file.
    url, key_file = written(tmp_path, encrypted=encrypted)
    assert_refused(run_python(SERVER_STORAGE, url=url), key_file)


def test_an_oauth_keyring_from_env_needs_no_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url, key_file = written(tmp_path, encrypted=False)
    monkeypatch.setenv("FASTMCP_SESSIONS_OAUTH_KEYS", Keyring.generate_key())
    proc = run_python(SERVER_STORAGE, url=url)
    assert proc.returncode == 0, proc.stderr
    assert not key_file.exists()


def test_the_cli_refuses_and_creates_nothing(tmp_path: Path) -> None:
    url, key_file = written(tmp_path)
    for args in (("rotate-key", "--url", url), ("sessions", "list", "--url", url, "--identity", "alice")):
        run = run_subprocess(*args)
        assert run.code != 0 and "Traceback" not in run.all
        assert f"the key file {key_file} does not exist: restore it from your backup" in run.err
        assert not key_file.exists()


def test_doctor_reports_the_key_as_missing(tmp_path: Path) -> None:
    url, key_file = written(tmp_path)
    run = run_subprocess("doctor", "--url", url)
    assert run.code == 1
    assert f"its key file {key_file} is missing: restore it from your backup" in run.out
    assert "reachable    not checked (the key is missing)" in run.out
    assert "mismatch" not in run.all and "reachable    NO" not in run.out
    assert not key_file.exists()
