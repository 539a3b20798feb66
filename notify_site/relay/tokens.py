"""A person's tokens, as My page shows them (SPEC 6; line-platform.md A6).

* :func:`generate_personal_token` — LINE Notify's *Generate token*: a name (the prefix of the
  token's messages, ``[name] message``) and one of the person's own chats, no OAuth client.
  The token is returned once and stored only as its SHA-256 digest, like every token.
* :func:`connected_services` — every live token of the person, personal or issued to a
  service through OAuth (the site's own connections are among them), with the chat, when it
  was made and last used, and what is left of this window's calls.
* :func:`disconnect` — revokes one of them at once, exactly as ``/api/revoke`` does.

Each function owns its transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from notify_site.extensions import db
from notify_site.plain_text import text_problem
from notify_site.relay.errors import ChatNotAvailableError, TokenNameError, TokenNotFoundError
from notify_site.relay.models import RelayAccessToken, RelayChat
from notify_site.relay.ratelimit import RateLimits, RateWindow, current_window, remaining
from notify_site.relay.secrets_util import hash_secret, new_access_token
from notify_site.relay.service import revoke

TOKEN_NAME_MAX_CHARS = 100


@dataclass(frozen=True)
class ConnectedService:
    """One live token of a person, as a row of My page's list (no secret in it)."""

    token_pk: int
    #: The service's name, or the personal token's name.
    name: str
    personal: bool
    chat: RelayChat
    created_at: datetime
    last_used_at: datetime | None
    calls_remaining: int
    calls_limit: int
    images_remaining: int
    #: When this window's calls come back.
    reset_at: datetime


def check_token_name(name: str) -> str:
    """The name without surrounding spaces, if it can be a token's name; else TokenNameError."""
    name = (name or "").strip()
    if not name:
        raise TokenNameError(_("Give the token a name."))
    if len(name) > TOKEN_NAME_MAX_CHARS:
        raise TokenNameError(
            _("The name can be at most %(max)s characters.", max=TOKEN_NAME_MAX_CHARS)
        )
    if text_problem(name) is not None:
        raise TokenNameError(_("The name cannot contain control characters or line breaks."))
    return name


def generate_personal_token(
    person_id: int, name: str, chat_id: int | None, offered: Iterable[RelayChat]
) -> str:
    """A new personal access token of the person for one of ``offered`` (their own chats).

    Returns the token (shown once) and commits; only its digest is kept.
    """
    name = check_token_name(name)
    chat = next((chat for chat in offered if chat.id == chat_id), None)
    if chat is None:
        raise ChatNotAvailableError(_("Choose one of the chats listed."))
    token = new_access_token()
    db.session.add(
        RelayAccessToken(
            token_hash=hash_secret(token),
            client_pk=None,
            name=name,
            chat_id=chat.id,
            person_id=person_id,
        )
    )
    db.session.commit()
    return token


def connected_services(
    person_id: int, *, limits: RateLimits, now: datetime
) -> list[ConnectedService]:
    """Every live token of the person, newest first."""
    rows = db.session.scalars(
        select(RelayAccessToken)
        .options(joinedload(RelayAccessToken.client), joinedload(RelayAccessToken.chat))
        .where(RelayAccessToken.person_id == person_id, RelayAccessToken.revoked_at.is_(None))
        .order_by(RelayAccessToken.id.desc())
    ).all()
    services = []
    for row in rows:
        window = current_window(
            RateWindow(row.window_reset_at, row.calls_used, row.images_used), now, limits
        )
        calls_left, images_left = remaining(window, limits)
        services.append(
            ConnectedService(
                token_pk=row.id,
                name=row.name or (row.client.name if row.client else ""),
                personal=row.client_pk is None,
                chat=row.chat,
                created_at=row.created_at,
                last_used_at=row.last_used_at,
                calls_remaining=calls_left,
                calls_limit=limits.calls,
                images_remaining=images_left,
                reset_at=window.reset_at,
            )
        )
    return services


def disconnect(person_id: int, token_pk: int, *, now: datetime) -> str:
    """Revoke one of the person's live tokens at once (as ``/api/revoke`` does); returns the
    name it was listed under. Commits; TokenNotFoundError if it is not theirs or not live."""
    token = db.session.scalar(
        select(RelayAccessToken)
        .options(joinedload(RelayAccessToken.client))
        .where(
            RelayAccessToken.id == token_pk,
            RelayAccessToken.person_id == person_id,
            RelayAccessToken.revoked_at.is_(None),
        )
    )
    if token is None:
        raise TokenNotFoundError(_("That connection is already disconnected."))
    name = token.name or (token.client.name if token.client else "")
    if not revoke(token.id, now=now):
        db.session.rollback()
        raise TokenNotFoundError(_("That connection is already disconnected."))
    db.session.commit()
    return name
