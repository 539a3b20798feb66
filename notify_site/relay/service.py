"""The relay's API services: tokens, delivery into the sandbox inbox, status, revoke.

Each function owns its transaction (commits or rolls back) and raises a :mod:`errors` class
that the views turn into a status code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from flask import current_app
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import joinedload

from notify_site.extensions import db
from notify_site.notify_content import Content
from notify_site.prepared import PreparedCache, session_cursor
from notify_site.relay import budgets, charging
from notify_site.relay.errors import (
    ChatUnreachableError,
    InvalidTokenError,
    LineRefusedError,
    MessageNotFoundError,
    MonthlyLimitError,
    RateLimitExceededError,
)
from notify_site.relay.line import monthly_limit, sync_delivery
from notify_site.relay.line.channel import current_settings, require_settings
from notify_site.relay.line.monthly_limit import PauseSchedule
from notify_site.relay.line.push import push_policy, queue_push
from notify_site.relay.models import (
    RelayAccessToken,
    RelayChat,
    RelayChatMember,
    RelayClient,
    RelayImage,
    RelayLineEvent,
    RelayLineToken,
    RelayMessage,
    RelayPush,
)
from notify_site.relay.ratelimit import RateLimits, RateWindow, spend_call
from notify_site.relay.secrets_util import hash_secret, new_image_id

# "Bearer <token>": the scheme in any case (RFC 7235), a token of printable ASCII.
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +([\x21-\x7e]+) *")


@dataclass(frozen=True)
class TokenContext:
    """A live access token as the API views need it. Holds no secret."""

    token_pk: int
    #: The service the token was issued to; None for a personal access token.
    client_pk: int | None
    #: What the chat sees the messages come from: the service's name, or the personal
    #: token's name (LINE Notify prefixed messages with it: ``[name] message``).
    client_name: str
    chat_id: int
    chat_kind: str
    chat_name: str
    #: The window as stored when the token was authenticated (not yet spent by this call).
    window: RateWindow
    #: The chat's LINE id (channel mode); None for sandbox chats.
    chat_line_id: str | None = None
    #: Whose token it is (the accounts port's person id).
    person_id: int | None = None


class _LiveToken(NamedTuple):
    """A row of :data:`_LIVE_TOKEN`, in its columns' order."""

    id: int
    client_pk: int | None
    chat_id: int
    window_reset_at: datetime | None
    calls_used: int
    images_used: int
    person_id: int | None
    client_name: str
    chat_kind: str
    chat_name: str
    chat_line_id: str | None
    chat_unreachable_at: datetime | None


#: The live token with its client and chat, by the hash of its secret: built once, and run as
#: a prepared statement (notify_site.prepared) — every Notify call starts with it, and
#: SQLAlchemy's execution around it cost more than the read.
_LIVE_TOKEN = (
    select(
        RelayAccessToken.id,
        RelayAccessToken.client_pk,
        RelayAccessToken.chat_id,
        RelayAccessToken.window_reset_at,
        RelayAccessToken.calls_used,
        RelayAccessToken.images_used,
        RelayAccessToken.person_id,
        func.coalesce(RelayAccessToken.name, RelayClient.name).label("client_name"),
        RelayChat.kind.label("chat_kind"),
        RelayChat.name.label("chat_name"),
        RelayChat.line_id.label("chat_line_id"),
        RelayChat.unreachable_at.label("chat_unreachable_at"),
    )
    .outerjoin(RelayClient, RelayClient.id == RelayAccessToken.client_pk)
    .join(RelayChat, RelayChat.id == RelayAccessToken.chat_id)
    .where(
        RelayAccessToken.token_hash == bindparam("token_hash"),
        RelayAccessToken.revoked_at.is_(None),
    )
)


def authenticate_token(
    authorization: str | None, *, allow_unreachable: bool = False
) -> TokenContext:
    """The live token named by an ``Authorization: Bearer`` header, else InvalidTokenError.

    A token whose chat is unreachable raises :class:`ChatUnreachableError` (401 with
    ``"reason": "chat_unreachable"``) unless ``allow_unreachable``: revoking it must still work,
    or a client that gives up on the chat would leave a live token behind.
    """
    match = _BEARER.fullmatch(authorization or "")
    if match is None:
        raise InvalidTokenError()
    with session_cursor(db.session) as cursor:
        found = cursor.row(
            _PREPARED.get("live_token", cursor.dialect, lambda: _LIVE_TOKEN),
            {"token_hash": hash_secret(match.group(1))},
        )
    if found is None:
        raise InvalidTokenError()
    row = _LiveToken(*found)
    if row.chat_unreachable_at is not None and not allow_unreachable:
        # Channel mode: the user blocked the bot or the bot left the group. LINE Notify
        # answered 401 once a token's chat was gone, and Notify clients know what that means;
        # the body's "reason" tells clients that look that the token itself is still good.
        raise ChatUnreachableError()
    return TokenContext(
        token_pk=row.id,
        client_pk=row.client_pk,
        client_name=row.client_name,
        chat_id=row.chat_id,
        chat_kind=row.chat_kind,
        chat_name=row.chat_name,
        window=RateWindow(row.window_reset_at, row.calls_used, row.images_used),
        chat_line_id=row.chat_line_id,
        person_id=row.person_id,
    )


