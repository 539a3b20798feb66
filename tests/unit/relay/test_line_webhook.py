"""The relay's LINE webhook in channel mode: signature first, store once, process once.

The relay talks to the fake Messaging API (tests/fakes/line_api.py) over real HTTP for names
and replies; webhook bodies are signed here with the fake channel's secret. One module past 400
lines on purpose: one endpoint, followed from the signature to the processed event.
"""

from __future__ import annotations

import json
import logging
import re

import pytest
from sqlalchemy import func, select

from notify_site.extensions import db
from notify_site.relay.line.channel import current_settings
from notify_site.relay.line.events import process_events
from notify_site.relay.models import (
    RelayChat,
    RelayChatMember,
    RelayLineEvent,
    RelayPairing,
)
from tests.conftest import make_test_config
from tests.factories import add_person
from tests.fakes.line_api import (
    CHANNEL_SECRET,
    channel_config,
    event,
    sign,
    text_message,
    webhook_body,
)

WEBHOOK = "/relay/line/webhook"
ALICE = "U" + "a" * 32
BOB = "U" + "c" * 32
CAROL = "U" + "d" * 32
GROUP = "C" + "e" * 32
ROOM = "R" + "f" * 32


@pytest.fixture
def app_config(tmp_path, fake_line):
    fake_line.state.profiles.update({ALICE: "Alice", BOB: "Bob"})
    fake_line.state.groups[GROUP] = "Family"
    return make_test_config(tmp_path, **channel_config(fake_line, "https://relay.example/relay"))


def post(client, body: bytes, signature: str | None = "sign"):
    headers = {"Content-Type": "application/json"}
    if signature == "sign":
        signature = sign(body)
    if signature is not None:
        headers["X-Line-Signature"] = signature
    return client.post(WEBHOOK, data=body, headers=headers)


def process(app) -> int:
    with app.app_context():
        return process_events(current_settings())


def stored(app) -> list[RelayLineEvent]:
    with app.app_context():
        return list(db.session.scalars(select(RelayLineEvent).order_by(RelayLineEvent.id)))


def chat(app, line_id: str) -> RelayChat | None:
    with app.app_context():
        return db.session.scalar(select(RelayChat).where(RelayChat.line_id == line_id))


# --- Signature ---------------------------------------------------------------------------


def _tamper_body(body: bytes) -> tuple[bytes, str]:
    return body.replace(b"follow", b"unfollow"), sign(body)


def _tamper_signature(body: bytes) -> tuple[bytes, str]:
    good = sign(body)
    return body, ("A" if good[0] != "A" else "B") + good[1:]


@pytest.mark.parametrize(
    "mutate",
    [
        _tamper_body,
        _tamper_signature,
        lambda body: (body, sign(body, secret="another-channel-secret")),
        lambda body: (body, None),
        lambda body: (body, ""),
        lambda body: (body + b" ", sign(body)),
    ],
    ids=["body", "signature", "other-secret", "no-header", "empty-header", "trailing-byte"],
)
def test_a_bad_signature_is_refused_and_nothing_is_stored(app, client, mutate, fake_line):
    body, signature = mutate(webhook_body(event("follow", user=ALICE)))
    response = post(client, body, signature)
    assert response.status_code == 403
    assert response.get_json()["message"] == "invalid signature"
    assert stored(app) == []
    assert process(app) == 0
    assert fake_line.state.calls == []


def test_a_signature_over_a_body_that_is_not_json_is_refused_before_parsing(app, client):
    response = post(client, b"\xff\xfe not json", sign(b"\xff\xfe not json"))
    assert response.status_code == 403
    assert stored(app) == []


def test_a_signed_body_without_events_is_a_bad_request(app, client):
    response = post(client, b'{"destination": "U1"}')
    assert response.status_code == 400
    assert stored(app) == []


def test_the_url_check_with_an_empty_event_list_gets_200(app, client):
    response = post(client, webhook_body())
    assert response.status_code == 200
    assert response.get_json() == {"status": 200, "message": "ok"}
    assert stored(app) == []


