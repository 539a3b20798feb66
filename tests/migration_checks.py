"""The Alembic migrations against the models, on any database (SQLite in
tests/unit/test_migrations.py, PostgreSQL in tests/postgres/test_postgres.py)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from notify_site.extensions import db


def assert_migrations_match_models(app) -> None:
    """Upgrading to the head gives exactly the models' tables; downgrading removes them all."""
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
        tables = set(inspect(db.engine).get_table_names())
        assert {"users", "connections", "oauth_states"} <= tables
        assert any(name.startswith("relay_") for name in tables)
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
