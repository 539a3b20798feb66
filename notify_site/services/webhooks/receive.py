"""A post to a webhook's URL: who may post, what it reads, whether it is a repeat, and the
send (SPEC 8).

:func:`authenticate` finds the webhook by its id and checks the secret (path or Bearer)
against the stored hash in constant time; an unknown id and a wrong secret are the same
:class:`~.manage.WebhookNotFoundError`. :func:`receive` then, in this order:

1. a paused webhook refuses (:class:`WebhookPausedError`);
2. the format reads the body (:mod:`.formats`; :class:`~.formats.PayloadError` names what is
   missing, and nothing is queued);
3. the message is composed (:mod:`.compose`) in the webhook's language and checked once by
   :mod:`notify_site.notify_content`, like every send;
4. the group's state is **claimed** (below) unless the webhook's window is 0 or the post is
   a test; a repeat queues nothing and answers with what the first post queued;
5. the one send use case queues a notification per active chat
   (:func:`notify_site.services.sending.send`, ``Source.WEBHOOK``); the history entry is
   written in the same transaction (``SendOptions.on_queued``) with the claim, so the three
   are on disk together or not at all.

Every post leaves a history entry, those refused and not read too, with why: a stored text
(English, and a code the page translates; notify_site/stored_text.py).

**Repeats.** Alertmanager and Grafana send a group's notification again (retries after a
timeout, ``repeat_interval``, an HA pair of Alertmanagers each sending). A post is a repeat
when its group (:attr:`~.formats.Reading.group`) is in the same state
(:attr:`~.formats.Reading.state`) as when it last queued, and that was less than the
webhook's ``dedupe_seconds`` ago. A change of state always queues: firing → resolved →
firing within a minute is three messages; a new alert joining a firing group is one more.
The row :class:`~notify_site.models.WebhookDedupe` (primary key: webhook, group) decides
between concurrent repeats: the claim is the transaction's first write, an ``INSERT``; if the
row exists, a conditional ``UPDATE`` takes it only when the state differs or the window has
passed. PostgreSQL makes a second ``INSERT`` of the same key wait for the first transaction
and then fail, and the ``UPDATE`` re-reads the row the first committed; SQLite lets one
writer in at a time. Either way exactly one of two identical posts queues.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from notify_site import stored_text
from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import (
    Connection,
    ConnectionStatus,
    Notification,
    Webhook,
    WebhookDedupe,
    WebhookDelivery,
    WebhookFormat,
    WebhookOutcome,
    webhook_connections,
)
from notify_site.notify_content import ContentError, check_content
from notify_site.services import ServiceError, sending
from notify_site.services.notifications import ConnectionRef, QueuedNotification
from notify_site.services.webhooks import compose, formats, samples
from notify_site.services.webhooks.manage import (
    SECRET_MAX_CHARS,
    SECRET_PREFIX,
    WebhookNotFoundError,
    hash_secret,
)
from notify_site.services.webhooks.text import cut
from notify_site.stored_text import N_, StoredText, columns, site_text

# How many posts a webhook's history keeps; older ones are deleted as new ones come.
HISTORY_KEPT = 200
DETAIL_MAX_CHARS = 500
# A fixed hash to compare with when the id is unknown: the answer takes as long either way.
_NO_SECRET_HASH = hash_secret("")
# Why a post was refused, as its history keeps it (notify_site/stored_text.py).
NO_ACTIVE_CHAT = N_("None of this webhook's chats can receive messages now.")
stored_text.register(
    {"webhook_paused": N_("The webhook is paused."), "webhook_no_chat": NO_ACTIVE_CHAT}
)


class WebhookPausedError(ServiceError):
    """The webhook is paused: nothing is queued until it is resumed."""


class NoActiveChatError(ServiceError):
    """None of the webhook's chats can receive messages (revoked, unreachable, removed)."""


@dataclass(frozen=True)
class Post:
    """A post as the site received it: the body, and the form fields when it was a form
    (Uptime Kuma's "form-data" sends its JSON in ``data``; the text format reads
    ``message``)."""

    body: bytes
    form: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Received:
    """What became of a post that was accepted: queued now, or a repeat of ``duplicate_of``
    (then ``notifications`` are the ones that first post queued)."""

    outcome: str
    delivery_id: int
    notifications: list[QueuedNotification]
    text: str
    duplicate_of: int | None = None
    note: str | None = None


