"""Random secrets and their stored form: SHA-256 hex digests, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

# 32 random bytes: 256 bits, far above the 128 bits RFC 6749 section 10.10 asks for.
SECRET_BYTES = 32

#: An access token's alphabet and length, as LINE Notify's tokens looked: some unchanged
#: clients check a token against ``[A-Za-z0-9]{43}`` before they send it. 62**43 is about
#: 2**256.03, so a token holds at least 256 random bits.
ACCESS_TOKEN_ALPHABET = string.ascii_letters + string.digits
ACCESS_TOKEN_LENGTH = 43


def new_secret() -> str:
    """A fresh random secret, URL-safe (43 characters)."""
    return secrets.token_urlsafe(SECRET_BYTES)


def new_access_token() -> str:
    """A fresh access token: 43 characters of ``[A-Za-z0-9]``, each drawn by
    :func:`secrets.choice` (which picks uniformly, with no modulo bias)."""
    return "".join(secrets.choice(ACCESS_TOKEN_ALPHABET) for _ in range(ACCESS_TOKEN_LENGTH))


def new_image_id() -> str:
    """The public id of an uploaded image (its URL): 128 random bits, so no one can count
    through the images of others."""
    return secrets.token_urlsafe(16)


def hash_secret(value: str) -> str:
    """The stored form of a secret: its SHA-256 digest in hex."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def secret_matches(value: str, stored_hash: str) -> bool:
    """Whether ``value`` hashes to ``stored_hash``, compared in constant time."""
    return hmac.compare_digest(hash_secret(value), stored_hash)
