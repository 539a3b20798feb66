"""The admin's lists of notifications in trouble (SPEC 4.5): failed in the last 24 hours, and
stuck (sending under a lease that ran out long ago, or queued and overdue).

Each list is made of *parts*, each one range of an index read in that index's order:

- recent failures: ``ix_notifications_status_finished`` (status, finished_at);
- stuck rows: ``ix_notifications_due`` (status, next_attempt_at).

A page is read part after part (:func:`_concatenated_page`), with a deferred join: the
page's ids from the index alone, then only those rows, joined to their owners and chats.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import (
    Connection,
    ConnectionStatus,
    Notification,
    NotificationStatus,
    User,
)
from notify_site.services.admin.common import CappedCount, Owner, capped_count
from notify_site.services.notifications import ConnectionRef
from notify_site.services.paging import Page, page_offset

NOTIFICATIONS_PER_PAGE = 25
# A queued row still not picked up this long after it was due is stuck (no worker running,
# or none can reach it). A row waiting for its rate-limit window has a later due time.
STUCK_AFTER = timedelta(minutes=10)
# A live worker renews its lease long before it expires (delivery.renew_lease), and any worker
# claims an expired row again within a poll; a row this long past its lease was abandoned.
LEASE_GRACE = timedelta(minutes=2)
FAILED_WINDOW = timedelta(hours=24)
MESSAGE_EXCERPT_CHARS = 120
NOTIFICATION_LISTS = ("stuck", "failed")


class Problem:
    """Why a notification is on the admin's list."""

    FAILED = "failed"
    LEASE_EXPIRED = "lease_expired"  # sending, but its worker's lease ran out long ago
    OVERDUE = "overdue"  # queued, due long ago, and no worker took it


@dataclass(frozen=True)
class AdminNotification:
    """A failed or stuck notification as the admin list shows it.

    ``message`` is its first :data:`MESSAGE_EXCERPT_CHARS` characters. The attributes are
    named as :class:`~notify_site.models.Notification`'s, so the one notification serialiser
    (:mod:`notify_site.serialisers`) reads either.
    """

    id: int
    owner: Owner
    connection: ConnectionRef
    status: str
    attempts: int
    last_error: str | None
    last_error_code: str | None
    last_error_params: dict | None
    last_status_code: int | None
    message: str
    created_at: datetime
    next_attempt_at: datetime
    lease_expires_at: datetime | None
    finished_at: datetime | None

    @property
    def problem(self) -> str:
        if self.status == NotificationStatus.FAILED:
            return Problem.FAILED
        if self.status == NotificationStatus.SENDING:
            return Problem.LEASE_EXPIRED
        return Problem.OVERDUE

    @property
    def since(self) -> datetime | None:
        """When the problem began: failure time, lease expiry, or due time."""
        if self.status == NotificationStatus.FAILED:
            return self.finished_at
        if self.status == NotificationStatus.SENDING:
            return self.lease_expires_at
        return self.next_attempt_at

    @property
    def can_retry(self) -> bool:
        return (
            self.status == NotificationStatus.FAILED
            and self.connection.status == ConnectionStatus.ACTIVE
        )

    @property
    def can_cancel(self) -> bool:
        return self.status in NotificationStatus.PENDING


_NOTIFICATION_COLUMNS = (
    Notification.id,
    Notification.owner_id,
    User.username,
    Notification.connection_id,
    Connection.label,
    Connection.status,
    Notification.status,
    Notification.attempts,
    Notification.last_error,
    Notification.last_error_code,
    Notification.last_error_params,
    Notification.last_status_code,
    func.substr(Notification.message, 1, MESSAGE_EXCERPT_CHARS),
    Notification.created_at,
    Notification.next_attempt_at,
    Notification.lease_expires_at,
    Notification.finished_at,
)


def _admin_notification(row) -> AdminNotification:
    row_id, owner_id, username, connection_id, label, connection_status, *rest = row
    return AdminNotification(
        row_id,
        Owner(owner_id, username),
        ConnectionRef(connection_id, label, connection_status),
        *rest,
    )


