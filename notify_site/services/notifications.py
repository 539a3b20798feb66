"""Notifications: the write to the outbox, and reading rows back.

Sending goes through :func:`notify_site.services.sending.send` (who may send where, at most
once per Idempotency-Key); it writes the rows with :func:`add_notifications`, one per target
connection, and commits; the workers (:mod:`notify_site.worker`) call the Notify API later.
Once the rows are committed they are on disk: a crash loses nothing.

What may be sent is checked before it gets here, by :mod:`notify_site.notify_content`, the
rules the relay checks with too: the services take its checked :class:`Content`, and
:func:`describe_problem` words its reasons for people.

Past 400 lines on purpose: one idea, the outbox's rows as the site writes and reads them; the
queued row's shape (``queued_row``) stays beside the INSERT it feeds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flask_babel import format_decimal, gettext
from sqlalchemy import insert, select, update

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.i18n import status_word
from notify_site.models import (
    ApiKey,
    Connection,
    ConnectionStatus,
    Notification,
    NotificationImage,
    NotificationStatus,
    User,
)
from notify_site.notify_content import Content, Problem
from notify_site.outbox import Lease, Outbox
from notify_site.services import ServiceError
from notify_site.stored_text import StoredText, columns

if TYPE_CHECKING:
    from notify_site.services.api_keys import AuthenticatedKey
    from notify_site.services.sending import Sender


#: The site's outbox (the shared machinery of :mod:`notify_site.outbox` over this table):
#: notifications waiting for a call — queued, or left ``sending`` by a worker whose lease ran
#: out — due at ``next_attempt_at``, each held by the fencing token of the claim that took it.
NOTIFICATIONS = Outbox(
    Lease(Notification.id, Notification.lease_token, Notification.lease_expires_at),
    Notification.status,
    NotificationStatus.PENDING,
    Notification.next_attempt_at,
)


class NotificationValidationError(ServiceError):
    """Bad input; ``fields`` maps each field to what is wrong with it."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in fields.items()))
        self.fields = fields


class NotificationNotFoundError(ServiceError):
    """No notification has that id, or none the caller may see."""


class NotCancellableError(ServiceError):
    """The notification is no longer scheduled: a worker took it, or it was finished or
    cancelled already. ``status`` is the state it is in."""

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status


def N_(text: str) -> str:  # noqa: N802 - the conventional name of gettext's no-op marker
    """Mark a reason for extraction; :func:`describe_problem` translates it when shown."""
    return text


# How the site words notify_content's reason codes (translated when shown). The reasons are
# fragments ("is required") that the send form puts after the field's name in English; in
# other languages they read on their own. The relay words the same codes in English itself.
_REASONS = {
    "required": N_("is required"),
    "empty": N_("is required"),
    "too_long": N_("at most %(max)s characters (this one has %(count)s)"),
    "control_character": N_("must not contain control characters (found %(character)s)"),
    "invalid_unicode": N_("must be valid Unicode (found %(character)s)"),
    "positive_integer": N_("must be a positive whole number"),
    "url_too_long": N_("at most %(max)s characters"),
    "url_characters": N_("must be an address without spaces or control characters"),
    "url_invalid": N_("must be a valid address"),
    "url_https": N_("must be an https:// URL"),
    "url_host": N_("must be an https:// URL"),
    "boolean": N_("must be true or false"),
    "not_a_file": N_("must be a file part of a multipart/form-data body"),
    "file_empty": N_("the file is empty"),
    "file_too_large": N_("must be at most %(mib)s MiB"),
    "file_type": N_("must be a PNG or JPEG image"),
    "type_mismatch": N_("is declared as %(declared)s but the file is %(actual)s"),
    "unreadable": N_("could not be read as a PNG or JPEG image"),
    "dimensions": N_("must be at most %(max)s×%(max)s pixels (this one is %(width)s×%(height)s)"),
    "too_many_pixels": N_("must be at most %(max)s×%(max)s pixels"),
}
_PAIR_REASONS = {
    "sticker": N_("give both the package id and the sticker id, or neither"),
    "image": N_("give both the thumbnail URL and the full-size URL, or neither"),
}
# The pair each field of a pair belongs to.
PAIR_OF = {
    "sticker_package_id": "sticker",
    "sticker_id": "sticker",
    "image_thumbnail_url": "image",
    "image_fullsize_url": "image",
}


