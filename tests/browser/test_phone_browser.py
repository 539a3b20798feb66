"""Every page on a phone (issue 20), 390 × 844, signed in over the data of
:func:`tests.factories.seed_every_page`: no page scrolls sideways, each page's main action is
in the first screen, the lists' actions are on screen, the navigation is one Menu button that
opens without JavaScript, and the dashboard's recent notifications are short. A full-page
screenshot of each page is kept under test-artifacts/ (phone-*.png) for people to look at."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.steps import PHONE, screenshot
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

#: The control a person came to each page for: it must be on the first screen.
MAIN_ACTION = {
    "connections.index": "main button.primary",
    "api_keys.index": "main button.primary",
    "send.index": "#message",
    "webhooks.index": "main button.primary",
    "schedules.index": "main a.button.primary",
    "settings.index": "main button.primary",
    "dashboard.index": "main h1",
}
#: The lists whose every row's buttons must be on screen (not scrolled off to the right).
ROW_ACTIONS = {
    "connections.index": "table.connections td.actions .button",
    "api_keys.index": "table.api-keys td.actions .button",
}
SIDEWAYS = """() => {
  const doc = document.documentElement;
  return doc.scrollWidth > doc.clientWidth ? `${doc.scrollWidth} > ${doc.clientWidth}` : null;
}"""


def _sign_in(page, live) -> None:
    page.goto(f"{live.site}/login")
    page.fill("#username", "root")
    page.fill("#password", PASSWORD)
    page.locator("main button.primary[type=submit]").click()
    expect(page).not_to_have_url(f"{live.site}/login")


def _box(page, selector: str) -> dict:
    box = page.locator(selector).first.bounding_box()
    assert box, f"{selector} is not shown"
    return box


def test_every_page_fits_a_phone(chromium, every_page_site):
    live, paths = every_page_site
    context = chromium.new_context(viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    try:
        # The visitor's pages first, then signed in as the seeded admin.
        signed_in = False
        for listed, path in sorted(paths, key=lambda item: not item[0].anonymous):
            if not listed.anonymous and not signed_in:
                _sign_in(page, live)
                signed_in = True
            page.goto(live.site + path)
            name = listed.endpoint
            if wide := page.evaluate(SIDEWAYS):
                problems.append(f"{name}: scrolls sideways ({wide})")
            if name in MAIN_ACTION:
                box = _box(page, MAIN_ACTION[name])
                bottom, right = box["y"] + box["height"], box["x"] + box["width"]
                if bottom > PHONE["height"] or right > PHONE["width"]:
                    problems.append(f"{name}: {MAIN_ACTION[name]} is not on the first screen {box}")
            if name in ROW_ACTIONS:
                buttons = page.locator(ROW_ACTIONS[name])
                assert buttons.count(), name
                for index in range(buttons.count()):
                    box = buttons.nth(index).bounding_box()
                    if box["x"] + box["width"] > PHONE["width"]:
                        problems.append(f"{name}: a row's button is off screen {box}")
            screenshot(page, f"phone-{name}")
    finally:
        context.close()
    assert not problems, "\n".join(problems)


def test_the_phone_menu_and_the_short_recent_list(chromium, every_page_site):
    live, _ = every_page_site
    # Without JavaScript: the menu is a <details>, which opens by itself.
    context = chromium.new_context(viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    try:
        _sign_in(page, live)
        page.goto(f"{live.site}/dashboard")
        topbar = _box(page, "header.topbar")
        assert topbar["height"] < 70, topbar  # one line: the name and the Menu button
        expect(page.locator("nav.nav-wide")).to_be_hidden()
        connections = page.get_by_role("link", name="Connections", exact=True)
        expect(connections).to_be_hidden()
        page.get_by_text("Menu", exact=True).click()
        expect(connections).to_be_visible()
        screenshot(page, "phone-menu-open")
        connections.click()
        expect(page).to_have_url(re.compile(r"/connections$"))

        # The recent notifications: a few short lines each, not a six-line card.
        page.goto(f"{live.site}/dashboard")
        rows = page.locator("#recent-rows tr")
        assert rows.count() >= 3
        for index in range(rows.count()):
            box = rows.nth(index).bounding_box()
            assert box["height"] <= 110, f"row {index}: {box}"
    finally:
        context.close()
