"""Several workers sharing PostgreSQL deliver everything exactly once (SKIP LOCKED claims)."""

from __future__ import annotations

import threading

import pytest
import requests
from sqlalchemy import func, select

from notify_site.extensions import db
from notify_site.models import Notification, NotificationStatus
from notify_site.relay.models import RelayMessage
from notify_site.worker import Worker
from tests.integration.helpers import connect_chat, register
from tests.worker_processes import queue_round_robin

TOTAL = 200


@pytest.fixture
def live_overrides(pg_url):
    return {"DATABASE_URL": pg_url}


def test_three_workers_deliver_every_notification_once(live):
    assert live.app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")
    browser = requests.Session()
    register(browser, live.site)
    for label, chat in (("Me", "1-on-1"), ("Family", "Family"), ("Team", "Team alerts")):
        connect_chat(browser, live.site, label, chat)
    queue_round_robin(live, TOTAL, "pg")

    workers = [Worker(live.app, threads=2, poll_interval=0.02) for _ in range(3)]
    threads = [threading.Thread(target=worker.run) for worker in workers]
    for thread in threads:
        thread.start()
    try:
        with live.app.app_context():
            for _ in range(600):
                pending = db.session.scalar(
                    select(func.count())
                    .select_from(Notification)
                    .where(Notification.status != NotificationStatus.DELIVERED)
                )
                db.session.rollback()
                if pending == 0:
                    break
                threading.Event().wait(0.05)
    finally:
        for worker in workers:
            worker.stop()
        for thread in threads:
            thread.join(timeout=30)
    with live.app.app_context():
        received = dict(
            db.session.execute(
                select(RelayMessage.message, func.count()).group_by(RelayMessage.message)
            ).all()
        )
    assert len(received) == TOTAL
    assert set(received.values()) == {1}  # no duplicate without a crash