def describe_problem(field_name: str, problem: Problem) -> str:
    """One of notify_content's problems, worded for people in the request's language."""
    if problem.code == "pair":
        return gettext(_PAIR_REASONS[PAIR_OF[field_name]])
    params = dict(problem.params)
    if problem.code == "file_too_large":
        params["mib"] = format_decimal(params["max"] / (1024 * 1024), format="#,##0.#")
    return gettext(_REASONS[problem.code], **params)


@dataclass(frozen=True)
class ResolvedConnection:
    """A connection as queueing needs it: which one, whose, its label and its status.

    Plain values read in one query (no ORM object: loading one cost more than the query), so
    they also stay readable after a commit. :func:`notify_site.services.sending.find_targets`
    reads them.
    """

    id: int
    owner_id: int
    label: str
    status: str


@dataclass(frozen=True)
class ConnectionRef:
    """A connection as a notification names it: its id and label, and its status when read."""

    id: int
    label: str
    status: str | None = None


@dataclass(frozen=True)
class QueuedNotification:
    """A notification just queued: the new row's id and the connection it goes to."""

    id: int
    connection: ConnectionRef
    status: str = NotificationStatus.QUEUED
    send_at: datetime | None = None


_notifications = Notification.__table__
_images = NotificationImage.__table__
# Core inserts: the ORM's unit of work (objects, flush, identity map) costs more than the
# write itself. RETURNING gives the new ids, in the order of the parameter rows.
_INSERT_NOTIFICATIONS = insert(_notifications).returning(
    _notifications.c.id, sort_by_parameter_order=True
)
_INSERT_IMAGE = insert(_images).returning(_images.c.id)


def add_notifications(
    user: Sender | User,
    connections: list[Connection] | list[ResolvedConnection],
    content: Content,
    *,
    api_key: ApiKey | AuthenticatedKey | None = None,
    send_at: datetime | None = None,
    occurrence_id: int | None = None,
) -> list[QueuedNotification]:
    """Insert one queued row per connection in the session's transaction, without committing.

    ``user`` is who queues; each row belongs to its connection's owner. The caller commits
    (see :func:`queue_notifications`), so that other writes, such as an idempotency record,
    can share the transaction; a rollback of the session undoes the rows. Returns what was
    queued, one record per connection, in order.

    With ``send_at`` the rows wait as ``scheduled`` until then (send later); with an
    ``occurrence_id`` too they are a schedule's occurrence, queued now, ``send_at`` saying
    which.
    """
    if not isinstance(content, Content):
        raise TypeError("add_notifications takes a Content checked by notify_content")
    if not connections:
        raise NotificationValidationError({"connections": "choose at least one connection"})
    image_id = None
    if content.image_file is not None:
        image_id = db.session.execute(
            _INSERT_IMAGE,
            {
                "filename": content.image_file.filename[:200] or "image",
                "content_type": content.image_file.content_type,
                "data": content.image_file.data,
            },
        ).scalar_one()
    api_key_id = api_key.id if api_key else None
    later = send_at is not None and occurrence_id is None
    status = NotificationStatus.SCHEDULED if later else NotificationStatus.QUEUED
    timing = {"send_at": send_at, "occurrence_id": occurrence_id, "next_attempt_at": utcnow()}
    if later:
        timing["next_attempt_at"] = send_at
    rows = [
        {
            "owner_id": connection.owner_id,
            "connection_id": connection.id,
            "api_key_id": api_key_id,
            "message": content.message,
            "sticker_package_id": content.sticker_package_id,
            "sticker_id": content.sticker_id,
            "image_thumbnail_url": content.image_thumbnail_url,
            "image_fullsize_url": content.image_fullsize_url,
            "image_id": image_id,
            "notification_disabled": content.notification_disabled,
            "status": status,
            **timing,
        }
        for connection in connections
    ]
    # One row (the usual send) as a single execution: a one-row list would take SQLAlchemy's
    # multi-row path, which costs more than the INSERT.
    ids = db.session.execute(_INSERT_NOTIFICATIONS, rows[0] if len(rows) == 1 else rows).scalars()
    return [
        QueuedNotification(
            id=row_id,
            connection=ConnectionRef(connection.id, connection.label),
            status=status,
            send_at=send_at if later else None,
        )
        for row_id, connection in zip(ids, connections, strict=True)
    ]


def queued_row(
    connection: ResolvedConnection, content: Content, api_key: AuthenticatedKey
) -> dict[str, Any]:
    """The parameters of :data:`INSERT_NOTIFICATION` for one row queued now through an API
    key, without an image file (what the API's fast path sends to the group commit)."""
    return {
        "owner_id": connection.owner_id,
        "connection_id": connection.id,
        "api_key_id": api_key.id,
        **queued_values(content),
    }


