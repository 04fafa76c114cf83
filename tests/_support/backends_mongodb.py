"""MongoDB backends for the conformance suite: one database per test on a shared server."""

from __future__ import annotations

import pytest

from fastmcp_sessions import open_store
from tests._support.backends import Backend, backend
from tests._support.servers import MongoServer, available


def _mongodb(request: pytest.FixtureRequest, namespace: str, kind: str) -> Backend:
    server: MongoServer = request.getfixturevalue(f"mongo_{kind}_server")
    url = f"{server.url}/?database={namespace}"
    request.addfinalizer(lambda: _drop_database(server.url, namespace))
    return Backend(f"mongodb-{kind}", lambda: open_store(url), url=url)


def _drop_database(url: str, name: str) -> None:
    from pymongo import MongoClient

    with MongoClient(url, serverSelectionTimeoutMS=2000) as client:
        client.drop_database(name)


@backend("mongodb-nx")
def _mongodb_nx(request: pytest.FixtureRequest, namespace: str) -> Backend:
    return _mongodb(request, namespace, "nx")


if available("mongoeco"):

    @backend("mongodb-mongoeco")
    def _mongodb_mongoeco(request: pytest.FixtureRequest, namespace: str) -> Backend:
        return _mongodb(request, namespace, "mongoeco")
