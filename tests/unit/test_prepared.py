"""Statements run on the Session's DB-API cursor (notify_site/prepared.py) write exactly what
SQLAlchemy's own execution writes, inside the Session's transaction, and engine listeners
still hear of them.

On SQLite the stored text is compared: a datetime bound by the driver's adapter instead of
SQLAlchemy's SQLite type reads back the same but is stored as other text
(``2026-11-20 03:00:00`` instead of ``2026-11-20 03:00:00.000000``), which reorders rows in
an ``ORDER BY`` (it reordered the relay's pushes once).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import String, bindparam, cast, event, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from notify_site.extensions import db
from notify_site.models import DeliveryAttempt, Notification, NotificationStatus
from notify_site.outbox import Lease
from notify_site.prepared import PreparedCache, session_cursor
from tests.factories import create_connection, create_notification, create_user

#: A due time on a whole second: the case where the driver's text and SQLAlchemy's differ.
WHOLE_SECOND = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
_notifications = Notification.__table__
LEASE = Lease(Notification.id, Notification.lease_token, Notification.lease_expires_at)


@pytest.fixture
def two_rows(app):
    """Two identical queued rows held under the same lease token: (ids, token)."""
    with app.app_context():
        connection = create_connection(create_user())
        rows = [
            create_notification(
                connection, status=NotificationStatus.QUEUED, lease_expires=WHOLE_SECOND
            )
            for _ in range(2)
        ]
        token = rows[0].lease_token
        for row in rows[1:]:
            row.lease_token = token
        db.session.commit()
        return [row.id for row in rows], token


def stored(ids: list[int]) -> list[tuple]:
    """The rows' columns as the database keeps them (text), in id order."""
    return [
        tuple(row)
        for row in db.session.execute(
            select(
                cast(_notifications.c.next_attempt_at, String),
                cast(_notifications.c.status, String),
                _notifications.c.attempts,
                _notifications.c.lease_token,
            )
            .where(_notifications.c.id.in_(ids))
            .order_by(_notifications.c.id)
        )
    ]


def test_a_prepared_update_stores_what_sqlalchemy_stores(app, two_rows):
    (prepared_id, orm_id), token = two_rows
    values = {"next_attempt_at": WHOLE_SECOND, "status": NotificationStatus.QUEUED}
    with app.app_context():
        # The prepared path: the lease's fenced finish, with an increment (a literal 1).
        assert LEASE.finish(prepared_id, token, values, increment=("attempts",))
        # SQLAlchemy's own execution of the same change.
        db.session.execute(
            update(_notifications)
            .where(_notifications.c.id == orm_id)
            .values(
                **values,
                attempts=_notifications.c.attempts + 1,
                lease_token=None,
                lease_expires_at=None,
            )
        )
        db.session.commit()
        prepared_row, orm_row = stored([prepared_id, orm_id])
        assert prepared_row == orm_row
        assert prepared_row[2] == 2  # attempts went from 1 to 2
        assert prepared_row[3] is None  # the lease let go


def test_a_refused_fence_writes_nothing_and_says_so(app, two_rows):
    (row_id, _), _token = two_rows
    with app.app_context():
        before = stored([row_id])
        assert not LEASE.finish(row_id, "another-token", {"attempts": 9})
        db.session.commit()
        assert stored([row_id]) == before


def test_it_runs_in_the_sessions_transaction_after_its_pending_changes(app, two_rows):
    (row_id, _), token = two_rows
    with app.app_context():
        # A row only added to the Session: flushed before the prepared UPDATE, as
        # session.execute would flush it, so the UPDATE finds it.
        template = db.session.get(Notification, row_id)
        pending = Notification(
            id=row_id + 100,
            owner_id=template.owner_id,
            connection_id=template.connection_id,
            message="added, not flushed",
            status=NotificationStatus.QUEUED,
            attempts=0,
            lease_token=token,
        )
        db.session.add(pending)
        assert LEASE.touch(row_id + 100, token, {"attempts": 5})
        db.session.rollback()  # both undone together: one transaction
        assert stored([row_id + 100]) == []

        db.session.add(pending)
        assert LEASE.touch(row_id + 100, token, {"attempts": 5})
        db.session.commit()
        assert stored([row_id + 100])[0][2] == 5


