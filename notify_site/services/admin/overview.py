"""The figures at the top of the admin page: the queue by state, stuck and recently failed
notifications, the connections by quota, and the chart (SPEC 4.5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import Connection, ConnectionStatus, Notification, NotificationStatus
from notify_site.services.admin import common
from notify_site.services.admin.chart import HourlyChart, deliveries_per_hour
from notify_site.services.admin.common import CappedCount, capped, capped_count_query
from notify_site.services.admin.problems import failed_recently, stuck_queued, stuck_sending


@dataclass(frozen=True)
class Summary:
    """The admin page's figures at ``generated_at``; counts over notifications stop at
    ``count_cap`` (see :mod:`.common`)."""

    generated_at: datetime
    chart: HourlyChart
    queued: CappedCount
    sending: CappedCount
    #: Notifications waiting for a send-later time (not yet due or not yet claimed).
    scheduled: CappedCount
    stuck: CappedCount
    failed_recently: CappedCount
    #: Accepted by the Notify server but not delivered yet (services/remote_pending.py).
    at_server: CappedCount
    connections_total: int
    connections_active: int
    connections_out_of_calls: int
    connections_unknown_quota: int
    count_cap: int

    @property
    def delivered_in_window(self) -> int:
        return sum(self.chart.delivered)

    @property
    def failed_in_window(self) -> int:
        return sum(self.chart.failed)


def summary(hours: int = 24, *, now: datetime | None = None) -> Summary:
    """The figures at the top of the admin page, and the chart.

    The ten counts go in one statement of scalar subqueries (one round trip, each its own
    index range), the chart in another.
    """
    now = now or utcnow()

    def connections(*conditions):
        return select(func.count()).select_from(Connection).where(*conditions).scalar_subquery()

    row = db.session.execute(
        select(
            capped_count_query((Notification.status == NotificationStatus.QUEUED,)),
            capped_count_query((Notification.status == NotificationStatus.SENDING,)),
            capped_count_query((Notification.status == NotificationStatus.SCHEDULED,)),
            capped_count_query(stuck_sending(now).conditions),
            capped_count_query(stuck_queued(now).conditions),
            capped_count_query(failed_recently(now).conditions),
            capped_count_query((Notification.status == NotificationStatus.AT_SERVER,)),
            connections(),
            connections(Connection.status == ConnectionStatus.ACTIVE),
            connections(Connection.rate_remaining == 0),
            connections(Connection.rate_remaining.is_(None)),
        )
    ).one()
    (
        queued,
        sending,
        scheduled,
        stuck_sending_rows,
        stuck_queued_rows,
        failed,
        at_server,
        *counts,
    ) = row
    return Summary(
        generated_at=now,
        chart=deliveries_per_hour(hours, now=now),
        queued=capped(queued),
        sending=capped(sending),
        scheduled=capped(scheduled),
        stuck=capped(stuck_sending_rows) + capped(stuck_queued_rows),
        failed_recently=capped(failed),
        at_server=capped(at_server),
        connections_total=counts[0],
        connections_active=counts[1],
        connections_out_of_calls=counts[2],
        connections_unknown_quota=counts[3],
        count_cap=common.COUNT_CAP,
    )
