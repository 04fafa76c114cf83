"""The DynamoDB driver (aiobotocore) and the client a store opens from its options."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastmcp_sessions.errors import StoreSetupError
from fastmcp_sessions.stores._driver import Driver, Requirement

_DRIVER = Driver(
    "DynamoDBStore", "dynamodb", Requirement("aioboto3", "13.3", imports=("aiobotocore", "botocore"))
)
try:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import AioSession
    from botocore.exceptions import BotoCoreError, HTTPClientError, NoRegionError
    from botocore.exceptions import ClientError as ClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    CONNECTION_ERRORS: tuple[type[BaseException], ...] = (BotoConnectionError, HTTPClientError)
    DRIVER_ERRORS: tuple[type[BaseException], ...] = (BotoCoreError, ClientError)
    HAVE_AIOBOTOCORE = True
except ImportError as exc:  # pragma: no cover - exercised by monkeypatching HAVE_AIOBOTOCORE
    _DRIVER.failed(exc)

    class ClientError(Exception):  # type: ignore[no-redef]
        """Never raised: lets the modules that catch botocore's import without the driver."""

    CONNECTION_ERRORS = ()
    DRIVER_ERRORS = ()
    HAVE_AIOBOTOCORE = False

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.client import DynamoDBClient

CONCURRENCY = 8
"""Batch calls in flight at once for one put_many/get_many/delete_many."""


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ``ClientError`` (``""`` when the response names none)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


async def condition_held(write: Awaitable[object]) -> bool:
    """Await a conditional write; ``False`` when DynamoDB refused it because its condition failed.

    Every other error propagates, to be translated by the store.
    """
    try:
        await write
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


async def open_client(
    label: str,
    *,
    session: Any,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
    timeout: float,  # noqa: ASYNC109 - botocore's connect and read timeouts, not a deadline
    max_attempts: int,
    credentials: dict[str, str | None],
) -> tuple[Any, DynamoDBClient]:
    """Enter a DynamoDB client made from ``session`` (or a new one); returns its context and the client.

    ``label`` names the store in errors. The context must be exited to close the client.
    """
    chosen: Any = session if session is not None else AioSession(profile=profile)
    # aiobotocore sessions spell it create_client; aioboto3 sessions spell it client.
    factory: Callable[..., Any] = getattr(chosen, "create_client", None) or chosen.client
    config = AioConfig(
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        max_pool_connections=4 * CONCURRENCY,
    )
    try:
        context = factory(
            "dynamodb",
            region_name=region,
            endpoint_url=endpoint_url,
            config=config,
            **credentials,
        )
        client: DynamoDBClient = await context.__aenter__()
    except NoRegionError:
        raise StoreSetupError(
            f"{label}: no AWS region: add ?region=... to the URL (or region=), or set AWS_REGION"
        ) from None
    return context, client
