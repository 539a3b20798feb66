"""The dashboard page and its JSON (SPEC 4.5), through the test client.

One module past 400 lines on purpose: one page, whose HTML, JSON and fragments must tell the
same figures from the same stored snapshot."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from notify_site.charts import chart_key
from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import Connection, ConnectionStatus, NotificationStatus
from tests.conftest import make_test_config
from tests.factories import create_connection, create_notification, create_user, login
from tests.fragments import is_fragment, parts
from tests.htmltree import card, parse

API = "https://notify-api.test"
RESET = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
CHECKED = datetime(2031, 5, 6, 6, 30, 0, tzinfo=UTC)


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture
def app_config(tmp_path):
    return make_test_config(tmp_path, NOTIFY_API_ORIGIN=API)


def snapshot(connection: Connection, **values) -> None:
    defaults = {
        "rate_limit": 1000,
        "rate_remaining": 742,
        "rate_image_limit": 50,
        "rate_image_remaining": 7,
        "rate_reset_at": RESET,
        "rate_checked_at": CHECKED,
        "rate_checked_by": "notify",
    }
    for name, value in {**defaults, **values}.items():
        setattr(connection, name, value)


def add_connection(app, owner_id: int, label: str = "Ops", **values) -> int:
    with app.app_context():
        from notify_site.models import User

        owner = db.session.get(User, owner_id)
        status = values.pop("status", ConnectionStatus.ACTIVE)
        connection = create_connection(owner, label=label, status=status)
        snapshot(connection, **values)
        db.session.commit()
        return connection.id


def add_notification(app, connection_id: int, **values) -> int:
    with app.app_context():
        return create_notification(connection_id, **values).id


# ---------------------------------------------------------------------------- the page


def test_page_shows_exactly_the_stored_snapshot(app, signed_in, alice):
    connection_id = add_connection(app, alice)
    page = parse(signed_in.get("/dashboard").get_data(as_text=True))
    ops = card(page, connection_id)

    calls = ops.one(data_gauge="calls")
    assert calls.one(data_field="remaining").text == "742"
    assert calls.one(data_field="limit").text == "1,000"  # figures in the locale's format (issue 8)
    assert (calls.attrs["aria-valuenow"], calls.attrs["aria-valuemax"]) == ("742", "1000")
    assert calls.one("path", class_="gauge-value").attrs["stroke-dasharray"] == "74.2 100"
    assert "gauge-ok" in calls.attrs["class"].split()

    images = ops.one(data_gauge="images")
    assert images.one(data_field="remaining").text == "7"
    assert images.one(data_field="limit").text == "50"
    assert images.one("path", class_="gauge-value").attrs["stroke-dasharray"] == "14.0 100"
    assert "gauge-low" in images.attrs["class"].split()  # 7 of 50 is under a fifth

    countdown = ops.one(data_field="countdown")
    assert countdown.attrs["data-reset"] == str(int(RESET.timestamp()))
    assert re.fullmatch(r"resets in (\d+:)?\d+:\d\d", countdown.text)
    assert ops.one(data_field="reset_at").text == "at 2031-05-06 07:08 UTC"
    assert ops.one(data_field="checked").one("time").text == "2031-05-06 06:30 UTC"
    assert ops.one(data_field="checked_by").text == "notify"
    assert ops.one(data_field="status").text == "active"
    assert "Sandbox user" in ops.text
    assert "USER" in ops.one("span", class_="type").text


def test_page_offers_refresh_and_revoke_that_come_back_here(app, signed_in, alice):
    connection_id = add_connection(app, alice, label="Night shift")
    page = parse(signed_in.get("/dashboard").get_data(as_text=True))
    ops = card(page, connection_id)
    forms = {f.one("button").text: f for f in ops.find_all("form")}
    assert set(forms) == {"Refresh", "Disconnect"}
    base = f"/connections/{connection_id}"
    assert forms["Refresh"].attrs["action"] == f"{base}/refresh?next=dashboard"
    assert forms["Disconnect"].attrs["action"] == f"{base}/revoke?next=dashboard"
    assert forms["Disconnect"].attrs["data-confirm"].startswith("Disconnect “Night shift”?")
    assert "spends one call" in ops.text


def test_past_reset_and_never_checked_are_told_apart(app, signed_in, alice):
    past = add_connection(app, alice, label="Past", rate_reset_at=utcnow() - timedelta(minutes=1))
    never = add_connection(
        app,
        alice,
        label="Never",
        rate_limit=None,
        rate_remaining=None,
        rate_image_limit=None,
        rate_image_remaining=None,
        rate_reset_at=None,
        rate_checked_at=None,
        rate_checked_by=None,
    )
    page = parse(signed_in.get("/dashboard").get_data(as_text=True))

    reset = card(page, past)
    assert reset.one(data_field="countdown").text == "window reset"
    assert "is-reset" in reset.attrs["class"].split()
    assert "hidden" not in reset.one(data_field="reset_note").attrs

    unknown = card(page, never)
    assert unknown.one(data_field="countdown").text == "reset time unknown"
    assert "data-reset" not in unknown.one(data_field="countdown").attrs
    assert unknown.one(data_field="checked").text == "never"
    calls = unknown.one(data_gauge="calls")
    assert "gauge-unknown" in calls.attrs["class"].split()
    assert calls.one(data_field="remaining").text == "—"
    assert "aria-valuenow" not in calls.attrs


def test_revoked_connection_is_shown_revoked_without_buttons(app, signed_in, alice):
    revoked = add_connection(app, alice, label="Old", status=ConnectionStatus.REVOKED)
    broken = add_connection(app, alice, label="Broken", status=ConnectionStatus.ERROR)
    with app.app_context():
        db.session.get(Connection, broken).status_detail = "Token key ktest0 is missing."
        db.session.commit()
    page = parse(signed_in.get("/dashboard").get_data(as_text=True))

    old = card(page, revoked)
    assert old.one(data_field="status").text == "revoked"
    assert old.find_all("form") == []
    assert old.find_all("button") == []
    assert old.find_all(data_gauge="calls") == []
    assert "connect it again" in old.text

    error = card(page, broken)
    assert error.one(data_field="status").text == "error"
    assert error.one(data_field="status_detail").text == "Token key ktest0 is missing."
    assert "hidden" not in error.one(data_field="status_detail").attrs
    assert len(error.find_all("form")) == 2


def test_new_user_sees_what_to_do_next(signed_in):
    page = parse(signed_in.get("/dashboard").get_data(as_text=True))
    chats = page.one(id="no-connections")
    assert "No chats connected yet" in chats.text
    assert chats.one("a").attrs["href"] == "/connections"
    assert chats.one("a").text == "Connect a chat"
    recent = page.one(id="recent-empty")
    assert "Nothing sent yet" in recent.text
    assert "hidden" not in recent.attrs
    assert recent.one("a").attrs["href"] == "/send"
    assert recent.one("a").text == "Send a notification"
    assert "hidden" in page.one(id="recent-table").attrs
    assert page.one(id="sends-chart").one("p").text == "No notifications in the last 24 hours."
    assert page.find_all("article") == []


def test_recent_notifications_newest_first_at_most_twenty(app, signed_in, alice):
    connection_id = add_connection(app, alice)
    start = utcnow() - timedelta(hours=2)
    for index in range(22):
        add_notification(
            app,
            connection_id,
            message=f"message {index}",
            created=start + timedelta(minutes=index),
            status=NotificationStatus.DELIVERED,
            attempts=1,
        )
    add_notification(
        app,
        connection_id,
        message="x" * 300,
        created=start + timedelta(minutes=30),
        status=NotificationStatus.FAILED,
        attempts=3,
        last_error="400: Invalid sticker",
    )
    page = parse(signed_in.get("/dashboard").get_data(as_text=True))
    rows = page.one(id="recent-rows").find_all("tr")
    assert len(rows) == 20
    first = rows[0]
    assert first.one(data_field="status").text == "failed"
    assert first.one(data_field="attempts").text == "3"
    assert first.one(data_field="last_error").text == "400: Invalid sticker"
    assert first.one(data_field="excerpt").text == "x" * 79 + "…"
    assert first.one(data_field="connection").text == "Ops"
    expected = (start + timedelta(minutes=30)).strftime("%Y-%m-%d %H:%M UTC")
    assert first.one(data_field="created_at").text == expected
    assert [r.one(data_field="excerpt").text for r in rows[1:4]] == [
        "message 21",
        "message 20",
        "message 19",
    ]
    assert "hidden" in page.one(id="recent-empty").attrs


def test_chart_has_a_bar_per_hour_for_delivered_and_failed(app, signed_in, alice):
    connection_id = add_connection(app, alice)
    now = utcnow()
    for status in [NotificationStatus.DELIVERED] * 3 + [NotificationStatus.FAILED]:
        add_notification(app, connection_id, status=status, created=now)
    page = parse(signed_in.get("/dashboard").get_data(as_text=True))
    chart = page.one(id="sends-chart").one("div", class_="chart-wide").one("svg")
    assert "chart" in chart.attrs["class"].split()
    delivered = chart.find_all("rect", class_="chart-series-1")
    failed = chart.find_all("rect", class_="chart-series-2")
    assert (len(delivered), len(failed)) == (24, 24)
    assert delivered[-1].one("title").text.endswith("Delivered: 3")
    assert failed[-1].one("title").text.endswith("Failed: 1")
    assert page.one(data_field="total_delivered").text == "3"
    assert page.one(data_field="total_failed").text == "1"
    assert "hidden" in page.one(data_field="pending_item").attrs


def test_page_has_no_inline_style_or_script(app, signed_in, alice):
    add_connection(app, alice)
    html = signed_in.get("/dashboard").get_data(as_text=True)
    page = parse(html)
    assert not [e for e in page.find_all() if "style" in e.attrs]
    assert page.find_all("style") == []
    assert all(s.attrs.get("src") for s in page.find_all("script"))
    assert "/static/js/dashboard.js" in [s.attrs["src"] for s in page.find_all("script")]
    assert "/static/css/dashboard.css" in [link.attrs["href"] for link in page.find_all("link")]


def test_page_requires_sign_in(client):
    response = client.get("/dashboard")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


# ---------------------------------------------------------------------------- the JSON


def test_json_has_the_same_numbers(app, signed_in, alice):
    connection_id = add_connection(app, alice)
    notification_id = add_notification(
        app,
        connection_id,
        message="Backup done\non db-1",
        status=NotificationStatus.DELIVERED,
        attempts=1,
        created=utcnow() - timedelta(minutes=5),
        finished=utcnow() - timedelta(minutes=4),
    )
    response = signed_in.get("/dashboard.json")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    [connection] = body["connections"]
    assert connection == {
        "id": connection_id,
        "label": "Ops",
        "target": "Sandbox user",
        "type": "USER",
        "status": "active",
        "status_detail": None,
        "status_detail_text": None,
        "rate_limit": {
            "limit": 1000,
            "remaining": 742,
            "image_limit": 50,
            "image_remaining": 7,
            "reset": int(RESET.timestamp()),
            "reset_at": "2031-05-06T07:08:09Z",
            "checked_at": "2031-05-06T06:30:00Z",
            "checked_by": "notify",
        },
    }
    [notification] = body["notifications"]
    assert notification["id"] == notification_id
    assert notification["connection"] == {"id": connection_id, "label": "Ops"}
    assert notification["excerpt"] == "Backup done on db-1"
    assert (notification["status"], notification["attempts"]) == ("delivered", 1)
    assert notification["finished_at"].endswith("Z")
    hourly = body["hourly"]
    assert len(hourly["hours"]) == len(hourly["delivered"]) == len(hourly["failed"]) == 24
    assert sum(hourly["delivered"]) == 1
    assert sum(hourly["failed"]) == sum(hourly["pending"]) == 0


def test_json_and_page_agree(app, signed_in, alice):
    connection_id = add_connection(app, alice, rate_remaining=3, rate_image_remaining=0)
    page = parse(signed_in.get("/dashboard").get_data(as_text=True))
    rate = signed_in.get("/dashboard.json").get_json()["connections"][0]["rate_limit"]
    ops = card(page, connection_id)
    assert ops.one(data_gauge="calls").one(data_field="remaining").text == str(rate["remaining"])
    assert ops.one(data_gauge="images").one(data_field="remaining").text == str(
        rate["image_remaining"]
    )
    assert ops.one(data_field="countdown").attrs["data-reset"] == str(rate["reset"])
    assert "gauge-empty" in ops.one(data_gauge="images").attrs["class"].split()
    # The chart was drawn from the same hourly figures the page's script starts from.
    hourly = signed_in.get("/dashboard.json").get_json()["hourly"]
    assert page.one(id="dashboard").attrs["data-chart-key"] == chart_key(hourly)


@pytest.mark.parametrize("path", ["/dashboard.json", "/dashboard/chart", "/dashboard/parts"])
def test_json_and_chart_need_sign_in_and_answer_401_json(client, path):
    response = client.get(path, headers={"Accept": "text/html"})
    assert response.status_code == 401
    assert response.mimetype == "application/json"
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_chart_fragment_is_the_charts_of_the_page(app, signed_in, alice):
    connection_id = add_connection(app, alice)
    add_notification(app, connection_id, status=NotificationStatus.QUEUED, created=utcnow())
    response = signed_in.get("/dashboard/chart")
    assert response.status_code == 200
    fragment = parse(response.get_data(as_text=True))
    wide = fragment.one("div", class_="chart-wide").one("svg")
    narrow = fragment.one("div", class_="chart-narrow").one("svg")
    assert wide.attrs["viewbox"] != narrow.attrs["viewbox"]  # HTMLParser lowers names
    pending = wide.find_all("rect", class_="chart-series-3")  # a third series, only when pending
    assert len(pending) == 24
    assert pending[-1].one("title").text.endswith("Pending: 1")


def test_parts_fragment_draws_the_pages_parts_the_same(app, signed_in, alice, monkeypatch):
    """What the page's script swaps in every 15 s is what the page drew, from the same macros."""
    ops = add_connection(app, alice, rate_remaining=150)
    add_connection(app, alice, label="Gone", status=ConnectionStatus.REVOKED)
    add_notification(app, ops, status=NotificationStatus.FAILED, last_error="Invalid sticker")
    # Both drawn at one instant: a countdown drawn a second later says one second less.
    now = utcnow()
    monkeypatch.setattr("notify_site.services.dashboard.utcnow", lambda: now)
    page = signed_in.get("/dashboard").get_data(as_text=True)
    answer = signed_in.get("/dashboard/parts")
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    fragment = answer.get_data(as_text=True)
    assert is_fragment(fragment)
    on_page, swapped = parts(page), parts(fragment)
    assert set(swapped) == {"updated", "chats", "recent", "coming"}
    for name in ("chats", "recent", "coming"):
        assert swapped[name] == on_page[name], name
    assert "gauge-low" in swapped["chats"]  # 150 of 1,000: the one rule (services/quota.py)
    assert "Invalid sticker" in swapped["recent"]
    # The chart and its legend come from /dashboard/chart, also the page's own parts.
    chart = signed_in.get("/dashboard/chart").get_data(as_text=True)
    assert is_fragment(chart)
    assert parts(chart) == {name: on_page[name] for name in ("chart", "legend")}
    key = re.search(r'<div data-parts data-chart-key="(\w+)"', fragment).group(1)
    assert key == parse(page).one(id="dashboard").attrs["data-chart-key"]


