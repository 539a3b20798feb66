"""The outbox and the worker against the built-in relay over real HTTP (SPEC 4.4)."""

from __future__ import annotations

import time

import pytest
import requests
from sqlalchemy import func, select

from notify_site.extensions import db
from notify_site.keyring import keyring
from notify_site.models import (
    Connection,
    ConnectionStatus,
    DeliveryAttempt,
    Notification,
    NotificationStatus,
    User,
)
from notify_site.notify_content import Content
from notify_site.services.connections import connection_context
from notify_site.services.notifications import queue_notifications
from notify_site.worker import Worker
from tests.integration.helpers import connect_chat, register, relay_reader

NOTIFY = "/relay/api/notify"


@pytest.fixture
def live_overrides():
    # A short window so a test can watch it reset; quick retries.
    return {"RELAY_RATE_LIMIT": 5, "RELAY_RATE_WINDOW": 3, "DELIVERY_RETRY_BASE": 0.01}


@pytest.fixture
def chat(live):
    """A connected 1-on-1 sandbox chat; returns its connection id."""
    browser = requests.Session()
    register(browser, live.site)
    connect_chat(browser, live.site, "Me", "1-on-1")
    with live.app.app_context():
        return db.session.scalars(select(Connection.id)).one()


def queue(live, connection_id: int, *messages: str) -> list[int]:
    with live.app.app_context():
        connection = db.session.get(Connection, connection_id)
        owner = db.session.get(User, connection.owner_id)
        ids = []
        for message in messages:
            rows = queue_notifications(owner, [connection], Content(message=message))
            ids.extend(row.id for row in rows)
        return ids


def statuses(live, ids) -> dict[int, str]:
    with live.app.app_context():
        return dict(
            db.session.execute(
                select(Notification.id, Notification.status).where(Notification.id.in_(ids))
            ).all()
        )


def inbox(live) -> list[str]:
    answer = relay_reader(live).get(f"{live.relay}/inbox.json", timeout=10)
    return [item["message"] for item in answer.json()["messages"]]


def wait_for_new_window(live, connection_id: int) -> None:
    """Sleep past the reset of the connection's last known window (set by the connect call)."""
    with live.app.app_context():
        reset_at = db.session.get(Connection, connection_id).rate_reset_at
    time.sleep(max(0.0, reset_at.timestamp() - time.time()) + 0.2)


def test_queued_notification_is_delivered_into_the_inbox(live, chat):
    [notification_id] = queue(live, chat, "Disk 91% full on web-1 ✅")
    assert Worker(live.app).run_until_idle() == 1
    assert statuses(live, [notification_id]) == {notification_id: NotificationStatus.DELIVERED}
    assert inbox(live) == ["Disk 91% full on web-1 ✅"]
    with live.app.app_context():
        connection = db.session.get(Connection, chat)
        assert connection.rate_checked_by == "notify"
        assert connection.rate_limit == 5
        attempt = db.session.scalars(select(DeliveryAttempt)).one()
        assert (attempt.outcome, attempt.status_code) == ("delivered", 200)


def test_spent_window_waits_for_reset_without_calling(live, chat):
    wait_for_new_window(live, chat)
    ids = queue(live, chat, *[f"burst {n}" for n in range(8)])
    worker = Worker(live.app)
    assert worker.run_until_idle() == 5
    assert live.log.count("POST", NOTIFY) == 5  # no call once Remaining hit 0
    now = statuses(live, ids)
    assert sorted(now.values()).count(NotificationStatus.DELIVERED) == 5
    waiting = [i for i, s in now.items() if s == NotificationStatus.QUEUED]
    assert len(waiting) == 3
    with live.app.app_context():
        rows = db.session.scalars(select(Notification).where(Notification.id.in_(waiting)))
        assert all(row.attempts == 0 for row in rows)  # waiting spends no attempt
    assert worker.run_until_idle() == 0  # still before Reset: nothing is called
    assert live.log.count("POST", NOTIFY) == 5

    wait_for_new_window(live, chat)
    assert worker.run_until_idle() == 3
    assert set(statuses(live, ids).values()) == {NotificationStatus.DELIVERED}
    assert live.log.count("POST", NOTIFY) == 8
    assert sorted(inbox(live)) == sorted(f"burst {n}" for n in range(8))


