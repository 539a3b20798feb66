"""PostgreSQL restarted in the middle of a run: 503s while it is down, nothing accepted is lost.

A client posts notifications to the JSON API without pause while four worker processes
deliver them through the relay; the PostgreSQL cluster is stopped, polled while down, and
started again. Checked:

- while the database is down the API answers 503 JSON (``service_unavailable``), never 500,
  and /healthz answers 503;
- every notification the API accepted (202) reaches the relay: 0 lost;
- the queue drains after the restart.

This stops the server the other tests use, so it runs only on the PostgreSQL pass (slow), and
it starts the cluster again whatever happens.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.models import Connection, Notification, NotificationStatus, User
from tests.factories import create_api_key
from tests.pg_schemas import PG_URL
from tests.worker_processes import (
    METRICS_TOKEN,
    connect_many,
    count_notifications,
    received,
    retrying_worker,
    wait_watching,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CONNECTIONS = 20
WORKERS = 4
THREADS = 4
BEFORE = 400  # accepted before the stop
AFTER = 400  # accepted after the start
DOWN_SECONDS = 4


def cluster() -> tuple[str, str]:
    """The (version, name) of the local cluster serving the test database's port."""
    port = str(urlsplit(PG_URL.replace("+psycopg", "")).port or 5432)
    lines = subprocess.run(
        ["pg_lsclusters", "--no-header"], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    for line in lines:
        version, name, cluster_port, *_ = line.split()
        if cluster_port == port:
            return version, name
    pytest.fail(f"no local PostgreSQL cluster listens on port {port}: cannot restart it")


def pg_ctlcluster(action: str) -> None:
    version, name = cluster()
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, action],
        check=True,
        capture_output=True,
    )


def pg_is_up() -> bool:
    parts = urlsplit(PG_URL.replace("+psycopg", ""))
    host, port = parts.hostname or "127.0.0.1", str(parts.port or 5432)
    return subprocess.run(["pg_isready", "-q", "-h", host, "-p", port], check=False).returncode == 0


def ensure_pg_running(timeout: float = 60) -> None:
    """Start the cluster unless it answers; retried, since a stop may still be under way."""
    deadline = time.monotonic() + timeout
    while not pg_is_up():
        if time.monotonic() > deadline:
            pytest.fail("PostgreSQL could not be started again")
        version, name = cluster()
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "start"],
            check=False,
            capture_output=True,
        )
        time.sleep(0.5)


class Poster:
    """A client posting one notification at a time to the API until stopped."""

    def __init__(self, site: str, key: str, connection_ids: list[int]) -> None:
        self.url = f"{site}/api/v1/notifications"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"
        self.connection_ids = connection_ids
        self.accepted: dict[int, str] = {}  # notification id -> message
        self.answers: list[tuple[float, int, dict]] = []  # (time, status, body)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            message = f"restart {n}"
            connection = self.connection_ids[n % len(self.connection_ids)]
            n += 1
            try:
                answer = self.session.post(
                    self.url, json={"connection": connection, "message": message}, timeout=30
                )
            except requests.RequestException as error:  # the site itself never goes away
                self.answers.append((time.monotonic(), 0, {"exception": repr(error)}))
                continue
            try:
                body = answer.json()
            except ValueError:
                body = {"not_json": answer.text[:200]}
            self.answers.append((time.monotonic(), answer.status_code, body))
            if answer.status_code == 202:
                for record in body["notifications"]:
                    self.accepted[record["id"]] = message
            elif answer.status_code == 503:
                time.sleep(0.05)

    def start(self) -> Poster:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def statuses(self, since: float = 0, until: float = float("inf")) -> Counter:
        return Counter(status for at, status, _ in self.answers if since <= at <= until)


@pytest.fixture
def live_overrides(pg_url):
    return {
        "DATABASE_URL": pg_url,
        "API_RATE_LIMIT": "1000000 per minute",
        "METRICS_TOKEN": METRICS_TOKEN,
    }


def test_postgres_restart_gives_503s_and_loses_nothing_accepted(live, tmp_path):
    connect_many(live, CONNECTIONS)
    with live.app.app_context():
        owner = db.session.scalars(select(User)).one()
        _, key = create_api_key(owner, "restart test")
        connection_ids = list(db.session.scalars(select(Connection.id)))
        db.session.commit()

    workers = [
        retrying_worker(live, tmp_path, f"worker-{n}", threads=THREADS, lease=3).start()
        for n in range(WORKERS)
    ]
    poster = Poster(live.site, key, connection_ids).start()
    health_while_down: list[int] = []
    try:
        wait_watching(workers, lambda: len(poster.accepted) >= BEFORE, 120, f"{BEFORE} accepted")
        stopped_at = time.monotonic()
        try:
            pg_ctlcluster("stop")
            down_from = time.monotonic()
            while time.monotonic() - down_from < DOWN_SECONDS:
                health = requests.get(f"{live.site}/healthz", timeout=10)
                health_while_down.append(health.status_code)
                time.sleep(0.5)
        finally:
            ensure_pg_running()
        started_at = time.monotonic()
        accepted_before_start = len(poster.accepted)
        wait_watching(
            workers,
            lambda: len(poster.accepted) >= accepted_before_start + AFTER,
            120,
            f"{AFTER} more accepted after the restart",
        )
        poster.stop()
        accepted = dict(poster.accepted)
        drained = wait_watching(
            workers,
            lambda: (
                count_notifications(live, Notification.status.in_(NotificationStatus.PENDING)) == 0
            ),
            120,
            "the queue to drain",
        )
        drained_at = time.monotonic()
        assert all(worker.terminate() == 0 for worker in workers)
    finally:
        poster.stop()
        ensure_pg_running()
        for worker in workers:
            worker.ensure_stopped()

    # While it was down: 503 JSON, never a 500.
    during = poster.statuses(stopped_at, started_at)
    assert during[503] > 0, f"no 503 while the database was down: {during}"
    assert poster.statuses()[500] == 0
    assert set(poster.statuses()) <= {202, 503}, poster.statuses()
    for _, status, body in poster.answers:
        if status == 503:
            assert body["error"]["code"] == "service_unavailable"
    assert 503 in health_while_down

    # Nothing accepted was lost: every 202's notification was delivered, and the relay has it.
    with live.app.app_context():
        statuses = dict(
            db.session.execute(
                select(Notification.id, Notification.status).where(
                    Notification.id.in_(list(accepted))
                )
            ).all()
        )
    assert len(statuses) == len(accepted)
    assert set(statuses.values()) == {NotificationStatus.DELIVERED}
    got = received(live)
    lost = [message for message in accepted.values() if got.get(message, 0) == 0]
    assert lost == []
    duplicates = sum(got.get(message, 0) for message in accepted.values()) - len(accepted)
    print(
        f"\nrestart: {len(accepted)} accepted, {during[503]} answers 503 while down "
        f"({DOWN_SECONDS} s), 0 lost, {duplicates} duplicates; the queue drained "
        f"{drained_at - started_at:.1f} s after the start, "
        f"{drained:.1f} s after the last post"
    )
