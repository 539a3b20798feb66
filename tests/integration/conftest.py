"""Integration fixtures: the site and the relay served over real HTTP on a loopback port.

The site is reached at http://127.0.0.1:PORT and the relay at http://localhost:PORT/relay, so
that browser and cookie rules see them as two different sites, as the site and LINE were.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

from notify_site import create_app
from tests.conftest import init_database, make_test_config


class RequestLog:
    """WSGI middleware recording each request's method and path (to count calls)."""

    def __init__(self, app) -> None:
        self.app = app
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self._lock:
            self.requests.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")))
        return self.app(environ, start_response)

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return sum(1 for m, p in self.requests if m == method and p == path)


class Live:
    """A running server: ``site`` and ``relay`` base URLs, the Flask ``app``, the request log."""

    def __init__(self, tmp_path, **overrides) -> None:
        self._server = make_server("127.0.0.1", 0, lambda environ, start: [], threaded=True)
        port = self._server.server_port
        self.site = f"http://127.0.0.1:{port}"
        self.relay = f"http://localhost:{port}/relay"
        config = make_test_config(
            tmp_path,
            NOTIFY_BOT_ORIGIN=self.relay,
            NOTIFY_API_ORIGIN=self.relay,
            NOTIFY_REDIRECT_URI=f"{self.site}/callback",
            WTF_CSRF_ENABLED=True,
            NOTIFY_CLIENT_ID=None,
            NOTIFY_CLIENT_SECRET=None,
        )
        config.update(overrides)
        # As `make run` does: set the database up and register with the relay, then serve.
        setup = create_app(config)
        init_database(setup)
        with setup.app_context():
            from notify_site.extensions import db
            from notify_site.relay.clients import register_client

            config["NOTIFY_CLIENT_ID"], config["NOTIFY_CLIENT_SECRET"] = register_client(
                "notify_site", config["NOTIFY_REDIRECT_URI"]
            )
            db.engine.dispose()
        self.app = create_app(config)
        self.log = RequestLog(self.app.wsgi_app)
        self.app.wsgi_app = self.log
        self._server.app = self.app
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._server.server_close()


@pytest.fixture
def live_overrides() -> dict:
    """Override in a module to change the live app's configuration."""
    return {}


@pytest.fixture
def live(tmp_path, live_overrides) -> Iterator[Live]:
    server = Live(tmp_path, **live_overrides)
    yield server
    server.stop()
