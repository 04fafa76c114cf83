"""Fernet keys, where they come from, and the value codecs that use them.

A ``Keyring`` holds one or more Fernet keys, newest first: the newest encrypts,
every key decrypts, so a new key can be added before old data is re-encrypted.

Ciphertext is bound to its place: the encrypted plaintext is the JSON array
``[collection, key, value]``, and decryption checks the first two against where the
token was read from. A record copied to another key or collection therefore fails
with ``DecryptionError`` instead of returning somebody else's data (Fernet's HMAC
keeps the embedded names from being altered).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from fastmcp_sessions import telemetry
from fastmcp_sessions._values import clone, dumps_validated
from fastmcp_sessions.errors import (
    DecryptionError,
    DeserializationError,
    MissingKeyError,
    StoreSetupError,
    key_ref,
)

logger = logging.getLogger("fastmcp_sessions")

KEYS_ENV = "FASTMCP_SESSIONS_KEYS"
"""Environment variable with comma-separated Fernet keys, newest first."""

KEY_FILE_NAME = "fastmcp-sessions.key"

GENERATE_KEY_COMMAND = "python -c 'from fastmcp_sessions import Keyring; print(Keyring.generate_key())'"
"""A shell command that prints one new Fernet key."""


class Keyring:
    """Fernet keys, newest first. Its repr shows fingerprints, never key material."""

    __slots__ = ("_fernets", "_multi", "_roots", "fingerprints", "source")

    def __init__(self, keys: Iterable[str | bytes], *, source: str = "passed in") -> None:
        material = [k.strip() for k in keys]
        material = [k for k in material if k]
        if not material:
            raise StoreSetupError(
                f"no encryption key given ({source}); pass at least one Fernet key (Keyring.generate_key())"
            )
        fernets = []
        for index, key in enumerate(material):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError):
                raise StoreSetupError(
                    f"encryption key #{index + 1} ({source}) is not a Fernet key: it must be 32 url-safe "
                    "base64-encoded bytes; make one with `python -c 'from fastmcp_sessions import Keyring; "
                    "print(Keyring.generate_key())'`"
                ) from None
        self._fernets = fernets
        self._multi = MultiFernet(fernets)
        self.fingerprints = tuple(fingerprint(k) for k in material)
        self.source = source
        # Roots for derive_keys: other secrets come from these, never from the Fernet keys as is.
        raw = [k.encode() if isinstance(k, str) else k for k in material]
        self._roots = tuple(hashlib.sha256(b"fastmcp-sessions/keyring-root\0" + k).digest() for k in raw)

    @staticmethod
    def generate_key() -> str:
        """Return a new random Fernet key (url-safe base64 text)."""
        return Fernet.generate_key().decode("ascii")

    def __repr__(self) -> str:
        return f"Keyring(keys={list(self.fingerprints)}, source={self.source!r})"

    def __len__(self) -> int:
        return len(self._fernets)

    def encrypt(self, data: bytes) -> bytes:
        """Encrypt with the newest key."""
        return self._fernets[0].encrypt(data)

    def decrypt(self, token: bytes) -> bytes:
        """Decrypt with whichever key fits; raises ``cryptography.fernet.InvalidToken`` if none does."""
        return self._multi.decrypt(token)

    def derive_keys(self, purpose: str) -> list[bytes]:
        """32-byte secrets for ``purpose``, one per key, newest first (duplicates dropped):
        a second use of the same keys that rotates with them, without revealing them."""
        derived = [hmac.new(root, purpose.encode("utf-8"), hashlib.sha256).digest() for root in self._roots]
        return list(dict.fromkeys(derived))

    def is_current(self, token: bytes) -> bool:
        """Whether ``token`` was encrypted with the newest key."""
        try:
            self._fernets[0].decrypt(token)
        except InvalidToken:
            return False
        return True


def fingerprint(key: str | bytes) -> str:
    """A short, non-reversible name for a key, safe to print."""
    raw = key.encode("ascii") if isinstance(key, str) else key
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:12]


def default_key_file(app_name: str) -> Path:
    """Where the generated key lives: ``platformdirs.user_config_dir(app_name)``."""
    import platformdirs

    return Path(platformdirs.user_config_dir(app_name)) / KEY_FILE_NAME


def load_keyring(
    keys: Keyring | Sequence[str | bytes] | str | None = None,
    *,
    app_name: str = "fastmcp",
    key_file: str | os.PathLike[str] | None = None,
    shared_store: str | None = None,
    env_names: Sequence[str] = (KEYS_ENV,),
    create: bool = True,
    encrypted_data: str | None = None,
) -> Keyring:
    """Find the encryption keys, in this order: ``keys`` passed in; env ``FASTMCP_SESSIONS_KEYS``
    (comma-separated, newest first); the key file.

    The one key policy of every entry point: a key file is created (0600, one new key)
    only when no encrypted data exists yet. ``encrypted_data`` names the data that
    already exists (``"the database /path"``), ``None`` when there is none; with it, or
    with ``create=False``, a missing key file is a ``MissingKeyError`` that says what to
    restore, and nothing is created: a new key could never read that data.

    ``shared_store`` names a store shared over the network: then no key file is read or
    created (it would be local to this machine, so replicas would disagree) and
    ``MissingKeyError`` says how to make one key and share it. ``env_names`` are the
    variables that message suggests.
    """
    if isinstance(keys, Keyring):
        return keys
    if isinstance(keys, str | bytes):
        keys = [keys]
    if keys:
        return Keyring(keys, source="passed in")
    env = os.environ.get(KEYS_ENV, "").strip()
    if env:
        return Keyring(env.split(","), source=f"env {KEYS_ENV}")
    if shared_store is not None:
        raise MissingKeyError(missing_key_message(shared_store, env_names))
    path = key_file_path(app_name, key_file)
    if not path.exists() and not path.is_symlink():
        if encrypted_data is not None or not create:
            raise MissingKeyError(missing_key_file_message(path, encrypted_data))
        _create_key_file(path)
    return Keyring(read_key_file(path), source=f"key file {path}")


def key_file_path(app_name: str, key_file: str | os.PathLike[str] | None = None) -> Path:
    """The key file ``load_keyring`` reads: ``key_file`` if given, else ``default_key_file(app_name)``."""
    return Path(key_file).expanduser() if key_file is not None else default_key_file(app_name)


def missing_key_message(store: str, env_names: Sequence[str] = (KEYS_ENV,)) -> str:
    """What to do when an encrypted store shared over the network has no keys."""
    return (
        f"{store} is shared over the network and encrypted, but no encryption key was given: a key file "
        "would exist on this machine only, so each replica would encrypt with a different key. Generate "
        f"one key once with `{GENERATE_KEY_COMMAND}` and set {' or '.join(env_names)} to it on every "
        "replica (or pass keys=)"
    )


def missing_key_file_message(path: Path, encrypted_data: str | None = None) -> str:
    """What to do when the key file is missing (``encrypted_data``: the data that needs it)."""
    held = f"{encrypted_data} holds encrypted data, but " if encrypted_data else ""
    return (
        f"{held}the key file {path} does not exist: restore it from your backup, or set {KEYS_ENV} to "
        "its keys (newest first); nothing was created (a new key could not read existing data)"
    )


def _create_key_file(path: Path) -> None:
    tmp = _write_private_temp(path, [Keyring.generate_key()])
    try:
        # link() fails if another process created the file first; then we use theirs.
        os.link(tmp, path)
        logger.info("created a new encryption key file at %s", path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


def write_key_file(path: Path, keys: Sequence[str]) -> None:
    """Replace the key file at ``path`` with ``keys`` (newest first), atomically: a reader sees
    the old file or the new one, never a part; the new file is 0600 and on disk first."""
    Keyring(keys, source=f"new key file {path}")  # refuse to write a file nothing could read
    tmp = _write_private_temp(path, keys)
    try:
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)


def _write_private_temp(path: Path, keys: Sequence[str]) -> Path:
    """A fsynced 0600 file beside ``path`` holding ``keys``, one per line."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    try:
        make_private_dir(path.parent)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise StoreSetupError(
            f"cannot create the key file {path}: {exc.strerror} ({_nearest_dir(path.parent)} is not "
            f"writable by this user); fix that directory's permissions, pass key_file= (?key_file=) "
            f"pointing somewhere writable, or set {KEYS_ENV}"
        ) from None
    try:
        with os.fdopen(fd, "w") as f:
            f.write("".join(key.strip() + "\n" for key in keys))
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _nearest_dir(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def read_key_file(path: Path) -> list[str]:
    """The keys in a key file, newest first: one per line, ``#`` comments and blank lines skipped,
    a UTF-8 byte-order mark and CRLF line ends tolerated. Any problem is a ``StoreSetupError``
    naming the file."""
    if path.is_dir():
        raise StoreSetupError(
            f"the key file {path} is a directory, not a file; point key_file= at the key file itself, "
            f"or move the directory away so a key file can be created there"
        )
    try:
        raw = path.read_bytes()
        mode = path.stat().st_mode & 0o777
    except OSError as exc:
        raise StoreSetupError(
            f"cannot read the key file {path}: {exc.strerror}; run the process as the user that owns it, "
            f"or fix its permissions (chmod 600 {path})"
        ) from None
    if mode & 0o077:
        logger.warning(
            "key file %s is readable by other users (mode %o); run: chmod 600 %s", path, mode, path
        )
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # a byte-order mark some editors add
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise StoreSetupError(
            f"the key file {path} is not a key file: it holds non-text bytes (at offset {exc.start}); a "
            "key file holds Fernet keys, one per line. Restore it from your backup"
        ) from None
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) with mode 0700; existing directories are left as they are."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(d, 0o700)  # mkdir's mode is masked by the umask


