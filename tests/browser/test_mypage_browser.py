"""My page in Chromium, the whole path of issue 14: a new person registers, opens My page from
the site's navigation, generates a token for "Family", copies the curl line from LINE Notify's
documentation (only the host is this relay's), sends with it every way LINE's docs show, sees
the messages in their own inbox — and another person and a visitor cannot — then disconnects
the token, which answers 401 from then on.

Screenshots of My page: desktop and 390 px wide, in English and Japanese
(test-artifacts/mypage-*.png).
"""

from __future__ import annotations

import re
import shlex
import subprocess

import pytest
import requests
from playwright.sync_api import expect

from tests import images
from tests.browser.steps import DESKTOP, PHONE, register, screenshot

pytestmark = pytest.mark.browser

RATE_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-ImageLimit",
    "X-RateLimit-ImageRemaining",
    "X-RateLimit-Reset",
)
TIMEOUT = 30


def test_generate_a_token_send_like_lines_docs_read_it_privately_and_disconnect(
    live, page, chromium, tmp_path
):
    register(page, live, "mika")
    page.get_by_role("link", name="My page").click()
    expect(page).to_have_url(f"{live.site}/relay/my/")
    expect(page.get_by_role("heading", name="Generate token")).to_be_visible()
    page.fill("#name", "Backup script")
    page.get_by_label("Family").check()
    page.get_by_role("button", name="Generate token").click()

    token = page.locator("#relay-new-token").inner_text()
    assert re.fullmatch(r"[A-Za-z0-9]{43}", token)
    curl = page.locator("#relay-curl").inner_text()
    screenshot(page, "mypage-new-token")
    page.goto(f"{live.site}/relay/my/")
    assert token not in page.content()
    expect(page.locator("table.relay-services")).to_contain_text("Backup script")

    # LINE's curl line, as the page gives it, run by the real curl.
    assert curl.startswith(f'curl -X POST -H "Authorization: Bearer {token}" -F "message=')
    assert curl.endswith(f" {live.site}/relay/api/notify")
    ran = subprocess.run(
        [*shlex.split(curl), "-sS", "-D", "-"], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert ran.returncode == 0, ran.stderr
    assert "HTTP/1.1 200" in ran.stdout
    assert ran.stdout.rstrip().endswith('{"status":200,"message":"ok"}')
    for header in RATE_HEADERS:
        assert header.lower() in ran.stdout.lower()

    # The other ways LINE's documentation shows, with requests: urlencoded, multipart with an
    # imageFile, and the query string.
    api = f"{live.site}/relay/api/notify"
    bearer = {"Authorization": f"Bearer {token}"}
    answers = [
        requests.post(api, headers=bearer, data={"message": "urlencoded"}, timeout=TIMEOUT),
        requests.post(
            api,
            headers=bearer,
            data={"message": "multipart"},
            files={"imageFile": ("graph.png", images.png(), "image/png")},
            timeout=TIMEOUT,
        ),
        requests.post(api, headers=bearer, params={"message": "query string"}, timeout=TIMEOUT),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"status": 200, "message": "ok"}
        assert all(answer.headers[header].isdigit() for header in RATE_HEADERS)
    assert answers[1].headers["X-RateLimit-ImageRemaining"] == "49"

    page.get_by_role("link", name="Sandbox inbox").first.click()
    messages = page.locator(".relay-message")
    expect(messages).to_have_count(4)
    expect(messages.first).to_contain_text("query string")
    expect(messages.nth(1).locator("img")).to_be_visible()
    expect(messages.first).to_contain_text("Backup script")
    expect(messages.first).to_contain_text("Family")
    screenshot(page, "mypage-inbox")

    # Another person sees none of it; a visitor is sent to sign in.
    other = chromium.new_context(viewport=DESKTOP)
    try:
        hana = other.new_page()
        register(hana, live, "hana")
        hana.goto(f"{live.site}/relay/inbox")
        expect(hana.get_by_text("No messages yet")).to_be_visible()
        assert "query string" not in hana.content()
        assert "Backup script" not in hana.goto(f"{live.site}/relay/my/").text()
    finally:
        other.close()
    visitor = requests.get(f"{live.site}/relay/inbox.json", timeout=TIMEOUT)
    assert visitor.status_code == 401
    assert "query string" not in visitor.text

    # Disconnect: a page asks, then the token is dead.
    page.goto(f"{live.site}/relay/my/")
    rows = page.locator("table.relay-services tbody tr")
    rows.filter(has_text="Backup script").first.get_by_role("link", name="Disconnect").click()
    expect(
        page.get_by_role("heading", name=re.compile("Disconnect “Backup script”"))
    ).to_be_visible()
    page.get_by_role("button", name="Disconnect").click()
    expect(page.locator(".flash-success")).to_contain_text("“Backup script” is disconnected")
    dead = requests.post(api, headers=bearer, data={"message": "after"}, timeout=TIMEOUT)
    assert dead.status_code == 401
    assert dead.json() == {"status": 401, "message": "Invalid access token"}


@pytest.mark.parametrize("language", ["en", "ja"])
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_my_page_screenshots(live, chromium, language, viewport):
    context = chromium.new_context(viewport=viewport, locale="ja-JP" if language == "ja" else "en")
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        context.add_cookies([{"name": "lang", "value": language, "url": live.site}])
        register(page, live, "mika")
        page.goto(f"{live.site}/relay/my/")
        page.fill("#name", "監視スクリプト" if language == "ja" else "Disk monitor")
        page.locator("input[name=chat]").nth(1).check()
        page.locator("#generate").click()
        expect(page.locator("#relay-new-token")).to_be_visible()
        # The form's answer is a new page: measure it once its stylesheets have loaded (a
        # layout read earlier lays the long token out unstyled, 1,047 px wide on a loaded CI
        # machine).
        page.wait_for_load_state("load")
        html_lang = page.locator("html").get_attribute("lang")
        assert html_lang == language
        # Nothing wider than the screen: the page scrolls only down.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], width
        name = "desktop" if viewport is DESKTOP else "phone"
        screenshot(page, f"mypage-{name}-{language}")
    finally:
        context.close()
