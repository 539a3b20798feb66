"""Scheduled sends in the browser's pages (views/schedules.py, the send form's Send later,
the dashboard's next 24 hours, the admin's count), over the test client, on a stopped clock.
The person's zone is Asia/Tokyo (Settings)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.models import Notification, Schedule, User
from notify_site.services.admin.overview import summary
from notify_site.services.schedules import runner
from tests.factories import login
from tests.htmltree import parse
from tests.unit.schedules.conftest import utc


@pytest.fixture
def tokyo(app, client, world):
    with app.app_context():
        alice = db.session.get(User, world["alice"])
        alice.timezone = "Asia/Tokyo"
        db.session.commit()
    login(client)
    return client


def test_send_later_from_the_form_in_the_persons_zone(app, tokyo, world):
    answer = tokyo.post(
        "/send",
        data={
            "connections": [world["family"]],
            "message": "Dinner at 7",
            "send_at": "2027-01-04T18:30",
        },
    )
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith("/scheduled")
    with app.app_context():
        [row] = db.session.scalars(select(Notification)).all()
        assert (row.status, row.send_at) == ("scheduled", utc(2027, 1, 4, 9, 30))
    page = tokyo.get("/scheduled").get_data(as_text=True)
    assert "Dinner at 7" in page
    assert "2027/01/04 18:30" in page or "2027-01-04 18:30" in page


def test_a_past_send_later_time_is_refused_beside_the_field(app, tokyo, world):
    answer = tokyo.post(
        "/send",
        data={"connections": [world["family"]], "message": "x", "send_at": "2027-01-04T08:00"},
    )
    assert answer.status_code == 400
    error = parse(answer.get_data(as_text=True)).one(id="field-send_at")
    assert "must be in the future" in error.text
    with app.app_context():
        assert db.session.scalars(select(Notification)).all() == []


def test_cancel_from_the_scheduled_page(app, tokyo, world):
    tokyo.post(
        "/send",
        data={"connections": [world["family"]], "message": "x", "send_at": "2027-01-05T08:00"},
    )
    with app.app_context():
        row_id = db.session.scalar(select(Notification.id))
    answer = tokyo.post(f"/scheduled/{row_id}/cancel", follow_redirects=True)
    assert "Cancelled: it will not be sent." in answer.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Notification, row_id).status == "cancelled"
    again = tokyo.post(f"/scheduled/{row_id}/cancel", follow_redirects=True)
    assert "It was cancelled already." in again.get_data(as_text=True)


def test_create_a_daily_schedule_and_see_its_next_sends_in_tokyo_time(app, tokyo, world):
    form = tokyo.get("/schedules/new").get_data(as_text=True)
    assert 'value="Asia/Tokyo"' in form
    answer = tokyo.post(
        "/schedules/new",
        data={
            "name": "Morning",
            "connections": [world["family"]],
            "message": "おはよう",
            "kind": "daily",
            "at": "07:30",
            "weekdays": ["0"],
            "month_day": "1",
            "month": "1",
            "timezone": "Asia/Tokyo",
        },
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    page = tokyo.get(answer.headers["Location"]).get_data(as_text=True)
    items = [li.text for li in parse(page).one(id="next-occurrences").find_all("li")]
    # 09:00 in Tokyo now: the first 07:30 is tomorrow's.
    assert items[0].startswith(("2027-01-05 07:30", "2027/01/05 07:30"))
    assert len(items) == 5
    assert "Every day at 07:30" in parse(page).one(id="schedule-rule").text
    assert "Morning" in tokyo.get("/schedules").get_data(as_text=True)


def test_a_weekly_schedule_without_days_is_refused_beside_them(app, tokyo, world):
    answer = tokyo.post(
        "/schedules/new",
        data={
            "name": "Weekly",
            "connections": [world["family"]],
            "message": "x",
            "kind": "weekly",
            "at": "09:00",
            "timezone": "Asia/Tokyo",
        },
    )
    assert answer.status_code == 400
    field = parse(answer.get_data(as_text=True)).one(id="field-weekdays")
    assert "Choose at least one day of the week." in field.text
    with app.app_context():
        assert db.session.scalars(select(Schedule)).all() == []


def test_pause_resume_and_delete_from_the_detail_page(app, tokyo, world):
    tokyo.post(
        "/schedules/new",
        data={
            "name": "Bins",
            "connections": [world["family"]],
            "message": "Bins out",
            "kind": "weekly",
            "weekdays": ["0", "3"],
            "at": "20:00",
            "timezone": "Asia/Tokyo",
        },
    )
    with app.app_context():
        schedule_id = db.session.scalar(select(Schedule.id))
    url = f"/schedules/{schedule_id}"
    assert "is paused" in tokyo.post(f"{url}/pause", follow_redirects=True).get_data(as_text=True)
    assert "Resume" in tokyo.get(url).get_data(as_text=True)
    tokyo.post(f"{url}/resume")
    with app.app_context():
        assert db.session.get(Schedule, schedule_id).status == "active"
    tokyo.post(f"{url}/delete")
    assert tokyo.get(url).status_code == 404


CSV = (
    "date,time,connection,message\n"
    "2027-04-01,08:00,Family,Happy birthday Ken\n"
    "2027-05-02,,Family,Happy birthday Mari\n"
    "2027-06-31,21:15,Ops,Happy birthday Sho\n"
)


def upload(client, text: str, **extra):
    data = {
        "file": (io.BytesIO(text.encode()), "birthdays.csv"),
        "default_time": "07:30",
        "timezone": "Asia/Tokyo",
        **extra,
    }
    return client.post("/schedules/batch", data=data, content_type="multipart/form-data")


def test_a_batch_with_a_bad_row_stores_nothing_and_names_the_line(app, tokyo, world):
    answer = upload(tokyo, CSV)
    assert answer.status_code == 400
    table = parse(answer.get_data(as_text=True)).one(class_="problems")
    rows = [[td.text for td in tr.find_all("td")] for tr in table.find_all("tr")[1:]]
    assert rows == [["4", "date: 2027-06-31 is not a day of the calendar"]]
    with app.app_context():
        assert db.session.scalars(select(Notification)).all() == []
    fixed = upload(tokyo, CSV.replace("2027-06-31", "2027-06-30"))
    assert fixed.status_code == 302
    with app.app_context():
        rows = db.session.scalars(select(Notification).order_by(Notification.id)).all()
        assert [row.status for row in rows] == ["scheduled"] * 3
    assert "Scheduled 3 rows." in tokyo.get("/scheduled").get_data(as_text=True)


def test_the_dashboard_lists_the_next_24_hours_and_admin_counts_scheduled(app, tokyo, world):
    tokyo.post(
        "/send",
        data={"connections": [world["ops"]], "message": "Soon", "send_at": "2027-01-04T12:00"},
    )
    tokyo.post(
        "/send",
        data={"connections": [world["ops"]], "message": "Later", "send_at": "2027-01-06T12:00"},
    )
    page = tokyo.get("/dashboard").get_data(as_text=True)
    coming = parse(page).one(id="coming-rows").text
    assert "Soon" in coming
    assert "Later" not in coming
    with app.app_context():
        assert summary().scheduled.count == 2


def test_skipped_occurrences_are_shown_on_the_schedule_page(app, tokyo, world, clock):
    tokyo.post(
        "/schedules/new",
        data={
            "name": "Daily",
            "connections": [world["family"]],
            "message": "x",
            "kind": "daily",
            "at": "10:00",
            "timezone": "Asia/Tokyo",
        },
    )
    clock.move_to(utc(2027, 1, 6, 1, 30))  # 10:30 in Tokyo, two days after the first 10:00
    with app.app_context():
        settings = runner.RunnerSettings(timedelta(hours=1), timedelta(seconds=60), 50, 100)
        runner.run_due_schedules(settings)
        schedule_id = db.session.scalar(select(Schedule.id))
    page = parse(tokyo.get(f"/schedules/{schedule_id}").get_data(as_text=True))
    rows = [tr.text for tr in page.one(class_="occurrences").find_all("tr")[1:]]
    assert rows == [
        "2027-01-06 10:00 queued",
        "2027-01-05 10:00 skipped",
        "2027-01-04 10:00 skipped",
    ]
