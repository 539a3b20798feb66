"""Random secrets and their stored form: SHA-256 hex digests, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

# 32 random bytes: 256 bits, far above the 128 bits RFC 6749 section 10.10 asks for.
SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh random secret, URL-safe (43 characters)."""
    return secrets.token_urlsafe(SECRET_BYTES)


def hash_secret(value: str) -> str:
    """The stored form of a secret: its SHA-256 digest in hex."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def secret_matches(value: str, stored_hash: str) -> bool:
    """Whether ``value`` hashes to ``stored_hash``, compared in constant time."""
    return hmac.compare_digest(hash_secret(value), stored_hash)
