"""Group commit (services/group_commit.py): the rows of concurrent requests in one process
share one transaction; each request is released with its row's id only after the commit; one
bad row never fails the others."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import IntegrityError

from notify_site.extensions import db
from notify_site.models import Notification
from notify_site.notify_content import check_content
from notify_site.services import group_commit, notifications
from notify_site.services.api_keys import AuthenticatedKey, KeyOwner
from notify_site.services.notifications import ResolvedConnection
from tests.factories import create_api_key, create_connection, create_user
from tests.unit.api.calls import auth


@pytest.fixture
def world(app):
    with app.app_context():
        alice = create_user("alice")
        ops = create_connection(alice, label="Ops")
        key_row, key = create_api_key(alice, "ci")
        return {
            "key": key,
            "key_id": key_row.id,
            "owner": alice.id,
            "connection": ResolvedConnection(ops.id, alice.id, "Ops", "active"),
        }


def row(world, message: str, connection_id: int | None = None) -> dict:
    connection = world["connection"]
    if connection_id is not None:
        connection = ResolvedConnection(connection_id, world["owner"], "Gone", "active")
    api_key = AuthenticatedKey(world["key_id"], KeyOwner(world["owner"], False), None)
    return notifications.queued_row(connection, check_content(message=message), api_key)


def test_a_batch_is_one_transaction_and_a_bad_row_fails_alone(app, world):
    with app.app_context():
        writer = group_commit.GroupCommitter(db.engine)
        batch = [
            group_commit._Row(
                group_commit.insert_job(notifications.INSERT_NOTIFICATION, row(world, "first"))
            ),
            # No such connection: the foreign key refuses this one row.
            group_commit._Row(
                group_commit.insert_job(
                    notifications.INSERT_NOTIFICATION, row(world, "bad", connection_id=999_999)
                )
            ),
            group_commit._Row(
                group_commit.insert_job(notifications.INSERT_NOTIFICATION, row(world, "third"))
            ),
        ]
        writer._write(batch)
        first, bad, third = (item.done for item in batch)
        with pytest.raises(IntegrityError):
            bad.result(timeout=0)
        messages = dict(db.session.execute(select(Notification.id, Notification.message)).all())
        assert messages == {first.result(timeout=0): "first", third.result(timeout=0): "third"}

        good = [
            group_commit._Row(
                group_commit.insert_job(notifications.INSERT_NOTIFICATION, row(world, f"m{n}"))
            )
            for n in range(5)
        ]
        writer._write(good)
        assert writer.batches == 3  # "first" and "third" alone, then the five together
        assert writer.rows == 7


def test_concurrent_api_posts_are_each_answered_after_their_row_is_committed(app, client, world):
    with app.app_context():
        url = db.engine.url
        # Used a moment ago (nothing to record): the posts take the fast path.
        from notify_site.services.api_keys import touch

        touch(AuthenticatedKey(world["key_id"], KeyOwner(world["owner"], False), None))
    outside = create_engine(url)  # another connection: sees only what was committed

    def post(n: int) -> int:
        answer = app.test_client().post(
            "/api/v1/notifications",
            json={"connection": "Ops", "message": f"message {n}"},
            headers=auth(world["key"]),
        )
        assert answer.status_code == 202, answer.get_data(as_text=True)
        (queued,) = answer.get_json()["notifications"]
        with outside.connect() as connection:
            committed = connection.execute(
                select(Notification.message).where(Notification.id == queued["id"])
            ).scalar()
        assert committed == f"message {n}"  # on disk before the 202
        return queued["id"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(post, range(40)))
    outside.dispose()
    assert len(set(ids)) == 40
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Notification)) == 40
        if db.engine.dialect.name == "postgresql":
            # Each row its own autocommitted INSERT (services/fast_accept.py): no writer.
            assert group_commit.EXTENSION not in app.extensions
            return
        writer = app.extensions[group_commit.EXTENSION][1]
        assert writer.rows == 40
        assert 1 <= writer.batches <= 40


def test_a_lone_row_does_not_wait_out_the_window(app, world):
    """The window is waited only once a commit was shared: with an hour's window, a lone
    request is still answered (its commit is not held for company)."""
    with app.app_context():
        writer = group_commit.GroupCommitter(db.engine, window=3600.0)
        first = writer.insert(notifications.INSERT_NOTIFICATION, row(world, "alone"))
        second = writer.insert(notifications.INSERT_NOTIFICATION, row(world, "alone again"))
        assert second > first
        assert writer.batches == 2


def test_a_job_sees_its_batch_transaction_and_a_failed_job_leaves_nothing(app, world):
    """A job writes through the connection it is given; when it raises, nothing it wrote
    stays, and the writer's next batch works on a fresh connection."""
    with app.app_context():
        writer = group_commit.GroupCommitter(db.engine)

        def insert_then_fail(connection):
            connection.execute(notifications.INSERT_NOTIFICATION, row(world, "half"))
            raise RuntimeError("the job failed after its insert")

        with pytest.raises(RuntimeError):
            writer.run(insert_then_fail)
        kept = writer.insert(notifications.INSERT_NOTIFICATION, row(world, "whole"))
        messages = db.session.execute(select(Notification.id, Notification.message)).all()
        assert [tuple(m) for m in messages] == [(kept, "whole")]