def test_the_webhook_needs_no_csrf_token_but_checks_the_secret(tmp_path, fake_line):
    from notify_site import create_app
    from tests.conftest import init_database

    config = make_test_config(
        tmp_path, WTF_CSRF_ENABLED=True, **channel_config(fake_line, "https://relay.example/r")
    )
    app = create_app(config)
    init_database(app)
    client = app.test_client()
    assert post(client, webhook_body(event("follow", user=ALICE))).status_code == 200
    assert len(stored(app)) == 1
    assert CHANNEL_SECRET not in json.dumps([e.payload for e in stored(app)])


# --- Every event type --------------------------------------------------------------------


def media(kind: str, **fields) -> dict:
    message = {"type": kind, "id": "m-" + kind, "contentProvider": {"type": "line"}, **fields}
    if kind in ("image", "video"):
        message["quoteToken"] = "q-" + kind  # LINE sends one with these (the SDK requires it)
    return message


def test_a_mixed_body_registers_chats_members_and_messages(app, client, fake_line):
    events = [
        event("follow", user=ALICE, follow={"isUnblocked": False}),
        event("join", group=GROUP),
        event("join", room=ROOM),
        event("memberJoined", group=GROUP, joined={"members": [{"type": "user", "userId": BOB}]}),
        event("memberJoined", group=GROUP, joined={"members": [{"type": "user", "userId": CAROL}]}),
        event("memberLeft", group=GROUP, left={"members": [{"type": "user", "userId": CAROL}]}),
        text_message("hello", user=ALICE),
        event("message", user=ALICE, message=media("image")),
        event("message", group=GROUP, user=BOB, message=media("video", duration=1000)),
        event("message", group=GROUP, user=BOB, message=media("audio", duration=1000)),
        event(
            "message",
            room=ROOM,
            message={"type": "file", "id": "f1", "fileName": "a.pdf", "fileSize": 10},
        ),
        event(
            "message",
            user=BOB,
            message={
                "type": "location",
                "id": "l1",
                "title": "Tower",
                "address": "Tokyo",
                "latitude": 35.6,
                "longitude": 139.7,
            },
        ),
        event(
            "message",
            group=GROUP,
            user=BOB,
            message={
                "type": "sticker",
                "id": "s1",
                "quoteToken": "q-s1",
                "packageId": "446",
                "stickerId": "1988",
                "stickerResourceType": "STATIC",
            },
        ),
        # Unknown fields anywhere, an unknown event type and an unknown message type.
        event("follow", user=CAROL, follow={"isUnblocked": True, "brandNew": 1}, futureField=[1]),
        event("wave", user=ALICE, wave={"strength": 3}),
        event("message", user=ALICE, message={"type": "hologram", "id": "h1"}),
    ]
    response = post(client, webhook_body(*events))
    assert response.status_code == 200
    assert len(stored(app)) == len(events)
    process(app)
    rows = stored(app)
    assert all(row.processed_at is not None for row in rows)
    outcomes = [row.outcome for row in rows]
    assert outcomes[-2] == "ignored: not understood"  # the unknown event type
    assert outcomes[-1] == "ignored: not understood"  # the unknown message type
    assert not any(o.startswith("error") for o in outcomes), outcomes

    alice, group, room = chat(app, ALICE), chat(app, GROUP), chat(app, ROOM)
    assert (alice.name, alice.kind, alice.source_type, alice.reachable) == (
        "Alice",
        "USER",
        "user",
        True,
    )
    assert (group.name, group.kind, group.source_type) == ("Family", "GROUP", "group")
    assert room.kind == "GROUP"
    assert room.source_type == "room"
    assert room.name.startswith("LINE room")
    # Carol has no profile at the fake (404): she keeps a placeholder name.
    assert chat(app, CAROL).name.startswith("LINE user")
    # What each chat sent last, with its type.
    assert (alice.last_message_type, alice.last_message_summary) == ("image", "image")
    assert (group.last_message_type, group.last_message_summary) == ("sticker", "sticker 446/1988")
    assert (room.last_message_type, room.last_message_summary) == ("file", "file a.pdf")
    assert chat(app, BOB).last_message_summary == "location Tower"
    with app.app_context():
        members = {
            m.line_user_id: m.left_at is None
            for m in db.session.scalars(
                select(RelayChatMember).where(RelayChatMember.chat_id == group.id)
            )
        }
    assert members == {BOB: True, CAROL: False}
    profile_calls = {c.path for c in fake_line.state.calls_to(f"/v2/bot/profile/{ALICE}")}
    assert profile_calls == {f"/v2/bot/profile/{ALICE}"}
    assert len(fake_line.state.calls_to(f"/v2/bot/group/{GROUP}/summary")) == 1


