"""The admin's queries and actions (services/admin.py), without an HTTP client.

The scenario builders and checks here are reused by tests/postgres/test_admin_postgres.py, so
that both databases are held to the very same answers.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import (
    ApiKey,
    ConnectionStatus,
    Notification,
    NotificationStatus,
)
from notify_site.services import admin
from tests.factories import add_connection, create_notification, create_user

# --- builders (also used by the PostgreSQL tests) -------------------------------------------


def snapshot(notification_id: int) -> dict:
    """Every column of a notification, read fresh from the database."""
    db.session.expire_all()
    row = db.session.get(Notification, notification_id)
    return {column.key: getattr(row, column.key) for column in Notification.__table__.columns}


def ordering_scenario() -> dict[str, int]:
    """Connections of two owners with known, spent and unknown quotas."""
    alice = create_user("alice")
    bob = create_user("bob")
    return {
        "a300": add_connection(alice, "a300", remaining=300),
        "a_unknown": add_connection(alice, "a_unknown", remaining=None),
        "b5": add_connection(bob, "b5", remaining=5),
        "b0_revoked": add_connection(
            bob, "b0_revoked", remaining=0, status=ConnectionStatus.REVOKED
        ),
        "b_unknown": add_connection(bob, "b_unknown", remaining=None),
        "a999": add_connection(alice, "a999", remaining=999),
    }


def check_ordering(ids: dict[str, int]) -> None:
    page = admin.list_connections()
    assert [c.label for c in page.items] == [
        "b0_revoked",
        "b5",
        "a300",
        "a999",
        "a_unknown",  # unknown last, by id
        "b_unknown",
    ]
    assert page.total == 6
    first = page.items[0]
    assert (first.owner, first.rate_remaining, first.rate_limit) == ("bob", 0, 1000)


def check_filters(ids: dict[str, int]) -> None:
    labels = lambda page: [c.label for c in page.items]  # noqa: E731
    assert labels(admin.list_connections(username="alice")) == ["a300", "a999", "a_unknown"]
    assert labels(admin.list_connections(status=ConnectionStatus.REVOKED)) == ["b0_revoked"]
    assert labels(admin.list_connections(username="bob", status=ConnectionStatus.ACTIVE)) == [
        "b5",
        "b_unknown",
    ]
    nobody = admin.list_connections(username="carol")
    assert (nobody.items, nobody.total) == ([], 0)


def problem_scenario(now: datetime) -> dict[str, int]:
    """One row of each kind the failed and stuck lists must include or leave out."""
    owner = create_user("alice")
    active = add_connection(owner, "Ops", remaining=10)
    revoked = add_connection(owner, "Old", remaining=None, status=ConnectionStatus.REVOKED)
    minutes = lambda n: timedelta(minutes=n)  # noqa: E731
    ids = {
        # stuck
        "queued_overdue_long": create_notification(
            active, status="queued", created=now - minutes(120), next_attempt=now - minutes(90)
        ).id,
        "queued_overdue": create_notification(
            active, status="queued", created=now - minutes(30), next_attempt=now - minutes(11)
        ).id,
        "sending_abandoned": create_notification(
            active, status="sending", created=now - minutes(20), lease_expires=now - minutes(5)
        ).id,
        "sending_without_lease": create_notification(active, status="sending", created=now).id,
        # not stuck
        "queued_due_recently": create_notification(
            active, status="queued", created=now - minutes(6), next_attempt=now - minutes(5)
        ).id,
        "queued_waiting_for_reset": create_notification(
            active, status="queued", created=now - minutes(50), next_attempt=now + minutes(10)
        ).id,
        "sending_lease_just_expired": create_notification(
            active, status="sending", created=now - minutes(2), lease_expires=now - minutes(1)
        ).id,
        "sending_live": create_notification(
            active, status="sending", created=now - minutes(1), lease_expires=now + minutes(1)
        ).id,
        "delivered_old": create_notification(
            active, created=now - minutes(600), finished=now - minutes(599)
        ).id,
        # failed
        "failed_recent": create_notification(
            active,
            status="failed",
            created=now - minutes(70),
            finished=now - minutes(60),
            attempts=8,
            last_error="The Notify server answered 500",
        ).id,
        "failed_newest": create_notification(
            revoked,
            status="failed",
            created=now - minutes(3),
            finished=now - minutes(2),
            last_error="connection revoked",
        ).id,
        "failed_long_ago": create_notification(
            active,
            status="failed",
            created=now - minutes(26 * 60),
            finished=now - minutes(25 * 60),
        ).id,
    }
    return ids


def check_problem_lists(ids: dict[str, int], now: datetime) -> None:
    stuck = admin.list_problem_notifications("stuck", now=now)
    assert [n.id for n in stuck.items] == [
        # sending rows first (by id), then queued rows, longest overdue first
        ids["sending_abandoned"],
        ids["sending_without_lease"],
        ids["queued_overdue_long"],
        ids["queued_overdue"],
    ]
    assert stuck.total == 4
    assert [n.problem for n in stuck.items] == ["lease_expired", "lease_expired"] + ["overdue"] * 2
    assert all(n.can_cancel and not n.can_retry for n in stuck.items)

    failed = admin.list_problem_notifications("failed", now=now)
    assert [n.id for n in failed.items] == [ids["failed_newest"], ids["failed_recent"]]
    newest, recent = failed.items
    assert (recent.attempts, recent.last_error, recent.owner) == (
        8,
        "The Notify server answered 500",
        "alice",
    )
    assert recent.can_retry
    assert (newest.connection_status, newest.can_retry) == ("revoked", False)


def check_chart(now: datetime) -> None:
    """Rows finished in known hours, and some the chart must leave out."""
    owner = create_user("charlie")
    connection = add_connection(owner, "Chart", remaining=1)
    hour = now.replace(minute=0, second=0, microsecond=0)
    for finished in (hour + timedelta(minutes=1), hour - timedelta(minutes=1)):
        create_notification(connection, finished=finished, created=finished)
    create_notification(connection, finished=hour - timedelta(hours=5, minutes=-30))
    for _ in range(2):
        create_notification(
            connection, status="failed", finished=hour - timedelta(hours=5, minutes=-59)
        )
    create_notification(connection, status="failed", finished=hour - timedelta(hours=23))
    # Outside the window, or not finished: not counted.
    create_notification(connection, finished=hour - timedelta(hours=23, seconds=1))
    create_notification(connection, status="queued", next_attempt=hour)

    chart = admin.deliveries_per_hour(24, now=now)
    assert len(chart.hours) == 24
    assert chart.hours[-1] == hour
    assert chart.hours[0] == hour - timedelta(hours=23)
    expected_delivered = [0] * 24
    expected_delivered[23] = 1  # this hour
    expected_delivered[22] = 1  # the minute before it
    expected_delivered[18] = 1  # five hours back
    expected_failed = [0] * 24
    expected_failed[18] = 2
    expected_failed[0] = 1
    assert chart.delivered == expected_delivered
    assert chart.failed == expected_failed

    wide = admin.deliveries_per_hour(48, now=now)
    assert len(wide.hours) == 48
    assert sum(wide.delivered) == 4  # the row 23 h and 1 s back now counts too
    assert wide.failed[24:] == expected_failed


# --- the tests -----------------------------------------------------------------------------


def test_connections_lowest_remaining_first_unknown_last(app):
    with app.app_context():
        check_ordering(ordering_scenario())


def test_connections_filter_by_owner_and_status(app):
    with app.app_context():
        check_filters(ordering_scenario())


def test_connections_are_paginated_fifty_a_page(app):
    with app.app_context():
        owner = create_user("alice")
        for n in range(53):
            add_connection(owner, f"c{n:02d}", remaining=n)
        first = admin.list_connections(page=1)
        second = admin.list_connections(page=2)
        assert [c.label for c in first.items] == [f"c{n:02d}" for n in range(50)]
        assert [c.label for c in second.items] == ["c50", "c51", "c52"]
        assert (first.total, first.pages, first.has_next, second.has_next) == (53, 2, True, False)
        assert admin.list_connections(page=3).items == []


def test_stuck_and_recently_failed_notifications(app):
    now = utcnow()
    with app.app_context():
        check_problem_lists(problem_scenario(now), now)


def test_stuck_list_pages_run_on_from_one_part_into_the_next(app):
    now = utcnow()
    with app.app_context():
        owner = create_user("alice")
        connection = add_connection(owner, "Ops", remaining=1)
        sending = [
            create_notification(
                connection, status="sending", lease_expires=now - timedelta(hours=1)
            ).id
            for _ in range(3)
        ]
        queued = [
            create_notification(
                connection, status="queued", next_attempt=now - timedelta(hours=10 - n)
            ).id
            for n in range(4)
        ]
        pages = [
            admin.list_problem_notifications("stuck", page=n, per_page=2, now=now)
            for n in (1, 2, 3, 4, 5)
        ]
        assert [[row.id for row in page.items] for page in pages] == [
            sending[:2],
            [sending[2], queued[0]],
            queued[1:3],
            queued[3:],
            [],
        ]
        assert [page.total for page in pages] == [7] * 5
        assert [page.has_next for page in pages] == [True, True, True, False, False]


def test_counts_stop_at_the_cap_and_say_so(app, monkeypatch):
    monkeypatch.setattr(admin, "COUNT_CAP", 3)
    now = utcnow()
    with app.app_context():
        owner = create_user("alice")
        connection = add_connection(owner, "Ops", remaining=1)
        for _ in range(5):
            create_notification(connection, status="queued", next_attempt=now - timedelta(hours=1))
        page = admin.list_problem_notifications("stuck", per_page=2, now=now)
        assert (page.total, page.total_capped, len(page.items), page.has_next) == (3, True, 2, True)
        last = admin.list_problem_notifications("stuck", page=3, per_page=2, now=now)
        assert (len(last.items), last.has_next) == (1, False)
        summary = admin.summary(now=now)
        assert summary.queued == admin.CappedCount(3, capped=True)
        assert summary.to_json()["notifications"]["queued"] == {"count": 3, "capped": True}


def test_retry_requeues_only_the_failed_row_and_keeps_its_attempts(app):
    now = utcnow()
    with app.app_context():
        ids = problem_scenario(now)
        admin_user = create_user("root", admin=True)
        before = {name: snapshot(row_id) for name, row_id in ids.items()}

        admin.retry_notification(admin_user, ids["failed_recent"])

        after = {name: snapshot(row_id) for name, row_id in ids.items()}
        retried = after.pop("failed_recent")
        assert retried["status"] == NotificationStatus.QUEUED
        assert retried["attempts"] == 8  # kept
        assert retried["last_error"] == "The Notify server answered 500"  # until the next try
        assert retried["finished_at"] is None
        assert abs(retried["next_attempt_at"] - utcnow()) < timedelta(seconds=30)
        before.pop("failed_recent")
        assert after == before  # nothing else moved


def test_retry_refuses_a_delivered_row_and_a_dead_connection(app):
    now = utcnow()
    with app.app_context():
        ids = problem_scenario(now)
        admin_user = create_user("root", admin=True)
        for name, reason in [
            ("delivered_old", "is delivered now"),
            ("queued_overdue", "is queued now"),
            ("failed_newest", "its connection “Old” is revoked"),
        ]:
            before = snapshot(ids[name])
            with pytest.raises(admin.NotificationActionError, match=reason):
                admin.retry_notification(admin_user, ids[name])
            assert snapshot(ids[name]) == before
        with pytest.raises(admin.NotificationNotFoundError):
            admin.retry_notification(admin_user, 999_999)


def test_cancel_fails_a_pending_row_and_touches_nothing_else(app):
    now = utcnow()
    with app.app_context():
        ids = problem_scenario(now)
        admin_user = create_user("root", admin=True)
        before = {name: snapshot(row_id) for name, row_id in ids.items()}

        admin.cancel_notification(admin_user, ids["queued_overdue"])
        admin.cancel_notification(admin_user, ids["sending_abandoned"])

        after = {name: snapshot(row_id) for name, row_id in ids.items()}
        for name in ("queued_overdue", "sending_abandoned"):
            row = after.pop(name)
            before.pop(name)
            assert row["status"] == NotificationStatus.FAILED
            assert row["last_error"] == "cancelled by an admin"
            assert row["finished_at"] is not None
            assert (row["lease_token"], row["lease_expires_at"]) == (None, None)
        assert after == before


def test_cancel_leaves_delivered_and_live_rows_alone(app):
    now = utcnow()
    with app.app_context():
        ids = problem_scenario(now)
        admin_user = create_user("root", admin=True)
        for name, reason in [
            ("delivered_old", "already delivered"),
            ("failed_recent", "already failed"),
            ("sending_live", "being delivered right now"),
        ]:
            before = snapshot(ids[name])
            with pytest.raises(admin.NotificationActionError, match=reason):
                admin.cancel_notification(admin_user, ids[name])
            assert snapshot(ids[name]) == before


def test_api_keys_are_listed_with_their_volume(app):
    from notify_site.services import api_keys

    with app.app_context():
        alice = create_user("alice")
        bob = create_user("bob")
        connection = add_connection(alice, "Ops", remaining=1)
        old_key, _ = api_keys.create_api_key(alice, "old")
        busy_key, _ = api_keys.create_api_key(bob, "busy")
        idle_key, _ = api_keys.create_api_key(bob, "idle")
        db.session.get(ApiKey, busy_key.id).last_used_at = utcnow()
        db.session.get(ApiKey, old_key.id).last_used_at = utcnow() - timedelta(days=2)
        db.session.commit()
        for _ in range(3):
            create_notification(connection, api_key_id=busy_key.id)
        create_notification(connection, api_key_id=old_key.id)
        create_notification(connection)  # from the form: no key

        page = admin.list_api_keys()
        assert [(k.name, k.owner, k.volume) for k in page.items] == [
            ("busy", "bob", 3),  # most recently used first
            ("old", "alice", 1),
            ("idle", "bob", 0),  # never used: last
        ]
        assert page.items[0].prefix.startswith("nsk_")
        assert page.total == 3
        assert "key_hash" not in page.items[0].to_json()


def test_chart_counts_deliveries_and_failures_per_hour(app):
    with app.app_context():
        check_chart(utcnow())


def test_summary_figures(app):
    now = utcnow()
    with app.app_context():
        ids = problem_scenario(now)
        assert ids
        summary = admin.summary(now=now)
        assert summary.stuck == admin.CappedCount(4)
        assert summary.failed_recently == admin.CappedCount(2)
        assert summary.queued == admin.CappedCount(4)
        assert summary.sending == admin.CappedCount(4)
        # delivered_old finished 10 hours ago; failed_long_ago 25 hours ago (outside).
        assert (summary.delivered_in_window, summary.failed_in_window) == (1, 2)
        assert (summary.connections_total, summary.connections_active) == (2, 1)
        assert (summary.connections_unknown_quota, summary.connections_out_of_calls) == (1, 0)


def test_hours_that_are_over_are_counted_once_and_forgotten_after_a_retry(app):
    now = utcnow()
    with app.app_context():
        connection = add_connection(create_user("alice"), "Ops", remaining=1)
        root = create_user("root", admin=True)
        failed = create_notification(
            connection, status="failed", finished=now - timedelta(hours=3)
        ).id
        assert admin.deliveries_per_hour(24, now=now).failed[20] == 1

        # A past hour comes from the cache; the current hour is always counted afresh.
        for _ in range(2):
            create_notification(connection, status="failed", finished=now - timedelta(hours=3))
        create_notification(connection, finished=now)
        chart = admin.deliveries_per_hour(24, now=now)
        assert (chart.failed[20], chart.delivered[23]) == (1, 1)

        # A retry takes its row out of its past hour, and this process forgets its counts.
        admin.retry_notification(root, failed)
        assert admin.deliveries_per_hour(24, now=now).failed[20] == 2
        with pytest.raises(ValueError, match="hours"):
            admin.deliveries_per_hour(12, now=now)
