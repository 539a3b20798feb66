"""Four `flask --app wsgi worker` processes on PostgreSQL queue every occurrence of every
schedule exactly once (issue 17), one of them killed with SIGKILL mid-run and restarted.

20 schedules, each every minute to two chats, were missed for the last 30 minutes (their
``next_run_at`` is set back to their start, as if no worker had run): on catch-up every
worker's scheduler job races for them. Short leases and small rounds make the workers take
schedules over from each other all the time. Checked in the database afterwards: each
schedule's occurrences are exactly the rule's minutes from its start to where it stands now,
each recorded once, each with one notification per chat, and nothing else queued.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import (
    Notification,
    NotificationStatus,
    Schedule,
    ScheduleOccurrence,
    ScheduleStatus,
    User,
)
from notify_site.notify_content import Content
from notify_site.services import notifications
from notify_site.services.claims import claim_batch, claim_connections
from notify_site.services.delivery import worker_settings
from notify_site.services.notifications import add_notifications
from notify_site.services.schedules import manage
from notify_site.services.schedules.recurrence import to_local
from notify_site.services.sending import Sender
from tests.factories import create_connection, create_user
from tests.processes import WorkerProcess, worker_env
from tests.servers import wait_until

pytestmark = pytest.mark.postgres

SCHEDULES = 20
MISSED_MINUTES = 30
WORKERS = 4


@pytest.fixture
def app_config(app_config):
    # Deliveries fail fast (nothing listens on port 9) and wait a minute: only queueing counts.
    return {**app_config, "NOTIFY_API_ORIGIN": "http://127.0.0.1:9"}


def _make_schedules(app) -> list[int]:
    with app.app_context():
        owner = create_user("alice")
        chats = [create_connection(owner, label=name).id for name in ("Ops", "Family")]
        start = utcnow().replace(second=0, microsecond=0) - timedelta(minutes=MISSED_MINUTES)
        ids = []
        for n in range(SCHEDULES):
            zone = ("Asia/Tokyo", "America/New_York", "UTC")[n % 3]
            draft = manage.ScheduleDraft(
                name=f"every minute {n}",
                targets=chats,
                content=Content(message=f"tick {n}"),
                rule="FREQ=MINUTELY",
                timezone=zone,
                starts_local=to_local(start, ZoneInfo(zone)),
            )
            ids.append(
                manage.create_schedule(Sender.person(db.session.get(User, owner.id)), draft).id
            )
        # Missed while nothing ran: each is due from its very first minute.
        db.session.execute(update(Schedule).values(next_run_at=start))
        db.session.commit()
        return ids


def _caught_up(app) -> bool:
    with app.app_context():
        behind = db.session.scalar(
            select(func.count())
            .select_from(Schedule)
            .where(Schedule.next_run_at <= utcnow() - timedelta(seconds=5))
        )
        db.session.rollback()
        return behind == 0


# About 40 s on this 2-core machine (four processes starting, then 600 occurrences).
@pytest.mark.slow
def test_four_workers_queue_every_occurrence_exactly_once(app, tmp_path):
    ids = _make_schedules(app)
    env = worker_env(
        app.config,
        tmp_path / "worker-instance",
        WORKER_LEASE_SECONDS=2,
        WORKER_POLL_INTERVAL=0.1,
        SCHEDULE_CATCH_UP_SECONDS=3 * 3600,
        SCHEDULE_CLAIM_BATCH=3,
        SCHEDULE_OCCURRENCES_PER_ROUND=4,
    )
    workers = [
        WorkerProcess(env, threads=1, log_path=tmp_path / f"w{n}.log", name=f"w{n}").start()
        for n in range(WORKERS)
    ]
    try:
        time.sleep(random.uniform(1.0, 2.0))  # noqa: S311 - a moment mid-run, not a secret
        workers[0].kill()  # mid-round: its claims are taken over once their lease runs out
        workers[0].start()
        wait_until(
            lambda: _caught_up(app),
            180,
            "every schedule caught up",
            interval=0.5,
            details=lambda: "\n".join(w.log_tail() for w in workers),
        )
    finally:
        for worker in workers:
            worker.ensure_stopped()

    with app.app_context():
        occurrences = db.session.execute(
            select(
                ScheduleOccurrence.schedule_id,
                ScheduleOccurrence.occurs_at,
                ScheduleOccurrence.status,
            )
        ).all()
        per_occurrence = Counter(
            db.session.execute(select(Notification.occurrence_id, Notification.connection_id)).all()
        )
        occurrence_ids = set(db.session.scalars(select(ScheduleOccurrence.id)))
        for schedule_id in ids:
            schedule = db.session.get(Schedule, schedule_id)
            assert schedule.status == ScheduleStatus.ACTIVE
            rule = manage.rule_of(schedule)
            first = rule.first()
            expected = [first, *rule.next(first, 10_000)]
            expected = [at for at in expected if at < schedule.next_run_at]
            handled = sorted(at for sid, at, _ in occurrences if sid == schedule_id)
            assert handled == expected, schedule_id  # every minute, each once
            assert len(handled) >= MISSED_MINUTES
        assert {status for *_, status in occurrences} == {"queued"}
        # One notification per chat per occurrence, every one of them from an occurrence.
        assert set(per_occurrence.values()) == {1}
        assert {occurrence for occurrence, _ in per_occurrence} == occurrence_ids
        assert len(per_occurrence) == 2 * len(occurrences)


def test_a_cancel_racing_a_worker_for_the_same_rows_never_both_win(app):
    """200 send-later rows fall due; a worker claims them while their owner cancels them, in
    two threads. Every row ends either cancelled (and the cancel said so) or taken by the
    worker (and the cancel said it was not cancelled): never both, never neither."""
    with app.app_context():
        owner = create_user("alice")
        chats = [create_connection(owner, label=f"chat {n}") for n in range(10)]
        soon = utcnow() + timedelta(seconds=1)
        for _ in range(20):
            add_notifications(owner, chats, Content(message="race"), send_at=soon)
        db.session.commit()
        ids = list(db.session.scalars(select(Notification.id)))
        owner_id = owner.id
    while utcnow() <= soon:
        time.sleep(0.05)

    def claim() -> set[int]:
        taken: set[int] = set()
        with app.app_context():
            settings = worker_settings()
            for _ in range(50):
                claims = claim_connections(10, settings.lease)
                for one in claims:
                    taken |= {
                        row.id for row in claim_batch(one, 5, settings.lease, settings.policy)
                    }
                if not claims:
                    break
        return taken

    def cancel() -> dict[int, bool]:
        said: dict[int, bool] = {}
        with app.app_context():
            user = db.session.get(User, owner_id)
            for row_id in random.sample(ids, len(ids)):
                try:
                    notifications.cancel_scheduled(user, row_id)
                    said[row_id] = True
                except notifications.NotCancellableError:
                    said[row_id] = False
        return said

    with ThreadPoolExecutor(2) as pool:
        claiming, cancelling = pool.submit(claim), pool.submit(cancel)
        taken, said = claiming.result(), cancelling.result()
    with app.app_context():
        final = dict(db.session.execute(select(Notification.id, Notification.status)).all())
    cancelled = {row for row, ok in said.items() if ok}
    assert cancelled.isdisjoint(taken)
    assert cancelled | taken == set(ids)
    assert {final[row] for row in cancelled} <= {NotificationStatus.CANCELLED}
    assert {final[row] for row in taken} <= {NotificationStatus.SENDING}
    assert taken
