"""Secrets kept encrypted at rest (webhook signing secrets), with keys that can rotate.

The keys (Fernet: AES-128-CBC + HMAC-SHA256, from ``cryptography``) come from
``SURVEILLANCE_ENCRYPTION_KEYS`` (comma-separated; the first encrypts, every one decrypts).
Unset: from the key file ``encryption.key`` in the data directory (one key a line, the
first encrypts), created owner-only with one new key the first time it is needed. A
stolen database copy then reveals no signing secret without the key, which lives
elsewhere (the environment, or a file outside the database).

A column typed ``EncryptedString`` is encrypted when written and decrypted when read; the
stored value is ``fernet:<token>``. ``configure`` sets the keys of this process (the
composition root does, from its settings); until then they are read from the environment's
settings on first use.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Dialect, String
from sqlalchemy.types import TypeDecorator

from surveillance.kit.private_files import OWNER_ONLY_FILE, make_private_dir

KEY_FILE = "encryption.key"
PREFIX = "fernet:"
# A whsec_ secret (50 characters) encrypts to 171: room for longer ones.
SECRET_COLUMN_LENGTH = 400


class SecretKeyError(RuntimeError):
    """No usable key, or a stored value that none of the keys decrypts."""


class KeyRing:
    """Encrypt with the first key, decrypt with any of them."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise SecretKeyError("no encryption key")
        try:
            self._fernet = MultiFernet([Fernet(key.strip().encode()) for key in keys])
        except ValueError as exc:
            raise SecretKeyError(
                "an encryption key is not a Fernet key (32 url-safe base64-encoded bytes; "
                "make one with `surveillance db new-key`)"
            ) from exc
        self.key_count = len(keys)

    def encrypt(self, plain: str) -> str:
        return PREFIX + self._fernet.encrypt(plain.encode()).decode("ascii")

    def decrypt(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            raise SecretKeyError("a stored secret is not encrypted (run `surveillance db upgrade`)")
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise SecretKeyError(
                "a stored secret does not decrypt with any configured key "
                "(SURVEILLANCE_ENCRYPTION_KEYS or the data directory's encryption.key)"
            ) from None

    def reencrypt(self, stored: str) -> str:
        """The same secret encrypted with the first key (after a key rotation)."""
        if not stored.startswith(PREFIX):
            return self.encrypt(stored)
        token = self._fernet.rotate(stored[len(PREFIX) :].encode())
        return PREFIX + token.decode("ascii")


def new_key() -> str:
    return Fernet.generate_key().decode("ascii")


def keys_from(configured: str | None, data_dir: Path) -> list[str]:
    """The configured keys, or those of the data directory's key file (created if
    missing: owner-only, in an owner-only folder, never overwritten)."""
    if configured and configured.strip():
        return [key for key in configured.split(",") if key.strip()]
    path = data_dir / KEY_FILE
    if not path.exists():
        make_private_dir(path.parent)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY_FILE)
        except FileExistsError:  # another process made it first: use theirs
            pass
        else:
            with os.fdopen(descriptor, "w", encoding="ascii") as handle:
                handle.write(new_key() + "\n")
    lines = (line.strip() for line in path.read_text(encoding="ascii").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


_lock = threading.Lock()
_ring: KeyRing | None = None
# Where the key file is, when the keys come from one: read (or made) on first use only, so
# a command that never touches a secret creates no key file.
_key_dir: Path | None = None


def install(ring: KeyRing) -> None:
    global _ring  # one key ring per process, set by the composition root
    with _lock:
        _ring = ring


def configure(configured: str | None, data_dir: Path) -> None:
    """This process's keys: configured ones are checked now (a bad key stops the start);
    the data directory's key file is read, or created, when a secret is first used."""
    global _ring, _key_dir
    if configured and configured.strip():
        install(KeyRing(keys_from(configured, data_dir)))
        return
    with _lock:
        _ring, _key_dir = None, data_dir


def current() -> KeyRing:
    global _ring
    with _lock:
        if _ring is None:
            if _key_dir is not None:
                _ring = KeyRing(keys_from(None, _key_dir))
            else:
                from surveillance.config import get_settings  # first use only

                settings = get_settings()
                _ring = KeyRing(keys_from(settings.encryption_keys_value, settings.data_dir))
        return _ring


class EncryptedString(TypeDecorator[str]):
    """A string column stored encrypted with this process's key ring."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else current().encrypt(str(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else current().decrypt(value)
