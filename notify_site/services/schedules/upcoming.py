"""What is coming: a person's scheduled notifications (the Scheduled page), and the next
hours of sends, scheduled rows and schedules' occurrences together (the dashboard)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import (
    Notification,
    NotificationStatus,
    Schedule,
    ScheduleStatus,
    User,
)
from notify_site.services.paging import Page, count_rows, page_offset
from notify_site.services.schedules.manage import rule_of


def scheduled_notifications(user: User, *, page: int = 1, per_page: int = 50) -> Page[Notification]:
    """The user's notifications waiting to be sent later, soonest first, a page at a time
    (along ``ix_notifications_owner_status_due``)."""
    query = select(Notification).where(
        Notification.owner_id == user.id,
        Notification.status == NotificationStatus.SCHEDULED,
    )
    items = list(
        db.session.scalars(
            query.options(joinedload(Notification.connection))
            .order_by(Notification.next_attempt_at, Notification.id)
            .limit(per_page)
            .offset(page_offset(page, per_page))
        )
    )
    return Page(items, page, per_page, count_rows(query))


@dataclass(frozen=True)
class Upcoming:
    """One send to come: when, what (an excerpt), where, and from what (a scheduled
    notification, or a schedule)."""

    at: datetime
    message: str
    chats: list[str]
    notification_id: int | None = None
    schedule_id: int | None = None
    schedule_name: str | None = None


def next_sends(
    user: User, hours: int = 24, limit: int = 20, now: datetime | None = None
) -> list[Upcoming]:
    """The user's sends in the next ``hours``, soonest first, at most ``limit``."""
    now = now or utcnow()
    until = now + timedelta(hours=hours)
    found: list[Upcoming] = [
        Upcoming(row.next_attempt_at, row.message, [row.connection.label], notification_id=row.id)
        for row in db.session.scalars(
            select(Notification)
            .options(joinedload(Notification.connection))
            .where(
                Notification.owner_id == user.id,
                Notification.status == NotificationStatus.SCHEDULED,
                Notification.next_attempt_at <= until,
            )
            .order_by(Notification.next_attempt_at)
            .limit(limit)
        )
    ]
    schedules = db.session.scalars(
        select(Schedule).where(
            Schedule.owner_id == user.id,
            Schedule.status == ScheduleStatus.ACTIVE,
            Schedule.next_run_at <= until,
        )
    )
    for schedule in schedules:
        chats = [connection.label for connection in schedule.connections]
        for at in rule_of(schedule).next(now, limit):
            if at > until:
                break
            found.append(
                Upcoming(
                    at,
                    schedule.message,
                    chats,
                    schedule_id=schedule.id,
                    schedule_name=schedule.name,
                )
            )
    found.sort(key=lambda item: item.at)
    return found[:limit]
