"""Admin scenarios: rows in every state the admin's lists, chart and actions care about, and
the checks of what the admin's queries answer for them. Both the unit tests (SQLite,
tests/unit/test_admin*.py) and the PostgreSQL tests (tests/postgres/test_admin_postgres.py)
run them, so that both databases are held to the very same answers.

Call them inside an app context.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from notify_site.extensions import db
from notify_site.models import ConnectionStatus, Notification
from notify_site.services import admin
from tests.factories import add_connection, create_notification, create_user


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
    assert (first.owner.username, first.rate_remaining, first.rate_limit) == ("bob", 0, 1000)


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
    assert (recent.attempts, recent.last_error, recent.owner.username) == (
        8,
        "The Notify server answered 500",
        "alice",
    )
    assert recent.can_retry
    assert (newest.connection.status, newest.can_retry) == ("revoked", False)


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
