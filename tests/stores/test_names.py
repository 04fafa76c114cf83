"""The stored form of names too long for a backend's key field (fastmcp_sessions/stores/_names.py)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastmcp_sessions.stores._names import HASH_MARKER, MIN_LIMIT, is_hashed, stored_name


@pytest.mark.parametrize("name", ["k", "x" * 1024, "é" * 512, "鍵" * 341, "🔑" * 256, "a\x1fsha256:b"])
def test_names_that_fit_are_stored_as_they_are(name: str) -> None:
    assert stored_name(name, 1024) is name
    assert not is_hashed(stored_name(name, 1024))


@pytest.mark.parametrize("name", ["x" * 1025, "é" * 513, "鍵" * 342, "🔑" * 257, "y" * 100_000])
def test_longer_names_are_hashed_within_the_limit(name: str) -> None:
    stored = stored_name(name, 1024)
    assert is_hashed(stored)
    assert len(stored.encode("utf-8")) <= 1024
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()
    assert stored.startswith(f"{HASH_MARKER}{digest}:")
    head = stored[len(HASH_MARKER) + 65 :]
    assert head and name.startswith(head), "the head is whole characters of the name's start"
    assert stored_name(name, 1024) == stored, "deterministic"


def test_names_sharing_a_long_prefix_stay_apart() -> None:
    base = "p" * 5000
    forms = {stored_name(n, 1024) for n in (base + "a", base + "b", base, base + "aa", base[:-1])}
    assert len(forms) == 5


def test_no_literal_name_equals_a_hashed_form() -> None:
    long = "z" * 3000
    hashed = stored_name(long, 1024)
    # A literal name spelled like the hashed form (or like the marker) is hashed itself.
    assert stored_name(hashed, 1024) != hashed
    assert is_hashed(stored_name(HASH_MARKER, 1024)) and stored_name(HASH_MARKER, 1024) != HASH_MARKER
    assert stored_name(HASH_MARKER + "x", 1024) != stored_name(HASH_MARKER + "y", 1024)


def test_a_limit_too_small_for_a_hash_is_refused() -> None:
    assert stored_name("short", 10) == "short"
    with pytest.raises(ValueError, match=str(MIN_LIMIT)):
        stored_name("x" * 11, 10)
    assert len(stored_name("🔑" * 100, MIN_LIMIT).encode()) <= MIN_LIMIT


# Plain names and names that begin with the marker, some fitting a small limit and some not.
_names = st.text(min_size=1, max_size=80) | st.text(max_size=80).map(lambda s: HASH_MARKER + s)


@given(a=_names, b=_names)
def test_distinct_names_have_distinct_stored_forms(a: str, b: str) -> None:
    if a != b:
        assert stored_name(a, MIN_LIMIT) != stored_name(b, MIN_LIMIT)
    assert len(stored_name(a, MIN_LIMIT).encode()) <= MIN_LIMIT
