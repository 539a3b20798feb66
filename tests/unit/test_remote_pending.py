"""Issue 22, the site's side: a notification the Notify server answered *pending* is followed
through the server's extension (``GET /api/messages/<id>``) to its final state, and every
view of the site says the same (services/remote_pending.py; the server is ``responses``)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import Notification, NotificationStatus
from notify_site.serialisers import SummarySchema
from notify_site.services.admin.overview import summary
from notify_site.services.remote_pending import follow_due
from notify_site.services.retry import MONTHLY_LIMIT
from tests.factories import create_connection, create_notification, create_user, login

ORIGIN = "http://127.0.0.1:5000/relay"
TOKEN = "test-access-token"
INTERVAL = timedelta(seconds=30)


@pytest.fixture
def pending(app) -> int:
    with app.app_context():
        connection = create_connection(create_user("alice"), token=TOKEN)
        row = create_notification(
            connection,
            status=NotificationStatus.AT_SERVER,
            finished=None,
            remote_message_id="msg-1",
            created=utcnow() - timedelta(minutes=1),
        )
        return row.id


def state(app, notification_id: int) -> Notification:
    with app.app_context():
        row = db.session.get(Notification, notification_id)
        db.session.expunge(row)
        return row


def follow(app) -> int:
    with app.app_context():
        return follow_due(utcnow(), INTERVAL)


def answer(mocked_http, delivery: str, reason: str | None = None):
    body = {"status": 200, "message": "ok", "messageId": "msg-1", "delivery": delivery}
    if reason:
        body["reason"] = reason
    mocked_http.get(f"{ORIGIN}/api/messages/msg-1", json=body)


def test_delivered_at_the_server_is_delivered_here(app, pending, mocked_http):
    answer(mocked_http, "delivered")
    assert follow(app) == 1
    row = state(app, pending)
    assert (row.status, row.last_error) == (NotificationStatus.DELIVERED, None)
    assert row.finished_at is not None
    (call,) = mocked_http.calls
    assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_refused_at_the_server_is_failed_with_its_reason(app, pending, mocked_http):
    answer(mocked_http, "failed", "HTTP 400: The request body has 1 error(s)")
    follow(app)
    row = state(app, pending)
    assert row.status == NotificationStatus.FAILED
    assert row.last_error == (
        "refused by the Notify server: HTTP 400: The request body has 1 error(s)"
    )
    assert row.last_error_code == "refused_by_server"


def test_the_monthly_limit_is_its_own_reason(app, pending, mocked_http):
    answer(mocked_http, "monthly_limit", "HTTP 429: You have reached your monthly limit.")
    follow(app)
    row = state(app, pending)
    assert (row.status, row.last_error) == (NotificationStatus.FAILED, MONTHLY_LIMIT.text)


def test_still_pending_is_asked_again_later_not_now(app, pending, mocked_http):
    answer(mocked_http, "pending", "waiting for the monthly quota")
    assert follow(app) == 0
    row = state(app, pending)
    assert row.status == NotificationStatus.AT_SERVER
    assert row.next_attempt_at > utcnow() + INTERVAL - timedelta(seconds=5)
    assert follow(app) == 0
    assert len(mocked_http.calls) == 1  # not due again yet


def test_a_server_that_does_not_answer_leaves_it_pending(app, pending, mocked_http):
    mocked_http.get(f"{ORIGIN}/api/messages/msg-1", status=503, json={"status": 503})
    follow(app)
    assert state(app, pending).status == NotificationStatus.AT_SERVER


def test_the_admin_page_and_the_dashboard_name_it(app, client, pending):
    with app.app_context():
        figures = SummarySchema().dump(summary())
        assert figures["notifications"]["at_server"]["count"] == 1
        create_user("root", admin=True)
    login(client, "root")
    admin = client.get("/admin").get_data(as_text=True)
    assert "Pending at the Notify server" in admin
    assert 'data-summary="at_server">1<' in admin
    client.post("/logout")
    login(client, "alice")
    dashboard = client.get("/dashboard").get_data(as_text=True)
    assert "pending at the Notify server" in dashboard
