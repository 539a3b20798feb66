"""Delivering the outbox: the call to the Notify API, and its fenced finish.

How a worker works (SPEC 4.4):

1. It leases connections with due notifications and claims their oldest due rows under a
   fresh **fencing token** with a lease expiry (:mod:`notify_site.services.claims`). Rows
   taken back from an expired lease have their unfinished attempts marked interrupted
   (:func:`attempts.close_interrupted`).
2. :func:`deliver_one` records the attempt as started (its own short commit, fenced), calls
   the Notify API (no transaction is open during the call), then :func:`finish` writes the
   outcome **only if the row still carries the worker's token**: a worker whose lease
   expired, and whose rows were claimed again by another, cannot overwrite the newer attempt.
   Within a claim, a row's finish and the next row's start share one commit
   (:func:`_finish_then_start`): one commit per call rather than two.
3. :func:`process_claim` runs one claim: the connection's rows in order, stopping at a spent
   window, a revoked token or an unreachable server, and gives back what it did not send.

Leases, fences, backoff and the give-up rule are the outbox machinery both houses share
(:mod:`notify_site.outbox`); what to make of an answer is :func:`retry.classify`.

A crash anywhere leaves rows ``sending`` with a lease that expires; they are claimed again, and
the attempt the crash cut off stays in the history as interrupted. So delivery is at least
once: a crash between the server's 200 and the commit repeats one message.

Past 400 lines on purpose: one idea, a call and its fenced record; the shared finish-and-start
commit must see the call loop's stop rules, so the loop and the commits stay together.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from notify_site import metrics, outbox
from notify_site.crypto import KeyRingError
from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.keyring import keyring
from notify_site.models import (
    Connection,
    ConnectionStatus,
    NotificationImage,
    NotificationStatus,
)
from notify_site.notify_client import NotifyError, RateLimit
from notify_site.services import attempts
from notify_site.services.claims import (
    ClaimedRow,
    ConnectionClaim,
    claim_batch,
    release_connection,
    release_rows,
    renew_lease,
    window_spent_until,
)
from notify_site.services.connections import (
    connection_context,
    revocation_values,
    unreachable_values,
)
from notify_site.services.notifications import NOTIFICATIONS, fail_pending_notifications
from notify_site.services.notify_clients import notify_client
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


@dataclass(frozen=True)
class WorkerSettings:
    """How a worker delivers: its lease, rows per claim, and the retry policy
    (``DELIVERY_*`` settings)."""

    lease: timedelta
    batch_size: int
    policy: RetryPolicy

    @classmethod
    def from_config(cls, config) -> WorkerSettings:
        return cls(
            lease=timedelta(seconds=config["WORKER_LEASE_SECONDS"]),
            batch_size=config["WORKER_BATCH_SIZE"],
            policy=RetryPolicy.from_config(config, "DELIVERY"),
        )


def connection_token(connection_id: int) -> str | None:
    """The decrypted access token, or None if the connection is no longer active."""
    status, ciphertext = db.session.execute(
        select(Connection.status, Connection.token_ciphertext).where(Connection.id == connection_id)
    ).one()
    if status != ConnectionStatus.ACTIVE or not ciphertext:
        return None
    return keyring().decrypt(ciphertext, context=connection_context(connection_id))


def retrying(step, until: datetime, *args, **kwargs):
    """:func:`notify_site.outbox.retrying`, counting each failure in the worker's metrics."""
    return outbox.retrying(step, until, *args, on_failure=metrics.worker_database_error, **kwargs)


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
    attempt_id = retrying(attempts.start, until, row.id, claim.token, worker)
    if attempt_id is None:
        log.warning("notification %s: lease lost before the call, not sent", row.id)
        return None
    outcome, _ = _call_and_finish(row, token, claim, settings, worker, until, attempt_id)
    return outcome


def _call_and_finish(
    row: ClaimedRow,
    token: str,
    claim: ConnectionClaim,
    settings: WorkerSettings,
    worker: str,
    until: datetime,
    attempt_id: int,
    then: ClaimedRow | None = None,
    go_on=None,
) -> tuple[Outcome, int | None]:
    """Call the Notify API for ``row``, whose attempt ``attempt_id`` is already on record, and
    write the outcome; with ``then``, start that row's attempt in the same transaction, if
    the claim goes on after this outcome (``go_on(outcome)`` says yes, and it is not one
    after which :func:`process_claim` stops).

    Returns the outcome and ``then``'s attempt id (None when ``then`` was not started: no
    ``then``, the fence refused this row's outcome, or ``then`` is no longer the claim's).
    """
    image_file = None
    if row.image_id is not None:
        image_file = db.session.execute(
            select(
                NotificationImage.filename,
                NotificationImage.data,
                NotificationImage.content_type,
            ).where(NotificationImage.id == row.image_id)
        ).one()
        image_file = tuple(image_file)
        db.session.commit()  # no transaction stays open during the call
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
        answer = None
    call_seconds = time.perf_counter() - clock
    outcome = classify(
        error,
        rate_limit=rate_limit,
        attempts=row.attempts + 1,
        created_at=row.created_at,
        now=utcnow(),
        policy=settings.policy,
    )
    if answer is not None and answer.pending:
        # Accepted, not delivered yet (this site's relay): followed by services/remote_pending.
        outcome = replace(outcome, kind=OutcomeKind.AT_SERVER, remote_message_id=answer.message_id)
    if then is not None and (_ends_claim(outcome) or (go_on is not None and not go_on(outcome))):
        then = None
    fenced, next_attempt = retrying(
        _finish_then_start, until, row.id, claim, outcome, attempt_id, then, worker
    )
    metrics.delivery_finished(
        outcome,
        call_seconds=call_seconds,
        queued_at=row.created_at,
        attempts=row.attempts + (1 if outcome.spends_attempt else 0),
        fenced=fenced,
    )
    return outcome, next_attempt


