"""Housekeeping of old rows (issue 20), a worker job beside the deliveries:

* Idempotency-Key records expire after :data:`IDEMPOTENCY_TTL` (24 hours): a repeat after
  that is a new request (:mod:`notify_site.services.idempotency` ignores an expired record
  at once; this job deletes them).
* With ``NOTIFICATION_RETENTION_DAYS`` set, finished notifications (delivered, failed,
  cancelled) whose end is older than that are deleted, their delivery attempts with them (the
  foreign key cascades). Pending ones are never touched, however old.

Deletes go in batches of :data:`BATCH` rows, each its own short transaction, so a first run
over years of rows never holds a long lock. A worker runs a round at most every
``HOUSEKEEPING_INTERVAL`` seconds; several workers doing it at once only delete the same rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import delete, select

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import IdempotencyRecord, Notification, NotificationStatus
from notify_site.services.idempotency import IDEMPOTENCY_TTL

log = logging.getLogger(__name__)

BATCH = 500
_LAST_ROUND = "notify_site.housekeeping.last_round"


@dataclass(frozen=True)
class Purged:
    notifications: int = 0
    idempotency_records: int = 0


def _delete_in_batches(model, condition, stopping: Callable[[], bool]) -> int:
    deleted = 0
    while not stopping():
        ids = list(db.session.scalars(select(model.id).where(condition).limit(BATCH)))
        if not ids:
            break
        db.session.execute(delete(model).where(model.id.in_(ids)))
        db.session.commit()
        deleted += len(ids)
    return deleted


def purge(
    retention_days: int | None,
    *,
    now: datetime | None = None,
    stopping: Callable[[], bool] = lambda: False,
) -> Purged:
    """Delete expired idempotency records and, with ``retention_days``, old finished
    notifications; returns how many of each."""
    now = now or utcnow()
    records = _delete_in_batches(
        IdempotencyRecord, IdempotencyRecord.created_at < now - IDEMPOTENCY_TTL, stopping
    )
    notifications = 0
    if retention_days:
        notifications = _delete_in_batches(
            Notification,
            (Notification.status.in_(NotificationStatus.TERMINAL))
            & (Notification.finished_at < now - timedelta(days=retention_days)),
            stopping,
        )
    return Purged(notifications, records)


def worker_job(app: Flask, stopping: Callable[[], bool]) -> int:
    """One housekeeping round, at most every HOUSEKEEPING_INTERVAL seconds; returns 0 (it
    never keeps the jobs' loop from resting)."""
    last = app.extensions.get(_LAST_ROUND)
    if last is not None and time.monotonic() - last < app.config["HOUSEKEEPING_INTERVAL"]:
        return 0
    app.extensions[_LAST_ROUND] = time.monotonic()
    with app.app_context():
        try:
            purged = purge(app.config["NOTIFICATION_RETENTION_DAYS"], stopping=stopping)
        except Exception:
            db.session.rollback()
            raise
        finally:
            db.session.remove()
    if purged.notifications or purged.idempotency_records:
        log.info(
            "housekeeping: %d old notifications and %d expired idempotency records deleted",
            purged.notifications,
            purged.idempotency_records,
        )
    return 0


def init_app(app: Flask) -> None:
    from notify_site import seams

    days = app.config["NOTIFICATION_RETENTION_DAYS"]
    if days is not None and (not isinstance(days, int) or isinstance(days, bool) or days < 0):
        from notify_site.config import ConfigError

        raise ConfigError(
            f"NOTIFICATION_RETENTION_DAYS must be a whole number of days (0 or unset: keep "
            f"every notification), not {days!r}"
        )
    seams.add(app, seams.WORKER_JOBS, worker_job)
