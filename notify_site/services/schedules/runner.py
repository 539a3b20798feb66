"""The scheduler: a worker job that turns due occurrences into queued notifications, each
exactly once, however many workers and web processes run and however often they restart.

Every worker runs it beside its deliveries (:data:`notify_site.seams.WORKER_JOBS`). A round:

1. **Claim** up to ``SCHEDULE_CLAIM_BATCH`` active schedules whose ``next_run_at`` is due,
   each under a fresh fencing token with a lease (the shared outbox machinery,
   :data:`SCHEDULES`; on PostgreSQL after ``FOR UPDATE SKIP LOCKED``, so that workers take
   different schedules instead of queueing on the same rows).
2. For each, expand the rule from ``next_run_at`` and handle every occurrence up to now, one
   transaction each: move ``next_run_at`` past it **only while the claim holds the lease and
   the schedule is still active** (a fenced, conditional UPDATE), insert the occurrence under
   its unique (schedule, time) key, and queue its notifications through the send use case,
   all committed together. So an occurrence is queued if and only if its key was inserted,
   and the key can be inserted once: a worker presumed dead that comes back finds its fence
   refused, and one that raced another anyway finds the key taken and queues nothing.
3. **Catch-up**: an occurrence missed while nothing ran is sent if it is younger than
   ``SCHEDULE_CATCH_UP_SECONDS`` (default one hour), and otherwise recorded as ``skipped``
   (the schedule's page shows it). An occurrence with none of the schedule's chats able to
   receive is recorded as ``not_sent``.
4. Give the schedule back (a fenced release). At most ``SCHEDULE_OCCURRENCES_PER_ROUND``
   occurrences per schedule per round, so a long outage is worked off over several rounds
   without holding one transaction open.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask, current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import (
    Connection,
    ConnectionStatus,
    OccurrenceStatus,
    Schedule,
    ScheduleOccurrence,
    ScheduleStatus,
    schedule_connections,
)
from notify_site.notify_content import ContentError, check_content
from notify_site.outbox import Lease, Outbox, new_token
from notify_site.services import ServiceError, sending
from notify_site.services.schedules.manage import rule_of

log = logging.getLogger(__name__)

#: The schedules table as an outbox: active schedules, due at ``next_run_at``, each held by
#: the fencing token of the claim that took it.
SCHEDULES = Outbox(
    Lease(Schedule.id, Schedule.lease_token, Schedule.lease_expires_at),
    Schedule.status,
    (ScheduleStatus.ACTIVE,),
    Schedule.next_run_at,
)


@dataclass(frozen=True)
class RunnerSettings:
    """``SCHEDULE_*`` settings, and the workers' lease."""

    catch_up: timedelta
    lease: timedelta
    claim_batch: int
    per_round: int

    @classmethod
    def from_config(cls, config) -> RunnerSettings:
        return cls(
            catch_up=timedelta(seconds=float(config["SCHEDULE_CATCH_UP_SECONDS"])),
            lease=timedelta(seconds=float(config["WORKER_LEASE_SECONDS"])),
            claim_batch=int(config["SCHEDULE_CLAIM_BATCH"]),
            per_round=int(config["SCHEDULE_OCCURRENCES_PER_ROUND"]),
        )


def worker_job(app: Flask, stopping: Callable[[], bool]) -> int:
    """One round of the scheduler for the worker; returns the occurrences handled."""
    with app.app_context():
        try:
            return run_due_schedules(RunnerSettings.from_config(current_app.config), stopping)
        except Exception:
            db.session.rollback()
            raise
        finally:
            db.session.remove()


def run_due_schedules(
    settings: RunnerSettings, stopping: Callable[[], bool] = lambda: False
) -> int:
    """Claim due schedules and handle their due occurrences; returns how many."""
    handled = 0
    for schedule_id, token in claim_due(settings):
        try:
            if not stopping():
                handled += run_schedule(schedule_id, token, settings)
        finally:
            db.session.rollback()
            SCHEDULES.lease.release(Schedule.id == schedule_id, token=token)
            db.session.commit()
    return handled


def claim_due(settings: RunnerSettings) -> list[tuple[int, str]]:
    """Lease up to ``claim_batch`` due schedules, the longest-waiting first."""
    now = utcnow()
    ids = list(
        db.session.scalars(
            select(Schedule.id)
            .where(SCHEDULES.due(now))
            .order_by(Schedule.next_run_at)
            .limit(settings.claim_batch)
            .with_for_update(skip_locked=True)
        )
    )
    claims = []
    for schedule_id in ids:
        token = new_token()
        if SCHEDULES.claim(
            Schedule.id == schedule_id, token=token, now=now, duration=settings.lease
        ):
            claims.append((schedule_id, token))
    db.session.commit()
    return claims