def _ends_claim(outcome: Outcome) -> bool:
    """After this outcome the claim calls no more (:func:`process_claim` gives the rest back)."""
    return outcome.kind in (OutcomeKind.REVOKED, OutcomeKind.UNREACHABLE, OutcomeKind.WAIT) or (
        outcome.kind == OutcomeKind.RETRY and outcome.status_code is None
    )


def _finish_then_start(
    notification_id: int,
    claim: ConnectionClaim,
    outcome: Outcome,
    attempt_id: int,
    then: ClaimedRow | None,
    worker: str,
) -> tuple[bool, int | None]:
    """:func:`finish`, and with ``then`` the start of its attempt, in one transaction.

    One commit between two calls instead of two: the outcome of the call just made and the
    record of the next call are both written before that next call, as when they were
    committed apart (a crash after this commit leaves the next attempt open, to be marked
    interrupted, exactly as a crash after its own start commit did).
    """
    if then is None:
        return finish(notification_id, claim, outcome, attempt_id=attempt_id), None
    fenced = finish(notification_id, claim, outcome, attempt_id=attempt_id, commit=False)
    if not fenced:  # finish rolled back and recorded the answer late; nothing is open
        return False, None
    next_attempt = attempts.begin(then.id, claim.token, worker)
    db.session.commit()
    return True, next_attempt


def finish(
    notification_id: int,
    claim: ConnectionClaim,
    outcome: Outcome,
    *,
    attempt_id: int,
    commit: bool = True,
) -> bool:
    """Write an attempt's outcome if the row still carries the claim's token.

    Returns False when the fence refused it: the lease was lost and another worker owns the
    row. The attempt itself still gets the server's answer (:func:`attempts.record_late`).
    With ``commit=False`` an outcome the fence let through is left uncommitted in the
    session's transaction, for the caller to add to (a refused one is always settled here).
    """
    now = utcnow()
    values: dict = {
        "last_status_code": outcome.status_code,
        **columns("last_error", outcome.error),
        "updated_at": now,
    }
    if outcome.kind == OutcomeKind.DELIVERED:
        values.update(status=NotificationStatus.DELIVERED, finished_at=now)
        values.update(columns("last_error", None))
    elif outcome.kind == OutcomeKind.AT_SERVER:
        follow = timedelta(seconds=float(current_app.config["DELIVERY_FOLLOW_SECONDS"]))
        values.update(
            status=NotificationStatus.AT_SERVER,
            remote_message_id=outcome.remote_message_id,
            next_attempt_at=now + follow,
        )
        values.update(columns("last_error", None))
    elif outcome.kind in (OutcomeKind.FAILED, OutcomeKind.REVOKED, OutcomeKind.UNREACHABLE):
        values.update(status=NotificationStatus.FAILED, finished_at=now)
    else:  # RETRY and WAIT: back in the queue until retry_at
        values.update(status=NotificationStatus.QUEUED, next_attempt_at=outcome.retry_at)
    spent = ("attempts",) if outcome.spends_attempt else ()
    if not NOTIFICATIONS.lease.finish(notification_id, claim.token, values, increment=spent):
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
    if commit:
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
        # The next row's attempt, when it was started in the same commit as the last finish.
        started: int | None = None
        for index, row in enumerate(rows):
            rest = [r.id for r in rows[index:]]
            if started is not None:
                attempt_id, started = started, None
            else:
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
                attempt_id = retrying(attempts.start, until, row.id, claim.token, worker)
                if attempt_id is None:  # no longer ours (cancelled, or the lease lost)
                    log.warning("notification %s: lease lost before the call, not sent", row.id)
                    continue

            def go_on(
                outcome: Outcome,
                snapshot: RateLimit | None = snapshot,
                renew_at: datetime = renew_at,
            ) -> bool:
                # Everything the checks above would ask before the next row, so that its
                # attempt may be started in the same commit as this row's finish; when one
                # of them says no, the next round asks it again and acts on it.
                seen = outcome.rate_limit
                latest = seen if seen is not None and seen.limit is not None else snapshot
                return (
                    not should_stop()
                    and not (latest is not None and latest.is_spent(utcnow()))
                    and utcnow() < renew_at
                )

            then = rows[index + 1] if index + 1 < len(rows) else None
            outcome, started = _call_and_finish(
                row, token, claim, settings, worker, until, attempt_id, then, go_on
            )
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
