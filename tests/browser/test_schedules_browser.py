"""A person in Chromium creates a daily schedule and sees its next sends in their own time
zone; and the pages of scheduled sends, at desktop and phone widths, in English and
Japanese, for people to look at (test-artifacts/)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import User
from tests.browser.steps import DESKTOP, PHONE, screenshot, sign_up_and_connect

pytestmark = pytest.mark.browser


def set_preferences(live, username: str, **values) -> None:
    with live.app.app_context():
        user = db.session.scalar(select(User).where(User.username == username))
        for name, value in values.items():
            setattr(user, name, value)
        db.session.commit()


def test_a_daily_schedule_shows_its_next_sends_in_the_persons_zone(live, page):
    sign_up_and_connect(page, live, [("Me", "1-on-1")])
    set_preferences(live, "alice", timezone="Asia/Tokyo")
    page.goto(f"{live.site}/schedules")
    page.get_by_role("link", name="New schedule").click()
    expect(page.locator("#timezone")).to_have_value("Asia/Tokyo")
    page.fill("#name", "Morning")
    page.get_by_role("checkbox", name=re.compile("Me")).check()
    page.fill("#message", "おはようございます")
    page.select_option("#kind", "daily")
    page.fill("#at", "07:30")
    screenshot(page, "schedule-new")
    page.get_by_role("button", name="Create the schedule").click()

    expect(page.locator(".flash-success")).to_contain_text("Schedule “Morning” created.")
    expect(page.locator("#schedule-rule")).to_contain_text("Every day at 07:30")
    sends = page.locator("#next-occurrences li")
    expect(sends).to_have_count(5)
    for index in range(5):  # 07:30 in Tokyo, which would read 22:30 in UTC
        expect(sends.nth(index)).to_contain_text("07:30")
    expect(page.locator(".page-head .hint")).to_contain_text("Japan")
    for width, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        screenshot(page, f"schedule-detail-{width}")
    page.set_viewport_size(DESKTOP)

    page.goto(f"{live.site}/schedules")
    expect(page.locator("table.schedule-list")).to_contain_text("Morning")


def test_the_pages_of_scheduled_sends_in_japanese(live, page):
    sign_up_and_connect(page, live, [("Me", "1-on-1")])
    set_preferences(live, "alice", timezone="Asia/Tokyo", locale="ja")
    page.goto(f"{live.site}/send")
    page.fill("#message", "夕食は7時")
    page.locator("#field-send_at summary").click()
    day = (utcnow() + timedelta(days=10)).date()
    page.fill("#send_at", f"{day.isoformat()}T18:30")
    page.locator("form.send-form button[type=submit]").click()
    expect(page).to_have_url(f"{live.site}/scheduled")
    expect(page.locator("table.scheduled-list")).to_contain_text(
        f"{day.strftime('%Y/%m/%d')} 18:30"
    )
    for name, path in (
        ("scheduled", "/scheduled"),
        ("schedules", "/schedules"),
        ("schedule-new", "/schedules/new"),
        ("batch", "/schedules/batch"),
    ):
        page.goto(f"{live.site}{path}")
        expect(page.locator("html")).to_have_attribute("lang", "ja")
        for width, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            screenshot(page, f"ja-{name}-{width}")
        page.set_viewport_size(DESKTOP)
