"""Registered services (OAuth clients) of the relay.

:func:`register_client` and :func:`client_is_registered` are public: the site's ``setup``
command calls them to register the site itself with the built-in relay.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from sqlalchemy import select

from notify_site.extensions import db
from notify_site.plain_text import text_problem
from notify_site.relay.errors import ClientRegistrationError
from notify_site.relay.models import RelayClient
from notify_site.relay.secrets_util import hash_secret, new_secret, secret_matches

# Compared against when the client id is unknown, so that both paths take the same time.
_DUMMY_HASH = hash_secret("no such client")


def validate_redirect_uri(redirect_uri: str) -> str:
    """An absolute http(s) URL without a fragment (RFC 6749 section 3.1.2)."""
    if len(redirect_uri) > 2000:
        raise ClientRegistrationError("the redirect URI is longer than 2000 characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in redirect_uri):
        raise ClientRegistrationError("the redirect URI contains spaces or control characters")
    parts = urlsplit(redirect_uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ClientRegistrationError("the redirect URI must be an absolute http(s) URL")
    if parts.fragment or redirect_uri.endswith("#"):
        raise ClientRegistrationError("the redirect URI must not contain a fragment (#...)")
    return redirect_uri


def register_client(name: str, redirect_uri: str) -> tuple[str, str]:
    """Register a service; returns ``(client_id, client_secret)`` and commits.

    The secret is returned this once and stored only as its SHA-256 hash.
    """
    name = name.strip()
    if not name or len(name) > 100:
        raise ClientRegistrationError("the name must be 1 to 100 characters")
    if text_problem(name) is not None:
        raise ClientRegistrationError("the name must not contain control characters")
    validate_redirect_uri(redirect_uri)
    client_id = secrets.token_urlsafe(16)
    client_secret = new_secret()
    db.session.add(
        RelayClient(
            client_id=client_id,
            secret_hash=hash_secret(client_secret),
            name=name,
            redirect_uri=redirect_uri,
        )
    )
    db.session.commit()
    return client_id, client_secret


def find_client(client_id: str) -> RelayClient | None:
    """The client registered under ``client_id``, if any."""
    # Client ids are URL-safe base64; PostgreSQL cannot even compare a string holding NUL.
    if not client_id or text_problem(client_id) is not None:
        return None
    return db.session.scalar(select(RelayClient).where(RelayClient.client_id == client_id))


def client_is_registered(client_id: str, redirect_uri: str) -> bool:
    """Whether ``client_id`` is registered with exactly this ``redirect_uri``."""
    client = find_client(client_id)
    return client is not None and client.redirect_uri == redirect_uri


def authenticate_client(client_id: str, client_secret: str) -> RelayClient | None:
    """The client if ``client_secret`` is its secret, else None (constant-time comparison)."""
    client = find_client(client_id)
    matches = secret_matches(client_secret, client.secret_hash if client else _DUMMY_HASH)
    return client if client is not None and matches else None
