"""Fixtures in the Flask tutorial's style: ``app``, ``client``, ``runner``, plus a live server.

Each ``app`` gets a fresh SQLite file (or a fresh PostgreSQL schema when
``NOTIFY_SITE_TEST_DATABASE_URL`` is set), fresh secrets and a fresh key ring.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from werkzeug.serving import make_server

from notify_site import create_app
from notify_site.extensions import db


def make_test_config(tmp_path, **overrides) -> dict:
    """A complete configuration for one test app; nothing read from the real instance/."""
    instance = tmp_path / "instance"
    instance.mkdir(exist_ok=True)
    config = {
        "TESTING": True,
        "INSTANCE_PATH": str(instance),
        "SECRET_KEY": "test-secret-key",
        "TOKEN_KEYS": ["ktest1:" + Fernet.generate_key().decode()],
        "DATABASE_URL": "sqlite:///" + str(instance / "test.sqlite3"),
        "NOTIFY_CLIENT_ID": "test-client",
        "NOTIFY_CLIENT_SECRET": "test-client-secret",
        "WTF_CSRF_ENABLED": False,
    }
    config.update(overrides)
    return config


def init_database(app: Flask) -> None:
    with app.app_context():
        import notify_site.models  # noqa: F401  (register the tables)

        if app.config["RELAY_ENABLED"]:
            import notify_site.relay.models  # noqa: F401

        db.create_all()


@pytest.fixture
def app_config(tmp_path) -> dict:
    """Override in a test module (or parametrize) to change the app's configuration."""
    return make_test_config(tmp_path)


@pytest.fixture
def app(app_config) -> Iterator[Flask]:
    app = create_app(app_config)
    init_database(app)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class LiveServer:
    """The app served over real HTTP on a free loopback port, in a thread."""

    def __init__(self, app: Flask, host: str = "127.0.0.1") -> None:
        self.app = app
        self._server = make_server(host, 0, app, threaded=True)
        self.port = self._server.server_port
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> LiveServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._server.server_close()
