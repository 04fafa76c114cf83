"""``fastmcp-sessions migrate``: TTLs kept, idempotent, resumable, count-checked, from our stores and
from py-key-value-aio's (DiskStore, FileTreeStore, Redis, FastMCP's OAuth proxy default storage)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from fastmcp_sessions import DiskStore, Keyring, Store, open_store
from fastmcp_sessions.cli import migrate as migrate_module
from tests._support.cli_runner import CliRunner, assert_one_line_error

KEY = Keyring.generate_key()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def fill(store: Store, n: int, collections: tuple[str, ...] = ("a", "b/c", "x::y")) -> None:
    for i in range(n):
        ttl = None if i % 3 == 0 else 600 + i
        await store.put(
            f"key {i}:*", {"i": i, "s": "é" * (i % 4)}, collection=collections[i % len(collections)], ttl=ttl
        )
    await store.close()


async def dump(store: Store) -> dict[tuple[str, str], tuple[Any, float | None]]:
    out = {}
    for collection in await store.collections():
        keys = await store.keys(collection)
        for key, row in zip(keys, await store.ttl_many(keys, collection=collection), strict=True):
            out[(collection, key)] = row
    await store.close()
    return out


def versions(path: Path) -> dict[tuple[str, str], int]:
    with sqlite3.connect(path) as conn:
        return {(c, k): v for c, k, v in conn.execute("SELECT collection, key, version FROM entries")}


@pytest.fixture
def src(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", KEY)
    url = f"disk://{tmp_path / 'src.sqlite3'}"
    run(fill(open_store(url), 450))
    return url


def test_copies_every_collection_with_remaining_ttl(cli: CliRunner, src: str, tmp_path: Path) -> None:
    dst = f"disk://{tmp_path / 'dst.sqlite3'}"
    result = cli("migrate", src, dst, "--json")
    assert result.code == 0, result.all
    report = result.json()
    assert report["ok"] and report["total"]["copied"] == 450
    assert report["count_check"] == {"source": 450, "destination": 450, "missing": 0}
    before, after = run(dump(open_store(src))), run(dump(open_store(dst)))
    assert before.keys() == after.keys()
    for name, (value, ttl) in before.items():
        new_value, new_ttl = after[name]
        assert new_value == value
        if ttl is None:
            assert new_ttl is None
        else:
            assert (
                new_ttl is not None and ttl - 30 < new_ttl <= ttl + 1.0
            )  # the copy may outlive the source by one batch write
    assert "migrate:" in result.err  # progress on stderr, plain lines (not a TTY)
    assert "\r" not in result.err


def test_second_run_writes_nothing(cli: CliRunner, src: str, tmp_path: Path) -> None:
    path = tmp_path / "dst.sqlite3"
    assert cli("migrate", src, f"disk://{path}").code == 0
    first = versions(path)
    again = cli("migrate", src, f"disk://{path}", "--json")
    assert again.code == 0
    assert again.json()["total"]["present"] == 450 and again.json()["total"]["copied"] == 0
    assert versions(path) == first, "an idempotent re-run must not rewrite entries"


def test_interrupted_run_resumes_from_its_checkpoint(
    cli: CliRunner, src: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, checkpoint = tmp_path / "dst.sqlite3", tmp_path / "ckpt.json"
    real = migrate_module.copy_batch
    calls = {"n": 0}

    async def flaky(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        await real(*args, **kwargs)

    monkeypatch.setattr(migrate_module, "copy_batch", flaky)
    args = ("migrate", src, f"disk://{path}", "--batch-size", "50", "--checkpoint", str(checkpoint))
    stopped = cli(*args)
    assert_one_line_error(stopped, 130)
    assert "run the same command again to resume" in stopped.err
    assert checkpoint.exists() and oct(checkpoint.stat().st_mode & 0o777) == "0o600"
    saved = json.loads(checkpoint.read_text())
    assert "key " not in checkpoint.read_text(), "checkpoints hold key hashes, not keys"
    assert saved["done"] == ["a"]
    assert saved["current"]["collection"] == "b/c" and saved["current"]["position"] == 50
    assert len(versions(path)) == 200
    first_versions = versions(path)

    monkeypatch.setattr(migrate_module, "copy_batch", real)
    resumed = cli(*args, "--json")
    assert resumed.code == 0, resumed.all
    report = resumed.json()
    assert report["total"]["copied"] == 450 and report["total"]["present"] == 0
    assert report["count_check"]["missing"] == 0
    assert "resuming" in resumed.err
    after = versions(path)
    assert len(after) == 450
    assert all(after[k] == v for k, v in first_versions.items()), "finished batches are not copied twice"
    assert not checkpoint.exists(), "a completed migration removes its checkpoint"


def test_restart_ignores_the_checkpoint(
    cli: CliRunner, src: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, checkpoint = tmp_path / "dst.sqlite3", tmp_path / "ckpt.json"

    async def stop(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    real = migrate_module.copy_batch
    monkeypatch.setattr(migrate_module, "copy_batch", stop)
    assert cli("migrate", src, f"disk://{path}", "--checkpoint", str(checkpoint)).code == 130
    monkeypatch.setattr(migrate_module, "copy_batch", real)
    result = cli("migrate", src, f"disk://{path}", "--checkpoint", str(checkpoint), "--restart", "--json")
    assert result.code == 0 and result.json()["total"]["copied"] == 450


def test_count_check_fails_when_the_destination_loses_entries(
    cli: CliRunner, src: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def lying_put_if_absent(self: Store, *args: Any, **kwargs: Any) -> bool:
        return True  # claims success, stores nothing

    monkeypatch.setattr(DiskStore, "put_if_absent", lying_put_if_absent)
    result = cli("migrate", src, f"disk://{tmp_path / 'dst.sqlite3'}")
    assert_one_line_error(result, 1)
    assert "count check FAILED" in result.out
    assert "450 are missing" in result.out


def test_differing_entries_are_kept_unless_overwrite(cli: CliRunner, src: str, tmp_path: Path) -> None:
    dst = f"disk://{tmp_path / 'dst.sqlite3'}"

    async def prepare() -> None:
        store = open_store(dst)
        await store.put("key 0:*", {"newer": True}, collection="a")
        await store.close()

    run(prepare())
    kept = cli("migrate", src, dst, "--json")
    assert kept.code == 0 and kept.json()["total"]["kept"] == 1
    assert "--overwrite" in cli("migrate", src, dst).out

    async def value() -> Any:
        store = open_store(dst)
        try:
            return await store.get("key 0:*", collection="a")
        finally:
            await store.close()

    assert run(value()) == {"newer": True}
    replaced = cli("migrate", src, dst, "--overwrite", "--json")
    assert replaced.json()["total"]["overwritten"] == 1
    assert run(value()) == {"i": 0, "s": ""}


def test_dry_run_writes_nothing(cli: CliRunner, src: str, tmp_path: Path) -> None:
    path = tmp_path / "dst.sqlite3"
    result = cli("migrate", src, f"disk://{path}", "--dry-run", "--json")
    assert result.code == 0 and result.json()["total"]["copied"] == 450
    assert versions(path) == {}


def test_collection_filter(cli: CliRunner, src: str, tmp_path: Path) -> None:
    dst = f"disk://{tmp_path / 'dst.sqlite3'}"
    result = cli("migrate", src, dst, "--collection", "a", "-c", "b/c", "--json")
    assert result.code == 0
    assert set(result.json()["collections"]) == {"a", "b/c"}
    assert set(run(dump(open_store(dst)))) == {k for k in run(dump(open_store(src))) if k[0] in ("a", "b/c")}


def test_plaintext_to_encrypted(cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = f"disk://{tmp_path / 'plain.sqlite3'}?encryption=false"
    run(fill(open_store(plain), 30))
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", KEY)
    dst = tmp_path / "enc.sqlite3"
    assert cli("migrate", plain, f"disk://{dst}").code == 0
    with sqlite3.connect(dst) as conn:
        assert b"key 0" not in b"".join(bytes(v) for (v,) in conn.execute("SELECT value FROM entries"))
    assert run(dump(open_store(f"disk://{dst}"))).keys() == run(dump(open_store(plain))).keys()


# -- bad arguments ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "phrase"),
    [
        (("migrate", "memory://"), 2, "DST_URL"),
        (("migrate", "memory://", "memory://"), 2, "same store"),
        (("migrate", "nope://x", "memory://"), 2, "unknown store URL scheme"),
        (("migrate", "kv+disk:///does/not/exist", "memory://"), 1, "not a directory"),
        (("migrate", "kv+bogus:///tmp", "memory://"), 2, "unsupported py-key-value store"),
        (("migrate", "kv+fernet+disk:///tmp", "memory://"), 2, "key_env"),
        (("migrate", "fastmcp-oauth-proxy://", "memory://"), 2, "jwt_signing_key_env"),
        (("migrate", "memory://", "disk:///x", "--batch-size", "0"), 2, "--batch-size"),
        (("migrate", "memory://", "disk:///x", "--batch-size", "many"), 2, "invalid int"),
    ],
)
def test_bad_arguments_are_one_line(cli: CliRunner, args: tuple[str, ...], code: int, phrase: str) -> None:
    result = cli(*args)
    assert_one_line_error(result, code)
    assert phrase in result.err


# -- from py-key-value-aio ---------------------------------------------------------------


def test_from_py_key_value_disk_store(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from key_value.aio.stores.disk import DiskStore as KvDiskStore

    async def prepare() -> None:
        kv = KvDiskStore(directory=tmp_path / "kv")
        for i in range(40):
            await kv.put(f"user:{i}", {"i": i}, collection="mcp-oauth-token", ttl=None if i % 2 else 900)
        await kv.put("k::with::colons", {"odd": True}, collection="odd::collection")
        await kv.put("gone", {"x": 1}, collection="mcp-oauth-token", ttl=0.05)
        await kv.close()

    run(prepare())
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", KEY)
    dst = f"disk://{tmp_path / 'dst.sqlite3'}"
    import time

    time.sleep(0.1)
    result = cli("migrate", f"kv+disk://{tmp_path / 'kv'}", dst, "--json")
    assert result.code == 0, result.all
    report = result.json()
    assert report["total"]["copied"] == 41 and report["total"]["expired"] == 1
    data = run(dump(open_store(dst)))
    assert data[("odd::collection", "k::with::colons")] == ({"odd": True}, None)
    value, ttl = data[("mcp-oauth-token", "user:0")]
    assert value == {"i": 0} and ttl is not None and 850 < ttl <= 900
    assert data[("mcp-oauth-token", "user:1")] == ({"i": 1}, None)
    # --from-py-key-value is the same source spelled without kv+
    again = cli("migrate", "--from-py-key-value", f"disk://{tmp_path / 'kv'}", dst, "--json")
    assert again.code == 0 and again.json()["total"]["present"] == 41


def _filetree(path: Path) -> Any:
    from key_value.aio.stores.filetree import (
        FileTreeStore,
        FileTreeV1CollectionSanitizationStrategy,
        FileTreeV1KeySanitizationStrategy,
    )

    return FileTreeStore(
        data_directory=path,
        key_sanitization_strategy=FileTreeV1KeySanitizationStrategy(path),
        collection_sanitization_strategy=FileTreeV1CollectionSanitizationStrategy(path),
    )


def test_from_fernet_filetree_store_recovers_sanitized_keys(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastMCP's layout: Fernet over a FileTreeStore with V1 sanitization (file names are sanitized keys)."""
    from key_value.aio.wrappers.encryption import FernetEncryptionWrapper

    fernet_key = Fernet.generate_key().decode()
    tree = tmp_path / "tree"
    tree.mkdir()

    async def prepare() -> None:
        kv = FernetEncryptionWrapper(_filetree(tree), fernet=Fernet(fernet_key))
        await kv.put("plain_key", {"client_id": "plain_key"}, collection="mcp-oauth-proxy-clients")
        await kv.put(
            "c0ffee-1234-uuid",
            {"client_id": "c0ffee-1234-uuid"},
            collection="mcp-oauth-proxy-clients",
            ttl=500,
        )
        await kv.put("jti-A.b", {"jti": "jti-A.b", "upstream_token_id": "u1"}, collection="mcp-jti-mappings")
        await kv.put("unrecoverable key!", {"nothing": "matches"}, collection="mcp-jti-mappings")

    run(prepare())
    monkeypatch.setenv("SRC_FERNET", fernet_key)
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", KEY)
    dst = f"disk://{tmp_path / 'dst.sqlite3'}"
    result = cli("migrate", f"kv+fernet+filetree://{tree}?key_env=SRC_FERNET", dst, "--json")
    assert result.code == 1, "an entry whose key cannot be recovered is reported and fails the run"
    report = result.json()
    assert report["total"]["copied"] == 3
    assert len(report["problems"]) == 1 and "cannot be recovered" in report["problems"][0]
    assert fernet_key not in result.all
    data = run(dump(open_store(dst)))
    assert data[("mcp-oauth-proxy-clients", "plain_key")] == ({"client_id": "plain_key"}, None)
    value, ttl = data[("mcp-oauth-proxy-clients", "c0ffee-1234-uuid")]
    assert value == {"client_id": "c0ffee-1234-uuid"} and ttl is not None and 450 < ttl <= 500
    assert data[("mcp-jti-mappings", "jti-A.b")][0] == {"jti": "jti-A.b", "upstream_token_id": "u1"}