def queued_values(content: Content) -> dict[str, Any]:
    """:func:`queued_row` without the row's owner, connection and key (PostgreSQL's fast
    accept finds those in the same statement that inserts the row)."""
    return {
        "message": content.message,
        "sticker_package_id": content.sticker_package_id,
        "sticker_id": content.sticker_id,
        "image_thumbnail_url": content.image_thumbnail_url,
        "image_fullsize_url": content.image_fullsize_url,
        "image_id": None,
        "notification_disabled": content.notification_disabled,
        "status": NotificationStatus.QUEUED,
        "send_at": None,
        "occurrence_id": None,
        "next_attempt_at": utcnow(),
    }


#: One row's INSERT … RETURNING id (with :func:`queued_row`'s parameters).
INSERT_NOTIFICATION = _INSERT_NOTIFICATIONS


def queue_notifications(
    user: Sender | User,
    connections: list[Connection] | list[ResolvedConnection],
    content: Content,
    *,
    api_key: ApiKey | AuthenticatedKey | None = None,
    before_commit: Callable[[list[QueuedNotification]], None] | None = None,
    send_at: datetime | None = None,
    occurrence_id: int | None = None,
) -> list[QueuedNotification]:
    """Durably queue one notification per connection: :func:`add_notifications`, committed.

    ``before_commit`` writes the caller's own record of the rows in the same transaction
    (a webhook's history entry): both are on disk, or neither.
    """
    try:
        rows = add_notifications(
            user,
            connections,
            content,
            api_key=api_key,
            send_at=send_at,
            occurrence_id=occurrence_id,
        )
        if before_commit is not None:
            before_commit(rows)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return rows


def get_notification(user: User, notification_id: int) -> Notification:
    notification = db.session.get(Notification, notification_id)
    if notification is None or (notification.owner_id != user.id and not user.is_admin):
        raise NotificationNotFoundError(gettext("no notification %(id)s", id=notification_id))
    return notification


def cancel_scheduled(user: User, notification_id: int) -> Notification:
    """Cancel one of the user's scheduled notifications, if no worker has taken it yet.

    One conditional UPDATE decides: it changes the row only while it is still ``scheduled``
    and not under a lease. A worker's claim is the same kind of statement on the same row, so
    of a cancel and a claim racing, exactly one changes it and the other finds it changed:
    a row a worker took is not cancelled, and :class:`NotCancellableError` says what it is.
    """
    notification = get_notification(user, notification_id)
    now = utcnow()
    changed = db.session.execute(
        update(Notification)
        .where(
            Notification.id == notification.id,
            Notification.status == NotificationStatus.SCHEDULED,
            NOTIFICATIONS.lease.free(now),
        )
        .values(
            status=NotificationStatus.CANCELLED,
            finished_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    db.session.refresh(notification)
    if changed != 1:
        raise NotCancellableError(_not_cancellable_reason(notification.status), notification.status)
    return notification


def _not_cancellable_reason(status: str) -> str:
    if status == NotificationStatus.CANCELLED:
        return gettext("It was cancelled already.")
    if status in NotificationStatus.PENDING:  # scheduled here: due, and a worker holds it
        return gettext("It was not cancelled: it is already being delivered (a worker took it).")
    return gettext("It was not cancelled: it is %(status)s already.", status=status_word(status))


def get_notifications(user: User, ids: list[int]) -> list[Notification]:
    """Several of the user's notifications at once (unknown ids are left out)."""
    query = select(Notification).where(Notification.id.in_(ids))
    if not user.is_admin:
        query = query.where(Notification.owner_id == user.id)
    return list(db.session.scalars(query.order_by(Notification.id)))


def active_connections(user: User) -> list[Connection]:
    return list(
        db.session.scalars(
            select(Connection)
            .where(
                Connection.owner_id == user.id,
                Connection.status == ConnectionStatus.ACTIVE,
            )
            .order_by(Connection.label)
        )
    )


def fail_pending_notifications(connection_id: int, reason: StoredText) -> int:
    """Fail every queued or in-flight notification of a connection (no commit).

    Used when the connection dies (revoked here, or a 401 from the Notify server): its backlog
    can never be delivered, and saying so at once is better than retrying for a day.
    """
    now = utcnow()
    result = db.session.execute(
        update(Notification)
        .where(
            Notification.connection_id == connection_id,
            Notification.status.in_(NotificationStatus.PENDING),
        )
        .values(
            status=NotificationStatus.FAILED,
            **columns("last_error", reason),
            finished_at=now,
            updated_at=now,
            lease_token=None,
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount
