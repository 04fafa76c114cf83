"""Exceptions raised by the session layer.

All of them belong to py-key-value-aio's ``key_value.aio.errors`` family (through
``KeyValueOperationError``), like every other fastmcp-sessions error, so one
``except BaseKeyValueError`` handles storage and session problems alike. Messages
say what to do next and never contain tokens, secrets, verifiers or identities.
"""

from __future__ import annotations

from key_value.aio.errors import KeyValueOperationError

__all__ = [
    "FlowNotFoundError",
    "InvalidIdentityError",
    "InvalidServerNameError",
    "InvalidServerURLError",
    "LockError",
    "LockNotHeldError",
    "LockTimeoutError",
    "ServerNameConflictError",
    "ServerNotFoundError",
    "SessionError",
    "SessionLimitError",
    "SessionNotFoundError",
    "SessionValidationError",
]


class SessionError(KeyValueOperationError):
    """Base class of the session layer's errors."""


class InvalidIdentityError(SessionError):
    """An identity was empty or not a string."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"an identity must be a non-empty str, got {what}; pass the stable id of the user "
            "(e.g. the OAuth subject or your app's user id)"
        )


class SessionNotFoundError(SessionError):
    """The session does not exist for this identity.

    It was never created, was deleted, expired, or belongs to another identity.
    """

    def __init__(self, operation: str) -> None:
        super().__init__(
            f"{operation}: no such session for this identity (it was deleted, it expired, or it belongs "
            "to another identity); create a new session with SessionStore.create()"
        )


class SessionLimitError(SessionError):
    """The identity already has the maximum number of live sessions."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"this identity already has {limit} live sessions, the configured maximum "
            "(max_sessions_per_identity); delete unused sessions (SessionStore.delete / purge) "
            "or raise the limit",
            extra_info={"limit": limit},
        )


class SessionValidationError(SessionError):
    """A session field has an invalid value (bad transport, URL, header...)."""


class FlowNotFoundError(SessionError):
    """An OAuth ``state`` is unknown, expired, already consumed, or belongs to another identity."""

    def __init__(self) -> None:
        super().__init__(
            "unknown, expired or already used OAuth state (each authorization flow can be completed "
            "once, within its lifetime); start a new authorization"
        )


class InvalidServerURLError(SessionError):
    """A server URL is not an absolute http(s) URL."""


class InvalidServerNameError(SessionError):
    """A server name does not follow the naming rules."""


class ServerNotFoundError(SessionError):
    """No server of that name is registered in the namespace."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"no server named {name!r} in this registry namespace; add it with ServerRegistry.add(url) "
            "or list the registered names with ServerRegistry.list()"
        )


class ServerNameConflictError(SessionError):
    """The requested name is taken by another URL, or the URL is registered under another name."""


class LockError(SessionError):
    """Base class of the distributed lock's errors."""


class LockTimeoutError(LockError):
    """The lock could not be acquired within the timeout."""

    def __init__(self, name: str, timeout: float) -> None:
        super().__init__(
            f"could not acquire lock {name!r} within {timeout:g} s: another holder has it; retry later, "
            "pass a longer timeout, or check for a stuck holder (its lease expires on its own)",
            extra_info={"lock": name, "timeout": timeout},
        )


class LockNotHeldError(LockError):
    """The lock is not (or no longer) held by this owner: never acquired, released, or its lease expired."""

    def __init__(self, name: str, operation: str) -> None:
        super().__init__(
            f"cannot {operation} lock {name!r}: this owner does not hold it (never acquired, already "
            "released, or the lease expired and another owner may have taken it); acquire it again, and "
            "use a longer lease or renew=True for long critical sections",
            extra_info={"lock": name, "operation": operation},
        )