def test_engine_listeners_hear_of_prepared_statements(app, two_rows):
    (row_id, _), token = two_rows
    heard = []
    with app.app_context():
        engine = db.engine

        def listen(_connection, _cursor, statement, parameters, _context, _many) -> None:
            heard.append((statement.split()[0], len(parameters)))

        event.listen(engine, "before_cursor_execute", listen)
        try:
            assert LEASE.touch(row_id, token, {"attempts": 3})
            db.session.commit()
        finally:
            event.remove(engine, "before_cursor_execute", listen)
    assert ("UPDATE", 4) in heard  # attempts, updated_at (its onupdate), the key, the token


def test_an_update_gets_its_columns_onupdate_value(app, two_rows):
    (row_id, _), token = two_rows
    with app.app_context():
        before = db.session.get(Notification, row_id).updated_at
        db.session.rollback()
        assert LEASE.touch(row_id, token, {"attempts": 2})
        db.session.commit()
        assert db.session.get(Notification, row_id).updated_at > before


def test_a_row_read_back_is_what_sqlalchemys_result_gives(app, two_rows):
    (row_id, _), token = two_rows
    columns = _notifications.c
    read = select(columns.next_attempt_at, columns.status, columns.attempts, columns.lease_token)
    by_id = read.where(columns.id == bindparam("row"))
    returning = (
        update(_notifications)
        .where(columns.id == bindparam("row"))
        .values(attempts=columns.attempts + 1)
        .returning(columns.lease_expires_at, columns.attempts, columns.lease_token)
    )
    with app.app_context():
        expected = db.session.execute(by_id, {"row": row_id}).one()
        with session_cursor(db.session) as cursor:
            cache = PreparedCache()
            selected = cursor.row(
                cache.get("select", cursor.dialect, lambda: by_id), {"row": row_id}
            )
            updated = cursor.row(
                cache.get("update", cursor.dialect, lambda: returning), {"row": row_id}
            )
            missing = cursor.row(cache.get("select", cursor.dialect, lambda: by_id), {"row": -1})
        db.session.rollback()
        # Equal, and of the same types: a datetime with its zone, not SQLite's text.
        assert selected == tuple(expected)
        assert [type(value) for value in selected] == [type(value) for value in expected]
        assert updated == (WHOLE_SECOND, 2, token)
        assert updated[0].tzinfo is not None
        assert missing is None


def test_rows_read_back_are_what_sqlalchemys_result_gives(app, two_rows):
    columns = _notifications.c
    every = select(columns.id, columns.next_attempt_at, columns.status).order_by(columns.id)
    nothing = every.where(columns.id == bindparam("row"))
    with app.app_context():
        expected = [tuple(row) for row in db.session.execute(every)]
        with session_cursor(db.session) as cursor:
            cache = PreparedCache()
            found = cursor.rows(cache.get("every", cursor.dialect, lambda: every), {})
            none = cursor.rows(cache.get("nothing", cursor.dialect, lambda: nothing), {"row": -1})
        db.session.rollback()
    assert len(expected) == 2
    assert found == expected
    assert all(row[1].tzinfo is not None for row in found)  # SQLite's text made a datetime
    assert none == []


def test_the_cache_compiles_once_per_dialect(app):
    cache = PreparedCache()
    built = []

    def build():
        built.append(1)
        return update(_notifications).values(attempts=bindparam("n"))

    with app.app_context(), session_cursor(db.session) as cursor:
        first = cache.get("k", cursor.dialect, build)
        assert cache.get("k", cursor.dialect, build) is first
        db.session.rollback()
    assert built == [1]


def test_a_drivers_error_comes_out_as_sqlalchemys(app, two_rows):
    with app.app_context():
        values = {
            "notification_id": 10**9,
            "worker": "w",
            "lease_token": "t",
            "started_at": WHOLE_SECOND,
        }
        with session_cursor(db.session) as cursor:
            prepared = PreparedCache().get(
                "insert", cursor.dialect, lambda: insert(DeliveryAttempt.__table__), list(values)
            )
            with pytest.raises(IntegrityError):  # no such notification: the key refuses
                cursor.run(prepared, values)
        db.session.rollback()
        assert stored(two_rows[0])[0][2] == 1  # the session is usable again


def test_a_lost_connection_is_invalidated_and_the_next_one_works(app, two_rows):
    (row_id, _), token = two_rows
    with app.app_context():
        # The driver's connection goes away under the Session (a database restart, say).
        db.session.connection().connection.dbapi_connection.close()
        with pytest.raises(DBAPIError) as raised:
            LEASE.touch(row_id, token, {"attempts": 7})
        assert raised.value.connection_invalidated
        db.session.rollback()
        # The pool hands out a new connection, not the dead one.
        assert LEASE.touch(row_id, token, {"attempts": 7})
        db.session.commit()
        assert stored([row_id])[0][2] == 7