def authenticate(webhook_id: int, secret: str | None) -> Webhook:
    """The webhook ``webhook_id`` if ``secret`` is its secret; else
    :class:`~.manage.WebhookNotFoundError`, whether the id or the secret was wrong."""
    webhook = db.session.get(Webhook, webhook_id)
    secret = secret or ""
    well_formed = secret.startswith(SECRET_PREFIX) and len(secret) <= SECRET_MAX_CHARS
    presented = hash_secret(secret if well_formed else "")
    stored = webhook.secret_hash if webhook is not None else _NO_SECRET_HASH
    if not hmac.compare_digest(presented, stored) or webhook is None or not well_formed:
        db.session.rollback()
        raise WebhookNotFoundError(gettext("No such webhook."))
    return webhook


def receive(webhook: Webhook, post: Post, *, test: bool = False) -> Received:
    """Turn ``post`` into notifications (see the module). Raises
    :class:`WebhookPausedError`, :class:`~.formats.PayloadError` or :class:`NoActiveChatError`
    after recording the post in the history."""
    if webhook.is_paused:
        _refuse(webhook, WebhookOutcome.REFUSED, site_text("webhook_paused"), test)
        raise WebhookPausedError(
            gettext("This webhook is paused: resume it on its page to send again.")
        )
    try:
        reading = formats.read(webhook.format, _payload(webhook.format, post))
    except formats.PayloadError as error:
        _refuse(webhook, WebhookOutcome.INVALID, error.stored(), test)
        raise
    message = compose.compose(webhook.format, webhook.template, reading, webhook.locale)
    try:
        content = check_content(message=message.text)
    except ContentError:  # clean() leaves nothing notify_content refuses; kept as a guard
        error = formats.PayloadError({"body": "no_message"})
        _refuse(webhook, WebhookOutcome.INVALID, error.stored(), test)
        raise error from None
    targets = _active_connection_ids(webhook)
    if not targets:
        _refuse(webhook, WebhookOutcome.REFUSED, site_text("webhook_no_chat"), test)
        raise NoActiveChatError(gettext(NO_ACTIVE_CHAT))

    now = utcnow()
    if webhook.dedupe_seconds > 0 and not test:
        first = _claim(webhook, reading, now)
        if first is not None:
            return _record_duplicate(webhook, first, message.text, now)
    recorded: dict[str, int] = {}

    def record(rows: list[QueuedNotification]) -> None:
        delivery_id = _add_delivery(
            webhook,
            WebhookOutcome.QUEUED,
            now,
            text=message.text,
            detail=message.note,
            notification_ids=[row.id for row in rows],
            test=test,
        )
        recorded["delivery_id"] = delivery_id
        if webhook.dedupe_seconds > 0 and not test:
            db.session.execute(
                update(WebhookDedupe)
                .where(
                    WebhookDedupe.webhook_id == webhook.id,
                    WebhookDedupe.group_hash == reading.group_hash,
                )
                .values(delivery_id=delivery_id)
                .execution_options(synchronize_session=False)
            )

    # The webhook's owner sends to chats of their own, chosen when the webhook was made.
    sender = sending.Sender(id=webhook.owner_id, is_admin=False)
    try:
        result = sending.send(
            sender,
            targets,
            content,
            options=sending.SendOptions(source=sending.Source.WEBHOOK, on_queued=record),
        )
    except (sending.UnknownConnectionError, sending.InactiveConnectionError) as error:
        # A chat went away since the look above: said as if none could receive.
        db.session.rollback()
        _refuse(webhook, WebhookOutcome.REFUSED, StoredText(str(error)), test)
        raise NoActiveChatError(str(error)) from None
    except Exception:
        db.session.rollback()
        raise
    return Received(
        outcome=WebhookOutcome.QUEUED,
        delivery_id=recorded["delivery_id"],
        notifications=result.notifications,
        text=message.text,
        note=message.note.text if message.note else None,
    )


def send_test(webhook: Webhook) -> Received:
    """Post the format's sample to the webhook, as a tool would (never a repeat)."""
    return receive(webhook, Post(body=samples.sample_body(webhook.format)), test=True)


# ---------------------------------------------------------------------------- reading the post


def _payload(format_name: str, post: Post):
    if format_name == WebhookFormat.TEXT:
        if post.form is not None and "message" in post.form:
            return post.form["message"]
        return formats.decode_text(post.body)
    if post.form is not None and "data" in post.form:
        return formats.decode_json(post.form["data"].encode())
    if not post.body.strip():
        raise formats.PayloadError({"body": "json_empty"})
    return formats.decode_json(post.body)


def _active_connection_ids(webhook: Webhook) -> list[int]:
    return list(
        db.session.scalars(
            select(Connection.id)
            .join(webhook_connections, webhook_connections.c.connection_id == Connection.id)
            .where(
                webhook_connections.c.webhook_id == webhook.id,
                Connection.status == ConnectionStatus.ACTIVE,
            )
            .order_by(Connection.label, Connection.id)
        )
    )


