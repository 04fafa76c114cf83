"""Every bad input to the disk store (and the shared validation) gets a typed error."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from key_value.aio.errors import BaseKeyValueError

from fastmcp_sessions import DiskStore, Keyring, MemoryStore, open_store
from fastmcp_sessions._values import MAX_DEPTH, MAX_INT_DIGITS
from fastmcp_sessions.encryption import fingerprint
from fastmcp_sessions.errors import InvalidTTLError, SerializationError, StoreOptionError, StoreSetupError

KEY = Keyring.generate_key()

# -- running as an ordinary user ------------------------------------------------------------
# The tests run as root, which reads and writes past any file mode. To see what a user
# sees, the check runs in a child process that keeps uid 0 but drops the capabilities
# that bypass file permissions (so the owner's mode bits apply to it as to anyone).
SETPRIV = shutil.which("setpriv")
DROP = "-dac_override,-dac_read_search,-fowner"

_CHILD = """
import asyncio, json, sys
from fastmcp_sessions import DiskStore
async def main():
    store = DiskStore(sys.argv[1], **json.loads(sys.argv[2]))
    try:
        await store.put("k", {"v": 1})
        print(json.dumps({"ok": True}))
    except Exception as exc:
        print(json.dumps({"type": type(exc).__name__, "mro": [c.__name__ for c in type(exc).__mro__],
                          "message": str(exc)}))
    finally:
        await store.close()
