"""Claims: which worker holds which connection, and which of its notifications.

A worker leases a **connection** (:data:`CONNECTION_LEASE`): one worker per connection at a
time keeps a chat's messages in order and makes its quota safe, since nobody else calls with
that token meanwhile. Connections whose window is spent (Remaining = 0 before Reset) are not
picked at all. It then claims the connection's oldest due **rows** under the same fencing
token (:data:`notify_site.services.notifications.NOTIFICATIONS`), renews both while it works,
and gives back what it did not send. The lease and fence mechanics are the shared outbox
plumbing (:mod:`notify_site.outbox`); what is here is the site's choice of what to claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import Connection, ConnectionStatus, Notification, NotificationStatus
from notify_site.notify_client import RateLimit
from notify_site.outbox import Lease, RetryPolicy, new_token
from notify_site.services import attempts
from notify_site.services.connections import rate_limit_values
from notify_site.services.notifications import NOTIFICATIONS

#: One worker at a time per connection: its lease, and the claim's fencing token.
CONNECTION_LEASE = Lease(
    Connection.id, Connection.delivery_lease_token, Connection.delivery_lease_expires_at
)


@dataclass(frozen=True)
class ConnectionClaim:
    connection_id: int
    token: str  # the fencing token of this claim


def _callable(now: datetime):
    """Connections that may be called: active, free, and with calls left in the window."""
    return and_(
        Connection.status == ConnectionStatus.ACTIVE,
        CONNECTION_LEASE.free(now),
        or_(
            Connection.rate_remaining.is_(None),
            Connection.rate_remaining > 0,
            Connection.rate_reset_at.is_(None),
            Connection.rate_reset_at <= now,
        ),
    )


def claim_connections(limit: int, lease: timedelta) -> list[ConnectionClaim]:
    """Lease up to ``limit`` connections with due notifications, the longest-waiting first."""
    now = utcnow()
    candidates = list(
        db.session.execute(
            select(Notification.connection_id)
            .join(Connection, Connection.id == Notification.connection_id)
            .where(NOTIFICATIONS.due(now), _callable(now))
            .group_by(Notification.connection_id)
            .order_by(func.min(Notification.next_attempt_at))
            .limit(limit * 2)
        ).scalars()
    )
    if not candidates:
        db.session.commit()
        return []
    # PostgreSQL: FOR UPDATE SKIP LOCKED, so that concurrent workers take different
    # connections instead of queueing on the same rows. SQLite has a single writer and no such
    # clause (SQLAlchemy leaves it out there); the conditional UPDATE below decides alone.
    free = set(
        db.session.execute(
            select(Connection.id)
            .where(Connection.id.in_(candidates), _callable(now))
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    claims: list[ConnectionClaim] = []
    for connection_id in candidates:
        if len(claims) == limit:
            break
        if connection_id not in free:
            continue
        token = new_token()
        taken = CONNECTION_LEASE.take(
            Connection.id == connection_id, _callable(now), token=token, now=now, duration=lease
        )
        if taken == 1:
            claims.append(ConnectionClaim(connection_id, token))
    db.session.commit()
    return claims


def release_connection(claim: ConnectionClaim, snapshot: RateLimit | None = None) -> None:
    """Give the connection back, storing the last X-RateLimit snapshot seen under the claim.

    The snapshot is written once per claim rather than once per call: within a claim the
    worker decides from the answers it holds, and the next claim (by any worker) reads this.
    """
    values: dict = {}
    if snapshot is not None and snapshot.limit is not None:
        values.update(rate_limit_values(snapshot, "notify"))
    CONNECTION_LEASE.finish(claim.connection_id, claim.token, values)
    db.session.commit()


def renew_lease(claim: ConnectionClaim, lease: timedelta) -> bool:
    """Push the connection's and its claimed rows' lease forward; False if it was lost."""
    until = utcnow() + lease
    kept = CONNECTION_LEASE.renew(
        Connection.id == claim.connection_id, token=claim.token, until=until
    )
    if kept:
        NOTIFICATIONS.lease.renew(token=claim.token, until=until)
    db.session.commit()
    return kept == 1


@dataclass(frozen=True)
class ClaimedRow:
    """A claimed notification, loaded once with everything its call needs."""

    id: int
    message: str
    sticker_package_id: int | None
    sticker_id: int | None
    image_thumbnail_url: str | None
    image_fullsize_url: str | None
    image_id: int | None
    notification_disabled: bool
    attempts: int
    created_at: datetime


def claim_batch(
    claim: ConnectionClaim, size: int, lease: timedelta, policy: RetryPolicy
) -> list[ClaimedRow]:
    """Mark the connection's oldest due rows ``sending`` under the claim's token, and load them.

    Rows taken back from an expired lease (still ``sending``) may hold an attempt their
    worker never finished: it is marked interrupted in the same transaction, and counts
    (rows that run out of attempts that way fail here and are not returned).
    """
    now = utcnow()
    found = db.session.execute(
        select(Notification.id, Notification.status)
        .where(Notification.connection_id == claim.connection_id, NOTIFICATIONS.due(now))
        .order_by(Notification.id)
        .limit(size)
    ).all()
    if not found:
        db.session.commit()
        return []
    NOTIFICATIONS.claim(
        Notification.id.in_([row.id for row in found]),
        token=claim.token,
        now=now,
        duration=lease,
        values={"status": NotificationStatus.SENDING, "updated_at": now},
    )
    if any(row.status == NotificationStatus.SENDING for row in found):
        attempts.close_interrupted(claim.token, policy, now)
    db.session.commit()
    rows = db.session.execute(
        select(
            Notification.id,
            Notification.message,
            Notification.sticker_package_id,
            Notification.sticker_id,
            Notification.image_thumbnail_url,
            Notification.image_fullsize_url,
            Notification.image_id,
            Notification.notification_disabled,
            Notification.attempts,
            Notification.created_at,
        )
        .where(Notification.lease_token == claim.token)
        .order_by(Notification.id)
    ).all()
    db.session.commit()
    return [ClaimedRow(*row) for row in rows]


def release_rows(claim: ConnectionClaim, ids: list[int], next_attempt_at: datetime | None) -> None:
    """Give claimed rows back untouched (no attempt spent), e.g. when stopping."""
    if not ids:
        return
    values = {"status": NotificationStatus.QUEUED}
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    NOTIFICATIONS.lease.release(Notification.id.in_(ids), token=claim.token, values=values)
    db.session.commit()


def window_spent_until(connection_id: int) -> datetime | None:
    """Reset time if the connection's last snapshot says its window is spent, else None."""
    remaining, reset_at = db.session.execute(
        select(Connection.rate_remaining, Connection.rate_reset_at).where(
            Connection.id == connection_id
        )
    ).one()
    now = utcnow()
    if remaining is not None and remaining <= 0 and reset_at is not None and reset_at > now:
        return reset_at
    return None