def _spend_or_refuse(
    token: TokenContext, *, images: int, limits: RateLimits, now: datetime
) -> RateWindow:
    """Spend one call of the token's window in the current transaction, or raise 429."""
    result = spend_call(token.token_pk, images=images, limits=limits, now=now)
    if not result.admitted:
        db.session.rollback()
        if images and result.window.calls_used < limits.calls:
            message = f"Image upload limit exceeded: {limits.images} per window"
        else:
            message = f"Rate limit exceeded: {limits.calls} calls per window"
        raise RateLimitExceededError(message, result.window)
    return result.window


#: The sandbox inbox's INSERT, compiled once per dialect (notify_site.prepared): every
#: sandbox Notify call writes one, and the ORM's unit of work cost more than the write.
_PREPARED = PreparedCache()
_INSERT_MESSAGE = RelayMessage.__table__.insert()


@dataclass(frozen=True)
class Accepted:
    """An accepted Notify call: the token's window after it and, in channel mode, its push
    (``push_id``) and how long the call may wait for LINE's answer (sync_delivery.py)."""

    window: RateWindow
    push_id: int | None = None
    wait_seconds: float = 0.0
    #: The monthly budgets the call counted against, once it counted (None: not charged).
    quota: tuple[budgets.QuotaFigures, ...] | None = None


def deliver_notification(
    token: TokenContext,
    payload: Content,
    *,
    limits: RateLimits,
    now: datetime,
    wait_seconds: float = 0.0,
) -> Accepted:
    """Spend a call (and an image upload) and write the message into the inbox, atomically.

    In channel mode, a LINE chat's message also gets its push row (with its retry key) in the
    same transaction; a worker sends it. Sandbox chats keep only the inbox row, in either mode.

    The notification is charged to LINE's monthly quota in the same transaction
    (``charging.py``): a call that would pass a monthly budget raises BudgetExceededError
    (429) and queues nothing.

    Either both happen or neither: a refused call delivers nothing, a failed write spends
    nothing. ``wait_seconds``: how long the caller will wait for LINE's answer (the push is
    held back from the worker meanwhile).
    """
    if token.chat_line_id is not None:
        # Channel mode: while LINE refuses the channel's pushes for the month, say so now
        # rather than queue a push that waits for the quota (monthly_limit.py).
        paused = monthly_limit.paused_now(current_settings())
        if paused is not None:
            db.session.rollback()
            raise MonthlyLimitError(paused.recheck_at.isoformat(timespec="seconds"))
    try:
        # Reads first: the first write (the rate window's) takes SQLite's write lock until the
        # commit, and every call waits its turn for that lock.
        price = charging.price(
            token_pk=token.token_pk,
            person_id=token.person_id,
            chat_id=token.chat_id,
            config=current_app.config,
            now=now,
        )
        window = _spend_or_refuse(
            token, images=1 if payload.image_file is not None else 0, limits=limits, now=now
        )
        charge = charging.admit(price, current_app.config)
        image_id = None
        if payload.image_file is not None:
            image = RelayImage(
                public_id=new_image_id(),
                content_type=payload.image_file.content_type,
                size=len(payload.image_file.data),
                data=payload.image_file.data,
                created_at=now,
            )
            db.session.add(image)
            db.session.flush()
            image_id = image.id
        values = {
            "chat_id": token.chat_id,
            "client_pk": token.client_pk,
            "client_name": token.client_name,
            "message": payload.message,
            "sticker_package_id": payload.sticker_package_id,
            "sticker_id": payload.sticker_id,
            "image_thumbnail_url": payload.image_thumbnail_url,
            "image_fullsize_url": payload.image_fullsize_url,
            "image_id": image_id,
            "notification_disabled": payload.notification_disabled,
            "created_at": now,
        }
        push = None
        if token.chat_line_id is not None and current_settings() is not None:
            # Channel mode: the push goes out from the outbox, its retry key fixed now.
            message = RelayMessage(**values)
            db.session.add(message)
            db.session.flush()
            push = queue_push(message, token.chat_line_id, now=now)
            db.session.flush()
            wait_seconds = sync_delivery.hold_for_caller(push, now, wait_seconds)
        else:
            # Sandbox: the inbox row is the delivery; nothing else needs it as an object.
            with session_cursor(db.session) as cursor:
                insert = _PREPARED.get(
                    "message", cursor.dialect, lambda: _INSERT_MESSAGE, list(values)
                )
                cursor.run(insert, values)
        charging.record(
            charge,
            chat_id=token.chat_id,
            token_pk=token.token_pk,
            client_pk=token.client_pk,
            person_id=token.person_id,
            push_id=push.id if push is not None else None,
        )
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    quota = None if charge is None else charge.figures
    if push is None:
        return Accepted(window, quota=quota)
    return Accepted(window, push.id, wait_seconds, quota)


