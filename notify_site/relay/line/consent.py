"""The pages that pair a LINE chat in channel mode — the consent page and My page's *Pair a
chat* — which pairing they show, and what their button does.

The signed-in person picks a LINE chat already paired to them (:func:`agree_paired`), or pairs
another: GET shows a fresh one-time code; the person sends it to the bot from the chat they
want, the page (polling ``/line/pairing``) names the chat, and **Agree and connect** issues the
authorization code for it (:func:`agree`; My page: :func:`confirm`), pairing the chat to the
person for next time. Without JavaScript, pressing the button checks the code too: when the
chat has not been seen yet the page keeps the same code, if it can still be sent, and says so;
otherwise it shows a new code (:func:`page_after_refusal`). The views
(``relay/views/oauth.py``, ``relay/views/mypage.py``) only read the form and render what these
return. A page's pairing belongs to its service (None on My page) and to the person.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from notify_site.extensions import db
from notify_site.relay import chats, oauth
from notify_site.relay.line import pairing
from notify_site.relay.line.channel import ChannelSettings
from notify_site.relay.models import RelayChat


class Notice(enum.Enum):
    """Why a POST shows the page again instead of connecting."""

    #: The code can still be sent: it has not reached the bot yet.
    NOT_YET = "not_yet"
    #: The code can no longer be used (expired, spent, another page's): here is a new one.
    NEW_CODE = "new_code"


@dataclass(frozen=True)
class ConsentPage:
    """What the page shows: its pairing, where that stands, and a notice after a POST."""

    pairing: pairing.NewPairing
    state: pairing.PairingState
    notice: Notice | None = None


def agree(
    auth: oauth.AuthorizeRequest, poll_token: str, *, person_id: int, now: datetime, ttl: int
) -> str | None:
    """**Agree and connect**: an authorization code for the chat the page's pairing matched
    (the pairing is spent, the chat paired to the person), or None when it has matched no
    chat that can be reached."""
    chat = pairing.take_pairing(poll_token, client_pk=auth.client_pk, person_id=person_id, now=now)
    if chat is None:
        return None
    return oauth.issue_code(auth, chat.id, [chat], person_id=person_id, ttl=ttl)


def agree_paired(
    auth: oauth.AuthorizeRequest, chat_id: int | None, *, person_id: int, ttl: int
) -> str | None:
    """**Agree and connect** with a chat already paired to the person (and reachable): its
    authorization code, or None when ``chat_id`` is none of those."""
    offered = chats.paired_line_chats(person_id, reachable_only=True)
    if chat_id is None or all(chat.id != chat_id for chat in offered):
        return None
    return oauth.issue_code(auth, chat_id, offered, person_id=person_id, ttl=ttl)


def agree_offered(
    auth: oauth.AuthorizeRequest,
    chat_id: int | None,
    offered: list[RelayChat],
    *,
    person_id: int,
    ttl: int,
) -> str | None:
    """**Agree and connect** with one of the chats ``offered`` to the person without a code
    (their linked LINE chats and those paired to them, ``relay/line/linked.py``): its
    authorization code, the chat paired to the person; None when it is none of those."""
    chat = next((chat for chat in offered if chat.id == chat_id), None)
    if chat is None:
        return None
    chats.pair_chat(chat, person_id)
    return oauth.issue_code(auth, chat.id, offered, person_id=person_id, ttl=ttl)


def confirm(poll_token: str, *, person_id: int, now: datetime) -> RelayChat | None:
    """My page's **Add this chat**: the chat My page's pairing matched, now paired to the
    person (commits), or None when it has matched no chat that can be reached."""
    chat = pairing.take_pairing(poll_token, client_pk=None, person_id=person_id, now=now)
    if chat is None:
        return None
    db.session.commit()
    return chat


def new_page(
    client_pk: int | None, person_id: int, settings: ChannelSettings, *, now: datetime
) -> ConsentPage:
    """The page as a GET shows it: a fresh code."""
    fresh = pairing.create_pairing(
        client_pk, person_id=person_id, ttl=settings.pairing_ttl, now=now
    )
    return _page(client_pk, fresh, now=now)


def page_after_refusal(
    client_pk: int | None,
    person_id: int,
    settings: ChannelSettings,
    *,
    poll_token: str,
    shown_code: str,
    now: datetime,
) -> ConsentPage:
    """The page again after a POST that connected nothing: the same code while it can still
    reach the bot (it is this page's, waiting or matched, and its chat reachable), else a new
    one."""
    state = pairing.pairing_state(poll_token, client_pk=client_pk, now=now)
    code = pairing.normalize_code(shown_code)
    if (
        state.status in (pairing.PairingStatus.WAITING, pairing.PairingStatus.MATCHED)
        and code is not None
        and pairing.code_belongs(code, poll_token)
        and state.reachable
    ):
        return _page(
            client_pk, pairing.NewPairing(code, poll_token, now), now=now, notice=Notice.NOT_YET
        )
    fresh = pairing.create_pairing(
        client_pk, person_id=person_id, ttl=settings.pairing_ttl, now=now
    )
    return _page(client_pk, fresh, now=now, notice=Notice.NEW_CODE)


def _page(
    client_pk: int | None,
    current: pairing.NewPairing,
    *,
    now: datetime,
    notice: Notice | None = None,
) -> ConsentPage:
    state = pairing.pairing_state(current.poll_token, client_pk=client_pk, now=now)
    return ConsentPage(current, state, notice)


def add_friend_qr_svg(settings: ChannelSettings) -> str | None:
    """The add-friend URL as an inline SVG QR code (segno escapes the URL), if one is set."""
    if not settings.add_friend_url:
        return None
    import segno  # only channel mode draws one

    return segno.make(settings.add_friend_url, error="m").svg_inline(scale=4)
