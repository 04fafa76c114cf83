"""How identities and secrets become storage keys: hashed, never in clear."""

from __future__ import annotations

import hashlib
import hmac

from fastmcp_sessions.sessions.errors import InvalidIdentityError

_IDENTITY_DOMAIN = b"fastmcp-sessions/identity/v1\x00"
_SECRET_DOMAIN = b"fastmcp-sessions/secret/v1\x00"


class IdentityHasher:
    """Turns an identity into a fixed-length hex digest for storage keys.

    With ``key`` (a server-side secret) it is HMAC-SHA256, so someone who can read the
    keys but not the secret cannot test guesses of identities; without it, SHA-256
    with a domain prefix. The repr never shows the key.
    """

    __slots__ = ("_key",)

    def __init__(self, key: str | bytes | None = None) -> None:
        if isinstance(key, str):
            key = key.encode("utf-8")
        if key is not None and not key:
            raise InvalidIdentityError("an empty identity_key (pass None for plain SHA-256)")
        self._key = key

    def __repr__(self) -> str:
        return f"IdentityHasher({'hmac-sha256' if self._key else 'sha256'})"

    def __call__(self, identity: str) -> str:
        """Return the 64-hex-digit digest of ``identity``."""
        data = _IDENTITY_DOMAIN + check_identity(identity).encode("utf-8", "surrogatepass")
        if self._key is None:
            return hashlib.sha256(data).hexdigest()
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()


def check_identity(identity: object) -> str:
    """Return ``identity`` if it is a non-empty ``str``; raise ``InvalidIdentityError`` otherwise."""
    if not isinstance(identity, str):
        raise InvalidIdentityError(f"a {type(identity).__name__}")
    if not identity:
        raise InvalidIdentityError("an empty string")
    return identity


def secret_digest(secret: str) -> str:
    """SHA-256 hex of a random secret (an OAuth ``state``) so it never appears in clear in a key."""
    return hashlib.sha256(_SECRET_DOMAIN + secret.encode("utf-8", "surrogatepass")).hexdigest()


def short_digest(text: str) -> str:
    """A 32-hex-digit SHA-256 prefix of ``text`` (a URL, a lock name) for compact keys."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
