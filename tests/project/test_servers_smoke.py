"""Smoke tests of tests/_support/servers.py: every test server starts on 127.0.0.1,
answers over a real connection, frees its port on stop() and comes back on
the same port on restart().  Plain sync tests; ~10-15 s in all.

Needs `bash scripts/install-test-servers.sh` first (a missing server fails
with a RuntimeError saying so; only mongoeco, which needs Python >= 3.13, is
skipped where the install script could not provide it).
"""

from __future__ import annotations

import socket
import ssl
import subprocess

import pytest

from tests._support import servers
from tests._support.servers import (
    DynamoDBServer,
    MongoServer,
    RedisCluster,
    RedisServer,
    port_is_free,
    redis_command,
)

try:
    import redis as redis_py
except ImportError:  # the raw RESP client in servers.py is used instead
    redis_py = None

try:
    import pymongo
except ImportError:
    pymongo = None

try:
    import boto3
except ImportError:
    boto3 = None


def _listeners(port: int) -> list[str]:
    """Lines of `ss -ltn` for a listening socket on ``port`` (any address)."""
    try:
        out = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        pytest.skip("ss is not available")
    return [line for line in out.splitlines() if line.split()[3].rsplit(":", 1)[-1] == str(port)]


def _assert_loopback_only(port: int) -> None:
    lines = _listeners(port)
    assert lines, f"nothing listens on port {port}"
    for line in lines:
        local = line.split()[3]
        assert local.rsplit(":", 1)[0] in ("127.0.0.1", "[::ffff:127.0.0.1]"), line


def _assert_stop_and_restart(server, ping) -> None:
    """restart() keeps the port; stop() frees it; start() comes back on it."""
    port, pid = server.port, server.pid
    server.restart()
    assert server.port == port and server.pid != pid
    ping()
    server.stop()
    assert not server.running and server.workdir is None
    assert port_is_free(port), f"port {port} still taken after stop()"
    server.start()
    assert server.port == port
    ping()


# ---------------------------------------------------------------- redis


def _redis_ping(server: RedisServer) -> None:
    if redis_py is not None:
        kwargs = {"ssl_ca_certs": str(server.ca_file)} if server.tls else {}
        client = redis_py.Redis.from_url(server.url, socket_timeout=5, **kwargs)
        try:
            assert client.ping() is True
            client.set("smoke", "1")
            assert client.get("smoke") == b"1"
        finally:
            client.close()
    else:
        assert server.command("PING") == "PONG"


def test_redis_starts_answers_restarts():
    with RedisServer() as server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        _assert_loopback_only(server.port)
        _redis_ping(server)
        _assert_stop_and_restart(server, lambda: _redis_ping(server))
    assert port_is_free(server.port)


