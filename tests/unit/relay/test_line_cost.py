"""What a push costs in LINE's monthly quota, and the ledger that counts it (issue 15):
one unit per recipient (a group or room: its member count from LINE, cached and refreshed),
counted in the billing month, by chat, token, service and person; against the fake
Messaging API, which counts consumption the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.relay.clients import find_client
from notify_site.relay.line import cost
from notify_site.relay.models import RelayChat
from notify_site.relay.quota_models import RelayLineUsage, UsageState
from tests.conftest import make_test_config
from tests.factories import create_relay_token
from tests.fakes.line_api import channel_config, event, sign, webhook_body
from tests.unit.relay.line_pushes import run

GROUP = "C" + "e" * 32
ROOM = "R" + "f" * 32
USER = "U" + "a" * 32
TOKYO = ZoneInfo("Asia/Tokyo")


# --- Pure rules --------------------------------------------------------------------------


def test_the_billing_month_turns_at_midnight_japan_time():
    assert cost.billing_month(datetime(2026, 11, 30, 14, 59, tzinfo=UTC), TOKYO) == "2026-11"
    assert cost.billing_month(datetime(2026, 11, 30, 15, 0, tzinfo=UTC), TOKYO) == "2026-12"
    assert cost.next_month_start(datetime(2026, 12, 5, tzinfo=UTC), TOKYO) == datetime(
        2026, 12, 31, 15, 0, tzinfo=UTC
    )
    assert cost.month_start(datetime(2026, 12, 5, tzinfo=UTC), TOKYO) == datetime(
        2026, 11, 30, 15, 0, tzinfo=UTC
    )
    taipei = ZoneInfo("Asia/Taipei")
    assert cost.billing_month(datetime(2026, 11, 30, 15, 30, tzinfo=UTC), taipei) == "2026-11"


@pytest.mark.parametrize(
    ("chat", "units"),
    [
        (RelayChat(kind="USER", name="a", line_id=USER, source_type="user"), 1),
        (RelayChat(kind="GROUP", name="g", line_id=GROUP, source_type="group", member_count=7), 7),
        (RelayChat(kind="GROUP", name="r", line_id=ROOM, source_type="room", member_count=3), 3),
        (RelayChat(kind="GROUP", name="g", line_id=GROUP, source_type="group"), 1),
        (RelayChat(kind="USER", name="sandbox user"), 1),
        (RelayChat(kind="GROUP", name="Family"), 4),
    ],
)
def test_a_push_costs_one_unit_per_recipient(chat, units):
    assert cost.units_for(chat, {"RELAY_SANDBOX_GROUP_MEMBERS": 4}) == units


def test_a_member_count_is_read_again_after_a_day():
    now = datetime(2026, 12, 5, tzinfo=UTC)
    chat = RelayChat(kind="GROUP", name="g", line_id=GROUP, source_type="group")
    assert cost.needs_count(chat, now)
    chat.member_count, chat.member_count_at = 5, now - timedelta(hours=23)
    assert not cost.needs_count(chat, now)
    chat.member_count_at = now - timedelta(days=1)
    assert cost.needs_count(chat, now)
    assert not cost.needs_count(RelayChat(kind="USER", name="u", line_id=USER), now)


# --- Against the fake Messaging API ------------------------------------------------------


@pytest.fixture
def app_config(tmp_path, fake_line):
    fake_line.state.member_counts.update({GROUP: 5, ROOM: 3})
    # The worker's path: calls queue their pushes (test_line_sync.py: a caller that waits).
    return make_test_config(
        tmp_path,
        RELAY_LINE_SYNC_WAIT_SECONDS=0,
        **channel_config(fake_line, "https://relay.example/relay"),
    )


def add_chat(app, registered, line_id: str, source_type: str, token: str, person: int = 1):
    with app.app_context():
        kind = "USER" if source_type == "user" else "GROUP"
        chat = RelayChat(kind=kind, name=line_id[:6], line_id=line_id, source_type=source_type)
        db.session.add(chat)
        db.session.commit()
        create_relay_token(find_client(registered.client_id).id, chat.id, token, person_id=person)
        return chat.id


def notify(client, token: str, message: str = "hello"):
    return client.post(
        "/relay/api/notify", data={"message": message}, headers={"Authorization": f"Bearer {token}"}
    )


def usage(app) -> list[tuple[int, int, str]]:
    with app.app_context():
        rows = db.session.scalars(select(RelayLineUsage).order_by(RelayLineUsage.id))
        return [(row.chat_id, row.units, row.state) for row in rows]


@pytest.mark.parametrize(
    ("line_id", "source_type", "units", "count_path"),
    [
        (USER, "user", 1, None),
        (GROUP, "group", 5, f"/v2/bot/group/{GROUP}/members/count"),
        (ROOM, "room", 3, f"/v2/bot/room/{ROOM}/members/count"),
    ],
)
def test_each_push_is_charged_per_recipient_reserved_then_spent(
    app, client, registered, fake_line, line_id, source_type, units, count_path
):
    chat_id = add_chat(app, registered, line_id, source_type, "tok-a")
    assert notify(client, "tok-a").status_code == 200
    assert usage(app) == [(chat_id, units, UsageState.RESERVED)]
    assert run(app) == 1
    assert usage(app) == [(chat_id, units, UsageState.SPENT)]
    assert fake_line.state.consumption == units
    counted = fake_line.state.calls_to(count_path) if count_path else []
    assert len(counted) == (1 if count_path else 0)
    # The second push uses the cached count: no new call.
    notify(client, "tok-a")
    run(app)
    assert fake_line.state.consumption == 2 * units
    assert len(fake_line.state.calls_to(count_path) if count_path else []) == len(counted)


def test_a_day_old_count_is_read_again_before_the_push(app, client, registered, fake_line):
    chat_id = add_chat(app, registered, GROUP, "group", "tok-g")
    notify(client, "tok-g")
    run(app)
    with app.app_context():
        db.session.execute(
            update(RelayChat)
            .where(RelayChat.id == chat_id)
            .values(member_count_at=utcnow() - timedelta(days=2))
        )
        db.session.commit()
    fake_line.state.member_counts[GROUP] = 8
    notify(client, "tok-g")  # priced from the cached count: 5
    assert usage(app)[-1] == (chat_id, 5, UsageState.RESERVED)
    run(app)  # the push job reads 8 first and charges what LINE counts
    assert usage(app)[-1] == (chat_id, 8, UsageState.SPENT)
    assert fake_line.state.consumption == 13


def test_a_refused_push_is_refunded(app, client, registered, fake_line):
    chat_id = add_chat(app, registered, USER, "user", "tok-u")
    fake_line.state.fail_next("/v2/bot/message/push", 400)
    notify(client, "tok-u")
    run(app)
    assert usage(app) == [(chat_id, 1, UsageState.REFUNDED)]
    assert fake_line.state.consumption == 0


def test_member_events_refresh_the_count(app, client, registered, fake_line):
    chat_id = add_chat(app, registered, GROUP, "group", "tok-m")
    fake_line.state.member_counts[GROUP] = 6
    new = {"members": [{"type": "user", "userId": "U" + "9" * 32}]}
    for kind, field, count in (("memberJoined", "joined", 6), ("memberLeft", "left", 4)):
        fake_line.state.member_counts[GROUP] = count
        body = webhook_body(event(kind, group=GROUP, **{field: new}))
        response = client.post(
            "/relay/line/webhook",
            data=body,
            headers={"Content-Type": "application/json", "X-Line-Signature": sign(body)},
        )
        assert response.status_code == 200
        with app.app_context():
            from notify_site.relay.line.channel import current_settings
            from notify_site.relay.line.events import process_events

            process_events(current_settings())
            assert db.session.get(RelayChat, chat_id).member_count == count


def test_the_fake_answers_the_monthly_limit_and_counts_nothing(app, client, registered, fake_line):
    fake_line.state.quota, fake_line.state.consumption = 7, 3
    add_chat(app, registered, GROUP, "group", "tok-l")
    with app.app_context():
        from notify_site.relay.budgets import set_budget

        set_budget("channel", 0, 1000, now=utcnow())  # the relay's own budget lets it through
        db.session.commit()
    notify(client, "tok-l")
    run(app)
    (call,) = fake_line.state.pushes
    assert call.status == 429
    assert fake_line.state.consumption == 3
    assert fake_line.state.delivered == []
