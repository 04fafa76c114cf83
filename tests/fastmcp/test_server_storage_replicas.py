"""What server_storage gives every replica besides stores: the bus the URL implies, and
request-state keys derived from the shared keyring that rotate with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp.server.request_state import InvalidRequestState

from fastmcp_sessions import Keyring, MemoryStore
from fastmcp_sessions.buses import MemoryBus, RedisBus, UnixSocketBus
from fastmcp_sessions.fastmcp import request_state_security, server_storage

OLD, NEW = Keyring.generate_key(), Keyring.generate_key()


async def test_the_url_picks_the_bus(
    tmp_path: Path, redis_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", OLD)
    for url, kind in (
        ("memory://", MemoryBus),
        (f"disk://{tmp_path / 's.sqlite3'}", UnixSocketBus),
        (redis_server.url, RedisBus),
        (redis_server.url + "?encryption=true", RedisBus),  # looked up under the encryption layer
    ):
        async with server_storage(url, server_name="pick") as storage:
            assert type(storage.subscription_bus) is kind, url
            assert storage.subscription_bus.server_name == "pick"


async def test_kwargs_carry_request_state_security_from_the_shared_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FASTMCP_SESSIONS_KEYS", OLD)
    one = server_storage(store=MemoryStore(), server_name="rs")
    other = server_storage(store=MemoryStore(), server_name="rs")  # another replica, same keys
    security = one.kwargs()["request_state_security"]
    assert security.audience == "rs"
    token = security.codec.seal(b"state")
    assert other.kwargs()["request_state_security"].codec.unseal(token) == b"state"


def test_request_state_keys_rotate_with_the_keyring_and_stay_per_server() -> None:
    before = request_state_security(Keyring([OLD]), server_name="rs")
    token = before.codec.seal(b"state")
    rotated = request_state_security(Keyring([NEW, OLD]), server_name="rs")
    assert rotated.codec.unseal(token) == b"state"  # an older key still opens
    with pytest.raises(InvalidRequestState):
        request_state_security(Keyring([NEW]), server_name="rs").codec.unseal(token)  # OLD retired
    with pytest.raises(InvalidRequestState):
        request_state_security(Keyring([OLD]), server_name="other").codec.unseal(token)


def test_the_derived_keys_are_not_the_keyring_keys() -> None:
    derived = Keyring([NEW, OLD]).derive_keys("purpose")
    assert len(derived) == 2 and all(len(k) == 32 for k in derived)
    assert not {NEW.encode(), OLD.encode()} & set(derived)
    assert Keyring([NEW, NEW]).derive_keys("purpose") == derived[:1]
