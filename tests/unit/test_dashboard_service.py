"""services/dashboard.py without HTTP: the hourly buckets, the recent list, the gauges.

The queries are portable SQL; these tests run on SQLite, and on PostgreSQL too when
NOTIFY_SITE_TEST_DATABASE_URL is set (they fail, not skip, if it is set but unreachable).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from notify_site.models import NotificationStatus, User
from notify_site.serialisers import DASHBOARD
from notify_site.services import dashboard
from notify_site.services.dashboard import countdown_text, excerpt, hourly_sends
from notify_site.services.quota import Gauge
from tests.factories import create_connection, create_notification, create_user
from tests.pg_schemas import ON_POSTGRES_TOO

NOW = datetime(2031, 5, 6, 12, 34, 56, 789000, tzinfo=UTC)
HOUR = timedelta(hours=1)
THIS_HOUR = datetime(2031, 5, 6, 12, 0, tzinfo=UTC)
FIRST_HOUR = THIS_HOUR - 23 * HOUR  # 2031-05-05 13:00


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


def add(owner: User, connection_id: int, created: datetime, status: str, **values):
    values.setdefault("message", "hello")
    return create_notification(
        connection_id, owner_id=owner.id, created=created, status=status, **values
    )


@ON_POSTGRES_TOO
@pytest.mark.usefixtures("ctx")
def test_hourly_series_buckets_rows_by_the_hour_they_were_created():
    alice = create_user("alice")
    ops = create_connection(alice).id
    delivered, failed = NotificationStatus.DELIVERED, NotificationStatus.FAILED
    # At the edges of the window: the first instant counts, the one before does not.
    add(alice, ops, FIRST_HOUR, delivered)
    add(alice, ops, FIRST_HOUR - timedelta(microseconds=1), delivered)
    add(alice, ops, FIRST_HOUR - 5 * HOUR, failed)
    # Around an hour boundary; finished in the next hour, still counted by creation.
    add(alice, ops, THIS_HOUR - timedelta(microseconds=1), failed, finished=THIS_HOUR)
    add(alice, ops, THIS_HOUR, delivered, finished=THIS_HOUR + timedelta(minutes=1))
    add(alice, ops, NOW, delivered)
    # Still on the way: neither delivered nor failed.
    add(alice, ops, THIS_HOUR - 3 * HOUR + timedelta(minutes=59), NotificationStatus.QUEUED)
    add(alice, ops, THIS_HOUR - 3 * HOUR, NotificationStatus.SENDING)
    # Later than now (a clock ahead of ours): not in any hour yet.
    add(alice, ops, THIS_HOUR + HOUR, delivered)

    series = hourly_sends(alice, NOW)

    assert series.hours == [FIRST_HOUR + n * HOUR for n in range(24)]
    assert series.hours[-1] == THIS_HOUR
    assert len(series.delivered) == len(series.failed) == len(series.pending) == 24
    expected_delivered = [0] * 24
    expected_delivered[0] = 1
    expected_delivered[23] = 2
    expected_failed = [0] * 24
    expected_failed[22] = 1
    expected_pending = [0] * 24
    expected_pending[20] = 2
    assert series.delivered == expected_delivered
    assert series.failed == expected_failed
    assert series.pending == expected_pending
    assert (series.total_delivered, series.total_failed, series.total_pending) == (3, 1, 2)


@ON_POSTGRES_TOO
@pytest.mark.usefixtures("ctx")
def test_hourly_series_counts_only_the_owners_rows():
    alice, bob = create_user("alice"), create_user("bob", admin=True)
    mine, theirs = create_connection(alice).id, create_connection(bob, label="Bob").id
    add(alice, mine, NOW - 2 * HOUR, NotificationStatus.DELIVERED)
    for minutes in range(5):
        add(bob, theirs, NOW - timedelta(minutes=minutes), NotificationStatus.DELIVERED)
        add(bob, theirs, NOW - 2 * HOUR, NotificationStatus.FAILED)

    assert hourly_sends(alice, NOW).delivered[21] == 1
    assert hourly_sends(alice, NOW).total_delivered == 1
    assert hourly_sends(alice, NOW).total_failed == 0
    assert hourly_sends(bob, NOW).total_failed == 5  # an admin's own figures, no one else's
    assert hourly_sends(bob, NOW).total_delivered == 5


@ON_POSTGRES_TOO
@pytest.mark.usefixtures("ctx")
def test_hourly_series_of_a_quiet_day_is_24_zeros():
    alice = create_user("alice")
    series = hourly_sends(alice, NOW)
    assert series.delivered == series.failed == series.pending == [0] * 24
    assert len(series.hours) == 24
    assert [h.tzinfo for h in series.hours] == [UTC] * 24


@ON_POSTGRES_TOO
@pytest.mark.usefixtures("ctx")
def test_recent_notifications_are_the_owners_newest_first():
    alice, bob = create_user("alice"), create_user("bob")
    mine, theirs = create_connection(alice).id, create_connection(bob, label="Bob").id
    for minutes in range(25):
        add(alice, mine, NOW - timedelta(minutes=minutes), "queued", message=f"m{minutes}")
    add(bob, theirs, NOW + timedelta(minutes=1), "queued", message="bob's")

    rows = dashboard.recent_notifications(alice)

    assert [row.message for row in rows] == [f"m{n}" for n in range(20)]
    assert {row.owner_id for row in rows} == {alice.id}
    assert rows[0].connection.label == "Ops"  # loaded with the row


@ON_POSTGRES_TOO
@pytest.mark.usefixtures("ctx")
def test_load_dashboard_lists_only_the_owners_connections():
    alice, bob = create_user("alice"), create_user("bob")
    create_connection(bob, label="Bob")
    create_connection(alice, label="Mine")
    board = dashboard.load_dashboard(alice, NOW)
    assert [c.label for c in board.connections] == ["Mine"]
    assert board.now == NOW
    assert DASHBOARD.dump(board)["generated_at"] == "2031-05-06T12:34:56.789000Z"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (754, "resets in 12:34"),
        (5, "resets in 0:05"),
        (0.2, "resets in 0:01"),
        (3600, "resets in 1:00:00"),
        (0, "window reset"),
        (-30, "window reset"),
    ],
)
def test_countdown_text(seconds, text):
    assert countdown_text(NOW + timedelta(seconds=seconds), NOW) == text


def test_countdown_text_without_a_reset():
    assert countdown_text(None, NOW) == "reset time unknown"


@pytest.mark.parametrize(
    ("remaining", "limit", "level", "percent"),
    [
        (1000, 1000, "ok", 100.0),
        (201, 1000, "ok", 20.1),
        (200, 1000, "low", 20.0),
        (1, 50, "low", 2.0),
        (0, 50, "empty", 0.0),
        (None, 1000, "unknown", 0.0),
        (5, None, "unknown", 0.0),
        (5, 0, "unknown", 0.0),
    ],
)
def test_gauge_levels(remaining, limit, level, percent):
    gauge = Gauge(remaining, limit)
    assert (gauge.level, gauge.percent) == (level, percent)


def test_excerpt_is_one_line_and_cut_with_an_ellipsis():
    assert excerpt("Disk full\n\non  web-1") == "Disk full on web-1"
    assert excerpt("a" * 80) == "a" * 80
    assert excerpt("a" * 81) == "a" * 79 + "…"
