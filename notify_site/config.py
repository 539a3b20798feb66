"""Configuration: defaults, generated secrets, ``instance/config.py``, then the environment.

Order of precedence, lowest first:

1. :data:`DEFAULTS` below;
2. ``instance/secrets.json`` — secrets this module generates on first run (mode 0600);
3. ``instance/config.py``;
4. environment variables ``NOTIFY_SITE_<KEY>`` (values are parsed as JSON when they can be,
   so ``NOTIFY_SITE_RELAY_ENABLED=false`` is a boolean), plus the conventional ``DATABASE_URL``;
5. the ``test_config`` mapping given to :func:`notify_site.create_app`.

Every key is described in ``instance/config.example.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from flask import Flask

SECRETS_FILE = "secrets.json"

DEFAULTS: dict[str, Any] = {
    # Flask session signing; generated into instance/secrets.json when not configured.
    "SECRET_KEY": None,
    # The token key ring, newest first: a list of "key-id:fernet-key" strings (or one string
    # with commas between them). Generated when not configured.
    "TOKEN_KEYS": None,
    # The Notify server the site talks to. The built-in relay by default.
    "NOTIFY_BOT_ORIGIN": "http://127.0.0.1:5000/relay",
    "NOTIFY_API_ORIGIN": "http://127.0.0.1:5000/relay",
    "NOTIFY_CLIENT_ID": None,
    "NOTIFY_CLIENT_SECRET": None,
    "NOTIFY_REDIRECT_URI": "http://127.0.0.1:5000/callback",
    # Seconds before an outbound call to the Notify server gives up.
    "NOTIFY_TIMEOUT": 10,
    # Seconds an OAuth state stays valid (RFC 6819: short-lived, single-use).
    "OAUTH_STATE_TTL": 3600,
    # The built-in relay (SPEC 5).
    "RELAY_ENABLED": True,
    "RELAY_URL_PREFIX": "/relay",
    "RELAY_RATE_LIMIT": 1000,
    "RELAY_IMAGE_RATE_LIMIT": 50,
    "RELAY_RATE_WINDOW": 3600,
    "RELAY_CODE_TTL": 600,
    "RELAY_SANDBOX_USER": "Sandbox user",
    "RELAY_SANDBOX_GROUPS": ["Family", "Team alerts"],
    "RELAY_IMAGE_MAX_BYTES": 5 * 1024 * 1024,
    # Delivery workers (SPEC 4.4).
    # Threads per worker process: how many connections one worker delivers to at once.
    "WORKER_THREADS": 8,
    # Seconds between looks at the queue when it is empty.
    "WORKER_POLL_INTERVAL": 1.0,
    # Seconds a claim lasts before another worker may take the rows over.
    "WORKER_LEASE_SECONDS": 60,
    # Rows of one connection claimed at a time.
    "WORKER_BATCH_SIZE": 20,
    # Run a delivery worker thread inside the web process (`flask serve` always does).
    "WORKER_IN_PROCESS": False,
    # Retries: full-jitter backoff from 0..base·2ⁿ⁻¹ seconds, capped; then failed.
    "DELIVERY_RETRY_BASE": 15,
    "DELIVERY_RETRY_CAP": 900,
    "DELIVERY_MAX_ATTEMPTS": 8,
    "DELIVERY_MAX_AGE_HOURS": 24,
    # Accounts.
    "REGISTRATION_OPEN": True,
    # Database: SQLite in instance/ unless DATABASE_URL is given.
    "DATABASE_URL": None,
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    # Web hygiene (SPEC 4.7).
    "MAX_CONTENT_LENGTH": 12 * 1024 * 1024,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    # None: decided from the scheme of NOTIFY_REDIRECT_URI (Secure whenever the site is HTTPS).
    "SESSION_COOKIE_SECURE": None,
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    "WTF_CSRF_TIME_LIMIT": 3600,
}


class ConfigError(RuntimeError):
    """The configuration cannot work; the message says which key and why."""


def load_config(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Fill ``app.config`` in the documented order and derive the computed keys."""
    app.config.from_mapping(DEFAULTS)
    generated = _read_secrets_file(app)
    app.config.update(generated)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("NOTIFY_SITE")
    if os.environ.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = os.environ["DATABASE_URL"]
    if test_config:
        app.config.update(test_config)

    missing = [key for key in ("SECRET_KEY", "TOKEN_KEYS") if not app.config.get(key)]
    if missing:
        generated = ensure_secrets(app)
        for key in missing:
            app.config[key] = generated[key]

    app.config["TOKEN_KEYS"] = parse_key_list(app.config["TOKEN_KEYS"])
    app.config["SQLALCHEMY_DATABASE_URI"] = database_uri(app)
    if app.config["SESSION_COOKIE_SECURE"] is None:
        app.config["SESSION_COOKIE_SECURE"] = app.config["NOTIFY_REDIRECT_URI"].startswith("https:")
    app.config["REMEMBER_COOKIE_SECURE"] = app.config["SESSION_COOKIE_SECURE"]
    for key in ("NOTIFY_BOT_ORIGIN", "NOTIFY_API_ORIGIN"):
        app.config[key] = app.config[key].rstrip("/")


def parse_key_list(value: str | list[str]) -> list[str]:
    """Accept the key ring as a list or as one comma-separated string."""
    if isinstance(value, str):
        value = value.split(",")
    keys = [item.strip() for item in value if item and item.strip()]
    if not keys:
        raise ConfigError("TOKEN_KEYS is empty: give at least one 'key-id:fernet-key'")
    return keys


def database_uri(app: Flask) -> str:
    """The SQLAlchemy URL: ``DATABASE_URL`` (psycopg 3 for PostgreSQL) or SQLite in instance/."""
    url = app.config.get("DATABASE_URL")
    if not url:
        return "sqlite:///" + str(Path(app.instance_path) / "notify_site.sqlite3")
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _secrets_path(app: Flask) -> Path:
    return Path(app.instance_path) / SECRETS_FILE


def _read_secrets_file(app: Flask) -> dict[str, Any]:
    path = _secrets_path(app)
    if not path.exists():
        return {}
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def new_secrets() -> dict[str, Any]:
    """Fresh values for every generated secret."""
    return {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "TOKEN_KEYS": [f"k{secrets.token_hex(4)}:{Fernet.generate_key().decode()}"],
    }


def ensure_secrets(app: Flask) -> dict[str, Any]:
    """Return the generated secrets, creating ``instance/secrets.json`` (0600) if absent.

    Safe when several processes start at once: the file is written aside and linked into place,
    so exactly one process creates it and every other one reads that same file.
    """
    path = _secrets_path(app)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return _read_secrets_file(app)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secrets-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(new_secrets(), handle, indent=2)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return _read_secrets_file(app)


def save_secrets(app: Flask, values: dict[str, Any]) -> None:
    """Merge ``values`` into ``instance/secrets.json``, keeping it 0600."""
    current = ensure_secrets(app)
    current.update(values)
    path = _secrets_path(app)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secrets-")
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(current, handle, indent=2)
    os.replace(tmp, path)
