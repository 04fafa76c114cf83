"""``address_from_url``: the host and port a store reports, never the URL's credentials."""

from __future__ import annotations

import pytest

from fastmcp_sessions.stores._url import address_from_url


@pytest.mark.parametrize(
    ("url", "default_port", "expected"),
    [
        ("postgresql://user:secret@db.example:6543/app", 5432, ("db.example", 6543)),
        ("postgresql://user:secret@db.example/app", 5432, ("db.example", 5432)),
        ("mongodb://a.example:27018,b.example:27019/?replicaSet=rs", 27017, ("a.example", 27018)),
        ("http://localhost:8000", 443, ("localhost", 8000)),
        ("redis://[::1]:6380/0", None, ("::1", 6380)),
        ("memory://", 1, (None, None)),
        ("not a url", 1, (None, None)),
        (None, 1, (None, None)),
        ("http://host:notaport/", 1, (None, None)),
    ],
)
def test_the_first_host_and_its_port_or_the_default(
    url: str | None, default_port: int | None, expected: tuple[str | None, int | None]
) -> None:
    assert address_from_url(url, default_port) == expected


def test_credentials_never_reach_the_address() -> None:
    host, _ = address_from_url("postgresql://alice:hunter2@db.example/app", 5432)
    assert host is not None and "hunter2" not in host and "alice" not in host