class ValueCodec(Protocol):
    """Turns a validated value into the bytes a store keeps, and back."""

    @property
    def encrypted(self) -> bool: ...

    def encode(self, collection: str, key: str, value: dict[str, Any]) -> bytes: ...

    def decode(self, collection: str, key: str, data: bytes) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class JsonCodec:
    """Plain UTF-8 JSON."""

    encrypted: bool = False

    def encode(self, collection: str, key: str, value: dict[str, Any]) -> bytes:
        return dumps_validated(value).encode("utf-8")

    def decode(self, collection: str, key: str, data: bytes) -> dict[str, Any]:
        try:
            value = json.loads(data)
        except ValueError:
            raise DeserializationError(
                f"the stored value at collection {collection!r}, key {key_ref(key)} is not valid JSON "
                "(is the data encrypted? then open the store with encryption on)"
            ) from None
        if not isinstance(value, dict):
            raise DeserializationError(
                f"the stored value at collection {collection!r}, key {key_ref(key)} is not an object"
            )
        return value


class FernetCodec:
    """Fernet over the JSON array ``[collection, key, value]``, so ciphertext is bound to its place.

    Decryption costs far more than reading a row, so the last ``cache_size`` values this
    codec encrypted or decrypted are kept beside their ciphertext: a read whose stored
    bytes are identical to a cached ciphertext for the same (collection, key) skips
    decryption. Identical ciphertext means identical plaintext, so this never returns
    stale data; ``cache_size=0`` turns it off.
    """

    encrypted = True
    __slots__ = ("_cache", "cache_size", "keyring")

    def __init__(self, keyring: Keyring, *, cache_size: int = 4096) -> None:
        self.keyring = keyring
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str], tuple[bytes, dict[str, Any]]] = OrderedDict()

    def __repr__(self) -> str:
        return f"FernetCodec({self.keyring!r})"

    def _remember(self, collection: str, key: str, token: bytes, value: dict[str, Any]) -> None:
        if self.cache_size:
            cache = self._cache
            cache[(collection, key)] = (token, value)
            cache.move_to_end((collection, key))
            if len(cache) > self.cache_size:
                cache.popitem(last=False)

    def encode(self, collection: str, key: str, value: dict[str, Any]) -> bytes:
        plain = dumps_validated([collection, key, value])  # type: ignore[arg-type]
        token = self.keyring.encrypt(plain.encode("utf-8"))
        self._remember(collection, key, token, value)
        return token

    def decode(self, collection: str, key: str, data: bytes) -> dict[str, Any]:
        cached = self._cache.get((collection, key))
        if cached is not None and cached[0] == data:
            return clone(cached[1])
        try:
            value = self._decrypt(collection, key, data)
        except DecryptionError:
            telemetry.record_decryption_failure("ciphertext")
            raise
        self._remember(collection, key, bytes(data), value)
        return clone(value)

    def _decrypt(self, collection: str, key: str, data: bytes) -> dict[str, Any]:
        try:
            plain = self.keyring.decrypt(data)
        except (InvalidToken, TypeError, ValueError):
            raise DecryptionError(
                f"cannot decrypt the value at collection {collection!r}, key {key_ref(key)}: it was not "
                f"encrypted with any of the keys in use ({', '.join(self.keyring.fingerprints)}, from "
                f"{self.keyring.source}), or it is not fastmcp-sessions ciphertext. Add the key it was "
                f"written with to {KEYS_ENV} (newest first); nothing was changed"
            ) from None
        try:
            stored_collection, stored_key, value = json.loads(plain)
        except (ValueError, TypeError):
            raise DecryptionError(
                f"the value at collection {collection!r}, key {key_ref(key)} decrypted to something that "
                "is not a fastmcp-sessions record"
            ) from None
        if stored_collection != collection or stored_key != key:
            raise DecryptionError(
                f"the value at collection {collection!r}, key {key_ref(key)} was encrypted for a different "
                "collection or key (a copied or moved record); refusing to return it"
            )
        return value  # type: ignore[no-any-return]
