"""A person in Chromium registers, connects two sandbox chats and revokes one.

The site runs at 127.0.0.1 and the relay at localhost: two sites, so the relay's form_post
answer is a cross-site POST and Chromium really leaves the SameSite=Lax cookie off it. This is
the proof that the callback's bounce keeps the flow working with the cookie settings in use.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.steps import connect, register, screenshot, sign_in_at_the_relay_if_asked

pytestmark = pytest.mark.browser


def test_register_connect_two_chats_and_revoke_one(live, page):
    register(page, live)
    cookie = next(c for c in page.context.cookies() if c["name"] == "session")
    assert cookie["sameSite"] == "Lax"
    assert cookie["httpOnly"] is True

    connect(page, live, "Me", "1-on-1")
    expect(page.locator(".flash-success")).to_contain_text("Connected “Me” to Sandbox user")
    connect(page, live, "Family alerts", "Family")
    expect(page.locator(".flash-success")).to_contain_text("Connected “Family alerts” to Family")

    rows = page.locator("table.connections tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="Family alerts")).to_contain_text("GROUP")
    me = rows.filter(has=page.locator("td.label", has_text=re.compile(r"^Me$")))
    expect(me).to_contain_text("USER")
    expect(me).to_contain_text("999 / 1,000")
    assert live.log.count("POST", "/relay/oauth/token") == 2
    screenshot(page, "connections-two-chats")

    page.once("dialog", lambda dialog: dialog.accept())
    rows.filter(has_text="Family alerts").get_by_role("button", name="Disconnect").click()
    expect(page.locator(".flash-success")).to_contain_text("“Family alerts” is disconnected")
    expect(rows.filter(has_text="Family alerts")).to_contain_text("revoked")
    screenshot(page, "connections-after-revoke")


def label_cell(page, label: str):
    return page.locator("table.connections td.label", has_text=re.compile(f"^{re.escape(label)}$"))


def row_of(page, label: str):
    cell = page.locator("td.label", has_text=re.compile(f"^{re.escape(label)}$"))
    return page.locator("table.connections tbody tr").filter(has=cell)


def test_the_same_chat_twice_a_new_label_and_a_revoked_one_off_the_list(live, page):
    register(page, live)
    connect(page, live, "Me", "1-on-1")
    connect(page, live, "Me again", "1-on-1")
    expect(page.locator(".flash-info")).to_contain_text(
        "This chat is also connected as “Me”: a message sent to both arrives twice."
    )

    # Rename, in place (a <details>): the new label shows at once.
    row = row_of(page, "Me again")
    row.get_by_text("Rename", exact=True).click()
    row.get_by_label("New label").fill("Night shift")
    row.get_by_role("button", name="Save").click()
    expect(page.locator(".flash-success")).to_contain_text("“Me again” is now “Night shift”.")
    expect(label_cell(page, "Night shift")).to_be_visible()

    # Disconnected, then off the list; its history stays.
    page.once("dialog", lambda dialog: dialog.accept())
    row_of(page, "Night shift").get_by_role("button", name="Disconnect").click()
    page.once("dialog", lambda dialog: dialog.accept())
    row_of(page, "Night shift").get_by_role("button", name="Remove from the list").click()
    expect(page.locator(".flash-success")).to_contain_text("“Night shift” is off the list")
    expect(page.locator("table.connections tbody tr")).to_have_count(1)
    screenshot(page, "connections-after-remove")


def test_cancel_on_the_relay_page_says_not_connected(live, page):
    register(page, live)
    page.fill("#label", "Maybe")
    page.get_by_role("button", name="Connect a chat").click()
    sign_in_at_the_relay_if_asked(page)
    page.get_by_role("button", name="Cancel").click()
    expect(page).to_have_url(f"{live.site}/connections")
    expect(page.locator(".flash-info")).to_contain_text("Not connected")
    expect(page.get_by_text("No chats connected yet")).to_be_visible()
