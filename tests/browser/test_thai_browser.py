"""A Thai reader in Chromium (issue 20): the footer switcher turns the send page, the status
page and the dashboard into Thai, the scripts keep writing in it with Bangkok times and
Gregorian years (Intl would count Buddhist ones for ``th``), and nothing overflows its box on
a desktop or a phone. Screenshots are kept in /tmp/i18n-shots for people to look at."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.steps import (
    DESKTOP,
    OVERFLOW,
    PHONE,
    add_history,
    quota_card,
    screenshot,
    sign_up_and_connect,
)

pytestmark = pytest.mark.browser

REVIEW = Path("/tmp/i18n-shots")  # noqa: S108 - a fixed place people are told to look
# Long labels in Thai script (no spaces between words), to find layouts that only fit English.
OPS = "แจ้งเตือนเซิร์ฟเวอร์ระบบงานจริงประจำสำนักงานกรุงเทพ"
FAMILY = "กลุ่มครอบครัว"
MESSAGE = "สำรองข้อมูลเสร็จแล้ว ✅ 42 GB ใน 3 นาที"


def look(page, name: str) -> Path:
    """A full-page screenshot in test-artifacts/ and a copy in /tmp/i18n-shots/."""
    kept = screenshot(page, name)
    REVIEW.mkdir(exist_ok=True)
    shutil.copy(kept, REVIEW / f"{name}.png")
    return kept


def both_widths(page, name: str, heading: str) -> None:
    """No overflow and a screenshot at desktop width, then the same on a phone."""
    for size, suffix in ((DESKTOP, ""), (PHONE, "-phone")):
        page.set_viewport_size(size)
        page.reload()
        expect(page.locator("h1")).to_have_text(heading)
        assert page.evaluate(OVERFLOW) == [], f"{name}{suffix}"
        look(page, f"{name}-th{suffix}")
    page.set_viewport_size(DESKTOP)


def test_the_send_page_and_the_dashboard_in_thai(live, in_process_worker, page):
    sign_up_and_connect(page, live, [(OPS, "1-on-1"), (FAMILY, "Family")])
    add_history(live)

    page.goto(f"{live.site}/send")
    page.get_by_role("button", name="ไทย").click()
    expect(page).to_have_url(f"{live.site}/send")
    expect(page.locator("html")).to_have_attribute("lang", "th")
    expect(page.locator("h1")).to_have_text("ส่งการแจ้งเตือน")
    both_widths(page, "send", "ส่งการแจ้งเตือน")

    page.get_by_role("checkbox", name=re.compile(OPS)).check()
    page.fill("#message", MESSAGE)
    page.get_by_role("button", name="ส่ง", exact=True).click()
    expect(page.locator("h1")).to_have_text("สถานะการส่ง")
    row = page.locator("table.notifications tbody tr")
    expect(row.locator("[data-field=status]")).to_have_text("ส่งถึงแล้ว", timeout=30_000)
    expect(page.locator("body")).to_contain_text("เสร็จสิ้น: ส่งถึง 1 รายการ")
    look(page, "status-th")

    page.goto(f"{live.site}/dashboard")
    expect(page.locator("h1")).to_have_text("แดชบอร์ด")
    expect(page.locator("#chats-heading")).to_have_text("แชทของคุณ")
    expect(page.locator("#dashboard-zone")).to_have_text("เวลาแสดงเป็นเวลาไทย")
    countdown = quota_card(page, OPS).locator("[data-field=countdown]")
    expect(countdown).to_have_text(re.compile(r"^(รีเซ็ตในอีก (\d+:)?\d+:\d\d|รีเซ็ตแล้ว)$"))
    rows = page.locator("#recent-rows tr")
    expect(rows.first.locator("[data-field=status]")).to_have_text("ส่งถึงแล้ว")
    expect(rows.first).to_contain_text("สำรองข้อมูลเสร็จแล้ว ✅")

    # The page's script rewrites the figures' time: in Thai, with a Gregorian year.
    page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
    updated = page.locator("#dashboard-updated")
    expect(updated).to_have_text(re.compile(r"^ตัวเลข ณ \d{1,2} \S+ 20\d\d \d\d:\d\d "))
    year = page.evaluate("() => new Date().getUTCFullYear()")
    assert str(year + 543) not in updated.inner_text()  # not the Buddhist era
    body = page.locator("main").inner_text()
    for english in ("Your chats", "calls left", "Last checked", "Recent notifications"):
        assert english not in body, english
    both_widths(page, "dashboard", "แดชบอร์ด")
