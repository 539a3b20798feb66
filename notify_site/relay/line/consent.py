"""The consent page in channel mode: which pairing it shows, and what **Agree** does.

GET shows a fresh one-time code; the person sends it to the bot from the chat they want, the
page (polling ``/line/pairing``) names the chat, and **Agree and connect** issues the
authorization code for it (:func:`agree`). Without JavaScript, pressing the button checks
the code too: when the chat has not been seen yet the page keeps the same code, if it can
still be sent, and says so; otherwise it shows a new code (:func:`page_after_refusal`).
The view (``relay/views/oauth.py``) only reads the form and renders what these return.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from notify_site.relay import oauth
from notify_site.relay.line import pairing
from notify_site.relay.line.channel import ChannelSettings


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


def agree(auth: oauth.AuthorizeRequest, poll_token: str, *, now: datetime, ttl: int) -> str | None:
    """**Agree and connect**: an authorization code for the chat the page's pairing matched
    (the pairing is spent), or None when it has matched no chat that can be reached."""
    chat = pairing.take_pairing(poll_token, client_pk=auth.client_pk, now=now)
    if chat is None:
        return None
    return oauth.issue_code(auth, chat.id, [chat], ttl=ttl)


def new_page(
    auth: oauth.AuthorizeRequest, settings: ChannelSettings, *, now: datetime
) -> ConsentPage:
    """The page as a GET shows it: a fresh code."""
    fresh = pairing.create_pairing(auth.client_pk, ttl=settings.pairing_ttl, now=now)
    return _page(auth, fresh, now=now)


def page_after_refusal(
    auth: oauth.AuthorizeRequest,
    settings: ChannelSettings,
    *,
    poll_token: str,
    shown_code: str,
    now: datetime,
) -> ConsentPage:
    """The page again after a POST that connected nothing: the same code while it can still
    reach the bot (it is this page's, waiting or matched, and its chat reachable), else a new
    one."""
    state = pairing.pairing_state(poll_token, client_pk=auth.client_pk, now=now)
    code = pairing.normalize_code(shown_code)
    if (
        state.status in (pairing.PairingStatus.WAITING, pairing.PairingStatus.MATCHED)
        and code is not None
        and pairing.code_belongs(code, poll_token)
        and state.reachable
    ):
        return _page(
            auth, pairing.NewPairing(code, poll_token, now), now=now, notice=Notice.NOT_YET
        )
    fresh = pairing.create_pairing(auth.client_pk, ttl=settings.pairing_ttl, now=now)
    return _page(auth, fresh, now=now, notice=Notice.NEW_CODE)


def _page(
    auth: oauth.AuthorizeRequest,
    current: pairing.NewPairing,
    *,
    now: datetime,
    notice: Notice | None = None,
) -> ConsentPage:
    state = pairing.pairing_state(current.poll_token, client_pk=auth.client_pk, now=now)
    return ConsentPage(current, state, notice)


def add_friend_qr_svg(settings: ChannelSettings) -> str | None:
    """The add-friend URL as an inline SVG QR code (segno escapes the URL), if one is set."""
    if not settings.add_friend_url:
        return None
    import segno  # only channel mode draws one

    return segno.make(settings.add_friend_url, error="m").svg_inline(scale=4)
