"""The scheduler job (services/schedules/runner.py): every occurrence queued once, catch-up
and skip, pause and resume, a fence that stops a worker whose claim was taken over. With a
controllable clock (time-machine)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from sqlalchemy import func, select, update

from notify_site.extensions import db
from notify_site.models import (
    Connection,
    ConnectionStatus,
    Notification,
    NotificationStatus,
    OccurrenceStatus,
    Schedule,
    ScheduleOccurrence,
    ScheduleStatus,
    User,
)
from notify_site.notify_content import Content
from notify_site.services.schedules import manage, runner
from notify_site.services.schedules.recurrence import Recurrence, build_rule
from notify_site.services.sending import Sender
from tests.unit.schedules.conftest import utc

SETTINGS = runner.RunnerSettings(
    catch_up=timedelta(hours=1), lease=timedelta(seconds=60), claim_batch=50, per_round=100
)


def make_schedule(world, rule: str, *, zone="UTC", starts=datetime(2027, 1, 1), targets=None):
    alice = db.session.get(User, world["alice"])
    return manage.create_schedule(
        Sender.person(alice),
        manage.ScheduleDraft(
            name="Standup",
            targets=targets or [world["family"]],
            content=Content(message="Standup in 5 minutes"),
            rule=rule,
            timezone=zone,
            starts_local=starts,
        ),
    ).id


DAILY_9 = build_rule(Recurrence("daily", time(9, 0)))


def queued(schedule_id: int) -> list[tuple]:
    return list(
        db.session.execute(
            select(Notification.send_at, Notification.status, Notification.connection_id)
            .join(ScheduleOccurrence, ScheduleOccurrence.id == Notification.occurrence_id)
            .where(ScheduleOccurrence.schedule_id == schedule_id)
            .order_by(Notification.send_at, Notification.connection_id)
        ).all()
    )


def occurrences(schedule_id: int) -> list[tuple]:
    return list(
        db.session.execute(
            select(ScheduleOccurrence.occurs_at, ScheduleOccurrence.status)
            .where(ScheduleOccurrence.schedule_id == schedule_id)
            .order_by(ScheduleOccurrence.occurs_at)
        ).all()
    )


def test_a_due_occurrence_is_queued_once_however_often_the_job_runs(app, world, clock):
    with app.app_context():
        schedule_id = make_schedule(world, DAILY_9, targets=[world["family"], world["ops"]])
        assert db.session.get(Schedule, schedule_id).next_run_at == utc(2027, 1, 4, 9)
        assert runner.run_due_schedules(SETTINGS) == 0  # not due yet
        clock.move_to(utc(2027, 1, 4, 9, 0, 1))
        assert runner.run_due_schedules(SETTINGS) == 1
        assert runner.run_due_schedules(SETTINGS) == 0
        assert queued(schedule_id) == [
            (utc(2027, 1, 4, 9), NotificationStatus.QUEUED, world["family"]),
            (utc(2027, 1, 4, 9), NotificationStatus.QUEUED, world["ops"]),
        ]
        schedule = db.session.get(Schedule, schedule_id)
        db.session.refresh(schedule)
        assert schedule.next_run_at == utc(2027, 1, 5, 9)
        assert schedule.lease_token is None


def test_missed_occurrences_are_caught_up_if_recent_and_skipped_if_older(app, world, clock):
    with app.app_context():
        schedule_id = make_schedule(world, DAILY_9)
        # Nothing ran for three days; a worker comes back 30 minutes after the third 09:00.
        clock.move_to(utc(2027, 1, 6, 9, 30))
        runner.run_due_schedules(SETTINGS)
        assert occurrences(schedule_id) == [
            (utc(2027, 1, 4, 9), OccurrenceStatus.SKIPPED),
            (utc(2027, 1, 5, 9), OccurrenceStatus.SKIPPED),
            (utc(2027, 1, 6, 9), OccurrenceStatus.QUEUED),
        ]
        assert queued(schedule_id) == [(utc(2027, 1, 6, 9), "queued", world["family"])]


def test_the_catch_up_age_is_a_setting(app, world, clock):
    with app.app_context():
        schedule_id = make_schedule(world, DAILY_9)
        clock.move_to(utc(2027, 1, 5, 10))  # 25 hours after the first, 1 after the second
        wide = runner.RunnerSettings(timedelta(days=2), timedelta(seconds=60), 50, 100)
        runner.run_due_schedules(wide)
        assert [status for _, status in occurrences(schedule_id)] == ["queued", "queued"]


def test_a_paused_schedule_sends_nothing_and_resumes_from_the_next_occurrence(app, world, clock):
    with app.app_context():
        alice = db.session.get(User, world["alice"])
        schedule_id = make_schedule(world, DAILY_9)
        manage.pause_schedule(alice, schedule_id)
        clock.move_to(utc(2027, 1, 5, 9, 0, 30))
        assert runner.run_due_schedules(SETTINGS) == 0
        with pytest.raises(manage.ScheduleStateError):
            manage.pause_schedule(alice, schedule_id)
        schedule = manage.resume_schedule(alice, schedule_id)
        assert (schedule.status, schedule.next_run_at) == ("active", utc(2027, 1, 6, 9))
        assert runner.run_due_schedules(SETTINGS) == 0
        assert occurrences(schedule_id) == []  # paused is not missed: nothing recorded
        clock.move_to(utc(2027, 1, 6, 9, 0, 1))
        assert runner.run_due_schedules(SETTINGS) == 1
        with pytest.raises(manage.ScheduleStateError):
            manage.resume_schedule(alice, schedule_id)


def test_an_occurrence_already_recorded_is_not_queued_again(app, world, clock):
    # Another worker (or a process that died after its commit) handled 09:00 already.
    with app.app_context():
        schedule_id = make_schedule(world, DAILY_9)
        db.session.add(
            ScheduleOccurrence(
                schedule_id=schedule_id, occurs_at=utc(2027, 1, 4, 9), status="queued"
            )
        )
        db.session.commit()
        clock.move_to(utc(2027, 1, 4, 9, 1))
        runner.run_due_schedules(SETTINGS)
        assert queued(schedule_id) == []
        assert db.session.get(Schedule, schedule_id).next_run_at == utc(2027, 1, 5, 9)


def test_a_claim_taken_over_after_its_lease_ran_out_queues_nothing(app, world, clock):
    with app.app_context():
        schedule_id = make_schedule(world, DAILY_9)
        clock.move_to(utc(2027, 1, 4, 9, 1))
        [(_, stale)] = runner.claim_due(SETTINGS)
        # The first worker stalls past its lease; a second one claims and does the work.
        clock.move_to(utc(2027, 1, 4, 9, 3))
        [(_, fresh)] = runner.claim_due(SETTINGS)
        assert runner.run_schedule(schedule_id, fresh, SETTINGS) == 1
        # The stalled worker wakes up: its fence refuses it, and it queues nothing more.
        runner.run_schedule(schedule_id, stale, SETTINGS)
        db.session.execute(
            update(Schedule)
            .where(Schedule.id == schedule_id)
            .values(lease_token=stale, next_run_at=utc(2027, 1, 4, 9))
        )
        db.session.commit()  # even pointed back at 09:00, the unique key stops it
        runner.run_schedule(schedule_id, stale, SETTINGS)
        assert len(queued(schedule_id)) == 1
        assert len(occurrences(schedule_id)) == 1


def test_an_occurrence_with_no_chat_that_can_receive_is_recorded_as_not_sent(app, world, clock):
    with app.app_context():
        schedule_id = make_schedule(world, DAILY_9, targets=[world["family"], world["ops"]])
        db.session.execute(
            update(Connection)
            .where(Connection.id == world["ops"])
            .values(status=ConnectionStatus.REVOKED)
        )
        db.session.commit()
        clock.move_to(utc(2027, 1, 4, 9, 1))
        runner.run_due_schedules(SETTINGS)
        assert queued(schedule_id) == [(utc(2027, 1, 4, 9), "queued", world["family"])]
        db.session.execute(
            update(Connection)
            .where(Connection.id == world["family"])
            .values(status=ConnectionStatus.REVOKED)
        )
        db.session.commit()
        clock.move_to(utc(2027, 1, 5, 9, 1))
        runner.run_due_schedules(SETTINGS)
        assert occurrences(schedule_id)[-1] == (utc(2027, 1, 5, 9), OccurrenceStatus.NOT_SENT)


def test_a_schedule_whose_rule_runs_out_is_finished(app, world, clock):
    with app.app_context():
        schedule_id = make_schedule(world, DAILY_9 + ";COUNT=5", starts=datetime(2027, 1, 1))
        clock.move_to(utc(2027, 1, 5, 9, 1))
        runner.run_due_schedules(SETTINGS)
        schedule = db.session.get(Schedule, schedule_id)
        db.session.refresh(schedule)
        # 1–3 January came before the schedule existed; 4 January is a day late (skipped).
        assert (schedule.status, schedule.next_run_at) == (ScheduleStatus.FINISHED, None)
        assert [status for _, status in occurrences(schedule_id)] == ["skipped", "queued"]
        assert manage.next_occurrences(schedule) == []


def test_daily_0900_new_york_is_queued_at_0900_local_across_daylight_saving(app, world, clock):
    with app.app_context():
        clock.move_to(utc(2027, 3, 12))
        schedule_id = make_schedule(world, DAILY_9, zone="America/New_York")
        # A worker looks at 08:00, 09:05 and 10:00 local each day.
        for day, offset in ((12, 5), (13, 5), (14, 4), (15, 4)):
            for hour, minute in ((8, 0), (9, 5), (10, 0)):
                clock.move_to(utc(2027, 3, day, hour + offset, minute))
                runner.run_due_schedules(SETTINGS)
        assert [at for at, *_ in queued(schedule_id)] == [
            utc(2027, 3, 12, 14),
            utc(2027, 3, 13, 14),
            utc(2027, 3, 14, 13),
            utc(2027, 3, 15, 13),
        ]


def test_the_job_runs_in_the_worker(app, world, clock):
    from notify_site.worker import Worker

    with app.app_context():
        schedule_id = make_schedule(world, DAILY_9)
    clock.move_to(utc(2027, 1, 4, 9, 0, 5))
    app.config["NOTIFY_API_ORIGIN"] = "http://127.0.0.1:9"  # nothing delivered: no connection
    Worker(app, threads=1)._run_jobs_once()
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Notification)) == 1
        assert occurrences(schedule_id) == [(utc(2027, 1, 4, 9), "queued")]
