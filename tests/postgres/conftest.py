"""PostgreSQL tests: they run when NOTIFY_SITE_TEST_DATABASE_URL is set (CI sets it).

When it is set but the server does not answer, they fail: a skipped database test would hide a
broken CI machine. Each test gets its own schema, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa

from tests.conftest import make_test_config

PG_URL = os.environ.get("NOTIFY_SITE_TEST_DATABASE_URL")


def pytest_collection_modifyitems(config, items):
    if PG_URL:
        return
    skip = pytest.mark.skip(reason="NOTIFY_SITE_TEST_DATABASE_URL is not set")
    for item in items:
        if "tests/postgres/" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture
def pg_url():
    """A URL whose connections use a fresh, private schema."""
    engine = sa.create_engine(PG_URL)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with engine.begin() as connection:  # fails loudly when the server is down
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{separator}options=-csearch_path%3D{schema}"
    with engine.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def app_config(tmp_path, pg_url):
    return make_test_config(tmp_path, DATABASE_URL=pg_url)
