"""The admin's queries and actions (services/admin.py), without an HTTP client.

The scenario builders and checks are in tests/admin_scenarios.py: the PostgreSQL tests
(tests/postgres/test_admin_postgres.py) use them too, so that both databases are held to the
very same answers.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import (
    ApiKey,
    NotificationStatus,
)
from notify_site.serialisers import ADMIN_API_KEY, SUMMARY
from notify_site.services import admin
from tests.admin_scenarios import (
    check_chart,
    check_filters,
    check_ordering,
    check_problem_lists,
    ordering_scenario,
    problem_scenario,
    snapshot,
)
from tests.factories import add_connection, create_api_key, create_notification, create_user


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
    monkeypatch.setattr(admin.common, "COUNT_CAP", 3)
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
        assert SUMMARY.dump(summary)["notifications"]["queued"] == {"count": 3, "capped": True}


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

    with app.app_context():
        alice = create_user("alice")
        bob = create_user("bob")
        connection = add_connection(alice, "Ops", remaining=1)
        old_key, _ = create_api_key(alice, "old")
        busy_key, _ = create_api_key(bob, "busy")
        idle_key, _ = create_api_key(bob, "idle")
        db.session.get(ApiKey, busy_key.id).last_used_at = utcnow()
        db.session.get(ApiKey, old_key.id).last_used_at = utcnow() - timedelta(days=2)
        db.session.commit()
        for _ in range(3):
            create_notification(connection, api_key_id=busy_key.id)
        create_notification(connection, api_key_id=old_key.id)
        create_notification(connection)  # from the form: no key

        page = admin.list_api_keys()
        assert [(k.name, k.owner.username, k.volume) for k in page.items] == [
            ("busy", "bob", 3),  # most recently used first
            ("old", "alice", 1),
            ("idle", "bob", 0),  # never used: last
        ]
        assert page.items[0].prefix.startswith("nsk_")
        assert page.total == 3
        assert "key_hash" not in ADMIN_API_KEY.dump(page.items[0])


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
