"""The admin's queries and actions give the same answers on PostgreSQL as on SQLite.

The scenarios and checks are the unit tests' own (tests/unit/test_admin_service.py), so both
databases are held to the very same expectations: NULLs last in the connections order, the
index-range counts of the chart, the conditional UPDATEs of retry and cancel.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import NotificationStatus
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
from tests.factories import add_connection, create_api_key, create_notification, create_user, login

pytestmark = pytest.mark.postgres


def test_connections_order_and_filters_on_postgresql(app):
    with app.app_context():
        assert db.engine.dialect.name == "postgresql"
        ids = ordering_scenario()
        check_ordering(ids)
        check_filters(ids)


def test_failed_and_stuck_lists_on_postgresql(app):
    now = utcnow()
    with app.app_context():
        check_problem_lists(problem_scenario(now), now)


def test_chart_per_hour_on_postgresql(app):
    with app.app_context():
        check_chart(utcnow())


def test_retry_and_cancel_on_postgresql(app):
    now = utcnow()
    with app.app_context():
        ids = problem_scenario(now)
        root = create_user("root", admin=True)
        before = {name: snapshot(row_id) for name, row_id in ids.items()}
        admin.retry_notification(root, ids["failed_recent"])
        admin.cancel_notification(root, ids["queued_overdue"])
        for name in ("delivered_old", "failed_newest"):
            with pytest.raises(admin.NotificationActionError):
                admin.retry_notification(root, ids[name])
        with pytest.raises(admin.NotificationActionError, match="right now"):
            admin.cancel_notification(root, ids["sending_live"])

        after = {name: snapshot(row_id) for name, row_id in ids.items()}
        retried, cancelled = after.pop("failed_recent"), after.pop("queued_overdue")
        assert (retried["status"], retried["attempts"]) == (NotificationStatus.QUEUED, 8)
        assert (cancelled["status"], cancelled["last_error"]) == ("failed", "cancelled by an admin")
        before.pop("failed_recent")
        before.pop("queued_overdue")
        assert after == before


def test_pages_counts_and_key_volumes_on_postgresql(app, monkeypatch):
    now = utcnow()
    with app.app_context():
        owner = create_user("alice")
        connection = add_connection(owner, "Ops", remaining=1)
        key, _ = create_api_key(owner, "CI")
        for n in range(5):
            create_notification(
                connection,
                status="queued",
                next_attempt=now - timedelta(hours=5 - n),
                api_key_id=key.id,
            )
        create_notification(connection, status="sending", lease_expires=now - timedelta(hours=1))
        pages = [
            admin.list_problem_notifications("stuck", page=n, per_page=4, now=now) for n in (1, 2)
        ]
        assert [len(page.items) for page in pages] == [4, 2]
        assert pages[0].items[0].status == "sending"
        assert [page.total for page in pages] == [6, 6]
        assert [k.volume for k in admin.list_api_keys().items] == [5]

        monkeypatch.setattr(admin.common, "COUNT_CAP", 2)
        capped = admin.summary(now=now)
        assert capped.queued == admin.CappedCount(2, capped=True)
        assert capped.stuck == admin.CappedCount(3, capped=True)  # 1 sending + 2 (capped)


def test_admin_page_renders_on_postgresql(app, client):
    with app.app_context():
        create_user("root", admin=True)
        ids = ordering_scenario()
    login(client, "root")
    answer = client.get("/admin?status=active")
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert '<svg class="chart"' in html
    body = client.get("/admin/connections.json").json
    assert [c["id"] for c in body["connections"]][:2] == [ids["b0_revoked"], ids["b5"]]
