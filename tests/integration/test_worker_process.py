"""`flask --app wsgi worker` as a real process: SIGKILLed mid-run, restarted, nothing lost."""

from __future__ import annotations

import requests

from notify_site.models import Notification, NotificationStatus
from tests.integration.helpers import connect_chat, register
from tests.worker_processes import (
    WorkerProcess,
    count_notifications,
    queue_round_robin,
    received,
    wait_watching,
)

THREADS = 3
TOTAL = 300


def worker_process(live, tmp_path) -> WorkerProcess:
    return WorkerProcess(
        live,
        tmp_path,
        "worker",
        threads=THREADS,
        WORKER_LEASE_SECONDS=2,
        WORKER_BATCH_SIZE=5,
        WORKER_POLL_INTERVAL=0.1,
    ).start()


def test_sigkilled_worker_loses_nothing(live, tmp_path):
    browser = requests.Session()
    register(browser, live.site)
    for label, chat in (("Me", "1-on-1"), ("Family", "Family"), ("Team", "Team alerts")):
        connect_chat(browser, live.site, label, chat)
    queue_round_robin(live, TOTAL, "kill-test")
    delivered = Notification.status == NotificationStatus.DELIVERED

    kills = 0
    for threshold in (60, 160):
        worker = worker_process(live, tmp_path)
        wait_watching(
            [worker],
            lambda t=threshold: count_notifications(live, delivered) >= t,
            60,
            f"{threshold} deliveries",
            interval=0.05,
        )
        worker.kill()
        kills += 1
    assert count_notifications(live, delivered) < TOTAL, "the kills came too late to prove anything"

    worker = worker_process(live, tmp_path)
    try:
        wait_watching(
            [worker],
            lambda: count_notifications(live, delivered) == TOTAL,
            90,
            "every notification delivered",
            interval=0.05,
        )
    finally:
        assert worker.terminate() == 0  # SIGTERM stops it cleanly

    got = received(live)
    missing = [n for n in range(TOTAL) if got.get(f"kill-test {n}", 0) == 0]
    assert missing == []
    duplicates = sum(got.values()) - TOTAL
    # A duplicate needs a kill between the relay's 200 and the commit; each of the worker's
    # threads has at most one call in flight.
    assert duplicates <= kills * THREADS