def test_unfollow_keeps_the_chat_marked_unreachable_and_follow_brings_it_back(app, client):
    post(client, webhook_body(event("follow", user=ALICE)))
    post(client, webhook_body(event("unfollow", user=ALICE)))
    process(app)
    blocked = chat(app, ALICE)
    assert blocked is not None
    assert not blocked.reachable
    assert "blocked" in blocked.unreachable_reason
    post(client, webhook_body(event("follow", user=ALICE, follow={"isUnblocked": True})))
    process(app)
    assert chat(app, ALICE).reachable


def test_leave_marks_the_group_unreachable(app, client):
    post(client, webhook_body(event("join", group=GROUP)))
    post(client, webhook_body(event("leave", group=GROUP)))
    process(app)
    group = chat(app, GROUP)
    assert not group.reachable
    assert "left" in group.unreachable_reason


# --- Odd but signed bodies ----------------------------------------------------------------


def test_characters_no_database_can_hold_are_stored_and_handled(app, client, caplog):
    # JSON can escape half of a UTF-16 pair, which UTF-8 cannot encode (it was a 500), and
    # NUL, which PostgreSQL text refuses (the event failed; make test-postgres runs this).
    message = text_message("x", user=ALICE)
    follow = event("follow", user=ALICE)
    follow["source"]["userId"] = "U-odd"
    body = webhook_body(message, follow)
    body = body.replace(b'"text": "x"', b'"text": "\\ud800 half \\u0000"')
    body = body.replace(b'"U-odd"', b'"U\\udfff\\u0000"')
    assert json.loads(body)["events"][0]["message"]["text"] == "\ud800 half \x00"
    assert post(client, body).status_code == 200
    process(app)
    rows = stored(app)
    assert [row.outcome.split(":")[0] for row in rows] == ["message text", "follow"]
    assert chat(app, ALICE).last_message_summary == "\ufffd half \ufffd"
    assert chat(app, "U\ufffd\ufffd") is not None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("timestamp", [2**63, -(2**63) - 1, 10**30, True, 1.5])
def test_a_timestamp_that_is_not_an_int64_is_not_stored_as_one(app, client, timestamp):
    answer = post(client, webhook_body(event("follow", user=ALICE, timestamp=timestamp)))
    assert answer.status_code == 200
    (row,) = stored(app)
    assert row.event_timestamp is None
    process(app)
    assert chat(app, ALICE).reachable


# --- LINE's time order -------------------------------------------------------------------

T = 1_790_000_000_000  # a timestamp in LINE's milliseconds


@pytest.mark.parametrize(
    ("first", "second", "reachable"),
    [
        ("follow", "unfollow", True),  # the unfollow is older: the user follows now
        ("unfollow", "follow", False),
        ("join", "leave", True),
        ("leave", "join", False),
        ("message", "leave", True),  # a message proves the bot is still in the group
    ],
)
def test_an_older_event_handled_later_does_not_undo_a_newer_one(
    app, client, first, second, reachable
):
    # LINE does not promise order: here the newer event (T + 1000) arrives first.
    newer = event(first, group=GROUP, timestamp=T + 1000)
    if first == "message":
        newer = text_message("still here", group=GROUP, user=ALICE, timestamp=T + 1000)
    older = event(second, group=GROUP, timestamp=T)
    post(client, webhook_body(newer, older))
    process(app)
    assert chat(app, GROUP).reachable is reachable
    outcome = stored(app)[1].outcome
    assert outcome.endswith("(older than the chat's last event: changes nothing)"), outcome


