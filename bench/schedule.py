"""Schedule benchmark: how long a scheduled notification waits, once due, to be handed to
delivery — against a plain queue receiving the same notifications at the same moments.

On PostgreSQL, with two `flask --app wsgi worker` processes (the product's defaults: 8
threads, a look at an idle queue every second) delivering to a fast fake Notify server
(tests/fakes/notify_api.py) over HTTP, 100 connections:

1. **scheduled**: 10,000 notifications are written ahead as ``scheduled``, due in the same
   minute (their ``send_at`` spread evenly over it). Each one's wait is the start of its
   first Notify call (its first ``delivery_attempts.started_at``: the moment delivery has
   it) minus its ``send_at``.
2. **plain queue** (the baseline, same run, same workers): the same 10,000 notifications
   are queued as ordinary ``queued`` rows at the moments the first run's were due, in
   batches every 100 ms; each one's wait is its first call's start minus its insertion.

Target (issue 17): scheduled p95 ≤ 5 s. The ratio scheduled / plain says what scheduling
costs over queueing.

    .venv/bin/python -m bench.schedule [--notifications N] [--database-url URL]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from bench.common import report

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notifications", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--spread", type=float, default=60.0, help="seconds the due times span")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("NOTIFY_SITE_TEST_DATABASE_URL") or DEFAULT_URL,
        help="a PostgreSQL database; the run uses a schema of its own, dropped after",
    )
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the fake's one line per call
    # tests.pg_schemas reads the database from there when it is imported.
    os.environ["NOTIFY_SITE_TEST_DATABASE_URL"] = args.database_url

    from tests.fakes.notify_api import FakeNotify, FakeNotifyServer
    from tests.pg_schemas import PostgresSchemas

    schemas = PostgresSchemas(args.database_url)
    server = FakeNotifyServer(FakeNotify(limit=10**9, window_seconds=3600))
    try:
        with tempfile.TemporaryDirectory(prefix="notify-bench-") as tmp:
            results = run(args, schemas.new_url(), server.url, Path(tmp))
    finally:
        server.stop()
        schemas.drop_all()
    scheduled, plain, scheduled_rate, plain_rate = results
    rows = [
        ("scheduled: handed to delivery per second, over the run", scheduled_rate, "/s"),
        ("plain queue: handed to delivery per second", plain_rate, "/s"),
        ("needed: the due rate", args.notifications / args.spread, "/s"),
    ]
    for name, waits in (("scheduled", scheduled), ("plain queue", plain)):
        rows += [
            (f"{name}: due -> handed to delivery, p50", statistics.median(waits), "s"),
            (f"{name}: p95", percentile(waits, 0.95), "s"),
            (f"{name}: max", max(waits), "s"),
        ]
    rows += [
        ("scheduled p95 (target <= 5 s)", percentile(scheduled, 0.95), "s"),
        (
            "scheduled / plain queue, p95",
            percentile(scheduled, 0.95) / percentile(plain, 0.95),
            "x",
        ),
        (
            "scheduled / plain queue, p50",
            statistics.median(scheduled) / statistics.median(plain),
            "x",
        ),
    ]
    report(
        f"schedule: {args.notifications} notifications due within {args.spread:g} s, "
        f"{args.connections} connections, 2 workers x 8 threads, PostgreSQL",
        rows,
    )


def run(args, database_url: str, notify_url: str, tmp: Path) -> tuple:
    from cryptography.fernet import Fernet

    from notify_site import create_app
    from notify_site.db_types import utcnow
    from notify_site.extensions import db
    from notify_site.models import DeliveryAttempt, Notification, NotificationStatus
    from tests.factories import create_connection, create_user
    from tests.processes import WorkerProcess, worker_env

    config = {
        "SECRET_KEY": "bench-secret-key",
        "TOKEN_KEYS": ["kbench:" + Fernet.generate_key().decode()],
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(tmp / "instance"),
        "NOTIFY_API_ORIGIN": notify_url,
        "NOTIFY_BOT_ORIGIN": notify_url,
        "NOTIFY_CLIENT_ID": "bench",
        "NOTIFY_CLIENT_SECRET": "bench-secret",
        "RELAY_ENABLED": False,
    }
    (tmp / "instance").mkdir()
    app = create_app(config)
    with app.app_context():
        import notify_site.models  # noqa: F401 - the site's tables

        db.create_all()
        owner = create_user("bench")
        connections = [
            create_connection(owner, label=f"chat {n}", token=f"bench-token-{n}").id
            for n in range(args.connections)
        ]
        owner_id = owner.id
    workers = [
        WorkerProcess(
            worker_env(app.config, tmp / "worker-instance"),
            threads=8,
            log_path=tmp / f"worker{n}.log",
            name=f"worker{n}",
        ).start()
        for n in range(2)
    ]

    def row(n: int, **values) -> dict:
        return {
            "owner_id": owner_id,
            "connection_id": connections[n % len(connections)],
            "message": f"bench {n}",
            "notification_disabled": False,
            "attempts": 0,
            **values,
        }

    def drain(label: str) -> None:
        with app.app_context():
            while True:
                pending = db.session.scalar(
                    select(func.count())
                    .select_from(Notification)
                    .where(
                        Notification.status.in_(NotificationStatus.PENDING),
                        Notification.message.like(f"{label}%"),
                    )
                )
                db.session.rollback()
                if not pending:
                    return
                time.sleep(0.5)

    def waits(label: str, since) -> tuple[list[float], float]:
        """Each row's wait, and the rows handed to delivery per second over the run."""
        with app.app_context():
            first_call = (
                select(
                    DeliveryAttempt.notification_id,
                    func.min(DeliveryAttempt.started_at).label("started"),
                )
                .group_by(DeliveryAttempt.notification_id)
                .subquery()
            )
            found = db.session.execute(
                select(since, first_call.c.started)
                .join(first_call, first_call.c.notification_id == Notification.id)
                .where(Notification.message.like(f"{label}%"))
            ).all()
            db.session.rollback()
        assert len(found) == args.notifications, (label, len(found))
        span = max(started for _, started in found) - min(due for due, _ in found)
        return (
            [(started - due).total_seconds() for due, started in found],
            len(found) / span.total_seconds(),
        )

    try:
        time.sleep(5)  # the workers start (imports, a first look at the queue)
        step = args.spread / args.notifications
        with app.app_context():
            first_due = utcnow() + timedelta(seconds=15)
            table = Notification.__table__
            for start in range(0, args.notifications, 1000):
                db.session.execute(
                    insert(table),
                    [
                        row(
                            n,
                            message=f"scheduled {n}",
                            status=NotificationStatus.SCHEDULED,
                            send_at=first_due + timedelta(seconds=n * step),
                            next_attempt_at=first_due + timedelta(seconds=n * step),
                            created_at=utcnow(),
                            updated_at=utcnow(),
                        )
                        for n in range(start, min(start + 1000, args.notifications))
                    ],
                )
            db.session.commit()
        drain("scheduled")
        scheduled, scheduled_rate = waits("scheduled", Notification.send_at)

        # The baseline: the same notifications queued at the moments they fall due.
        with app.app_context():
            begin = time.monotonic()
            queued = 0
            while queued < args.notifications:
                due = min(args.notifications, int((time.monotonic() - begin) / step) + 1)
                if due > queued:
                    now = utcnow()
                    db.session.execute(
                        insert(Notification.__table__),
                        [
                            row(
                                n,
                                message=f"plain {n}",
                                status=NotificationStatus.QUEUED,
                                next_attempt_at=now,
                                created_at=now,
                                updated_at=now,
                            )
                            for n in range(queued, due)
                        ],
                    )
                    db.session.commit()
                    queued = due
                time.sleep(0.1)
        drain("plain")
        plain, plain_rate = waits("plain", Notification.created_at)
    finally:
        for worker in workers:
            worker.ensure_stopped()
    return scheduled, plain, scheduled_rate, plain_rate


if __name__ == "__main__":
    main()
