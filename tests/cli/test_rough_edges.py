"""What a new operator met on the command line: messages in the command's own terms, exit codes
that tell a conflict from a typo, names shown and only values redacted, no internal names, no
piles of abandoned checkpoints, and a benchmark against the store they would pick instead."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from fastmcp_sessions import Keyring, open_store
from fastmcp_sessions.cli import checkpoints
from fastmcp_sessions.cli import migrate as migrate_module
from fastmcp_sessions.stores._url import redact_url
from tests._support.cli_runner import CliRunner, assert_one_line_error

KEY = Keyring.generate_key()
REAL_COPY = migrate_module.copy_batch


@pytest.fixture
def disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", KEY)
    return f"disk://{tmp_path / 'store.sqlite3'}"


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where migrate keeps its checkpoints by default (the user state directory)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    directory = checkpoints.checkpoint_dir()
    assert directory == tmp_path / "state" / "fastmcp-sessions"
    return directory


# -- servers add ------------------------------------------------------------------------


def test_servers_add_conflicts_exit_3_in_cli_words(cli: CliRunner, disk: str) -> None:
    assert cli("--url", disk, "servers", "add", "https://a.example/mcp", "--name", "example").code == 0

    renamed = cli("--url", disk, "servers", "add", "https://A.example:443/mcp/", "--name", "other")
    assert_one_line_error(renamed, 3)
    assert "already registered as 'example'" in renamed.err
    assert "fastmcp-sessions servers rm example" in renamed.err and "--name other" in renamed.err
    assert "remove(" not in renamed.err, "the Python API is not what a CLI user types"

    taken = cli("--url", disk, "servers", "add", "https://b.example/mcp", "--name", "example")
    assert_one_line_error(taken, 3)
    assert "'example' is already taken by https://a.example/mcp" in taken.err
    assert "pick another --name" in taken.err and "remove(" not in taken.err

    scoped = cli(
        "--url", disk, "servers", "add", "https://c.example/mcp", "--name", "c", "--namespace", "t 1"
    )
    assert scoped.code == 0
    again = cli("--url", disk, "servers", "add", "https://d.example/mcp", "--name", "c", "--namespace", "t 1")
    assert_one_line_error(again, 3)
    assert "servers rm c --namespace 't 1'" in again.err

    assert cli("--url", disk, "servers", "add", "not a url").code == 2, "a bad argument is still 2"
    assert cli("--url", disk, "servers", "add", "https://a.example/mcp").code == 0, "same URL: its name"
    assert "3 conflicts" in cli("--help").out


# -- names shown, values redacted -------------------------------------------------------


def test_env_variable_names_are_shown_and_values_redacted(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert redact_url("kv+disk:///d?key_env=MY_KEY&key=s3cret&token=t0k") == (
        "kv+disk:///d?key_env=MY_KEY&key=***&token=***"
    )
    source = tmp_path / "kv"
    source.mkdir()
    monkeypatch.delenv("FERNET_KEY_FOR_TEST", raising=False)
    missing = cli("migrate", f"kv+fernet+disk://{source}?key_env=FERNET_KEY_FOR_TEST", "memory://")
    assert_one_line_error(missing, 2)
    assert "FERNET_KEY_FOR_TEST" in missing.err and "key_env=***" not in missing.err

    secret = "a-secret-value-" + os.urandom(4).hex()
    shown = cli("migrate", f"kv+fernet+disk:///nonexistent/dir?key={secret}&key_env=X", "memory://")
    assert shown.code != 0 and secret not in shown.all and "key=***" in shown.err


def test_a_url_without_scheme_has_no_stray_colon(cli: CliRunner) -> None:
    for args in (("--url", "redis//host", "doctor"), ("--url", "redis//host", "servers", "list")):
        result = cli(*args)
        assert result.code in (1, 2), result.all
        assert "redis//host" in result.err and ":redis//host" not in result.err, result.err


# -- migrate takes no --url -----------------------------------------------------------


def test_migrate_help_has_no_url_and_a_url_is_refused(cli: CliRunner) -> None:
    helped = cli("migrate", "--help")
    assert helped.code == 0 and "--url" not in helped.out and "--list-checkpoints" in helped.out
    assert_one_line_error(cli("migrate", "memory://", "memory://?x=1", "--url", "memory://"), 2)
    before = cli("--url", "memory://", "migrate", "memory://", "disk:///tmp/never-written.sqlite3")
    assert_one_line_error(before, 2)
    assert "migrate takes no --url" in before.err
    assert_one_line_error(cli("migrate", "memory://"), 2)


# -- doctor on a wrong key --------------------------------------------------------------


def test_doctor_wrong_key_names_no_internal_key(
    cli: CliRunner, disk: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def write() -> None:
        store = open_store(disk)
        await store.put("k", {"v": 1}, collection="app")
        await store.close()

    asyncio.run(write())
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", Keyring.generate_key())
    result = cli("--url", disk, "doctor", "--json")
    assert result.code == 1
    report = result.json()
    errors = [c["message"] for c in report["findings"] if c["level"] == "error"]
    assert errors and any("cannot decrypt" in e for e in errors), report
    text = " ".join(errors) + result.err
    assert "probe" not in text and "fastmcp-sessions-doctor" not in text, text
    assert report["key_fingerprints"][0] in text, "the error names the key in use by its fingerprint"


# -- migrate checkpoints ----------------------------------------------------------------


def interrupt_after(monkeypatch: pytest.MonkeyPatch, batches: int) -> None:
    real = REAL_COPY
    calls = {"n": 0}

    async def flaky(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] > batches:
            raise KeyboardInterrupt
        await real(*args, **kwargs)

    monkeypatch.setattr(migrate_module, "copy_batch", flaky)


@pytest.fixture
def src(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", KEY)
    url = f"disk://{tmp_path / 'src.sqlite3'}"

    async def fill() -> None:
        store = open_store(url)
        await store.put_many([f"k{i}" for i in range(30)], [{"i": i} for i in range(30)], collection="c")
        await store.close()

    asyncio.run(fill())
    return url


def test_checkpoints_are_listed_forgotten_and_expire(
    cli: CliRunner, src: str, tmp_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dst_a = f"disk://{tmp_path / 'a.sqlite3'}"
    dst_b = f"disk://{tmp_path / 'b.sqlite3'}"
    assert cli("--json", "migrate", "--list-checkpoints").json()["checkpoints"] == []

    for dst in (dst_a, dst_b):
        interrupt_after(monkeypatch, 1)
        assert cli("migrate", src, dst, "--batch-size", "10").code == 130
    listed = cli("migrate", "--list-checkpoints", "--json").json()
    assert listed["max_age_days"] == checkpoints.MAX_AGE_DAYS
    assert {c["destination"] for c in listed["checkpoints"]} == {dst_a, dst_b}
    assert all(c["source"] == src and c["current_collection"] == "c" for c in listed["checkpoints"])
    text = cli("migrate", "--list-checkpoints")
    assert text.code == 0 and "a.sqlite3" in text.out and "removed by the next migrate run" in text.out

    forgot = cli("migrate", src, dst_a, "--forget-checkpoints", "--json")
    assert forgot.code == 0 and len(forgot.json()["removed"]) == 1
    assert [
        c["destination"] for c in cli("migrate", "--list-checkpoints", "--json").json()["checkpoints"]
    ] == [dst_b]
    nothing = cli("migrate", src, dst_a, "--forget-checkpoints")
    assert nothing.code == 0 and "nothing removed" in nothing.out

    # An abandoned checkpoint (last saved 8 days ago) goes with the next run of any migration.
    (old,) = state_dir.glob("migrate-*.json")
    data = json.loads(old.read_text())
    data["saved"] = time.time() - 8 * 86400
    old.write_text(json.dumps(data))
    stale_tmp = state_dir / ".migrate-0000.json.tmp"
    stale_tmp.write_text("{}")
    os.utime(stale_tmp, (time.time() - 9 * 86400,) * 2)
    monkeypatch.setattr(migrate_module, "copy_batch", REAL_COPY)
    done = cli("migrate", src, f"disk://{tmp_path / 'c.sqlite3'}")
    assert done.code == 0, done.all
    assert "removed 2 checkpoint file(s) of migrations abandoned" in done.err
    assert not old.exists() and not stale_tmp.exists()
    assert list(state_dir.glob("migrate-*.json")) == [], "the completed run removed its own"

    for dst in (dst_a, dst_b):
        interrupt_after(monkeypatch, 1)
        assert cli("migrate", src, dst, "--batch-size", "10").code == 130
    everything = cli("migrate", "--forget-checkpoints", "--json")
    assert everything.code == 0 and len(everything.json()["removed"]) == 2
    assert list(state_dir.glob("migrate-*.json")) == []


# -- bench ------------------------------------------------------------------------------


def check_bench(result: Any, peer: str) -> dict[str, Any]:
    assert result.code == 0, result.all
    report = result.json()
    assert report["peer"] is not None and peer in report["peer"], report
    rows = {r["op"]: r for r in report["results"]}
    assert set(rows) == {"put", "get", "get_many(10)", "update"}
    for row in rows.values():
        assert row["store_ops_per_sec"] > 0 and row["peer_ops_per_sec"] > 0
        assert row["ratio"] == pytest.approx(row["store_ops_per_sec"] / row["peer_ops_per_sec"], rel=0.01)
    return report


def test_bench_compares_with_py_key_value_memory_and_disk(cli: CliRunner, disk: str) -> None:
    check_bench(cli("--url", "memory://", "bench", "--ops", "30", "--rounds", "1", "--json"), "MemoryStore")
    encrypted = cli("--url", "memory://?encryption=true", "bench", "--ops", "30", "--rounds", "1", "--json")
    assert "FernetEncryptionWrapper" in check_bench(encrypted, "MemoryStore")["peer"], "same protection"
    report = check_bench(cli("--url", disk, "bench", "--ops", "30", "--rounds", "1", "--json"), "DiskStore")
    assert "FernetEncryptionWrapper" in report["peer"], "the disk store is encrypted: so is the peer"
    text = cli("--url", disk, "bench", "--ops", "30", "--rounds", "1")
    assert "OURS / PEER" in text.out and "py-key-value DiskStore" in text.out and "dict" not in text.out


def test_bench_compares_with_py_key_value_redis_and_cleans_up(cli: CliRunner, redis_server: Any) -> None:
    import redis

    report = check_bench(
        cli("--url", redis_server.url, "bench", "--ops", "30", "--rounds", "1", "--json"), "RedisStore"
    )
    assert "FernetEncryptionWrapper" not in report["peer"]
    raw = redis.Redis.from_url(redis_server.url)
    try:
        leftovers = [k for k in raw.scan_iter(match="*fastmcp-sessions-bench-*")]
    finally:
        raw.close()
    assert leftovers == [], "bench removes what it wrote, ours and the peer's"


def test_bench_without_an_equivalent_says_why(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_peer(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("key_value.aio.stores.memory"):
            raise ImportError(name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_peer)
    result = cli("--url", "memory://", "bench", "--ops", "30", "--rounds", "1", "--json")
    assert result.code == 0, result.all
    report = result.json()
    assert report["peer"] is None and "not installed" in report["peer_note"]
    assert all(r["ratio"] is None and r["store_ops_per_sec"] > 0 for r in report["results"])


def test_bench_ops_minimum_is_the_one_help_states(cli: CliRunner) -> None:
    import contextlib
    import io
    import re

    from fastmcp_sessions.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main(["bench", "--help"])
    [stated] = re.findall(
        r"--ops N operations per round \(500; at least (\d+)\)", " ".join(out.getvalue().split())
    )
    refused = cli("bench", "--ops", "0")
    assert_one_line_error(refused, 2)
    assert f"--ops must be at least {stated}" in refused.err
