"""The store's DynamoDB table: checked (key schema, TTL) on first use, created on request."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastmcp_sessions.errors import StoreSetupError
from fastmcp_sessions.stores.dynamodb.connection import ClientError, error_code

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.client import DynamoDBClient

logger = logging.getLogger("fastmcp_sessions")


@dataclass(frozen=True)
class Table:
    """The table a store uses and how to create it; ``label`` names the store in messages."""

    name: str
    label: str
    region: str | None
    endpoint_url: str | None
    create: bool
    billing_mode: str
    read_capacity: int
    write_capacity: int

    async def ensure(self, client: DynamoDBClient) -> None:
        """Check the table (creating it when allowed), wait until it is ACTIVE and its TTL is on."""
        table: Mapping[str, Any]
        try:
            table = (await client.describe_table(TableName=self.name))["Table"]
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            if not self.create:
                raise self.missing() from None
            table = await self._create(client)
        self._check_schema(table)
        if table.get("TableStatus") != "ACTIVE":
            await self._wait_active(client)
        await self._ensure_ttl(client)

    def missing(self) -> StoreSetupError:
        """The error for a table that does not exist, saying how to create it."""
        return StoreSetupError(
            f"DynamoDB table {self.name!r} does not exist (region {self.region or 'from the environment'}"
            f"{', endpoint ' + self.endpoint_url if self.endpoint_url else ''}); create it with partition "
            "key 'pk' and sort key 'sk', both strings (see docs/dynamodb.md), or open the store with "
            "create_table=true (URL option ?create_table=true) to have it created"
        )

    async def _create(self, client: DynamoDBClient) -> Mapping[str, Any]:
        capacity: dict[str, Any] = {}
        if self.billing_mode == "PROVISIONED":
            capacity["ProvisionedThroughput"] = {
                "ReadCapacityUnits": self.read_capacity,
                "WriteCapacityUnits": self.write_capacity,
            }
        try:
            created = await client.create_table(
                TableName=self.name,
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                BillingMode=self.billing_mode,  # type: ignore[arg-type]
                **capacity,
            )
        except ClientError as exc:
            if error_code(exc) != "ResourceInUseException":
                raise
            # Another store (or process) created it first.
            return (await client.describe_table(TableName=self.name))["Table"]
        logger.info("%s: created DynamoDB table %r (%s)", self.label, self.name, self.billing_mode)
        return created["TableDescription"]

    async def _wait_active(self, client: DynamoDBClient) -> None:
        delay, deadline = 0.05, time.monotonic() + 300
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            table = (await client.describe_table(TableName=self.name))["Table"]
            if table.get("TableStatus") == "ACTIVE":
                return
            delay = min(delay * 2, 2.0)
        raise StoreSetupError(
            f"{self.label}: table {self.name!r} did not become ACTIVE within 5 minutes; retry later"
        )

    async def _ensure_ttl(self, client: DynamoDBClient) -> None:
        description = (await client.describe_time_to_live(TableName=self.name)).get(
            "TimeToLiveDescription", {}
        )
        status, attribute = description.get("TimeToLiveStatus"), description.get("AttributeName")
        if status in ("ENABLED", "ENABLING") and attribute == "ttl":
            return
        if status in (None, "DISABLED") and self.create:
            try:
                await client.update_time_to_live(
                    TableName=self.name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"}
                )
                return
            except ClientError as exc:
                if error_code(exc) != "ValidationException":  # enabled meanwhile by another store
                    raise
                return
        logger.warning(
            "%s: the table's TTL is %s on attribute %r, not enabled on 'ttl'; expired entries are never "
            "returned, but DynamoDB will not delete them: enable TTL on attribute 'ttl' or call cull()",
            self.label,
            status,
            attribute,
        )

    def _check_schema(self, table: Mapping[str, Any]) -> None:
        keys = {k["AttributeName"]: k["KeyType"] for k in table.get("KeySchema", [])}
        types = {a["AttributeName"]: a["AttributeType"] for a in table.get("AttributeDefinitions", [])}
        if keys != {"pk": "HASH", "sk": "RANGE"} or types.get("pk") != "S" or types.get("sk") != "S":
            raise StoreSetupError(
                f"{self.label}: table {self.name!r} has key schema {keys} but this store needs partition "
                "key 'pk' (string) and sort key 'sk' (string); use another table name or see docs/dynamodb.md"
            )
