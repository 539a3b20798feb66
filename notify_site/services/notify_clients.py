"""This app's clients of its Notify server: the API client and the OAuth client.

Each is built from this app's configuration (``NOTIFY_API_ORIGIN``, ``NOTIFY_BOT_ORIGIN``,
``NOTIFY_CLIENT_ID`` / ``NOTIFY_CLIENT_SECRET``, ``NOTIFY_TIMEOUT``) on one
``requests.Session`` kept in ``app.extensions``, so that the whole process reuses one
connection pool for the server. Per app rather than module globals, because two apps in one
process (as in the tests) talk to different servers.
"""

from __future__ import annotations

from flask import current_app

from notify_site.notify_client import NotifyClient
from notify_site.notify_oauth import NotifyOAuthClient


def notify_client() -> NotifyClient:
    """The HTTP client for the Notify API at ``NOTIFY_API_ORIGIN`` (built once per app; its
    session is the one the OAuth client uses too)."""
    client = current_app.extensions.get("notify_site.notify_client")
    if client is None:
        client = NotifyClient(
            current_app.config["NOTIFY_API_ORIGIN"], timeout=current_app.config["NOTIFY_TIMEOUT"]
        )
        current_app.extensions["notify_site.notify_client"] = client
    return client


def oauth_client() -> NotifyOAuthClient:
    """The OAuth client for the Notify server at ``NOTIFY_BOT_ORIGIN``, as this site's
    registered client. Built on each use (it is cheap, and ``flask setup`` may register the
    site after the app started), on the API client's session."""
    config = current_app.config
    return NotifyOAuthClient(
        config["NOTIFY_BOT_ORIGIN"],
        config.get("NOTIFY_CLIENT_ID") or "",
        config.get("NOTIFY_CLIENT_SECRET") or "",
        timeout=config["NOTIFY_TIMEOUT"],
        session=notify_client().session,
    )
