"""Redis-specific behaviour of RedisStore, against real redis-server processes.

The conformance suite (tests/conformance) already runs on a plain server, a TLS-only
server and a three-master cluster (tests/_support/backends_redis.py). These tests cover what is
Redis's own: the key layout, foreign data and foreign keys, clients passed in, ACL users,
TLS and Unix sockets, round trips per batch, millisecond TTLs, and outages.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection
from redis.crc import key_slot

from fastmcp_sessions import open_store
from fastmcp_sessions.errors import (
    DeserializationError,
    KeyValueOperationError,
    SerializationError,
    StoreConnectionError,
    StoreOptionError,
)
from fastmcp_sessions.stores.namespaced import NamespacedStore
from fastmcp_sessions.stores.redis import RedisStore
from fastmcp_sessions.stores.redis.pipelining import _Link
from tests._support import REPO
from tests._support.servers import RedisCluster as ClusterLauncher
from tests._support.servers import RedisServer

pytestmark = pytest.mark.timeout(120)

HEADER_LEN = len("fms1:") + 20


@pytest.fixture
def ns() -> str:
    return "t" + secrets.token_hex(6)


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A plain redis-py client on the session's server, to look under the store."""
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
async def store(redis_server: RedisServer, ns: str) -> AsyncIterator[RedisStore]:
    s = RedisStore(redis_server.url, namespace=ns)
    yield s
    await s.close()


