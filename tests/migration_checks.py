"""The Alembic migrations against the models, and the stored text codes' backfill, on any
database (SQLite in tests/unit/test_migrations.py, PostgreSQL in
tests/postgres/test_postgres.py)."""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

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


# Texts rows held before the stored text codes, and the code and parameters each one gets.
OLD_ERRORS = {
    "connection revoked": ("connection_revoked", None),
    "gave up after 8 attempts: could not connect to the Notify server at "
    "http://n:1/api/notify (ConnectionError: refused)": (
        "gave_up",
        {
            "count": 8,
            "reason": {
                "code": "no_connection",
                "params": {"url": "http://n:1/api/notify", "detail": "ConnectionError: refused"},
            },
        },
    ),
    "gave up after 3 attempts: no answer recorded: the worker stopped during the call": (
        "gave_up",
        {"count": 3, "reason": {"code": "no_answer_recorded", "params": {}}},
    ),
    "gave up after 3 attempts: Internal Server Error": (
        "gave_up",
        {"count": 3, "reason": "Internal Server Error"},
    ),
    "Invalid sticker": (None, None),  # a server's words keep no code
}


def assert_old_texts_get_their_codes(app) -> None:
    """The stored text codes migration gives the rows already there the code of their English."""
    stamp = "2026-11-01 00:00:00"
    users = sa.table(
        "users",
        sa.column("id", sa.Integer),
        sa.column("username"),
        sa.column("password_hash"),
        sa.column("is_admin", sa.Boolean),
        sa.column("created_at"),
        sa.column("session_epoch"),
    )
    connections = sa.table(
        "connections",
        *(sa.column(name) for name in ("id", "owner_id", "label", "token_ciphertext", "status")),
        *(sa.column(name) for name in ("status_detail", "created_at", "updated_at")),
    )
    notifications = sa.table(
        "notifications",
        *(sa.column(name) for name in ("id", "owner_id", "connection_id", "message", "status")),
        sa.column("notification_disabled", sa.Boolean),
        *(sa.column(name) for name in ("attempts", "last_error", "next_attempt_at")),
        *(sa.column(name) for name in ("created_at", "updated_at")),
    )
    attempts = sa.table(
        "delivery_attempts",
        *(sa.column(name) for name in ("notification_id", "outcome", "error")),
        *(sa.column(name) for name in ("started_at", "finished_at")),
    )
    with app.app_context():
        upgrade(revision="3ddb9a6b85b2")  # the one before the codes
        with db.engine.begin() as connection:
            connection.execute(
                users.insert().values(
                    id=1,
                    username="alice",
                    password_hash="x",
                    is_admin=False,
                    created_at=stamp,
                    session_epoch="e",
                )
            )
            for connection_id, detail, status in (
                (1, "Revoked on this site.", "revoked"),
                (2, None, "active"),
            ):
                connection.execute(
                    connections.insert().values(
                        id=connection_id,
                        owner_id=1,
                        label=f"chat {connection_id}",
                        token_ciphertext="",
                        status=status,
                        status_detail=detail,
                        created_at=stamp,
                        updated_at=stamp,
                    )
                )
            for notification_id, error in enumerate([*OLD_ERRORS, None], start=1):
                connection.execute(
                    notifications.insert().values(
                        id=notification_id,
                        owner_id=1,
                        connection_id=1,
                        message="hi",
                        status="failed",
                        notification_disabled=False,
                        attempts=1,
                        last_error=error,
                        next_attempt_at=stamp,
                        created_at=stamp,
                        updated_at=stamp,
                    )
                )
                connection.execute(
                    attempts.insert().values(
                        notification_id=notification_id,
                        outcome="failed",
                        error=error,
                        started_at=stamp,
                        finished_at=stamp,
                    )
                )
        upgrade()
        with db.engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT last_error, last_error_code, last_error_params FROM notifications"
                    " ORDER BY id"
                )
            ).all()
            tried = connection.execute(
                text("SELECT error, error_code, error_params FROM delivery_attempts ORDER BY id")
            ).all()
            details = connection.execute(
                text("SELECT status_detail_code, status_detail_params FROM connections ORDER BY id")
            ).all()

    def decoded(params):
        return json.loads(params) if isinstance(params, str) else params

    expected = [(error, *OLD_ERRORS[error]) for error in OLD_ERRORS] + [(None, None, None)]
    assert [(t, code, decoded(params)) for t, code, params in rows] == expected
    assert [(t, code, decoded(params)) for t, code, params in tried] == expected
    assert [(code, decoded(params)) for code, params in details] == [
        ("revoked_here", None),
        (None, None),
    ]
