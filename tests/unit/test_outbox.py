"""The outbox machinery both houses share (notify_site/outbox.py): the retry policy alone, and
the lease and fence over a real table (the site's notifications, as the site declares it)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import select

from notify_site.config import DEFAULTS
from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import Notification, NotificationStatus
from notify_site.outbox import RetryPolicy, new_token
from notify_site.services.notifications import NOTIFICATIONS
from tests.factories import create_connection, create_notification, create_user

LEASE = timedelta(seconds=60)


# --- RetryPolicy: pure --------------------------------------------------------------------


def test_each_house_reads_its_own_policy_from_its_settings():
    config = {
        **DEFAULTS,
        "RELAY_LINE_RETRY_BASE": 7,
        "RELAY_LINE_MAX_ATTEMPTS": 3,
        "RELAY_LINE_MAX_AGE_HOURS": 0.5,
    }
    assert RetryPolicy.from_config(config, "RELAY_LINE") == RetryPolicy(
        base_seconds=7, cap_seconds=900, max_attempts=3, max_age=timedelta(minutes=30)
    )
    assert RetryPolicy.from_config(config, "DELIVERY") == RetryPolicy(
        base_seconds=60, cap_seconds=900, max_attempts=8, max_age=timedelta(hours=24)
    )


def test_the_backoff_ceiling_doubles_with_each_attempt_up_to_the_cap():
    policy = RetryPolicy(base_seconds=10, cap_seconds=100)
    rng = random.Random(13)
    for attempt, ceiling in [(1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (9, 100)]:
        draws = [policy.backoff(attempt, rng) for _ in range(400)]
        assert all(0 <= d <= ceiling for d in draws)
        assert max(draws) > 0.9 * ceiling  # full jitter: the whole range is used


def test_retry_at_is_none_once_the_attempts_or_the_age_run_out():
    policy = RetryPolicy(base_seconds=10, max_attempts=3, max_age=timedelta(hours=1))
    now = utcnow()
    later = policy.retry_at(2, now, now, random.Random(1))
    assert now <= later <= now + timedelta(seconds=20)
    assert policy.retry_at(3, now, now) is None
    assert policy.retry_at(1, now - timedelta(hours=1), now) is None


# --- Lease and Outbox: over the notifications table -----------------------------------------


@pytest.fixture
def connection_id(app) -> int:
    with app.app_context():
        return create_connection(create_user("alice")).id


def add_notification(connection_id: int, **fields) -> int:
    return create_notification(connection_id, **fields).id


def row(notification_id: int) -> Notification:
    db.session.expire_all()
    return db.session.get(Notification, notification_id)


def test_due_is_waiting_due_and_not_under_a_live_lease(app, connection_id):
    now = utcnow()
    with app.app_context():
        due = add_notification(connection_id, status=NotificationStatus.QUEUED)
        later = add_notification(
            connection_id, status=NotificationStatus.QUEUED, next_attempt=now + LEASE
        )
        held = add_notification(
            connection_id, status=NotificationStatus.SENDING, lease_expires=now + LEASE
        )
        abandoned = add_notification(
            connection_id, status=NotificationStatus.SENDING, lease_expires=now - LEASE
        )
        add_notification(connection_id, status=NotificationStatus.DELIVERED)
        found = set(db.session.scalars(select(Notification.id).where(NOTIFICATIONS.due(utcnow()))))
    assert found == {due, abandoned}
    assert not found & {later, held}


def test_a_claim_takes_a_row_once_and_another_takes_it_only_after_the_lease(app, connection_id):
    with app.app_context():
        notification_id = add_notification(connection_id, status=NotificationStatus.QUEUED)
        first, second = new_token(), new_token()
        now = utcnow()
        where = Notification.id == notification_id
        assert NOTIFICATIONS.claim(where, token=first, now=now, duration=LEASE) == 1
        assert NOTIFICATIONS.claim(where, token=second, now=now, duration=LEASE) == 0
        assert row(notification_id).lease_token == first
        # The first worker died: once its lease has run out, the row is someone else's.
        after = now + LEASE + timedelta(seconds=1)
        assert NOTIFICATIONS.claim(where, token=second, now=after, duration=LEASE) == 1
        assert row(notification_id).lease_token == second
        assert row(notification_id).lease_expires_at == after + LEASE


def test_the_fence_lets_only_the_holder_finish(app, connection_id):
    with app.app_context():
        notification_id = add_notification(connection_id, status=NotificationStatus.QUEUED)
        holder, lost = new_token(), new_token()
        NOTIFICATIONS.claim(
            Notification.id == notification_id, token=holder, now=utcnow(), duration=LEASE
        )
        db.session.commit()
        done = {"status": NotificationStatus.DELIVERED, "last_status_code": 200}
        assert NOTIFICATIONS.lease.finish(notification_id, lost, done) is False
        assert row(notification_id).status == NotificationStatus.QUEUED
        assert NOTIFICATIONS.lease.finish(notification_id, holder, done) is True
        finished = row(notification_id)
        assert (finished.status, finished.last_status_code) == ("delivered", 200)
        assert (finished.lease_token, finished.lease_expires_at) == (None, None)


def test_only_the_holder_renews_touches_or_gives_back(app, connection_id):
    with app.app_context():
        ids = [add_notification(connection_id, status=NotificationStatus.QUEUED) for _ in range(3)]
        holder, other = new_token(), new_token()
        now = utcnow()
        assert (
            NOTIFICATIONS.claim(Notification.id.in_(ids), token=holder, now=now, duration=LEASE)
            == 3
        )
        until = now + 2 * LEASE
        assert NOTIFICATIONS.lease.renew(token=other, until=until) == 0
        assert NOTIFICATIONS.lease.renew(token=holder, until=until) == 3
        assert row(ids[0]).lease_expires_at == until
        assert not NOTIFICATIONS.lease.touch(ids[0], other, {"attempts": 5})
        assert NOTIFICATIONS.lease.touch(ids[0], holder, {"attempts": 5})
        assert row(ids[0]).lease_token == holder  # touched, still held
        back = {"status": NotificationStatus.QUEUED}
        assert NOTIFICATIONS.lease.release(Notification.id.in_(ids), token=other, values=back) == 0
        assert NOTIFICATIONS.lease.release(Notification.id.in_(ids[1:]), token=holder) == 2
        assert [row(i).lease_token for i in ids] == [holder, None, None]
