"""Four `flask --app wsgi worker` processes share PostgreSQL: 2,000 notifications, 10 connections.

Everything goes through the built-in relay of a live server whose database is this test's
PostgreSQL schema. The relay's window is small (``LIMIT`` calls per ``WINDOW`` seconds per
token) so that every connection runs out of its window several times during the run.

Checked at the relay, which is the only witness that counts:

- every notification arrived (0 lost), and without crashes exactly once (0 duplicates);
- no token was admitted past its limit in any window: the relay's windows are replayed over
  the times of the messages it recorded (its 429s are calls not admitted, and record
  nothing); and without crashes no call was even tried in a spent window (0 answers 429);
- with 3 workers SIGKILLed at random moments and restarted: still 0 lost, and duplicates only
  from kills between the relay's 200 and the commit, at most one per thread in flight.

The worker processes and the relay's records come from tests/worker_processes.py, shared with
test_restart_postgres.py.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from notify_site.extensions import db
from notify_site.models import Notification, NotificationStatus
from notify_site.relay.models import RelayMessage
from tests.worker_processes import (
    METRICS_TOKEN,
    connect_many,
    count_notifications,
    queue_round_robin,
    received,
    retrying_worker,
    wait_for_metrics,
    wait_watching,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TOTAL = 2000
CONNECTIONS = 10
WORKERS = 4
THREADS = 4
# The relay admits LIMIT calls per WINDOW seconds per token. A worker thread calls one
# connection at a time in a row, faster than LIMIT per WINDOW, so every claim runs into the
# limit: each connection's 200 notifications need at least 40 windows.
LIMIT = 5
WINDOW = 4  # seconds
# Sized so that the limit binds at a pace this machine's relay keeps (it runs in the test's
# process): 10 connections × 5 per 4 s = 12.5 calls a second at most. (With 50 connections and
# 10 per 4 s the limit asked 125 a second of a relay that took 25-30: the windows never filled.)
# How long after a kill the relay may still start on a request the killed worker sent.
LATE = timedelta(seconds=5)
DELIVERED = Notification.status == NotificationStatus.DELIVERED


# --- What the relay saw ----------------------------------------------------------------------


class RelayCalls:
    """WSGI middleware counting the relay's answers to /api/notify by status."""

    PATH = "/relay/api/notify"

    def __init__(self, app) -> None:
        self.app = app
        self._statuses: Counter = Counter()
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != self.PATH:
            return self.app(environ, start_response)

        def counting(status, headers, exc_info=None):
            with self._lock:
                self._statuses[int(status.split()[0])] += 1
            return start_response(status, headers, exc_info)

        return self.app(environ, counting)

    def statuses(self) -> Counter:
        with self._lock:
            return Counter(self._statuses)


def admitted_per_window(times: list[datetime], window_seconds: int) -> list[int]:
    """Replay the relay's fixed windows over one token's admitted calls (their times).

    A call at ``t`` opens a window when none is open (or the open one has reset); the window
    resets ``window_seconds`` later, rounded up to a whole second (notify_site/relay/ratelimit.py).
    Returns how many calls each window admitted, in order.
    """
    counts: list[int] = []
    reset: datetime | None = None
    for moment in sorted(times):
        if reset is None or moment >= reset:
            reset = moment + timedelta(seconds=window_seconds)
            if reset.microsecond:
                reset = reset.replace(microsecond=0) + timedelta(seconds=1)
            counts.append(0)
        counts[-1] += 1
    return counts


def relay_windows(live, connection_of: dict[str, int]) -> dict[int, list[int]]:
    """Calls admitted per window, per connection, from the relay's own inbox records."""
    with live.app.app_context():
        rows = db.session.execute(select(RelayMessage.message, RelayMessage.created_at)).all()
        db.session.rollback()
    times: dict[int, list[datetime]] = defaultdict(list)
    for message, created_at in rows:
        times[connection_of[message]].append(created_at)
    window = live.app.config["RELAY_RATE_WINDOW"]
    return {connection: admitted_per_window(at, window) for connection, at in times.items()}


# --- Set-up -----------------------------------------------------------------------------------


