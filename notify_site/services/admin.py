"""What the admin pages show and do (SPEC 4.5): every connection, lowest remaining first; failed
and stuck notifications; API keys and their use; deliveries and failures per hour; and the two
things an admin may do to a notification, retry it and cancel it.

Sized for 10,000 connections and 1,000,000 notifications. Every list is one page of an indexed
order (LIMIT/OFFSET along an index), never a sort of the whole table, and a *deferred join*:
the page's ids come from the index alone, then only those rows are read and joined, so a deep
page skips index entries, not rows.

- connections: ``ix_connections_rate_remaining`` (rate_remaining, id) gives "lowest remaining
  first, unknown last" on both databases (PostgreSQL sorts NULLs last in an ascending index;
  SQLite walks the index's non-NULL part, then its NULL part); ``ix_connections_status_remaining``
  the same within one status;
- recent failures and the hourly chart: ``ix_notifications_status_finished`` (status,
  finished_at), range scans per status (the chart's past hours are cached, see
  :class:`_ClosedHours`);
- stuck rows: ``ix_notifications_due`` (status, next_attempt_at);
- API key volumes: ``ix_notifications_api_key_id``, counted for the page's keys only.

Counts over notifications stop at :data:`COUNT_CAP` (``capped`` says so, and the pages show
"10,000+"): a day of failures is counted exactly, a backlog of a million queued rows is not
counted at every page view.

Retry and cancel are each one short transaction around one conditional UPDATE: the row changes
only if it is still in the state the admin saw, so a row delivered (or claimed by a worker)
meanwhile is left alone, and the answer says why.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from flask_babel import gettext
from sqlalchemy import (
    and_,
    bindparam,
    exists,
    func,
    literal_column,
    nulls_last,
    or_,
    select,
    update,
)

from notify_site import stored_text
from notify_site.db_types import UTCDateTime, utcnow
from notify_site.extensions import db
from notify_site.i18n import status_word, time_text
from notify_site.models import (
    ApiKey,
    Connection,
    ConnectionStatus,
    Notification,
    NotificationStatus,
    User,
)
from notify_site.services import ServiceError
from notify_site.stored_text import columns, site_text

log = logging.getLogger(__name__)

CONNECTIONS_PER_PAGE = 50
NOTIFICATIONS_PER_PAGE = 25
API_KEYS_PER_PAGE = 25
# Counting stops here: beyond it the pages say "10,000+" rather than scan a huge backlog.
COUNT_CAP = 10_000
# A queued row still not picked up this long after it was due is stuck (no worker running,
# or none can reach it). A row waiting for its rate-limit window has a later due time.
STUCK_AFTER = timedelta(minutes=10)
# A live worker renews its lease long before it expires (delivery.renew_lease), and any worker
# claims an expired row again within a poll; a row this long past its lease was abandoned.
LEASE_GRACE = timedelta(minutes=2)
FAILED_WINDOW = timedelta(hours=24)
CHART_HOURS = (24, 48)
# Counts of hours that are over are kept this long per process (see _ClosedHours) ...
CLOSED_HOUR_TTL = timedelta(minutes=5)
# ... once the hour has been over this long (a worker's finish may still be committing).
CLOSED_HOUR_MARGIN = timedelta(minutes=2)
MESSAGE_EXCERPT_CHARS = 120
CANCELLED_BY_ADMIN = site_text("cancelled_by_admin")
CONNECTION_STATUSES = (
    ConnectionStatus.ACTIVE,
    ConnectionStatus.UNREACHABLE,
    ConnectionStatus.REVOKED,
    ConnectionStatus.ERROR,
)

T = TypeVar("T")


class NotificationActionError(ServiceError):
    """A retry or cancel that cannot be done (the message says why)."""


class NotificationNotFoundError(ServiceError):
    """No notification has that id."""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _epoch(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


@dataclass(frozen=True)
class CappedCount:
    """A count that stopped at :data:`COUNT_CAP`; ``capped`` means "at least ``count``"."""

    count: int
    capped: bool = False

    def __add__(self, other: CappedCount) -> CappedCount:
        return CappedCount(self.count + other.count, self.capped or other.capped)

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "capped": self.capped}


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list. When ``total_capped``, ``total`` is a lower bound."""

    items: list[T]
    page: int
    per_page: int
    total: int
    total_capped: bool = False

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        if self.total_capped and len(self.items) == self.per_page:
            return True
        return self.page < self.pages

    def meta(self) -> dict[str, Any]:
        return {
            "page": self.page,
            "per_page": self.per_page,
            "total": self.total,
            "total_capped": self.total_capped,
            "pages": self.pages,
            "has_next": self.has_next,
        }


