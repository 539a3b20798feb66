"""Issue 22, item 3: LINE's monthly limit pauses the channel instead of hammering it.

Against the fake Messaging API, which answers LINE's monthly-limit 429 once the month's
quota is spent. Time is simulated (time-machine): a minute of the worker's rounds, one a
second, takes no real minute.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.relay.line.monthly_limit import PauseSchedule
from notify_site.relay.models import PushStatus, RelayLineChannel
from tests.conftest import make_test_config
from tests.fakes.line_api import MONTHLY_LIMIT_MESSAGE, channel_config
from tests.unit.relay.line_pushes import add_line_user_chat, notify, pushes, run

PUSH = "/v2/bot/message/push"
QUOTA = "/v2/bot/message/quota"
START = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


@pytest.fixture
def app_config(tmp_path, fake_line):
    return make_test_config(
        tmp_path,
        RELAY_LINE_MONTHLY_RECHECK_MINUTES=0.25,  # a re-check every 15 s
        RELAY_LINE_SYNC_WAIT_SECONDS=0,  # the worker's path (test_line_sync.py: the caller's)
        RELAY_LINE_PACKING=False,  # one push per notification here (test_line_packing.py: packs)
        **channel_config(fake_line, "https://relay.example/relay"),
    )


@pytest.fixture
def alice(app, registered) -> int:
    return add_line_user_chat(app, registered)


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def channel_row(app) -> RelayLineChannel | None:
    with app.app_context():
        return db.session.scalar(select(RelayLineChannel))


def quota_reads(fake_line) -> int:
    return len(fake_line.state.calls_to(QUOTA, "GET"))


def test_the_monthly_limit_pauses_then_resumes_each_waiting_push_once(
    app, client, alice, fake_line, clock
):
    fake_line.state.quota, fake_line.state.consumption = 2, 2  # the month is spent
    for n in range(3):
        assert notify(client, message=f"alert {n}").status_code == 200
    keys = [p.retry_key for p in pushes(app)]

    assert run(app) == 1  # the first push: LINE's monthly 429, and the channel pauses
    (refused,) = fake_line.state.pushes
    assert refused.status == 429
    assert refused.json is not None
    row = channel_row(app)
    assert row.monthly_limit_at == START
    assert row.monthly_limit_refusals == 1
    first = pushes(app)[0]
    assert (first.status, first.attempts, first.last_status_code) == ("pending", 0, 429)
    assert MONTHLY_LIMIT_MESSAGE in first.last_error

    # A minute of worker rounds, one a second: no push at all, the quota read every 15 s.
    reads_before = quota_reads(fake_line)
    for _ in range(60):
        clock.shift(timedelta(seconds=1))
        assert run(app) == 0
    assert len(fake_line.state.pushes) == 1
    assert quota_reads(fake_line) - reads_before == 4
    assert channel_row(app).monthly_limit_checks == 4

    # New Notify calls are answered 429 at once: no push queued, no call to LINE.
    calls_before = len(fake_line.state.calls)
    refused_call = notify(client, message="while paused")
    assert refused_call.status_code == 429
    body = refused_call.get_json()
    assert body["status"] == 429
    assert body["reason"] == "monthly_limit"
    assert body["message"].startswith("Monthly message limit reached")
    assert datetime.fromisoformat(body["recheckAt"]) == channel_row(app).monthly_limit_recheck_at
    assert refused_call.headers["X-RateLimit-Remaining"] == "997"  # the call spent nothing
    assert len(fake_line.state.calls) == calls_before
    assert len(pushes(app)) == 3

    # The operator raises the plan: the next re-check resumes, each push goes out once,
    # in order, with the retry key it was given when it was accepted.
    fake_line.state.quota = 1000
    clock.shift(timedelta(seconds=15))
    assert run(app) == 3
    assert channel_row(app).monthly_limit_at is None
    assert [p.status for p in pushes(app)] == [PushStatus.DELIVERED] * 3
    delivered = fake_line.state.delivered
    assert [d["retryKey"] for d in delivered] == keys
    assert [d["body"]["messages"][0]["text"] for d in delivered] == [
        f"[Example Service] alert {n}" for n in range(3)
    ]
    assert [c.header("x-line-retry-key") for c in fake_line.state.pushes] == [keys[0], *keys]
    assert run(app) == 0
    assert notify(client, message="after").status_code == 200


def test_a_wrong_quota_reading_costs_at_most_one_push_per_recheck(
    app, client, alice, fake_line, clock
):
    """LINE's consumption figure is approximate: it may report room while LINE still refuses.
    Then each re-check lets one push try, and that push pauses the channel again."""
    fake_line.state.quota, fake_line.state.consumption = 200, 150
    refusal = (429, {"message": MONTHLY_LIMIT_MESSAGE})
    fake_line.state.fail_next(PUSH, *([refusal] * 10))
    for n in range(3):
        notify(client, message=f"alert {n}")
    run(app)
    for _ in range(60):
        clock.shift(timedelta(seconds=1))
        run(app)
    # The first refusal, then one push per re-check (every 15 s): 5 in the minute.
    assert len(fake_line.state.pushes) == 5
    assert channel_row(app).monthly_limit_at is not None  # paused again by the last refusal
    assert {p.attempts for p in pushes(app)} == {0}
    assert {c.header("x-line-retry-key") for c in fake_line.state.pushes} == {
        pushes(app)[0].retry_key
    }


def test_a_429_while_the_quota_is_spent_is_the_monthly_limit_whatever_its_words(
    app, client, alice, fake_line, clock
):
    fake_line.state.quota, fake_line.state.consumption = 200, 200
    fake_line.state.fail_next(PUSH, 429)  # "injected 429": not LINE's monthly wording
    notify(client, message="x")
    run(app)
    assert channel_row(app).monthly_limit_at == START
    assert pushes(app)[0].attempts == 0


def test_a_rate_limit_429_backs_off_without_pausing(app, client, alice, fake_line, clock):
    fake_line.state.fail_next(PUSH, 429)
    notify(client, message="busy")
    run(app)
    row = channel_row(app)
    assert row is None or row.monthly_limit_at is None
    (push,) = pushes(app)
    assert (push.status, push.attempts) == ("pending", 1)
    assert notify(client, message="still accepted").status_code == 200


def test_resuming_restarts_the_give_up_clock_of_refused_pushes_only(
    app, client, alice, fake_line, clock
):
    fake_line.state.fail_next(PUSH, 500)
    notify(client, message="maybe sent")  # a 500: LINE may have executed it
    run(app)
    fake_line.state.quota, fake_line.state.consumption = 1, 1
    notify(client, message="refused")
    clock.shift(timedelta(seconds=1))
    run(app)  # the 500's retry and the other push: both refused for the month
    assert channel_row(app).monthly_limit_at is not None
    maybe_sent, refused = pushes(app)
    assert (maybe_sent.attempts, refused.attempts) == (1, 0)

    fake_line.state.quota = 10
    clock.shift(timedelta(days=2))
    run(app)
    maybe_sent, refused = pushes(app)
    assert refused.retry_since == START + timedelta(days=2, seconds=1)
    assert refused.status == PushStatus.DELIVERED
    # It may have gone out under its key: its clock is not restarted (it went out now, as
    # LINE answered 200; a failure this late would give it up rather than risk a second send).
    assert maybe_sent.retry_since is None
    assert maybe_sent.status == PushStatus.DELIVERED


def test_the_admin_page_shows_the_pause_and_what_it_cost(app, client, alice, fake_line, clock):
    from tests.factories import create_user, login

    fake_line.state.quota, fake_line.state.consumption = 2, 2
    notify(client, message="x")
    run(app)
    clock.shift(timedelta(seconds=16))
    run(app)
    with app.app_context():
        create_user("root", admin=True)
    login(client, "root")
    html = client.get("/relay/line/admin").get_data(as_text=True)
    assert "data-monthly-pause" in html
    assert "Paused: LINE's monthly message limit is reached." in html
    assert "Re-checks so far: 1. Pushes LINE refused: 1. Pushes waiting: 1." in html


@pytest.mark.parametrize(
    ("now", "month_start"),
    [
        # 01:00 on 1 January in Tokyo is still 31 December in UTC.
        (datetime(2026, 12, 31, 16, 0, tzinfo=UTC), datetime(2027, 1, 31, 15, 0, tzinfo=UTC)),
        (datetime(2026, 12, 31, 14, 0, tzinfo=UTC), datetime(2026, 12, 31, 15, 0, tzinfo=UTC)),
        (datetime(2026, 2, 10, 0, 0, tzinfo=UTC), datetime(2026, 2, 28, 15, 0, tzinfo=UTC)),
    ],
)
def test_the_billing_month_turns_in_the_configured_time_zone(now, month_start):
    assert PauseSchedule().next_month_start(now) == month_start


def test_a_recheck_falls_on_the_month_turn_when_that_comes_first():
    schedule = PauseSchedule(recheck=timedelta(hours=1))
    before_turn = datetime(2026, 11, 30, 14, 50, tzinfo=UTC)  # 23:50 in Tokyo
    assert schedule.next_check(before_turn) == datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
    mid_month = datetime(2026, 11, 10, 3, 0, tzinfo=UTC)
    assert schedule.next_check(mid_month) == mid_month + timedelta(hours=1)
    utc_months = PauseSchedule(time_zone="UTC")
    assert utc_months.next_month_start(before_turn) == datetime(2026, 12, 1, tzinfo=UTC)


def test_a_packed_push_waits_out_the_pause_and_goes_once_with_its_key(
    app, client, alice, fake_line, clock
):
    """With packing on (the default), the queued notifications ride in one push; the monthly
    limit holds the whole pack, and on resumption it goes once, under the key it was given."""
    app.config["RELAY_LINE_PACKING"] = True
    fake_line.state.quota, fake_line.state.consumption = 2, 2  # the month is spent
    for n in range(3):
        assert notify(client, message=f"alert {n}").status_code == 200
    assert run(app) == 1  # one request carrying the three: LINE's monthly 429
    (refused,) = fake_line.state.pushes
    assert refused.status == 429
    assert len(refused.json["messages"]) == 3
    leader_key = pushes(app)[0].retry_key
    assert [p.status for p in pushes(app)] == ["pending", "packed", "packed"]

    fake_line.state.quota = 1000
    clock.shift(timedelta(seconds=15))
    assert run(app) == 1
    assert [p.status for p in pushes(app)] == [PushStatus.DELIVERED] * 3
    (delivered,) = fake_line.state.delivered
    assert delivered["retryKey"] == leader_key
    assert [m["text"] for m in delivered["body"]["messages"]] == [
        f"[Example Service] alert {n}" for n in range(3)
    ]
    assert run(app) == 0
