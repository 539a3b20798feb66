"""Fixtures in the Flask tutorial's style: ``app``, ``client``, ``runner``, plus a live server.

Each ``app`` gets a fresh database, fresh secrets and a fresh key ring. The database is a
SQLite file in the test's own directory, or, on the PostgreSQL pass (`make test-postgres`:
``NOTIFY_SITE_TEST_ALL_ON_POSTGRES=1`` with ``NOTIFY_SITE_TEST_DATABASE_URL``), a fresh schema
of that database, dropped after the test. The tests in tests/postgres/ get such schemas on
either pass (:class:`PostgresSchemas`).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask import Flask
from sqlalchemy.schema import CreateIndex, CreateTable
from werkzeug.serving import make_server

from notify_site import create_app
from notify_site.extensions import db

# pytest imports this file as "conftest"; test modules import it as "tests.conftest". Make
# both names one module, so that they share the schema of the running test (below).
sys.modules.setdefault("tests.conftest", sys.modules[__name__])

PG_URL = os.environ.get("NOTIFY_SITE_TEST_DATABASE_URL")
ALL_ON_POSTGRES = os.environ.get("NOTIFY_SITE_TEST_ALL_ON_POSTGRES") == "1"


def pytest_configure(config):
    if ALL_ON_POSTGRES and not PG_URL:
        raise pytest.UsageError(
            "NOTIFY_SITE_TEST_ALL_ON_POSTGRES=1 needs NOTIFY_SITE_TEST_DATABASE_URL"
        )


_admin_engine: sa.Engine | None = None


def admin_engine() -> sa.Engine:
    """One engine on the test database for creating and dropping schemas.

    ``pool_pre_ping``: it outlives a server restart (tests/postgres/test_restart_*.py).
    """
    global _admin_engine
    if _admin_engine is None:
        _admin_engine = sa.create_engine(
            PG_URL, pool_pre_ping=True, connect_args={"application_name": "notify_site_tests"}
        )
    return _admin_engine


def schema_url(base_url: str, schema: str) -> str:
    """``base_url`` with every connection placed in ``schema`` and named after it.

    The name (``application_name``) lets :meth:`PostgresSchemas.drop_all` find and end every
    connection still open on the schema, including those of worker subprocesses.
    """
    separator = "&" if "?" in base_url else "?"
    options = quote(f"-csearch_path={schema}")
    return f"{base_url}{separator}options={options}&application_name={schema}"


class PostgresSchemas:
    """Fresh, empty schemas in the test database for one test; :meth:`drop_all` removes them."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.schemas: list[str] = []
        self._shared: str | None = None

    def new_url(self) -> str:
        """A URL whose connections use a schema of their own, created now (fails loudly when
        the server is down: a skipped database test would hide a broken machine)."""
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with admin_engine().begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        self.schemas.append(schema)
        return schema_url(self.base_url, schema)

    def shared_url(self) -> str:
        """The schema every app of this test shares (as they would share one SQLite file)."""
        if self._shared is None:
            self._shared = self.new_url()
        return self._shared

    def drop_all(self) -> None:
        for schema in self.schemas:
            with admin_engine().begin() as connection:
                # Connections left open (an app not disposed, a killed worker's) would hold
                # locks the DROP waits for: end them first.
                connection.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
                        " WHERE application_name = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": schema},
                )
                connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        self.schemas.clear()
        self._shared = None


# Set for each test on the PostgreSQL pass by the autouse fixture below.
_test_schemas: PostgresSchemas | None = None


@pytest.fixture(autouse=True)
def _database_per_test() -> Iterator[None]:
    """On the PostgreSQL pass, give this test's apps a fresh schema and drop it afterwards.

    The schema is created only when a test first asks for a configuration, so the many tests
    that need no database pay nothing.
    """
    global _test_schemas
    if not ALL_ON_POSTGRES:
        yield
        return
    _test_schemas = PostgresSchemas(PG_URL)
    try:
        yield
    finally:
        schemas, _test_schemas = _test_schemas, None
        schemas.drop_all()


def database_url_for_test(instance: Path) -> str:
    """Where a test app keeps its data: this test's schema on the PostgreSQL pass, else SQLite."""
    if ALL_ON_POSTGRES:
        if _test_schemas is None:
            raise RuntimeError("a test database was asked for outside a test")
        return _test_schemas.shared_url()
    return "sqlite:///" + str(instance / "test.sqlite3")


def make_test_config(tmp_path, **overrides) -> dict:
    """A complete configuration for one test app; nothing read from the real instance/."""
    instance = tmp_path / "instance"
    instance.mkdir(exist_ok=True)
    config = {
        "TESTING": True,
        "INSTANCE_PATH": str(instance),
        "SECRET_KEY": "test-secret-key",
        "TOKEN_KEYS": ["ktest1:" + Fernet.generate_key().decode()],
        "DATABASE_URL": overrides.get("DATABASE_URL") or database_url_for_test(instance),
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

        if db.engine.dialect.name == "postgresql" and not sa.inspect(db.engine).get_table_names():
            create_tables_at_once(db.engine)
        else:
            db.create_all()


_ddl_scripts: dict[tuple[str, ...], str] = {}


def create_tables_at_once(engine: sa.Engine) -> None:
    """``db.create_all()`` on an empty PostgreSQL schema, as one script in one round trip.

    The PostgreSQL pass makes a schema per test; ``create_all`` checks and creates each table
    and index with a statement of its own, which cost more than many a test.
    """
    tables = db.metadata.sorted_tables
    key = tuple(table.name for table in tables)
    if key not in _ddl_scripts:
        statements = []
        for table in tables:
            statements.append(str(CreateTable(table).compile(dialect=engine.dialect)))
            statements.extend(
                str(CreateIndex(index).compile(dialect=engine.dialect)) for index in table.indexes
            )
        _ddl_scripts[key] = ";\n".join(statements)
    with engine.begin() as connection:
        connection.exec_driver_sql(_ddl_scripts[key])


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
