"""The whole channel-mode path over real HTTP: the site and its relay (Live fixture) with the
relay aimed at the fake Messaging API, LINE's webhooks posted signed by the test.

follow → pairing code from that chat → connect from the site's pages → send from the site →
one push to that user with the right messages and a retry key; 500 then 200 → two calls with
the same key, one delivery; unfollow → the site's next send fails and shows the connection
unreachable (token kept, sending refused); follow again → Refresh → active, and delivered.
"""

from __future__ import annotations

import re
import uuid

import requests
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.models import (
    Connection,
    ConnectionStatus,
    Notification,
    NotificationStatus,
    User,
)
from notify_site.services.retry import CHAT_UNREACHABLE
from notify_site.worker import Worker
from tests.factories import create_api_key
from tests.fakes.line_api import event
from tests.fakes.line_live import ALICE, TIMEOUT, post_webhook
from tests.htmlforms import form_with
from tests.integration.helpers import register
from tests.integration.relay_line.line_steps import connect_line_chat

PUSH = "/v2/bot/message/push"


def send_from_site(live, key: str, message: str, **extra) -> None:
    answer = requests.post(
        f"{live.site}/api/v1/notifications",
        json={"connection": "Phone", "message": message, **extra},
        headers={"Authorization": f"Bearer {key}"},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 202, answer.text
    Worker(live.app).run_until_idle()


def test_a_real_chat_is_connected_and_receives_the_sites_messages(live, fake):
    live.fake = fake
    browser = requests.Session()
    register(browser, live.site)
    post_webhook(live, event("follow", user=ALICE))
    connect_line_chat(live, browser, "Phone")

    with live.app.app_context():
        connection = db.session.scalars(select(Connection)).one()
        assert (connection.target_name, connection.target_type) == ("Alice Tanaka", "USER")
        assert connection.status == ConnectionStatus.ACTIVE
        connection_id = connection.id
        owner = db.session.get(User, connection.owner_id)
        _, key = create_api_key(owner, "line test")
    page = browser.get(f"{live.site}/connections", timeout=TIMEOUT).text
    assert "Alice Tanaka" in page

    # Send from the site: one push, to Alice, with the message and a retry key.
    send_from_site(live, key, "Backup finished", sticker={"package_id": 446, "sticker_id": 1988})
    (push,) = fake.state.pushes
    assert push.json["to"] == ALICE
    assert push.json["messages"] == [
        {"type": "text", "text": "[notify_site] Backup finished"},
        {"type": "sticker", "packageId": "446", "stickerId": "1988"},
    ]
    assert uuid.UUID(push.header("x-line-retry-key"))
    assert len(fake.state.delivered) == 1

    # A 500, then a 200: two calls with the same retry key, one delivery.
    fake.state.fail_next(PUSH, 500)
    send_from_site(live, key, "Disk 91% full")
    first, second = fake.state.pushes[1:]
    assert (first.status, second.status) == (500, 200)
    assert first.header("x-line-retry-key") == second.header("x-line-retry-key")
    assert first.header("x-line-retry-key") != push.header("x-line-retry-key")
    assert len(fake.state.delivered) == 2
    assert fake.state.delivered[1]["body"]["messages"][0]["text"] == "[notify_site] Disk 91% full"

    # Alice blocks the bot. The site does not know yet: the next send is queued, and its call
    # is refused (401, "reason": "chat_unreachable"), which makes the connection unreachable
    # with the token kept, and fails the notification with a clear error.
    post_webhook(live, event("unfollow", user=ALICE))
    pushes_before = len(fake.state.pushes)
    send_from_site(live, key, "after the block")
    assert len(fake.state.pushes) == pushes_before
    with live.app.app_context():
        connection = db.session.get(Connection, connection_id)
        assert connection.status == ConnectionStatus.UNREACHABLE
        assert connection.token_ciphertext  # kept: the chat may come back
        assert connection.revoked_at is None
        failed = db.session.scalars(
            select(Notification).where(Notification.message == "after the block")
        ).one()
        assert failed.status == NotificationStatus.FAILED
        assert (failed.last_error, failed.last_error_code) == (
            CHAT_UNREACHABLE.text,
            CHAT_UNREACHABLE.code,
        )

    # Refresh while still blocked: the status call gets the same answer, the state stays.
    answer = refresh(live, browser, connection_id)
    assert answer.status_code == 200
    assert "cannot be reached" in answer.text
    with live.app.app_context():
        assert db.session.get(Connection, connection_id).status == ConnectionStatus.UNREACHABLE
    page = browser.get(f"{live.site}/connections", timeout=TIMEOUT).text
    assert re.search(r'class="pill pill-unreachable">unreachable<', page)
    assert "The chat blocked the bot or removed it from the group" in page
    # Sending is refused on the site; nothing reaches LINE.
    answer = requests.post(
        f"{live.site}/api/v1/notifications",
        json={"connection": "Phone", "message": "refused"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 409, answer.text
    assert "unreachable" in answer.json()["error"]["message"]
    Worker(live.app).run_until_idle()
    assert len(fake.state.pushes) == pushes_before

    # Alice adds the bot back: Refresh makes the connection active, and sending works again.
    post_webhook(live, event("follow", user=ALICE))
    answer = refresh(live, browser, connection_id)
    assert answer.status_code == 200
    with live.app.app_context():
        connection = db.session.get(Connection, connection_id)
        assert (connection.status, connection.target_name) == (
            ConnectionStatus.ACTIVE,
            "Alice Tanaka",
        )
    page = browser.get(f"{live.site}/connections", timeout=TIMEOUT).text
    assert "pill-unreachable" not in page
    send_from_site(live, key, "Welcome back")
    assert len(fake.state.pushes) == pushes_before + 1
    assert fake.state.pushes[-1].json["to"] == ALICE
    assert fake.state.delivered[-1]["body"]["messages"] == [
        {"type": "text", "text": "[notify_site] Welcome back"}
    ]


def refresh(live, browser: requests.Session, connection_id: int) -> requests.Response:
    """Press Refresh on the connections page (the redirect back is followed)."""
    connections = browser.get(f"{live.site}/connections", timeout=TIMEOUT)
    form = form_with(connections.text, connections.url, field="csrf_token")
    return browser.post(
        f"{live.site}/connections/{connection_id}/refresh",
        data={"csrf_token": form.fields["csrf_token"]},
        timeout=TIMEOUT,
    )
