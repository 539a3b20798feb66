"""The history of calls to the Notify API: one :class:`DeliveryAttempt` per call, written first.

A worker killed during a call (``kill -9``, a machine lost) used to leave no trace of it: the
attempt row was written with the outcome, after the call, so a row could read ``attempts=1``
while the server had received two calls. Now every call is on record:

1. :func:`start` writes the attempt **before** the call, in a short commit of its own, fenced
   by the claim's token: a worker that has lost the row records nothing and makes no call.
   No transaction stays open across the call.
2. :func:`finish_values` fills the outcome in after the call, inside the notification's own
   fenced finish (:func:`notify_site.services.delivery.finish`, one transaction). When that
   fence refuses the outcome (the lease was lost and the row claimed again),
   :func:`record_late` still writes what the server answered on the attempt itself.
3. :func:`close_interrupted` runs when rows are claimed again after their lease expired: an
   attempt still open there was cut off (nobody is left to finish it). It is marked
   ``interrupted`` with "no answer recorded"; readers see the same for an open attempt whose
   lease has run out before any claim came (:func:`history`).

An interrupted attempt **counts** toward the row's attempts, and so toward
``DELIVERY_MAX_ATTEMPTS``: the call may well have reached the server (it cost one call of the
window there), and a message that makes its worker die every time (a poison message: an image
that exhausts memory...) must not be retried for ever. A row whose count reaches the limit
that way fails at the claim, with no further call. A 429 still spends no attempt: that rule is
applied to answers, and an interrupted call has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, insert, or_, select, update

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import DeliveryAttempt, Notification, NotificationStatus
from notify_site.prepared import PreparedCache, session_cursor
from notify_site.services.notifications import NOTIFICATIONS
from notify_site.services.retry import Outcome, RetryPolicy
from notify_site.stored_text import columns, site_text

#: The outcome of an attempt whose worker stopped during the call.
INTERRUPTED = "interrupted"
#: Shown for an attempt whose lease is live and whose call has not answered yet.
IN_FLIGHT = "in_flight"
#: The interrupted attempt's error (English, with a code pages translate: stored_text.py).
NO_ANSWER_RECORDED = site_text("no_answer_recorded")


def start(notification_id: int, lease_token: str, worker: str) -> int | None:
    """Record a call about to be made, and commit; the attempt's id, or None if the row is no
    longer held under ``lease_token`` (then no call may be made).

    The fence is an UPDATE of the notification, so it takes the row's lock: a concurrent claim
    of the same row either waits for this commit (and then sees the attempt, which it marks
    interrupted) or has already changed the token (and this records nothing).
    """
    attempt_id = begin(notification_id, lease_token, worker)
    if attempt_id is None:
        db.session.rollback()
        return None
    db.session.commit()
    return attempt_id


def begin(notification_id: int, lease_token: str, worker: str) -> int | None:
    """:func:`start` without its commit, for a caller that commits it with other writes (the
    previous row's finish) before making the call; None, with nothing written, if the row
    is no longer held under ``lease_token``."""
    now = utcnow()
    if not NOTIFICATIONS.lease.touch(notification_id, lease_token, {"updated_at": now}):
        return None
    values = {
        "notification_id": notification_id,
        "worker": worker[:64],
        "lease_token": lease_token,
        "started_at": now,
    }
    with session_cursor(db.session) as cursor:
        prepared = _PREPARED.get("insert", cursor.dialect, lambda: _INSERT_ATTEMPT, list(values))
        return cursor.run(prepared, values)


# Built once, compiled once per dialect and run on the Session's cursor (notify_site.prepared):
# a worker writes these around every call (bench/README.md, "where a delivery's time goes").
_PREPARED = PreparedCache()
_attempts = DeliveryAttempt.__table__
#: What :func:`finish_values` writes (a test checks they agree).
_FINISH_COLUMNS = ("outcome", "status_code", "error", "error_code", "error_params", "finished_at")
_INSERT_ATTEMPT = insert(_attempts).returning(_attempts.c.id)
_FINISH_ATTEMPT = (
    update(_attempts)
    .where(_attempts.c.id == bindparam("attempt"))
    .values(
        {name: bindparam(f"set_{name}", type_=_attempts.c[name].type) for name in _FINISH_COLUMNS}
    )
)


def finish_values(outcome: Outcome, now: datetime) -> dict:
    return {
        "outcome": outcome.kind,
        "status_code": outcome.status_code,
        **columns("error", outcome.error),
        "finished_at": now,
    }


def finish(attempt_id: int, outcome: Outcome, now: datetime) -> None:
    """Write the outcome on the attempt (no commit: part of the notification's finish)."""
    values = finish_values(outcome, now)
    params = {f"set_{name}": values[name] for name in _FINISH_COLUMNS}
    with session_cursor(db.session) as cursor:
        prepared = _PREPARED.get("finish", cursor.dialect, lambda: _FINISH_ATTEMPT)
        cursor.run(prepared, {"attempt": attempt_id, **params})


def record_late(attempt_id: int, outcome: Outcome, now: datetime) -> None:
    """The server's answer to a call whose row was meanwhile claimed again (commits).

    The notification keeps the newer claim's state; the attempt still records what this call
    got, so that a duplicate shows in the history as two answered calls. Only an attempt no one
    else finished is written (open, or marked interrupted by the claim that took the row).
    """
    db.session.execute(
        update(DeliveryAttempt)
        .where(
            DeliveryAttempt.id == attempt_id,
            or_(DeliveryAttempt.outcome.is_(None), DeliveryAttempt.outcome == INTERRUPTED),
        )
        .values(**finish_values(outcome, now))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def close_interrupted(lease_token: str, policy: RetryPolicy, now: datetime) -> set[int]:
    """Mark the open attempts of the rows just claimed under ``lease_token`` interrupted
    (no commit: part of the claim's transaction); returns the ids of the rows failed for it.

    Each one counts as an attempt. A row whose attempts reach the policy's limit this way (or
    whose age does) is failed here and released, so it is not called again.
    """
    claimed = select(Notification.id).where(Notification.lease_token == lease_token)
    counts = dict(
        db.session.execute(
            select(DeliveryAttempt.notification_id, func.count())
            .where(
                DeliveryAttempt.notification_id.in_(claimed),
                DeliveryAttempt.outcome.is_(None),
            )
            .group_by(DeliveryAttempt.notification_id)
        ).all()
    )
    if not counts:
        return set()
    db.session.execute(
        update(DeliveryAttempt)
        .where(
            DeliveryAttempt.notification_id.in_(list(counts)),
            DeliveryAttempt.outcome.is_(None),
        )
        .values(outcome=INTERRUPTED, **columns("error", NO_ANSWER_RECORDED))
        .execution_options(synchronize_session=False)
    )
    by_count: dict[int, list[int]] = {}
    for notification_id, count in counts.items():
        by_count.setdefault(count, []).append(notification_id)
    for count, ids in by_count.items():
        db.session.execute(
            update(Notification)
            .where(Notification.id.in_(ids))
            .values(attempts=Notification.attempts + count)
            .execution_options(synchronize_session=False)
        )
    rows = db.session.execute(
        select(Notification.id, Notification.attempts, Notification.created_at).where(
            Notification.id.in_(list(counts))
        )
    ).all()
    exhausted = {
        row.id: row.attempts for row in rows if policy.gives_up(row.attempts, row.created_at, now)
    }
    for notification_id, attempts in exhausted.items():
        NOTIFICATIONS.lease.finish(
            notification_id,
            lease_token,
            {
                "status": NotificationStatus.FAILED,
                **columns(
                    "last_error",
                    site_text("gave_up", count=attempts, reason=NO_ANSWER_RECORDED),
                ),
                "last_status_code": None,
                "finished_at": now,
                "updated_at": now,
            },
        )
    return set(exhausted)


@dataclass(frozen=True)
class AttemptRecord:
    """One call as the API shows it."""

    started_at: datetime
    finished_at: datetime | None
    outcome: str
    status_code: int | None
    error: str | None


def history(notification: Notification, now: datetime | None = None) -> list[AttemptRecord]:
    """Every call made for ``notification``, oldest first.

    An attempt with no outcome is :data:`IN_FLIGHT` while the row is still held under its
    token by a live lease, else :data:`INTERRUPTED` (its worker stopped, and no claim has
    come yet to record it).
    """
    now = now or utcnow()
    attempts = db.session.scalars(
        select(DeliveryAttempt)
        .where(DeliveryAttempt.notification_id == notification.id)
        .order_by(DeliveryAttempt.id)
    ).all()
    live = (
        notification.lease_token is not None
        and notification.lease_expires_at is not None
        and notification.lease_expires_at > now
    )
    records = []
    for attempt in attempts:
        outcome, error = attempt.outcome, attempt.error
        if outcome is None:
            if live and attempt.lease_token == notification.lease_token:
                outcome = IN_FLIGHT
            else:
                outcome, error = INTERRUPTED, NO_ANSWER_RECORDED.text
        records.append(
            AttemptRecord(
                attempt.started_at, attempt.finished_at, outcome, attempt.status_code, error
            )
        )
    return records
