"""The consent page and My page in channel mode for a person whose account is linked to LINE
(issue 19 item 4; relay/line/linked.py): "1-on-1 chat with you" when they are a friend of the
bot, the groups the bot is in where they are a member, picked without a code — exactly the
person's chats, not another member's groups, not groups the bot left."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.models import User
from notify_site.relay.line.channel import current_settings
from notify_site.relay.line.events import process_events
from notify_site.relay.models import RelayAccessToken, RelayChat, RelayChatPerson
from tests.conftest import make_test_config
from tests.fakes.line_api import channel_config, event, sign, text_message, webhook_body

KEIKO_LINE = "U" + "c" * 32
OTHER_LINE = "U" + "d" * 32
SHARED = "C" + "1" * 32
OTHERS = "C" + "2" * 32
LEFT = "C" + "3" * 32
CHATTED = "R" + "4" * 32


@pytest.fixture
def app_config(tmp_path, fake_line):
    return make_test_config(tmp_path, **channel_config(fake_line, "https://relay.example/relay"))


def link_line(app, person, *, friend: bool | None) -> None:
    """What signing in with LINE leaves on the account (services/line_accounts.py)."""
    with app.app_context():
        user = db.session.get(User, person.id)
        user.line_user_id, user.line_friend = KEIKO_LINE, friend
        db.session.commit()


def webhook(app, client, *events) -> None:
    body = webhook_body(*events)
    headers = {"Content-Type": "application/json", "X-Line-Signature": sign(body)}
    assert client.post("/relay/line/webhook", data=body, headers=headers).status_code == 200
    with app.app_context():
        process_events(current_settings())


def members(user: str, *groups: str) -> list[dict]:
    return [
        event("memberJoined", group=group, joined={"members": [{"type": "user", "userId": user}]})
        for group in groups
    ]


def offered(client, params) -> dict[str, str]:
    """The consent page's chats: label → radio value."""
    page = client.get("/relay/oauth/authorize", query_string=params).get_data(as_text=True)
    found = re.findall(
        r'<input type="radio" name="chat" value="(\d+)"[^>]*>\s*<span[^>]*>[^<]*</span>\s*'
        r'<span class="relay-chat-name">([^<]*)</span>',
        page,
    )
    return {label: value for value, label in found}


def line_id_of(app, chat_id: str) -> str:
    with app.app_context():
        return db.session.get(RelayChat, int(chat_id)).line_id


def test_a_friend_is_offered_their_own_chat_and_their_groups_only(
    app, client, person, authorize_params, fake_line
):
    fake_line.state.groups.update({SHARED: "Family", OTHERS: "Not hers", LEFT: "Gone"})
    webhook(
        app,
        client,
        event("join", group=SHARED),
        event("join", group=OTHERS),
        event("join", group=LEFT),
        *members(KEIKO_LINE, SHARED, LEFT),
        *members(OTHER_LINE, OTHERS),
        event("leave", group=LEFT),
        event("follow", user=OTHER_LINE),
    )
    link_line(app, person, friend=True)
    chats = offered(client, authorize_params())
    assert list(chats) == ["1-on-1 chat with you", "Family"]
    assert line_id_of(app, chats["1-on-1 chat with you"]) == KEIKO_LINE
    assert line_id_of(app, chats["Family"]) == SHARED


def test_picking_the_own_chat_connects_it_without_a_code(
    app, client, person, authorize_params, registered
):
    link_line(app, person, friend=True)
    own = offered(client, authorize_params())["1-on-1 chat with you"]
    answer = client.post(
        "/relay/oauth/authorize", data={**authorize_params(), "chat": own, "agree": "1"}
    )
    assert answer.status_code == 302
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    token = client.post(
        "/relay/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": registered.redirect_uri,
            "client_id": registered.client_id,
            "client_secret": registered.client_secret,
        },
    )
    assert token.status_code == 200
    with app.app_context():
        row = db.session.scalar(select(RelayAccessToken))
        assert row.chat.line_id == KEIKO_LINE
        assert row.person_id == person.id
        # Paired to her from now on, as a chat paired with a code would be.
        assert db.session.scalar(select(RelayChatPerson.person_id)) == person.id


