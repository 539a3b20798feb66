"""The channel-mode consent page's decisions (relay/line/consent.py), without the view: which
pairing a page shows, what **Agree** does before and after the code reaches the bot."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.relay import chats, oauth
from notify_site.relay.line import consent, pairing
from notify_site.relay.line.channel import current_settings
from notify_site.relay.models import ChatKind, RelayAuthorizationCode, RelayChat
from notify_site.relay.secrets_util import hash_secret
from tests.conftest import make_test_config
from tests.fakes.line_api import channel_config

# The accounts port's id of the person on the page (the relay keeps no accounts).
PERSON, OTHER = 7, 8


@pytest.fixture
def app_config(tmp_path, fake_line):
    return make_test_config(tmp_path, **channel_config(fake_line, "https://relay.example/relay"))


@pytest.fixture
def auth(app, authorize_params):
    with app.app_context():
        return oauth.parse_authorize_request(authorize_params())


def _line_chat(line_id: str = "U" + "a" * 32) -> RelayChat:
    chat = RelayChat(kind=ChatKind.USER, name="Alice", line_id=line_id)
    db.session.add(chat)
    db.session.commit()
    return chat


def test_agreeing_before_the_code_reached_the_bot_keeps_the_same_code(app, auth):
    now = utcnow()
    with app.test_request_context():
        settings = current_settings()
        first = consent.new_page(auth.client_pk, PERSON, settings, now=now)
        assert first.notice is None
        assert first.state.status == pairing.PairingStatus.WAITING
        assert (
            consent.agree(auth, first.pairing.poll_token, person_id=PERSON, now=now, ttl=600)
            is None
        )
        again = consent.page_after_refusal(
            auth.client_pk,
            PERSON,
            settings,
            poll_token=first.pairing.poll_token,
            shown_code=first.pairing.display_code,
            now=now,
        )
    assert again.notice is consent.Notice.NOT_YET
    assert again.pairing.code == first.pairing.code
    assert again.pairing.poll_token == first.pairing.poll_token


@pytest.mark.parametrize("tamper", ["code", "poll_token", "expired"])
def test_a_code_that_can_no_longer_be_sent_is_replaced(app, auth, tamper):
    now = utcnow()
    with app.test_request_context():
        settings = current_settings()
        first = consent.new_page(auth.client_pk, PERSON, settings, now=now)
        other = consent.new_page(auth.client_pk, PERSON, settings, now=now)
        poll_token, shown, when = first.pairing.poll_token, first.pairing.code, now
        if tamper == "code":
            shown = other.pairing.code  # another page's code
        elif tamper == "poll_token":
            poll_token = "no-such-pairing"
        else:
            when = now + timedelta(seconds=settings.pairing_ttl + 1)
        again = consent.page_after_refusal(
            auth.client_pk, PERSON, settings, poll_token=poll_token, shown_code=shown, now=when
        )
    assert again.notice is consent.Notice.NEW_CODE
    assert again.pairing.code not in (first.pairing.code, other.pairing.code)
    assert again.state.status == pairing.PairingStatus.WAITING


def test_agreeing_after_the_match_issues_one_code_for_that_chat(app, auth):
    now = utcnow()
    with app.test_request_context():
        settings = current_settings()
        page = consent.new_page(auth.client_pk, PERSON, settings, now=now)
        chat = _line_chat()
        assert pairing.match_code(page.pairing.code, chat, now=now) is not None
        code = consent.agree(auth, page.pairing.poll_token, person_id=PERSON, now=now, ttl=600)
        assert code is not None
        db.session.commit()
        issued = db.session.scalar(
            select(RelayAuthorizationCode).where(
                RelayAuthorizationCode.code_hash == hash_secret(code)
            )
        )
        assert issued.chat_id == chat.id
        assert issued.client_pk == auth.client_pk
        assert issued.person_id == PERSON
        # The chat is now the person's, offered next time without a code; nobody else's.
        assert [c.id for c in chats.paired_line_chats(PERSON)] == [chat.id]
        assert chats.paired_line_chats(OTHER) == []
        # The pairing is spent: agreeing again connects nothing, and the page moves on.
        assert (
            consent.agree(auth, page.pairing.poll_token, person_id=PERSON, now=now, ttl=600) is None
        )
        again = consent.page_after_refusal(
            auth.client_pk,
            PERSON,
            settings,
            poll_token=page.pairing.poll_token,
            shown_code=page.pairing.code,
            now=now,
        )
    assert again.notice is consent.Notice.NEW_CODE


def test_another_persons_page_cannot_take_the_pairing(app, auth):
    now = utcnow()
    with app.test_request_context():
        page = consent.new_page(auth.client_pk, PERSON, current_settings(), now=now)
        chat = _line_chat()
        assert pairing.match_code(page.pairing.code, chat, now=now) is not None
        assert (
            consent.agree(auth, page.pairing.poll_token, person_id=OTHER, now=now, ttl=600) is None
        )
        assert (
            consent.confirm(page.pairing.poll_token, person_id=PERSON, now=now) is None
        )  # not My page's
        assert chats.paired_line_chats(OTHER) == []
        assert chats.paired_line_chats(PERSON) == []


def test_a_paired_chat_is_connected_without_a_code_and_only_by_its_people(app, auth):
    now = utcnow()
    with app.test_request_context():
        page = consent.new_page(None, PERSON, current_settings(), now=now)  # My page's
        chat = _line_chat()
        pairing.match_code(page.pairing.code, chat, now=now)
        assert consent.confirm(page.pairing.poll_token, person_id=PERSON, now=now).id == chat.id
        code = consent.agree_paired(auth, chat.id, person_id=PERSON, ttl=600)
        assert code is not None
        assert consent.agree_paired(auth, chat.id, person_id=OTHER, ttl=600) is None
        chat.unreachable_at = now  # the user blocked the bot: not offered any more
        db.session.commit()
        assert consent.agree_paired(auth, chat.id, person_id=PERSON, ttl=600) is None
