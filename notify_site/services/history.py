"""Notification history (issue 20): a person's notifications, newest first, filtered by chat,
status, time and text, a page at a time — for ``GET /api/v1/notifications`` and the History
page — and the housekeeping of old rows (``NOTIFICATION_RETENTION_DAYS``).

Pages are chosen by a cursor, not a page number: the cursor is the id of the last row shown,
and the next page is the rows with a smaller id. Rows that arrive while someone reads never
shift a page, and each page is one index range, however deep.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from notify_site.extensions import db
from notify_site.models import Notification, NotificationStatus, User
from notify_site.plain_text import read_number

PER_PAGE_DEFAULT = 50
PER_PAGE_MAX = 200
STATUSES = (
    NotificationStatus.SCHEDULED,
    NotificationStatus.QUEUED,
    NotificationStatus.SENDING,
    NotificationStatus.DELIVERED,
    NotificationStatus.FAILED,
    NotificationStatus.CANCELLED,
)


@dataclass(frozen=True)
class HistoryFilter:
    """What to show: every field is optional; ``text`` is found anywhere in the message,
    whatever its case; ``since`` is inclusive and ``until`` exclusive (aware datetimes)."""

    connection_id: int | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None


@dataclass(frozen=True)
class HistoryPage:
    items: list[Notification]
    #: The cursor of the next (older) page; None on the last page.
    next_cursor: str | None


class BadCursorError(ValueError):
    """A cursor this service did not give."""


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def history(
    user: User,
    wanted: HistoryFilter,
    *,
    cursor: str | None = None,
    per_page: int = PER_PAGE_DEFAULT,
    everyone: bool = False,
) -> HistoryPage:
    """One page of ``user``'s notifications (``everyone``: an admin's key sees every
    account's), newest first, after ``cursor``."""
    query = select(Notification)
    if not (everyone and user.is_admin):
        query = query.where(Notification.owner_id == user.id)
    if cursor:
        before = read_number(cursor)
        if before is None:
            raise BadCursorError(cursor)
        query = query.where(Notification.id < before)
    if wanted.connection_id is not None:
        query = query.where(Notification.connection_id == wanted.connection_id)
    if wanted.status:
        query = query.where(Notification.status == wanted.status)
    if wanted.since is not None:
        query = query.where(Notification.created_at >= wanted.since)
    if wanted.until is not None:
        query = query.where(Notification.created_at < wanted.until)
    if wanted.text:
        query = query.where(Notification.message.ilike(_like_pattern(wanted.text), escape="\\"))
    per_page = max(1, min(per_page, PER_PAGE_MAX))
    rows = list(db.session.scalars(query.order_by(Notification.id.desc()).limit(per_page + 1)))
    more = len(rows) > per_page
    items = rows[:per_page]
    return HistoryPage(items, str(items[-1].id) if more and items else None)
