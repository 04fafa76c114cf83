"""The redis-py internals the Redis store and bus rely on, one test per seam function.

Each test names the seam in its failure, so a redis-py release that moves one of them
says what broke. These tests also run at the floor versions (scripts/test.sh).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis._parsers.base
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import Sentinel
from redis.crc import key_slot
from redis.exceptions import NoScriptError, ResponseError

from fastmcp_sessions.errors import StoreOptionError
from fastmcp_sessions.stores.redis import RedisStore, _seam
from tests._support import REPO
from tests._support.servers import RedisCluster as ClusterLauncher
from tests._support.servers import RedisServer


def _seam_broke(name: str, detail: str) -> str:
    return f"redis-py {redis.__version__} changed what fastmcp_sessions/stores/redis/_seam.py {name} relies on: {detail}"


@pytest.fixture
def fresh_check() -> Iterator[None]:
    _seam.forget_check()
    yield
    _seam.forget_check()


def test_check_finds_every_shape_on_this_redis_py(fresh_check: None) -> None:
    assert _seam.check() == (), _seam_broke("check", "; ".join(_seam.check()))
    assert _seam.pipelining_available()


def test_raw_options_give_bytes_whatever_decode_responses_says(redis_server: RedisServer) -> None:
    async def main() -> Any:
        client = Redis.from_url(redis_server.url, decode_responses=True)
        try:
            await client.set("seam:raw", "v")
            return await client.execute_command("GET", "seam:raw", **_seam.raw_options())
        finally:
            await client.aclose()

    assert _seam.NEVER_DECODE is not None, _seam_broke("NEVER_DECODE", "redis.client.NEVER_DECODE is gone")
    assert asyncio.run(main()) == b"v", _seam_broke("raw_options", "the reply was decoded")


def test_a_pool_connection_hands_over_its_transport(redis_server: RedisServer) -> None:
    async def main() -> None:
        client = Redis.from_url(redis_server.url)
        connection = _seam.pool_connection_factory(client)()
        assert not connection.is_connected, _seam_broke("pool_connection_factory", "the connection is open")
        await connection.connect()
        transport = _seam.transport_of(connection)
        assert isinstance(transport, asyncio.Transport), _seam_broke("transport_of", repr(transport))
        await connection.send_command("PING")
        assert await connection.read_response() in (b"PONG", "PONG")
        transport.abort()
        _seam.forget_socket(connection)
        assert not connection.is_connected, _seam_broke("forget_socket", "the connection still has a socket")
        await connection.disconnect()  # must not touch the transport it no longer owns
        await client.aclose()

    asyncio.run(main())


def test_connection_settings_name_the_server_and_db(redis_server: RedisServer) -> None:
    client = Redis(host="127.0.0.1", port=redis_server.port, db=3)
    settings = _seam.connection_settings(client)
    assert (settings.get("host"), settings.get("port"), settings.get("db")) == (
        "127.0.0.1",
        redis_server.port,
        3,
    ), _seam_broke("connection_settings", repr(settings))
    assert _seam.connection_settings(object()) == {}


def test_sentinel_clients_are_the_sentinels_connections() -> None:
    sentinel = Sentinel([("127.0.0.1", 1), ("127.0.0.1", 2)])  # type: ignore[no-untyped-call]
    clients = _seam.sentinel_clients(sentinel)
    assert len(clients) == 2 and all(isinstance(c, Redis) for c in clients), _seam_broke(
        "sentinel_clients", repr(clients)
    )


@pytest.mark.parametrize(
    ("text", "kind"), [("NOSCRIPT No matching script", NoScriptError), ("ERR unknown", ResponseError)]
)
def test_parse_error_makes_redis_py_exceptions(text: str, kind: type[Exception]) -> None:
    error = _seam.parse_error(text)
    assert isinstance(error, kind), _seam_broke("parse_error", f"{text!r} became {type(error).__name__}")


def test_cluster_slot_map_and_node_connections(redis_cluster: ClusterLauncher) -> None:
    async def main() -> None:
        client = RedisCluster.from_url(
            redis_cluster.url.replace("redis+cluster://", "redis://").split(",")[0]
        )
        try:
            await client.initialize()
            key = f"seam:{secrets.token_hex(4)}"
            node = _seam.node_for_slot(client, key_slot(key.encode()))
            assert node is client.get_node_from_key(key), _seam_broke("node_for_slot", repr(node))
            await _seam.reload_slots(client)
            assert _seam.node_for_slot(client, key_slot(key.encode())).name == node.name, _seam_broke(
                "reload_slots", "the slot map changed on a reload"
            )
            connection = _seam.node_connection_factory(node)()
            await connection.connect()
            try:
                await connection.send_command("SET", key, "v")
                assert await connection.read_response() in (b"OK", "OK"), _seam_broke(
                    "node_connection_factory", "the connection does not reach the node that owns the slot"
                )
            finally:
                await connection.disconnect()
        finally:
            await client.aclose()

    asyncio.run(main())


class _Moved:
    """A ``BaseParser`` without ``parse_error``, as if redis-py had moved it."""


async def test_without_a_shape_the_store_warns_once_and_runs_plain_commands(
    redis_server: RedisServer,
    fresh_check: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # redis-py's own parsers keep the method they inherited; only what the seam imports moves.
    monkeypatch.setattr(redis._parsers.base, "BaseParser", _Moved)
    ns = f"t{secrets.token_hex(6)}"
    with caplog.at_level(logging.WARNING, logger="fastmcp_sessions"):
        async with (
            RedisStore(redis_server.url, namespace=ns) as a,
            RedisStore(redis_server.url, namespace=ns) as b,
        ):
            assert not a.pipelining and not b.pipelining
            await a.put("k", {"v": 1}, collection="c")
            assert await b.get("k", collection="c") == {"v": 1}
            entry = await b.get_versioned("k", collection="c")  # a Lua script: NOSCRIPT, load, run
            assert entry is not None
            assert await a.compare_and_set("k", {"v": 2}, version=entry.version, collection="c")
            assert await a.get_many(["k", "x"], collection="c") == [{"v": 2}, None]
            assert await b.destroy_collection("c")
        with pytest.raises(StoreOptionError, match="needs auto-pipelining, which this redis-py cannot run"):
            RedisStore("redis+cluster://127.0.0.1:1", wait_replicas=1)  # WAIT per node needs our pipelines
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    message = warnings[0].getMessage()
    assert redis.__version__ in message and "redis._parsers.base.BaseParser.parse_error" in message
    assert "falls back to plain redis-py commands" in message


_PRIVATE_SHAPES = (
    "redis._",
    "._writer",
    "connection._reader",
    "nodes_manager",
    "connection_kwargs",
    ".make_connection",
    "connection_class",
    "NEVER_DECODE",
    "BaseParser",
    ".sentinels",
)


def test_redis_py_internals_are_used_only_in_the_seam() -> None:
    package = REPO / "fastmcp_sessions"
    seam = package / "stores" / "redis" / "_seam.py"
    found = [
        f"{path.relative_to(package.parent)}:{number}: {line.strip()}"
        for path in sorted(package.rglob("*.py"))
        if path != seam
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if any(shape in line for shape in _PRIVATE_SHAPES)
    ]
    assert found == [], "use fastmcp_sessions/stores/redis/_seam.py instead:\n" + "\n".join(found)
