"""The admin's chart: deliveries and failures per hour, by the time each notification
finished (UTC), over the last 24 or 48 hours.

Each count is a range of ``ix_notifications_status_finished`` (status, finished_at). The
counts of hours that are over are kept per process for a few minutes (:class:`_ClosedHours`),
so a page view usually counts only the current hour.
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select

from notify_site.db_types import UTCDateTime, utcnow
from notify_site.extensions import db
from notify_site.models import Notification, NotificationStatus

CHART_HOURS = (24, 48)
# Counts of hours that are over are kept this long per process (see _ClosedHours) ...
CLOSED_HOUR_TTL = timedelta(minutes=5)
# ... once the hour has been over this long (a worker's finish may still be committing).
CLOSED_HOUR_MARGIN = timedelta(minutes=2)


@dataclass(frozen=True)
class HourlyChart:
    """Deliveries and failures per hour, by the time each notification finished (UTC)."""

    hours: list[datetime]  # the start of each hour, oldest first; the last one is under way
    delivered: list[int]
    failed: list[int]


@functools.lru_cache(maxsize=64)
def _hour_counts_statement(buckets: int):
    """``2 × buckets`` scalar counts in one SELECT: delivered, then failed, per bucket.

    Bucket n spans parameters ``start{n}`` to ``end{n}``. Built once per number of buckets:
    constructing a hundred subqueries costs more than running them.
    """
    starts = [bindparam(f"start{n}", type_=UTCDateTime) for n in range(buckets)]
    ends = [bindparam(f"end{n}", type_=UTCDateTime) for n in range(buckets)]

    def counts(status: str) -> list:
        return [
            select(func.count())
            .where(
                Notification.status == status,
                Notification.finished_at >= starts[n],
                Notification.finished_at < ends[n],
            )
            .scalar_subquery()
            for n in range(buckets)
        ]

    return select(*counts(NotificationStatus.DELIVERED), *counts(NotificationStatus.FAILED))


class _ClosedHours:
    """Counts of hours that are over, kept for :data:`CLOSED_HOUR_TTL` per process.

    Rows finish "now", so an hour's counts stop growing once it is over (after
    :data:`CLOSED_HOUR_MARGIN`, for a worker's commit still under way). Only a retry takes a
    failed row out of its past hour: :func:`.actions.retry_notification` forgets this
    process's counts; other processes catch up within the TTL. Keyed by database, so apps
    never mix figures.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, datetime], tuple[int, int, float]] = {}

    def get(self, database: str, hour: datetime) -> tuple[int, int] | None:
        with self._lock:
            found = self._counts.get((database, hour))
        if found is None or time.monotonic() - found[2] > CLOSED_HOUR_TTL.total_seconds():
            return None
        return found[0], found[1]

    def put(self, database: str, hour: datetime, delivered: int, failed: int) -> None:
        with self._lock:
            if len(self._counts) > 10_000:  # many databases (tests): start afresh
                self._counts.clear()
            self._counts[(database, hour)] = (delivered, failed, time.monotonic())

    def forget(self, database: str) -> None:
        with self._lock:
            for key in [key for key in self._counts if key[0] == database]:
                del self._counts[key]


_closed_hours = _ClosedHours()


def _database_key() -> str:
    return str(db.session.get_bind().url)


def forget_closed_hours() -> None:
    """Drop this process's cached counts for the current database (see :class:`_ClosedHours`)."""
    _closed_hours.forget(_database_key())


def deliveries_per_hour(hours: int = 24, *, now: datetime | None = None) -> HourlyChart:
    """Delivered and failed notifications per hour over the last ``hours`` hours (UTC).

    Each count is a range of ``ix_notifications_status_finished`` (a status, one hour of
    finished_at) counted inside the index, all in one statement; hours that are over come from
    :class:`_ClosedHours` when they can, so a page view usually counts only the current hour.
    (Grouping by an hour computed from every row is several times slower: the expression runs
    for each row, then a sort; and it is written differently for SQLite and PostgreSQL.)
    """
    if hours not in CHART_HOURS:
        raise ValueError(f"hours must be one of {CHART_HOURS}")
    now = now or utcnow()
    current = now.replace(minute=0, second=0, microsecond=0)
    starts = [current - timedelta(hours=hours - 1 - n) for n in range(hours)]
    closed_before = utcnow() - CLOSED_HOUR_MARGIN
    database = _database_key()
    counts: dict[datetime, tuple[int, int]] = {}
    for start in starts:
        if start + timedelta(hours=1) <= closed_before:
            cached = _closed_hours.get(database, start)
            if cached is not None:
                counts[start] = cached
    missing = [start for start in starts if start not in counts]
    if missing:
        parameters = {}
        for n, start in enumerate(missing):
            parameters[f"start{n}"] = start
            parameters[f"end{n}"] = start + timedelta(hours=1)
        row = db.session.execute(_hour_counts_statement(len(missing)), parameters).one()
        for n, start in enumerate(missing):
            counts[start] = (int(row[n]), int(row[len(missing) + n]))
            if start + timedelta(hours=1) <= closed_before:
                _closed_hours.put(database, start, *counts[start])
    return HourlyChart(
        hours=starts,
        delivered=[counts[start][0] for start in starts],
        failed=[counts[start][1] for start in starts],
    )
