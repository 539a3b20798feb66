"""Fixtures in the Flask tutorial's style: ``app``, ``client``, ``runner``, plus a live server.

Each ``app`` gets a fresh SQLite file (or a fresh PostgreSQL schema when
``NOTIFY_SITE_TEST_DATABASE_URL`` is set), fresh secrets and a fresh key ring.
"""

from __future__ import annotations

import json
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
    """A WSGI app served over real HTTP on a free loopback port, in a thread.

    The port is bound first, so a caller can build an app whose configuration names its own
    URL, then hand it over with :meth:`start`.
    """

    def __init__(self, app: Flask | None = None, host: str = "127.0.0.1") -> None:
        self.app = app
        self._server = make_server(host, 0, lambda environ, start_response: [], threaded=True)
        self.port = self._server.server_port
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self, app=None) -> LiveServer:
        self._server.app = app or self.app
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._server.server_close()


class RequestLog:
    """WSGI middleware recording each request's method and path (to count calls).

    :meth:`fail_next` makes the next requests to a path answer with an error status instead
    of reaching the app, the way a failing upstream would.
    """

    def __init__(self, app) -> None:
        self.app = app
        self.requests: list[tuple[str, str]] = []
        self._failures: dict[str, list[int]] = {}
        self._lock = threading.Lock()

    def fail_next(self, path: str, *statuses: int) -> None:
        with self._lock:
            self._failures.setdefault(path, []).extend(statuses)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        with self._lock:
            self.requests.append((environ["REQUEST_METHOD"], path))
            pending = self._failures.get(path)
            status = pending.pop(0) if pending else None
        if status is not None:
            body = json.dumps({"status": status, "message": "injected failure"}).encode()
            start_response(
                f"{status} Injected",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        return self.app(environ, start_response)

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return sum(1 for m, p in self.requests if m == method and p == path)


class Live:
    """The site and its relay over real HTTP, set up as `make run` does.

    The site is at http://127.0.0.1:PORT and the relay at http://localhost:PORT/relay, so that
    browsers and cookie rules see two different sites, as the site and LINE were. ``log``
    counts the requests each path received.
    """

    def __init__(self, tmp_path, **overrides) -> None:
        self._server = LiveServer()
        self.site = f"http://127.0.0.1:{self._server.port}"
        self.relay = f"http://localhost:{self._server.port}/relay"
        config = make_test_config(
            tmp_path,
            NOTIFY_BOT_ORIGIN=self.relay,
            NOTIFY_API_ORIGIN=self.relay,
            NOTIFY_REDIRECT_URI=f"{self.site}/callback",
            WTF_CSRF_ENABLED=True,
        )
        config.update(overrides)
        # As `make run` does: set the database up and register with the relay, then serve.
        setup = create_app(config)
        init_database(setup)
        with setup.app_context():
            from notify_site.relay.clients import register_client

            config["NOTIFY_CLIENT_ID"], config["NOTIFY_CLIENT_SECRET"] = register_client(
                "notify_site", config["NOTIFY_REDIRECT_URI"]
            )
            db.engine.dispose()
        self.app = create_app(config)
        self.log = RequestLog(self.app.wsgi_app)
        self.app.wsgi_app = self.log
        self._server.start(self.app)
        self.worker = None
        if self.app.config["WORKER_IN_PROCESS"]:
            from notify_site.worker import BackgroundWorker

            self.worker = BackgroundWorker(self.app, poll_interval=0.05).start()

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self._server.stop()
        with self.app.app_context():
            db.engine.dispose()


@pytest.fixture
def live_overrides() -> dict:
    """Override in a module to change the live app's configuration."""
    return {}


@pytest.fixture
def live(tmp_path, live_overrides) -> Iterator[Live]:
    server = Live(tmp_path, **live_overrides)
    yield server
    server.stop()