def run_schedule(schedule_id: int, token: str, settings: RunnerSettings) -> int:
    """Handle the claimed schedule's due occurrences (see the module); returns how many."""
    schedule = db.session.get(Schedule, schedule_id)
    if schedule is None or schedule.lease_token != token or schedule.next_run_at is None:
        return 0
    now = utcnow()
    rule = rule_of(schedule)
    ahead = rule.next(schedule.next_run_at, settings.per_round + 1, inclusive=True)
    due = [at for at in ahead if at <= now][: settings.per_round]
    later = ahead[len(due)] if len(ahead) > len(due) else None
    owner_id, from_schedule = schedule.owner_id, _Message.of(schedule)
    db.session.commit()
    if not due:  # next_run_at no longer names an occurrence: point it at the next one
        _advance(schedule_id, token, later)
        db.session.commit()
        return 0
    for index, at in enumerate(due):
        following = due[index + 1] if index + 1 < len(due) else later
        if not _handle(schedule_id, owner_id, token, at, following, from_schedule, now, settings):
            break
    return len(due)


@dataclass(frozen=True)
class _Message:
    """What a schedule sends, read once per round."""

    values: dict

    @classmethod
    def of(cls, schedule: Schedule) -> _Message:
        return cls(
            {
                "message": schedule.message,
                "sticker_package_id": schedule.sticker_package_id,
                "sticker_id": schedule.sticker_id,
                "image_thumbnail_url": schedule.image_thumbnail_url,
                "image_fullsize_url": schedule.image_fullsize_url,
                "notification_disabled": schedule.notification_disabled,
            }
        )


def _advance(schedule_id: int, token: str, following: datetime | None) -> bool:
    """Move ``next_run_at`` on, only while ``token`` holds the schedule and it is active."""
    values = {"next_run_at": following, "updated_at": utcnow()}
    if following is None:
        values["status"] = ScheduleStatus.FINISHED
    return (
        db.session.execute(
            update(Schedule)
            .where(
                Schedule.id == schedule_id,
                Schedule.status == ScheduleStatus.ACTIVE,
                SCHEDULES.lease.held_by(token),
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
        == 1
    )


def _handle(
    schedule_id: int,
    owner_id: int,
    token: str,
    at: datetime,
    following: datetime | None,
    message: _Message,
    now: datetime,
    settings: RunnerSettings,
) -> bool:
    """One occurrence, in one transaction; False when the claim no longer holds (stop)."""
    status = OccurrenceStatus.SKIPPED if now - at > settings.catch_up else OccurrenceStatus.QUEUED
    targets: list[int] = []
    if status == OccurrenceStatus.QUEUED:
        targets = _reachable(schedule_id)
        if not targets:
            status = OccurrenceStatus.NOT_SENT
    for _ in range(2):  # a second time, recorded as not sent, if the send refuses
        if not _advance(schedule_id, token, following):
            db.session.rollback()
            return False
        occurrence_id = _record(schedule_id, at, status)
        if occurrence_id is None:  # another claim handled it: nothing to queue
            db.session.commit()
            return True
        if status != OccurrenceStatus.QUEUED:
            db.session.commit()
            return True
        try:
            content = check_content(**message.values)
            # send() commits: the fence, the key and the rows together.
            sending.send(
                sending.Sender(id=owner_id, is_admin=False),
                targets,
                content,
                options=sending.SendOptions(
                    source=sending.Source.SCHEDULE, send_at=at, occurrence_id=occurrence_id
                ),
            )
            return True
        except (ServiceError, ContentError) as error:
            db.session.rollback()
            log.warning("schedule %s at %s: not sent (%s)", schedule_id, at.isoformat(), error)
            status = OccurrenceStatus.NOT_SENT
    return True


def _record(schedule_id: int, at: datetime, status: str) -> int | None:
    """Insert the occurrence's key; None if it is there already (someone handled it)."""
    occurrence = ScheduleOccurrence(schedule_id=schedule_id, occurs_at=at, status=status)
    try:
        with db.session.begin_nested():
            db.session.add(occurrence)
    except IntegrityError:
        return None
    return occurrence.id


def _reachable(schedule_id: int) -> list[int]:
    """The schedule's chats that can receive now."""
    return list(
        db.session.scalars(
            select(Connection.id)
            .join(schedule_connections, schedule_connections.c.connection_id == Connection.id)
            .where(
                schedule_connections.c.schedule_id == schedule_id,
                Connection.status == ConnectionStatus.ACTIVE,
            )
            .order_by(Connection.id)
        )
    )