def test_wrong_fernet_key_is_a_clear_error(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from key_value.aio.wrappers.encryption import FernetEncryptionWrapper

    tree = tmp_path / "tree"
    tree.mkdir()

    async def prepare() -> None:
        kv = FernetEncryptionWrapper(_filetree(tree), fernet=Fernet(Fernet.generate_key()))
        await kv.put("k", {"v": 1}, collection="c")

    run(prepare())
    wrong = Fernet.generate_key().decode()
    monkeypatch.setenv("WRONG", wrong)
    result = cli("migrate", f"kv+fernet+filetree://{tree}?key_env=WRONG", "memory://")
    assert_one_line_error(result, 1)
    assert "cannot decrypt" in result.err and wrong not in result.all


def test_from_fastmcp_oauth_proxy_default_storage(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FastMCP OAuthProxy with no client_storage keeps clients in its own encrypted FileTreeStore;
    after migrate, a proxy on our store sees the same registered client (no new registration)."""
    import fastmcp
    from fastmcp.server.auth.oauth_proxy import OAuthProxy
    from mcp.shared.auth import OAuthClientInformationFull

    from tests._support.oauth_proxy import fake_upstream_proxy

    home = tmp_path / "fastmcp-home"
    monkeypatch.setattr(fastmcp.settings, "home", home)
    signing_key = "a-jwt-signing-key-of-some-length"

    def proxy(**storage: Any) -> OAuthProxy:
        return fake_upstream_proxy(jwt_signing_key=signing_key, **storage)

    async def register() -> None:
        info = OAuthClientInformationFull(
            client_id="3f1c-client-uuid",
            client_secret="client-secret-value",
            redirect_uris=["http://127.0.0.1:9999/callback"],
        )
        await proxy().register_client(info)

    run(register())
    assert list((home / "oauth-proxy").iterdir()), "FastMCP wrote its default storage"
    monkeypatch.setenv("JWT_KEY", signing_key)
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", KEY)
    dst = f"disk://{tmp_path / 'oauth.sqlite3'}"
    result = cli("migrate", f"fastmcp-oauth-proxy://?jwt_signing_key_env=JWT_KEY&home={home}", dst, "--json")
    assert result.code == 0, result.all
    assert result.json()["collections"]["mcp-oauth-proxy-clients"]["copied"] == 1
    assert signing_key not in result.all and "client-secret-value" not in result.all

    async def read_back() -> Any:
        store = open_store(dst)
        try:
            return await proxy(client_storage=store).get_client("3f1c-client-uuid")
        finally:
            await store.close()

    client = run(read_back())
    assert client is not None and client.client_id == "3f1c-client-uuid"

    # --to-server: into the layout fastmcp_sessions.fastmcp.server_storage() gives a server.
    from fastmcp_sessions.fastmcp import server_storage

    monkeypatch.setenv("FASTMCP_SESSIONS_OAUTH_KEYS", Keyring.generate_key())
    shared = f"disk://{tmp_path / 'shared.sqlite3'}"
    src_url = f"fastmcp-oauth-proxy://?jwt_signing_key_env=JWT_KEY&home={home}"
    routed = cli("migrate", src_url, shared, "--to-server", "billing", "--json")
    assert routed.code == 0, routed.all
    assert routed.json()["count_check"]["missing"] == 0

    async def read_via_server_storage() -> Any:
        async with server_storage(shared, server_name="billing") as storage:
            return await proxy(**storage.oauth_proxy_kwargs()).get_client("3f1c-client-uuid")

    client = run(read_via_server_storage())
    assert client is not None and client.client_id == "3f1c-client-uuid"
    unroutable = cli("migrate", src_url, shared, "--to-server", "billing", "--collection", "other")
    assert_one_line_error(unroutable, 2)

    wrong = cli("migrate", f"fastmcp-oauth-proxy://?jwt_signing_key_env=HOME&home={home}", dst)
    assert_one_line_error(wrong, 1)
    assert "no FastMCP OAuth proxy storage" in wrong.err


def test_from_py_key_value_redis(
    cli: CliRunner, redis_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from key_value.aio.stores.redis import RedisStore

    async def prepare() -> None:
        kv = RedisStore(url=redis_server.url)
        for i in range(30):
            await kv.put(f"s{i}", {"i": i}, collection="fastmcp_state", ttl=None if i % 2 else 700)
        await kv.put("t", {"token": "x"}, collection="mcp-oauth-token")
        await kv.close()

    run(prepare())
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", KEY)
    dst = f"disk://{tmp_path / 'dst.sqlite3'}"
    url = redis_server.url.replace("redis://", "kv+redis://")
    result = cli("migrate", url, dst, "--collection", "fastmcp_state", "-c", "mcp-oauth-token", "--json")
    assert result.code == 0, result.all
    assert result.json()["total"]["copied"] == 31
    data = run(dump(open_store(dst)))
    value, ttl = data[("fastmcp_state", "s0")]
    assert value == {"i": 0} and ttl is not None and 650 < ttl <= 700
    # Without --collection it lists the collections itself (by SCAN).
    listed = cli("migrate", url, dst, "--json")
    assert listed.code == 0 and listed.json()["total"]["present"] >= 31


def test_disk_to_redis_with_the_default_batch_size(
    redis_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import secrets

    from tests._support.cli_runner import run_subprocess

    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", KEY)
    src = f"disk://{tmp_path / 'src.sqlite3'}"
    run(fill(open_store(src), 1500))  # 500 per collection: several batches of 200 at once
    dst = f"{redis_server.url}?namespace=mig{secrets.token_hex(4)}"
    result = run_subprocess("migrate", src, dst, "--json")  # the console script's own path
    assert result.code == 0, result.all
    assert "Traceback" not in result.all
    assert result.json()["total"]["copied"] == 1500
    source, copied = run(dump(open_store(src))), run(dump(open_store(dst)))
    assert source.keys() == copied.keys()
    for where, (value, ttl) in source.items():
        assert copied[where][0] == value
        assert (ttl is None) == (copied[where][1] is None)
