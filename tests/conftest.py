"""Fixtures in the Flask tutorial's style: ``app``, ``client``, ``runner``, plus a live server.

Each ``app`` gets a fresh database, fresh secrets and a fresh key ring. The database is a
SQLite file in the test's own directory, or, on the PostgreSQL pass (`make test-postgres`:
``NOTIFY_SITE_TEST_ALL_ON_POSTGRES=1`` with ``NOTIFY_SITE_TEST_DATABASE_URL``), a fresh schema
of that database, dropped after the test. The tests in tests/postgres/ get such schemas on
either pass (:class:`~tests.pg_schemas.PostgresSchemas`).
"""

from __future__ import annotations

import ast
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask import Flask

from notify_site import create_app
from notify_site.extensions import db
from notify_site.worker import BackgroundWorker
from tests.factories import create_user, login
from tests.pg_schemas import ALL_ON_POSTGRES, PG_URL, PostgresSchemas, SchemaPool, tables_script
from tests.servers import LiveServer, RequestLog

# CPython before 3.12 keeps ast.parse's recursion bookkeeping in one place per interpreter, not
# per call: when two threads parse at once (one of them switched out mid-parse, say by a garbage
# collection running a finalizer), one fails with "SystemError: AST constructor recursion depth
# mismatch". Hypothesis parses a library's source when it first describes a lambda of it (the
# LINE webhook fuzz test failed so in CI while the live relay's threads ran), and inspect parses
# builtins' signatures: in the tests, one parse at a time.
if sys.version_info < (3, 12):
    _parse_lock = threading.RLock()
    _parse_alone = ast.parse

    def _parse_one_at_a_time(*args, **kwargs):
        with _parse_lock:
            return _parse_alone(*args, **kwargs)

    ast.parse = _parse_one_at_a_time

# pytest imports this file as "conftest"; test modules import it as "tests.conftest". Make
# both names one module, so that they share the schema of the running test (below).
sys.modules.setdefault("tests.conftest", sys.modules[__name__])

# pytester runs small test files in a pytest of their own (tests/unit/test_http_guard.py).
pytest_plugins = ["pytester"]


def pytest_configure(config):
    if ALL_ON_POSTGRES and not PG_URL:
        raise pytest.UsageError(
            "NOTIFY_SITE_TEST_ALL_ON_POSTGRES=1 needs NOTIFY_SITE_TEST_DATABASE_URL"
        )


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


@pytest.fixture
def app_config(request, tmp_path) -> Iterator[dict]:
    """Override in a test module (or parametrize) to change the app's configuration.

    Parametrised by :data:`~tests.pg_schemas.ON_POSTGRES_TOO`, the "postgresql" run gets a
    fresh schema of the PostgreSQL test database, dropped afterwards.
    """
    if getattr(request, "param", "default") != "postgresql":
        yield make_test_config(tmp_path)
        return
    schemas = PostgresSchemas(PG_URL)
    try:
        yield make_test_config(tmp_path, DATABASE_URL=schemas.new_url())
    finally:
        schemas.drop_all()


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


@pytest.fixture
def alice(app) -> int:
    """The id of the site's first account, "alice" (an admin, as every first account is)."""
    with app.app_context():
        return create_user("alice").id


@pytest.fixture
def signed_in(client, alice):
    """The test client, signed in as alice through the sign-in form."""
    login(client)
    return client


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
            # Live tests send hundreds of notifications to sandbox groups (5 units each): the
            # sandbox's monthly quota (issue 15) has tests of its own and must not bite here.
            RELAY_SANDBOX_MONTHLY_QUOTA=10**9,
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

    def stop(self) -> None:
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


@pytest.fixture
def in_process_worker(live) -> Iterator[BackgroundWorker]:
    """A delivery worker thread beside the live site, as `flask serve` runs one.

    Tests without it deliver by hand (``Worker(app).run_until_idle()``) or play the worker
    themselves, so they know exactly which calls were made.
    """
    worker = BackgroundWorker(live.app, poll_interval=0.05).start()
    yield worker
    worker.stop()


@pytest.fixture
def fast_accepts_taken(monkeypatch) -> list[bool]:
    """Whether each accept the app tried before Flask took the fast path (in order): True when
    notify_site/services/fast_accept.py answered, False when it left the request to Flask."""
    from notify_site.services.fast_accept import FastAccept

    taken: list[bool] = []
    real = FastAccept.accept

    def spy(self, *args, **kwargs):
        result = real(self, *args, **kwargs)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(FastAccept, "accept", spy)
    return taken
