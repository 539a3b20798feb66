"""Per-application singletons the services share: the Notify client and its OAuth registry.

Built once per app from its configuration and kept in ``app.extensions``, so the
whole process reuses one ``requests.Session`` (and its connection pool) for the Notify server.
"""

from __future__ import annotations

from authlib.integrations.flask_client import FlaskOAuth2App, OAuth
from flask import Flask, current_app

from notify_site.notify_client import NotifyClient


def init_oauth(app: Flask) -> None:
    """Register the Notify server as an OAuth client of this app (Authlib's Flask client).

    The registry is per app (not a module global) because Authlib caches a client per name:
    two apps in one process, as in the tests, would otherwise share the first one's URLs.
    Client id and secret come from ``NOTIFY_CLIENT_ID`` / ``NOTIFY_CLIENT_SECRET``.
    """
    registry = OAuth(app)
    registry.register(
        "notify",
        authorize_url=app.config["NOTIFY_BOT_ORIGIN"] + "/oauth/authorize",
        access_token_url=app.config["NOTIFY_BOT_ORIGIN"] + "/oauth/token",
        client_kwargs={
            "scope": "notify",
            "code_challenge_method": "S256",
            # LINE Notify took the client secret in the form body.
            "token_endpoint_auth_method": "client_secret_post",
            "default_timeout": app.config["NOTIFY_TIMEOUT"],
        },
    )
    app.extensions["notify_site.oauth"] = registry


def oauth_client() -> FlaskOAuth2App:
    """This app's OAuth client for the Notify server."""
    return current_app.extensions["notify_site.oauth"].notify


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
