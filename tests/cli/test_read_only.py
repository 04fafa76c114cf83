"""Reading never creates anything: doctor, the listing commands and migrate's source side."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fastmcp_sessions import DiskStore, Keyring, open_store
from fastmcp_sessions.encryption import default_key_file
from fastmcp_sessions.stores.disk import default_path
from tests._support.cli_runner import CliRunner

LISTINGS = [
    ("sessions", "list", "--identity", "alice"),
    ("sessions", "show", "--identity", "alice", "s1"),
    ("servers", "list"),
    ("tokens", "list", "--identity", "alice"),
]


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")} if root.exists() else set()


@pytest.mark.parametrize("command", LISTINGS, ids=lambda c: " ".join(c[:2]))
def test_listing_a_mistyped_disk_path_fails_and_creates_nothing(
    cli: CliRunner, tmp_path: Path, command: tuple[str, ...]
) -> None:
    typo = tmp_path / "no-such-dir" / "store.sqlit3"
    result = cli(*command, "--url", f"disk://{typo}")
    assert result.code == 1
    assert "there is no database" in result.err and str(typo) in result.err
    assert files_under(tmp_path) == set(), "nothing was created"
    assert not default_key_file("fastmcp").exists(), "no key file was created"


def test_listing_the_default_store_before_it_exists_creates_nothing(cli: CliRunner) -> None:
    result = cli("sessions", "list", "--identity", "alice")
    assert result.code == 1
    assert not default_path("fastmcp").exists() and not default_key_file("fastmcp").exists()


def test_migrating_from_a_mistyped_source_fails_and_creates_nothing(cli: CliRunner, tmp_path: Path) -> None:
    source, destination = tmp_path / "typo.sqlite3", tmp_path / "dest.sqlite3"
    result = cli("migrate", f"disk://{source}", f"disk://{destination}?encryption=false")
    assert result.code == 1 and "there is no database" in result.err
    assert not source.exists()
    assert not default_key_file("fastmcp").exists()


def test_a_missing_key_file_is_reported_not_replaced(cli: CliRunner) -> None:
    async def make() -> None:
        async with open_store() as store:
            await store.put("k", {"v": 1})

    asyncio.run(make())
    key_file = default_key_file("fastmcp")
    key_file.unlink()
    for command in LISTINGS:
        result = cli(*command)
        assert result.code == 1, command
        assert "key file" in result.err and "restore it from your backup" in result.err
        assert not key_file.exists(), f"{' '.join(command)} must not create a new key over existing data"
    doctor = cli("doctor")
    assert doctor.code == 1 and "restore it from your backup" in doctor.out
    assert not key_file.exists()


def test_doctor_on_a_mistyped_path_creates_nothing(cli: CliRunner, tmp_path: Path) -> None:
    typo = tmp_path / "typo" / "s.sqlite3"
    cli("doctor", "--url", f"disk://{typo}")
    assert files_under(tmp_path) == set()
    assert not default_key_file("fastmcp").exists()


def test_backup_command_copies_the_store(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = Keyring.generate_key()
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", key)
    path = tmp_path / "s.sqlite3"

    async def make() -> None:
        async with DiskStore(path) as store:
            await store.put_many([f"k{i}" for i in range(20)], [{"i": i} for i in range(20)])

    asyncio.run(make())
    result = cli("backup", "--url", f"disk://{path}", str(tmp_path / "copy.sqlite3"), "--json")
    assert result.code == 0, result.err
    report = result.json()
    assert report["encrypted"] and report["key_source"] == "env FASTMCP_SESSIONS_KEYS"
    assert key not in result.all

    async def check() -> None:
        async with DiskStore(tmp_path / "copy.sqlite3") as copy:
            assert await copy.get("k7") == {"i": 7}

    asyncio.run(check())
    again = cli("backup", "--url", f"disk://{path}", str(tmp_path / "copy.sqlite3"))
    assert again.code == 1 and "already exists" in again.err
    missing = cli("backup", "--url", f"disk://{tmp_path / 'nope.sqlite3'}", str(tmp_path / "c2.sqlite3"))
    assert missing.code == 1 and not (tmp_path / "nope.sqlite3").exists()


def test_doctor_reports_a_vanished_database(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"

    async def make() -> None:
        async with DiskStore(path, encryption=False) as store:
            await store.put("k", {"v": 1})

    asyncio.run(make())
    path.unlink()
    result = cli("doctor", "--url", f"disk://{path}?encryption=false")
    assert result.code == 1 and "is missing" in result.out and "restore it" in result.out
    assert not path.exists()
