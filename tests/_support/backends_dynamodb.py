"""DynamoDB backends for the conformance suite: one table per test on a shared endpoint."""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import pytest

from fastmcp_sessions import open_store
from tests._support.backends import Backend, backend
from tests._support.servers import DynamoDBServer

REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION}
"""What another process needs to open a test store by URL (the URL carries no credentials)."""


def _dynamodb(request: pytest.FixtureRequest, namespace: str, kind: str) -> Backend:
    server: DynamoDBServer = request.getfixturevalue(f"dynamodb_{kind}_server")
    # The URL carries everything but credentials, which other processes take from ENV.
    url = f"dynamodb://{namespace}?region={REGION}&endpoint_url={server.endpoint_url}&create_table=true"
    request.addfinalizer(lambda: _delete_table(server, namespace))
    return Backend(f"dynamodb-{kind}", lambda: open_store(url, **CREDENTIALS), url=url, env=ENV)


def _delete_table(server: DynamoDBServer, table: str) -> None:
    client = _admin_client(server.endpoint_url)
    with contextlib.suppress(client.exceptions.ResourceNotFoundException):
        client.delete_table(TableName=table)


@functools.cache
def _admin_client(endpoint_url: str) -> Any:
    import boto3

    return boto3.client("dynamodb", endpoint_url=endpoint_url, region_name=REGION, **CREDENTIALS)


@backend("dynamodb-local")
def _dynamodb_local(request: pytest.FixtureRequest, namespace: str) -> Backend:
    return _dynamodb(request, namespace, "local")


@backend("dynamodb-moto")
def _dynamodb_moto(request: pytest.FixtureRequest, namespace: str) -> Backend:
    return _dynamodb(request, namespace, "moto")
