"""A person in Chromium watches their dashboard: quota gauges with a ticking countdown, the
chart of sends per hour, figures that refresh themselves, and Refresh / Disconnect buttons."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import Connection, NotificationStatus
from tests.browser.steps import (
    DESKTOP,
    PHONE,
    add_history,
    dismissed_question,
    quota_card,
    screenshot,
    send_from_the_form,
    sign_up_and_connect,
)
from tests.factories import create_connection, create_notification

pytestmark = pytest.mark.browser

COUNTDOWN = re.compile(r"^resets in (\d+:)?\d+:\d\d$")


def test_dashboard_shows_gauges_chart_and_a_ticking_countdown(live, in_process_worker, page):
    sign_up_and_connect(page, live, [("Me", "1-on-1"), ("Family alerts", "Family")])
    send_from_the_form(page, live, "Me", "Backup finished ✅ — 42 GB in 3 min")
    add_history(live)

    page.goto(f"{live.site}/dashboard")
    expect(page.locator("article.quota-card")).to_have_count(2)
    me = quota_card(page, "Me")
    # Connect spent one call (status), the delivery another (notify).
    expect(me.locator("[data-gauge=calls] [data-field=remaining]")).to_have_text("998")
    expect(me.locator("[data-gauge=calls] [data-field=limit]")).to_have_text("1,000")
    expect(me.locator("[data-gauge=images] [data-field=remaining]")).to_have_text("50")
    expect(me.locator("[data-field=checked_by]")).to_have_text("notify")
    expect(quota_card(page, "Family alerts").locator("[data-field=checked_by]")).to_have_text(
        "status"
    )
    expect(quota_card(page, "Family alerts")).to_contain_text("GROUP")

    chart = page.locator("#sends-chart .chart-wide svg.chart")
    expect(chart).to_be_visible()
    bars = chart.locator("rect.chart-series-1")
    expect(bars).to_have_count(24)
    heights = bars.evaluate_all("(rs) => rs.map((r) => Number(r.getAttribute('height')))")
    assert sum(1 for h in heights if h > 0) == 6  # five hours of history and this hour's send
    expect(chart.locator("rect.chart-series-2")).to_have_count(24)
    expect(page.locator("[data-field=total_delivered]")).to_have_text("25")
    expect(page.locator("[data-field=total_failed]")).to_have_text("3")

    rows = page.locator("#recent-rows tr")
    expect(rows).to_have_count(20)
    expect(rows.first).to_contain_text("Backup finished")
    expect(rows.first.locator("[data-field=status]")).to_have_text("delivered")

    countdown = me.locator("[data-field=countdown]")
    before = countdown.inner_text()
    assert COUNTDOWN.match(before), before
    expect(countdown).not_to_have_text(before)  # it ticks
    expect(countdown).to_have_text(COUNTDOWN)

    screenshot(page, "dashboard")
    page.set_viewport_size(PHONE)
    # Cards, not a six-column table, on a phone: no sideways scrolling.
    expect(page.locator("table.recent thead")).to_be_hidden()
    expect(chart).to_be_hidden()
    narrow = page.locator("#sends-chart .chart-narrow svg.chart")
    expect(narrow).to_be_visible()
    expect(narrow.locator("rect.chart-series-1")).to_have_count(24)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "dashboard-phone")
    page.set_viewport_size(DESKTOP)


def test_figures_refresh_without_reload_and_the_countdown_reaches_reset(live, page):
    # No worker: the test plays it.
    sign_up_and_connect(page, live, [("Me", "1-on-1")])
    page.clock.install()
    page.goto(f"{live.site}/dashboard")
    expect(page.locator("#recent-empty")).to_be_visible()
    expect(page.get_by_role("link", name="Send a notification")).to_have_attribute("href", "/send")
    me = quota_card(page, "Me")
    expect(me.locator("[data-gauge=calls] [data-field=remaining]")).to_have_text("999")
    page.evaluate("document.body.dataset.marker = 'same page'")

    with live.app.app_context():
        connection = db.session.scalars(select(Connection)).one()
        now = utcnow()
        connection.rate_remaining, connection.rate_image_remaining = 150, 0
        connection.rate_reset_at = now + timedelta(seconds=40)
        connection.rate_checked_at, connection.rate_checked_by = now, "notify"
        create_notification(
            connection,
            message="Deploy of web-2 failed",
            status=NotificationStatus.FAILED,
            attempts=8,
            last_error="500: Notify server error",
            finished=now,
        )
        db.session.commit()

    page.clock.run_for(16_000)  # past one poll
    expect(me.locator("[data-gauge=calls] [data-field=remaining]")).to_have_text("150")
    expect(me.locator("[data-gauge=calls]")).to_have_class(re.compile(r"\bgauge-low\b"))
    expect(me.locator("[data-gauge=images] [data-field=remaining]")).to_have_text("0")
    expect(me.locator("[data-gauge=images]")).to_have_class(re.compile(r"\bgauge-empty\b"))
    expect(me.locator("[data-field=checked_by]")).to_have_text("notify")
    row = page.locator("#recent-rows tr")
    expect(row).to_have_count(1)
    expect(row.locator("[data-field=status]")).to_have_text("failed")
    expect(row.locator("[data-field=last_error]")).to_have_text("500: Notify server error")
    expect(page.locator("#recent-empty")).to_be_hidden()
    # The chart was fetched again: this hour now has a failed bar.
    expect(page.locator("[data-field=total_failed]")).to_have_text("1")
    failed_bars = page.locator("#sends-chart .chart-wide rect.chart-series-2")
    expect(failed_bars.last.locator("title")).to_have_text(re.compile(r"Failed: 1$"))
    assert page.evaluate("document.body.dataset.marker") == "same page"  # no reload

    page.clock.run_for(30_000)  # past the new reset (about 25 s left)
    expect(me.locator("[data-field=countdown]")).to_have_text("window reset")
    expect(me.locator("[data-field=reset_note]")).to_be_visible()
    screenshot(page, "dashboard-after-poll-and-reset")


def test_a_chat_connected_meanwhile_appears_and_its_buttons_ask_first(live, page):
    """The cards are swapped in as the server draws them: a chat connected in another tab
    shows up without a reload, with working buttons that ask before they revoke."""
    sign_up_and_connect(page, live, [("Me", "1-on-1")])
    page.clock.install()
    page.goto(f"{live.site}/dashboard")
    expect(page.locator("article.quota-card")).to_have_count(1)
    page.evaluate("document.body.dataset.marker = 'same page'")
    with live.app.app_context():
        owner = db.session.scalars(select(Connection)).one().owner
        create_connection(owner, label="Night shift")

    page.clock.run_for(16_000)  # past one refresh
    night = quota_card(page, "Night shift")
    expect(night.locator("[data-field=status]")).to_have_text("active")
    assert page.evaluate("document.body.dataset.marker") == "same page"  # no reload

    question = dismissed_question(page, night.get_by_role("button", name="Disconnect"))
    assert question == "Disconnect “Night shift”? Messages can no longer be sent to this chat."
    expect(night.locator("[data-field=status]")).to_have_text("active")
    page.once("dialog", lambda dialog: dialog.accept())
    night.get_by_role("button", name="Disconnect").click()
    expect(page.locator(".flash-success")).to_contain_text("“Night shift” is disconnected")
    expect(night.locator("[data-field=status]")).to_have_text("revoked")


def test_refresh_and_revoke_return_to_the_dashboard(live, page):
    sign_up_and_connect(page, live, [("Me", "1-on-1"), ("Family alerts", "Family")])
    page.goto(f"{live.site}/dashboard")
    family = quota_card(page, "Family alerts")
    expect(family.locator("[data-gauge=calls] [data-field=remaining]")).to_have_text("999")

    family.get_by_role("button", name="Refresh").click()
    expect(page).to_have_url(f"{live.site}/dashboard")
    expect(page.locator(".flash-success")).to_contain_text("998 calls left this hour")
    expect(family.locator("[data-gauge=calls] [data-field=remaining]")).to_have_text("998")

    page.once("dialog", lambda dialog: dialog.accept())
    family.get_by_role("button", name="Disconnect").click()
    expect(page).to_have_url(f"{live.site}/dashboard")
    expect(page.locator(".flash-success")).to_contain_text("“Family alerts” is disconnected")
    expect(family.locator("[data-field=status]")).to_have_text("revoked")
    expect(family.get_by_role("button")).to_have_count(0)
    expect(quota_card(page, "Me").get_by_role("button", name="Disconnect")).to_be_visible()
    screenshot(page, "dashboard-after-revoke")
