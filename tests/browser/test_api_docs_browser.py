"""/api/v1/docs in Chromium (issue 20): Swagger UI draws the site's OpenAPI document from the
site's own files — not one request leaves the site, and the strict CSP reports nothing."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.steps import PHONE, screenshot

pytestmark = pytest.mark.browser


def test_the_api_docs_are_drawn_from_the_site_alone(live, page):
    requested: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(f"{live.site}/api/v1/docs")
    operation = page.locator(".opblock-summary-path", has_text="/api/v1/notifications").first
    expect(operation).to_be_visible(timeout=20_000)
    expect(page.get_by_text("notify_site API").first).to_be_visible()
    page.locator(".opblock-tag", has_text="notifications").first.scroll_into_view_if_needed()
    screenshot(page, "api-docs")

    origins = {urlsplit(url).netloc for url in requested if not url.startswith("data:")}
    assert origins == {urlsplit(live.site).netloc}, requested
    assert not problems, problems  # a CSP violation is a console error

    page.set_viewport_size(PHONE)
    screenshot(page, "phone-api-docs")
