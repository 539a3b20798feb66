"""Delivering the outbox: claims, leases, the call to the Notify API, and fenced finishes.

How a worker works (SPEC 4.4):

1. :func:`claim_connections` picks connections with due notifications and takes a **lease** on
   each (a conditional UPDATE, so two workers never hold the same connection). One worker per
   connection at a time keeps a chat's messages in order and makes its quota safe: nobody else
   is calling with that token meanwhile. Connections whose window is spent (Remaining = 0
   before Reset) are not picked at all: they are never called until Reset.
2. :func:`claim_batch` marks that connection's oldest due rows ``sending`` under a fresh
   **fencing token** with a lease expiry. Rows taken back from an expired lease have their
   unfinished attempts marked interrupted (:func:`attempts.close_interrupted`).
3. :func:`deliver_one` records the attempt as started (its own short commit, fenced), calls
   the Notify API (no transaction is open during the call), then :func:`finish` writes the
   outcome **only if the row still carries the worker's token**: a worker whose lease
   expired, and whose rows were claimed again by another, cannot overwrite the newer attempt.

A crash anywhere leaves rows ``sending`` with a lease that expires; they are claimed again, and
the attempt the crash cut off stays in the history as interrupted. So delivery is at least
once: a crash between the server's 200 and the commit repeats one message.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import OperationalError

from notify_site import metrics
from notify_site.crypto import KeyRingError
from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.keyring import keyring
from notify_site.models import (
    Connection,
    ConnectionStatus,
    Notification,
    NotificationImage,
    NotificationStatus,
)
from notify_site.notify_client import NotifyError, RateLimit
from notify_site.services import attempts
from notify_site.services.connections import (
    rate_limit_values,
    revocation_values,
    unreachable_values,
)
from notify_site.services.notifications import fail_pending_notifications
from notify_site.services.notify import connection_context, notify_client
from notify_site.services.retry import (
    CHAT_UNREACHABLE,
    CONNECTION_REVOKED,
    Outcome,
    OutcomeKind,
    RetryPolicy,
    classify,
)
from notify_site.stored_text import StoredText, columns, site_text

log = logging.getLogger(__name__)

# A revoked connection's status_detail (English, with a code pages translate).
TOKEN_REVOKED_DETAIL = site_text("token_revoked")
# How often a claim's step is tried again while the database does not answer.
DATABASE_RETRY_SECONDS = 0.5


@dataclass(frozen=True)
class WorkerSettings:
    lease: timedelta
    batch_size: int
    policy: RetryPolicy

    @classmethod
    def from_config(cls, config) -> WorkerSettings:
        return cls(
            lease=timedelta(seconds=config["WORKER_LEASE_SECONDS"]),
            batch_size=config["WORKER_BATCH_SIZE"],
            policy=RetryPolicy(
                base_seconds=config["DELIVERY_RETRY_BASE"],
                cap_seconds=config["DELIVERY_RETRY_CAP"],
                max_attempts=config["DELIVERY_MAX_ATTEMPTS"],
                max_age=timedelta(hours=config["DELIVERY_MAX_AGE_HOURS"]),
            ),
        )


@dataclass(frozen=True)
class ConnectionClaim:
    connection_id: int
    token: str  # the fencing token of this claim


def _due(now: datetime):
    """Rows that may be (re)claimed: pending, due, and not under a live lease."""
    return and_(
        Notification.status.in_(NotificationStatus.PENDING),
        Notification.next_attempt_at <= now,
        or_(Notification.lease_expires_at.is_(None), Notification.lease_expires_at < now),
    )


def _callable(now: datetime):
    """Connections that may be called: active, free, and with calls left in the window."""
    return and_(
        Connection.status == ConnectionStatus.ACTIVE,
        or_(
            Connection.delivery_lease_expires_at.is_(None),
            Connection.delivery_lease_expires_at < now,
        ),
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
            .where(_due(now), _callable(now))
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
        token = str(uuid.uuid4())
        taken = db.session.execute(
            update(Connection)
            .where(Connection.id == connection_id, _callable(now))
            .values(delivery_lease_token=token, delivery_lease_expires_at=now + lease)
            .execution_options(synchronize_session=False)
        ).rowcount
        if taken == 1:
            claims.append(ConnectionClaim(connection_id, token))
    db.session.commit()
    return claims


def release_connection(claim: ConnectionClaim, snapshot: RateLimit | None = None) -> None:
    """Give the connection back, storing the last X-RateLimit snapshot seen under the claim.

    The snapshot is written once per claim rather than once per call: within a claim the
    worker decides from the answers it holds, and the next claim (by any worker) reads this.
    """
    values: dict = {"delivery_lease_token": None, "delivery_lease_expires_at": None}
    if snapshot is not None and snapshot.limit is not None:
        values.update(rate_limit_values(snapshot, "notify"))
    db.session.execute(
        update(Connection)
        .where(
            Connection.id == claim.connection_id,
            Connection.delivery_lease_token == claim.token,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def renew_lease(claim: ConnectionClaim, lease: timedelta) -> bool:
    """Push the connection's and its claimed rows' lease forward; False if it was lost."""
    expires = utcnow() + lease
    kept = db.session.execute(
        update(Connection)
        .where(
            Connection.id == claim.connection_id,
            Connection.delivery_lease_token == claim.token,
        )
        .values(delivery_lease_expires_at=expires)
        .execution_options(synchronize_session=False)
    ).rowcount
    if kept:
        db.session.execute(
            update(Notification)
            .where(Notification.lease_token == claim.token)
            .values(lease_expires_at=expires)
            .execution_options(synchronize_session=False)
        )
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
        .where(Notification.connection_id == claim.connection_id, _due(now))
        .order_by(Notification.id)
        .limit(size)
    ).all()
    if not found:
        db.session.commit()
        return []
    ids = [row.id for row in found]
    db.session.execute(
        update(Notification)
        .where(Notification.id.in_(ids), _due(now))
        .values(
            status=NotificationStatus.SENDING,
            lease_token=claim.token,
            lease_expires_at=now + lease,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
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
    values = {"status": NotificationStatus.QUEUED, "lease_token": None, "lease_expires_at": None}
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    db.session.execute(
        update(Notification)
        .where(Notification.id.in_(ids), Notification.lease_token == claim.token)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
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


def connection_token(connection_id: int) -> str | None:
    """The decrypted access token, or None if the connection is no longer active."""
    status, ciphertext = db.session.execute(
        select(Connection.status, Connection.token_ciphertext).where(Connection.id == connection_id)
    ).one()
    if status != ConnectionStatus.ACTIVE or not ciphertext:
        return None
    return keyring().decrypt(ciphertext, context=connection_context(connection_id))


def retrying(step, until: datetime, *args, **kwargs):
    """Run ``step`` (one short transaction of a claim), again while the database is away.

    A database that goes away for a moment (a restart, a failover) must not cost what a call
    learned: the server's answer would be lost, the row sent again once its lease ran out, and
    everything the claim held would wait for the lease. Every step of a claim is fenced by its
    token, so repeating one is safe; it is repeated until ``until`` (the claim's lease: after
    that the rows may be someone else's, and the fence would refuse the write anyway).
    """
    failures = 0
    while True:
        try:
            return step(*args, **kwargs)
        except OperationalError as error:
            db.session.rollback()
            if utcnow() + timedelta(seconds=DATABASE_RETRY_SECONDS) >= until:
                raise
            if not failures:
                log.warning(
                    "database unavailable in %s (%s); trying again until %s",
                    step.__name__,
                    type(error.orig).__name__,
                    until.isoformat(timespec="seconds"),
                )
            failures += 1
            metrics.worker_database_error()
            time.sleep(DATABASE_RETRY_SECONDS)


def deliver_one(
    row: ClaimedRow,
    token: str,
    claim: ConnectionClaim,
    settings: WorkerSettings,
    worker: str,
    until: datetime | None = None,
) -> Outcome | None:
    """Send one claimed notification and record the outcome (fenced by the claim's token).

    None when the row was no longer the claim's before the call: nothing was sent. The steps
    before and after the call are retried while the database is away, until ``until`` (see
    :func:`retrying`; now + the lease when not given).
    """
    until = until or utcnow() + settings.lease
    image_file = None
    if row.image_id is not None:
        image = db.session.get(NotificationImage, row.image_id)
        image_file = (image.filename, image.data, image.content_type)
        db.session.commit()  # no transaction stays open during the call

    attempt_id = retrying(attempts.start, until, row.id, claim.token, worker)
    if attempt_id is None:
        log.warning("notification %s: lease lost before the call, not sent", row.id)
        return None
    clock = time.perf_counter()
    error: NotifyError | None = None
    rate_limit: RateLimit | None = None
    try:
        answer = notify_client().notify(
            token,
            row.message,
            sticker_package_id=row.sticker_package_id,
            sticker_id=row.sticker_id,
            image_thumbnail=row.image_thumbnail_url,
            image_fullsize=row.image_fullsize_url,
            image_file=image_file,
            notification_disabled=row.notification_disabled,
        )
        rate_limit = answer.rate_limit
    except NotifyError as caught:
        error = caught
    call_seconds = time.perf_counter() - clock
    outcome = classify(
        error,
        rate_limit=rate_limit,
        attempts=row.attempts + 1,
        created_at=row.created_at,
        now=utcnow(),
        policy=settings.policy,
    )
    fenced = retrying(finish, until, row.id, claim, outcome, attempt_id=attempt_id)
    metrics.delivery_finished(
        outcome,
        call_seconds=call_seconds,
        queued_at=row.created_at,
        attempts=row.attempts + (1 if outcome.spends_attempt else 0),
        fenced=fenced,
    )
    return outcome


def finish(
    notification_id: int, claim: ConnectionClaim, outcome: Outcome, *, attempt_id: int
) -> bool:
    """Write an attempt's outcome if the row still carries the claim's token.

    Returns False when the fence refused it: the lease was lost and another worker owns the
    row. The attempt itself still gets the server's answer (:func:`attempts.record_late`).
    """
    now = utcnow()
    values: dict = {
        "last_status_code": outcome.status_code,
        **columns("last_error", outcome.error),
        "updated_at": now,
        "lease_token": None,
        "lease_expires_at": None,
    }
    if outcome.spends_attempt:
        values["attempts"] = Notification.attempts + 1
    if outcome.kind == OutcomeKind.DELIVERED:
        values.update(status=NotificationStatus.DELIVERED, finished_at=now)
        values.update(columns("last_error", None))
    elif outcome.kind in (OutcomeKind.FAILED, OutcomeKind.REVOKED, OutcomeKind.UNREACHABLE):
        values.update(status=NotificationStatus.FAILED, finished_at=now)
    else:  # RETRY and WAIT: back in the queue until retry_at
        values.update(status=NotificationStatus.QUEUED, next_attempt_at=outcome.retry_at)
    fenced = db.session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.lease_token == claim.token)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if fenced != 1:
        db.session.rollback()
        log.warning(
            "notification %s: lease lost, outcome %s discarded", notification_id, outcome.kind
        )
        attempts.record_late(attempt_id, outcome, now)
        return False
    attempts.finish(attempt_id, outcome, now)
    if outcome.kind == OutcomeKind.REVOKED:
        db.session.execute(
            update(Connection)
            .where(Connection.id == claim.connection_id)
            .values(**revocation_values(TOKEN_REVOKED_DETAIL))
            .execution_options(synchronize_session=False)
        )
        fail_pending_notifications(claim.connection_id, CONNECTION_REVOKED)
    elif outcome.kind == OutcomeKind.UNREACHABLE:
        # The token is kept: once the chat is back, a Refresh makes the connection active.
        # A connection revoked meanwhile stays revoked.
        db.session.execute(
            update(Connection)
            .where(
                Connection.id == claim.connection_id,
                Connection.status == ConnectionStatus.ACTIVE,
            )
            .values(**unreachable_values())
            .execution_options(synchronize_session=False)
        )
        fail_pending_notifications(claim.connection_id, CHAT_UNREACHABLE)
    db.session.commit()
    return True


def process_claim(
    claim: ConnectionClaim, settings: WorkerSettings, worker: str, should_stop
) -> int:
    """Deliver a leased connection's due rows in order; returns how many calls were made.

    While the database is away, each step waits for it (:func:`retrying`) as long as the
    claim's lease lasts, so that a restart of the database costs neither an answer already
    received nor a wait for the lease.
    """
    calls = 0
    snapshot: RateLimit | None = None
    until = utcnow() + settings.lease
    try:
        try:
            token = connection_token(claim.connection_id)
        except KeyRingError as error:
            # An operator's mistake (a key left out of TOKEN_KEYS): keep the notifications
            # queued, take the connection out of rotation, and say why on the dashboard.
            log.error("connection %s: token cannot be decrypted: %s", claim.connection_id, error)
            db.session.execute(
                update(Connection)
                .where(Connection.id == claim.connection_id)
                .values(
                    status=ConnectionStatus.ERROR,
                    **columns("status_detail", StoredText(str(error)[:300])),
                )
                .execution_options(synchronize_session=False)
            )
            db.session.commit()
            return 0
        if token is None:
            unreachable = (
                db.session.scalar(
                    select(Connection.status).where(Connection.id == claim.connection_id)
                )
                == ConnectionStatus.UNREACHABLE
            )
            reason = CHAT_UNREACHABLE if unreachable else CONNECTION_REVOKED
            fail_pending_notifications(claim.connection_id, reason)
            db.session.commit()
            return 0
        spent_until = window_spent_until(claim.connection_id)
        rows = retrying(
            claim_batch, until, claim, settings.batch_size, settings.lease, settings.policy
        )
        renew_at = utcnow() + settings.lease / 2
        for index, row in enumerate(rows):
            rest = [r.id for r in rows[index:]]
            if should_stop():
                retrying(release_rows, until, claim, rest, None)
                break
            if snapshot is not None and snapshot.is_spent(utcnow()):
                spent_until = snapshot.reset_at
            if spent_until is not None:
                retrying(release_rows, until, claim, rest, spent_until)
                metrics.window_spent_wait()
                break
            if utcnow() >= renew_at:
                if not retrying(renew_lease, until, claim, settings.lease):
                    break
                until = utcnow() + settings.lease
                renew_at = utcnow() + settings.lease / 2
            outcome = deliver_one(row, token, claim, settings, worker, until)
            if outcome is None:  # this row is no longer ours (cancelled, or the lease lost)
                continue
            calls += 1
            if outcome.rate_limit is not None and outcome.rate_limit.limit is not None:
                snapshot = outcome.rate_limit
            if outcome.kind in (OutcomeKind.REVOKED, OutcomeKind.UNREACHABLE):
                snapshot = None
                break
            later = [r.id for r in rows[index + 1 :]]
            if outcome.kind == OutcomeKind.WAIT:
                retrying(release_rows, until, claim, later, outcome.retry_at)
                break
            if outcome.kind == OutcomeKind.RETRY and outcome.status_code is None:
                # The server is unreachable: don't spend the whole batch's attempts on it.
                retrying(release_rows, until, claim, later, None)
                break
    finally:
        db.session.rollback()
        retrying(release_connection, until, claim, snapshot)
    return calls


def worker_settings() -> WorkerSettings:
    return WorkerSettings.from_config(current_app.config)
