"""A Japanese and a Taiwanese reader in Chromium (issue 8): the footer switcher turns the
whole dashboard into their language, the scripts keep writing in it, times are in their zone,
and nothing overflows its box, on a desktop or a phone. Screenshots are kept for people."""

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
    send_from_the_form,
    sign_up_and_connect,
)

pytestmark = pytest.mark.browser

REVIEW = Path("/tmp/i18n-shots")  # noqa: S108 - a fixed place people are told to look
# Long labels in the readers' scripts, to find layouts that only fit English.
OPS = "本番サーバー監視アラート（東京リージョン）"
FAMILY = "家族群組通知"


def look(page, name: str, tmp_path: Path) -> Path:
    """A full-page screenshot, under the test's tmp path and test-artifacts/, and a copy
    in /tmp/i18n-shots/ for review."""
    shot = page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    assert shot  # the PNG bytes
    kept = screenshot(page, name)
    REVIEW.mkdir(exist_ok=True)
    shutil.copy(kept, REVIEW / f"{name}.png")
    return kept


def test_the_dashboard_in_japanese_and_traditional_chinese(live, in_process_worker, page, tmp_path):
    sign_up_and_connect(page, live, [(OPS, "1-on-1"), (FAMILY, "Family")])
    send_from_the_form(page, live, OPS, "バックアップ完了 ✅ 42 GB／3 分 🎉 備份完成")
    add_history(live)

    expectations = {
        "ja": {
            "button": "日本語",
            "lang": "ja",
            "heading": "ダッシュボード",
            "chats": "あなたのトーク",
            "delivered": "配信済み",
            "countdown": re.compile(r"^(あと (\d+:)?\d+:\d\d でリセット|リセット済み)$"),
            "zone": "時刻は日本時間です。",
        },
        "zh_Hant_TW": {
            "button": "繁體中文",
            "lang": "zh-Hant-TW",
            "heading": "儀表板",
            "chats": "您的聊天室",
            "delivered": "已送達",
            "countdown": re.compile(r"^((\d+:)?\d+:\d\d 後重設|已重設)$"),
            "zone": "時間為台北時間。",
        },
    }
    page.goto(f"{live.site}/dashboard")
    for locale, want in expectations.items():
        page.set_viewport_size(DESKTOP)
        page.get_by_role("button", name=want["button"]).click()
        expect(page).to_have_url(f"{live.site}/dashboard")
        expect(page.locator("html")).to_have_attribute("lang", want["lang"])
        expect(page.locator("h1")).to_have_text(want["heading"])
        expect(page.locator("#chats-heading")).to_have_text(want["chats"])
        expect(page.locator("#dashboard-zone")).to_have_text(want["zone"])
        ops = quota_card(page, OPS)
        expect(ops.locator("[data-field=countdown]")).to_have_text(want["countdown"])
        rows = page.locator("#recent-rows tr")
        expect(rows.first.locator("[data-field=status]")).to_have_text(want["delivered"])
        expect(rows.first).to_contain_text("バックアップ完了 ✅")
        # The page's own script writes in the same language when it refreshes.
        page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
        expect(page.locator("#dashboard-updated")).not_to_contain_text("Figures as of")
        body = page.locator("main").inner_text()
        for english in ("Your chats", "calls left", "Last checked", "Recent notifications"):
            assert english not in body, (locale, english)

        assert page.evaluate(OVERFLOW) == [], locale
        look(page, f"dashboard-{locale}", tmp_path)

        page.set_viewport_size(PHONE)
        page.reload()
        expect(page.locator("h1")).to_have_text(want["heading"])
        assert page.evaluate(OVERFLOW) == [], f"{locale} on a phone"
        look(page, f"dashboard-{locale}-phone", tmp_path)
        page.screenshot(path=str(REVIEW / f"dashboard-{locale}-phone-top.png"))
