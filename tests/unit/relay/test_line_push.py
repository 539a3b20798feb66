"""Channel mode's delivery: /api/notify answers as in sandbox mode, and a push goes to LINE
with a retry key fixed before the first attempt (against the fake Messaging API)."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.outbox import new_token
from notify_site.relay.line.push import LEASE, PUSHES
from notify_site.relay.models import PushStatus, RelayChat, RelayPush
from tests import images
from tests.conftest import make_test_config
from tests.fakes.line_api import channel_config
from tests.servers import wait_until
from tests.unit.relay.line_pushes import ALICE, TOKEN, add_line_user_chat, notify, pushes, run

PUSH = "/v2/bot/message/push"
PNG = images.png()
RATE_HEADERS = {
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-ImageLimit",
    "X-RateLimit-ImageRemaining",
    "X-RateLimit-Reset",
}


@pytest.fixture
def app_config(tmp_path, fake_line):
    return make_test_config(
        tmp_path,
        RELAY_LINE_MAX_ATTEMPTS=3,
        RELAY_LINE_SYNC_WAIT_SECONDS=0,  # the worker's path (test_line_sync.py: the caller's)
        **channel_config(fake_line, "https://relay.example/relay"),
    )


@pytest.fixture
def alice(app, registered) -> int:
    """A LINE user chat with a relay access token; returns the chat id."""
    return add_line_user_chat(app, registered)


def test_notify_stores_the_retry_key_before_any_call(
    app,
    client,
    alice,
    fake_line,
):
    response = notify(client, message="Disk full")
    assert response.status_code == 200
    (push,) = pushes(app)
    # Not waiting for LINE here (RELAY_LINE_SYNC_WAIT_SECONDS=0): pending, with its id.
    assert response.get_json() == {
        "status": 200,
        "message": "ok",
        "delivery": "pending",
        "messageId": push.public_id,
    }
    assert set(response.headers.keys()) >= RATE_HEADERS
    assert push.status == PushStatus.PENDING
    assert uuid.UUID(push.retry_key).version == 4
    assert push.to_id == ALICE
    assert fake_line.state.pushes == []  # nothing sent from inside the request


def test_a_push_carries_text_image_sticker_and_silence(app, client, alice, fake_line):
    notify(
        client,
        message="Build failed",
        imageThumbnail="https://img.example/t.png",
        imageFullsize="https://img.example/f.png",
        stickerPackageId="446",
        stickerId="1988",
        notificationDisabled="TRUE",
    )
    assert run(app) == 1
    (call,) = fake_line.state.pushes
    (push,) = pushes(app)
    assert call.header("x-line-retry-key") == push.retry_key
    assert call.header("authorization") == "Bearer fake-long-lived-channel-token"
    assert call.json == {
        "to": ALICE,
        "notificationDisabled": True,
        "messages": [
            {"type": "text", "text": "[Example Service] Build failed"},
            {
                "type": "image",
                "originalContentUrl": "https://img.example/f.png",
                "previewImageUrl": "https://img.example/t.png",
            },
            {"type": "sticker", "packageId": "446", "stickerId": "1988"},
        ],
    }
    assert (push.status, push.attempts, push.last_status_code) == ("delivered", 1, 200)
    assert push.line_request_id


def test_an_uploaded_image_is_pushed_from_the_public_base_url(app, client, alice, fake_line):
    response = client.post(
        "/relay/api/notify",
        data={"message": "look", "imageFile": (__import__("io").BytesIO(PNG), "a.png")},
        headers={"Authorization": f"Bearer {TOKEN}"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    run(app)
    image = fake_line.state.pushes[0].json["messages"][1]
    assert image["originalContentUrl"].startswith("https://relay.example/relay/images/")
    assert client.get(image["originalContentUrl"].removeprefix("https://relay.example")).data == PNG
    # The preview has its own URL (a large upload is scaled into LINE's 1 MB), same signature.
    original, query = image["originalContentUrl"].split("?")
    assert image["previewImageUrl"] == f"{original}/preview?{query}"
    preview = client.get(image["previewImageUrl"].removeprefix("https://relay.example"))
    assert (preview.status_code, preview.data) == (200, PNG)
    unsigned = client.get(image["previewImageUrl"].removeprefix("https://relay.example")[:-3])
    assert unsigned.status_code == 404


def test_a_server_error_is_retried_with_the_same_key_and_delivered_once(
    app,
    client,
    alice,
    fake_line,
):
    fake_line.state.fail_next(PUSH, 500)
    notify(client, message="retry me")
    assert run(app) == 1  # 500
    assert pushes(app)[0].status == PushStatus.PENDING
    assert run(app) == 1  # 200 (backoff is 0 in the tests)
    first, second = fake_line.state.pushes
    assert first.header("x-line-retry-key") == second.header("x-line-retry-key")
    assert (first.status, second.status) == (500, 200)
    assert len(fake_line.state.delivered) == 1
    assert (pushes(app)[0].status, pushes(app)[0].attempts) == ("delivered", 2)


def test_409_counts_as_delivered_and_nothing_is_sent_twice(app, client, alice, fake_line):
    notify(client, message="once")
    run(app)
    # As if the worker died between LINE's 200 and its commit: the row is pending again.
    with app.app_context():
        push = db.session.scalar(select(RelayPush))
        push.status, push.finished_at = PushStatus.PENDING, None
        db.session.commit()
    run(app)
    assert [c.status for c in fake_line.state.pushes] == [200, 409]
    assert len(fake_line.state.delivered) == 1
    (push,) = pushes(app)
    assert push.status == PushStatus.DELIVERED
    assert push.line_request_id == fake_line.state.delivered[0]["requestId"]


def test_429_backs_off_with_the_same_key_and_counts_its_attempts(app, client, alice, fake_line):
    """Issue 22: a 429 used to spend no attempt, so its wait never grew (uniform(0, 15 s)
    for 20 hours). It now counts, like any refused attempt, and the backoff grows with it."""
    fake_line.state.fail_next(PUSH, 429, 429)
    notify(client, message="busy")
    for _ in range(2):
        run(app)
    (push,) = pushes(app)
    assert (push.status, push.attempts, push.last_status_code) == ("pending", 2, 429)
    run(app)
    assert (pushes(app)[0].status, pushes(app)[0].attempts) == ("delivered", 3)
    assert len({c.header("x-line-retry-key") for c in fake_line.state.pushes}) == 1


def test_429s_give_up_after_the_attempts(app, client, alice, fake_line):
    fake_line.state.fail_next(PUSH, 429, 429, 429)
    notify(client, message="over the limit")
    for _ in range(3):
        run(app)
    assert run(app) == 0
    (push,) = pushes(app)
    assert (push.status, push.attempts, push.last_status_code) == ("failed", 3, 429)
    assert push.last_error.startswith("gave up after 3: HTTP 429")
    assert fake_line.state.delivered == []


def test_400_is_final_after_one_attempt(app, client, alice, fake_line):
    fake_line.state.fail_next(PUSH, 400)
    notify(client, message="bad")
    run(app)
    assert run(app) == 0
    (push,) = pushes(app)
    assert (push.status, push.attempts, push.last_status_code) == ("failed", 1, 400)
    assert "injected 400" in push.last_error


def test_server_errors_give_up_after_the_attempts(app, client, alice, fake_line):
    fake_line.state.fail_next(PUSH, 500, 503, 502)
    notify(client, message="down")
    for _ in range(3):
        run(app)
    assert run(app) == 0
    (push,) = pushes(app)
    assert (push.status, push.attempts) == ("failed", 3)
    assert fake_line.state.delivered == []


def test_an_unreachable_chat_refuses_the_token_and_pending_pushes_fail_unsent(
    app,
    client,
    alice,
    fake_line,
):
    notify(client, message="before the block")
    with app.app_context():
        chat = db.session.get(RelayChat, alice)
        chat.unreachable_at = utcnow()
        chat.unreachable_reason = "blocked"
        db.session.commit()
    assert run(app) == 0
    assert pushes(app)[0].status == "failed"
    assert pushes(app)[0].last_error == "chat unreachable"
    assert fake_line.state.pushes == []
    for response in (
        notify(client, message="after"),
        client.get("/relay/api/status", headers={"Authorization": f"Bearer {TOKEN}"}),
    ):
        assert response.status_code == 401
        # LINE's body plus the extension field that tells clients the token is still sound.
        assert response.get_json() == {
            "status": 401,
            "message": "Invalid access token: the chat can no longer be reached",
            "reason": "chat_unreachable",
        }
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    # An unknown token keeps LINE's plain body.
    other = client.get("/relay/api/status", headers={"Authorization": "Bearer nope"})
    assert other.get_json() == {"status": 401, "message": "Invalid access token"}


def test_an_unreachable_chats_token_can_still_be_revoked(app, client, alice):
    with app.app_context():
        chat = db.session.get(RelayChat, alice)
        chat.unreachable_at = utcnow()
        db.session.commit()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    answer = client.post("/relay/api/revoke", headers=headers)
    assert answer.get_json() == {"status": 200, "message": "ok"}
    with app.app_context():
        chat = db.session.get(RelayChat, alice)
        chat.unreachable_at = None
        db.session.commit()
    # Revoked for good: the chat coming back does not bring the token back.
    after = client.get("/relay/api/status", headers=headers)
    assert after.get_json() == {"status": 401, "message": "Invalid access token"}


def test_status_names_the_line_chat(app, client, alice):
    answer = client.get("/relay/api/status", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.get_json() == {
        "status": 200,
        "message": "ok",
        "targetType": "USER",
        "target": "Alice",
    }


def test_a_push_claimed_again_during_a_slow_call_is_finished_only_by_the_newer_claim(
    app, client, alice, fake_line
):
    """The fence of the shared outbox: a worker whose lease ran out while LINE was slow, and
    whose push another worker claimed meanwhile, does not write its outcome over the newer
    claim's; the newer one repeats the key and LINE's 409 keeps it one message."""
    notify(client, message="slow")
    release = threading.Event()
    fake_line.state.hold(PUSH, release)
    first = threading.Thread(target=run, args=(app,))
    first.start()
    wait_until(lambda: fake_line.state.pushes, 10, "LINE to hold the first worker's call")
    with app.app_context():
        # The first lease runs out; a second worker claims the push.
        (push_id,) = db.session.scalars(select(RelayPush.id))
        db.session.execute(update(RelayPush).values(lease_until=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        newer = new_token()
        assert PUSHES.claim(RelayPush.id == push_id, token=newer, now=utcnow(), duration=LEASE)
        db.session.commit()
    release.set()
    first.join(20)
    assert not first.is_alive()
    (push,) = pushes(app)
    assert (push.status, push.attempts, push.lease_token) == ("pending", 0, newer)
    # The newer claim's lease runs out too (its worker never came); the next push repeats the
    # key, and LINE's 409 means delivered, once.
    with app.app_context():
        db.session.execute(update(RelayPush).values(lease_until=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert run(app) == 1
    assert [c.status for c in fake_line.state.pushes] == [200, 409]
    assert len(fake_line.state.delivered) == 1
    assert pushes(app)[0].status == "delivered"


IMAGE_REFUSED = (
    400,
    {
        "message": "The request body has 1 error(s)",
        "details": [
            {"message": "must be a valid HTTPS URL", "property": "messages[1].originalContentUrl"}
        ],
    },
)


def test_lines_details_are_kept_in_the_reason(app, client, alice, fake_line):
    fake_line.state.fail_next(
        PUSH,
        (
            400,
            {
                "message": "The request body has 1 error(s)",
                "details": [{"message": "Length must be between 0 and 5000", "property": "text"}],
            },
        ),
    )
    notify(client, message="long")
    run(app)
    (push,) = pushes(app)
    assert push.status == PushStatus.FAILED
    assert push.last_error == (
        "HTTP 400: The request body has 1 error(s) (text: Length must be between 0 and 5000)"
    )


def test_an_image_refusal_keeps_the_text(app, client, alice, fake_line):
    """Issue 22: LINE's 400 for the image used to fail the whole push, text and all."""
    fake_line.state.fail_next(PUSH, IMAGE_REFUSED)
    notify(
        client,
        message="Build failed",
        imageThumbnail="https://img.example/t.png",
        imageFullsize="https://img.example/f.png",
        stickerPackageId="446",
        stickerId="1988",
    )
    first_key = pushes(app)[0].retry_key
    assert run(app) == 1
    (push,) = pushes(app)
    assert push.status == PushStatus.PENDING
    assert "messages[1].originalContentUrl: must be a valid HTTPS URL" in push.image_error
    assert push.retry_key != first_key  # stored before the text's own attempt
    assert run(app) == 1
    refused, sent = fake_line.state.pushes
    assert [m["type"] for m in refused.json["messages"]] == ["text", "image", "sticker"]
    assert [m["type"] for m in sent.json["messages"]] == ["text", "sticker"]
    assert sent.header("x-line-retry-key") == pushes(app)[0].retry_key
    (push,) = pushes(app)
    assert (push.status, push.attempts) == (PushStatus.DELIVERED, 2)
    assert push.image_error.startswith("HTTP 400")


def test_a_refusal_not_about_the_image_stays_final(app, client, alice, fake_line):
    fake_line.state.fail_next(
        PUSH,
        (400, {"message": "Bad", "details": [{"message": "too long", "property": "messages[0]"}]}),
    )
    notify(
        client,
        message="x",
        imageThumbnail="https://i.example/t",
        imageFullsize="https://i.example/f",
    )
    run(app)
    assert run(app) == 0
    (push,) = pushes(app)
    assert (push.status, push.image_error) == (PushStatus.FAILED, None)
    assert len(fake_line.state.pushes) == 1
