"""Scheduled sends end to end, as `make run` runs them: the site and its relay over real HTTP,
and the worker thread `flask serve` starts beside the web server (deliveries and the
scheduler job). A send-later notification reaches the sandbox inbox at its time, not before;
a schedule's occurrence missed a moment ago is caught up and delivered."""

from __future__ import annotations

from datetime import timedelta

import requests
from sqlalchemy import select, update

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import (
    Connection,
    DeliveryAttempt,
    Notification,
    Schedule,
    ScheduleOccurrence,
    User,
)
from notify_site.notify_content import Content
from notify_site.services import sending
from notify_site.services.schedules import manage
from tests.integration.helpers import connect_chat, register, relay_reader
from tests.servers import wait_until


def connected(live) -> tuple[int, int]:
    browser = requests.Session()
    register(browser, live.site)
    connect_chat(browser, live.site, "Me", "1-on-1")
    with live.app.app_context():
        connection = db.session.scalars(select(Connection)).one()
        return connection.owner_id, connection.id


def status_of(live, notification_id: int) -> str:
    with live.app.app_context():
        try:
            return db.session.get(Notification, notification_id).status
        finally:
            db.session.remove()


def inbox(live) -> list[str]:
    answer = relay_reader(live).get(f"{live.relay}/inbox.json", timeout=10)
    answer.raise_for_status()
    return [message["message"] for message in answer.json()["messages"]]


def test_a_notification_sent_later_is_delivered_at_its_time(live, in_process_worker):
    owner_id, chat = connected(live)
    with live.app.app_context():
        send_at = utcnow() + timedelta(seconds=3)
        [row] = sending.send(
            sending.Sender.person(db.session.get(User, owner_id)),
            [chat],
            Content(message="Stand-up in 5 minutes"),
            options=sending.SendOptions(source=sending.Source.API, send_at=send_at),
        ).notifications
    assert "Stand-up in 5 minutes" not in inbox(live)
    wait_until(lambda: "Stand-up in 5 minutes" in inbox(live), 30, "the message in the inbox")
    # The relay shows the message as soon as it has it; the worker records the answer a
    # moment later (on a loaded machine, after this test looked: it once read "sending").
    wait_until(lambda: status_of(live, row.id) == "delivered", 30, "the row recorded delivered")
    with live.app.app_context():
        started = db.session.scalar(
            select(DeliveryAttempt.started_at).where(DeliveryAttempt.notification_id == row.id)
        )
    assert send_at <= started <= send_at + timedelta(seconds=10)


def test_a_missed_occurrence_is_caught_up_by_the_servers_worker(live, in_process_worker):
    owner_id, chat = connected(live)
    with live.app.app_context():
        owner = db.session.get(User, owner_id)
        schedule = manage.create_schedule(
            sending.Sender.person(owner),
            manage.ScheduleDraft(
                name="Every minute",
                targets=[chat],
                content=Content(message="tick"),
                rule="FREQ=MINUTELY",
                timezone="UTC",
            ),
        )
        # The worker was down at the start of this minute: the occurrence is 0-60 s old.
        missed = schedule.next_run_at - timedelta(minutes=1)
        db.session.execute(
            update(Schedule).where(Schedule.id == schedule.id).values(next_run_at=missed)
        )
        db.session.commit()
    wait_until(lambda: "tick" in inbox(live), 30, "the caught-up occurrence in the inbox")
    with live.app.app_context():
        occurrence = db.session.scalars(select(ScheduleOccurrence)).first()
        assert (occurrence.occurs_at, occurrence.status) == (missed, "queued")
