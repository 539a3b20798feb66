"""Per-application singletons the services share: the key ring and the Notify client.

Both are built once per app from its configuration and kept in ``app.extensions``, so the
whole process reuses one ``requests.Session`` (and its connection pool) for the Notify server.
"""

from __future__ import annotations

from flask import current_app

from notify_site.crypto import KeyRing
from notify_site.notify_client import NotifyClient


def keyring() -> KeyRing:
    """The token key ring from ``TOKEN_KEYS`` (newest key first)."""
    ring = current_app.extensions.get("notify_site.keyring")
    if ring is None:
        ring = KeyRing(current_app.config["TOKEN_KEYS"])
        current_app.extensions["notify_site.keyring"] = ring
    return ring


def notify_client() -> NotifyClient:
    """The HTTP client for the Notify API at ``NOTIFY_API_ORIGIN``."""
    client = current_app.extensions.get("notify_site.notify_client")
    if client is None:
        client = NotifyClient(
            current_app.config["NOTIFY_API_ORIGIN"], timeout=current_app.config["NOTIFY_TIMEOUT"]
        )
        current_app.extensions["notify_site.notify_client"] = client
    return client


def connection_context(connection_id: int) -> str:
    """What a connection's token ciphertext is bound to (checked on every decrypt)."""
    return f"connection:{connection_id}"
