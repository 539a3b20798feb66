"""/admin and its data endpoints: who may see them, what they show, and the two actions."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import Notification, NotificationStatus
from tests.admin_scenarios import (
    ordering_scenario,
    problem_scenario,
)
from tests.factories import add_connection, create_api_key, create_notification, create_user, login
from tests.fragments import is_fragment, parts

JSON_PATHS = [
    "/admin/summary.json",
    "/admin/connections.json",
    "/admin/notifications.json?list=stuck",
    "/admin/notifications.json?list=failed",
    "/admin/api-keys.json",
    "/admin/charts",
    "/admin/parts",
]


@pytest.fixture
def as_admin(app, client):
    with app.app_context():
        create_user("root", admin=True)
    login(client, "root")
    return client


@pytest.fixture
def as_user(app, client):
    with app.app_context():
        create_user("root", admin=True)
        create_user("mallory")
    login(client, "mallory")
    return client


def _ids(html: str, table: str) -> list[int]:
    """The data-id of each row of one admin table, in page order."""
    body = html.split(f'data-list="{table}"', 1)[1].split("</table>", 1)[0]
    return [int(value) for value in re.findall(r'<tr[^>]* data-id="(\d+)"', body)]


def _status(app, notification_id: int) -> str:
    with app.app_context():
        return db.session.get(Notification, notification_id).status


# --- who may see it ------------------------------------------------------------------------


def test_anonymous_people_are_sent_to_sign_in(client):
    answer = client.get("/admin")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/login")
    assert "next=%2Fadmin" in answer.headers["Location"]


@pytest.mark.parametrize("path", JSON_PATHS)
def test_anonymous_scripts_get_401_json(client, path):
    answer = client.get(path)
    assert answer.status_code == 401
    assert answer.is_json
    assert answer.json["error"]["code"] == "unauthorized"


def test_signed_in_non_admin_gets_a_403_page(as_user):
    answer = as_user.get("/admin", headers={"Accept": "text/html"})
    assert answer.status_code == 403
    assert "text/html" in answer.content_type
    assert "admins only" in answer.get_data(as_text=True)


@pytest.mark.parametrize("path", JSON_PATHS)
def test_signed_in_non_admin_gets_403_json(as_user, path):
    answer = as_user.get(path)
    assert answer.status_code == 403
    assert answer.is_json
    assert answer.json["error"]["code"] == "forbidden"


def test_non_admins_cannot_retry_or_cancel(app, as_user):
    now = utcnow()
    with app.app_context():
        ids = problem_scenario(now)
    for action, name in [("retry", "failed_recent"), ("cancel", "queued_overdue")]:
        answer = as_user.post(f"/admin/notifications/{ids[name]}/{action}")
        assert answer.status_code == 403
    assert _status(app, ids["failed_recent"]) == "failed"
    assert _status(app, ids["queued_overdue"]) == "queued"


def test_anonymous_retry_is_sent_to_sign_in_and_changes_nothing(app, client):
    with app.app_context():
        ids = problem_scenario(utcnow())
    answer = client.post(f"/admin/notifications/{ids['failed_recent']}/retry")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/login")
    assert _status(app, ids["failed_recent"]) == "failed"


def test_an_admins_api_key_reads_the_json_and_others_do_not(app, client):
    with app.app_context():
        root = create_user("root", admin=True)
        bob = create_user("bob")
        _, admin_key = create_api_key(root, "monitoring")
        _, user_key = create_api_key(bob, "CI")
    answer = client.get("/admin/summary.json", headers={"Authorization": f"Bearer {admin_key}"})
    assert answer.status_code == 200
    assert "csrf_token" not in answer.json  # no session, no form to post
    assert answer.json["connections"]["total"] == 0
    answer = client.get("/admin/summary.json", headers={"Authorization": f"Bearer {user_key}"})
    assert answer.status_code == 403
    answer = client.get("/admin/summary.json", headers={"Authorization": "Bearer nsk_nope"})
    assert answer.status_code == 401
    # A key opens the data endpoints only, never the page.
    answer = client.get("/admin", headers={"Authorization": f"Bearer {admin_key}"})
    assert answer.status_code == 302


# --- what it shows -------------------------------------------------------------------------


def test_admin_page_shows_every_section_and_the_chart(app, as_admin):
    with app.app_context():
        ids = ordering_scenario()
        create_notification(ids["b5"], finished=utcnow())
        create_notification(
            ids["b5"], status="failed", finished=utcnow(), last_error="The server answered 500"
        )
    answer = as_admin.get("/admin")
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    for anchor in ("overview", "connections", "stuck", "failed", "keys"):
        assert f'id="{anchor}"' in html
    assert '<svg class="chart"' in html
    assert f"{utcnow():%H} · Delivered: 1</title>" in html
    assert f"{utcnow():%H} · Failed: 1</title>" in html
    assert "The server answered 500" in html
    assert "static/js/parts.js" in html  # the script that keeps the page current
    assert "css/admin.css" in html
    # The CSP allows no inline script and no inline style.
    assert "<script>" not in html
    assert " style=" not in html


def test_admin_page_orders_connections_lowest_remaining_first(app, as_admin):
    with app.app_context():
        ids = ordering_scenario()
    html = as_admin.get("/admin").get_data(as_text=True)
    order = ["b0_revoked", "b5", "a300", "a999", "a_unknown", "b_unknown"]
    assert _ids(html, "connections") == [ids[name] for name in order]
    assert "0 / 1,000" in html


def test_admin_page_filters_by_owner_and_status(app, as_admin):
    with app.app_context():
        ids = ordering_scenario()
    html = as_admin.get("/admin?user=bob&status=active").get_data(as_text=True)
    assert _ids(html, "connections") == [ids["b5"], ids["b_unknown"]]
    assert 'value="bob"' in html
    assert '<option value="active" selected>' in html
    answer = as_admin.get("/admin/connections.json?user=alice&status=bogus")
    assert [c["label"] for c in answer.json["connections"]] == ["a300", "a999", "a_unknown"]
    assert answer.json["filters"] == {"user": "alice", "status": None}


def test_second_page_has_the_rest(app, as_admin):
    with app.app_context():
        owner = create_user("alice")
        ids = [add_connection(owner, f"c{n:02d}", remaining=n) for n in range(52)]
    first = as_admin.get("/admin").get_data(as_text=True)
    assert _ids(first, "connections") == ids[:50]
    assert 'href="/admin?page=2#connections"' in first
    second = as_admin.get("/admin?page=2").get_data(as_text=True)
    assert _ids(second, "connections") == ids[50:]
    assert "52 connections · page 2 of 2" in second
    answer = as_admin.get("/admin/connections.json?page=2")
    assert [c["id"] for c in answer.json["connections"]] == ids[50:]
    assert (answer.json["page"], answer.json["pages"], answer.json["total"]) == (2, 2, 52)
    assert answer.json["has_next"] is False
    # Nonsense page numbers fall back to the first page.
    assert _ids(as_admin.get("/admin?page=-3").get_data(as_text=True), "connections") == ids[:50]


def test_notification_lists_as_json(app, as_admin):
    now = utcnow()
    with app.app_context():
        ids = problem_scenario(now)
    stuck = as_admin.get("/admin/notifications.json?list=stuck").json
    assert [n["id"] for n in stuck["notifications"]] == [
        ids["sending_abandoned"],
        ids["sending_without_lease"],
        ids["queued_overdue_long"],
        ids["queued_overdue"],
    ]
    first = stuck["notifications"][0]
    assert first["problem"] == "lease_expired"
    assert first["cancel_url"] == f"/admin/notifications/{ids['sending_abandoned']}/cancel"
    assert "retry_url" not in first
    assert first["owner"] == {"id": first["owner"]["id"], "username": "alice"}
    assert first["connection"]["label"] == "Ops"
    failed = as_admin.get("/admin/notifications.json?list=failed").json
    by_id = {n["id"]: n for n in failed["notifications"]}
    assert set(by_id) == {ids["failed_recent"], ids["failed_newest"]}
    assert by_id[ids["failed_recent"]]["retry_url"].endswith("/retry")
    assert "retry_url" not in by_id[ids["failed_newest"]]  # its chat is revoked
    assert by_id[ids["failed_recent"]]["attempts"] == 8
    answer = as_admin.get("/admin/notifications.json?list=everything")
    assert answer.status_code == 400


def test_summary_json_shape(app, as_admin):
    now = utcnow()
    with app.app_context():
        problem_scenario(now)
    body = as_admin.get("/admin/summary.json?hours=48").json
    assert body["window_hours"] == 48
    assert len(body["chart"]["hours"]) == len(body["chart"]["delivered"]) == 48
    assert body["failed"] == 3  # the one 25 hours back is inside 48 hours
    assert body["notifications"]["stuck"] == {"count": 4, "capped": False}
    assert body["connections"] == {
        "total": 2,
        "active": 1,
        "out_of_calls": 0,
        "unknown_quota": 1,
    }
    assert body["csrf_token"]
    assert as_admin.get("/admin/summary.json?hours=7").json["window_hours"] == 24


def test_api_keys_json_lists_volume(app, as_admin):
    with app.app_context():
        alice = create_user("alice")
        connection = add_connection(alice, "Ops", remaining=1)
        key, _ = create_api_key(alice, "CI")
        for _ in range(2):
            create_notification(connection, api_key_id=key.id)
    body = as_admin.get("/admin/api-keys.json").json
    assert [(k["name"], k["owner"]["username"], k["volume"]) for k in body["api_keys"]] == [
        ("CI", "alice", 2)
    ]
    html = as_admin.get("/admin").get_data(as_text=True)
    assert 'class="volume">2</td>' in html


def test_charts_fragment_redraws_both_charts_at_both_sizes(app, as_admin):
    with app.app_context():
        connection = add_connection(create_user("alice"), "Ops", remaining=1)
        create_notification(connection, status="failed", finished=utcnow())
    answer = as_admin.get("/admin/charts?hours=48")
    assert answer.content_type.startswith("text/html")
    fragment = answer.get_data(as_text=True)
    assert "<html" not in fragment  # a fragment, not a page
    assert fragment.count('<svg class="chart"') == 4  # two charts, wide and narrow
    assert fragment.count("Failures per hour, last 48 hours") == 4  # aria-label and title, x2
    assert fragment.count(f"{utcnow():%H} · Failed: 1</title>") == 4
    assert fragment.count("Delivered: 0</title>") == 2 * 48  # only in the combined chart


def test_parts_fragment_draws_the_pages_parts_the_same(app, as_admin):
    """What the script swaps in is what the page drew: each part, from the same macro."""
    now = utcnow()
    with app.app_context():
        alice = create_user("alice")
        ops = add_connection(alice, "Ops", remaining=0)
        add_connection(alice, "Family", remaining=150)
        create_notification(ops, status="failed", finished=now, last_error="Invalid sticker")
        create_notification(ops, status="queued", next_attempt=now - timedelta(hours=1))
        create_api_key(alice, "CI")
    page = as_admin.get("/admin?hours=48").get_data(as_text=True)
    answer = as_admin.get("/admin/parts?hours=48")
    assert answer.status_code == 200
    assert answer.content_type.startswith("text/html")
    assert answer.headers["Cache-Control"] == "no-store"
    assert "script-src" in answer.headers["Content-Security-Policy"]
    fragment = answer.get_data(as_text=True)
    assert is_fragment(fragment)
    on_page, swapped = parts(page), parts(fragment)
    assert set(swapped) == set(on_page) - {"charts"}  # the charts come from /admin/charts
    assert set(swapped) >= {"connections", "stuck", "failed", "keys", "figures", "updated"}
    for name in swapped.keys() - {"updated"}:  # "updated" says the time it was drawn
        assert swapped[name] == on_page[name], name
    assert "Figures as of" in swapped["updated"]
    assert '/cancel?hours=48" class="inline" data-confirm="Cancel notification' in swapped["stuck"]


def test_parts_fragment_keeps_the_pages_filters_and_pages(app, as_admin):
    now = utcnow()
    with app.app_context():
        alice = create_user("alice")
        add_connection(alice, "Gone", remaining=None, status="revoked")
        active = add_connection(alice, "Ops", remaining=10)
        stuck = create_notification(
            active, status="queued", next_attempt=now - timedelta(hours=1)
        ).id
    fragment = parts(as_admin.get("/admin/parts?status=revoked&hours=48").get_data(as_text=True))
    assert "Gone" in fragment["connections"]
    assert "Ops" not in fragment["connections"]
    # Its buttons and links come back to the same view of the page.
    cancel = f"/admin/notifications/{stuck}/cancel?status=revoked&amp;hours=48"
    assert f'action="{cancel}"' in fragment["stuck"]
    assert 'href="/admin?hours=48&amp;user=alice#connections"' in fragment["connections"]


def test_parts_fragment_escapes_what_people_typed(app, as_admin):
    with app.app_context():
        mallory = create_user("mallory")
        add_connection(mallory, '<img src=x onerror="alert(1)">', remaining=5)
    fragment = as_admin.get("/admin/parts").get_data(as_text=True)
    assert "<img src=x" not in fragment
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in fragment


@pytest.mark.parametrize(("remaining", "low"), [(150, True), (200, True), (201, False)])
def test_a_chat_is_low_on_calls_at_the_dashboards_mark(app, as_admin, remaining, low):
    """One rule for "low": at or below a fifth of the limit, on the dashboard and here."""
    with app.app_context():
        add_connection(create_user("alice"), "Ops", remaining=remaining)
    cells = parts(as_admin.get("/admin/parts").get_data(as_text=True))["connections"]
    assert ('class="quota quota-low"' in cells) is low
    assert 'low="200"' in cells  # the meter's own mark agrees


# --- actions -------------------------------------------------------------------------------


def test_retry_button_requeues_and_returns_to_the_same_view(app, as_admin):
    now = utcnow()
    with app.app_context():
        ids = problem_scenario(now)
    html = as_admin.get("/admin").get_data(as_text=True)
    assert f'action="/admin/notifications/{ids["failed_recent"]}/retry"' in html
    assert f"/admin/notifications/{ids['failed_newest']}/retry" not in html  # dead chat
    assert 'data-confirm="Retry notification' in html

    answer = as_admin.post(
        f"/admin/notifications/{ids['failed_recent']}/retry?failed_page=1&user=alice&status=x"
    )
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/admin?user=alice#failed"
    assert _status(app, ids["failed_recent"]) == NotificationStatus.QUEUED
    page = as_admin.get("/admin").get_data(as_text=True)
    assert f"Notification {ids['failed_recent']} is queued again." in page


def test_cancel_button_fails_the_row(app, as_admin):
    now = utcnow()
    with app.app_context():
        ids = problem_scenario(now)
    answer = as_admin.post(f"/admin/notifications/{ids['queued_overdue']}/cancel")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/admin#stuck"
    with app.app_context():
        row = db.session.get(Notification, ids["queued_overdue"])
        assert (row.status, row.last_error) == ("failed", "cancelled by an admin")


def test_refused_actions_flash_why_and_change_nothing(app, as_admin):
    now = utcnow()
    with app.app_context():
        ids = problem_scenario(now)
    answer = as_admin.post(
        f"/admin/notifications/{ids['delivered_old']}/cancel", follow_redirects=True
    )
    assert "already delivered; there is nothing to cancel" in answer.get_data(as_text=True)
    assert _status(app, ids["delivered_old"]) == "delivered"
    answer = as_admin.post(f"/admin/notifications/{ids['sending_live']}/cancel")
    assert _status(app, ids["sending_live"]) == "sending"
    assert as_admin.post("/admin/notifications/999999/retry").status_code == 404


def test_stuck_rows_show_their_problem(app, as_admin):
    now = utcnow()
    with app.app_context():
        problem_scenario(now)
        late = add_connection(create_user("dora"), "Late", remaining=3)
        create_notification(late, status="queued", next_attempt=now - timedelta(hours=3))
    html = as_admin.get("/admin").get_data(as_text=True)
    assert "queued; due 3 h ago" in html
    assert "sending; lease ran out 5 min ago" in html
    assert "sending without a lease" in html
    assert len(_ids(html, "stuck")) == 5
