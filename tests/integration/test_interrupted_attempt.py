"""A worker SIGKILLed in the middle of a call leaves that call in the history (issue 12, item 12).

A real `flask --app wsgi worker` process calls a fake Notify server over HTTP that holds the
call (tests/fakes/notify_api.py); the worker is killed while the server holds it, and the
server then answers 200 to a dead socket, as a real one would (the message got through). A
second worker delivers the row again. The server saw two calls; the history says so.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

from notify_site import create_app
from notify_site.extensions import db
from notify_site.models import DeliveryAttempt, Notification, NotificationStatus
from notify_site.notify_content import Content
from notify_site.services.notifications import add_notifications
from tests.conftest import init_database, make_test_config
from tests.factories import create_api_key, create_connection, create_user
from tests.fakes.notify_api import FakeNotifyServer
from tests.processes import WorkerProcess, worker_env
from tests.servers import wait_until

TOKEN = "held-call-token"
LEASE_SECONDS = 2


@pytest.fixture
def fake():
    server = FakeNotifyServer()
    yield server
    server.stop()


@pytest.fixture
def app(tmp_path, fake):
    app = create_app(make_test_config(tmp_path, NOTIFY_API_ORIGIN=fake.url))
    init_database(app)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def start_worker(app, tmp_path) -> WorkerProcess:
    env = worker_env(
        app.config,
        tmp_path / "worker-instance",
        WORKER_LEASE_SECONDS=LEASE_SECONDS,
        WORKER_POLL_INTERVAL=0.1,
        NOTIFY_TIMEOUT=60,  # longer than the hold: the kill cuts the call
    )
    return WorkerProcess(env, threads=1).start()


def api_view(app, notification_id: int, key: str) -> dict:
    answer = app.test_client().get(
        f"/api/v1/notifications/{notification_id}", headers={"Authorization": f"Bearer {key}"}
    )
    assert answer.status_code == 200
    return answer.get_json()


def test_a_worker_killed_during_its_call_leaves_the_call_in_the_history(app, fake, tmp_path):
    with app.app_context():
        alice = create_user("alice")
        phone = create_connection(alice, label="Phone", token=TOKEN)
        _, key = create_api_key(alice, "alice")
        [row] = add_notifications(alice, [phone], Content(message="held"))
        db.session.commit()
        notification_id = row.id

    release = threading.Event()
    fake.state.hold(release)
    first = start_worker(app, tmp_path)
    try:
        wait_until(lambda: len(fake.state.notify_calls()) == 1, 60, "the held call")
        during = api_view(app, notification_id, key)
        assert during["status"] == NotificationStatus.SENDING
        assert [a["outcome"] for a in during["history"]] == ["in_flight"]
    finally:
        first.kill()
    fake.state.hold(None)
    release.set()  # the server goes on and answers 200 to a dead socket: the message got through
    wait_until(lambda: fake.state.delivered()["held"] == 1, 10, "the held call's answer")

    # Before anyone claims the row again: once the lease ran out, the call shows as interrupted.
    time.sleep(LEASE_SECONDS + 0.5)
    [cut] = api_view(app, notification_id, key)["history"]
    assert (cut["outcome"], cut["error"]) == (
        "interrupted",
        "no answer recorded: the worker stopped during the call",
    )

    second = start_worker(app, tmp_path)
    try:
        wait_until(
            lambda: api_view(app, notification_id, key)["status"] == NotificationStatus.DELIVERED,
            60,
            "the second worker's delivery",
        )
    finally:
        assert second.terminate() == 0

    assert [call.status for call in fake.state.notify_calls()] == [200, 200]  # two calls
    after = api_view(app, notification_id, key)
    assert after["attempts"] == 2  # was 1: the cut-off call left no trace
    assert [(a["outcome"], a["status_code"]) for a in after["history"]] == [
        ("interrupted", None),
        ("delivered", 200),
    ]
    with app.app_context():
        workers = db.session.scalars(
            select(DeliveryAttempt.worker)
            .join(Notification)
            .where(Notification.id == notification_id)
            .order_by(DeliveryAttempt.id)
        ).all()
    assert len(set(workers)) == 2  # one attempt per worker process
