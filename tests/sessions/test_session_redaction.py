"""A Session's URL credentials and header values never show in its representations, yet are stored."""

from __future__ import annotations

import json

from fastmcp_sessions import Store
from fastmcp_sessions.sessions import SessionStore
from fastmcp_sessions.sessions.models import REVEAL
from tests._support.backends import Backend

SECRET_URL = "https://bob:PASSW0RD@mcp.example.com/mcp?api_key=APIKEY123&region=eu"
SECRETS = ("PASSW0RD", "APIKEY123", "HEADERSECRET", "CALLBACKPW")


async def test_session_representations_redact_and_attributes_are_real(store: Store) -> None:
    sessions = SessionStore(store)
    s = await sessions.create(
        "alice",
        server_url=SECRET_URL,
        callback_url="https://app:CALLBACKPW@app.example.com/cb",
        headers={"Authorization": "Bearer HEADERSECRET"},
    )
    for text in (
        repr(s),
        str(s),
        s.model_dump_json(),
        json.dumps(s.model_dump(mode="json")),
        str(s.model_dump()),
    ):
        for secret in SECRETS:
            assert secret not in text, (secret, text)
    dumped = s.model_dump(mode="json")
    assert dumped["server_url"] == "https://bob:***@mcp.example.com/mcp?api_key=***&region=eu"
    assert dumped["headers"] == {"Authorization": "***"}
    assert "bob:***@mcp.example.com" in repr(s) and "Authorization" in repr(s)

    # The explicit accessors give the real values.
    assert "bob:PASSW0RD@" in s.server_url and "api_key=APIKEY123" in s.server_url
    assert s.headers == {"Authorization": "Bearer HEADERSECRET"} == s.real_headers()
    revealed = s.model_dump(mode="json", context=REVEAL)
    assert revealed["server_url"] == s.server_url
    assert revealed["headers"] == {"Authorization": "Bearer HEADERSECRET"}
    assert revealed["callback_url"] == "https://app:CALLBACKPW@app.example.com/cb"


async def test_real_values_round_trip_through_the_store(shared_backend: Backend) -> None:
    first = shared_backend.open()
    try:
        created = await SessionStore(first).create(
            "alice", server_url=SECRET_URL, headers={"X-Api-Key": "HEADERSECRET"}
        )
    finally:
        await first.close()
    second = shared_backend.open()  # a fresh store object: what is read back comes from the backend
    try:
        got = await SessionStore(second).get("alice", created.session_id, touch=False)
    finally:
        await second.close()
    assert got is not None
    assert got.server_url == created.server_url
    assert "bob:PASSW0RD@" in got.server_url and "api_key=APIKEY123" in got.server_url
    assert got.headers == {"X-Api-Key": "HEADERSECRET"}
