"""Channel mode in Chromium: a person connects a real LINE chat through the pairing page.

The relay is aimed at the fake Messaging API; the test plays LINE, posting signed ``follow``
and ``message`` webhooks. The page's own polling (line-pairing.js) must notice the code,
name the chat and enable **Agree and connect**; the site then lists the chat. Cancel goes back
to the site with "Not connected". Screenshots of the waiting and matched states are saved.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.models import Connection, ConnectionStatus
from tests.browser.steps import register, screenshot, sign_in_at_the_relay_if_asked
from tests.fakes.line_api import event, text_message
from tests.fakes.line_live import (
    ALICE,
    ALICE_NAME,
    fake_line_with_alice,
    live_channel_config,
    post_webhook,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def fake():
    yield from fake_line_with_alice()


@pytest.fixture
def live_overrides(fake):
    return live_channel_config(fake)


def open_consent_page(page, live, label: str) -> None:
    page.fill("#label", label)
    page.get_by_role("button", name="Connect a chat").click()
    sign_in_at_the_relay_if_asked(page)
    expect(page).to_have_url(re.compile(re.escape(live.relay) + r"/oauth/authorize"))
    expect(page.locator(".relay-line-code code")).to_be_visible()


def test_a_line_chat_is_paired_in_the_browser_and_connected(live, fake, page):
    register(page, live)
    open_consent_page(page, live, "Phone")

    # Waiting: the code, the add-friend link and QR; the button waits for the code.
    code = page.locator(".relay-line-code code").inner_text().strip()
    assert re.fullmatch(r"[A-Z0-9-]+", code)
    link = page.get_by_role("link", name="Open the add-friend link")
    expect(link).to_have_attribute("href", "https://line.me/R/ti/p/%40fakebot")
    expect(page.locator(".relay-line-qr svg")).to_be_visible()
    expect(page.locator("[data-pairing-status]")).to_contain_text("Waiting for the code")
    agree = page.get_by_role("button", name="Agree and connect")
    expect(agree).to_be_disabled()
    screenshot(page, "line-pairing-waiting")

    # LINE: Alice adds the bot, then sends the code from her 1-on-1 chat.
    post_webhook(live, event("follow", user=ALICE))
    post_webhook(live, text_message(f"  {code.lower()} ", user=ALICE))

    # The page's polling notices and names the chat.
    status = page.locator("[data-pairing-status]")
    expect(status).to_contain_text("Code received from:")
    expect(status.locator("[data-pairing-chat]")).to_have_text(ALICE_NAME)
    expect(status).to_contain_text("1-on-1")
    expect(agree).to_be_enabled()
    screenshot(page, "line-pairing-matched")
    (reply,) = fake.state.calls_to("/v2/bot/message/reply")
    assert "Agree and connect" in reply.json["messages"][0]["text"]

    agree.click()
    expect(page).to_have_url(f"{live.site}/connections")
    expect(page.locator(".flash-success")).to_contain_text(f"Connected “Phone” to {ALICE_NAME}")
    row = page.locator("table.connections tbody tr").filter(has_text="Phone")
    expect(row).to_contain_text(ALICE_NAME)
    expect(row).to_contain_text("USER")
    screenshot(page, "line-pairing-connected")
    with live.app.app_context():
        connection = db.session.scalars(select(Connection)).one()
        assert (connection.target_name, connection.target_type) == (ALICE_NAME, "USER")
        assert connection.status == ConnectionStatus.ACTIVE


def test_cancel_on_the_pairing_page_returns_to_the_site(live, page):
    register(page, live)
    open_consent_page(page, live, "Maybe")
    page.get_by_role("button", name="Cancel").click()
    expect(page).to_have_url(f"{live.site}/connections")
    expect(page.locator(".flash-info")).to_contain_text("Not connected")
    expect(page.get_by_text("No chats connected yet")).to_be_visible()