def await_line(accepted: Accepted, config: Mapping[str, Any]) -> sync_delivery.Delivery:
    """Attempt the push a Notify call queued and wait (bounded) for LINE's answer: the
    delivery when LINE accepted it or did not answer in time; LineRefusedError (400) or
    MonthlyLimitError (429) when it refused it."""
    settings = require_settings()
    delivery = sync_delivery.deliver_now(
        settings,
        push_policy(config),
        PauseSchedule.from_config(config),
        accepted.push_id,
        wait_seconds=accepted.wait_seconds,
    )
    if delivery.state == "monthly_limit":
        paused = monthly_limit.current_pause(settings)
        db.session.commit()
        recheck = paused.recheck_at.isoformat(timespec="seconds") if paused else None
        raise MonthlyLimitError(recheck)
    if delivery.state == "failed":
        raise LineRefusedError(delivery.reason or "refused", list(delivery.details))
    return delivery


def message_outcome(token: TokenContext, public_id: str) -> sync_delivery.Delivery:
    """The state of a message the token sent (``GET /api/messages/<id>``); 404 for a message
    it did not send (as for one that does not exist: ids are not probed)."""
    row = db.session.execute(
        select(RelayPush, RelayMessage)
        .join(RelayMessage, RelayMessage.id == RelayPush.message_id)
        .where(RelayPush.public_id == public_id)
    ).one_or_none()
    if (
        row is None
        or row.RelayMessage.chat_id != token.chat_id
        or row.RelayMessage.client_pk != token.client_pk
    ):
        raise MessageNotFoundError()
    return sync_delivery.stored_delivery(row.RelayPush)


def token_status(token: TokenContext, *, limits: RateLimits, now: datetime) -> RateWindow:
    """Spend one call (status calls count, as on LINE); returns the window after it."""
    try:
        window = _spend_or_refuse(token, images=0, limits=limits, now=now)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return window


def revoke(token_pk: int, *, now: datetime) -> bool:
    """Disable a live token from this moment (no commit); False if it was not live. The one
    way tokens die: ``/api/revoke`` and My page's Disconnect both come here."""
    result = db.session.execute(
        update(RelayAccessToken)
        .where(RelayAccessToken.id == token_pk, RelayAccessToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def revoke_token(token: TokenContext, *, now: datetime) -> None:
    """Disable the token at once. Revoking spends no call. [?] LINE did not say."""
    if not revoke(token.token_pk, now=now):
        db.session.rollback()
        raise InvalidTokenError()
    db.session.commit()


def channel_overview(limit: int = 50) -> dict:
    """What the channel-mode admin page lists: LINE chats, recent pushes, webhook events."""
    members = (
        select(RelayChatMember.chat_id, func.count().label("n"))
        .where(RelayChatMember.left_at.is_(None))
        .group_by(RelayChatMember.chat_id)
        .subquery()
    )
    chats = db.session.execute(
        select(RelayChat, members.c.n)
        .outerjoin(members, members.c.chat_id == RelayChat.id)
        .where(RelayChat.line_id.is_not(None))
        .order_by(RelayChat.last_event_at.desc().nulls_last(), RelayChat.id.desc())
        .limit(limit)
    ).all()
    pushes = db.session.scalars(
        select(RelayPush)
        .options(joinedload(RelayPush.chat), joinedload(RelayPush.message))
        .order_by(RelayPush.id.desc())
        .limit(limit)
    ).all()
    counts = dict(
        db.session.execute(select(RelayPush.status, func.count()).group_by(RelayPush.status)).all()
    )
    line_events = db.session.scalars(
        select(RelayLineEvent).order_by(RelayLineEvent.id.desc()).limit(limit)
    ).all()
    tokens = db.session.scalars(
        select(RelayLineToken).order_by(RelayLineToken.id.desc()).limit(5)
    ).all()
    return {
        "chats": chats,
        "pushes": pushes,
        "push_counts": counts,
        "line_events": line_events,
        "line_tokens": tokens,
    }
