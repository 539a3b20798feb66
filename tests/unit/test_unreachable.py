"""Unreachable connections: the relay's 401 with ``"reason": "chat_unreachable"`` (the chat
blocked the bot or removed it from the group) against a mocked Notify server (responses).

The token is kept, the backlog fails with a clear error, sending is refused, the pages show
the state, and a later successful status call (Refresh) makes the connection active again. A
plain 401 still revokes (tests/unit/test_connect_flow.py, tests/integration/test_delivery_live.py).
"""

from __future__ import annotations

import re

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

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
from notify_site.services.claims import claim_connections
from notify_site.services.connections import connection_context
from notify_site.services.delivery import process_claim, worker_settings
from notify_site.services.notifications import add_notifications
from notify_site.services.retry import CHAT_UNREACHABLE, CONNECTION_REVOKED
from notify_site.stored_text import StoredText, assign
from notify_site.worker import Worker
from tests.conftest import make_test_config
from tests.factories import create_api_key, create_connection, create_user, login

API = "https://notify-api.test"
NOTIFY_URL = f"{API}/api/notify"
STATUS_URL = f"{API}/api/status"
REVOKE_URL = f"{API}/api/revoke"
TOKEN = "unreachable-chat-token-canary-51c2"
UNREACHABLE_BODY = {
    "status": 401,
    "message": "Invalid access token: the chat can no longer be reached",
    "reason": "chat_unreachable",
}
HINT = "The chat blocked the bot or removed it from the group. Once it is back, press Refresh."
RATE_HEADERS = {
    "X-RateLimit-Limit": "1000",
    "X-RateLimit-Remaining": "997",
    "X-RateLimit-ImageLimit": "50",
    "X-RateLimit-ImageRemaining": "50",
    "X-RateLimit-Reset": "1893456000",
}


@pytest.fixture
def app_config(tmp_path):
    return make_test_config(tmp_path, NOTIFY_API_ORIGIN=API)


@pytest.fixture
def ids(app) -> dict[str, int]:
    """root (the admin), Alice with her "Phone" chat and an API key."""
    with app.app_context():
        create_user("root")
        alice = create_user("alice")
        phone = create_connection(alice, label="Phone", token=TOKEN, target_name="Alice")
        _, key = create_api_key(alice, "alice")
        return {"alice": alice.id, "phone": phone.id, "key": key}


def queue(app, ids, *messages: str) -> list[int]:
    with app.app_context():
        alice = db.session.get(User, ids["alice"])
        phone = db.session.get(Connection, ids["phone"])
        rows = [add_notifications(alice, [phone], Content(message=m))[0] for m in messages]
        db.session.commit()
        return [row.id for row in rows]


def make_unreachable(app, ids) -> None:
    with app.app_context():
        db.session.get(Connection, ids["phone"]).status = ConnectionStatus.UNREACHABLE
        db.session.commit()


def connection_state(app, ids) -> tuple[str, str | None, object]:
    """(status, the decrypted token or None, revoked_at)."""
    with app.app_context():
        connection = db.session.get(Connection, ids["phone"])
        context = connection_context(connection.id)
        ciphertext = connection.token_ciphertext
        token = keyring().decrypt(ciphertext, context=context) if ciphertext else None
        return connection.status, token, connection.revoked_at


def outcomes(app, notification_ids) -> set[tuple[str, str | None]]:
    with app.app_context():
        rows = db.session.scalars(
            select(Notification).where(Notification.id.in_(notification_ids))
        ).all()
        return {
            (row.status, StoredText(row.last_error, row.last_error_code, row.last_error_params))
            for row in rows
        }


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- delivery ---------------------------------------------------------------------------------


def test_a_401_for_an_unreachable_chat_keeps_the_token_and_fails_the_backlog(app, ids, mocked_http):
    calls = mocked_http.post(NOTIFY_URL, json=UNREACHABLE_BODY, status=401)
    counted = sample("notify_site_deliveries_total", outcome="unreachable", status_code="401")
    notification_ids = queue(app, ids, "one", "two", "three")

    Worker(app, threads=1).run_until_idle()

    assert calls.call_count == 1  # the first 401 stops the batch
    status, token, revoked_at = connection_state(app, ids)
    assert (status, token, revoked_at) == (ConnectionStatus.UNREACHABLE, TOKEN, None)
    assert outcomes(app, notification_ids) == {(NotificationStatus.FAILED, CHAT_UNREACHABLE)}
    with app.app_context():
        attempts = db.session.scalars(select(DeliveryAttempt.outcome)).all()
        assert attempts == ["unreachable"]
    assert (
        sample("notify_site_deliveries_total", outcome="unreachable", status_code="401")
        == counted + 1
    )
    # Nothing more is called for the connection until it is active again.
    assert Worker(app, threads=1).run_until_idle() == 0
    assert calls.call_count == 1


