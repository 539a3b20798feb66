"""PostgreSQL tests: they run when NOTIFY_SITE_TEST_DATABASE_URL is set (CI sets it).

When it is set but the server does not answer, they fail: a skipped database test would hide a
broken CI machine. Each test gets its own schema, dropped afterwards.

Tests marked ``slow`` (the scale and restart runs: minutes of worker processes) run only on
the PostgreSQL pass, `make test-postgres` (NOTIFY_SITE_TEST_ALL_ON_POSTGRES=1).
"""

from __future__ import annotations

import pytest

from tests.conftest import make_test_config
from tests.pg_schemas import ALL_ON_POSTGRES, PG_URL, PostgresSchemas


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: minutes long; runs only on the PostgreSQL pass (make test-postgres)"
    )


def pytest_collection_modifyitems(config, items):
    skip_all = pytest.mark.skip(reason="NOTIFY_SITE_TEST_DATABASE_URL is not set")
    skip_slow = pytest.mark.skip(reason="slow: runs on the PostgreSQL pass (make test-postgres)")
    for item in items:
        if "tests/postgres/" not in str(item.fspath):
            continue
        if not PG_URL:
            item.add_marker(skip_all)
        elif not ALL_ON_POSTGRES and item.get_closest_marker("slow"):
            item.add_marker(skip_slow)


@pytest.fixture
def pg_url():
    """A URL whose connections use a fresh, private, empty schema."""
    schemas = PostgresSchemas(PG_URL)
    try:
        yield schemas.new_url()
    finally:
        schemas.drop_all()


@pytest.fixture
def app_config(tmp_path, pg_url):
    return make_test_config(tmp_path, DATABASE_URL=pg_url)