class RoundTrips:
    """Counts writes per server port, of redis-py's connections and of the store's
    pipelined ones: one write, one round trip."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.by_port: Counter[int] = Counter()
        original = Connection.send_packed_command
        original_send = _Link.send
        counter = self.by_port

        async def counting(conn: Connection, *args: Any, **kwargs: Any) -> None:
            counter[int(conn.port)] += 1
            await original(conn, *args, **kwargs)

        def counting_send(link: _Link, *args: Any) -> None:
            counter[int(link.connection.port)] += 1
            original_send(link, *args)

        monkeypatch.setattr(Connection, "send_packed_command", counting)
        monkeypatch.setattr(_Link, "send", counting_send)

    @property
    def total(self) -> int:
        return sum(self.by_port.values())

    def reset(self) -> None:
        self.by_port.clear()


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> RoundTrips:
    return RoundTrips(monkeypatch)


# -- key layout ---------------------------------------------------------------------------


async def test_key_layout_is_the_documented_one(redis_server: RedisServer, raw: Redis, ns: str) -> None:
    async with RedisStore(redis_server.url, namespace=ns) as s:
        assert s.redis_key("s1:foo", collection="fastmcp_state") == f"{ns}:{{fastmcp_state}}:s1:foo"
        assert s.redis_key("k", collection="tools/list") == f"{ns}:{{tools/list}}:k"
        # { } and : are percent-escaped in the collection, and % only where it would read as
        # one of those escapes; the key is kept as it is
        assert s.redis_key("{x}:*", collection="a:b{c}%") == f"{ns}:{{a%3Ab%7Bc%7D%}}:{{x}}:*"
        assert s.redis_key("k", collection="%7D%3A%25%2F") == f"{ns}:{{%257D%253A%2525%2F}}:k"
        await s.put("k", {"v": 1}, collection="c")
        stored = await raw.get(f"{ns}:{{c}}:k")
        assert stored is not None and stored.startswith(b"fms1:")
        version = stored[5:HEADER_LEN].decode()
        assert len(version) == 20 and int(version, 16) >= 0
        assert stored[HEADER_LEN:] == b'{"v":1}'
        entry = await s.get_versioned("k", collection="c")
        assert entry is not None and entry.version == version
    async with RedisStore(redis_server.url, namespace=ns, colocate=False) as spread:
        assert spread.redis_key("{x}:*", collection="a:b{c}%") == f"{ns}:{{}}:a%3Ab%7Bc%7D%:{{x}}:*"


async def test_a_namespaced_collection_is_escaped_once(
    redis_server: RedisServer, raw: Redis, ns: str
) -> None:
    # A view writes "/" in its collections as "%2F"; the store keeps that spelling, so a
    # FastMCP cache collection reads in Redis as it does in the view's docs.
    async with RedisStore(redis_server.url, namespace=ns) as s:
        view = NamespacedStore(s, "fastmcp/notes-cloud/cache")
        await view.put("k", {"v": 1}, collection="tools/list")
        names = sorted([n.decode() async for n in raw.scan_iter(match=f"{ns}:*")])
        assert names == [f"{ns}:{{fastmcp/notes-cloud/cache/tools%2Flist}}:k"]
        assert await view.keys("tools/list") == ["k"]
        assert await s.collections() == ["fastmcp/notes-cloud/cache/tools%2Flist"]
        assert await view.get("k", collection="tools/list") == {"v": 1}


async def test_a_collection_is_one_hash_slot_unless_spread(redis_server: RedisServer, ns: str) -> None:
    names = ["fastmcp_state", "}", "{", "a}b", "%7D", ":", "tools/list", "n" * 10_000, "鍵{}:" * 2_500]
    async with RedisStore(redis_server.url, namespace=ns) as s:
        for collection in names:
            slots = {key_slot(s.redis_key(f"k{i}{{z}}", collection=collection).encode()) for i in range(50)}
            assert len(slots) == 1, collection
    async with RedisStore(redis_server.url, namespace=ns, colocate=False) as spread:
        slots = {key_slot(spread.redis_key(f"k{i}", collection="fastmcp_state").encode()) for i in range(50)}
        assert len(slots) > 30


@pytest.mark.parametrize("colocate", [True, False])
async def test_no_two_pairs_share_a_redis_key(
    redis_server: RedisServer, raw: Redis, ns: str, colocate: bool
) -> None:
    names = [
        "a",
        "a:",
        ":a",
        "a:b",
        "a%3Ab",
        "%",
        "%25",
        "{",
        "}",
        "{a}",
        "%7B",
        "*",
        "a*",
        "?",
        "[a]",
        "\\",
        "é",
    ]
    pairs = [(c, k) for c in names for k in names]
    async with RedisStore(redis_server.url, namespace=ns, colocate=colocate) as s:
        for i, (c, k) in enumerate(pairs):
            await s.put(k, {"i": i}, collection=c)
        redis_keys = [k async for k in raw.scan_iter(match=f"{ns}:*", count=1000)]
        assert len(redis_keys) == len(pairs), "two (collection, key) pairs share a Redis key"
        for i, (c, k) in enumerate(pairs):
            assert await s.get(k, collection=c) == {"i": i}
        for c in names:
            assert sorted(await s.keys(c)) == sorted(names), c
        assert sorted(await s.collections()) == sorted(names)
        assert await s.destroy_collection("a*") is True
        assert await s.keys("a*") == []
        assert sorted(await s.keys("a")) == sorted(names)


async def test_namespace_is_validated(redis_server: RedisServer) -> None:
    for bad in ["", "a{b", "a}b"]:
        with pytest.raises(ValueError, match="namespace"):
            RedisStore(redis_server.url, namespace=bad)


@pytest.mark.parametrize("colocate", [True, False])
async def test_namespaces_do_not_see_each_other(redis_server: RedisServer, ns: str, colocate: bool) -> None:
    # "ns:c" is a namespace of its own, not collection "c" of namespace "ns"
    spaces = [ns, ns + "x", ns + ":", ns + ":c", ns + ":c:k", ns + "*"]
    stores = [RedisStore(redis_server.url, namespace=n, colocate=colocate) for n in spaces]
    for i, s in enumerate(stores):
        await s.put("k", {"v": i}, collection="c")
        await s.put("k", {"v": i})
    for i, s in enumerate(stores):
        assert await s.get("k", collection="c") == {"v": i}
        assert sorted(await s.collections()) == ["c", "default_collection"]
        assert await s.keys("c") == ["k"]
    assert await stores[0].destroy_collection("c") is True
    assert await stores[0].destroy_collection("default_collection") is True
    for i, s in enumerate(stores[1:], 1):
        assert await s.get("k", collection="c") == {"v": i}
        assert await s.get("k") == {"v": i}
        await s.destroy_collection("c")
        await s.destroy_collection("default_collection")
        await s.close()
    await stores[0].close()


# -- foreign keys and foreign data --------------------------------------------------------


async def test_keys_outside_the_namespace_are_never_touched(
    redis_server: RedisServer, raw: Redis, store: RedisStore, ns: str
) -> None:
    foreign = {
        "other:thing": b"x",
        f"{ns}x:{{c}}:k": b"lookalike namespace",
        f"{ns}": b"bare namespace",
        f"{ns}:{{c}}": b"no key part",
        f"{ns}:c:k": b"no hash tag",
        f"{ns}:{{}}:c:k": b"the spread layout, while this store colocates",
        f"{ns}:{{c%25x}}:k": b"an escape the store never writes",
        "c:k": b"no namespace",
    }
    await raw.mset(foreign)
    await raw.hset("some:hash", mapping={"f": "v"})
    stats_before = await raw.info("commandstats")
    await store.put_many(["k", "j"], [{"v": 1}, {"v": 2}], collection="c")
    await store.put("k", {"v": 3}, collection="d")
    assert sorted(await store.keys("c")) == ["j", "k"]
    assert sorted(await store.collections()) == ["c", "d"]
    assert await store.delete_many(["k", "j"], collection="c") == 2
    await store.put("k", {"v": 1}, collection="c")
    assert await store.destroy_collection("c") is True
    assert await store.destroy_collection("d") is True
    assert await store.collections() == []
    await store.cull()
    for name, value in foreign.items():
        assert await raw.get(name) == value, name
    assert await raw.hgetall("some:hash") == {b"f": b"v"}
    stats = await raw.info("commandstats")
    for command in ("cmdstat_flushdb", "cmdstat_flushall"):
        assert stats.get(command) == stats_before.get(command), f"{command} ran"


CORRUPT = {
    "garbage": b"garbage",
    "json without header": b'{"a": 1}',
    "header only": b"fms1:" + b"0" * 20,
    "list": b"fms1:" + b"0" * 20 + b"[1, 2]",
    "bad json": b"fms1:" + b"0" * 20 + b'{"a":',
    "trailing data": b"fms1:" + b"0" * 20 + b'{"a":1}{"b":2}',
    "NaN": b"fms1:" + b"0" * 20 + b'{"a":NaN}',
    "not utf-8": b"fms1:" + b"0" * 20 + b'{"a":"\xff\xfe"}',
    "binary": b"\x00\xff\xfe\x80",
}


@pytest.mark.parametrize("decode_responses", [False, True])
@pytest.mark.parametrize("kind", [*CORRUPT, "hash", "list type"])
async def test_foreign_or_corrupt_data_raises_deserialization_error(
    redis_server: RedisServer, raw: Redis, ns: str, kind: str, decode_responses: bool
) -> None:
    client = Redis.from_url(redis_server.url, decode_responses=decode_responses)
    async with RedisStore(client=client, namespace=ns) as s:
        await s.put("good", {"v": 1})
        name = s.redis_key("bad")
        if kind == "hash":
            await raw.hset(name, mapping={"v": "1"})
        elif kind == "list type":
            await raw.rpush(name, "x")
        else:
            await raw.set(name, CORRUPT[kind])
        with pytest.raises(DeserializationError):
            await s.get("bad")
        with pytest.raises(DeserializationError):
            await s.get_many(["good", "bad"])
        with pytest.raises(DeserializationError):
            await s.ttl("bad")
        with pytest.raises(DeserializationError):
            await s.ttl_many(["good", "bad"])
        with pytest.raises(DeserializationError):
            await s.get_versioned("bad")
        with pytest.raises(DeserializationError):
            await s.update("bad", lambda v: {"v": 2})
        assert await s.get("good") == {"v": 1}
        assert "bad" in await s.keys()
        assert await s.delete("bad") is True  # the way out: delete it
        assert await s.get("bad") is None
    await client.aclose()


async def test_strings_that_are_not_unicode_are_refused_and_nothing_is_stored(store: RedisStore) -> None:
    for bad in ({"a": "\ud800"}, {"\udc00": 1}, {"a": ["ok", "\udfff"]}):
        with pytest.raises(SerializationError, match="surrogate"):
            await store.put("k", bad)
        with pytest.raises(SerializationError):
            await store.put_many(["k", "j"], [{"ok": 1}, bad])
        with pytest.raises(SerializationError):
            await store.put_if_absent("k", bad)
    assert await store.get_many(["k", "j"]) == [None, None]


# -- clients passed in --------------------------------------------------------------------


@pytest.mark.parametrize("decode_responses", [False, True])
async def test_a_client_passed_in_works_either_way_and_is_not_closed(
    redis_server: RedisServer, ns: str, decode_responses: bool
) -> None:
    client = Redis.from_url(redis_server.url, decode_responses=decode_responses)
    s = RedisStore(client=client, namespace=ns)
    assert "client=<Redis 127.0.0.1:" in repr(s)
    await s.put("k", {"v": "ключ 🔑"}, collection="c", ttl=60)
    assert await s.get("k", collection="c") == {"v": "ключ 🔑"}
    assert await s.put_if_absent("k", {"v": 2}, collection="c") is False
    assert await s.put_if_absent("new", {"v": 2}, collection="c") is True
    entry = await s.get_versioned("k", collection="c")
    assert entry is not None and entry.ttl is not None and 55 < entry.ttl <= 60
    assert await s.compare_and_set("k", {"v": 3}, version=entry.version, collection="c") is True
    await s.put_many(["a", "b"], [{"i": 1}, {"i": 2}], collection="c", ttl=30)
    assert await s.get_many(["a", "b", "zz"], collection="c") == [{"i": 1}, {"i": 2}, None]
    assert [v for v, _ in await s.ttl_many(["a", "b"], collection="c")] == [{"i": 1}, {"i": 2}]
    assert sorted(await s.keys("c")) == ["a", "b", "k", "new"]
    assert await s.collections() == ["c"]
    assert await s.update("k", lambda v: {"v": (v or {})["v"] + 1}, collection="c") == {"v": 4}
    assert await s.destroy_collection("c") is True
    await s.close()
    assert await client.ping() is True, "the store closed a client it did not create"
    await client.set(f"{ns}:still", "usable")
    await client.aclose()


async def test_wrong_client_type_is_refused() -> None:
    with pytest.raises(TypeError, match=r"redis\.asyncio\.Redis"):
        RedisStore(client=object())
    with pytest.raises(ValueError, match="either url= or client="):
        RedisStore("redis://localhost", client=Redis())


# -- TTLs in milliseconds -----------------------------------------------------------------


async def test_ttls_are_milliseconds(raw: Redis, store: RedisStore) -> None:
    await store.put("k", {"v": 1}, ttl=1.234)
    assert 1100 < await raw.pttl(store.redis_key("k")) <= 1234
    await store.put_many(["a", "b"], [{"v": 1}, {"v": 2}], ttl=0.25)
    for key in ("a", "b"):
        assert 150 < await raw.pttl(store.redis_key(key)) <= 250
    assert await store.put_if_absent("c", {"v": 1}, ttl=0.3) is True
    assert 200 < await raw.pttl(store.redis_key("c")) <= 300
    entry = await store.get_versioned("k")
    assert entry is not None
    assert await store.compare_and_set("k", {"v": 2}, version=entry.version, ttl=2.5) is True
    assert 2400 < await raw.pttl(store.redis_key("k")) <= 2500
    _, remaining = await store.ttl("k")
    assert remaining is not None and 2.4 < remaining <= 2.5
    await store.put("tiny", {"v": 1}, ttl=0.0001)  # rounds up to 1 ms, never to "no expiry"
    assert await raw.pttl(store.redis_key("tiny")) in (-2, 0, 1)
    await store.put("huge", {"v": 1}, ttl=1e12)  # capped, not an error
    _, remaining = await store.ttl("huge")
    assert remaining is not None and remaining > 1e9


# -- URLs, open_store, credentials --------------------------------------------------------


async def test_open_store_and_the_environment_pick_redis(
    redis_server: RedisServer, ns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"{redis_server.url}?namespace={ns}&timeout=2.5&colocate=false"
    s = open_store(url)
    assert _is_redis_store(s)
    assert (s.namespace, s.timeout, s.colocate) == (ns, 2.5, False)
    async with s:
        await s.put("k", {"v": 1})
    monkeypatch.setenv("FASTMCP_SESSIONS_URL", f"{redis_server.url}?namespace={ns}&colocate=false")
    from_env = open_store()
    assert _is_redis_store(from_env)
    async with from_env:
        assert await from_env.get("k") == {"v": 1}
        await from_env.delete("k")


def _is_redis_store(store: object) -> bool:
    # By name: tests/stores/test_open_store.py reloads backend modules, so the class object that
    # open_store returns may not be the one imported here.
    return type(store).__module__ == RedisStore.__module__ and type(store).__qualname__ == "RedisStore"


def test_bad_urls_and_options_say_what_is_wrong() -> None:
    with pytest.raises(StoreOptionError, match="does not take the option 'nope'") as info:
        RedisStore.from_url("redis://localhost/0?nope=1")
    assert "namespace" in str(info.value) and "encryption" in str(info.value)
    with pytest.raises(StoreOptionError, match=r"does not take the option 'nope'.*encryption"):
        open_store("redis://localhost/0?nope=1")
    with pytest.raises(StoreOptionError, match="option timeout"):
        RedisStore.from_url("redis://localhost/0?timeout=soon")
    with pytest.raises(StoreOptionError, match="database number"):
        RedisStore("redis://localhost/abc")
    with pytest.raises(StoreOptionError, match="database 0"):
        RedisStore("redis+cluster://h1:1,h2:2/3")
    with pytest.raises(StoreOptionError, match="bad port"):
        RedisStore("redis://localhost:http")
    with pytest.raises(StoreOptionError, match="rediss://"):
        RedisStore("redis://localhost", ssl_ca_certs="/ca.pem")
    with pytest.raises(StoreOptionError, match="timeout"):
        RedisStore("redis://localhost", timeout=0)
    with pytest.raises(StoreOptionError, match="wait_replicas"):
        RedisStore("redis://localhost", wait_replicas=-1)
    with pytest.raises(StoreOptionError, match="max_connections"):
        RedisStore("redis://localhost", max_connections=0)
    with pytest.raises(StoreOptionError, match="unix:///path"):
        RedisStore("unix://")
    with pytest.raises(StoreOptionError, match="start with redis://"):
        RedisStore("http://localhost")
    with pytest.raises(StoreOptionError, match="but db=2"):
        RedisStore("redis://localhost/1", db=2)


def test_the_module_imports_without_redis_py_and_says_how_to_install_it() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "from fastmcp_sessions import open_store\n"
        "from fastmcp_sessions.stores.redis import RedisStore\n"
        "for make in (lambda: RedisStore('redis://localhost'), lambda: open_store('redis://localhost')):\n"
        "    try:\n"
        "        make()\n"
        "    except ImportError as exc:\n"
        "        assert \"pip install 'fastmcp-sessions[redis]'\" in str(exc), exc\n"
        "    else:\n"
        "        raise SystemExit('no ImportError')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


PASSWORD = "p@ss:w/rd %?#"


@pytest.fixture(scope="module")
def acl_server() -> Iterator[RedisServer]:
    """An ACL user ``app`` (default user off), plus a user with exactly the permissions
    docs/redis.md asks for, on one namespace, and one without scripting."""
    extra = [
        'user limited on ">limited-pw" "~only:*" "+@read" "+@write" "+@keyspace" "+@scripting"',
        'user noscript on ">noscript-pw" "~*" "+@all" "-@scripting"',
    ]
    with RedisServer(username="app", password=PASSWORD, extra_config=extra) as server:
        yield server


async def test_acl_user_and_password_from_the_url(
    acl_server: RedisServer, ns: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://app:{quote(PASSWORD, safe='')}@127.0.0.1:{acl_server.port}/0?namespace={ns}"
    with caplog.at_level(logging.DEBUG, logger="fastmcp_sessions"):
        s = open_store(url)
    assert PASSWORD not in repr(s) and quote(PASSWORD, safe="") not in repr(s)
    assert "app:***@" in repr(s)
    assert quote(PASSWORD, safe="") not in caplog.text and PASSWORD not in caplog.text
    async with s:
        await s.put("k", {"v": 1})
        assert await s.get("k") == {"v": 1}
        assert await s.update("k", lambda v: {"v": 2}) == {"v": 2}
    wrong = RedisStore(f"redis://app:wrong@127.0.0.1:{acl_server.port}/0", namespace=ns)
    with pytest.raises(StoreConnectionError, match="authentication failed") as info:
        await wrong.get("k")
    assert "wrong" not in str(info.value).replace("wrong kind", "")
    await wrong.close()
    anonymous = RedisStore(f"redis://127.0.0.1:{acl_server.port}/0", namespace=ns)
    with pytest.raises(StoreConnectionError, match="authentication"):
        await anonymous.put("k", {"v": 1})
    await anonymous.close()


async def test_an_acl_user_limited_to_the_namespace_is_enough(acl_server: RedisServer) -> None:
    async with RedisStore(f"redis://limited:limited-pw@127.0.0.1:{acl_server.port}/0", namespace="only") as s:
        await s.put_many(["a", "b"], [{"v": 1}, {"v": 2}], collection="c", ttl=60)
        assert await s.put_if_absent("a", {"v": 0}, collection="c") is False
        assert await s.update("a", lambda v: {"v": 10}, collection="c") == {"v": 10}
        assert await s.get_many(["a", "b"], collection="c") == [{"v": 10}, {"v": 2}]
        assert sorted(await s.keys("c")) == ["a", "b"]
        assert await s.collections() == ["c"]
        assert await s.destroy_collection("c") is True
    async with RedisStore(
        f"redis://limited:limited-pw@127.0.0.1:{acl_server.port}/0", namespace="other"
    ) as s:
        with pytest.raises(KeyValueOperationError, match="ACL"):
            await s.put("k", {"v": 1})


async def test_an_acl_user_without_scripting_gets_advice(acl_server: RedisServer, ns: str) -> None:
    async with RedisStore(f"redis://noscript:noscript-pw@127.0.0.1:{acl_server.port}/0", namespace=ns) as s:
        await s.put("k", {"v": 1})  # plain commands work
        with pytest.raises(KeyValueOperationError, match=r"\+@scripting"):
            await s.get_versioned("k")


# -- TLS and Unix sockets -----------------------------------------------------------------


async def test_tls_needs_the_right_scheme_and_ca(redis_tls_server: RedisServer, ns: str) -> None:
    ca = quote(str(redis_tls_server.ca_file), safe="")
    async with open_store(f"{redis_tls_server.url}?namespace={ns}&ssl_ca_certs={ca}") as s:
        await s.put("k", {"v": 1})
        assert await s.get("k") == {"v": 1}
        await s.delete("k")
    plain = RedisStore(f"redis://127.0.0.1:{redis_tls_server.port}/0", namespace=ns, timeout=1)
    started = time.monotonic()
    with pytest.raises(StoreConnectionError):
        await plain.get("k")
    assert time.monotonic() - started < 5
    await plain.close()
    untrusted = RedisStore(redis_tls_server.url, namespace=ns, timeout=1)  # system CAs only
    with pytest.raises(StoreConnectionError, match="TLS"):
        await untrusted.get("k")
    await untrusted.close()


async def test_unix_socket(tmp_path_factory: pytest.TempPathFactory, ns: str) -> None:
    directory = Path(tmp_path_factory.mktemp("sock", numbered=True))
    socket_path = directory / "redis.sock"
    if len(str(socket_path)) > 100:
        pytest.skip("temporary directory too deep for a Unix socket path")
    with RedisServer(extra_config=[f'unixsocket "{socket_path}"', "unixsocketperm 700"]):
        async with open_store(f"unix://{socket_path}?namespace={ns}&db=2") as s:
            assert _is_redis_store(s)
            await s.put("k", {"v": 1}, collection="c")
            assert await s.get("k", collection="c") == {"v": 1}
            assert await s.keys("c") == ["k"]
            assert await s.update("k", lambda v: {"v": 2}, collection="c") == {"v": 2}
            raw = Redis(unix_socket_path=str(socket_path), db=2)
            assert await raw.exists(s.redis_key("k", collection="c")) == 1
            await raw.aclose()


# -- round trips --------------------------------------------------------------------------


async def test_batches_take_one_round_trip_on_a_server(store: RedisStore, round_trips: RoundTrips) -> None:
    keys = [f"k{i}" for i in range(2500)]  # three commands of at most 1000 keys, one pipeline
    values = [{"i": i} for i in range(2500)]
    await store.put("warm", {"v": 0})  # connection made
    await store.get_many(["warm"])  # script loaded
    await store.ttl_many(["warm"])
    await store.put_many(["warm"], [{"v": 0}], ttl=60)
    for call in (
        lambda: store.put_many(keys, values),
        lambda: store.put_many(keys, values, ttl=60),
        lambda: store.get_many(keys),
        lambda: store.ttl_many(keys),
        lambda: store.delete_many(keys),
    ):
        round_trips.reset()
        await call()
        assert round_trips.total == 1
    round_trips.reset()
    assert await store.get("warm") == {"v": 0}
    await store.put("warm", {"v": 1})
    assert await store.put_if_absent("warm", {"v": 1}) is False
    assert round_trips.total == 3


async def test_cluster_batches_take_one_round_trip_per_node(
    redis_cluster: ClusterLauncher, ns: str, round_trips: RoundTrips
) -> None:
    ports = {port for _, port in redis_cluster.nodes}
    keys = [f"k{i}" for i in range(1000)]
    values = [{"i": i} for i in range(1000)]
    async with RedisStore(redis_cluster.url, namespace=ns, colocate=False) as spread:
        await spread.put_many(keys, values)  # connections to every node, scripts loaded
        await spread.get_many(keys)
        await spread.ttl_many(keys)
        for call in (
            lambda: spread.put_many(keys, values),
            lambda: spread.get_many(keys),
            lambda: spread.ttl_many(keys),
            lambda: spread.delete_many(keys),
        ):
            round_trips.reset()
            await call()
            assert set(round_trips.by_port) == ports
            assert all(n == 1 for n in round_trips.by_port.values()), round_trips.by_port
    async with RedisStore(redis_cluster.url, namespace=ns) as colocated:
        await colocated.put_many(keys, values)
        await colocated.get_many(keys)
        for call in (
            lambda: colocated.put_many(keys, values),
            lambda: colocated.get_many(keys),
            lambda: colocated.delete_many(keys),
        ):
            round_trips.reset()
            await call()
            assert round_trips.total == 1, round_trips.by_port


async def test_cluster_batches_over_long_names_stay_in_one_slot(
    redis_cluster: ClusterLauncher, ns: str, round_trips: RoundTrips
) -> None:
    collection = "{c}:鍵" * 2_000  # 14 KB, braces and all, inside the hash tag
    keys = [f"{'k' * 10_000}{i}" for i in range(20)]
    values = [{"i": i} for i in range(20)]
    async with RedisStore(redis_cluster.url, namespace=ns) as s:
        await s.put_many(keys, values, collection=collection)
        await s.get_many(keys, collection=collection)  # connections made, script loaded
        round_trips.reset()
        assert await s.get_many(keys, collection=collection) == values
        assert round_trips.total == 1, round_trips.by_port
        assert sorted(await s.keys(collection)) == sorted(keys)
        assert collection in await s.collections()
        assert await s.destroy_collection(collection) is True
        assert await s.get_many(keys, collection=collection) == [None] * 20


async def test_cluster_listing_scans_every_master(redis_cluster: ClusterLauncher, ns: str) -> None:
    async with RedisStore(redis_cluster.url, namespace=ns, colocate=False) as s:
        keys = [f"k{i}" for i in range(300)]
        await s.put_many(keys, [{"i": i} for i in range(300)], collection="c")
        await s.put("x", {"v": 1}, collection="d")
        per_node = []
        for host, port in redis_cluster.nodes:
            node = Redis(host=host, port=port)
            per_node.append(len([k async for k in node.scan_iter(match=f"{ns}:*")]))
            await node.aclose()
        assert all(n > 0 for n in per_node) and sum(per_node) == 301
        assert sorted(await s.keys("c")) == sorted(keys)
        assert sorted(await s.collections()) == ["c", "d"]
        assert await s.destroy_collection("c") is True
        assert await s.keys("c") == []
        assert await s.get("x", collection="d") == {"v": 1}


async def test_a_cluster_client_passed_in(redis_cluster: ClusterLauncher, ns: str) -> None:
    client = RedisCluster(
        startup_nodes=[ClusterNode(h, p) for h, p in redis_cluster.nodes], decode_responses=True
    )
    s = RedisStore(client=client, namespace=ns)
    assert "RedisCluster" in repr(s)
    results = await asyncio.gather(*(s.put_if_absent("once", {"i": i}) for i in range(20)))
    assert sum(results) == 1
    await s.put_many([f"k{i}" for i in range(50)], [{"i": i} for i in range(50)], collection="c")
    assert len(await s.keys("c")) == 50
    await s.destroy_collection("c")
    await s.delete("once")
    await s.close()
    assert await client.ping() is True
    await client.aclose()


# -- outages ------------------------------------------------------------------------------


@pytest.fixture
def durable_server() -> Iterator[RedisServer]:
    """A server that survives kill -9 with every acknowledged write: the append-only file
    is fsynced before each reply, and kill() keeps the data directory for start()."""
    with RedisServer(extra_config=["appendonly yes", "appendfsync always"]) as server:
        yield server


async def test_a_crash_and_restart_mid_stream_loses_no_acknowledged_write(
    durable_server: RedisServer,
) -> None:
    timeout = 1.0
    s = RedisStore(durable_server.url, namespace="outage", timeout=timeout)
    acked: dict[str, int] = {}
    failed: set[str] = set()
    slowest_failure = 0.0
    phase = "before"
    counts: Counter[str] = Counter()
    stop = asyncio.Event()

    async def writer(w: int) -> None:
        nonlocal slowest_failure
        i = 0
        while not stop.is_set():
            key = f"w{w}-{i}"
            i += 1
            started = time.monotonic()
            try:
                await s.put(key, {"w": w, "i": i})
            except StoreConnectionError:
                slowest_failure = max(slowest_failure, time.monotonic() - started)
                failed.add(key)
                counts[f"failed {phase}"] += 1
                await asyncio.sleep(0.01)
            else:
                acked[key] = i
                counts[f"acked {phase}"] += 1

    writers = [asyncio.create_task(writer(w)) for w in range(4)]
    try:
        await asyncio.sleep(0.5)
        phase = "during"
        await asyncio.to_thread(durable_server.kill)  # SIGKILL: a crash, not a clean shutdown
        await asyncio.sleep(0.5)
        await asyncio.to_thread(durable_server.start)  # same port, same data directory
        phase = "after"
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.gather(*writers)
    assert counts["acked before"] > 0 and counts["failed during"] > 0 and counts["acked after"] > 0, counts
    assert slowest_failure < timeout + 1.0, f"an operation took {slowest_failure:.2f}s to fail"
    # The same store object, never reopened, reads back every acknowledged write.
    keys = sorted(acked)
    got = await s.get_many(keys)
    lost = [k for k, v in zip(keys, got, strict=True) if v is None or v["i"] != acked[k]]
    assert not lost, f"{len(lost)} acknowledged writes lost, e.g. {lost[:5]}"
    for key, value in zip(sorted(failed), await s.get_many(sorted(failed)), strict=True):
        assert value is None or value["i"] == int(key.rsplit("-", 1)[1]) + 1  # either way, never garbage
    await s.close()


async def test_a_hung_server_fails_within_the_timeout_and_recovers(
    redis_server: RedisServer, ns: str
) -> None:
    timeout = 0.5
    async with RedisStore(redis_server.url, namespace=ns, timeout=timeout) as s:
        await s.put("k", {"v": 1})
        redis_server.pause()  # SIGSTOP: connections stay open, nothing answers
        try:
            started = time.monotonic()
            results = await asyncio.gather(
                s.get("k"), *(s.put(f"k{i}", {"v": i}) for i in range(10)), s.keys(), return_exceptions=True
            )
            elapsed = time.monotonic() - started
        finally:
            redis_server.resume()
        assert all(isinstance(r, StoreConnectionError) for r in results), results
        assert "timeout=0.5s" in str(results[0])
        assert elapsed < timeout * 2 + 0.5, f"took {elapsed:.2f}s"
        assert await s.get("k") == {"v": 1}  # the same store works again
        await s.put("k", {"v": 2})
        assert await s.get("k") == {"v": 2}


async def test_an_unreachable_server_fails_fast() -> None:
    s = RedisStore("redis://127.0.0.1:1/0", timeout=1)
    started = time.monotonic()
    for call in (s.get("k"), s.put("k", {"v": 1}), s.keys(), s.put_if_absent("k", {"v": 1})):
        with pytest.raises(StoreConnectionError, match="could not be reached"):
            await call
    assert time.monotonic() - started < 4
    await s.close()


async def test_a_cluster_node_that_hangs_or_restarts_is_survived() -> None:
    timeout = 1.0
    with ClusterLauncher(masters=3) as cluster:
        s = RedisStore(cluster.url, namespace="outage", timeout=timeout, colocate=False)
        keys = [f"k{i}" for i in range(100)]
        await s.put_many(keys, [{"i": i} for i in range(100)])
        victim = cluster.servers[1]

        victim.pause()  # hung: connections open, nothing answers
        try:
            for call in (lambda: s.get_many(keys), lambda: s.keys()):
                started = time.monotonic()
                with pytest.raises(StoreConnectionError, match="timeout=1s"):
                    await call()
                # a 2 x timeout deadline, plus redis-py closing the hung connections
                assert time.monotonic() - started < 3 * timeout + 0.5
        finally:
            victim.resume()
        assert await _eventually(lambda: s.get_many(keys)) == [{"i": i} for i in range(100)]

        await asyncio.to_thread(victim.kill)  # crashed: connections refused
        started = time.monotonic()
        with pytest.raises(StoreConnectionError):
            await s.get_many(keys)
        assert time.monotonic() - started < 2 * timeout + 1.0
        await asyncio.to_thread(victim.start)
        await asyncio.to_thread(cluster.wait_ok, 20)
        got = await _eventually(lambda: s.get_many(keys))
        # the restarted node is empty (no persistence here); the others kept their keys
        assert 0 < sum(v is not None for v in got) < 100
        await s.put_many(keys, [{"i": i} for i in range(100)])
        assert await s.get_many(keys) == [{"i": i} for i in range(100)]
        await s.close()


async def _eventually(call: Any, within: float = 10.0) -> Any:
    """``await call()`` until it stops raising StoreConnectionError (a node rejoining)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await call()
        except StoreConnectionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def test_no_flush_command_anywhere_in_the_module() -> None:
    source = Path(RedisStore.__module__.replace(".", os.sep) + ".py")
    text = (REPO / source).read_text().upper()
    assert '"FLUSHDB"' not in text and '"FLUSHALL"' not in text and "FLUSHDB(" not in text