def test_a_new_notification_changes_the_chart_key(app, signed_in, alice):
    ops = add_connection(app, alice)

    def key() -> str:
        fragment = signed_in.get("/dashboard/parts").get_data(as_text=True)
        return re.search(r'data-chart-key="(\w+)"', fragment).group(1)

    before = key()
    assert key() == before
    add_notification(app, ops, created=utcnow())
    assert key() != before


# ---------------------------------------------------------------------------- isolation


def test_another_users_connections_and_notifications_never_appear(app, client, alice):
    with app.app_context():
        bob = create_user("bob", admin=True).id  # even an admin sees only their own here
    mine = add_connection(app, alice, label="Alice chat")
    theirs = add_connection(app, bob, label="Bob secret chat", rate_remaining=5)
    add_notification(
        app,
        mine,
        message="for alice",
        created=utcnow(),
        status=NotificationStatus.QUEUED,
        attempts=0,
    )
    for _ in range(3):
        add_notification(
            app,
            theirs,
            message="bob private message",
            created=utcnow(),
            status=NotificationStatus.FAILED,
        )
    login(client, "alice")

    html = client.get("/dashboard").get_data(as_text=True)
    assert "Bob secret chat" not in html
    assert "bob private message" not in html
    page = parse(html)
    assert [a.attrs["data-connection-id"] for a in page.find_all("article")] == [str(mine)]
    assert page.one(data_field="total_failed").text == "0"

    body = client.get("/dashboard.json").get_json()
    assert [c["id"] for c in body["connections"]] == [mine]
    assert [n["excerpt"] for n in body["notifications"]] == ["for alice"]
    assert sum(body["hourly"]["failed"]) == 0
    assert sum(body["hourly"]["delivered"]) + sum(body["hourly"]["pending"]) == 1
    assert "Bob" not in client.get("/dashboard/chart").get_data(as_text=True)
    fragment = client.get("/dashboard/parts").get_data(as_text=True)
    assert "Alice chat" in fragment
    assert "Bob" not in fragment
    assert "bob private message" not in fragment