@dataclass(frozen=True)
class Part:
    """One indexed range of a list made of several: its conditions and its order."""

    conditions: tuple
    order_by: tuple


def failed_recently(now: datetime) -> Part:
    """Failed in the last :data:`FAILED_WINDOW`, newest first (ix_notifications_status_finished)."""
    return Part(
        (
            Notification.status == NotificationStatus.FAILED,
            Notification.finished_at >= now - FAILED_WINDOW,
        ),
        (Notification.finished_at.desc(), Notification.id.desc()),
    )


def stuck_sending(now: datetime) -> Part:
    """Sending, with a lease that ran out over :data:`LEASE_GRACE` ago (or none at all).

    In the order of ``ix_notifications_due`` (status, next_attempt_at): ordered by id alone,
    the planner may walk the whole table in id order looking for the few sending rows.
    """
    return Part(
        (
            Notification.status == NotificationStatus.SENDING,
            or_(
                Notification.lease_expires_at.is_(None),
                Notification.lease_expires_at < now - LEASE_GRACE,
            ),
        ),
        (Notification.next_attempt_at.asc(), Notification.id.asc()),
    )


def stuck_queued(now: datetime) -> Part:
    """Queued and due over :data:`STUCK_AFTER` ago, longest overdue first (ix_notifications_due)."""
    return Part(
        (
            Notification.status == NotificationStatus.QUEUED,
            Notification.next_attempt_at < now - STUCK_AFTER,
        ),
        (Notification.next_attempt_at.asc(), Notification.id.asc()),
    )


def _notification_rows(part: Part, limit: int, offset: int) -> list[AdminNotification]:
    # A deferred join, as for connections: the page's ids from the index, then those rows.
    page_ids = (
        select(Notification.id)
        .where(*part.conditions)
        .order_by(*part.order_by)
        .limit(limit)
        .offset(offset)
    )
    rows = db.session.execute(
        select(*_NOTIFICATION_COLUMNS)
        .join(User, User.id == Notification.owner_id)
        .join(Connection, Connection.id == Notification.connection_id)
        .where(Notification.id.in_(page_ids.scalar_subquery()))
        .order_by(*part.order_by)
    ).all()
    return [_admin_notification(row) for row in rows]


def _concatenated_page(parts: list[Part], page: int, per_page: int) -> Page[AdminNotification]:
    """A page of the parts one after the other, each read along its own index.

    A part whose count was capped is treated as endless: the parts after it are not reached
    (nobody pages through 10,000 rows to find them; the summary counts them).
    """
    offset = page_offset(page, per_page)
    items: list[AdminNotification] = []
    total = CappedCount(0)
    reachable = True
    for part in parts:
        count = capped_count(part.conditions)
        total = total + count
        if not reachable:
            continue
        wanted = per_page - len(items)
        if wanted > 0 and (offset < count.count or count.capped):
            items.extend(_notification_rows(part, wanted, offset))
            offset = 0
        else:
            offset = max(offset - count.count, 0)
        reachable = not count.capped
    return Page(
        items=items,
        page=page,
        per_page=per_page,
        total=total.count,
        total_capped=total.capped,
    )


def list_problem_notifications(
    kind: str,
    *,
    page: int = 1,
    per_page: int = NOTIFICATIONS_PER_PAGE,
    now: datetime | None = None,
) -> Page[AdminNotification]:
    """``"failed"``: failed in the last 24 h, newest first. ``"stuck"``: sending rows whose lease
    ran out, then queued rows overdue by over 10 minutes; each the longest overdue first."""
    now = now or utcnow()
    if kind == "failed":
        parts = [failed_recently(now)]
    elif kind == "stuck":
        parts = [stuck_sending(now), stuck_queued(now)]
    else:
        raise ValueError(f"unknown list {kind!r}")
    return _concatenated_page(parts, page, per_page)
