"""The delivery worker: claim, deliver, finish, until told to stop.

``flask --app wsgi worker`` runs one as its own process (as many as wanted, on any machines
sharing the database); ``flask --app wsgi serve`` runs one in a thread beside the web server.
Each worker delivers to up to ``WORKER_THREADS`` connections at once, one thread per leased
connection; the rules live in :mod:`notify_site.services.claims` and
:mod:`notify_site.services.delivery`.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from concurrent.futures import Future, ThreadPoolExecutor

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from notify_site import metrics, seams
from notify_site.extensions import db
from notify_site.services import delivery
from notify_site.services.claims import ConnectionClaim, claim_connections

log = logging.getLogger(__name__)


class Worker:
    """A delivery loop for one process. Thread-safe to :meth:`stop` from anywhere."""

    def __init__(
        self, app: Flask, *, threads: int | None = None, poll_interval: float | None = None
    ):
        self.app = app
        self.threads = threads or app.config["WORKER_THREADS"]
        self.poll_interval = (
            poll_interval if poll_interval is not None else app.config["WORKER_POLL_INTERVAL"]
        )
        self.name = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._stop = threading.Event()
        self._wake = threading.Event()

    def stop(self) -> None:
        """Stop claiming; in-flight calls finish, unsent claimed rows are released."""
        self._stop.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _jobs(self) -> list:
        # Extra jobs other parts register (the relay's LINE pushes), as job(app, stopping).
        return list(seams.items(self.app, seams.WORKER_JOBS))

    def _run_jobs_once(self) -> int:
        work = 0
        for job in self._jobs():
            try:
                work += job(self.app, lambda: self._stop.is_set())
            except SQLAlchemyError as error:
                metrics.worker_database_error()
                log.warning(
                    "worker %s: database error in a job (%s)", self.name, type(error).__name__
                )
            except Exception:
                log.exception("worker %s: unexpected error in a job", self.name)
        return work

    def _run_jobs(self) -> None:
        """The extra jobs, in their own thread so they never hold up the deliveries."""
        while not self._stop.is_set():
            if not self._run_jobs_once():
                self._stop.wait(self.poll_interval)

    def run(self) -> None:
        """Deliver until :meth:`stop` is called."""
        log.info("worker %s started with %d threads", self.name, self.threads)
        jobs_thread = None
        if self._jobs():
            jobs_thread = threading.Thread(target=self._run_jobs, name="worker-jobs", daemon=True)
            jobs_thread.start()
        try:
            self._deliver_loop()
        finally:
            if jobs_thread is not None:
                jobs_thread.join(timeout=60)

    def _deliver_loop(self) -> None:
        active: set[Future] = set()
        with ThreadPoolExecutor(self.threads, thread_name_prefix="deliver") as pool:
            while not self._stop.is_set():
                active = {future for future in active if not future.done()}
                claims = []
                free = self.threads - len(active)
                if free > 0:
                    claims = self._claim(free)
                for claim in claims:
                    future = pool.submit(self._process, claim)
                    future.add_done_callback(lambda _: self._wake.set())
                    active.add(future)
                # Sleep until a thread frees up, or the poll interval passes.
                wait = 0.05 if claims else self.poll_interval
                self._wake.wait(wait)
                self._wake.clear()
        log.info("worker %s stopped", self.name)

    def run_until_idle(self, max_rounds: int = 10_000) -> int:
        """Deliver everything due now, one connection at a time; returns calls made (tests)."""
        calls = 0
        for _ in range(max_rounds):
            claims = self._claim(self.threads)
            jobs = self._run_jobs_once()
            calls += jobs
            if not claims and not jobs:
                break
            for claim in claims:
                calls += self._process(claim)
        return calls

    def _claim(self, limit: int) -> list[ConnectionClaim]:
        with self.app.app_context():
            try:
                settings = delivery.worker_settings()
                return claim_connections(limit, settings.lease)
            except SQLAlchemyError as error:
                db.session.rollback()
                metrics.worker_database_error()
                log.warning(
                    "worker %s: cannot claim (%s); retrying", self.name, type(error).__name__
                )
                self._stop.wait(self.poll_interval)
                return []

    def _process(self, claim: ConnectionClaim) -> int:
        with self.app.app_context():
            try:
                return delivery.process_claim(
                    claim, delivery.worker_settings(), self.name, lambda: self._stop.is_set()
                )
            except SQLAlchemyError as error:
                db.session.rollback()
                metrics.worker_database_error()
                log.warning(
                    "worker %s: database error on connection %s (%s)",
                    self.name,
                    claim.connection_id,
                    type(error).__name__,
                )
                return 0
            except Exception:
                log.exception(
                    "worker %s: unexpected error on connection %s", self.name, claim.connection_id
                )
                return 0


class BackgroundWorker:
    """A :class:`Worker` in a daemon thread (for `flask serve` and the tests)."""

    def __init__(self, app: Flask, **kwargs) -> None:
        self.worker = Worker(app, **kwargs)
        self._thread = threading.Thread(target=self.worker.run, name="worker", daemon=True)

    def start(self) -> BackgroundWorker:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30) -> None:
        self.worker.stop()
        self._thread.join(timeout)


@click.command("worker")
@click.option("--threads", type=int, default=None, help="Connections delivered to at once.")
@with_appcontext
def worker_command(threads: int | None) -> None:
    """Run a delivery worker until SIGTERM or SIGINT (then finish or release its claims)."""
    worker = Worker(current_app._get_current_object(), threads=threads)

    def _stop(signum, _frame) -> None:
        click.echo(f"worker: {signal.Signals(signum).name}, finishing in-flight deliveries")
        worker.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        server = metrics.serve_worker_metrics(current_app.config)
    except (metrics.MetricsServerError, OSError) as error:
        raise click.ClickException(f"cannot serve metrics: {error}") from error
    if server is not None:
        host, port = server.server_address[:2]
        click.echo(f"worker {worker.name}: metrics at http://{host}:{port}/metrics")
    click.echo(f"worker {worker.name}: delivering with {worker.threads} threads")
    worker.run()
