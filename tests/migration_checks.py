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


# Ledger rows before the running totals (month, chat, token, person, units, state), and the
# totals the migration must give them.
OLD_LEDGER = (
    ("2026-11", 1, 1, 7, 5, "spent"),
    ("2026-11", 1, 1, 7, 5, "refunded"),
    ("2026-12", 1, 1, 7, 5, "reserved"),
    ("2026-12", 1, 2, 8, 3, "spent"),
    ("2026-12", 1, None, None, 1, "spent"),
    ("2026-12", 1, 2, 8, 2, "refunded"),
)
FILLED_TOTALS = {
    ("2026-11", "channel"): 5,
    ("2026-11", "person:7"): 5,
    ("2026-11", "token:1"): 5,
    ("2026-12", "channel"): 9,
    ("2026-12", "channel:reserved"): 5,
    ("2026-12", "person:7"): 5,
    ("2026-12", "person:8"): 3,
    ("2026-12", "token:1"): 5,
    ("2026-12", "token:2"): 3,
}


def assert_ledger_totals_are_filled(app, before: str) -> None:
    """The running totals migration (84158f795694) sums the ledger already there; ``before``
    is the revision it follows."""
    with app.app_context():
        upgrade(revision=before)
        with db.engine.begin() as connection:
            run = lambda sql, **values: connection.execute(text(sql), values)  # noqa: E731
            run(
                "INSERT INTO relay_clients (id, client_id, secret_hash, name, redirect_uri,"
                " created_at) VALUES (1, 'c', 'h', 'Svc', 'https://x/cb', '2026-11-01')"
            )
            run(
                "INSERT INTO relay_chats (id, kind, name, created_at)"
                " VALUES (1, 'GROUP', 'Family', '2026-11-01')"
            )
            for token_id in (1, 2):
                run(
                    "INSERT INTO relay_access_tokens (id, token_hash, client_pk, chat_id,"
                    " created_at) VALUES (:t, :h, 1, 1, '2026-11-01')",
                    t=token_id,
                    h=f"hash{token_id}",
                )
            for month, chat, token, person, units, state in OLD_LEDGER:
                run(
                    "INSERT INTO relay_line_usage (month, chat_id, token_pk, person_id, units,"
                    " state, created_at) VALUES (:m, :c, :t, :p, :u, :s, '2026-11-01')",
                    m=month,
                    c=chat,
                    t=token,
                    p=person,
                    u=units,
                    s=state,
                )
        upgrade()
        with db.engine.connect() as connection:
            found = connection.execute(
                text("SELECT month, subject, units FROM relay_line_totals")
            ).all()
    assert {(month, subject): units for month, subject, units in found} == FILLED_TOTALS