def test_events_of_one_chat_handled_in_any_order_end_alike(app, client):
    # The after-response step and the worker may handle a chat's events at once, in either
    # order; LINE's timestamps decide.
    events = [
        event("follow", user=ALICE, timestamp=T),
        event("unfollow", user=ALICE, timestamp=T + 1000),
        event("follow", user=ALICE, timestamp=T + 2000),
        event("unfollow", user=ALICE, timestamp=T + 3000),
    ]
    post(client, webhook_body(*events))
    ids = [row.id for row in stored(app)]
    with app.app_context():
        process_events(current_settings(), list(reversed(ids)))
    alice = chat(app, ALICE)
    assert not alice.reachable
    assert alice.last_event_at.timestamp() * 1000 == T + 3000


def test_a_members_latest_join_or_leave_by_time_wins(app, client):
    bob = {"members": [{"type": "user", "userId": BOB}]}
    post(
        client,
        webhook_body(
            event("join", group=GROUP, timestamp=T),
            event("memberLeft", group=GROUP, left=bob, timestamp=T + 2000),
            event("memberJoined", group=GROUP, joined=bob, timestamp=T + 1000),  # older
        ),
    )
    process(app)
    with app.app_context():
        member = db.session.scalar(select(RelayChatMember))
        assert member.left_at is not None
        assert member.left_at.timestamp() * 1000 == T + 2000


def test_an_older_message_does_not_replace_the_last_one(app, client):
    post(
        client,
        webhook_body(
            text_message("newer", user=ALICE, timestamp=T + 1000),
            text_message("older", user=ALICE, timestamp=T),
        ),
    )
    process(app)
    assert chat(app, ALICE).last_message_summary == "newer"


# --- Redelivery and duplicates -----------------------------------------------------------


@pytest.mark.parametrize("redelivery", [False, True])
def test_the_redelivery_flag_is_recorded(app, client, redelivery):
    post(client, webhook_body(event("follow", user=ALICE, redelivery=redelivery)))
    (row,) = stored(app)
    assert row.is_redelivery is redelivery
    assert row.event_type == "follow"
    assert row.source_id == ALICE


def test_a_redelivered_event_is_recognised_and_not_handled_again(app, client, fake_line):
    first = event("follow", user=ALICE, event_id="01REDELIVERED0000000000000")
    post(client, webhook_body(first))
    process(app)
    again = dict(first, deliveryContext={"isRedelivery": True})
    assert post(client, webhook_body(again)).status_code == 200
    assert process(app) == 0
    (row,) = stored(app)
    assert row.duplicates == 1
    assert row.is_redelivery is False  # the first arrival's flag
    assert len(fake_line.state.calls_to(f"/v2/bot/profile/{ALICE}")) == 1


def test_the_same_event_100_times_is_handled_once(app, client, fake_line):
    body = webhook_body(text_message("hi", user=ALICE, event_id="01SAME00000000000000000000"))
    for _ in range(100):
        assert post(client, body).status_code == 200
        process(app)
    (row,) = stored(app)
    assert row.duplicates == 99
    assert row.outcome.startswith("message text")
    # One chat, named once: the profile endpoint was called for the one handling only.
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RelayChat)) == 1
    assert len(fake_line.state.calls_to(f"/v2/bot/profile/{ALICE}")) == 1


# --- Pairing codes -----------------------------------------------------------------------


def consent_page_code(app, client, registered) -> str:
    """The code on a consent page shown to a person signed in on ``client``."""
    add_person(app, client, "keiko")
    page = client.get(
        "/relay/oauth/authorize",
        query_string={
            "response_type": "code",
            "client_id": registered.client_id,
            "redirect_uri": registered.redirect_uri,
            "scope": "notify",
            "state": "s1",
        },
    )
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    return re.search(r'class="relay-line-code"[^>]*><code>([A-Z0-9-]+)</code>', html).group(1)


def test_a_pairing_code_from_a_chat_binds_it_and_the_bot_replies(
    app,
    client,
    registered,
    fake_line,
):
    code = consent_page_code(app, client, registered)
    message = text_message(f"  {code.lower()} ", user=ALICE)
    post(client, webhook_body(message))
    process(app)
    with app.app_context():
        (pairing,) = db.session.scalars(select(RelayPairing)).all()
        assert pairing.chat.line_id == ALICE
        assert pairing.matched_at is not None
    (reply,) = fake_line.state.calls_to("/v2/bot/message/reply")
    assert reply.json["replyToken"] == message["replyToken"]
    assert registered.name in reply.json["messages"][0]["text"]
    assert reply.header("authorization") == "Bearer fake-long-lived-channel-token"
    # A second chat sending the same code gets nothing: the first chat won.
    post(client, webhook_body(text_message(code, user=BOB)))
    process(app)
    assert len(fake_line.state.calls_to("/v2/bot/message/reply")) == 1
    with app.app_context():
        assert db.session.scalar(select(RelayPairing.chat_id)) == chat(app, ALICE).id


