"""PostgreSQL schemas for tests: each test's apps get a schema of their own in the database of
``NOTIFY_SITE_TEST_DATABASE_URL``, dropped afterwards (tests/conftest.py hands them out).
"""

from __future__ import annotations

import os
import queue
import threading
import time
import uuid
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex, CreateTable

from notify_site.extensions import db

PG_URL = os.environ.get("NOTIFY_SITE_TEST_DATABASE_URL")
ALL_ON_POSTGRES = os.environ.get("NOTIFY_SITE_TEST_ALL_ON_POSTGRES") == "1"

#: Run a test (or, as ``pytestmark``, a module) on the test's default database and again on a
#: fresh PostgreSQL schema when ``NOTIFY_SITE_TEST_DATABASE_URL`` is set (tests/conftest.py's
#: ``app_config`` reads the parameter). For code whose SQL differs between the two.
ON_POSTGRES_TOO = pytest.mark.parametrize(
    "app_config",
    [
        "default",
        pytest.param(
            "postgresql",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(not PG_URL, reason="NOTIFY_SITE_TEST_DATABASE_URL is not set"),
            ],
        ),
    ],
    indirect=True,
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
        drop_schema_on(connection, schema)


def drop_schema_on(connection: sa.Connection, schema: str) -> None:
    """Drop ``schema`` with what is in it, on ``connection`` (the benchmarks use it too).

    Connections left open (an app not disposed, a killed worker's) would hold locks the DROP
    waits for: those named after the schema (``application_name``) are ended first.
    """
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
