"""Steps of the channel-mode path that more than one test module takes (no test module
imports another: tests/unit/test_suite_rules.py)."""

from __future__ import annotations

import re

import requests

from tests.fakes.line_api import text_message
from tests.fakes.line_live import ALICE, TIMEOUT, post_webhook, wait_for_pairing
from tests.htmlforms import form_with
from tests.integration.helpers import open_consent, start_connect, without_form_post


def connect_line_chat(live, browser: requests.Session, label: str) -> None:
    authorize_url = without_form_post(start_connect(browser, live.site, label))
    page = open_consent(browser, authorize_url)
    assert page.status_code == 200
    assert "https://line.me/R/ti/p/%40fakebot" in page.text
    assert "<svg" in page.text  # the add-friend QR
    code = re.search(r'class="relay-line-code"[^>]*><code>([A-Z0-9-]+)</code>', page.text)[1]
    form = form_with(page.text, page.url, button="agree")
    # Agreeing before the code reached the bot connects nothing and keeps the same code.
    early = browser.post(
        form.action, data={**form.fields, "agree": "Agree and connect"}, allow_redirects=False
    )
    assert early.status_code == 200
    assert code in early.text
    assert "has not reached the bot yet" in early.text

    message = text_message(code, user=ALICE)
    post_webhook(live, message)
    state = wait_for_pairing(live, form.fields["pairing"])
    assert state == {
        "status": "matched",
        "chat": {"name": "Alice Tanaka", "type": "USER", "reachable": True},
    }
    (reply,) = live.fake.state.calls_to("/v2/bot/message/reply")
    assert reply.json["replyToken"] == message["replyToken"]

    answer = browser.post(
        form.action, data={**form.fields, "agree": "Agree and connect"}, allow_redirects=False
    )
    assert answer.status_code == 302, answer.text
    done = browser.get(answer.headers["Location"], allow_redirects=False, timeout=TIMEOUT)
    assert done.status_code == 302, done.text
