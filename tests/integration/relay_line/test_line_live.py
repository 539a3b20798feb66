"""The whole channel-mode path over real HTTP: the site and its relay (Live fixture) with the
relay aimed at the fake Messaging API, LINE's webhooks posted signed by the test.

follow → pairing code from that chat → connect from the site's pages → send from the site →
one push to that user with the right messages and a retry key; 500 then 200 → two calls with
the same key, one delivery; unfollow → the site shows the connection as no longer usable.
"""

from __future__ import annotations

import re
import time
import uuid

import pytest
import requests
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.models import Connection, ConnectionStatus, User
from notify_site.relay.models import RelayLineEvent
from notify_site.services.api_keys import create_api_key
from notify_site.worker import Worker
from tests.fakes.line_api import (
    FakeLineServer,
    channel_config,
    event,
    sign,
    text_message,
    webhook_body,
)
from tests.htmlforms import form_with
from tests.integration.helpers import register, start_connect, without_form_post

ALICE = "U" + "a" * 32
PUSH = "/v2/bot/message/push"
TIMEOUT = 10


@pytest.fixture
def fake():
    server = FakeLineServer()
    server.state.profiles[ALICE] = "Alice Tanaka"
    yield server
    server.stop()


@pytest.fixture
def live_overrides(fake):
    return channel_config(fake, "https://relay.example/relay")


def post_webhook(live, *events) -> None:
    body = webhook_body(*events)
    answer = requests.post(
        f"{live.relay}/line/webhook",
        data=body,
        headers={"Content-Type": "application/json", "X-Line-Signature": sign(body)},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 200, answer.text
    wait_until_processed(live, [e["webhookEventId"] for e in events])


def wait_until_processed(live, event_ids, seconds: float = 15) -> None:
    """The relay handles events after answering; wait (bounded) until these are handled,
    by its after-response step or, failing that, by a worker round."""
    deadline = time.monotonic() + seconds
    while True:
        with live.app.app_context():
            done = db.session.scalars(
                select(RelayLineEvent.webhook_event_id).where(
                    RelayLineEvent.webhook_event_id.in_(event_ids),
                    RelayLineEvent.processed_at.is_not(None),
                )
            ).all()
            db.session.remove()
        if len(done) == len(event_ids):
            return
        assert time.monotonic() < deadline, f"events not processed: {event_ids}"
        Worker(live.app).run_until_idle()
        time.sleep(0.05)


def wait_for_pairing(live, poll_token: str, seconds: float = 15) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        state = requests.get(
            f"{live.relay}/line/pairing", headers={"X-Relay-Pairing": poll_token}, timeout=TIMEOUT
        ).json()
        if state["status"] != "waiting":
            return state
        assert time.monotonic() < deadline, "the pairing was never matched"
        time.sleep(0.05)


def connect_line_chat(live, browser: requests.Session, label: str) -> None:
    authorize_url = without_form_post(start_connect(browser, live.site, label))
    page = browser.get(authorize_url, timeout=TIMEOUT)
    assert page.status_code == 200
    assert "https://line.me/R/ti/p/%40fakebot" in page.text
    assert "<svg" in page.text  # the add-friend QR
    code = re.search(r'class="relay-line-code"[^>]*><code>([A-Z0-9-]+)</code>', page.text)[1]
    form = form_with(page.text, page.url, button="agree")
    # Agreeing before the code reached the bot connects nothing and keeps the same code.
    early = browser.post(
        form.action, data={**form.fields, "agree": "Agree and connect"}, allow_redirects=False
    )
    assert early.status_code == 200
    assert code in early.text
    assert "has not reached the bot yet" in early.text

    message = text_message(code, user=ALICE)
    post_webhook(live, message)
    state = wait_for_pairing(live, form.fields["pairing"])
    assert state == {
        "status": "matched",
        "chat": {"name": "Alice Tanaka", "type": "USER", "reachable": True},
    }
    (reply,) = live.fake.state.calls_to("/v2/bot/message/reply")
    assert reply.json["replyToken"] == message["replyToken"]

    answer = browser.post(
        form.action, data={**form.fields, "agree": "Agree and connect"}, allow_redirects=False
    )
    assert answer.status_code == 302, answer.text
    done = browser.get(answer.headers["Location"], allow_redirects=False, timeout=TIMEOUT)
    assert done.status_code == 302, done.text


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

    # Alice blocks the bot: the relay refuses the token, and the site shows it.
    post_webhook(live, event("unfollow", user=ALICE))
    connections = browser.get(f"{live.site}/connections", timeout=TIMEOUT)
    refresh = form_with(connections.text, connections.url, field="csrf_token")
    refresh_url = f"{live.site}/connections/{connection_id}/refresh"
    answer = browser.post(refresh_url, data={"csrf_token": refresh.fields["csrf_token"]})
    assert answer.status_code == 200
    with live.app.app_context():
        connection = db.session.get(Connection, connection_id)
        assert connection.status == ConnectionStatus.REVOKED
    page = browser.get(f"{live.site}/connections", timeout=TIMEOUT).text
    assert "revoked" in page.lower()
    assert "no longer valid" in page or "disconnected" in page
    # Nothing more reaches LINE for this chat.
    pushes_before = len(fake.state.pushes)
    answer = requests.post(
        f"{live.site}/api/v1/notifications",
        json={"connection": "Phone", "message": "after the block"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=TIMEOUT,
    )
    Worker(live.app).run_until_idle()
    assert len(fake.state.pushes) == pushes_before