# --- connections ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AdminConnection:
    """A connection as the admin list shows it (never its token)."""

    id: int
    owner_id: int
    owner: str
    label: str
    target_name: str | None
    target_type: str | None
    status: str
    status_detail: str | None
    status_detail_code: str | None
    status_detail_params: dict | None
    rate_limit: int | None
    rate_remaining: int | None
    rate_image_limit: int | None
    rate_image_remaining: int | None
    rate_reset_at: datetime | None
    rate_checked_at: datetime | None
    rate_checked_by: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "owner": {"id": self.owner_id, "username": self.owner},
            "label": self.label,
            "target": self.target_name,
            "target_type": self.target_type,
            "status": self.status,
            "status_detail": self.status_detail,
            "status_detail_text": stored_text.shown_column(self, "status_detail"),
            "rate_limit": {
                "limit": self.rate_limit,
                "remaining": self.rate_remaining,
                "image_limit": self.rate_image_limit,
                "image_remaining": self.rate_image_remaining,
                "reset": _iso(self.rate_reset_at),
                "reset_epoch": _epoch(self.rate_reset_at),
                "checked_at": _iso(self.rate_checked_at),
                "checked_by": self.rate_checked_by,
            },
        }


_CONNECTION_COLUMNS = (
    Connection.id,
    Connection.owner_id,
    User.username,
    Connection.label,
    Connection.target_name,
    Connection.target_type,
    Connection.status,
    Connection.status_detail,
    Connection.status_detail_code,
    Connection.status_detail_params,
    Connection.rate_limit,
    Connection.rate_remaining,
    Connection.rate_image_limit,
    Connection.rate_image_remaining,
    Connection.rate_reset_at,
    Connection.rate_checked_at,
    Connection.rate_checked_by,
)


def _page_offset(page: int, per_page: int) -> int:
    return (max(page, 1) - 1) * per_page


def list_connections(
    *,
    username: str | None = None,
    status: str | None = None,
    page: int = 1,
    per_page: int = CONNECTIONS_PER_PAGE,
) -> Page[AdminConnection]:
    """Every connection, lowest calls remaining first and never-checked ones last, by id.

    ``username`` keeps one owner's connections (an unknown name matches nothing); ``status``
    keeps one of :data:`CONNECTION_STATUSES`. The total is exact: 10,000 rows count quickly.
    """
    conditions = []
    if username:
        owner_id = select(User.id).where(User.username == username).scalar_subquery()
        conditions.append(Connection.owner_id == owner_id)
    if status:
        conditions.append(Connection.status == status)
    order = (nulls_last(Connection.rate_remaining.asc()), Connection.id.asc())
    total = db.session.scalar(select(func.count()).select_from(Connection).where(*conditions))
    # A deferred join: the page's ids come from the index alone (the rows skipped by OFFSET
    # are never read), then only those 50 rows are read and joined to their owners.
    page_ids = (
        select(Connection.id)
        .where(*conditions)
        .order_by(*order)
        .limit(per_page)
        .offset(_page_offset(page, per_page))
    )
    rows = db.session.execute(
        select(*_CONNECTION_COLUMNS)
        .join(User, User.id == Connection.owner_id)
        .where(Connection.id.in_(page_ids.scalar_subquery()))
        .order_by(*order)
    ).all()
    return Page(
        items=[AdminConnection(*row) for row in rows],
        page=page,
        per_page=per_page,
        total=total or 0,
    )


# --- failed and stuck notifications --------------------------------------------------------


class Problem:
    """Why a notification is on the admin's list."""

    FAILED = "failed"
    LEASE_EXPIRED = "lease_expired"  # sending, but its worker's lease ran out long ago
    OVERDUE = "overdue"  # queued, due long ago, and no worker took it


