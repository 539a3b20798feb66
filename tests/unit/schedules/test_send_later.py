"""Send later and cancel (services/sending.py ``send_at``, notifications.cancel_scheduled),
with a controllable clock: nothing goes before its time, a cancelled row never goes, and of a
cancel and a worker's claim racing for one row exactly one wins."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.models import Notification, NotificationStatus, User
from notify_site.notify_content import Content
from notify_site.services import notifications, sending
from notify_site.services.claims import claim_batch, claim_connections
from notify_site.services.delivery import worker_settings
from notify_site.services.idempotency import IdempotencyKeyReusedError
from notify_site.worker import Worker
from tests.factories import create_api_key
from tests.unit.schedules.conftest import NOTIFY_URL, utc

OK = {"status": 200, "message": "ok"}


def send_later(world, send_at, targets=None):
    alice = db.session.get(User, world["alice"])
    return sending.send(
        sending.Sender.person(alice),
        targets or [world["family"]],
        Content(message="Meeting at 10"),
        options=sending.SendOptions(source=sending.Source.FORM, send_at=send_at),
    ).notifications


def row(notification_id: int) -> Notification:
    found = db.session.get(Notification, notification_id)
    db.session.refresh(found)
    return found


def test_a_notification_sent_later_waits_until_its_time(app, world, clock, mocked_http):
    mocked_http.add("POST", NOTIFY_URL, json=OK)
    with app.app_context():
        [queued] = send_later(world, utc(2027, 1, 4, 0, 2))
        assert (queued.status, queued.send_at) == ("scheduled", utc(2027, 1, 4, 0, 2))
        stored = row(queued.id)
        assert (stored.status, stored.next_attempt_at) == ("scheduled", utc(2027, 1, 4, 0, 2))
    assert Worker(app, threads=1).run_until_idle() == 0
    assert len(mocked_http.calls) == 0
    clock.move_to(utc(2027, 1, 4, 0, 2, 1))
    Worker(app, threads=1).run_until_idle()
    assert len(mocked_http.calls) == 1
    with app.app_context():
        assert row(queued.id).status == NotificationStatus.DELIVERED
        assert row(queued.id).send_at == utc(2027, 1, 4, 0, 2)


@pytest.mark.parametrize(
    ("send_at", "reason"),
    [
        (utc(2027, 1, 3, 23, 59), "must be in the future"),
        (utc(2027, 1, 4), "must be in the future"),
        (utc(2028, 1, 4, 0, 1), "must be at most a year ahead"),
    ],
)
def test_a_send_time_must_be_ahead_and_within_a_year(app, world, send_at, reason):
    with app.app_context():
        with pytest.raises(notifications.NotificationValidationError) as caught:
            send_later(world, send_at)
        assert caught.value.fields == {"send_at": reason}
        assert db.session.scalars(select(Notification)).all() == []


def test_a_year_ahead_to_the_second_is_fine(app, world):
    with app.app_context():
        [queued] = send_later(world, utc(2027, 1, 4) + timedelta(days=365))
        assert queued.status == "scheduled"


def test_a_cancelled_notification_is_never_sent(app, world, clock, mocked_http):
    with app.app_context():
        [queued] = send_later(world, utc(2027, 1, 4, 0, 2))
        alice = db.session.get(User, world["alice"])
        cancelled = notifications.cancel_scheduled(alice, queued.id)
        assert cancelled.status == NotificationStatus.CANCELLED
        with pytest.raises(notifications.NotCancellableError) as again:
            notifications.cancel_scheduled(alice, queued.id)
        assert again.value.status == "cancelled"
    clock.move_to(utc(2027, 1, 4, 1))
    assert Worker(app, threads=1).run_until_idle() == 0
    assert len(mocked_http.calls) == 0


def test_someone_elses_notification_cannot_be_cancelled(app, world):
    with app.app_context():
        [queued] = send_later(world, utc(2027, 1, 4, 0, 2))
        bob = db.session.get(User, world["bob"])
        with pytest.raises(notifications.NotificationNotFoundError):
            notifications.cancel_scheduled(bob, queued.id)
        assert row(queued.id).status == "scheduled"


def test_a_row_a_worker_took_is_not_cancelled_and_the_answer_says_so(app, world, clock):
    with app.app_context():
        [queued] = send_later(world, utc(2027, 1, 4, 0, 2))
        clock.move_to(utc(2027, 1, 4, 0, 2, 1))
        settings = worker_settings()
        [claim] = claim_connections(1, settings.lease)
        [taken] = claim_batch(claim, 10, settings.lease, settings.policy)
        assert taken.id == queued.id
        alice = db.session.get(User, world["alice"])
        with pytest.raises(notifications.NotCancellableError) as caught:
            notifications.cancel_scheduled(alice, queued.id)
        assert caught.value.status == NotificationStatus.SENDING
        assert "a worker took it" in str(caught.value)
        assert row(queued.id).status == NotificationStatus.SENDING


def test_a_row_cancelled_first_is_not_claimed(app, world, clock):
    with app.app_context():
        [queued] = send_later(world, utc(2027, 1, 4, 0, 2))
        clock.move_to(utc(2027, 1, 4, 0, 2, 1))
        alice = db.session.get(User, world["alice"])
        notifications.cancel_scheduled(alice, queued.id)
        assert claim_connections(1, worker_settings().lease) == []


def test_a_send_later_with_an_idempotency_key_replays_its_time(app, world):
    with app.app_context():
        key_row, _ = create_api_key(world["alice"])
        sender = sending.Sender(id=world["alice"], is_admin=False, api_key=key_row)
        content = Content(message="Meeting at 10")

        def post(send_at):
            return sending.send(
                sender,
                [world["family"]],
                content,
                options=sending.SendOptions(source=sending.Source.API, send_at=send_at),
                idempotency_key=sending.IdempotencyKey.for_request(
                    "k1", [world["family"]], content, send_at
                ),
            )

        first = post(utc(2027, 1, 5, 9))
        again = post(utc(2027, 1, 5, 9))
        assert again.replayed
        assert again.notifications == first.notifications
        assert again.notifications[0].status == "scheduled"
        with pytest.raises(IdempotencyKeyReusedError):
            post(utc(2027, 1, 5, 10))
