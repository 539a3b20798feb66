"""My page in channel mode (a LINE channel on the fake Messaging API): a person pairs a LINE
chat with a one-time code, then generates a personal token for it; the chat is theirs only."""

from __future__ import annotations

import re

import pytest

from notify_site.relay.line.channel import current_settings
from notify_site.relay.line.events import process_events
from tests.conftest import make_test_config
from tests.factories import add_person
from tests.fakes.line_api import channel_config, event, sign, text_message, webhook_body

LINE_USER = "U" + "b" * 32


@pytest.fixture
def app_config(tmp_path, fake_line):
    return make_test_config(tmp_path, **channel_config(fake_line, "https://relay.example/relay"))


def webhook(app, client, *events) -> None:
    body = webhook_body(*events)
    headers = {"Content-Type": "application/json", "X-Line-Signature": sign(body)}
    assert client.post("/relay/line/webhook", data=body, headers=headers).status_code == 200
    with app.app_context():
        process_events(current_settings())


def hidden(html: str, name: str) -> str:
    return re.search(rf'name="{name}" type="hidden" value="([^"]*)"', html).group(1)


def test_pair_a_line_chat_on_my_page_and_generate_a_token_for_it(app, client, person, fake_line):
    fake_line.state.profiles[LINE_USER] = "Keiko on LINE"
    webhook(app, client, event("follow", user=LINE_USER))
    first = client.get("/relay/my/").get_data(as_text=True)
    assert "No LINE chat is paired to you yet" in first
    assert 'name="chat"' not in first

    page = client.get("/relay/my/pair").get_data(as_text=True)
    code = re.search(r'class="relay-line-code"[^>]*><code>([A-Z0-9-]+)</code>', page).group(1)
    pairing, shown = hidden(page, "pairing"), hidden(page, "pairing_code")
    # Pressed before the code reached the bot: the same code again, and a notice.
    early = client.post("/relay/my/pair", data={"pairing": pairing, "pairing_code": shown})
    assert code in early.get_data(as_text=True)
    assert "has not reached the bot yet" in early.get_data(as_text=True)

    webhook(app, client, text_message(code, user=LINE_USER))
    (reply,) = fake_line.state.calls_to("/v2/bot/message/reply")
    assert "Add this chat" in reply.json["messages"][0]["text"]
    done = client.post("/relay/my/pair", data={"pairing": pairing, "pairing_code": shown})
    assert (done.status_code, done.headers["Location"]) == (302, "/relay/my/")

    mine = client.get("/relay/my/").get_data(as_text=True)
    assert "1-on-1 chat with Keiko on LINE is paired" in mine
    chat = re.search(r'name="chat" value="(\d+)"', mine).group(1)
    answer = client.post("/relay/my/tokens", data={"name": "home", "chat": chat})
    token = re.search(
        r'id="relay-new-token" class="relay-secret">([A-Za-z0-9]{43})<',
        answer.get_data(as_text=True),
    ).group(1)
    status = app.test_client().get(
        "/relay/api/status", headers={"Authorization": f"Bearer {token}"}
    )
    assert status.get_json()["target"] == "Keiko on LINE"

    # Hana has not paired it: not offered to her, not in her inbox, not hers to choose.
    other = app.test_client()
    add_person(app, other, "hana")
    hers = other.get("/relay/my/").get_data(as_text=True)
    assert "Keiko on LINE" not in hers
    assert other.post("/relay/my/tokens", data={"name": "x", "chat": chat}).status_code == 400
    assert other.get(f"/relay/inbox?chat={chat}").status_code == 404
    # The pairing is spent: it cannot pair the chat to anyone again.
    again = other.post("/relay/my/pair", data={"pairing": pairing, "pairing_code": shown})
    assert "Keiko on LINE" not in other.get("/relay/my/").get_data(as_text=True)
    assert again.status_code == 200


def test_the_pair_page_is_channel_mode_only_and_for_people_signed_in(app):
    visitor = app.test_client()
    assert visitor.get("/relay/my/pair").status_code == 302
