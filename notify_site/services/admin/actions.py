"""The two things an admin may do to a notification: retry a failed one, cancel a pending one.

Each is one short transaction around one conditional UPDATE: the row changes only if it is
still in the state the admin saw, so a row delivered (or claimed by a worker) meanwhile is left
alone, and the answer says why (:func:`_refusal` reads it back).
"""

from __future__ import annotations

import logging

from flask_babel import gettext
from sqlalchemy import and_, exists, or_, select, update

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.i18n import status_word, time_text
from notify_site.models import (
    Connection,
    ConnectionStatus,
    Notification,
    NotificationStatus,
    User,
)
from notify_site.services import ServiceError
from notify_site.services.admin.chart import forget_closed_hours
from notify_site.services.notifications import NotificationNotFoundError
from notify_site.stored_text import columns, site_text

log = logging.getLogger(__name__)

CANCELLED_BY_ADMIN = site_text("cancelled_by_admin")


class NotificationActionError(ServiceError):
    """A retry or cancel that cannot be done (the message says why)."""


def _refusal(notification_id: int, action: str) -> ServiceError:
    """Why a conditional UPDATE changed nothing, read back after the fact."""
    row = db.session.execute(
        select(
            Notification.status,
            Notification.lease_expires_at,
            Connection.label,
            Connection.status,
        )
        .join(Connection, Connection.id == Notification.connection_id)
        .where(Notification.id == notification_id)
    ).one_or_none()
    db.session.rollback()
    if row is None:
        return NotificationNotFoundError(
            gettext("There is no notification %(id)s.", id=notification_id)
        )
    status, lease_expires_at, label, connection_status = row
    if action == "retry":
        if status != NotificationStatus.FAILED:
            return NotificationActionError(
                gettext(
                    "Notification %(id)s is %(status)s now; only a failed one can be retried.",
                    id=notification_id,
                    status=status_word(status),
                )
            )
        if connection_status == ConnectionStatus.UNREACHABLE:
            return NotificationActionError(
                gettext(
                    "Notification %(id)s cannot be retried: the chat of “%(label)s” blocked "
                    "the bot or removed it from the group. Once it is back, the owner can press "
                    "Refresh.",
                    id=notification_id,
                    label=label,
                )
            )
        return NotificationActionError(
            gettext(
                "Notification %(id)s cannot be retried: its connection “%(label)s” is "
                "%(status)s. The owner has to connect the chat again.",
                id=notification_id,
                label=label,
                status=status_word(connection_status),
            )
        )
    if status == NotificationStatus.SENDING:
        until = time_text(lease_expires_at, "time") if lease_expires_at else gettext("soon")
        return NotificationActionError(
            gettext(
                "Notification %(id)s is being delivered right now; "
                "it can be cancelled if its worker's lease runs out (%(until)s).",
                id=notification_id,
                until=until,
            )
        )
    return NotificationActionError(
        gettext(
            "Notification %(id)s is already %(status)s; there is nothing to cancel.",
            id=notification_id,
            status=status_word(status),
        )
    )


def _transition(notification_id: int, action: str, condition, **values) -> None:
    """Move one notification on, if ``condition`` still holds, and commit; else refuse.

    One conditional UPDATE decides (a worker or another admin may act at the same moment); any
    lease is dropped with it. When nothing changed, :func:`_refusal` reads back why.
    """
    changed = db.session.execute(
        update(Notification)
        .where(Notification.id == notification_id, condition)
        .values(lease_token=None, lease_expires_at=None, **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        raise _refusal(notification_id, action)
    db.session.commit()


def retry_notification(admin: User, notification_id: int) -> None:
    """Put a failed notification back in the queue, due now.

    Its attempts and last error stay as they were (the next attempt overwrites the error), so
    a row that used up its attempts gets exactly one more. Only a row that is still failed and
    whose connection is active changes; otherwise :class:`NotificationActionError` says why.
    """
    now = utcnow()
    connection_active = exists().where(
        Connection.id == Notification.connection_id,
        Connection.status == ConnectionStatus.ACTIVE,
    )
    _transition(
        notification_id,
        "retry",
        and_(Notification.status == NotificationStatus.FAILED, connection_active),
        status=NotificationStatus.QUEUED,
        next_attempt_at=now,
        finished_at=None,
        updated_at=now,
    )
    forget_closed_hours()  # the row left its past hour of the chart
    log.info("admin %s retried notification %s", admin.username, notification_id)


def cancel_notification(admin: User, notification_id: int) -> None:
    """Fail a pending notification with "cancelled by an admin".

    A queued row is cancelled at once. A sending row only once its worker's lease has run out:
    while a worker holds it, the call may be on the wire, and the worker's fenced finish would
    be discarded even though the message went out.
    """
    now = utcnow()
    pending = or_(
        Notification.status == NotificationStatus.QUEUED,
        and_(
            Notification.status == NotificationStatus.SENDING,
            or_(Notification.lease_expires_at.is_(None), Notification.lease_expires_at < now),
        ),
    )
    _transition(
        notification_id,
        "cancel",
        pending,
        status=NotificationStatus.FAILED,
        **columns("last_error", CANCELLED_BY_ADMIN),
        finished_at=now,
        updated_at=now,
    )
    log.info("admin %s cancelled notification %s", admin.username, notification_id)