def test_a_plain_401_from_a_delivery_still_revokes(app, ids, mocked_http):
    plain = {"status": 401, "message": "Invalid access token"}
    mocked_http.post(NOTIFY_URL, json=plain, status=401)
    notification_ids = queue(app, ids, "one", "two")

    Worker(app, threads=1).run_until_idle()

    status, token, revoked_at = connection_state(app, ids)
    assert (status, token) == (ConnectionStatus.REVOKED, None)
    assert revoked_at is not None
    assert outcomes(app, notification_ids) == {(NotificationStatus.FAILED, CONNECTION_REVOKED)}


def test_a_connection_that_became_unreachable_after_its_claim_fails_its_rows_as_such(
    app, ids, mocked_http
):
    notification_ids = queue(app, ids, "one")
    with app.app_context():
        settings = worker_settings()
        (claim,) = claim_connections(1, settings.lease)
    make_unreachable(app, ids)  # a Refresh, meanwhile
    with app.app_context():
        assert process_claim(claim, settings, "test", lambda: False) == 0
    assert len(mocked_http.calls) == 0
    assert outcomes(app, notification_ids) == {(NotificationStatus.FAILED, CHAT_UNREACHABLE)}
    assert connection_state(app, ids)[:2] == (ConnectionStatus.UNREACHABLE, TOKEN)


# --- refresh (the status call) ----------------------------------------------------------------


def test_refresh_answered_401_unreachable_marks_the_connection_and_keeps_the_token(
    app, client, ids, mocked_http
):
    mocked_http.get(STATUS_URL, json=UNREACHABLE_BODY, status=401)
    backlog = queue(app, ids, "queued before the refresh")
    login(client, "alice")

    response = client.post(f"/connections/{ids['phone']}/refresh", follow_redirects=True)

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "“Phone” cannot be reached: the chat blocked the bot" in page
    assert connection_state(app, ids)[:2] == (ConnectionStatus.UNREACHABLE, TOKEN)
    assert outcomes(app, backlog) == {(NotificationStatus.FAILED, CHAT_UNREACHABLE)}
    assert TOKEN not in page


def test_a_successful_refresh_makes_an_unreachable_connection_active_again(
    app, client, ids, mocked_http
):
    make_unreachable(app, ids)
    status_call = mocked_http.get(
        STATUS_URL,
        json={"status": 200, "message": "ok", "targetType": "USER", "target": "Alice again"},
        headers=RATE_HEADERS,
    )
    login(client, "alice")

    response = client.post(f"/connections/{ids['phone']}/refresh", follow_redirects=True)

    assert status_call.call_count == 1
    assert mocked_http.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "997 calls left" in response.get_data(as_text=True)
    assert connection_state(app, ids)[:2] == (ConnectionStatus.ACTIVE, TOKEN)
    with app.app_context():
        assert db.session.get(Connection, ids["phone"]).target_name == "Alice again"
    # And it can be sent to again.
    answer = client.post(
        "/api/v1/notifications",
        json={"connection": "Phone", "message": "back"},
        headers={"Authorization": f"Bearer {ids['key']}"},
    )
    assert answer.status_code == 202, answer.get_data(as_text=True)


def test_revoking_an_unreachable_connection_revokes_its_token_at_the_server(
    app, client, ids, mocked_http
):
    make_unreachable(app, ids)
    revoke_call = mocked_http.post(REVOKE_URL, json={"status": 200, "message": "ok"})
    login(client, "alice")

    assert client.post(f"/connections/{ids['phone']}/revoke").status_code == 302

    assert revoke_call.call_count == 1
    assert connection_state(app, ids)[:2] == (ConnectionStatus.REVOKED, None)


# --- sending is refused -----------------------------------------------------------------------


def test_the_api_refuses_an_unreachable_connection_with_a_409(app, client, ids):
    make_unreachable(app, ids)
    answer = client.post(
        "/api/v1/notifications",
        json={"connection": "Phone", "message": "hi"},
        headers={"Authorization": f"Bearer {ids['key']}"},
    )
    assert answer.status_code == 409
    error = answer.get_json()["error"]
    assert error["code"] == "connection_inactive"
    assert "unreachable" in error["message"]
    assert "press Refresh" in error["message"]
    assert "unreachable" in error["fields"]["connection"]
    with app.app_context():
        assert db.session.scalars(select(Notification)).all() == []