# ---------------------------------------------------------------------------- the buttons


def test_refresh_from_the_dashboard_comes_back_to_it(app, signed_in, alice, mocked_http):
    connection_id = add_connection(app, alice)
    status_call = mocked_http.get(
        API + "/api/status",
        json={"status": 200, "message": "ok", "targetType": "USER", "target": "Alice"},
        headers={
            "X-RateLimit-Limit": "1000",
            "X-RateLimit-Remaining": "741",
            "X-RateLimit-ImageLimit": "50",
            "X-RateLimit-ImageRemaining": "7",
            "X-RateLimit-Reset": str(int(RESET.timestamp())),
        },
    )
    response = signed_in.post(f"/connections/{connection_id}/refresh?next=dashboard")
    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard"
    assert status_call.call_count == 1
    page = parse(signed_in.get("/dashboard").get_data(as_text=True))
    ops = card(page, connection_id)
    assert ops.one(data_gauge="calls").one(data_field="remaining").text == "741"
    assert ops.one(data_field="checked_by").text == "status"
    assert "741 calls left this hour" in page.one("div", class_="flash-success").text


@pytest.mark.parametrize("where", ["https://evil.test/", "//evil.test", "admin.index", ""])
def test_revoke_goes_back_only_to_the_dashboard_or_connections(
    app, signed_in, alice, mocked_http, where
):
    connection_id = add_connection(app, alice)
    mocked_http.post(API + "/api/revoke", json={"status": 200, "message": "ok"})
    response = signed_in.post(f"/connections/{connection_id}/revoke", query_string={"next": where})
    assert response.status_code == 302
    assert response.headers["Location"] == "/connections"
    with app.app_context():
        assert db.session.get(Connection, connection_id).status == ConnectionStatus.REVOKED


def test_revoke_from_the_dashboard_comes_back_to_it(app, signed_in, alice, mocked_http):
    connection_id = add_connection(app, alice)
    revoke_call = mocked_http.post(API + "/api/revoke", json={"status": 200, "message": "ok"})
    response = signed_in.post(f"/connections/{connection_id}/revoke?next=dashboard")
    assert response.headers["Location"] == "/dashboard"
    assert revoke_call.call_count == 1
    page = parse(signed_in.get("/dashboard").get_data(as_text=True))
    assert card(page, connection_id).one(data_field="status").text == "revoked"
    assert card(page, connection_id).find_all("button") == []
    with app.app_context():
        rows = db.session.scalars(select(Connection)).all()
        assert [row.status for row in rows] == [ConnectionStatus.REVOKED]
