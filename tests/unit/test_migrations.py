"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from notify_site import create_app
from notify_site.extensions import db
from tests.conftest import make_test_config
from tests.migration_checks import (
    assert_ledger_totals_are_filled,
    assert_migrations_match_models,
    assert_old_texts_get_their_codes,
)


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


def revision_before(app, revision: str) -> str:
    """The revision a migration follows (read from the scripts: the chain may be re-ordered
    when branches merge)."""
    config = app.extensions["migrate"].migrate.get_config()
    return ScriptDirectory.from_config(config).get_revision(revision).down_revision


def test_the_shared_sandbox_chats_and_tokens_go_to_the_first_admin(tmp_path):
    """The My page migration (90498c7aeadb): what everyone shared becomes the first admin's,
    nothing delivered is lost, images get random public ids; a downgrade merges the chats
    that are now several people's back into one of each kind and name."""
    url = "sqlite:///" + str(tmp_path / "mypage.sqlite3")
    app = create_app(make_test_config(tmp_path, DATABASE_URL=url))
    with app.app_context():
        before = revision_before(app, "90498c7aeadb")
        upgrade(revision=before)
        with db.engine.begin() as connection:
            run = lambda sql, **values: connection.execute(text(sql), values)  # noqa: E731
            for name, admin, disabled in (
                ("user", 0, None),
                ("gone", 1, "2026-11-02 00:00:00"),
                ("boss", 1, None),
            ):
                run(
                    "INSERT INTO users (username, password_hash, is_admin, created_at,"
                    " session_epoch, disabled_at) VALUES (:n, 'x', :a, '2026-11-01', :n, :d)",
                    n=name,
                    a=admin,
                    d=disabled,
                )
            run(
                "INSERT INTO relay_clients (id, client_id, secret_hash, name, redirect_uri,"
                " created_at) VALUES (1, 'c', 'h', 'Svc', 'https://x/cb', '2026-11-01')"
            )
            for chat_id, kind, name in ((1, "USER", "Sandbox user"), (2, "GROUP", "Family")):
                run(
                    "INSERT INTO relay_chats (id, kind, name, created_at)"
                    " VALUES (:i, :k, :n, '2026-11-01')",
                    i=chat_id,
                    k=kind,
                    n=name,
                )
            run(
                "INSERT INTO relay_chats (id, kind, name, line_id, created_at)"
                " VALUES (3, 'GROUP', 'LINE group', 'C1', '2026-11-01')"
            )
            for token_id, chat_id in ((1, 2), (2, 3)):
                run(
                    "INSERT INTO relay_access_tokens (id, token_hash, client_pk, chat_id,"
                    " created_at) VALUES (:t, :h, 1, :c, '2026-11-01')",
                    t=token_id,
                    h=f"hash{token_id}",
                    c=chat_id,
                )
            for image_id in (1, 2):
                run(
                    "INSERT INTO relay_images (id, content_type, size, data, created_at)"
                    " VALUES (:i, 'image/png', 1, x'00', '2026-11-01')",
                    i=image_id,
                )
            run(
                "INSERT INTO relay_messages (chat_id, client_name, message, image_id,"
                " notification_disabled, created_at) VALUES (2, 'Svc', 'kept', 1, 0, '2026-11-01')"
            )
        upgrade()
        with db.engine.connect() as connection:
            rows = lambda sql: connection.execute(text(sql)).all()  # noqa: E731
            boss = connection.execute(text("SELECT id FROM users WHERE username='boss'")).scalar()
            assert rows("SELECT id, owner_id FROM relay_chats ORDER BY id") == [
                (1, boss),
                (2, boss),
                (3, None),
            ]
            assert rows("SELECT person_id FROM relay_access_tokens") == [(boss,), (boss,)]
            assert rows("SELECT chat_id, person_id FROM relay_chat_people") == [(3, boss)]
            # Rebuilding relay_images and relay_chats (SQLite's batch mode) cascades nothing.
            assert rows("SELECT chat_id, message, image_id FROM relay_messages") == [(2, "kept", 1)]
            public = [row[0] for row in rows("SELECT public_id FROM relay_images")]
            assert len(set(public)) == 2
            assert all(len(value) == 22 for value in public)
        # Another person's chats of the same names, and a personal token: a downgrade merges
        # the chats (their messages move to the oldest) and drops what the old schema cannot
        # hold.
        with db.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO relay_chats (id, kind, name, owner_id, created_at)"
                    " VALUES (4, 'GROUP', 'Family', 99, '2026-12-01')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO relay_messages (chat_id, client_name, message,"
                    " notification_disabled, created_at) VALUES (4, 'me', 'moved', 0, '2026-12-01')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO relay_access_tokens (token_hash, name, chat_id, person_id,"
                    " created_at) VALUES ('personal', 'cron', 4, 99, '2026-12-01')"
                )
            )
        downgrade(revision=before)
        with db.engine.connect() as connection:
            assert connection.execute(
                text("SELECT id FROM relay_chats ORDER BY id")
            ).scalars().all() == [1, 2, 3]
            assert connection.execute(
                text("SELECT chat_id, message, image_id FROM relay_messages ORDER BY id")
            ).all() == [(2, "kept", 1), (2, "moved", None)]
            # Foreign keys are enforced again on the connection the app goes on using.
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.execute(
                text("SELECT token_hash FROM relay_access_tokens ORDER BY id")
            ).scalars().all() == ["hash1", "hash2"]


def test_the_ledger_totals_start_from_the_ledger(tmp_path):
    url = "sqlite:///" + str(tmp_path / "totals.sqlite3")
    app = create_app(make_test_config(tmp_path, DATABASE_URL=url))
    with app.app_context():
        before = revision_before(app, "84158f795694")
    assert_ledger_totals_are_filled(app, before)
