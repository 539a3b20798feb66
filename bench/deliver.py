"""Deliver benchmark: the worker's throughput against the relay's own capacity.

10,000 notifications across 100 connections, delivered by one worker process's threads to the
built-in relay served by gunicorn, once as it is (on this machine) and once with 50 ms added to
every relay API call (as a real, distant server has). Two baselines in each run:

- the relay's /api/notify capacity: the same number of threads posting directly, each with a
  kept-alive session (the best any client could do);
- a plain loop: one request at a time, a new connection per request.

Targets: worker / relay ≥ 0.9 at 0 ms (issue 18; it was 0.5), worker / plain loop ≥ 5. On a local
relay with no latency both the relay and the plain loop are bound by the same two CPU cores, so
the plain-loop ratio is only meaningful with latency; the report shows both.

The relay's capacity and the worker take turns over ``--rounds`` rounds (each round queues its
share of the notifications, then measures both, every other round in the reverse order), and
the report gives the median of the rounds' ratios with the lowest and highest: on a shared
machine a neighbour's burst then lands in one round instead of deciding the run.

Where the relay lives: built in (the default: the relay and the worker share one database,
and on SQLite its one write lock), or ``--relay-apart`` (an instance of its own with its own
database, as LINE or any real Notify server is), with ``--split-cores`` also on a CPU of its
own while this process takes the other (as if the relay were another machine).
``--database-url`` runs on PostgreSQL (a fresh schema per instance). Each report also gives
this process's CPU time per call in each phase: the direct clients' against the worker's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import requests

from bench.common import (
    BIN,
    ROOT,
    apply_env,
    bench_env,
    delivery_calls,
    free_port,
    fresh_schema,
    gunicorn,
    report,
    setup_instance,
    threads_cpu,
    wait_until_delivered,
    workdir,
)


def database(stack: ExitStack, args) -> str | None:
    """A fresh PostgreSQL schema for one instance (None: a SQLite file in its folder)."""
    if not args.database_url:
        return None
    return stack.enter_context(fresh_schema(args.database_url))


@contextmanager
def relay_instance(args, folder: Path, url: str | None, latency: float, site_port: int):
    """The relay served by an instance of its own, with its own database (a second SQLite
    file: its own write lock), the site registered as its client; yields its root URL and the
    site's settings that point there.

    Its host is ``localhost`` where the site is ``127.0.0.1``, so the two keep their session
    cookies apart (a browser does not tell hosts apart by port).
    """
    folder.mkdir()
    port = free_port()
    env = bench_env(port, folder, url)
    env["BENCH_RELAY_LATENCY_MS"] = str(latency)
    setup_instance(env)
    registered = subprocess.run(
        [
            str(BIN / "flask"),
            "--app",
            "wsgi",
            "relay",
            "add-client",
            "--name",
            "bench site",
            "--redirect-uri",
            f"http://127.0.0.1:{site_port}/callback",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    answers = dict(line.split(": ", 1) for line in registered.splitlines() if ": " in line)
    root = f"http://localhost:{port}"
    settings = {
        "NOTIFY_SITE_NOTIFY_BOT_ORIGIN": f"{root}/relay",
        "NOTIFY_SITE_NOTIFY_API_ORIGIN": f"{root}/relay",
        "NOTIFY_SITE_NOTIFY_CLIENT_ID": answers["client_id"],
        "NOTIFY_SITE_NOTIFY_CLIENT_SECRET": answers["client_secret"],
    }
    cpus = "0" if args.split_cores else ""
    with gunicorn("bench.slow_app:app", port, env, workers=2, threads=args.threads, cpus=cpus):
        if args.split_cores:
            os.sched_setaffinity(0, {1})
        yield root, settings


def connect_chats(site: str, count: int) -> None:
    from tests.integration.helpers import connect_chat, register

    browser = requests.Session()
    register(browser, site, "bench")
    for n in range(count):
        connect_chat(browser, site, f"chat {n}", "1-on-1" if n % 3 == 0 else "Family")


def worker_sync_normal(app) -> None:
    """Make this process's SQLite connections commit without an fsync (``synchronous=NORMAL``
    after the app's own ``FULL``), and check that it took: what the worker's delivery would
    gain from the option bench/README.md ("Issue 18, fifth round") leaves to a decision."""
    from sqlalchemy import event, text

    from notify_site.extensions import db

    def normal(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    with app.app_context():
        engine = db.engine
        if engine.dialect.name != "sqlite":
            raise SystemExit("--worker-sync-normal is for SQLite")
        event.listen(engine, "connect", normal)
        engine.dispose()  # connections opened before the listener go
        with engine.connect() as connection:
            if connection.execute(text("PRAGMA synchronous")).scalar() != 1:
                raise SystemExit("synchronous=NORMAL did not take")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notifications", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="relay and worker take turns this many times (the notifications split evenly)",
    )
    parser.add_argument("--plain", type=int, default=300, help="requests in the plain loop")
    parser.add_argument(
        "--latency", type=float, action="append", help="ms added per relay call (repeatable)"
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL URL: each run works in fresh schemas there (default: SQLite files)",
    )
    parser.add_argument(
        "--relay-apart",
        action="store_true",
        help="serve the relay from its own instance and database, as any real Notify server is",
    )
    parser.add_argument(
        "--split-cores",
        action="store_true",
        help="with --relay-apart: the relay on the first CPU, this process (worker or direct "
        "clients) on the second, as if the relay were another machine",
    )
    parser.add_argument(
        "--worker-sync-normal",
        action="store_true",
        help="SQLite: this process's connections (the worker's) commit without an fsync "
        "(synchronous=NORMAL; the relay keeps FULL) -- an undecided option, measured, not "
        "the app's behaviour",
    )
    parser.add_argument(
        "--db-timing",
        action="store_true",
        help="also time the worker's statements, commits and Notify calls (wall, per delivery)",
    )
    args = parser.parse_args()
    if args.split_cores and not args.relay_apart:
        parser.error("--split-cores needs --relay-apart")
    for latency in args.latency or [0.0, 50.0]:
        run(args, latency)


def run(args, latency: float) -> None:
    rounds = max(1, args.rounds)
    per_round = args.notifications // rounds
    with workdir() as path, ExitStack() as stack:
        port = free_port()
        env = bench_env(port, path, database(stack, args), WORKER_BATCH_SIZE=50)
        env["BENCH_RELAY_LATENCY_MS"] = str(latency)
        site = f"http://127.0.0.1:{port}"
        relay_root = site
        if args.relay_apart:
            relay_root, settings = stack.enter_context(
                relay_instance(args, path / "relay", database(stack, args), latency, port)
            )
            env.update(settings)
        apply_env(env)
        setup_instance(env)
        # The site is served with the relay's settings; apart, it only answers the OAuth flow.
        with gunicorn("bench.slow_app:app", port, env, workers=2, threads=args.threads):
            if args.relay_apart:
                from tests.integration.helpers import register

                # The person signs in at the relay's host to consent, as at LINE.
                register(requests.Session(), relay_root, "bench")
            connect_chats(site, args.connections)

            from sqlalchemy import select

            from notify_site import create_app
            from notify_site.extensions import db
            from notify_site.keyring import keyring
            from notify_site.models import Connection, Notification, NotificationStatus, User
            from notify_site.notify_content import Content
            from notify_site.services.connections import connection_context
            from notify_site.services.notifications import add_notifications
            from notify_site.worker import Worker

            app = create_app()
            if args.worker_sync_normal:
                worker_sync_normal(app)
            with app.app_context():
                connections = list(db.session.scalars(select(Connection)))
                owner = db.session.get(User, connections[0].owner_id)
                tokens = [
                    keyring().decrypt(c.token_ciphertext, context=connection_context(c.id))
                    for c in connections
                ]

            def queue(count: int, first: int) -> None:
                with app.app_context():
                    for n in range(first, first + count):
                        add_notifications(
                            owner,
                            [connections[n % len(connections)]],
                            Content(message=f"bench {n}"),
                        )
                    db.session.commit()

            notify_url = f"{relay_root}/relay/api/notify"
            local = threading.local()

            def direct(n: int) -> None:
                session = getattr(local, "session", None) or requests.Session()
                local.session = session
                answer = session.post(
                    notify_url,
                    data={"message": f"direct {n}"},
                    headers={"Authorization": f"Bearer {tokens[n % len(tokens)]}"},
                    timeout=30,
                )
                answer.raise_for_status()

            def relay_capacity() -> float:
                count = min(3000 if not latency else 1000, per_round)
                started = time.perf_counter()
                with ThreadPoolExecutor(args.threads) as pool:
                    list(pool.map(direct, range(count)))
                return count / (time.perf_counter() - started)

            # The worker's CPU per delivery by thread: its delivery threads (calls, writes),
            # its claiming loop, its jobs thread (schedules, pushes, follow-ups).
            per_thread: dict[str, list[float]] = {
                "deliver": [],
                "worker-loop": [],
                "worker-jobs": [],
            }

            def worker_rate() -> float:
                # The configured poll interval (1 s), as a deployed worker has: it paces the
                # worker's jobs thread (schedules, pushes), which ran 20 times a second at the
                # 0.05 s used before. Deliveries do not wait on it: a finished claim wakes the
                # loop at once.
                worker = Worker(app, threads=args.threads)
                runner = threading.Thread(target=worker.run, name="worker-loop")
                calls_before = delivery_calls()
                started = time.perf_counter()
                runner.start()
                with app.app_context():
                    wait_until_delivered(ready=lambda: delivery_calls() - calls_before >= per_round)
                rate = per_round / (time.perf_counter() - started)
                # The worker's threads started with this phase and are still alive: their
                # own CPU is this phase's, per thread kind.
                by_thread = threads_cpu()
                for kind in per_thread:
                    per_thread[kind].append(by_thread.get(kind, 0.0) / per_round * 1e3)
                worker.stop()
                runner.join()
                return rate

            started = time.perf_counter()
            plain = args.plain if not latency else min(args.plain, 100)
            for n in range(plain):
                requests.post(
                    notify_url,
                    data={"message": f"plain {n}"},
                    headers={
                        "Authorization": f"Bearer {tokens[n % len(tokens)]}",
                        "Connection": "close",
                    },
                    timeout=30,
                ).raise_for_status()
            plain_rate = plain / (time.perf_counter() - started)

            timing = DatabaseTiming(app) if args.db_timing else None
            relay_rates, worker_rates, ratios = [], [], []
            # This process's CPU time per call in each phase (the direct clients', or the
            # worker's: its claims, its writes and its Notify client), ms per call, and the
            # kernel's part (sockets, SQLite's locks and fsyncs; all threads). The main
            # thread's own (it waits for the pool, or polls the database for the end of the
            # worker's phase) is taken out and shown apart.
            cpu = {relay_capacity: [], worker_rate: []}
            kernel = {relay_capacity: [], worker_rate: []}
            main_thread = {relay_capacity: [], worker_rate: []}

            def measured(phase) -> float:
                before, main_before = os.times(), time.thread_time()
                started = time.perf_counter()
                rate = phase()
                after, main_used = os.times(), time.thread_time() - main_before
                used = after.user + after.system - before.user - before.system - main_used
                calls = rate * (time.perf_counter() - started)
                cpu[phase].append(used / calls * 1e3)
                kernel[phase].append((after.system - before.system) / calls * 1e3)
                main_thread[phase].append(main_used / calls * 1e3)
                return rate

            for turn in range(rounds):
                queue(per_round, turn * per_round)
                # Every other round in the reverse order: what the machine does meanwhile
                # lands on both sides, and so does the growth of the relay's tables.
                if turn % 2 == 0:
                    relay, worker = measured(relay_capacity), measured(worker_rate)
                else:
                    worker, relay = measured(worker_rate), measured(relay_capacity)
                relay_rates.append(relay)
                worker_rates.append(worker)
                ratios.append(worker / relay)
                if rounds > 1:
                    print(f"  round {turn + 1}: relay {relay:.1f} req/s, worker {worker:.1f}/s")
            if timing is not None:
                timing.stop()
            with app.app_context():
                failed = db.session.scalar(
                    select(db.func.count())
                    .select_from(Notification)
                    .where(Notification.status == NotificationStatus.FAILED)
                )

    worker = statistics.median(worker_rates)
    cpu_direct, cpu_worker = cpu[relay_capacity], cpu[worker_rate]
    report(
        f"deliver: {per_round * rounds} notifications in {rounds} round(s), "
        f"{args.connections} connections, {args.threads} threads, "
        f"{latency:g} ms added per relay call, "
        f"{'PostgreSQL' if args.database_url else 'SQLite'}, "
        f"relay {'apart (its own instance and database)' if args.relay_apart else 'built in'}"
        f"{', relay and this process on a core each' if args.split_cores else ''}"
        f"{', worker commits without fsync' if args.worker_sync_normal else ''}",
        [
            (
                "relay /api/notify capacity (direct, keep-alive)",
                statistics.median(relay_rates),
                "req/s",
            ),
            ("plain loop (one at a time, new connection)", plain_rate, "req/s"),
            ("worker delivered", worker, "notif/s"),
            ("worker / relay capacity (target >= 0.9)", statistics.median(ratios), "x"),
            ("  lowest round", min(ratios), "x"),
            ("  highest round", max(ratios), "x"),
            ("worker / plain loop (target >= 5)", worker / plain_rate, "x"),
            ("this process's CPU per direct call", statistics.median(cpu_direct), "ms"),
            ("this process's CPU per delivery (worker)", statistics.median(cpu_worker), "ms"),
            ("  of which in the kernel, direct", statistics.median(kernel[relay_capacity]), "ms"),
            ("  of which in the kernel, worker", statistics.median(kernel[worker_rate]), "ms"),
            ("  in its delivery threads", statistics.median(per_thread["deliver"]), "ms"),
            ("  in its claiming loop", statistics.median(per_thread["worker-loop"]), "ms"),
            ("  in its jobs thread", statistics.median(per_thread["worker-jobs"]), "ms"),
            (
                "main thread's CPU per delivery (polling, left out above)",
                statistics.median(main_thread[worker_rate]),
                "ms",
            ),
            ("failed notifications", failed, ""),
        ],
    )
    if timing is not None:
        timing.report(per_round * rounds)


class DatabaseTiming:
    """Wall time the worker's threads spend in statements, in commits and in Notify calls.

    Summed over all threads, per delivered notification: with 8 threads, 8 ms of it per
    notification is the whole window at 1,000/s. Shows whether a worker waits on the database
    (SQLite's write lock: a writer that finds it taken sleeps 1, 2, 5, 10… ms) or on the relay.
    """

    def __init__(self, app) -> None:
        from sqlalchemy import event

        from notify_site.extensions import db
        from notify_site.notify_client import NotifyClient

        with app.app_context():
            self.engine = db.engine
        self.lock = threading.Lock()
        self.totals = {"statements": 0.0, "commits": 0.0, "Notify calls": 0.0}
        self.local = threading.local()
        self.event = event
        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        # The dialect's commit, timed (no engine event fires after a commit).
        self.do_commit = self.engine.dialect.do_commit
        self.engine.dialect.do_commit = self._timed_commit
        self.client_class = NotifyClient
        self.notify = NotifyClient.notify
        timing = self

        def timed_notify(client, *args, **kwargs):
            started = time.perf_counter()
            try:
                return timing.notify(client, *args, **kwargs)
            finally:
                timing._add("Notify calls", time.perf_counter() - started)

        NotifyClient.notify = timed_notify

    def _add(self, name: str, seconds: float) -> None:
        with self.lock:
            self.totals[name] += seconds

    def _before(self, *_args) -> None:
        self.local.started = time.perf_counter()

    def _after(self, *_args) -> None:
        self._add("statements", time.perf_counter() - self.local.started)

    def _timed_commit(self, dbapi_connection) -> None:
        started = time.perf_counter()
        try:
            self.do_commit(dbapi_connection)
        finally:
            self._add("commits", time.perf_counter() - started)

    def stop(self) -> None:
        self.event.remove(self.engine, "before_cursor_execute", self._before)
        self.event.remove(self.engine, "after_cursor_execute", self._after)
        self.engine.dialect.do_commit = self.do_commit
        self.client_class.notify = self.notify

    def report(self, notifications: int) -> None:
        print("  worker threads' wall time per delivered notification (all threads summed):")
        for name, seconds in self.totals.items():
            print(f"    {name:<46} {seconds / notifications * 1e3:10.2f} ms")


if __name__ == "__main__":
    main()
