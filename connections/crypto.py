"""Token encryption at rest: MultiFernet over `settings.TOKEN_ENCRYPTION_KEYS`.

The first key encrypts, every key decrypts, so keys rotate without downtime:
add a new key in front, run `manage.py rotate_token_keys`, then drop the old one.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.views.decorators.debug import sensitive_variables


class TokenDecryptError(Exception):
    """A blob no configured key opens (a key was removed too early)."""


def _dev_key(secret_key: str) -> bytes:
    # No TOKEN_ENCRYPTION_KEYS configured: derive a development key from SECRET_KEY so the
    # demo works out of the box. `check --deploy` refuses this in production (linkpoint/checks).
    digest = hashlib.sha256(b"linkpoint-token-encryption:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest)


@lru_cache(maxsize=8)
def _multifernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    raw = [k.encode() for k in keys] or [_dev_key(secret_key)]
    return MultiFernet([Fernet(k) for k in raw])


def fernet() -> MultiFernet:
    # Keyed on the current settings, so tests that swap keys get a fresh MultiFernet.
    return _multifernet(tuple(settings.TOKEN_ENCRYPTION_KEYS or ()), settings.SECRET_KEY)


@sensitive_variables("data")
def encrypt_json(data: dict) -> str:
    return fernet().encrypt(json.dumps(data, separators=(",", ":")).encode()).decode()


def decrypt_json(blob: str) -> dict:
    if not blob:
        return {}
    try:
        return json.loads(fernet().decrypt(blob.encode()))
    except InvalidToken:
        raise TokenDecryptError("no configured token key decrypts this connection") from None


def rotate(blob: str) -> str:
    """Re-encrypt with the newest key (MultiFernet.rotate keeps the original timestamp)."""
    if not blob:
        return blob
    try:
        return fernet().rotate(blob.encode()).decode()
    except InvalidToken:
        raise TokenDecryptError("no configured token key decrypts this connection") from None
