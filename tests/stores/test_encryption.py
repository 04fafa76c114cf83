"""Encryption over any store: binding, no passthrough, key sources, rotation, redaction."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from fastmcp_sessions import EncryptedStore, Keyring, MemoryStore, open_store
from fastmcp_sessions.encryption import KEYS_ENV, default_key_file, load_keyring
from fastmcp_sessions.errors import DecryptionError, KeyMismatchError, StoreSetupError, key_ref

KEY = Keyring.generate_key()


async def test_values_are_ciphertext_in_the_inner_store() -> None:
    inner = MemoryStore()
    store = EncryptedStore(inner, keys=[KEY])
    await store.put("k", {"token": "secret-value"}, collection="c")
    raw = await inner.get("k", collection="c")
    assert raw is not None and set(raw) == {"__encrypted__", "ciphertext"}
    assert "secret-value" not in str(raw)
    assert await store.get("k", collection="c") == {"token": "secret-value"}


async def test_a_record_copied_to_another_key_or_collection_is_refused() -> None:
    inner = MemoryStore()
    store = EncryptedStore(inner, keys=[KEY])
    await store.put("alice", {"token": "alice"}, collection="tokens")
    stolen = await inner.get("alice", collection="tokens")
    assert stolen is not None
    await inner.put("mallory", stolen, collection="tokens")
    await inner.put("alice", stolen, collection="other")
    with pytest.raises(DecryptionError, match="different collection or key"):
        await store.get("mallory", collection="tokens")
    with pytest.raises(DecryptionError):
        await store.get("alice", collection="other")
    with pytest.raises(DecryptionError):
        await store.get_many(["mallory"], collection="tokens")


@pytest.mark.parametrize(
    "planted",
    [
        {"token": "plaintext"},
        {"__encrypted__": "fernet-v1"},
        {"__encrypted__": "fernet-v1", "ciphertext": "not-a-token"},
        {"__encrypted__": "other", "ciphertext": "x"},
        {"__encrypted__": "fernet-v1", "ciphertext": "x", "extra": 1},
    ],
)
async def test_nothing_unencrypted_is_passed_through(planted: dict[str, object]) -> None:
    inner = MemoryStore()
    store = EncryptedStore(inner, keys=[KEY])
    await inner.put("k", planted)
    with pytest.raises(DecryptionError):
        await store.get("k")
    with pytest.raises(DecryptionError):
        await store.ttl("k")


async def test_wrong_key_names_collection_and_key_and_overwrites_nothing() -> None:
    inner = MemoryStore()
    await EncryptedStore(inner, keys=[KEY]).put("k", {"v": 1}, collection="c")
    before = await inner.get("k", collection="c")
    with pytest.raises(KeyMismatchError):  # refused as the store opens, by its key-check record
        await EncryptedStore(inner, keys=[Keyring.generate_key()]).get("k", collection="c")
    wrong = EncryptedStore(inner, keys=[Keyring.generate_key()], key_check=False)
    with pytest.raises(DecryptionError) as info:
        await wrong.get("k", collection="c")
    # the collection by name, the key by its hash only (keys can be secrets)
    assert "'c'" in str(info.value) and key_ref("k") in str(info.value) and "'k'" not in str(info.value)
    with pytest.raises(DecryptionError):
        await wrong.update("k", lambda v: {"v": 2}, collection="c")
    assert await inner.get("k", collection="c") == before


async def test_atomic_operations_work_through_the_wrapper() -> None:
    store = EncryptedStore(MemoryStore(), keys=[KEY])
    assert await store.put_if_absent("k", {"v": 1}) is True
    assert await store.put_if_absent("k", {"v": 2}) is False
    entry = await store.get_versioned("k")
    assert entry is not None and entry.value == {"v": 1}
    assert await store.compare_and_set("k", {"v": 3}, version=entry.version) is True
    assert await store.compare_and_set("k", {"v": 4}, version=entry.version) is False
    assert await store.update("k", lambda v: {"v": v["v"] + 1}) == {"v": 4}


async def test_rotation_with_old_keys_still_decrypting() -> None:
    inner = MemoryStore()
    old, new = KEY, Keyring.generate_key()
    await EncryptedStore(inner, keys=[old]).put_many(
        ["a", "b"], [{"v": 1}, {"v": 2}], collection="c", ttl=600
    )
    rotating = EncryptedStore(inner, keys=[new, old])
    assert await rotating.get("a", collection="c") == {"v": 1}
    assert await rotating.rotate() == 2
    assert await rotating.rotate() == 0
    only_new = EncryptedStore(inner, keys=[new])
    assert await only_new.get_many(["a", "b"], collection="c") == [{"v": 1}, {"v": 2}]
    _, ttl = await only_new.ttl("a", collection="c")
    assert ttl is not None and ttl > 590


def test_key_sources_in_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_key, passed = Keyring.generate_key(), Keyring.generate_key()
    monkeypatch.setenv(KEYS_ENV, f"{env_key}, {KEY}")
    assert load_keyring([passed]).source == "passed in"
    from_env = load_keyring()
    assert from_env.source == f"env {KEYS_ENV}" and len(from_env) == 2
    monkeypatch.delenv(KEYS_ENV)
    from_file = load_keyring(app_name="demo")
    path = default_key_file("demo")
    assert from_file.source == f"key file {path}"
    assert path.is_relative_to(Path(os.environ["XDG_CONFIG_HOME"]))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_keyring(app_name="demo").fingerprints == from_file.fingerprints, "the file is reused"


def test_bad_keys_are_a_clear_error_without_echoing_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEYS_ENV, "not-a-fernet-key-but-a-secret")
    with pytest.raises(StoreSetupError) as info:
        load_keyring()
    assert "not-a-fernet-key-but-a-secret" not in str(info.value)
    assert "Fernet" in str(info.value)


def test_keys_never_appear_in_reprs_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    keyring = Keyring([KEY])
    store = EncryptedStore(MemoryStore(), keys=keyring)
    opened = open_store("memory://?encryption=true", keys=[KEY])
    for text in (repr(keyring), repr(store), repr(opened), caplog.text):
        assert KEY not in text
    assert keyring.fingerprints[0] in repr(keyring)


def test_world_readable_key_file_warns(caplog: pytest.LogCaptureFixture) -> None:
    load_keyring(app_name="loose")
    path = default_key_file("loose")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="fastmcp_sessions"):
        load_keyring(app_name="loose")
    assert "chmod 600" in caplog.text
