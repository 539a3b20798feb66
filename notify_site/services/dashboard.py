"""What a person's dashboard shows (SPEC 4.5): their connections with the last rate-limit
snapshot of each, their latest notifications, and how many they sent per hour over a day.

Every query starts from the owner and, for notifications, a time range, so that its cost
follows one person's recent rows and not the size of the table:

* connections: ``connections.owner_id`` (``ix_connections_owner_id``);
* recent notifications and the hourly counts: ``ix_notifications_owner_created``
  (``owner_id, created_at``) — the newest rows of one owner, or one owner's last 24 hours.

The hourly counts are grouped in SQL. The hour of each row comes from a ``CASE`` over the 24
hour boundaries (bound parameters), so the same statement runs on SQLite and PostgreSQL with
no date function of either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask_babel import gettext
from sqlalchemy import case, func, select
from sqlalchemy.orm import joinedload

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import Connection, Notification, NotificationStatus, User
from notify_site.services.connections import list_connections
from notify_site.services.schedules.upcoming import Upcoming, next_sends

#: The chart covers this many hours: the current one and those before it.
HOURS = 24
#: How many of the latest notifications the dashboard lists.
RECENT_LIMIT = 20
EXCERPT_CHARS = 80


@dataclass(frozen=True)
class HourlySends:
    """Notifications per hour of their creation, by what became of them, oldest hour first."""

    hours: list[datetime]
    delivered: list[int]
    failed: list[int]
    pending: list[int]

    @property
    def total_delivered(self) -> int:
        return sum(self.delivered)

    @property
    def total_failed(self) -> int:
        return sum(self.failed)

    @property
    def total_pending(self) -> int:
        return sum(self.pending)


@dataclass(frozen=True)
class Dashboard:
    """Everything one page (or one poll of its JSON) shows, read at ``now``."""

    now: datetime
    connections: list[Connection]
    notifications: list[Notification]
    hourly: HourlySends
    #: Sends of the next 24 hours: scheduled notifications and schedules' occurrences.
    upcoming: list[Upcoming]


def load_dashboard(user: User, now: datetime | None = None) -> Dashboard:
    """The user's dashboard: only their own connections and notifications, admin or not."""
    now = now or utcnow()
    return Dashboard(
        now=now,
        connections=list_connections(user),
        notifications=recent_notifications(user),
        hourly=hourly_sends(user, now),
        upcoming=next_sends(user, hours=24, now=now),
    )


def recent_notifications(user: User, limit: int = RECENT_LIMIT) -> list[Notification]:
    """The user's latest notifications, newest first, with their connections loaded."""
    return list(
        db.session.scalars(
            select(Notification)
            .where(Notification.owner_id == user.id)
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(limit)
            .options(joinedload(Notification.connection))
        )
    )


def hour_starts(now: datetime, hours: int = HOURS) -> list[datetime]:
    """The starts of the last ``hours`` whole UTC hours, the one ``now`` is in last."""
    current = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return [current - timedelta(hours=hours - 1 - index) for index in range(hours)]


def hourly_sends(user: User, now: datetime | None = None, hours: int = HOURS) -> HourlySends:
    """How many notifications the user queued in each of the last ``hours`` hours (by
    ``created_at``), split into delivered, failed and still pending (queued or sending)."""
    starts = hour_starts(now or utcnow(), hours)
    end = starts[-1] + timedelta(hours=1)
    # The first boundary a row is before names its hour; rows of the last hour fall through.
    bucket = case(
        *[(Notification.created_at < edge, index) for index, edge in enumerate(starts[1:])],
        else_=hours - 1,
    )
    rows = (
        select(bucket.label("hour"), Notification.status.label("status"))
        .where(
            Notification.owner_id == user.id,
            Notification.created_at >= starts[0],
            Notification.created_at < end,
        )
        .subquery()
    )
    counts = db.session.execute(
        select(rows.c.hour, rows.c.status, func.count()).group_by(rows.c.hour, rows.c.status)
    )
    series = {outcome: [0] * hours for outcome in ("delivered", "failed", "pending")}
    for hour, status, count in counts:
        if status == NotificationStatus.DELIVERED:
            outcome = "delivered"
        elif status == NotificationStatus.FAILED:
            outcome = "failed"
        else:
            outcome = "pending"
        series[outcome][hour] += count
    return HourlySends(hours=starts, **series)


def countdown_text(reset_at: datetime | None, now: datetime) -> str:
    """The countdown's text: ``resets in 12:34`` until ``reset_at``, then ``window reset``
    (dashboard.js ticks it on from there)."""
    if reset_at is None:
        return gettext("reset time unknown")
    # Rounded up, as dashboard.js does: "0:01" is shown until the very second of the reset.
    seconds = math.ceil((reset_at - now).total_seconds())
    if seconds <= 0:
        return gettext("window reset")
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
    return gettext("resets in %(clock)s", clock=clock)


def excerpt(message: str, length: int = EXCERPT_CHARS) -> str:
    """The start of a message on one line, with an ellipsis when cut."""
    flat = " ".join(message.split())
    return flat if len(flat) <= length else flat[: length - 1].rstrip() + "…"