@dataclass(frozen=True)
class AdminNotification:
    """A failed or stuck notification as the admin list shows it."""

    id: int
    owner_id: int
    owner: str
    connection_id: int
    connection_label: str
    connection_status: str
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
            and self.connection_status == ConnectionStatus.ACTIVE
        )

    @property
    def can_cancel(self) -> bool:
        return self.status in NotificationStatus.PENDING

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "owner": {"id": self.owner_id, "username": self.owner},
            "connection": {
                "id": self.connection_id,
                "label": self.connection_label,
                "status": self.connection_status,
            },
            "status": self.status,
            "problem": self.problem,
            "since": _iso(self.since),
            "attempts": self.attempts,
            "last_error": self.last_error,
            "last_error_text": stored_text.shown_column(self, "last_error"),
            "last_status_code": self.last_status_code,
            "message": self.message,
            "created_at": _iso(self.created_at),
            "next_attempt_at": _iso(self.next_attempt_at),
            "lease_expires_at": _iso(self.lease_expires_at),
            "finished_at": _iso(self.finished_at),
            "can_retry": self.can_retry,
            "can_cancel": self.can_cancel,
        }


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


@dataclass(frozen=True)
class _Part:
    """One indexed range of a list made of several: its conditions and its order."""

    conditions: tuple
    order_by: tuple


def failed_recently(now: datetime) -> _Part:
    """Failed in the last :data:`FAILED_WINDOW`, newest first (ix_notifications_status_finished)."""
    return _Part(
        (
            Notification.status == NotificationStatus.FAILED,
            Notification.finished_at >= now - FAILED_WINDOW,
        ),
        (Notification.finished_at.desc(), Notification.id.desc()),
    )


def stuck_sending(now: datetime) -> _Part:
    """Sending, with a lease that ran out over :data:`LEASE_GRACE` ago (or none at all).

    In the order of ``ix_notifications_due`` (status, next_attempt_at): ordered by id alone,
    the planner may walk the whole table in id order looking for the few sending rows.
    """
    return _Part(
        (
            Notification.status == NotificationStatus.SENDING,
            or_(
                Notification.lease_expires_at.is_(None),
                Notification.lease_expires_at < now - LEASE_GRACE,
            ),
        ),
        (Notification.next_attempt_at.asc(), Notification.id.asc()),
    )


def stuck_queued(now: datetime) -> _Part:
    """Queued and due over :data:`STUCK_AFTER` ago, longest overdue first (ix_notifications_due)."""
    return _Part(
        (
            Notification.status == NotificationStatus.QUEUED,
            Notification.next_attempt_at < now - STUCK_AFTER,
        ),
        (Notification.next_attempt_at.asc(), Notification.id.asc()),
    )


def _capped_count_query(conditions: tuple):
    """A scalar subquery: how many notifications match, reading at most COUNT_CAP + 1 entries."""
    limited = (
        select(literal_column("1"))
        .select_from(Notification)
        .where(*conditions)
        .limit(COUNT_CAP + 1)
        .subquery()
    )
    return select(func.count()).select_from(limited).scalar_subquery()


def _capped(found: int | None) -> CappedCount:
    found = found or 0
    return CappedCount(min(found, COUNT_CAP), found > COUNT_CAP)


def _capped_count(conditions: tuple) -> CappedCount:
    """How many notifications match, counting at most :data:`COUNT_CAP` + 1 index entries."""
    return _capped(db.session.scalar(select(_capped_count_query(conditions))))


def _notification_rows(part: _Part, limit: int, offset: int) -> list[AdminNotification]:
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
    return [AdminNotification(*row) for row in rows]


def _concatenated_page(parts: list[_Part], page: int, per_page: int) -> Page[AdminNotification]:
    """A page of the parts one after the other, each read along its own index.

    A part whose count was capped is treated as endless: the parts after it are not reached
    (nobody pages through 10,000 rows to find them; the summary counts them).
    """
    offset = _page_offset(page, per_page)
    items: list[AdminNotification] = []
    total = CappedCount(0)
    reachable = True
    for part in parts:
        count = _capped_count(part.conditions)
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


NOTIFICATION_LISTS = ("stuck", "failed")


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


# --- API keys ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdminApiKey:
    id: int
    name: str
    prefix: str
    owner_id: int
    owner: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    volume: int

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "owner": {"id": self.owner_id, "username": self.owner},
            "created_at": _iso(self.created_at),
            "last_used_at": _iso(self.last_used_at),
            "revoked_at": _iso(self.revoked_at),
            "active": self.is_active,
            "volume": self.volume,
        }