def test_the_send_form_refuses_and_does_not_offer_an_unreachable_connection(app, client, ids):
    make_unreachable(app, ids)
    with app.app_context():
        create_connection(db.session.get(User, ids["alice"]), label="Laptop")
    login(client, "alice")
    assert f'value="{ids["phone"]}"' not in client.get("/send").get_data(as_text=True)

    response = client.post("/send", data={"connections": [ids["phone"]], "message": "hi"})

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "is unreachable: the chat blocked the bot or removed it from the group" in page
    with app.app_context():
        assert db.session.scalars(select(Notification)).all() == []


# --- the pages --------------------------------------------------------------------------------


def pill(page: str) -> str:
    return re.search(r'<span class="pill pill-unreachable"[^>]*>([^<]*)</span>', page).group(1)


def note_attributes(page: str) -> str:
    """The attributes of the dashboard card's unreachable note after its data-field."""
    return re.search(r'data-field="unreachable_note"([^>]*)>', page).group(1)


def test_the_pages_show_the_state_with_its_own_pill_and_the_hint(app, client, ids):
    make_unreachable(app, ids)
    login(client, "alice")

    connections = client.get("/connections").get_data(as_text=True)
    assert pill(connections) == "unreachable"
    assert HINT in connections
    assert f"/connections/{ids['phone']}/refresh" in connections  # Refresh stays offered
    assert f"/send?connection={ids['phone']}" not in connections

    dashboard = client.get("/dashboard").get_data(as_text=True)
    assert pill(dashboard) == "unreachable"
    assert "hidden" not in note_attributes(dashboard)
    assert HINT in dashboard
    assert f"/connections/{ids['phone']}/refresh" in dashboard
    data = client.get("/dashboard.json").get_json()
    assert [c["status"] for c in data["connections"]] == ["unreachable"]

    api = client.get(
        f"/api/v1/connections/{ids['phone']}", headers={"Authorization": f"Bearer {ids['key']}"}
    )
    assert api.get_json()["status"] == "unreachable"


def test_an_active_connections_dashboard_card_hides_the_note(app, client, ids):
    login(client, "alice")
    dashboard = client.get("/dashboard").get_data(as_text=True)
    assert "hidden" in note_attributes(dashboard)


def test_the_admin_page_shows_and_filters_the_state(app, client, ids):
    make_unreachable(app, ids)
    with app.app_context():
        bob = create_user("bob")
        create_connection(bob, label="Bob's")
    login(client, "root")

    page = client.get("/admin?status=unreachable").get_data(as_text=True)
    assert '<option value="unreachable" selected>unreachable</option>' in page
    assert pill(page) == "unreachable"
    assert HINT in page
    assert "Bob's" not in page
    listed = client.get("/admin/connections.json?status=unreachable").get_json()
    assert [c["label"] for c in listed["connections"]] == ["Phone"]


def test_an_admin_retry_of_a_row_of_an_unreachable_connection_says_why_not(app, client, ids):
    (notification_id,) = queue(app, ids, "one")
    with app.app_context():
        row = db.session.get(Notification, notification_id)
        row.status = NotificationStatus.FAILED
        assign(row, "last_error", CHAT_UNREACHABLE)
        db.session.commit()
    make_unreachable(app, ids)
    login(client, "root")

    response = client.post(f"/admin/notifications/{notification_id}/retry", follow_redirects=True)

    assert "the chat of “Phone” blocked the bot" in response.get_data(as_text=True)
    assert outcomes(app, [notification_id]) == {(NotificationStatus.FAILED, CHAT_UNREACHABLE)}


@pytest.mark.parametrize(
    ("language", "word", "hint"),
    [
        ("ja", "到達不可", "元に戻ったら「更新」を押してください。"),
        ("zh-TW", "無法送達", "恢復後，請按「重新整理」。"),
    ],
)
def test_the_state_and_the_hint_are_translated(app, client, ids, language, word, hint):
    make_unreachable(app, ids)
    login(client, "alice")
    for path in ("/connections", "/dashboard"):
        page = client.get(path, headers={"Accept-Language": language}).get_data(as_text=True)
        assert pill(page) == word
        assert hint in page
        assert HINT not in page
