"""A person in Chromium sends a notification from the form and watches it being delivered."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import Notification, NotificationStatus
from tests.browser.steps import DESKTOP, PHONE, screenshot, sign_up_and_connect

pytestmark = pytest.mark.browser


def test_a_message_sent_from_the_form_is_delivered_to_the_sandbox_inbox(
    live, in_process_worker, page
):
    sign_up_and_connect(page, live, [("Me", "1-on-1")])
    page.goto(f"{live.site}/send")
    # The only chat there is comes ticked.
    expect(page.get_by_role("checkbox", name=re.compile("Me"))).to_be_checked()
    expect(page.locator("#field-connections")).to_contain_text("USER")

    message = "Backup finished ✅ — 42 GB in 3 min"
    page.fill("#message", message)
    expect(page.locator("#message-count")).to_have_text(f"{len(message)} / 1000")
    page.get_by_label("Send silently").check()
    screenshot(page, "send-form")
    page.get_by_role("button", name="Send", exact=True).click()

    expect(page).to_have_url(re.compile(re.escape(live.site) + r"/send/status\?ids=\d+$"))
    expect(page.locator(".flash-success")).to_contain_text("Queued 1 notification.")
    row = page.locator("table.notifications tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Me")
    expect(row.locator("[data-field=status]")).to_have_text("delivered", timeout=30_000)
    expect(page.locator("#status-summary")).to_have_text("Finished: 1 delivered.")
    expect(row.locator("[data-field=attempts]")).to_have_text("1")
    screenshot(page, "send-status-delivered")

    page.goto(f"{live.relay}/inbox")
    delivered = page.locator(".relay-message").first
    expect(delivered).to_contain_text(message)
    expect(delivered).to_contain_text("1-on-1 chat")
    expect(delivered).to_contain_text("silent")


def test_a_too_long_message_is_refused_beside_the_message_field(live, page):
    sign_up_and_connect(page, live, [("Me", "1-on-1")])
    page.goto(f"{live.site}/send")
    counter = page.locator("#message-count")
    page.fill("#message", "x" * 999 + "🎉")  # 1000 code points, 1001 UTF-16 units
    expect(counter).to_have_text("1000 / 1000")
    expect(counter).not_to_have_class(re.compile(r"\bover\b"))

    page.fill("#message", "x" * 1001)
    expect(counter).to_have_text("1001 / 1000")
    expect(counter).to_have_class(re.compile(r"\bover\b"))
    page.get_by_role("button", name="Send", exact=True).click()

    error = page.locator("#field-message .error")
    expect(error).to_have_text("At most 1000 characters (this one has 1001).")
    expect(page.locator("#message")).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".flash-error")).to_contain_text("Nothing was sent.")
    # What was typed is still there, and the counter counts it again.
    expect(page.locator("#message")).to_have_value("x" * 1001)
    expect(counter).to_have_text("1001 / 1000")
    with live.app.app_context():
        assert db.session.scalars(select(Notification)).all() == []
    screenshot(page, "send-too-long")
    page.set_viewport_size(PHONE)
    screenshot(page, "send-too-long-phone")


def test_the_status_page_follows_each_row_until_all_are_finished(live, page):
    # No worker: the test plays it.
    sign_up_and_connect(page, live, [("Me", "1-on-1"), ("Family alerts", "Family")])
    page.goto(f"{live.site}/send")
    page.get_by_role("checkbox", name=re.compile("Me")).check()
    page.get_by_role("checkbox", name=re.compile("Family alerts")).check()
    page.fill("#message", "Dinner is at 7 🍜")
    page.set_viewport_size(PHONE)
    page.locator("#field-image-group summary").click()
    page.locator("#field-sticker summary").click()
    screenshot(page, "send-form-phone")
    page.set_viewport_size(DESKTOP)
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page).to_have_url(re.compile(r"/send/status\?ids=\d+,\d+$"))

    rows = page.locator("table.notifications tbody tr")
    expect(rows).to_have_count(2)
    # In the order of the form: the chats are listed by label.
    expect(rows.locator(".target-label")).to_have_text(["Family alerts", "Me"])
    expect(rows.locator("[data-field=status]")).to_have_text(["queued", "queued"])
    expect(page.locator("#status-summary")).to_contain_text("this page updates itself")

    with live.app.app_context():
        rows_by_label = {
            row.connection.label: row for row in db.session.scalars(select(Notification))
        }
        me, family = rows_by_label["Me"], rows_by_label["Family alerts"]
        me.status, me.attempts, me.finished_at = NotificationStatus.DELIVERED, 1, utcnow()
        family.status, family.attempts = NotificationStatus.SENDING, 1
        db.session.commit()
        family_id = family.id
    expect(rows.locator("[data-field=status]")).to_have_text(["sending", "delivered"])
    expect(page.locator("#status-summary")).to_contain_text("1 of 2 finished")

    with live.app.app_context():
        family = db.session.get(Notification, family_id)
        family.status, family.attempts = NotificationStatus.FAILED, 2
        family.last_error, family.finished_at = "400: Invalid image URL", utcnow()
        db.session.commit()
    expect(rows.locator("[data-field=status]")).to_have_text(["failed", "delivered"])
    expect(rows.nth(0).locator("[data-field=last_error]")).to_have_text("400: Invalid image URL")
    expect(rows.nth(0).locator("[data-field=attempts]")).to_have_text("2")
    expect(rows.nth(1).locator("[data-field=last_error]")).to_have_text("—")
    expect(rows.nth(1).locator("[data-field=finished_at]")).to_contain_text("UTC")
    expect(page.locator("#status-summary")).to_have_text("Finished: 1 delivered, 1 failed.")
    expect(page.locator("#send-status")).to_have_attribute("data-done", "true")
    screenshot(page, "send-status-finished")
    page.set_viewport_size(PHONE)
    screenshot(page, "send-status-finished-phone")

    page.get_by_role("link", name="Send another").click()
    expect(page).to_have_url(f"{live.site}/send")
