"""Issue 22, item 1: in channel mode ``/api/notify`` answers with LINE's outcome when LINE
answers in time, and says *pending* (with a message id the token's holder can follow) when it
does not. Against the fake Messaging API."""

from __future__ import annotations

import threading

import pytest

from notify_site.relay.clients import find_client, register_client
from notify_site.relay.models import PushStatus
from tests.conftest import make_test_config
from tests.factories import create_relay_token
from tests.fakes.line_api import channel_config
from tests.unit.relay.line_pushes import TOKEN, add_line_user_chat, notify, pushes, run

PUSH = "/v2/bot/message/push"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def app_config(tmp_path, fake_line):
    return make_test_config(
        tmp_path,
        RELAY_LINE_SYNC_WAIT_SECONDS=1,
        RELAY_LINE_PACKING=False,  # one push per notification here (test_line_packing.py: packs)
        **channel_config(fake_line, "https://relay.example/relay"),
    )


@pytest.fixture
def alice(app, registered) -> int:
    return add_line_user_chat(app, registered)


def outcome(client, message_id: str, headers=BEARER):
    return client.get(f"/relay/api/messages/{message_id}", headers=headers)


def test_lines_200_passes_through_as_notifys_own(app, client, alice, fake_line):
    response = notify(client, message="Disk full")
    assert response.status_code == 200
    assert response.data == b'{"status":200,"message":"ok"}'
    assert len(fake_line.state.delivered) == 1
    (push,) = pushes(app)
    assert (push.status, push.attempts) == (PushStatus.DELIVERED, 1)
    assert run(app) == 0  # nothing left for the worker
    state = outcome(client, push.public_id).get_json()
    assert state == {
        "status": 200,
        "message": "ok",
        "messageId": push.public_id,
        "delivery": "delivered",
    }


def test_lines_400_passes_through_with_its_details(app, client, alice, fake_line):
    details = [{"message": "Length must be between 0 and 5000", "property": "messages[0].text"}]
    fake_line.state.fail_next(
        PUSH, (400, {"message": "The request body has 1 error(s)", "details": details})
    )
    response = notify(client, message="too long, says LINE")
    assert response.status_code == 400
    assert response.get_json() == {
        "status": 400,
        "message": "LINE refused the message: The request body has 1 error(s)",
        "details": details,
    }
    (push,) = pushes(app)
    assert push.status == PushStatus.FAILED
    assert "messages[0].text: Length must be between 0 and 5000" in push.last_error
    assert run(app) == 0


def test_the_monthly_limit_passes_through_as_429_and_the_push_never_goes(
    app, client, alice, fake_line
):
    fake_line.state.quota, fake_line.state.consumption = 5, 5
    response = notify(client, message="over the month")
    assert response.status_code == 429
    body = response.get_json()
    assert (body["status"], body["reason"]) == (429, "monthly_limit")
    (push,) = pushes(app)
    assert push.status == PushStatus.FAILED  # its caller was told 429 and may send again
    fake_line.state.quota = 100
    assert run(app) == 0  # the next re-check is minutes away; and then nothing is waiting
    assert fake_line.state.delivered == []
    assert outcome(client, push.public_id).get_json()["delivery"] == "monthly_limit"


def test_a_failing_line_leaves_it_pending_and_the_holder_follows_it(app, client, alice, fake_line):
    fake_line.state.fail_next(PUSH, 500)
    response = notify(client, message="LINE is down")
    assert response.status_code == 200
    body = response.get_json()
    (push,) = pushes(app)
    assert body == {
        "status": 200,
        "message": "ok",
        "delivery": "pending",
        "messageId": push.public_id,
    }
    assert outcome(client, push.public_id).get_json()["delivery"] == "pending"
    assert run(app) == 1
    assert outcome(client, push.public_id).get_json()["delivery"] == "delivered"
    first, second = fake_line.state.pushes
    assert first.header("x-line-retry-key") == second.header("x-line-retry-key")


def test_a_slow_line_leaves_it_pending_and_it_is_delivered_once(app, client, alice, fake_line):
    release = threading.Event()
    fake_line.state.hold(PUSH, release)
    try:
        response = notify(client, message="slow")
    finally:
        release.set()  # LINE now answers the held call (and accepts the push)
    assert response.get_json()["delivery"] == "pending"
    message_id = response.get_json()["messageId"]
    run(app)  # the retry, same key: 200 or 409, either way sent once
    assert outcome(client, message_id).get_json()["delivery"] == "delivered"
    assert len(fake_line.state.delivered) == 1
    assert len({c.header("x-line-retry-key") for c in fake_line.state.pushes}) == 1


def test_a_push_waits_behind_an_older_one_of_its_chat(app, client, alice, fake_line):
    fake_line.state.fail_next(PUSH, 500)
    first = notify(client, message="first")
    assert first.get_json()["delivery"] == "pending"
    second = notify(client, message="second")
    assert second.get_json()["delivery"] == "pending"
    assert len(fake_line.state.pushes) == 1  # the second was not sent ahead of the first
    run(app)
    texts = [d["body"]["messages"][0]["text"] for d in fake_line.state.delivered]
    assert texts == ["[Example Service] first", "[Example Service] second"]


def test_only_the_sending_token_reads_a_message(app, client, alice, fake_line):
    fake_line.state.fail_next(PUSH, 500)
    message_id = notify(client, message="mine").get_json()["messageId"]
    with app.app_context():
        other_client, _ = register_client("Other", "https://other.example/cb")
        create_relay_token(find_client(other_client).id, alice, "other-service-token")
    other = outcome(client, message_id, {"Authorization": "Bearer other-service-token"})
    assert (other.status_code, other.get_json()["message"]) == (404, "No such message")
    assert outcome(client, "no-such-id").status_code == 404
    assert outcome(client, message_id, {}).status_code == 401
