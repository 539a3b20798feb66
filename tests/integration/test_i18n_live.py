"""Any script goes through unchanged (issue 8): a 1000-character Japanese message with emoji,
sent from the form and from the API, arrives byte-identical in the relay's inbox; 1001
characters are refused by both. The limit counts code points, as the relay does."""

from __future__ import annotations

import requests
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.models import Connection, User
from notify_site.worker import Worker
from tests.factories import create_api_key
from tests.htmlforms import form_with
from tests.integration.helpers import connect_chat, register, relay_reader

# Kana, kanji, Traditional Chinese, Thai, a flag (two astral code points), a skin-toned
# thumb, a ZWJ family and a plain astral emoji: every kind of code point LINE users send.
PIECE = "通知テスト：サーバー負荷が高い、傳送成功 ภาษาไทย 🎉🇯🇵👍🏽👨‍👩‍👧😀\n"


def message_of(length: int) -> str:
    text = (PIECE * (length // len(PIECE) + 1))[:length]
    assert len(text) == length  # code points
    return text


def inbox(live) -> list[str]:
    answer = relay_reader(live).get(f"{live.relay}/inbox.json", timeout=10)
    assert answer.status_code == 200
    return [item["message"] for item in answer.json()["messages"]]


def test_a_1000_character_japanese_message_arrives_unchanged_and_1001_is_refused(live):
    message = message_of(1000)
    assert len(message.encode("utf-16-le")) // 2 > 1000  # astral emoji: more UTF-16 units
    assert len(message.encode("utf-8")) > 2000  # and far more bytes than characters

    browser = requests.Session()
    register(browser, live.site)
    connect_chat(browser, live.site, "Me", "1-on-1")
    with live.app.app_context():
        connection_id = db.session.scalars(select(Connection.id)).one()
        owner = db.session.scalars(select(User)).one()
        _, key = create_api_key(owner, "i18n")

    # The form, as a browser posts it (the textarea's line breaks arrive as CRLF).
    page = browser.get(f"{live.site}/send")
    form = form_with(page.text, page.url, field="sticker_id")
    as_posted = message.replace("\n", "\r\n")
    sent = browser.post(
        form.action,
        data={**form.fields, "connections": str(connection_id), "message": as_posted},
        allow_redirects=False,
    )
    assert sent.status_code == 302, sent.text

    too_long = browser.post(
        form.action,
        data={**form.fields, "connections": str(connection_id), "message": message_of(1001)},
        allow_redirects=False,
    )
    assert too_long.status_code == 400
    assert "At most 1000 characters (this one has 1001)." in too_long.text

    # The API.
    headers = {"Authorization": f"Bearer {key}"}
    url = f"{live.site}/api/v1/notifications"
    accepted = requests.post(
        url, json={"connection": "Me", "message": message}, headers=headers, timeout=10
    )
    assert accepted.status_code == 202, accepted.text
    refused = requests.post(
        url, json={"connection": "Me", "message": message_of(1001)}, headers=headers, timeout=10
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "validation_failed"
    assert "1001" in refused.json()["error"]["fields"]["message"]

    Worker(live.app).run_until_idle()
    delivered = inbox(live)
    assert delivered == [message, message]  # the form's and the API's, newest first
    assert all(item.encode("utf-8") == message.encode("utf-8") for item in delivered)

    # The inbox page shows it as sent, too.
    html = relay_reader(live).get(f"{live.relay}/inbox", timeout=10).text
    assert "👨‍👩‍👧" in html
    assert "傳送成功 ภาษาไทย" in html
