"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from flask_migrate import upgrade
from sqlalchemy import text

from notify_site import create_app
from notify_site.extensions import db
from tests.conftest import make_test_config
from tests.migration_checks import assert_migrations_match_models, assert_old_texts_get_their_codes


def test_migrations_match_models_on_sqlite(tmp_path):
    # SQLite even on the PostgreSQL pass: tests/postgres/test_postgres.py covers PostgreSQL.
    url = "sqlite:///" + str(tmp_path / "migrations.sqlite3")
    assert_migrations_match_models(create_app(make_test_config(tmp_path, DATABASE_URL=url)))


def test_existing_accounts_get_a_random_session_epoch_each(tmp_path):
    """The accounts migration fills users.session_epoch for the rows already there."""
    url = "sqlite:///" + str(tmp_path / "epochs.sqlite3")
    app = create_app(make_test_config(tmp_path, DATABASE_URL=url))
    with app.app_context():
        upgrade(revision="c4e1f0a9b7d3")
        with db.engine.begin() as connection:
            for name in ("alice", "bob"):
                connection.execute(
                    text(
                        "INSERT INTO users (username, password_hash, is_admin, created_at)"
                        " VALUES (:name, 'x', 0, '2026-11-01 00:00:00')"
                    ),
                    {"name": name},
                )
        upgrade()
        with db.engine.connect() as connection:
            epochs = connection.execute(text("SELECT session_epoch FROM users")).scalars().all()
            disabled = connection.execute(text("SELECT disabled_at FROM users")).scalars().all()
    assert len(epochs) == 2
    assert len(set(epochs)) == 2
    assert all(len(epoch) >= 20 for epoch in epochs)
    assert disabled == [None, None]


def test_existing_error_texts_get_their_codes(tmp_path):
    url = "sqlite:///" + str(tmp_path / "codes.sqlite3")
    assert_old_texts_get_their_codes(create_app(make_test_config(tmp_path, DATABASE_URL=url)))
