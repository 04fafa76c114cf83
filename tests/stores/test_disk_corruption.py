"""A damaged, emptied or vanished database is an error, never a quiet answer."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path

import pytest
from key_value.aio.errors import BaseKeyValueError

from fastmcp_sessions import DiskStore, Keyring
from fastmcp_sessions.errors import StoreCorruptedError, StoreSetupError
from fastmcp_sessions.stores.disk import marker_path

KEY = Keyring.generate_key()
ENTRIES = 300


def value(i: int) -> dict[str, object]:
    return {"i": i, "token": f"tok-{i:04d}-" + "x" * 60, "scope": ["read", "write"]}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a closed, encrypted 300-entry database (WAL checkpointed into the file)."""
    path = tmp_path_factory.mktemp("pristine") / "store.sqlite3"

    async def fill() -> None:
        async with DiskStore(path, keys=[KEY]) as store:
            for i in range(ENTRIES):
                await store.put(f"key-{i}", value(i), collection="c")

    asyncio.run(fill())
    assert not Path(str(path) + "-wal").exists(), "closing checkpoints the WAL into the file"
    return path.read_bytes()


async def read_back(path: Path) -> str:
    """'exact' if all entries read back exactly, 'error' if a typed error was raised, else 'SILENT'."""
    try:
        async with DiskStore(path, keys=[KEY]) as store:
            got = [await store.get(f"key-{i}", collection="c") for i in range(ENTRIES)]
            listed = await store.keys("c")
            many = await store.get_many([f"key-{i}" for i in range(ENTRIES)], collection="c")
    except BaseKeyValueError:
        return "error"
    expected = [value(i) for i in range(ENTRIES)]
    exact = (
        got == expected and many == expected and sorted(listed) == sorted(f"key-{i}" for i in range(ENTRIES))
    )
    return "exact" if exact else "SILENT"


async def test_random_bit_flips_never_give_a_silent_wrong_answer(pristine: bytes, tmp_path: Path) -> None:
    outcomes: dict[str, list[int]] = {"exact": [], "error": [], "SILENT": []}
    for seed in range(150):
        rnd = random.Random(seed)
        damaged = bytearray(pristine)
        bit = rnd.randrange(len(damaged) * 8)
        damaged[bit // 8] ^= 1 << (bit % 8)
        path = tmp_path / f"flip-{seed}.sqlite3"
        path.write_bytes(bytes(damaged))
        outcomes[await read_back(path)].append(seed)
    assert outcomes["SILENT"] == [], f"silent wrong answers for seeds {outcomes['SILENT']}"
    assert outcomes["error"], "some flips must hit live data (else the test proves nothing)"


async def test_truncation_never_gives_a_silent_wrong_answer(pristine: bytes, tmp_path: Path) -> None:
    rnd = random.Random(11)
    page = 4096
    lengths = sorted(
        {0, 100, page, page + 1, len(pristine) - page, len(pristine) - 1}
        | {rnd.randrange(1, len(pristine)) for _ in range(30)}
    )
    outcomes: dict[int, str] = {}
    for length in lengths:
        path = tmp_path / f"cut-{length}.sqlite3"
        path.write_bytes(pristine[:length])
        outcomes[length] = await read_back(path)
    assert [n for n, outcome in outcomes.items() if outcome == "SILENT"] == []
    # Only a cut through free pages at the end can leave every entry intact.
    assert outcomes[0] == outcomes[100] == outcomes[page] == "error"
    assert sum(outcome == "error" for outcome in outcomes.values()) >= len(lengths) - 3


async def test_an_emptied_file_is_corruption_not_a_fresh_store(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    async with DiskStore(path, keys=[KEY]) as store:
        await store.put("k", {"v": 1})
    path.write_bytes(b"")
    store = DiskStore(path, keys=[KEY])
    with pytest.raises(StoreCorruptedError) as info:
        await store.get("k")
    message = str(info.value)
    assert str(path) in message and "empty" in message and "backup" in message
    with pytest.raises(StoreCorruptedError):
        await store.put("k", {"v": 2})
    await store.close()
    assert path.stat().st_size == 0, "nothing was written into the emptied file"


async def test_a_vanished_file_is_an_error_while_its_marker_remains(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    async with DiskStore(path, keys=[KEY]) as store:
        await store.put("k", {"v": 1})
    marker = marker_path(path)
    assert marker.exists() and marker.stat().st_mode & 0o777 == 0o600
    path.unlink()
    store = DiskStore(path, keys=[KEY])
    with pytest.raises(StoreCorruptedError) as info:
        await store.get("k")
    assert "missing" in str(info.value) and str(marker) in str(info.value)
    await store.close()
    assert not path.exists(), "no new, empty database replaced the vanished one"
    # Removing the marker too is how a user starts over on purpose.
    marker.unlink()
    async with DiskStore(path, keys=[KEY]) as store:
        assert await store.get("k") is None
        await store.put("k", {"v": 2})
    assert marker.exists()


async def test_a_fresh_location_is_a_fresh_store(tmp_path: Path) -> None:
    async with DiskStore(tmp_path / "new" / "s.sqlite3", keys=[KEY]) as store:
        assert await store.get("k") is None


async def test_damage_found_during_work_is_typed_and_stops_writes(pristine: bytes, tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    path.write_bytes(pristine)
    with sqlite3.connect(path) as conn:
        [(root,)] = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'entries'").fetchall()
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    raw = bytearray(pristine)
    # Garble the entries tree's root page: every lookup goes through it.
    start = (root - 1) * page_size
    raw[start : start + 200] = bytes(random.Random(3).randrange(256) for _ in range(200))
    path.write_bytes(bytes(raw))
    # Skip the check at open, to see what a damage that happens after opening looks like.
    store = DiskStore(path, keys=[KEY], integrity_check=0)
    with pytest.raises(StoreCorruptedError) as info:
        await store.get("key-1", collection="c")
    assert "restore" in str(info.value) and str(path) in str(info.value)
    with pytest.raises(StoreCorruptedError):
        await store.put("key-1", {"v": "after"}, collection="c")
    await store.close()


async def test_integrity_check_at_open_names_the_problem(pristine: bytes, tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    path.write_bytes(pristine)
    with sqlite3.connect(path) as conn:
        # Rewrite a key behind SQLite's back, out of key order: lookups would miss it silently.
        conn.execute("PRAGMA writable_schema = ON")
        offset = pristine.find(b"key-150")
    raw = bytearray(pristine)
    raw[offset : offset + 7] = b"key-999"
    path.write_bytes(bytes(raw))
    store = DiskStore(path, keys=[KEY])
    with pytest.raises(StoreCorruptedError, match="integrity check"):
        await store.get("key-1", collection="c")
    await store.close()


async def test_backup_copies_a_live_store(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    async with DiskStore(path, keys=[KEY]) as store:
        await store.put_many([f"k{i}" for i in range(100)], [{"i": i} for i in range(100)])
        copy = await store.backup(tmp_path / "backups" / "copy.sqlite3")
        await store.put("after", {"v": 1})
        with pytest.raises(StoreSetupError, match="already exists"):
            await store.backup(copy)
    assert copy.stat().st_mode & 0o777 == 0o600
    async with DiskStore(copy, keys=[KEY]) as restored:
        assert len(await restored.keys()) == 100
        assert await restored.get("k42") == {"i": 42}
        assert await restored.get("after") is None
