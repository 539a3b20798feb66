"""A person in Chromium makes a webhook for their "Team alerts" group, writes a template with
the live preview, presses Send test and sees it delivered; the pages fit a phone, in English
and Japanese. Screenshots are kept for people (test-artifacts/webhooks-*.png)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.steps import DESKTOP, OVERFLOW, PHONE, screenshot, sign_up_and_connect

pytestmark = pytest.mark.browser


def test_make_a_webhook_preview_a_template_send_a_test_and_see_it_delivered(
    live, in_process_worker, page
):
    sign_up_and_connect(page, live, [("Team alerts", "Team alerts")])
    page.get_by_role("link", name="Webhooks").click()
    expect(page).to_have_url(f"{live.site}/webhooks")
    page.fill("#name", "Prometheus")
    page.select_option("#format", "alertmanager")
    page.get_by_role("checkbox", name=re.compile("Team alerts")).check()
    screenshot(page, "webhooks-index")
    page.get_by_role("button", name="Make the webhook").click()

    expect(page.locator(".flash-success")).to_contain_text("The webhook “Prometheus” is ready.")
    url = page.locator("#new-webhook-url")
    expect(url).to_have_text(re.compile(r"^http://127\.0\.0\.1:\d+/hooks/\d+/whk_[\w-]{40,}$"))
    preview = page.locator("#template-preview")
    # No template: the built-in message of the format's sample.
    expect(preview).to_have_text(re.compile(r"^🔥 \[FIRING:2\] HighErrorRate\nSeverity: warning"))

    # A template of one's own, previewed as it is typed.
    page.fill(
        "#template", "{{ status|upper }}: {% for a in alerts %}{{ a.labels.instance }} {% endfor %}"
    )
    expect(preview).to_have_text("FIRING: api-1.example.com:8080 api-2.example.com:8080")
    expect(page.locator("#preview-count")).to_have_text("53 of 1,000 characters")
    # A mistake is shown at once, in place of the message.
    page.fill("#template", "{{ status|upper }: oops")
    expect(preview).to_have_text(re.compile(r"^Line 1: unexpected '}'"))
    expect(preview).to_have_class(re.compile("failed"))
    page.fill("#template", "[{{ status|upper }}] {{ commonLabels.alertname }} ×{{ alerts|length }}")
    expect(preview).to_have_text("[FIRING] HighErrorRate ×2")
    screenshot(page, "webhooks-detail-preview")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash-success")).to_have_text("Saved.")
    expect(page.locator("#new-webhook-url")).to_have_count(0)  # shown once, never again

    page.get_by_role("button", name="Send test").click()
    expect(page.locator(".flash-success")).to_have_text("Test sent: 1 notification queued.")
    row = page.locator("table.webhook-history tbody tr").first
    expect(row).to_contain_text("[FIRING] HighErrorRate ×2")
    expect(row).to_contain_text("test")
    row.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"/send/status\?ids=\d+$"))
    expect(page.locator("[data-field=status]")).to_have_text("delivered", timeout=30_000)

    page.goto(f"{live.relay}/inbox")
    delivered = page.locator(".relay-message").first
    expect(delivered).to_contain_text("[FIRING] HighErrorRate ×2")
    expect(delivered).to_contain_text("Team alerts")


@pytest.mark.parametrize("language", ["en", "ja"])
@pytest.mark.parametrize(("device", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_the_webhook_pages_fit_a_phone_and_a_desktop(live, page, language, device, viewport):
    sign_up_and_connect(page, live, [("Team alerts", "Team alerts"), ("Me", "1-on-1")])
    if language == "ja":
        page.goto(f"{live.site}/settings")
        page.locator("footer").get_by_role("button", name="日本語").click()
    page.set_viewport_size(viewport)
    page.goto(f"{live.site}/webhooks")
    page.fill("#name", "本番監視 Grafana（東京）")
    page.select_option("#format", "grafana")
    page.locator("input[name=connections]").first.check()
    page.locator("button[type=submit].primary").click()
    expect(page.locator("#new-webhook-url")).to_be_visible()
    page.locator("form[action$='/test'] button").click()
    expect(page.locator("table.webhook-history tbody tr")).to_have_count(1)
    page.reload()
    assert page.evaluate(OVERFLOW) == []
    screenshot(page, f"webhooks-detail-{language}-{device}")
    page.goto(f"{live.site}/webhooks")
    assert page.evaluate(OVERFLOW) == []
    screenshot(page, f"webhooks-index-{language}-{device}")
