"""Scale benchmark: delivery throughput with 1, 2 and 4 worker processes on PostgreSQL.

Method (the figures are ratios within one run, as in every benchmark here):

- a fresh PostgreSQL schema, built by `flask setup` (the migrations);
- the relay served by gunicorn with 50 ms added to every relay API call (``bench/slow_app.py``),
  the distance to a real Notify server; its rate limit out of the way;
- 50 connected chats; for each worker count, the workers (`flask --app wsgi worker`
  subprocesses, ``--threads`` each) are started on an empty queue and waited for, then
  ``--notifications`` rows are committed at once and timed until the last is delivered.

Target: 4 workers ≥ 3 × 1 worker. Then, on another fresh schema, bench/accept.py with
``--database-url``: POST /api/v1/notifications on PostgreSQL against the trivial endpoint;
target ratio ≥ 0.4.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time

import requests

from bench.common import (
    BIN,
    ROOT,
    apply_env,
    bench_env,
    free_port,
    fresh_schema,
    gunicorn,
    report,
    setup_instance,
    wait_until_delivered,
    workdir,
)

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
METRICS_TOKEN = "bench-metrics-token"


def start_workers(count: int, threads: int, env: dict) -> list[tuple[subprocess.Popen, int]]:
    """``count`` worker processes, each with its metrics port; returns once all answer."""
    workers = []
    for _ in range(count):
        port = free_port()
        process = subprocess.Popen(
            [str(BIN / "flask"), "--app", "wsgi", "worker", "--threads", str(threads)],
            cwd=ROOT,
            env={**env, "NOTIFY_SITE_WORKER_METRICS_PORT": str(port)},
            stdout=subprocess.DEVNULL,
        )
        workers.append((process, port))
    deadline = time.monotonic() + 60
    for process, port in workers:
        while True:
            try:
                requests.get(
                    f"http://127.0.0.1:{port}/metrics",
                    headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
                    timeout=5,
                ).raise_for_status()
                break
            except requests.RequestException:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("a worker did not start") from None
                time.sleep(0.1)
    return workers


def stop_workers(workers) -> None:
    for process, _ in workers:
        process.send_signal(signal.SIGTERM)
    for process, _ in workers:
        process.wait(timeout=60)


def deliveries_per_second(app, processes: int, threads: int, total: int, env: dict) -> float:
    """Start the workers, commit ``total`` rows at once, time them until all are delivered."""
    from sqlalchemy import func, select

    from notify_site.extensions import db
    from notify_site.models import Connection, Notification, NotificationStatus, User
    from notify_site.notify_content import Content
    from notify_site.services.notifications import add_notifications

    workers = start_workers(processes, threads, env)
    try:
        with app.app_context():
            connections = list(db.session.scalars(select(Connection).order_by(Connection.id)))
            owner = db.session.get(User, connections[0].owner_id)
            for n in range(total):
                content = Content(message=f"scale {processes}×{threads} {n}")
                add_notifications(owner, [connections[n % len(connections)]], content)
            db.session.commit()
            started = time.perf_counter()
            wait_until_delivered()
            elapsed = time.perf_counter() - started
            failed = db.session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.status == NotificationStatus.FAILED)
            )
            db.session.rollback()
    finally:
        stop_workers(workers)
    if failed:
        raise RuntimeError(f"{failed} notifications failed")
    return total / elapsed


def deliver_scaling(args) -> list[tuple[str, float, str]]:
    from bench.deliver import connect_chats

    with workdir() as path, fresh_schema(args.database_url) as url:
        port = free_port()
        env = bench_env(
            port,
            path,
            url,
            WORKER_POLL_INTERVAL=0.05,
            WORKER_BATCH_SIZE=20,
            METRICS_TOKEN=METRICS_TOKEN,
        )
        env["BENCH_RELAY_LATENCY_MS"] = str(args.latency)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        apply_env(env)
        setup_instance(env)
        with gunicorn("bench.slow_app:app", port, env, workers=2, threads=args.relay_threads):
            connect_chats(f"http://127.0.0.1:{port}", args.connections)

            from notify_site import create_app

            app = create_app()
            rates = {}
            for processes in (1, 2, 4):
                rates[processes] = deliveries_per_second(
                    app, processes, args.threads, args.notifications, env
                )
                print(f"  {processes} worker(s): {rates[processes]:.1f} deliveries/s", flush=True)
    return [
        (f"1 worker × {args.threads} threads", rates[1], "notif/s"),
        (f"2 workers × {args.threads} threads", rates[2], "notif/s"),
        (f"4 workers × {args.threads} threads", rates[4], "notif/s"),
        ("4 workers / 1 worker (target >= 3)", rates[4] / rates[1], "x"),
        ("2 workers / 1 worker", rates[2] / rates[1], "x"),
    ]


def accept_ratio(args) -> str:
    """bench/accept.py on a fresh PostgreSQL schema; its report, as printed."""
    with fresh_schema(args.database_url) as url:
        env = {
            **os.environ,
            # The per-key limit stays on (its cost is part of a request), but high enough
            # that wrk's load is never refused.
            "NOTIFY_SITE_API_RATE_LIMIT": "100000000 per minute",
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        result = subprocess.run(
            [sys.executable, "-m", "bench.accept", "--database-url", url],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--notifications", type=int, default=1500, help="per worker count")
    parser.add_argument("--connections", type=int, default=50)
    # One thread per process: a process is then bound by the relay's latency, not by the
    # machine, so the figures show what adding processes adds. With more threads, 4 processes
    # saturate this machine's two cores before the relay's latency bounds them (bench/README.md).
    parser.add_argument("--threads", type=int, default=1, help="threads per worker process")
    parser.add_argument("--latency", type=float, default=50.0, help="ms added per relay call")
    parser.add_argument("--relay-threads", type=int, default=16, help="per relay process (2)")
    parser.add_argument("--skip-accept", action="store_true")
    args = parser.parse_args()

    rows = deliver_scaling(args)
    report(
        f"scale: {args.notifications} notifications over {args.connections} connections, "
        f"PostgreSQL, relay +{args.latency:g} ms per call",
        rows,
    )
    if not args.skip_accept:
        output = accept_ratio(args)
        print(output)
        match = re.search(r"ratio \(target >= [\d.]+\)\s+([\d.]+)", output)
        if match:
            print(f"  accept on PostgreSQL / trivial endpoint (target >= 0.4): {match.group(1)}")


if __name__ == "__main__":
    main()