def scrape_site(live) -> dict[str, float]:
    """The live site's /metrics as {sample name with labels: value}."""
    answer = requests.get(
        f"{live.site}/metrics",
        headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
        timeout=10,
    )
    answer.raise_for_status()
    return {
        f"{sample.name}{json.dumps(sample.labels, sort_keys=True)}": sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


# --- The tests --------------------------------------------------------------------------------


@pytest.fixture
def live_overrides(pg_url):
    return {
        "DATABASE_URL": pg_url,
        "RELAY_RATE_LIMIT": LIMIT,
        "RELAY_RATE_WINDOW": WINDOW,
        "METRICS_TOKEN": METRICS_TOKEN,
    }


@pytest.fixture
def relay_calls(live) -> RelayCalls:
    recorder = RelayCalls(live.app.wsgi_app)
    live.app.wsgi_app = recorder
    return recorder


def test_four_workers_deliver_2000_once_within_every_window(live, relay_calls, tmp_path):
    assert live.app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")
    tokens = connect_many(live, CONNECTIONS)
    # Connecting called /api/status once per token: let those windows pass, so that every
    # call in a window is a delivery the relay recorded.
    time.sleep(WINDOW + 1)
    connection_of = queue_round_robin(live, TOTAL, "scale")
    workers = [
        retrying_worker(live, tmp_path, f"worker-{n}", threads=THREADS, lease=30).start()
        for n in range(WORKERS)
    ]
    try:
        took = wait_watching(
            workers, lambda: count_notifications(live, DELIVERED) == TOTAL, 300, "every delivery"
        )
        wait_for_metrics(workers)
        delivered_calls = sum(worker.delivered_calls() for worker in workers)
        assert all(worker.terminate() == 0 for worker in workers)  # SIGTERM: a clean stop
    finally:
        for worker in workers:
            worker.ensure_stopped()

    got = received(live)
    lost = [message for message in connection_of if got.get(message, 0) == 0]
    duplicates = sum(got.values()) - TOTAL
    assert lost == []
    assert duplicates == 0  # no crash, no duplicate
    assert delivered_calls == TOTAL  # the workers' own count agrees with the relay's

    windows = relay_windows(live, connection_of)
    assert set(windows) == set(tokens)
    over = {connection: counts for connection, counts in windows.items() if max(counts) > LIMIT}
    assert over == {}
    # The windows mattered: the limit was reached, on average at least twice per connection.
    # (With 50 connections at 10 per 4 s, a loaded machine filled 257 of ~500 windows and, on
    # 2026-12-06, a quiet one 19-29: the relay, not the limit, set the pace.)
    full = sum(counts.count(LIMIT) for counts in windows.values())
    assert full >= 2 * CONNECTIONS
    statuses = relay_calls.statuses()
    assert statuses[429] == 0  # never a call into a spent window
    assert statuses[200] == TOTAL

    site = scrape_site(live)
    assert site['notify_site_queue_depth{"state": "queued"}'] == 0
    assert site['notify_site_queue_depth{"state": "sending"}'] == 0
    print(
        f"\nscale: {TOTAL} delivered by {WORKERS}×{THREADS} threads in {took:.1f} s, "
        f"{full} windows filled to the limit, 0 duplicates, 0 answers 429"
    )


def test_sigkilled_workers_lose_nothing_and_duplicate_at_most_one_call_per_thread(
    live, relay_calls, tmp_path
):
    tokens = connect_many(live, CONNECTIONS)
    # Connecting called /api/status once per token: let those windows pass, so that every
    # call in a window is a delivery the relay recorded.
    time.sleep(WINDOW + 1)
    connection_of = queue_round_robin(live, TOTAL, "kill")
    # A short lease, so that a killed worker's rows come back within seconds.
    workers = [
        retrying_worker(live, tmp_path, f"worker-{n}", threads=THREADS, lease=5).start()
        for n in range(WORKERS)
    ]
    rng = random.Random()
    moments = sorted(rng.uniform(0.1, 0.7) for _ in range(3))
    killed_at: list[datetime] = []
    try:
        for moment in moments:
            wait_watching(
                workers,
                lambda m=moment: count_notifications(live, DELIVERED) >= m * TOTAL,
                300,
                f"{moment:.0%} delivered",
            )
            # A random moment within the call, not just at the threshold.
            time.sleep(rng.uniform(0, 0.5))
            victim = rng.choice(workers)
            victim.kill()
            killed_at.append(datetime.now(UTC))
            victim.start()
        assert count_notifications(live, DELIVERED) < TOTAL, (
            "the kills came too late to prove anything"
        )
        took = wait_watching(
            workers, lambda: count_notifications(live, DELIVERED) == TOTAL, 300, "every delivery"
        )
        assert all(worker.terminate() == 0 for worker in workers)
    finally:
        for worker in workers:
            worker.ensure_stopped()

    got = received(live)
    lost = [message for message in connection_of if got.get(message, 0) == 0]
    duplicates = sum(got.values()) - TOTAL
    assert lost == []
    # A duplicate needs a kill between the relay's 200 and the commit; each of the killed
    # worker's threads has at most one call in flight.
    kills = len(killed_at)
    assert 0 <= duplicates <= kills * THREADS
    # And each one's first copy reached the relay around a kill, not anywhere else in the
    # run: sent at most NOTIFY_TIMEOUT before it, or read by the relay from its socket just
    # after (the relay goes on with a request whose sender has died).
    with live.app.app_context():
        first_copies = db.session.execute(
            select(func.min(RelayMessage.created_at))
            .group_by(RelayMessage.message)
            .having(func.count() > 1)
        ).scalars()
        timeout = timedelta(seconds=live.app.config["NOTIFY_TIMEOUT"])
        unexplained = [
            first
            for first in first_copies
            if not any(kill - timeout <= first <= kill + LATE for kill in killed_at)
        ]
        db.session.rollback()
    assert unexplained == []

    windows = relay_windows(live, connection_of)
    assert set(windows) == set(tokens)
    over = {connection: counts for connection, counts in windows.items() if max(counts) > LIMIT}
    assert over == {}
    refused = relay_calls.statuses()[429]
    print(
        f"\nkill: {kills} SIGKILLs at {', '.join(f'{m:.0%}' for m in moments)}; "
        f"{TOTAL} delivered in {took:.1f} s after the last; {duplicates} duplicates "
        f"(bound {kills * THREADS}); {refused} answers 429 (calls after a kill, made on a "
        f"snapshot the killed worker never stored)"
    )