def test_not_a_friend_gets_the_add_friend_link_instead(app, client, person, authorize_params):
    link_line(app, person, friend=False)
    page = client.get("/relay/oauth/authorize", query_string=authorize_params())
    html = page.get_data(as_text=True)
    assert "data-own-chat-missing" in html
    assert "https://line.me/R/ti/p/%40fakebot" in html
    assert offered(client, authorize_params()) == {}
    # A chosen chat that is not on offer connects nothing.
    with app.app_context():
        assert db.session.scalar(select(RelayChat)) is None

    webhook(app, client, event("follow", user=KEIKO_LINE))  # she adds the bot
    assert list(offered(client, authorize_params())) == ["1-on-1 chat with you"]


def test_the_webhook_outranks_the_sign_in_flag(app, client, person, authorize_params):
    link_line(app, person, friend=True)
    webhook(app, client, event("follow", user=KEIKO_LINE), event("unfollow", user=KEIKO_LINE))
    assert offered(client, authorize_params()) == {}


def test_a_message_in_a_room_makes_its_sender_a_member_and_leaving_ends_it(
    app, client, person, authorize_params
):
    link_line(app, person, friend=False)
    webhook(
        app,
        client,
        event("join", room=CHATTED),
        text_message("hello", room=CHATTED, user=KEIKO_LINE),
    )
    chats = offered(client, authorize_params())
    assert len(chats) == 1
    assert line_id_of(app, next(iter(chats.values()))) == CHATTED
    webhook(
        app,
        client,
        event(
            "memberLeft", room=CHATTED, left={"members": [{"type": "user", "userId": KEIKO_LINE}]}
        ),
    )
    assert offered(client, authorize_params()) == {}


def test_an_account_without_line_sees_only_pairing(app, client, person, authorize_params):
    webhook(app, client, event("follow", user=KEIKO_LINE), *members(KEIKO_LINE, SHARED))
    page = client.get("/relay/oauth/authorize", query_string=authorize_params())
    html = page.get_data(as_text=True)
    assert offered(client, authorize_params()) == {}
    assert "relay-line-code" in html  # the code to send from the chat


def test_my_page_offers_the_linked_chats_and_keeps_the_one_picked(app, client, person):
    link_line(app, person, friend=True)
    page = client.get("/relay/my/").get_data(as_text=True)
    assert "1-on-1 chat with you" in page
    own = re.search(r'name="chat" value="(\d+)"', page).group(1)
    answer = client.post("/relay/my/tokens", data={"name": "cron", "chat": own})
    assert answer.status_code == 200
    assert "relay-new-token" in answer.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(RelayChatPerson.person_id)) == person.id


def pick(client, params, chat_id: str):
    return client.post("/relay/oauth/authorize", data={**params, "chat": chat_id, "agree": "1"})


def test_picking_a_group_asks_line_whether_they_are_still_a_member(
    app, client, person, authorize_params, fake_line
):
    fake_line.state.groups.update({SHARED: "Family", OTHERS: "Club"})
    webhook(
        app,
        client,
        event("join", group=SHARED),
        event("join", group=OTHERS),
        *members(KEIKO_LINE, SHARED, OTHERS),
    )
    link_line(app, person, friend=False)
    fake_line.state.members[SHARED] = {KEIKO_LINE}  # LINE: she is in Family, left Club
    chats = offered(client, authorize_params())
    assert pick(client, authorize_params(), chats["Family"]).status_code == 302

    refused = pick(client, authorize_params(), chats["Club"])
    assert refused.status_code == 200
    assert "no longer a member of that group" in refused.get_data(as_text=True)
    assert list(offered(client, authorize_params())) == ["Family"]
    asked = fake_line.state.calls_to(f"/v2/bot/group/{OTHERS}/member/{KEIKO_LINE}")
    assert len(asked) == 1


def test_my_page_points_a_linked_person_who_is_not_a_friend_to_the_bot(app, client, person):
    link_line(app, person, friend=False)
    page = client.get("/relay/my/").get_data(as_text=True)
    assert "data-own-chat-missing" in page
    assert "https://line.me/R/ti/p/%40fakebot" in page
    link_line(app, person, friend=True)
    assert "data-own-chat-missing" not in client.get("/relay/my/").get_data(as_text=True)
