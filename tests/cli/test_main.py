"""The command itself: help, bad arguments, unreachable stores, --debug, bench, the subprocess path,
and that no secret is ever printed."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from fastmcp_sessions import Keyring, open_store
from tests._support.cli_runner import CliRunner, assert_one_line_error, run_subprocess
from tests._support.servers import free_port


def test_help_lists_every_command(cli: CliRunner) -> None:
    result = cli("--help")
    assert result.code == 0
    for command in ("doctor", "migrate", "rotate-key", "bench", "sessions", "servers", "tokens"):
        assert command in result.out


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        ((), "required: COMMAND"),
        (("frobnicate",), "invalid choice"),
        (("doctor", "--no-such-flag"), "unrecognized arguments"),
        (("--url", "nope://x", "doctor"), "unknown store URL scheme"),
        (("--url", "disk://remotehost/x", "bench"), "absolute path"),
        (("--url", "memory://?bogus=1", "bench"), "does not take the option"),
        (("bench", "--url", "memory://", "--ops", "1"), "--ops"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(cli: CliRunner, args: tuple[str, ...], phrase: str) -> None:
    result = cli(*args)
    assert_one_line_error(result, 2)
    assert phrase in result.err


def test_global_options_work_after_the_command(cli: CliRunner) -> None:
    result = cli("doctor", "--url", "memory://", "--json")
    assert result.code == 0 and result.json()["backend"] == "MemoryStore"


def test_unreachable_store_is_one_line_and_debug_adds_the_traceback(cli: CliRunner) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = cli("--url", url, "bench", "--ops", "20", "--rounds", "1")
    assert_one_line_error(result, 1)
    assert "could not be reached" in result.err or "refused" in result.err.lower()
    debug = cli("--url", url, "bench", "--ops", "20", "--rounds", "1", "--debug")
    assert debug.code == 1 and "Traceback" in debug.err


def test_bench_prints_ratios_and_cleans_up(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", Keyring.generate_key())
    url = f"disk://{tmp_path / 'b.sqlite3'}"
    result = cli("--url", url, "bench", "--ops", "30", "--rounds", "1", "--json")
    assert result.code == 0, result.all
    rows = {r["op"]: r for r in result.json()["results"]}
    assert set(rows) == {"put", "get", "get_many(10)", "update"}
    assert all(r["ratio"] > 0 and r["store_ops_per_sec"] > 0 for r in rows.values())
    text = cli("--url", url, "bench", "--ops", "30", "--rounds", "1")
    assert "OURS / PEER" in text.out and "py-key-value DiskStore" in text.out

    async def leftovers() -> list[str]:
        store = open_store(url)
        try:
            return await store.collections()
        finally:
            await store.close()

    assert asyncio.run(leftovers()) == [], "bench destroys its collection"


def test_runs_as_a_module_in_a_subprocess(tmp_path: Path) -> None:
    env = {
        "FASTMCP_SESSIONS_URL": f"disk://{tmp_path / 's.sqlite3'}",
        "FASTMCP_SESSIONS_KEYS": Keyring.generate_key(),
    }
    result = run_subprocess("doctor", "--json", env=env)
    assert result.code == 0, result.all
    assert '"chosen_by": "env FASTMCP_SESSIONS_URL"' in result.out
    bad = run_subprocess("migrate", "memory://", env=env)
    assert_one_line_error(bad, 2)


def test_interrupting_a_subprocess_exits_130(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    env = dict(os.environ, FASTMCP_SESSIONS_KEYS=Keyring.generate_key())
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastmcp_sessions.cli", "--url", "memory://", "bench", "--ops", "200000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    # Interrupt once the benchmark runs (not while a loaded machine is still importing).
    assert proc.stderr is not None
    first = proc.stderr.readline()
    assert first.startswith("bench:"), first
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err


# -- secrets ---------------------------------------------------------------------------


def test_no_secret_is_ever_printed(cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Passwords in URLs, keys in the environment: not in text, not in JSON, not in errors or tracebacks."""
    from tests._support.servers import RedisServer

    password = "pw-Zq8xTopSecret"
    key = Keyring.generate_key()
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", key)
    with RedisServer(password=password) as server:
        good = f"redis://:{password}@127.0.0.1:{server.port}/0?encryption=true"
        bad = f"redis://:{password}@127.0.0.1:{free_port()}/0"
        dst = f"disk://{tmp_path / 'd.sqlite3'}"

        async def seed() -> None:
            store = open_store(good)
            await store.put("k", {"v": 1}, collection="c")
            await store.close()

        asyncio.run(seed())
        runs = [
            cli("--url", good, "doctor"),
            cli("--url", good, "doctor", "--json"),
            cli("--url", bad, "doctor", "--json"),
            cli("--url", bad, "bench", "--ops", "20", "--rounds", "1"),
            cli("--url", bad, "bench", "--ops", "20", "--rounds", "1", "--debug"),
            cli("--url", good, "bench", "--ops", "20", "--rounds", "1", "--json"),
            cli("migrate", good, dst),
            cli("migrate", good, dst, "--json"),
            cli("migrate", bad, dst, "--debug"),
            cli("--url", good, "rotate-key"),
        ]
        assert runs[0].code == 0 and runs[6].code == 0, [r.all for r in runs]
        for result in runs:
            assert password not in result.all, result.all
            assert key not in result.all, result.all
        assert "***" in runs[0].out


def test_json_errors_are_an_object_on_stdout(cli: CliRunner) -> None:
    result = cli("--url", f"redis://:pw-abcdef@127.0.0.1:{free_port()}/0", "bench", "--ops", "20", "--json")
    assert_one_line_error(result, 1)
    data = result.json()
    assert data["ok"] is False and data["exit_code"] == 1 and "could not be reached" in data["error"]
    assert "pw-abcdef" not in result.all