def test_revoked_at_the_relay_mid_backlog_fails_the_backlog(live, chat):
    wait_for_new_window(live, chat)
    first = queue(live, chat, "one", "two")
    Worker(live.app).run_until_idle()
    assert set(statuses(live, first).values()) == {NotificationStatus.DELIVERED}
    backlog = queue(live, chat, "three", "four", "five")
    with live.app.app_context():
        ciphertext = db.session.get(Connection, chat).token_ciphertext
        token = keyring().decrypt(ciphertext, context=connection_context(chat))
    revoked = requests.post(
        f"{live.relay}/api/revoke", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert revoked.status_code == 200
    calls_before = live.log.count("POST", NOTIFY)

    Worker(live.app).run_until_idle()
    assert live.log.count("POST", NOTIFY) == calls_before + 1  # the 401, then nothing
    with live.app.app_context():
        assert db.session.get(Connection, chat).status == ConnectionStatus.REVOKED
        rows = db.session.scalars(select(Notification).where(Notification.id.in_(backlog)))
        assert {(row.status, row.last_error) for row in rows} == {
            (NotificationStatus.FAILED, "connection revoked")
        }
    assert Worker(live.app).run_until_idle() == 0


def test_server_error_then_success_is_delivered_after_a_retry(live, chat):
    wait_for_new_window(live, chat)
    live.log.fail_next(NOTIFY, 500)
    [notification_id] = queue(live, chat, "retry me")
    worker = Worker(live.app)
    worker.run_until_idle()
    time.sleep(0.05)  # the backoff (base 0.01 s) passes
    worker.run_until_idle()
    assert statuses(live, [notification_id]) == {notification_id: NotificationStatus.DELIVERED}
    assert live.log.count("POST", NOTIFY) == 2
    with live.app.app_context():
        row = db.session.get(Notification, notification_id)
        assert row.attempts == 2
        outcomes = db.session.scalars(
            select(DeliveryAttempt.outcome).order_by(DeliveryAttempt.id)
        ).all()
        assert outcomes == ["retry", "delivered"]
    assert inbox(live) == ["retry me"]


def test_revoking_on_the_site_fails_the_queue(live, chat):
    ids = queue(live, chat, "a", "b")
    with live.app.app_context():
        from notify_site.services.connections import revoke_connection

        connection = db.session.get(Connection, chat)
        revoke_connection(db.session.get(User, connection.owner_id), chat)
        failed = db.session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.id.in_(ids), Notification.status == NotificationStatus.FAILED)
        )
    assert failed == 2
    assert Worker(live.app).run_until_idle() == 0


def test_api_request_is_delivered_into_the_inbox(live, chat):
    from notify_site.services.api_keys import create_api_key

    with live.app.app_context():
        owner = db.session.get(User, db.session.get(Connection, chat).owner_id)
        _, key = create_api_key(owner, "integration")
    answer = requests.post(
        f"{live.site}/api/v1/notifications",
        json={
            "connection": "Me",
            "message": "from the API",
            "sticker": {"package_id": 446, "sticker_id": 1988},
        },
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert answer.status_code == 202, answer.text
    [record] = answer.json()["notifications"]
    assert record["status"] == "queued"

    wait_for_new_window(live, chat)
    Worker(live.app).run_until_idle()
    status = requests.get(
        f"{live.site}{record['url']}", headers={"Authorization": f"Bearer {key}"}, timeout=10
    ).json()
    assert (status["status"], status["attempts"]) == ("delivered", 1)
    [item] = relay_reader(live).get(f"{live.relay}/inbox.json", timeout=10).json()["messages"]
    assert item["message"] == "from the API"
    assert item["sticker"] == {"package_id": 446, "sticker_id": 1988}
