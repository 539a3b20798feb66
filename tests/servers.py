"""Real servers for tests: a WSGI app on a free loopback port, a request log, gunicorn and
other processes of a test app, free ports, and waiting (bounded) for a condition or for a
process to answer."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[1]

#: How often a serving thread looks for a shutdown request. socketserver's default (0.5 s)
#: was paid by every test that stopped a server: ~0.5 s each, tens of seconds per run.
POLL_INTERVAL = 0.02


class LiveServer:
    """A WSGI app served over real HTTP on a free loopback port, in a thread.

    The port is bound first, so a caller can build an app whose configuration names its own
    URL, then hand it over with :meth:`start`.
    """

    def __init__(self, app=None, host: str = "127.0.0.1") -> None:
        self.app = app
        self._server = make_server(host, 0, lambda environ, start_response: [], threaded=True)
        self.port = self._server.server_port
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(POLL_INTERVAL,), daemon=True
        )

    def start(self, app=None) -> LiveServer:
        self._server.app = app or self.app
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._server.server_close()


class RequestLog:
    """WSGI middleware recording each request's method and path (to count calls).

    :meth:`fail_next` makes the next requests to a path answer with an error status instead
    of reaching the app, the way a failing upstream would.
    """

    def __init__(self, app) -> None:
        self.app = app
        self.requests: list[tuple[str, str]] = []
        self._failures: dict[str, list[int]] = {}
        self._lock = threading.Lock()

    def fail_next(self, path: str, *statuses: int) -> None:
        with self._lock:
            self._failures.setdefault(path, []).extend(statuses)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        with self._lock:
            self.requests.append((environ["REQUEST_METHOD"], path))
            pending = self._failures.get(path)
            status = pending.pop(0) if pending else None
        if status is not None:
            body = json.dumps({"status": status, "message": "injected failure"}).encode()
            start_response(
                f"{status} Injected",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        return self.app(environ, start_response)

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return sum(1 for m, p in self.requests if m == method and p == path)


def free_port() -> int:
    """A loopback port free right now (for a subprocess to bind)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(
    predicate: Callable[[], object],
    timeout: float,
    what: str,
    *,
    interval: float = 0.05,
    details: Callable[[], str] | None = None,
) -> float:
    """Call ``predicate`` until it is true; the seconds that took. Fails the test after
    ``timeout`` seconds, saying ``what`` it waited for (and ``details()``, e.g. a log tail)."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            pytest.fail(f"timed out waiting for {what}" + (f"\n{details()}" if details else ""))
        time.sleep(interval)
    return time.monotonic() - started


def wait_for_answer(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until ``process`` (a server started for the test) answers at ``url``."""

    def answers() -> bool:
        assert process.poll() is None, f"the server exited ({process.args})"
        try:
            requests.get(url, timeout=10)
        except requests.RequestException:
            return False
        return True

    wait_until(answers, timeout, f"{url} to answer", interval=0.2)


def app_environment(config: Mapping, instance_path: str | Path, **settings) -> dict[str, str]:
    """The environment of a process (gunicorn, `flask worker`) of the test app configured by
    ``config`` (a test configuration or an app's): its database and secrets, its own
    instance folder, and ``settings`` as NOTIFY_SITE_* keys (``MAX_CONTENT_LENGTH=5``)."""
    env = {
        **os.environ,
        "NOTIFY_SITE_INSTANCE_PATH": str(instance_path),
        "DATABASE_URL": config.get("SQLALCHEMY_DATABASE_URI") or config["DATABASE_URL"],
        "NOTIFY_SITE_SECRET_KEY": config["SECRET_KEY"],
        "NOTIFY_SITE_TOKEN_KEYS": json.dumps(list(config["TOKEN_KEYS"])),
    }
    for key, value in settings.items():
        env[f"NOTIFY_SITE_{key}"] = json.dumps(value) if isinstance(value, bool) else str(value)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # each process of a test keeps its own metrics
    return env


def start_gunicorn(
    config: Mapping, log: Path, *, processes: int, **settings
) -> tuple[subprocess.Popen, int]:
    """`gunicorn wsgi:app` with the repository's gunicorn.conf.py, serving the test app of
    ``config`` (plus ``settings``, as :func:`app_environment`), its output in ``log``.
    Returns the process, once it answers, and its port."""
    port = free_port()
    env = app_environment(config, config["INSTANCE_PATH"], **settings)
    env |= {"GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": str(processes)}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_answer(f"http://127.0.0.1:{port}/healthz", process)
    except BaseException:
        process.kill()
        process.wait(timeout=10)
        raise
    return process, port