def test_a_code_in_standby_mode_binds_but_the_bot_stays_silent(app, client, registered, fake_line):
    code = consent_page_code(app, client, registered)
    post(client, webhook_body(text_message(code, user=ALICE, mode="standby")))
    process(app)
    assert fake_line.state.calls_to("/v2/bot/message/reply") == []
    with app.app_context():
        assert db.session.scalar(select(RelayPairing.matched_at)) is not None


def test_ordinary_text_is_not_taken_for_a_code(app, client, registered, fake_line):
    consent_page_code(app, client, registered)
    post(client, webhook_body(text_message("good morning everyone", user=ALICE)))
    process(app)
    assert fake_line.state.calls_to("/v2/bot/message/reply") == []
    with app.app_context():
        assert db.session.scalar(select(RelayPairing.matched_at)) is None


# --- Events the SDK refuses for a missing field ------------------------------------------


def minimal(body: dict, *drop: str) -> dict:
    """``body`` without the top-level fields ``drop`` (and ``mode``, which LINE may omit)."""
    return {k: v for k, v in body.items() if k not in {*drop, "mode"}}


def test_events_the_sdk_refuses_still_update_the_registry(app, client, fake_line):
    from linebot.v3.webhooks import Event

    events = [
        minimal(event("follow", user=ALICE), "follow"),
        minimal(event("join", group=GROUP), "replyToken"),
        minimal(
            event("memberJoined", group=GROUP, joined={"members": [{"userId": BOB}, {"x": 1}]}),
            "replyToken",
        ),
        minimal(event("memberLeft", group=GROUP, left={"members": [{"userId": BOB}]})),
        minimal(event("join", room=ROOM), "replyToken"),
        minimal(event("leave", room=ROOM)),
        minimal(event("unfollow", user=BOB), "deliveryContext"),
    ]
    for body in events:  # each one is refused by the SDK as it stands
        with pytest.raises(ValueError, match="validation error"):
            Event.from_dict(body)
    post(client, webhook_body(*events))
    process(app)
    outcomes = [row.outcome for row in stored(app)]
    assert not any(o.startswith(("ignored", "error")) for o in outcomes), outcomes

    alice, group, room = chat(app, ALICE), chat(app, GROUP), chat(app, ROOM)
    assert (alice.name, alice.kind, alice.reachable) == ("Alice", "USER", True)
    assert (group.name, group.kind, group.source_type) == ("Family", "GROUP", "group")
    assert (room.source_type, room.reachable) == ("room", False)
    assert "blocked" in chat(app, BOB).unreachable_reason
    with app.app_context():
        (member,) = db.session.scalars(
            select(RelayChatMember).where(RelayChatMember.chat_id == group.id)
        ).all()
    assert (member.line_user_id, member.left_at is not None) == (BOB, True)


@pytest.mark.parametrize(
    ("message", "summary"),
    [
        ({"type": "image", "id": "i1"}, "image"),
        ({"type": "video", "id": "v1", "duration": 100}, "video"),
        ({"type": "audio", "id": "a1"}, "audio"),
        (
            {"type": "sticker", "id": "s1", "packageId": "446", "stickerId": "1988"},
            "sticker 446/1988",
        ),
        ({"type": "text", "id": "t1", "text": "hi there"}, "hi there"),
    ],
)
def test_messages_without_quote_token_or_content_provider_are_recorded(
    app, client, message, summary
):
    body = minimal(event("message", group=GROUP, user=BOB, message=message))
    post(client, webhook_body(body))
    process(app)
    (row,) = stored(app)
    assert row.outcome.startswith(f"message {message['type']}: chat"), row.outcome
    group = chat(app, GROUP)
    assert (group.last_message_type, group.last_message_summary) == (message["type"], summary)
    assert group.name == "Family"


