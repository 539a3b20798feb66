"""An admin in Chromium: the /admin page with its chart, Retry behind a confirmation, and the
page refreshing itself from the JSON endpoints."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import Notification, NotificationStatus
from tests.browser.steps import DESKTOP, PHONE, dismissed_question, screenshot, sign_in
from tests.factories import add_connection, create_api_key, create_notification, create_user

pytestmark = pytest.mark.browser


def seed_site(live) -> dict[str, int]:
    """An admin, two owners, chats with every kind of quota, a day of deliveries and failures."""
    now = utcnow()
    with live.app.app_context():
        create_user("root", admin=True)
        alice = create_user("alice")
        bob = create_user("bob")
        chats = {
            "Ops alerts": add_connection(alice, "Ops alerts", remaining=3),
            "Family": add_connection(alice, "Family", remaining=640),
            "Team": add_connection(bob, "Team", remaining=0),
            "Night shift": add_connection(bob, "Night shift", remaining=None),
        }
        key, _ = create_api_key(alice, "CI alerts")
        for hour in range(24):
            for _ in range(hour % 5 + 1):
                finished = now - timedelta(hours=hour, minutes=5)
                create_notification(chats["Family"], finished=finished, api_key_id=key.id)
            if hour % 6 == 2:
                create_notification(
                    chats["Ops alerts"],
                    status="failed",
                    finished=now - timedelta(hours=hour, minutes=10),
                    attempts=8,
                    last_error="The Notify server answered 500: Internal Server Error",
                )
        failed = create_notification(
            chats["Ops alerts"],
            status="failed",
            finished=now - timedelta(minutes=3),
            attempts=3,
            last_error="The Notify server answered 503: Service Unavailable",
            message="Backup failed on db-2",
        ).id
        stuck = create_notification(
            chats["Team"],
            status="queued",
            created=now - timedelta(hours=2),
            next_attempt=now - timedelta(hours=1),
            message="Nightly report ready",
        ).id
    return {"failed": failed, "stuck": stuck, **chats}


def status_of(live, notification_id: int) -> str:
    with live.app.app_context():
        db.session.expire_all()
        return db.session.get(Notification, notification_id).status


def test_admin_page_renders_its_chart_and_tables(live, page):
    ids = seed_site(live)
    sign_in(page, live)
    page.goto(f"{live.site}/admin")
    expect(page.locator("#overview svg.chart").first).to_be_visible()
    # One bar per hour for deliveries and one for failures, 24 hours.
    expect(page.locator("[data-chart=main] svg.chart rect")).to_have_count(48)
    rows = page.locator('table[data-list="connections"] tbody tr')
    expect(rows).to_have_count(4)
    # Lowest remaining first, never checked last.
    expect(rows.nth(0)).to_contain_text("Team")
    expect(rows.nth(1)).to_contain_text("Ops alerts")
    expect(rows.nth(3)).to_contain_text("Night shift")
    failed = page.locator(f'table[data-list="failed"] tr[data-id="{ids["failed"]}"]')
    expect(failed).to_contain_text("503: Service Unavailable")
    expect(page.locator('table[data-list="stuck"] tbody tr')).to_contain_text("Nightly report")
    expect(page.locator('table[data-list="keys"] tbody tr')).to_contain_text("CI alerts")
    screenshot(page, "admin")

    page.set_viewport_size(PHONE)
    page.goto(f"{live.site}/admin")
    # The narrow drawing of each chart replaces the wide one.
    expect(page.locator("#admin-charts .chart-narrow svg.chart")).to_have_count(2)
    expect(page.locator("#admin-charts .chart-narrow svg.chart").first).to_be_visible()
    expect(page.locator("#admin-charts .chart-wide").first).to_be_hidden()
    # On a phone the tables turn into cards and nothing scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    expect(page.locator('table[data-list="connections"] thead')).to_be_hidden()
    screenshot(page, "admin-phone")


def test_retry_asks_first_then_queues_the_failed_row(live, page):
    ids = seed_site(live)
    sign_in(page, live)
    page.set_viewport_size(DESKTOP)
    page.goto(f"{live.site}/admin")
    row = page.locator(f'table[data-list="failed"] tr[data-id="{ids["failed"]}"]')
    question = dismissed_question(page, row.get_by_role("button", name="Retry"))
    expect(page).to_have_url(f"{live.site}/admin")
    assert question == f"Retry notification {ids['failed']} to “Ops alerts” now?"
    assert status_of(live, ids["failed"]) == NotificationStatus.FAILED

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Retry").click()
    expect(page.locator(".flash-success")).to_have_text(
        f"Notification {ids['failed']} is queued again."
    )
    expect(page).to_have_url(f"{live.site}/admin#failed")
    assert status_of(live, ids["failed"]) == NotificationStatus.QUEUED
    expect(page.locator(f'table[data-list="failed"] tr[data-id="{ids["failed"]}"]')).to_have_count(
        0
    )


def test_the_page_refreshes_itself_and_its_new_buttons_work(live, page):
    ids = seed_site(live)
    sign_in(page, live)
    page.clock.install()
    page.goto(f"{live.site}/admin")
    delivered = page.locator('[data-summary="delivered"]')
    before = int(delivered.inner_text().replace(",", ""))
    expect(page.locator('table[data-list="stuck"] tbody tr')).to_have_count(1)
    chart_before = page.locator("[data-chart=main]").inner_html()

    with live.app.app_context():
        late = create_notification(
            ids["Family"],
            status="queued",
            next_attempt=utcnow() - timedelta(minutes=30),
            message="Disk 97% full on web-3",
        ).id
        create_notification(ids["Family"], finished=utcnow())
    page.clock.fast_forward(31_000)

    new_row = page.locator(f'table[data-list="stuck"] tr[data-id="{late}"]')
    expect(new_row).to_contain_text("Disk 97% full on web-3")
    expect(new_row).to_contain_text("queued; due 30 min ago")
    expect(delivered).to_have_text(f"{before + 1:,}")
    # The new delivery changed the hourly figures, so the charts were drawn again.
    page.wait_for_function(
        "before => document.querySelector('[data-chart=main]').innerHTML !== before",
        arg=chart_before,
    )
    expect(page.locator("#admin-charts svg.chart")).to_have_count(4)
    expect(page.locator("#admin-updated")).to_contain_text("refreshes itself every 30 s")

    # The rebuilt row's Cancel button carries a working CSRF token and asks first.
    page.once("dialog", lambda dialog: dialog.accept())
    new_row.get_by_role("button", name="Cancel").click()
    expect(page.locator(".flash-success")).to_have_text(f"Notification {late} is cancelled.")
    assert status_of(live, late) == NotificationStatus.FAILED
    assert status_of(live, ids["stuck"]) == NotificationStatus.QUEUED
    screenshot(page, "admin-after-refresh-and-cancel")