asyncio.run(main())
"""


def as_user(path: Path, **options: object) -> dict[str, object]:
    """Open ``path`` and put one entry in a process without permission-bypassing capabilities."""
    assert SETPRIV, "setpriv (util-linux) is needed to test permissions honestly as root"
    command = [sys.executable, "-c", _CHILD, str(path), json.dumps(options)]
    if os.geteuid() == 0:
        command = [SETPRIV, f"--inh-caps={DROP}", f"--bounding-set={DROP}", "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_child_really_obeys_file_modes(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("x")
    secret.chmod(0)
    result = as_user(secret, encryption=False)
    assert result.get("type") == "StoreSetupError" and "cannot read the database file" in str(
        result["message"]
    )


# -- key files --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [(b"\xef\xbb\xbf", b"\r\n"), (b"\r\n", b"\r\n\r\n"), (b"", b"")],
    ids=["bom-crlf", "crlf", "bare"],
)
async def test_a_key_file_with_bom_or_crlf_is_accepted(tmp_path: Path, before: bytes, after: bytes) -> None:
    key_file = tmp_path / "k.key"
    key_file.write_bytes(before + KEY.encode() + after)
    key_file.chmod(0o600)
    async with DiskStore(tmp_path / "s.sqlite3", key_file=key_file) as store:
        await store.put("k", {"v": 1})
        assert store.keyring is not None and store.keyring.fingerprints == (fingerprint(KEY),)
    async with DiskStore(tmp_path / "s.sqlite3", keys=[KEY]) as store:
        assert await store.get("k") == {"v": 1}, "the key read from the file is the key itself"


async def test_a_key_file_of_binary_garbage_is_a_typed_error(tmp_path: Path) -> None:
    key_file = tmp_path / "k.key"
    key_file.write_bytes(bytes(range(256)))
    store = DiskStore(tmp_path / "s.sqlite3", key_file=key_file)
    with pytest.raises(StoreSetupError, match="not a key file") as info:
        await store.put("k", {"v": 1})
    assert str(key_file) in str(info.value)
    await store.close()


async def test_a_key_file_that_is_text_but_no_key_is_a_typed_error(tmp_path: Path) -> None:
    key_file = tmp_path / "k.key"
    key_file.write_text("not a fernet key\n")
    store = DiskStore(tmp_path / "s.sqlite3", key_file=key_file)
    with pytest.raises(StoreSetupError, match="not a Fernet key") as info:
        await store.put("k", {"v": 1})
    assert str(key_file) in str(info.value)
    await store.close()


async def test_a_key_file_that_is_a_directory_is_a_typed_error(tmp_path: Path) -> None:
    key_file = tmp_path / "k.key"
    key_file.mkdir()
    store = DiskStore(tmp_path / "s.sqlite3", key_file=key_file)
    with pytest.raises(StoreSetupError, match="is a directory") as info:
        await store.put("k", {"v": 1})
    assert str(key_file) in str(info.value)
    await store.close()


def test_an_unreadable_key_file_is_a_typed_error(tmp_path: Path) -> None:
    key_file = tmp_path / "k.key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0)
    result = as_user(tmp_path / "s.sqlite3", key_file=str(key_file))
    assert result.get("type") == "StoreSetupError", result
    assert "cannot read the key file" in str(result["message"]) and str(key_file) in str(result["message"])


def test_a_key_directory_that_cannot_be_written_is_a_typed_error(tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    key_dir.mkdir(mode=0o500)
    result = as_user(tmp_path / "s.sqlite3", key_file=str(key_dir / "k.key"))
    assert result.get("type") == "StoreSetupError", result
    message = str(result["message"])
    assert "cannot create the key file" in message and str(key_dir) in message
    assert not (tmp_path / "s.sqlite3").exists(), "no database without a key"


# -- the database file and its directory -----------------------------------------------------


async def make_store(path: Path) -> None:
    async with DiskStore(path, encryption=False) as store:
        await store.put("k", {"v": 1})


async def test_a_read_only_database_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    await make_store(path)
    path.chmod(0o400)
    result = as_user(path, encryption=False)
    assert result.get("type") == "StoreSetupError", result
    message = str(result["message"])
    assert "read-only for this user (mode 0400" in message and "chmod 600" in message


async def test_a_read_only_directory_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    await make_store(folder / "s.sqlite3")
    folder.chmod(0o500)
    existing = as_user(folder / "s.sqlite3", encryption=False)
    assert existing.get("type") == "StoreSetupError", existing
    assert f"the directory {folder} is read-only" in str(existing["message"])
    new = as_user(folder / "new.sqlite3", encryption=False)
    assert new.get("type") == "StoreSetupError", new
    assert "cannot create the database file" in str(new["message"]) and str(folder) in str(new["message"])


async def test_another_programs_sqlite_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
    before = path.read_bytes()
    store = DiskStore(path, keys=[KEY])
    with pytest.raises(StoreSetupError, match="another program's SQLite database") as info:
        await store.get("k")
    assert "photos" in str(info.value)
    await store.close()
    assert path.read_bytes() == before, "the other program's file was left alone"


async def test_a_file_that_is_not_sqlite_says_so(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not a database\n" * 10)
    store = DiskStore(path, keys=[KEY])
    with pytest.raises(StoreSetupError, match="not a SQLite database"):
        await store.get("k")
    await store.close()


# -- options -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "nan", "-5", "-inf"])
def test_bad_busy_timeouts_are_rejected_when_the_store_opens(tmp_path: Path, value: str) -> None:
    path = tmp_path / "s.sqlite3"
    with pytest.raises(StoreOptionError, match="busy_timeout"):
        open_store(f"disk://{path}?busy_timeout={value}", keys=[KEY])
    with pytest.raises(StoreOptionError, match="busy_timeout"):
        DiskStore(path, keys=[KEY], busy_timeout=float(value))
    assert not path.exists()
    assert issubclass(StoreOptionError, ValueError) and issubclass(StoreOptionError, BaseKeyValueError)


def test_bad_offload_and_integrity_check_options_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(StoreOptionError, match="offload"):
        DiskStore(tmp_path / "s.sqlite3", offload="sometimes")  # type: ignore[arg-type]
    with pytest.raises(StoreOptionError, match="integrity_check"):
        DiskStore(tmp_path / "s.sqlite3", integrity_check=-1)


# -- values, TTLs, limits: one rule on every backend -----------------------------------------


def stores(tmp_path: Path) -> list[object]:
    return [
        MemoryStore(),
        DiskStore(tmp_path / "s.sqlite3", keys=[KEY]),
        DiskStore(tmp_path / "p", encryption=False),
    ]


def nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


async def test_nesting_is_limited_with_a_typed_error(tmp_path: Path) -> None:
    for store in stores(tmp_path):
        async with store:  # type: ignore[attr-defined]
            with pytest.raises(SerializationError, match=f"more than {MAX_DEPTH} levels"):
                await store.put("deep", nested(10_000))  # type: ignore[attr-defined]
            deep_list: list[object] = []
            for _ in range(10_000):
                deep_list = [deep_list]
            with pytest.raises(SerializationError, match="levels"):
                await store.put("deep", {"l": deep_list})  # type: ignore[attr-defined]
            await store.put("ok", nested(MAX_DEPTH))  # type: ignore[attr-defined]
            assert await store.get("ok") == nested(MAX_DEPTH)  # type: ignore[attr-defined]


async def test_a_huge_ttl_is_an_invalid_ttl(tmp_path: Path) -> None:
    for store in stores(tmp_path):
        async with store:  # type: ignore[attr-defined]
            with pytest.raises(InvalidTTLError, match="too big"):
                await store.put("k", {"v": 1}, ttl=10**400)  # type: ignore[attr-defined]


async def test_a_huge_limit_means_all(tmp_path: Path) -> None:
    for store in stores(tmp_path):
        async with store:  # type: ignore[attr-defined]
            await store.put_many(["a", "b"], [{"v": 1}, {"v": 2}])  # type: ignore[attr-defined]
            assert await store.keys(limit=10**20) == ["a", "b"]  # type: ignore[attr-defined]
            assert await store.collections(limit=10**20) == ["default_collection"]  # type: ignore[attr-defined]


async def test_integers_have_one_digit_limit_on_every_backend(tmp_path: Path) -> None:
    largest = 10**MAX_INT_DIGITS - 1
    for store in stores(tmp_path):
        async with store:  # type: ignore[attr-defined]
            await store.put("big", {"n": largest, "l": [-largest]})  # type: ignore[attr-defined]
            assert await store.get("big") == {"n": largest, "l": [-largest]}  # type: ignore[attr-defined]
            for too_big in ({"n": largest + 1}, {"l": [-(largest + 1)]}, {"d": {"n": 10**5000}}):
                with pytest.raises(SerializationError, match=f"at most {MAX_INT_DIGITS} digits"):
                    await store.put("k", too_big)  # type: ignore[attr-defined]


async def test_a_plaintext_store_opened_encrypted_says_so_and_creates_no_key(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    await make_store(path)
    store = DiskStore(path)
    with pytest.raises(StoreSetupError, match="holds plaintext data"):
        await store.get("k")
    await store.close()
    assert not (Path(os.environ["XDG_CONFIG_HOME"]) / "fastmcp" / "fastmcp-sessions.key").exists()