def test_a_pairing_code_in_a_text_without_quote_token_still_pairs(
    app, client, registered, fake_line
):
    code = consent_page_code(app, client, registered)
    post(
        client,
        webhook_body(
            minimal(event("message", user=ALICE, message={"type": "text", "id": "t", "text": code}))
        ),
    )
    process(app)
    with app.app_context():
        assert db.session.scalar(select(RelayPairing.chat_id)) == chat(app, ALICE).id
    assert len(fake_line.state.calls_to("/v2/bot/message/reply")) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"type": "message", "message": {"type": "hologram", "id": "h"}},  # unknown message type
        {"type": "follow", "source": {"type": "user"}},  # no user id
        {"type": "follow", "source": None},  # no source at all (webhook.yml allows both)
        {"type": "follow", "source": {"type": "user", "userId": 7}},  # not a string
        {"type": "join", "source": {"type": "planet", "planetId": "P1"}},
    ],
)
def test_refused_events_that_cannot_be_read_either_register_nothing(app, client, body, caplog):
    raw = {**minimal(event("follow", user=ALICE), "follow", "source", "replyToken"), **body}
    raw = {key: value for key, value in raw.items() if value is not None}
    post(client, webhook_body(raw))
    process(app)
    (row,) = stored(app)
    # Ignored and logged, never an error with a traceback.
    assert row.outcome.startswith("ignored"), row.outcome
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RelayChat)) == 0


# --- Unsend (issue 22) -------------------------------------------------------------------


def unsend(message_id: str, **kwargs) -> dict:
    body = event("unsend", unsend={"messageId": message_id}, **kwargs)
    body.pop("replyToken", None)  # LINE sends none with an unsend
    return body


def stored_texts(app) -> list[str]:
    return [
        json.loads(row.payload)["message"].get("text")
        for row in stored(app)
        if row.event_type == "message"
    ]


def test_unsend_blanks_the_stored_text_and_the_summary(app, client):
    said = text_message("my card number is 1234", user=ALICE, timestamp=T)
    post(client, webhook_body(said))
    process(app)
    assert chat(app, ALICE).last_message_summary == "my card number is 1234"
    post(client, webhook_body(unsend(said["message"]["id"], user=ALICE, timestamp=T + 5000)))
    process(app)
    assert stored_texts(app) == [""]
    assert (chat(app, ALICE).last_message_type, chat(app, ALICE).last_message_summary) == (
        "unsent",
        "",
    )
    assert stored(app)[1].outcome == f"unsend: chat {chat(app, ALICE).id}, 1 blanked"
    assert "1234" not in "".join(row.payload for row in stored(app))


def test_an_unsend_handled_before_its_message_is_still_honoured(app, client):
    said = text_message("oops", user=ALICE, timestamp=T)
    post(client, webhook_body(unsend(said["message"]["id"], user=ALICE, timestamp=T + 5000)))
    process(app)
    post(client, webhook_body(said))
    process(app)
    assert stored_texts(app) == [""]
    assert chat(app, ALICE).last_message_summary == ""
    assert "oops" not in "".join(row.payload for row in stored(app))


def test_unsending_an_older_message_keeps_the_newer_summary(app, client):
    older = text_message("older", user=ALICE, timestamp=T)
    post(client, webhook_body(older, text_message("newer", user=ALICE, timestamp=T + 1000)))
    process(app)
    post(client, webhook_body(unsend(older["message"]["id"], user=ALICE, timestamp=T + 2000)))
    process(app)
    assert stored_texts(app) == ["", "newer"]
    assert chat(app, ALICE).last_message_summary == "newer"


@pytest.mark.parametrize("kind", ["message", "unsend"])
def test_message_and_unsend_events_without_a_source_are_stored_and_ignored(
    app, client, kind, caplog
):
    body = text_message("hi", user=ALICE) if kind == "message" else unsend("1", user=ALICE)
    del body["source"]
    post(client, webhook_body(body))
    process(app)
    (row,) = stored(app)
    assert row.outcome.startswith("ignored"), row.outcome
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
