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
import queue
import sys
import threading
import time
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


def create_schema(schema: str, *, with_tables: bool = False) -> None:
    with admin_engine().begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        if with_tables:
            connection.execute(sa.text(f'SET LOCAL search_path TO "{schema}"'))
            connection.exec_driver_sql(tables_script(connection.dialect))


def drop_schema(schema: str) -> None:
    with admin_engine().begin() as connection:
        # Connections left open (an app not disposed, a killed worker's) would hold locks the
        # DROP waits for: end them first.
        connection.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
                " WHERE application_name = :name AND pid <> pg_backend_pid()"
            ),
            {"name": schema},
        )
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


def new_schema_name() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


class PostgresSchemas:
    """Fresh schemas in the test database for one test; :meth:`drop_all` removes them.

    With a :class:`SchemaPool` (the PostgreSQL pass), the schema the test's apps share comes
    with its tables already made, and dropping happens in the background.
    """

    def __init__(self, base_url: str, pool: SchemaPool | None = None) -> None:
        self.base_url = base_url
        self.pool = pool
        self.schemas: list[str] = []
        self._shared: str | None = None

    def new_url(self) -> str:
        """A URL whose connections use an empty schema of their own, created now (fails loudly
        when the server is down: a skipped database test would hide a broken machine)."""
        schema = new_schema_name()
        create_schema(schema)
        self.schemas.append(schema)
        return schema_url(self.base_url, schema)

    def shared_url(self) -> str:
        """The schema every app of this test shares (as they would share one SQLite file)."""
        if self._shared is None:
            if self.pool is None:
                self._shared = self.new_url()
            else:
                schema = self.pool.take()
                self.schemas.append(schema)
                self._shared = schema_url(self.base_url, schema)
        return self._shared

    def drop_all(self) -> None:
        for schema in self.schemas:
            if self.pool is None:
                drop_schema(schema)
            else:
                self.pool.discard(schema)
        self.schemas.clear()
        self._shared = None


class SchemaPool:
    """Schemas with every table, made one ahead in a background thread, and finished tests'
    schemas dropped in another: on the PostgreSQL pass no test waits for either (making and
    dropping ~30 tables and indexes is PostgreSQL's work, so it runs beside the tests).

    Both threads retry while the server is away (tests/postgres/test_restart_postgres.py).
    """

    def __init__(self) -> None:
        self._ready: queue.Queue[str] = queue.Queue(maxsize=1)
        self._doomed: queue.Queue[str | None] = queue.Queue()
        self._closing = threading.Event()
        self._builder = threading.Thread(target=self._build, name="schema-builder", daemon=True)
        self._dropper = threading.Thread(target=self._drop, name="schema-dropper", daemon=True)
        self._builder.start()
        self._dropper.start()

    def take(self) -> str:
        return self._ready.get(timeout=300)

    def discard(self, schema: str) -> None:
        self._doomed.put(schema)

    def close(self) -> None:
        """Stop building; drop every schema made (waits until they are gone)."""
        self._closing.set()
        self._builder.join(timeout=300)
        while not self._ready.empty():
            self._doomed.put(self._ready.get())
        self._doomed.put(None)
        self._dropper.join(timeout=600)

    def _build(self) -> None:
        while not self._closing.is_set():
            schema = new_schema_name()
            if not self._retrying(lambda s=schema: create_schema(s, with_tables=True)):
                continue
            while True:
                try:
                    self._ready.put(schema, timeout=0.2)
                    break
                except queue.Full:
                    if self._closing.is_set():
                        self._doomed.put(schema)
                        return

    def _drop(self) -> None:
        while (schema := self._doomed.get()) is not None:
            self._retrying(lambda s=schema: drop_schema(s))

    def _retrying(self, action, seconds: float = 120) -> bool:
        deadline = time.monotonic() + seconds
        while True:
            try:
                action()
                return True
            except sa.exc.OperationalError:
                if time.monotonic() > deadline or self._closing.is_set():
                    return False
                time.sleep(0.5)


# On the PostgreSQL pass: the pool (for the session) and the running test's schemas.
_schema_pool: SchemaPool | None = None
_test_schemas: PostgresSchemas | None = None


@pytest.fixture(scope="session", autouse=True)
def _postgres_schema_pool() -> Iterator[None]:
    global _schema_pool
    if not ALL_ON_POSTGRES:
        yield
        return
    _schema_pool = SchemaPool()
    try:
        yield
    finally:
        pool, _schema_pool = _schema_pool, None
        pool.close()


@pytest.fixture(autouse=True)
def _database_per_test(_postgres_schema_pool) -> Iterator[None]:
    """On the PostgreSQL pass, give this test's apps a fresh schema and drop it afterwards.

    The schema is taken only when a test first asks for a configuration, so the many tests
    that need no database use none.
    """
    global _test_schemas
    if not ALL_ON_POSTGRES:
        yield
        return
    _test_schemas = PostgresSchemas(PG_URL, _schema_pool)
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


#: One PBKDF2 round: the suite makes thousands of accounts, and scrypt costs ~0.2 s per hash or
#: check here. Production keeps scrypt (tests/unit/test_accounts.py holds it to that).
CHEAP_PASSWORD_HASH = "pbkdf2:sha256:1"


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
        "PASSWORD_HASH_METHOD": CHEAP_PASSWORD_HASH,
    }
    config.update(overrides)
    return config


def init_database(app: Flask) -> None:
    with app.app_context():
        import notify_site.models  # noqa: F401  (register the tables)

        if app.config["RELAY_ENABLED"]:
            import notify_site.relay.models  # noqa: F401

        if db.engine.dialect.name != "postgresql":
            db.create_all()
            return
        existing = set(sa.inspect(db.engine).get_table_names())
        if not existing:
            with db.engine.begin() as connection:
                connection.exec_driver_sql(tables_script(connection.dialect))
        elif not set(db.metadata.tables) <= existing:
            db.create_all()
        # else: a schema from the pool, made with every table already


_tables_scripts: dict[tuple[str, ...], str] = {}


def tables_script(dialect) -> str:
    """What ``db.create_all()`` does on an empty schema, as one script for one round trip.

    Every table the models (the site's and the relay's) define, with its indexes. The
    PostgreSQL pass makes a schema per test: one statement at a time, that costs more than
    many a test does.
    """
    import notify_site.models  # noqa: F401  (register the tables)
    import notify_site.relay.models  # noqa: F401

    tables = db.metadata.sorted_tables
    key = tuple(table.name for table in tables)
    if key not in _tables_scripts:
        statements = []
        for table in tables:
            statements.append(str(CreateTable(table).compile(dialect=dialect)))
            statements.extend(
                str(CreateIndex(index).compile(dialect=dialect)) for index in table.indexes
            )
        _tables_scripts[key] = ";\n".join(statements)
    return _tables_scripts[key]


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
