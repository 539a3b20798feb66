"""Sign in with LINE in Chromium, the whole path of issue 19 (no code typed anywhere):

a new person signs in with LINE on the site (fake LINE Login, over real HTTP) and adds the bot
as a friend on LINE's consent page; connecting a chat sends them to the relay (another host),
where they sign in with LINE again and find "1-on-1 chat with you"; agreeing connects it; a
notification sent from the site is pushed by the relay to that LINE user id on the fake
Messaging API.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.steps import PHONE, register, screenshot, send_from_the_form
from tests.fakes.line_api import channel_config, event
from tests.fakes.line_live import post_webhook
from tests.fakes.line_login import ALICE, login_config, serve_fakes
from tests.servers import wait_until

pytestmark = pytest.mark.browser

FAMILY = "C" + "f" * 32


@pytest.fixture
def fakes():
    yield from serve_fakes()


@pytest.fixture
def live_overrides(fakes):
    config = channel_config(fakes, "https://relay.example/relay")
    # The callback URLs are registered once the site's port is known (below).
    config.update(login_config(fakes, "unused", LINE_LOGIN_BOT_PROMPT="normal"))
    return config


def allow_on_line(page, fakes, *, add_friend: bool = False) -> None:
    """LINE's consent page (the fake's): Alice, optionally adding the bot, then Allow."""
    expect(page).to_have_url(re.compile(re.escape(fakes.url) + r"/oauth2/v2\.1/authorize"))
    page.get_by_label("Alice").check()
    if add_friend:
        page.get_by_label("Add the bot as a friend").check()
    page.get_by_role("button", name="Allow").click()


def test_sign_in_with_line_add_the_bot_and_connect_your_own_chat(
    live, fakes, page, in_process_worker
):
    for host in (live.site, live.relay.removesuffix("/relay")):
        fakes.login.redirect_uris.add(f"{host}/login/line/callback")

    page.goto(f"{live.site}/login")
    page.get_by_role("button", name="Sign in with LINE").click()
    allow_on_line(page, fakes, add_friend=True)
    expect(page).to_have_url(f"{live.site}/login/line/new")
    expect(page.get_by_text("You signed in to LINE as Alice")).to_be_visible()
    screenshot(page, "line-login-new-account")
    page.get_by_role("button", name="Create an account with LINE").click()
    expect(page).to_have_url(f"{live.site}/connections")
    assert ALICE in fakes.login.friends

    # Connecting a chat: the relay (another host) asks who this is; LINE says.
    page.fill("#label", "Phone")
    page.get_by_role("button", name="Connect a chat").click()
    page.wait_for_url(re.compile(r"/login\?next="))
    page.get_by_role("button", name="Sign in with LINE").click()
    allow_on_line(page, fakes)
    expect(page).to_have_url(re.compile(re.escape(live.relay) + r"/oauth/authorize"))
    own = page.get_by_label("1-on-1 chat with you")
    expect(own).to_be_checked()
    screenshot(page, "line-login-consent")
    page.get_by_role("button", name="Agree and connect").click()
    expect(page).to_have_url(f"{live.site}/connections")
    expect(page.locator(".flash-success")).to_contain_text("Connected “Phone”")

    send_from_the_form(page, live, "Phone", "Hello from the site")
    wait_until(
        lambda: any(push["body"]["to"] == ALICE for push in fakes.messaging.delivered),
        30,
        "the relay's push to Alice",
    )
    (push,) = [p for p in fakes.messaging.delivered if p["body"]["to"] == ALICE]
    assert "Hello from the site" in push["body"]["messages"][0]["text"]
    assert len(fakes.login.token_requests) == 2

    # LINE: the bot is invited into Alice's family group; the consent page now offers it.
    fakes.messaging.groups[FAMILY] = "Family"
    fakes.messaging.members[FAMILY] = {ALICE}
    member = {"members": [{"type": "user", "userId": ALICE}]}
    post_webhook(
        live, event("join", group=FAMILY), event("memberJoined", group=FAMILY, joined=member)
    )
    page.goto(f"{live.site}/connections")
    page.fill("#label", "Family chat")
    page.get_by_role("button", name="Connect a chat").click()
    expect(page).to_have_url(re.compile(re.escape(live.relay) + r"/oauth/authorize"))
    page.get_by_label("Family").check()
    page.get_by_role("button", name="Agree and connect").click()
    expect(page.locator(".flash-success")).to_contain_text("Connected “Family chat”")
    send_from_the_form(page, live, "Family chat", "Dinner at seven")
    wait_until(
        lambda: any(push["body"]["to"] == FAMILY for push in fakes.messaging.delivered),
        30,
        "the relay's push to the family group",
    )


def test_a_password_account_links_line_in_settings_then_signs_in_with_it(live, fakes, page):
    fakes.login.redirect_uris.add(f"{live.site}/login/line/callback")
    register(page, live)
    page.goto(f"{live.site}/settings")
    page.get_by_role("button", name="Link LINE").click()
    allow_on_line(page, fakes)
    expect(page).to_have_url(f"{live.site}/settings")
    expect(page.locator(".flash-success")).to_contain_text("LINE is linked")
    page.set_viewport_size(PHONE)
    screenshot(page, "line-login-settings-linked-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{live.site}/login")
    page.get_by_role("button", name="Sign in with LINE").click()
    allow_on_line(page, fakes)
    expect(page).to_have_url(f"{live.site}/connections")