# ---------------------------------------------------------------------------- repeats


def _claim(webhook: Webhook, reading: formats.Reading, now: datetime) -> int | None:
    """Take the group's state for this post (the transaction's first write, uncommitted):
    None if this post may queue, else the id of the delivery that queued the state."""
    webhook_id, group, state = webhook.id, reading.group_hash, reading.state_hash
    until = now + timedelta(seconds=webhook.dedupe_seconds)
    try:
        db.session.execute(
            insert(WebhookDedupe).values(
                webhook_id=webhook_id,
                group_hash=group,
                state_hash=state,
                delivery_id=0,  # set in the same transaction once the delivery has its id
                expires_at=until,
            )
        )
        return None
    except IntegrityError:
        db.session.rollback()  # the row exists: nothing else was written yet
    taken = db.session.execute(
        update(WebhookDedupe)
        .where(
            WebhookDedupe.webhook_id == webhook_id,
            WebhookDedupe.group_hash == group,
            (WebhookDedupe.state_hash != state) | (WebhookDedupe.expires_at <= now),
        )
        .values(state_hash=state, delivery_id=0, expires_at=until)
        .execution_options(synchronize_session=False)
    ).rowcount
    if taken:
        return None
    return db.session.scalar(
        select(WebhookDedupe.delivery_id).where(
            WebhookDedupe.webhook_id == webhook_id, WebhookDedupe.group_hash == group
        )
    )


def _record_duplicate(webhook: Webhook, first_id: int, text: str, now: datetime) -> Received:
    first = db.session.get(WebhookDelivery, first_id)
    ids = json.loads(first.notification_ids or "[]") if first is not None else []
    delivery_id = _add_delivery(
        webhook,
        WebhookOutcome.DUPLICATE,
        now,
        text=text,
        notification_ids=ids,
        duplicate_of=first_id,
    )
    db.session.commit()
    return Received(
        outcome=WebhookOutcome.DUPLICATE,
        delivery_id=delivery_id,
        notifications=_queued(ids),
        text=text,
        duplicate_of=first_id,
    )


def _queued(ids: list[int]) -> list[QueuedNotification]:
    """The notifications a first post queued, as the answer lists them (as they are now)."""
    rows = db.session.execute(
        select(Notification.id, Notification.status, Connection.id, Connection.label)
        .join(Connection, Connection.id == Notification.connection_id)
        .where(Notification.id.in_(ids))
        .order_by(Notification.id)
    )
    return [
        QueuedNotification(id=row_id, connection=ConnectionRef(cid, label), status=status)
        for row_id, status, cid, label in rows
    ]


# ---------------------------------------------------------------------------- history


def _refuse(webhook: Webhook, outcome: str, detail: StoredText, test: bool) -> None:
    """Record a post that queued nothing, and commit."""
    _add_delivery(webhook, outcome, utcnow(), detail=detail, test=test)
    db.session.commit()


def _add_delivery(
    webhook: Webhook,
    outcome: str,
    now: datetime,
    *,
    text: str | None = None,
    detail: StoredText | None = None,
    notification_ids: list[int] | None = None,
    duplicate_of: int | None = None,
    test: bool = False,
) -> int:
    """Add a history entry (no commit), note the time on the webhook, and let the history
    keep its newest :data:`HISTORY_KEPT` entries."""
    delivery_id = db.session.execute(
        insert(WebhookDelivery)
        .values(
            webhook_id=webhook.id,
            received_at=now,
            outcome=outcome,
            text=text,
            **columns("detail", _cut(detail)),
            notification_ids=json.dumps(notification_ids) if notification_ids else None,
            duplicate_of=duplicate_of,
            test=test,
        )
        .returning(WebhookDelivery.id)
    ).scalar_one()
    db.session.execute(
        update(Webhook)
        .where(Webhook.id == webhook.id)
        .values(last_received_at=now)
        .execution_options(synchronize_session=False)
    )
    oldest_kept = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.webhook_id == webhook.id)
        .order_by(WebhookDelivery.id.desc())
        .offset(HISTORY_KEPT - 1)
        .limit(1)
        .scalar_subquery()
    )
    db.session.execute(
        delete(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook.id, WebhookDelivery.id < oldest_kept)
        .execution_options(synchronize_session=False)
    )
    return delivery_id


def _cut(detail: StoredText | None) -> StoredText | None:
    """A detail whose English fits its column (its code and parameters are kept)."""
    if detail is None or len(detail.text) <= DETAIL_MAX_CHARS:
        return detail
    return StoredText(cut(detail.text, DETAIL_MAX_CHARS), detail.code, detail.params)
