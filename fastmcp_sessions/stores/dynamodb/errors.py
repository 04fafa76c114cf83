"""botocore errors to typed errors that say what to do."""

from __future__ import annotations

from fastmcp_sessions.errors import (
    BaseKeyValueError,
    KeyValueOperationError,
    StoreConnectionError,
    StoreSetupError,
)
from fastmcp_sessions.stores.dynamodb.connection import CONNECTION_ERRORS, ClientError, error_code
from fastmcp_sessions.stores.dynamodb.table import Table

_THROTTLED = (
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "LimitExceededException",
)
_DENIED = (
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "MissingAuthenticationTokenException",
    "ExpiredTokenException",
    "IncompleteSignature",
)
_UNAVAILABLE = ("InternalServerError", "ServiceUnavailable", "ServiceUnavailableException")


def connection_error(
    exc: BaseException, label: str, max_attempts: int, timeout: float
) -> StoreConnectionError:
    """The error for an endpoint that stayed unreachable through every attempt."""
    return StoreConnectionError(
        f"{label} could not reach DynamoDB ({type(exc).__name__}: {exc}) after {max_attempts} "
        f"attempt(s) of up to {timeout:g}s; check the network, region and endpoint_url, then retry: "
        "the store reconnects on its own (raise timeout=/max_attempts= to wait longer)"
    )


def translate_error(exc: BaseException, table: Table, max_attempts: int, timeout: float) -> BaseKeyValueError:
    """The typed error for a botocore error raised while using ``table``."""
    label = table.label
    if isinstance(exc, CONNECTION_ERRORS):
        return connection_error(exc, label, max_attempts, timeout)
    if not isinstance(exc, ClientError):
        name = type(exc).__name__
        if name in ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"):
            return StoreSetupError(
                f"{label}: no usable AWS credentials ({exc}); set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an instance role (any values work for DynamoDB "
                "Local), or pass session="
            )
        return KeyValueOperationError(f"{label}: botocore failed ({name}: {exc})")
    code, message = error_code(exc), exc.response.get("Error", {}).get("Message", "")
    if code == "ResourceNotFoundException":
        return table.missing()
    if code in _THROTTLED:
        return KeyValueOperationError(
            f"{label}: DynamoDB throttled the request after {max_attempts} attempts ({code}); "
            "retry later, raise the table's provisioned capacity, or switch it to on-demand billing"
        )
    if code in _DENIED:
        return StoreSetupError(
            f"{label}: AWS refused the request ({code}: {message}); check the credentials and that "
            f"they may use table {table.name!r} (GetItem, PutItem, DeleteItem, Query, Scan, "
            "BatchGetItem, BatchWriteItem, DescribeTable, DescribeTimeToLive)"
        )
    if code in _UNAVAILABLE:
        return connection_error(exc, label, max_attempts, timeout)
    return KeyValueOperationError(f"{label}: DynamoDB refused the request ({code}: {message})")
