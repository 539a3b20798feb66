"""Housekeeping of old rows (issue 20): Idempotency-Key records expire after 24 hours, and
with NOTIFICATION_RETENTION_DAYS finished notifications older than that are deleted with
their delivery attempts; pending ones never are. Off by default."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from notify_site import create_app
from notify_site.config import ConfigError
from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import DeliveryAttempt, IdempotencyRecord, Notification
from notify_site.services import housekeeping, idempotency
from notify_site.worker import Worker
from tests.conftest import make_test_config
from tests.factories import create_api_key, create_connection, create_notification, create_user


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _record(api_key_id: int, key: str, age: timedelta) -> None:
    db.session.add(
        IdempotencyRecord(
            api_key_id=api_key_id,
            key=key,
            request_hash="h",
            status_code=202,
            response_json="{}",
            created_at=utcnow() - age,
        )
    )
    db.session.commit()


def test_an_idempotency_key_is_replayed_for_a_day_then_free(app):
    with app.app_context():
        api_key, _ = create_api_key(create_user("alice"), "k")
        _record(api_key.id, "fresh", timedelta(hours=23))
        _record(api_key.id, "stale", timedelta(hours=25))
        assert idempotency.stored_answer(api_key, "fresh", "h").replayed
        assert idempotency.stored_answer(api_key, "stale", "h") is None
        # The key is free again: a new request under it runs and is stored.
        answer = idempotency.execute(api_key, "stale", "other", lambda: (202, '{"new": 1}'))
        assert not answer.replayed
        assert idempotency.stored_answer(api_key, "stale", "other").body == '{"new": 1}'


def test_old_rows_are_purged_and_pending_ones_kept(app):
    now = utcnow()
    with app.app_context():
        alice = create_user("alice")
        api_key, _ = create_api_key(alice, "k")
        ops = create_connection(alice, label="Ops")
        old = create_notification(
            ops, created=now - timedelta(days=40), finished=now - timedelta(days=40)
        )
        db.session.add(
            DeliveryAttempt(
                notification_id=old.id, outcome="delivered", started_at=now - timedelta(days=40)
            )
        )
        recent = create_notification(
            ops, created=now - timedelta(days=2), finished=now - timedelta(days=2)
        )
        stuck = create_notification(ops, status="queued", created=now - timedelta(days=60))
        _record(api_key.id, "stale", timedelta(hours=30))
        _record(api_key.id, "fresh", timedelta(hours=1))
        ids = {old.id, recent.id, stuck.id}
        old_id = old.id

        kept_all = housekeeping.purge(None)  # the default: notifications are kept
        assert kept_all == housekeeping.Purged(notifications=0, idempotency_records=1)
        assert _count(Notification) == 3

        purged = housekeeping.purge(30)
        assert purged.notifications == 1
        left = set(db.session.scalars(select(Notification.id)))
        assert left == ids - {old_id}
        assert _count(DeliveryAttempt) == 0  # the old row's attempts went with it
        assert _count(IdempotencyRecord) == 1


def test_the_worker_runs_housekeeping(tmp_path):
    app = create_app(make_test_config(tmp_path, NOTIFICATION_RETENTION_DAYS=7))
    from tests.conftest import init_database

    init_database(app)
    now = utcnow()
    with app.app_context():
        ops = create_connection(create_user("alice"), label="Ops")
        create_notification(ops, created=now - timedelta(days=9), finished=now - timedelta(days=8))
    Worker(app).run_until_idle()
    with app.app_context():
        assert _count(Notification) == 0
        db.engine.dispose()


@pytest.mark.parametrize("days", [-1, "ninety", 1.5])
def test_a_retention_that_is_no_number_of_days_stops_the_start(tmp_path, days):
    with pytest.raises(ConfigError, match="NOTIFICATION_RETENTION_DAYS"):
        create_app(make_test_config(tmp_path, NOTIFICATION_RETENTION_DAYS=days))
