"""`flask --app wsgi worker` in subprocesses beside a live site (tests/processes.py's process,
with the live site's configuration and its metrics), and what they delivered.

Used by the worker-kill test (tests/integration/test_worker_process.py) and the PostgreSQL
scale and restart tests (tests/postgres/test_scale_workers.py, test_restart_postgres.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from notify_site.extensions import db
from notify_site.keyring import keyring
from notify_site.models import Connection, Notification, User
from notify_site.notify_content import Content
from notify_site.relay.models import RelayMessage
from notify_site.services.connections import connection_context
from notify_site.services.notifications import add_notifications
from tests import processes
from tests.integration.helpers import connect_chat, register
from tests.servers import free_port, wait_until

#: The bearer token of the live site's and the workers' metrics, where a test reads them.
METRICS_TOKEN = "worker-metrics-token"


class WorkerProcess(processes.WorkerProcess):
    """A worker process on the live site's database and Notify server, configured through the
    environment: ``settings`` are NOTIFY_SITE_* keys (``WORKER_LEASE_SECONDS=2``). With a
    ``metrics_token`` it serves its metrics on a port of its own. Its output goes to
    ``workdir/NAME.log``."""

    def __init__(
        self,
        live,
        workdir: Path,
        name: str,
        *,
        threads: int,
        metrics_token: str | None = None,
        **settings,
    ) -> None:
        self.metrics_token = metrics_token
        self.metrics_port = free_port() if metrics_token else None
        if metrics_token:
            settings |= {"METRICS_TOKEN": metrics_token, "WORKER_METRICS_PORT": self.metrics_port}
        env = processes.worker_env(live.app.config, workdir / "worker-instance", **settings)
        super().__init__(env, threads=threads, log_path=workdir / f"{name}.log", name=name)

    def delivered_calls(self) -> float:
        """Its `notify_site_deliveries_total{outcome="delivered"}`, read from its metrics port."""
        answer = requests.get(
            f"http://127.0.0.1:{self.metrics_port}/metrics",
            headers={"Authorization": f"Bearer {self.metrics_token}"},
            timeout=10,
        )
        answer.raise_for_status()
        return sum(
            sample.value
            for family in text_string_to_metric_families(answer.text)
            for sample in family.samples
            if sample.name == "notify_site_deliveries_total"
            and sample.labels.get("outcome") == "delivered"
        )


def retrying_worker(live, workdir: Path, name: str, *, threads: int, lease: float):
    """The PostgreSQL tests' worker: a ``lease`` of their choosing, a look at the queue every
    0.1 s, retries within a second (a relay without its database answers 500), and metrics
    behind :data:`METRICS_TOKEN`. Not started."""
    return WorkerProcess(
        live,
        workdir,
        name,
        threads=threads,
        metrics_token=METRICS_TOKEN,
        WORKER_LEASE_SECONDS=lease,
        WORKER_POLL_INTERVAL=0.1,
        DELIVERY_RETRY_BASE=0.25,
        DELIVERY_RETRY_CAP=1,
    )


def wait_watching(
    workers: list[WorkerProcess], predicate, timeout: float, what: str, interval: float = 0.2
) -> float:
    """:func:`~tests.servers.wait_until`, with the workers' logs when it times out."""

    def logs() -> str:
        return "\n".join(f"--- {worker.name}\n{worker.log_tail()}" for worker in workers)

    return wait_until(predicate, timeout, what, interval=interval, details=logs)


def wait_for_metrics(workers: list[WorkerProcess], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    for worker in workers:
        while True:
            try:
                worker.delivered_calls()
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    pytest.fail(f"{worker.name} serves no metrics:\n{worker.log_tail()}")
                time.sleep(0.1)


def count_notifications(live, *conditions) -> int:
    with live.app.app_context():
        value = db.session.scalar(select(func.count()).select_from(Notification).where(*conditions))
        db.session.rollback()
        return value


def received(live) -> dict[str, int]:
    """How many times the relay received each message."""
    with live.app.app_context():
        rows = db.session.execute(
            select(RelayMessage.message, func.count()).group_by(RelayMessage.message)
        ).all()
        db.session.rollback()
    return dict(rows)


def connect_many(live, count: int) -> dict[int, str]:
    """Register, then connect ``count`` sandbox chats through the real OAuth flow; their
    tokens by connection id."""
    browser = requests.Session()
    register(browser, live.site)
    for n in range(count):
        connect_chat(browser, live.site, f"chat {n}", "1-on-1" if n % 2 else "Family")
    with live.app.app_context():
        tokens = {
            connection.id: keyring().decrypt(
                connection.token_ciphertext, context=connection_context(connection.id)
            )
            for connection in db.session.scalars(select(Connection))
        }
        db.session.rollback()
    assert len(tokens) == count
    return tokens


def queue_round_robin(live, total: int, prefix: str) -> dict[str, int]:
    """Queue ``total`` notifications round-robin over every connection, in id order, the
    first connection's owner sending: messages "PREFIX 0", "PREFIX 1"...

    Returns each message with its connection's id.
    """
    connection_of = {}
    with live.app.app_context():
        connections = list(db.session.scalars(select(Connection).order_by(Connection.id)))
        owner = db.session.get(User, connections[0].owner_id)
        for n in range(total):
            connection = connections[n % len(connections)]
            message = f"{prefix} {n}"
            add_notifications(owner, [connection], Content(message=message))
            connection_of[message] = connection.id
        db.session.commit()
    return connection_of