def list_api_keys(*, page: int = 1, per_page: int = API_KEYS_PER_PAGE) -> Page[AdminApiKey]:
    """Every key, most recently used first, with how many notifications each one queued.

    The volumes are counted for the page's keys only, in one grouped query along
    ``ix_notifications_api_key_id`` (an index-only count), after the page is chosen.
    """
    total = db.session.scalar(select(func.count()).select_from(ApiKey)) or 0
    rows = db.session.execute(
        select(
            ApiKey.id,
            ApiKey.name,
            ApiKey.prefix,
            ApiKey.owner_id,
            User.username,
            ApiKey.created_at,
            ApiKey.last_used_at,
            ApiKey.revoked_at,
        )
        .join(User, User.id == ApiKey.owner_id)
        .order_by(nulls_last(ApiKey.last_used_at.desc()), ApiKey.id.desc())
        .limit(per_page)
        .offset(_page_offset(page, per_page))
    ).all()
    ids = [row.id for row in rows]
    volumes: dict[int, int] = {}
    if ids:
        volumes = dict(
            db.session.execute(
                select(Notification.api_key_id, func.count())
                .where(Notification.api_key_id.in_(ids))
                .group_by(Notification.api_key_id)
            ).all()
        )
    return Page(
        items=[AdminApiKey(*row, volume=volumes.get(row.id, 0)) for row in rows],
        page=page,
        per_page=per_page,
        total=total,
    )


# --- the chart and the summary -------------------------------------------------------------


@dataclass(frozen=True)
class HourlyChart:
    """Deliveries and failures per hour, by the time each notification finished (UTC)."""

    hours: list[datetime]  # the start of each hour, oldest first; the last one is under way
    delivered: list[int]
    failed: list[int]

    def to_json(self) -> dict[str, Any]:
        return {
            "hours": [_iso(hour) for hour in self.hours],
            "delivered": self.delivered,
            "failed": self.failed,
        }


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
    failed row out of its past hour: :func:`retry_notification` forgets this process's counts;
    other processes catch up within the TTL. Keyed by database, so apps never mix figures.
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


@dataclass(frozen=True)
class Summary:
    generated_at: datetime
    chart: HourlyChart
    queued: CappedCount
    sending: CappedCount
    stuck: CappedCount
    failed_recently: CappedCount
    connections_total: int
    connections_active: int
    connections_out_of_calls: int
    connections_unknown_quota: int

    @property
    def delivered_in_window(self) -> int:
        return sum(self.chart.delivered)

    @property
    def failed_in_window(self) -> int:
        return sum(self.chart.failed)

    def to_json(self) -> dict[str, Any]:
        return {
            "generated_at": _iso(self.generated_at),
            "window_hours": len(self.chart.hours),
            "chart": self.chart.to_json(),
            "delivered": self.delivered_in_window,
            "failed": self.failed_in_window,
            "notifications": {
                "queued": self.queued.to_json(),
                "sending": self.sending.to_json(),
                "stuck": self.stuck.to_json(),
                "failed_24h": self.failed_recently.to_json(),
            },
            "connections": {
                "total": self.connections_total,
                "active": self.connections_active,
                "out_of_calls": self.connections_out_of_calls,
                "unknown_quota": self.connections_unknown_quota,
            },
            "count_cap": COUNT_CAP,
        }


def summary(hours: int = 24, *, now: datetime | None = None) -> Summary:
    """The figures at the top of the admin page, and the chart.

    The nine counts go in one statement of scalar subqueries (one round trip, each its own
    index range), the chart in another.
    """
    now = now or utcnow()

    def connections(*conditions):
        return select(func.count()).select_from(Connection).where(*conditions).scalar_subquery()

    row = db.session.execute(
        select(
            _capped_count_query((Notification.status == NotificationStatus.QUEUED,)),
            _capped_count_query((Notification.status == NotificationStatus.SENDING,)),
            _capped_count_query(stuck_sending(now).conditions),
            _capped_count_query(stuck_queued(now).conditions),
            _capped_count_query(failed_recently(now).conditions),
            connections(),
            connections(Connection.status == ConnectionStatus.ACTIVE),
            connections(Connection.rate_remaining == 0),
            connections(Connection.rate_remaining.is_(None)),
        )
    ).one()
    queued, sending, stuck_sending_rows, stuck_queued_rows, failed, *counts = row
    return Summary(
        generated_at=now,
        chart=deliveries_per_hour(hours, now=now),
        queued=_capped(queued),
        sending=_capped(sending),
        stuck=_capped(stuck_sending_rows) + _capped(stuck_queued_rows),
        failed_recently=_capped(failed),
        connections_total=counts[0],
        connections_active=counts[1],
        connections_out_of_calls=counts[2],
        connections_unknown_quota=counts[3],
    )
