"""What the disk store promises beyond the shared contract."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from fastmcp_sessions import DiskStore, Keyring, open_store
from fastmcp_sessions.errors import DecryptionError, StoreSetupError
from fastmcp_sessions.stores.disk import DB_FILE_NAME, default_path

KEY = Keyring.generate_key()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT collection, key, value, expires_at FROM entries").fetchall()


async def test_default_location_is_the_platform_data_dir_and_private(tmp_path: Path) -> None:
    store = DiskStore(app_name="myapp")
    async with store:
        await store.put("k", {"v": 1})
        path = store.path
    assert path == default_path("myapp")
    data_home = Path(os.environ["XDG_DATA_HOME"])
    assert path == data_home / "myapp" / "fastmcp-sessions" / DB_FILE_NAME
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert mode(path.parent.parent) == 0o700
    key_file = Path(os.environ["XDG_CONFIG_HOME"]) / "myapp" / "fastmcp-sessions.key"
    assert key_file.exists(), "the key file is created on first use"
    assert mode(key_file) == 0o600


async def test_wal_and_shm_files_are_private_too(tmp_path: Path) -> None:
    path = tmp_path / "db" / "s.sqlite3"
    store = DiskStore(path, keys=[KEY])
    await store.put("k", {"v": 1})
    for suffix in ("-wal", "-shm"):
        side = Path(str(path) + suffix)
        assert side.exists()
        assert mode(side) == 0o600
    await store.close()


async def test_a_directory_path_holds_the_default_file_name(tmp_path: Path) -> None:
    store = DiskStore(tmp_path, keys=[KEY])
    async with store:
        await store.put("k", {"v": 1})
    assert (tmp_path / DB_FILE_NAME).exists()


async def test_wal_mode_and_no_pickle(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    async with DiskStore(path, encryption=False) as store:
        await store.put("k", {"v": [1, "two"]})
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    [(collection, key, value, _)] = rows(path)
    assert (collection, key, value) == ("default_collection", "k", b'{"v":[1,"two"]}')


async def test_file_holds_no_plaintext_when_encrypted(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    secret = "sk-live-very-secret-token"
    async with DiskStore(path, keys=[KEY]) as store:
        await store.put("k", {"token": secret})
        assert await store.get("k") == {"token": secret}
    for name in os.listdir(tmp_path):
        assert secret.encode() not in (tmp_path / name).read_bytes()


async def test_url_builds_an_encrypted_store_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", KEY)
    store = open_store(f"disk://{tmp_path}/u.sqlite3")
    assert isinstance(store, DiskStore) and store.encryption
    async with store:
        await store.put("k", {"secret": "plaintext-marker"})
    assert b"plaintext-marker" not in (tmp_path / "u.sqlite3").read_bytes()
    plain = open_store(f"disk://{tmp_path}/p.sqlite3?encryption=false")
    assert isinstance(plain, DiskStore) and not plain.encryption
    await plain.close()


async def test_expired_rows_are_deleted_not_just_hidden(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    async with DiskStore(path, keys=[KEY]) as store:
        await store.put_many([f"k{i}" for i in range(50)], [{"i": i} for i in range(50)], ttl=0.2)
        await store.put("keep", {"v": 1})
        await asyncio.sleep(0.3)
        await store.cull()
        assert [r[1] for r in rows(path)] == ["keep"]


async def test_wrong_key_raises_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    async with DiskStore(path, keys=[KEY]) as store:
        await store.put("token", {"v": "alice"}, collection="mcp-oauth-token")
    before = rows(path)
    other = DiskStore(path, keys=[Keyring.generate_key()])
    with pytest.raises(DecryptionError) as info:
        await other.get("token", collection="mcp-oauth-token")
    message = str(info.value)
    assert "mcp-oauth-token" in message and "token" in message and "FASTMCP_SESSIONS_KEYS" in message
    with pytest.raises(DecryptionError):
        await other.put("token", {"v": "mallory"}, collection="mcp-oauth-token")
    await other.close()
    assert rows(path) == before, "a wrong key must not overwrite anything"
    async with DiskStore(path, keys=[KEY]) as store:
        assert await store.get("token", collection="mcp-oauth-token") == {"v": "alice"}


async def test_copied_row_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    async with DiskStore(path, keys=[KEY]) as store:
        await store.put("alice", {"token": "alice-secret"})
        await store.put("mallory", {"token": "mallory"})
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE entries SET value = (SELECT value FROM entries WHERE key = 'alice') WHERE key = 'mallory'"
        )
    async with DiskStore(path, keys=[KEY]) as store:
        with pytest.raises(DecryptionError, match="different collection or key"):
            await store.get("mallory")
        assert await store.get("alice") == {"token": "alice-secret"}


async def test_plaintext_row_in_encrypted_db_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    async with DiskStore(path, keys=[KEY]) as store:
        await store.put("k", {"v": 1})
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE entries SET value = ? WHERE key = 'k'", (b'{"v": "injected"}',))
    async with DiskStore(path, keys=[KEY]) as store:
        with pytest.raises(DecryptionError):
            await store.get("k")


async def test_encryption_mode_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    async with DiskStore(path, keys=[KEY]) as store:
        await store.put("k", {"v": 1})
    plain = DiskStore(path, encryption=False)
    with pytest.raises(StoreSetupError, match="encrypted data"):
        await plain.get("k")
    await plain.close()


async def test_rotation_re_encrypts_with_the_newest_key(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    old, new = KEY, Keyring.generate_key()
    async with DiskStore(path, keys=[old]) as store:
        await store.put_many(
            [f"k{i}" for i in range(30)], [{"i": i} for i in range(30)], collection="c", ttl=600
        )
    async with DiskStore(path, keys=[new, old]) as store:
        assert await store.get("k3", collection="c") == {"i": 3}, "old keys keep decrypting"
        assert await store.rotate(batch_size=7) == 30
        assert await store.rotate() == 0, "a second run has nothing left to do"
        _, ttl = await store.ttl("k3", collection="c")
        assert ttl is not None and ttl > 590, "rotation keeps each entry's expiry"
    async with DiskStore(path, keys=[new]) as store:
        assert await store.get_many(["k0", "k29"], collection="c") == [{"i": 0}, {"i": 29}]


async def test_unwritable_location_is_a_setup_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.geteuid() == 0:
        # root ignores directory modes; a file where a directory must go fails for everyone
        (tmp_path / "file").write_text("x")
        target = tmp_path / "file" / "sub" / "s.sqlite3"
    else:
        target = locked / "sub" / "s.sqlite3"
    store = DiskStore(target, keys=[KEY])
    with pytest.raises(StoreSetupError, match="cannot create"):
        await store.get("k")
    await store.close()


async def test_event_loop_is_not_blocked_by_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    async with DiskStore(path, encryption=False) as store:
        await store.put("k", {"v": 1})
        # Hold SQLite's write lock from another connection; our write must wait off-loop.
        blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        blocker.execute("BEGIN IMMEDIATE")
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        tick_task = asyncio.create_task(ticker())
        threading.Timer(0.3, lambda: blocker.execute("COMMIT")).start()
        await store.put("k", {"v": 2})
        tick_task.cancel()
        blocker.close()
        assert ticks >= 10, "the loop kept running while SQLite waited for the lock"
        assert await store.get("k") == {"v": 2}


async def test_two_processes_share_the_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    script = (
        "import asyncio, sys\n"
        "from fastmcp_sessions import DiskStore\n"
        "async def main():\n"
        "    async with DiskStore(sys.argv[1], keys=[sys.argv[2]]) as s:\n"
        "        await s.put_many([f'{sys.argv[3]}{i}' for i in range(200)], [{'i': i} for i in range(200)])\n"
        "asyncio.run(main())\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(path), KEY, prefix]) for prefix in ("a", "b", "c")
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    async with DiskStore(path, keys=[KEY]) as store:
        assert len(await store.keys()) == 600


async def test_a_dropped_store_stops_its_thread(tmp_path: Path) -> None:
    import gc

    store = DiskStore(tmp_path / "s.sqlite3", keys=[KEY])
    await store.put("k", {"v": 1})
    worker = store._worker
    del store
    gc.collect()
    worker.join(timeout=5)
    assert not worker.alive


async def test_many_processes_opening_a_new_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite3"
    script = (
        "import asyncio, sys\n"
        "from fastmcp_sessions import DiskStore\n"
        "async def main():\n"
        "    async with DiskStore(sys.argv[1], keys=[sys.argv[2]]) as s:\n"
        "        await s.update('n', lambda v: {'n': (v or {'n': 0})['n'] + 1})\n"
        "asyncio.run(main())\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path), KEY]) for _ in range(8)]
    assert [p.wait(timeout=60) for p in procs] == [0] * 8
    async with DiskStore(path, keys=[KEY]) as store:
        assert await store.get("n") == {"n": 8}
