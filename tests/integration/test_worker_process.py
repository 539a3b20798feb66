"""`flask --app wsgi worker` as a real process: SIGKILLed mid-run, restarted, nothing lost."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
import requests
from sqlalchemy import func, select

from notify_site.extensions import db
from notify_site.models import Connection, Notification, NotificationStatus, User
from notify_site.notify_content import Content
from notify_site.relay.models import RelayMessage
from notify_site.services.notifications import add_notifications
from tests.integration.helpers import connect_chat, register
from tests.processes import WorkerProcess, worker_env

THREADS = 3
TOTAL = 300


def worker_process(live, tmp_path) -> subprocess.Popen:
    env = worker_env(
        live.app.config,
        tmp_path / "worker-instance",
        WORKER_LEASE_SECONDS=2,
        WORKER_BATCH_SIZE=5,
        WORKER_POLL_INTERVAL=0.1,
    )
    return WorkerProcess(env, threads=THREADS).start().process


def count(live, *conditions) -> int:
    with live.app.app_context():
        value = db.session.scalar(select(func.count()).select_from(Notification).where(*conditions))
        db.session.rollback()
        return value


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_sigkilled_worker_loses_nothing(live, tmp_path):
    browser = requests.Session()
    register(browser, live.site)
    for label, chat in (("Me", "1-on-1"), ("Family", "Family"), ("Team", "Team alerts")):
        connect_chat(browser, live.site, label, chat)
    with live.app.app_context():
        connections = list(db.session.scalars(select(Connection)))
        owner = db.session.get(User, connections[0].owner_id)
        for n in range(TOTAL):
            content = Content(message=f"kill-test {n}")
            add_notifications(owner, [connections[n % 3]], content)
        db.session.commit()
    delivered = Notification.status == NotificationStatus.DELIVERED

    kills = 0
    for threshold in (60, 160):
        process = worker_process(live, tmp_path)
        wait_until(lambda t=threshold: count(live, delivered) >= t, 60, f"{threshold} deliveries")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        kills += 1
    assert count(live, delivered) < TOTAL, "the kills came too late to prove anything"

    process = worker_process(live, tmp_path)
    try:
        wait_until(lambda: count(live, delivered) == TOTAL, 90, "every notification delivered")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0  # SIGTERM stops it cleanly

    with live.app.app_context():
        received = dict(
            db.session.execute(
                select(RelayMessage.message, func.count()).group_by(RelayMessage.message)
            ).all()
        )
    missing = [n for n in range(TOTAL) if received.get(f"kill-test {n}", 0) == 0]
    assert missing == []
    duplicates = sum(received.values()) - TOTAL
    # A duplicate needs a kill between the relay's 200 and the commit; each of the worker's
    # threads has at most one call in flight.
    assert duplicates <= kills * THREADS
