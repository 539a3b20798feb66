"""The chaos run's moving parts: figures, settings, processes, and one scenario's world.

- :class:`Figure` is one row of the table: what is measured, its target, the value, pass/fail.
- :class:`World` is what a scenario runs in: its own database (a copy of the migrated template
  in the throwaway cluster), the fake Notify server (tests/fakes/notify_api.py) it points at,
  a Flask app for the harness's own reads and writes, and the processes it starts.
- workers are `flask --app wsgi worker` (tests/processes.py); :class:`WebProcess` is gunicorn
  serving `wsgi:app` in a session of its own, so that ``kill -9`` takes the master and its
  workers at once.

Every process of a world gets the same configuration through ``NOTIFY_SITE_*`` variables.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from notify_site import create_app
from notify_site.extensions import db
from notify_site.models import Connection, Notification, NotificationStatus, User
from notify_site.notify_content import Content
from notify_site.services import api_keys
from notify_site.services.notifications import add_notifications
from tests.factories import create_connection, create_user
from tests.fakes.notify_api import FakeNotify, FakeNotifyServer
from tests.processes import WorkerProcess

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TERMINAL = Notification.status.in_(NotificationStatus.TERMINAL)
PENDING = Notification.status.in_(NotificationStatus.PENDING)
DELIVERED = Notification.status == NotificationStatus.DELIVERED


class ChaosError(RuntimeError):
    """A scenario could not run to its end (a timeout, a process that would not start)."""


@dataclass(frozen=True)
class Figure:
    """One row of the table."""

    name: str
    target: str
    measured: str
    passed: bool


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def knob(name: str, default: float) -> float:
    """A scale setting from ``CHAOS_<NAME>`` (the figures of reliability.md by default)."""
    value = os.environ.get(f"CHAOS_{name}")
    return type(default)(value) if value else default


def wait_until(
    predicate: Callable[[], bool], seconds: float, what: str, poll: float = 0.1
) -> float:
    """Poll ``predicate``; the seconds it took. Raises :class:`ChaosError` after ``seconds``."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > seconds:
            raise ChaosError(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(poll)
    return time.monotonic() - started


# --- Processes ---------------------------------------------------------------------------------


class WebProcess:
    """gunicorn serving the site (`gunicorn.conf.py`), in its own process group."""

    def __init__(self, world: World, env: dict[str, str], workers: int = 2, threads: int = 4):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.threads = threads
        self.env = {
            **env,
            "GUNICORN_LOG_LEVEL": "warning",
            "PROMETHEUS_MULTIPROC_DIR": str(world.workdir / f"{world.name}-web-metrics"),
        }
        self.log_path = world.workdir / f"{world.name}-web.log"
        self.process: subprocess.Popen | None = None
        self.kills = 0

    def start(self) -> WebProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(BIN / "gunicorn"),
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--workers",
                    str(self.workers),
                    "--threads",
                    str(self.threads),
                    "wsgi:app",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_until_serving()
        return self

    def wait_until_serving(self, seconds: float = 60) -> None:
        """Until every gunicorn worker answers (bench/common.py explains the count)."""
        deadline = time.monotonic() + seconds
        in_a_row = 0
        while in_a_row < 4 * self.workers:
            if time.monotonic() > deadline:
                raise ChaosError(f"gunicorn does not answer on {self.url}:\n{self.log_tail()}")
            try:
                answered = requests.get(f"{self.url}/healthz", timeout=2).status_code > 0
            except requests.RequestException:
                answered = False
            in_a_row = in_a_row + 1 if answered else 0
            if not answered:
                time.sleep(0.1)

    def kill(self) -> None:
        """``kill -9`` of the master and every worker process at once."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.kills += 1

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:]


# --- A scenario's world ------------------------------------------------------------------------


class World:
    """One scenario's database, fake Notify server, harness app and processes."""

    def __init__(self, run: Run, name: str, fake: FakeNotify, **settings: Any) -> None:
        self.run = run
        self.name = name
        self.workdir = run.workdir
        self.database_url = run.new_database(name)
        self.fake_server = FakeNotifyServer(fake)
        self.fake = fake
        self.settings = {
            **run.lease_setting(),
            "SECRET_KEY": run.secret_key,
            "TOKEN_KEYS": run.token_keys,
            "NOTIFY_API_ORIGIN": self.fake_server.url,
            "NOTIFY_BOT_ORIGIN": self.fake_server.url,
            "NOTIFY_CLIENT_ID": "chaos",
            "NOTIFY_CLIENT_SECRET": "chaos-client-secret",
            # The API's per-key limit stays on (its cost is part of a request) but never bites.
            "API_RATE_LIMIT": "100000000 per minute",
            **settings,
        }
        instance = self.workdir / f"{name}-instance"
        instance.mkdir()
        self.env = {
            key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"
        }
        self.env["NOTIFY_SITE_INSTANCE_PATH"] = str(instance)
        self.env["DATABASE_URL"] = self.database_url
        for key, value in self.settings.items():
            self.env[f"NOTIFY_SITE_{key}"] = value if isinstance(value, str) else json.dumps(value)
        self.app = create_app(
            {**self.settings, "DATABASE_URL": self.database_url, "INSTANCE_PATH": str(instance)}
        )
        self.lease = self.app.config["WORKER_LEASE_SECONDS"]
        self.workers: list[WorkerProcess] = []
        self.web: WebProcess | None = None

    # --- set-up ---------------------------------------------------------------------------

    def connections(self, count: int, prefix: str) -> dict[int, str]:
        """``count`` active connections of one user; their tokens by connection id."""
        tokens = {}
        with self.app.app_context():
            owner = db.session.scalar(select(User).where(User.username == "chaos"))
            if owner is None:
                owner = create_user("chaos", admin=True)
            for n in range(count):
                token = f"{self.name}-{prefix}-{n}"
                connection = create_connection(owner, label=f"{prefix} {n}", token=token)
                tokens[connection.id] = token
            db.session.remove()
        return tokens

    def api_key(self) -> str:
        with self.app.app_context():
            owner = db.session.scalar(select(User).where(User.username == "chaos"))
            _, key = api_keys.create_api_key(owner, f"chaos {time.monotonic()}")
            db.session.remove()
        return key

    def queue(self, messages: dict[str, int]) -> dict[str, int]:
        """Queue each message to its connection (one commit, as a burst); their row ids."""
        with self.app.app_context():
            owner = db.session.scalar(select(User).where(User.username == "chaos"))
            connections = {c.id: c for c in db.session.scalars(select(Connection))}
            rows = {}
            for message, connection_id in messages.items():
                content = Content(message=message)
                [row] = add_notifications(owner, [connections[connection_id]], content)
                rows[message] = row
            db.session.commit()
            ids = {message: row.id for message, row in rows.items()}
            db.session.remove()
        return ids

    # --- processes ------------------------------------------------------------------------

    def start_workers(self, count: int, threads: int, **settings: Any) -> list[WorkerProcess]:
        env = dict(self.env)
        for key, value in settings.items():
            env[f"NOTIFY_SITE_{key}"] = str(value)
        workers = []
        for n in range(len(self.workers), len(self.workers) + count):
            log_path = self.workdir / f"{self.name}-worker-{n}.log"
            worker = WorkerProcess(env, threads=threads, log_path=log_path, name=f"worker-{n}")
            workers.append(worker.start())
        self.workers.extend(workers)
        return workers

    def stop_workers(self) -> list[int]:
        """SIGTERM every worker, as an operator stops them; their exit statuses."""
        statuses = []
        for worker in self.workers:
            if worker.process is not None and worker.process.poll() is None:
                statuses.append(worker.terminate(timeout=90))
        return statuses

    def start_web(self, **kwargs: Any) -> WebProcess:
        self.web = WebProcess(self, self.env, **kwargs).start()
        return self.web

    # --- reading --------------------------------------------------------------------------

    def scalar(self, query):
        with self.app.app_context():
            try:
                return db.session.scalar(query)
            finally:
                db.session.remove()

    def rows(self, query) -> list:
        with self.app.app_context():
            try:
                return list(db.session.execute(query).all())
            finally:
                db.session.remove()

    def count(self, *conditions) -> int:
        return self.scalar(select(func.count()).select_from(Notification).where(*conditions))

    def logs(self) -> str:
        parts = [f"--- {w.name}\n{w.log_tail(1500)}" for w in self.workers]
        if self.web is not None:
            parts.append(f"--- web\n{self.web.log_tail()}")
        return "\n".join(parts)

    def __enter__(self) -> World:
        return self

    def __exit__(self, kind, error, trace) -> None:
        """Stop everything; when the scenario failed, show the processes' last words first."""
        if error is not None:
            print(self.logs())
        self.close()

    def close(self) -> None:
        for worker in self.workers:
            worker.ensure_stopped()
        if self.web is not None:
            self.web.stop()
        self.fake_server.stop()
        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()


# --- The whole run -----------------------------------------------------------------------------


class Run:
    """What every scenario shares: the throwaway cluster, the migrated template, the keys."""

    TEMPLATE = "chaos_template"

    def __init__(self, cluster, workdir: Path) -> None:
        self.cluster = cluster
        self.workdir = workdir
        self.secret_key = "chaos-secret-key"
        self.token_keys = ["kchaos:" + Fernet.generate_key().decode()]
        self._admin = sa.create_engine(
            cluster.url(), isolation_level="AUTOCOMMIT", pool_pre_ping=True
        )

    def migrate_template(self) -> None:
        """The template database, built by the real migrations (`flask db upgrade`)."""
        with self._admin.connect() as connection:
            connection.execute(sa.text(f"CREATE DATABASE {self.TEMPLATE}"))
        env = {
            **os.environ,
            "DATABASE_URL": self.cluster.url(self.TEMPLATE),
            "NOTIFY_SITE_INSTANCE_PATH": str(self.workdir / "template-instance"),
            "NOTIFY_SITE_SECRET_KEY": self.secret_key,
            "NOTIFY_SITE_TOKEN_KEYS": json.dumps(self.token_keys),
        }
        subprocess.run(
            [str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )

    @staticmethod
    def lease_setting() -> dict[str, float]:
        """``WORKER_LEASE_SECONDS`` from ``CHAOS_LEASE``; the product's default (60 s) if unset."""
        lease = os.environ.get("CHAOS_LEASE")
        return {"WORKER_LEASE_SECONDS": float(lease)} if lease else {}

    def new_database(self, name: str) -> str:
        with self._admin.connect() as connection:
            connection.execute(sa.text(f"CREATE DATABASE chaos_{name} TEMPLATE {self.TEMPLATE}"))
        return self.cluster.url(f"chaos_{name}")

    def close(self) -> None:
        self._admin.dispose()


def quiet_logs() -> None:
    """The fake's request log and the app's warnings would drown the table."""
    for name in ("werkzeug", "notify_site", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
