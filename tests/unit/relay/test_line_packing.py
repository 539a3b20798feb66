"""Packing (issue 15): the push job packs the chat's already-queued pushes into one request
(≤ 5 message objects, the same notificationDisabled, in order), with one retry key stored
before the first attempt; LINE counts the pack once per recipient."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.relay.models import PushStatus, RelayPush
from notify_site.relay.quota_models import RelayLineUsage
from tests.conftest import make_test_config
from tests.fakes.line_api import channel_config
from tests.unit.relay.line_pushes import add_line_user_chat, notify, pushes, run

PUSH = "/v2/bot/message/push"


@pytest.fixture
def app_config(tmp_path, fake_line):
    return make_test_config(
        tmp_path,
        RELAY_LINE_MAX_ATTEMPTS=3,
        RELAY_LINE_SYNC_WAIT_SECONDS=0,  # the worker packs what waits (test_line_sync.py: callers)
        **channel_config(fake_line, "https://relay.example/relay"),
    )


@pytest.fixture
def alice(app, registered) -> int:
    return add_line_user_chat(app, registered)


def texts(call) -> list[str]:
    return [m.get("text", m["type"]) for m in call.json["messages"]]


def test_queued_pushes_ride_in_one_request_in_order(app, client, alice, fake_line):
    for n in range(7):
        assert notify(client, message=f"m{n}").status_code == 200
    assert run(app) == 2  # 7 notifications, 2 calls: 5 + 2
    first, second = fake_line.state.pushes
    assert texts(first) == [f"[Example Service] m{n}" for n in range(5)]
    assert texts(second) == [f"[Example Service] m{n}" for n in (5, 6)]
    assert fake_line.state.consumption == 2
    rows = pushes(app)
    assert [r.status for r in rows] == ["delivered"] * 7
    assert [r.packed_into_id for r in rows] == [1, 1, 1, 1, 1, 6, 6]
    with app.app_context():
        units = [
            u
            for (u,) in db.session.execute(select(RelayLineUsage.units).order_by(RelayLineUsage.id))
        ]
        states = list(db.session.scalars(select(RelayLineUsage.state).order_by(RelayLineUsage.id)))
    assert sum(u for u, s in zip(units, states, strict=True) if s == "spent") == 2


def test_the_five_object_limit_counts_images_and_stickers(app, client, alice, fake_line):
    rich = {
        "imageThumbnail": "https://img.example/t.png",
        "imageFullsize": "https://img.example/f.png",
        "stickerPackageId": "446",
        "stickerId": "1988",
    }
    notify(client, message="a", **rich)  # 3 objects
    notify(client, message="b")  # 1: fits (4)
    notify(client, message="c", **rich)  # 3: does not fit; nothing after it overtakes it
    notify(client, message="d")
    run(app)
    first, second = fake_line.state.pushes
    assert texts(first) == ["[Example Service] a", "image", "sticker", "[Example Service] b"]
    assert texts(second) == ["[Example Service] c", "image", "sticker", "[Example Service] d"]
    assert all(len(c.json["messages"]) <= 5 for c in fake_line.state.pushes)


def test_a_different_notification_disabled_starts_a_new_push(app, client, alice, fake_line):
    notify(client, message="loud 1")
    notify(client, message="silent", notificationDisabled="true")
    notify(client, message="loud 2")
    run(app)
    calls = fake_line.state.pushes
    assert [texts(c) for c in calls] == [
        ["[Example Service] loud 1"],
        ["[Example Service] silent"],
        ["[Example Service] loud 2"],
    ]
    assert [c.json.get("notificationDisabled", False) for c in calls] == [False, True, False]


def test_a_500_then_200_delivers_the_pack_once_with_one_key(app, client, alice, fake_line):
    fake_line.state.fail_next(PUSH, 500)
    for n in range(3):
        notify(client, message=f"m{n}")
    assert run(app) == 1  # 500: the pack stays decided
    notify(client, message="late")  # queued after the first attempt: not added to the pack
    run(app)
    first, second, third = fake_line.state.pushes
    assert first.header("x-line-retry-key") == second.header("x-line-retry-key")
    assert first.json == second.json
    assert (first.status, second.status, third.status) == (500, 200, 200)
    assert texts(third) == ["[Example Service] late"]
    assert len(fake_line.state.delivered) == 2
    assert [r.status for r in pushes(app)] == ["delivered"] * 4


def test_a_409_counts_the_whole_pack_delivered(app, client, alice, fake_line):
    for n in range(2):
        notify(client, message=f"m{n}")
    run(app)
    # As if the worker died between LINE's 200 and its commit: the leader is pending again.
    with app.app_context():
        leader = db.session.get(RelayPush, 1)
        leader.status, leader.finished_at = PushStatus.PENDING, None
        follower = db.session.get(RelayPush, 2)
        follower.status = PushStatus.PACKED
        db.session.commit()
    notify(client, message="new")  # must not join the old pack: its body is fixed
    run(app)
    statuses = [c.status for c in fake_line.state.pushes]
    assert statuses == [200, 409, 200]
    assert fake_line.state.pushes[0].json == fake_line.state.pushes[1].json
    assert [r.status for r in pushes(app)] == ["delivered"] * 3
    assert len(fake_line.state.delivered) == 2


def test_a_refused_pack_fails_every_notification_in_it(app, client, alice, fake_line):
    fake_line.state.fail_next(PUSH, 400)
    notify(client, message="a")
    notify(client, message="b")
    run(app)
    assert [r.status for r in pushes(app)] == ["failed", "failed"]
    with app.app_context():
        assert set(db.session.scalars(select(RelayLineUsage.state))) == {"refunded"}


def test_the_line_page_shows_which_push_carried_a_packed_one(app, client, alice, fake_line):
    from tests.factories import create_user

    for n in range(3):
        notify(client, message=f"m{n}")
    run(app)
    with app.app_context():
        admin = create_user("root", admin=True).get_id()
    with client.session_transaction() as session:
        session["_user_id"], session["_fresh"] = admin, True
    page = client.get("/relay/line/admin").get_data(as_text=True)
    assert page.count('data-packed-into="1"') == 2
    assert "data-units-used>1<" in page  # three notifications, one push to one user


def test_a_digest_window_holds_a_push_to_gather_the_next(app, client, alice, fake_line):
    from datetime import timedelta

    from sqlalchemy import update

    from notify_site.db_types import utcnow

    app.config["RELAY_LINE_DIGEST_SECONDS"] = 60
    notify(client, message="first")
    notify(client, message="second")
    assert run(app) == 0  # held: nothing is due yet
    with app.app_context():  # the first one's window ends
        db.session.execute(
            update(RelayPush)
            .where(RelayPush.id == 1)
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    assert run(app) == 1
    (call,) = fake_line.state.pushes
    assert texts(call) == ["[Example Service] first", "[Example Service] second"]
    assert [r.status for r in pushes(app)] == ["delivered", "delivered"]