def test_redis_tls_with_ca():
    with RedisServer(tls=True) as server:
        assert server.url.startswith("rediss://127.0.0.1:")
        ca_file = server.ca_file
        assert ca_file is not None and ca_file.is_file()
        # a plain-text client is refused, a TLS client trusting the CA gets in
        with pytest.raises((OSError, servers.RedisProtocolError)):
            redis_command(server.port, ("PING",), timeout=2)
        context = ssl.create_default_context(cafile=str(ca_file))
        assert redis_command(server.port, ("PING",), ssl_context=context) == ["PONG"]
        with (
            socket.create_connection(("127.0.0.1", server.port)) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
        # client certificates are optional but accepted
        mutual = server.ssl_context(client_cert=True)
        assert redis_command(server.port, ("PING",), ssl_context=mutual) == ["PONG"]
        _redis_ping(server)
        server.restart()  # same CA after a restart
        assert server.ca_file == ca_file and ca_file.is_file()
        _redis_ping(server)


def test_redis_acl_user_requires_password():
    with RedisServer(username="app", password="s3cret:/@") as server:
        assert server.url == f"redis://app:s3cret%3A%2F%40@127.0.0.1:{server.port}/0"
        with pytest.raises(servers.RedisProtocolError, match=r"NOAUTH|WRONGPASS"):
            redis_command(server.port, ("PING",))
        with pytest.raises(servers.RedisProtocolError, match="WRONGPASS"):
            redis_command(server.port, ("PING",), auth=("app", "wrong"))
        assert server.command("ACL", "WHOAMI") == "app"
        if redis_py is not None:
            client = redis_py.Redis.from_url(server.url)
            assert client.acl_whoami() == "app"
            client.close()


def test_redis_requirepass():
    with RedisServer(password="pw") as server:
        assert server.url == f"redis://:pw@127.0.0.1:{server.port}/0"
        with pytest.raises(servers.RedisProtocolError, match="NOAUTH"):
            redis_command(server.port, ("PING",))
        assert server.command("PING") == "PONG"


def test_redis_cluster():
    with RedisCluster(masters=3) as cluster:
        assert len(cluster.nodes) == 3
        assert cluster.url == "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for _, port in cluster.nodes)
        for index, (_, port) in enumerate(cluster.nodes):
            _assert_loopback_only(port)
            info = cluster.cluster_info(index)
            assert info["cluster_state"] == "ok"
            assert info["cluster_known_nodes"] == "3"
            assert info["cluster_slots_assigned"] == "16384"
        if redis_py is not None:
            from redis.cluster import ClusterNode
            from redis.cluster import RedisCluster as RedisClusterClient

            client = RedisClusterClient(
                startup_nodes=[ClusterNode(host, port) for host, port in cluster.nodes]
            )
            for i in range(30):
                client.set(f"key:{i}", i)
            assert client.get("key:17") == b"17"
            client.close()
        # one node down and back: same port, the cluster heals
        node = cluster.servers[1]
        port = node.port
        node.restart()
        assert node.port == port
        cluster.wait_ok()
        ports = [port for _, port in cluster.nodes]
    for port in ports:
        assert port_is_free(port)


# ---------------------------------------------------------------- mongo


def _mongo_ping(server: MongoServer) -> None:
    if pymongo is not None:
        client = pymongo.MongoClient(server.url, serverSelectionTimeoutMS=5000)
        try:
            assert client.admin.command("ping")["ok"] == 1
            collection = client["smoke"]["items"]
            collection.insert_one({"_id": "a", "v": 1})
            assert collection.find_one({"_id": "a"})["v"] == 1
        finally:
            client.close()
    else:
        servers.mongo_hello(server.port)


@pytest.mark.parametrize("kind", MongoServer.KINDS)
def test_mongo(kind):
    if kind == "mongoeco" and not MongoServer.available(kind):
        pytest.skip("mongoeco not installed (needs Python >= 3.13)")
    with MongoServer(kind) as server:
        assert server.url == f"mongodb://127.0.0.1:{server.port}"
        _assert_loopback_only(server.port)
        _mongo_ping(server)
        _assert_stop_and_restart(server, lambda: _mongo_ping(server))


# ---------------------------------------------------------------- dynamodb


def _dynamodb_ping(server: DynamoDBServer) -> None:
    if boto3 is not None:
        client = boto3.client("dynamodb", **server.client_kwargs())
        assert "TableNames" in client.list_tables()
        client.close()
    else:
        status, body = server.list_tables()
        assert status == 200 and "TableNames" in body


@pytest.mark.parametrize("kind", DynamoDBServer.KINDS)
def test_dynamodb(kind):
    with DynamoDBServer(kind) as server:
        assert server.endpoint_url == f"http://127.0.0.1:{server.port}"
        _assert_loopback_only(server.port)
        _dynamodb_ping(server)
        if boto3 is not None:
            client = boto3.client("dynamodb", **server.client_kwargs())
            client.create_table(
                TableName="smoke",
                KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            client.put_item(TableName="smoke", Item={"k": {"S": "a"}, "v": {"N": "1"}})
            item = client.get_item(TableName="smoke", Key={"k": {"S": "a"}})["Item"]
            assert item["v"] == {"N": "1"}
            client.close()
        _assert_stop_and_restart(server, lambda: _dynamodb_ping(server))


# ---------------------------------------------------------------- errors


def test_start_failure_reports_log_tail():
    server = RedisServer(extra_config=["no-such-directive yes"])
    with pytest.raises(servers.ServerStartError, match="no-such-directive"):
        server.start()
    server.stop()


def test_ensure_installed_names_the_script(monkeypatch):
    monkeypatch.setattr(servers, "_NX_BIN", servers.CACHE_DIR / "does-not-exist")
    with pytest.raises(RuntimeError, match=r"install-test-servers\.sh"):
        servers.ensure_installed("nx")
