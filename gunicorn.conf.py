"""Gunicorn settings for the web processes (docs/production.md).

`gunicorn wsgi:app` reads this file from the working directory. Command-line flags (and
GUNICORN_CMD_ARGS) override it; the environment variables below tune it without editing.
The delivery workers are not served by gunicorn: they run as `flask --app wsgi worker`.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import shutil
import tempfile
from pathlib import Path

# --- Processes --------------------------------------------------------------------------------
# Behind a reverse proxy on the same machine (it terminates HTTPS): listen on loopback only.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# A request spends most of its time waiting for PostgreSQL, so a few threads per process
# keep a core busy; processes (not threads) are what use more cores. Each process holds its
# own pool of database connections (up to ``threads`` at a time in use): budget
# workers × threads connections per web machine in PostgreSQL's max_connections.
workers = int(os.environ.get("WEB_CONCURRENCY", 2 * multiprocessing.cpu_count()))
# More than one thread makes gunicorn use its gthread worker (and keep-alive connections).
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# The app is built in each process after the fork, so that no database connection (or
# metrics file) is shared between processes.
preload_app = False

# gunicorn's control socket (for `gunicornc`) is one path per user by default, so a second
# instance on the same machine would take it over from the first: one socket per bind address.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET") or str(
    Path(os.environ.get("XDG_RUNTIME_DIR") or Path.home() / ".gunicorn")
    / f"notify_site-{re.sub(r'[^A-Za-z0-9.]+', '-', bind)}.ctl"
)

# --- Timeouts ---------------------------------------------------------------------------------
# A process that has not answered the master's heartbeat for this long is killed and
# replaced. Requests only write to the database (deliveries are the workers' job), so 30 s
# is generous; the proxy's own read timeout should be a little longer.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# On SIGTERM or a reload, in-flight requests get this long to finish.
graceful_timeout = 30
# Seconds to keep an idle connection from the proxy open (the proxy reuses it).
keepalive = 5

# --- Logs -------------------------------------------------------------------------------------
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
# The path without its query string (%(U)s, never %(r)s or %(q)s): the OAuth callback's query
# carries the authorization code and the state. No Referer (%(f)s) either, since it can be a
# URL with the same query, and no request headers, so never an Authorization header. %(u)s,
# the Basic-auth user name, is left out as well. %(M)s is the request's duration in ms. A
# webhook's secret in the path is redacted by a filter (post_fork, below).
access_log_format = '%(h)s - - %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'
proc_name = "notify_site"

# --- Metrics (notify_site/metrics.py) ----------------------------------------------------------
# prometheus-client's multi-process mode: each process writes its counters to files in this
# directory and /metrics sums them. It must be set before the app (and prometheus_client) is
# imported, which is why it is here. Given by the operator, or a private directory per run.
_created_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _created_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="notify-site-metrics-")
METRICS_DIR = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])


def on_starting(server) -> None:
    """Start from empty counters: files left by an earlier run would be summed in again."""
    METRICS_DIR.mkdir(parents=True, exist_ok=True)
    for stale in METRICS_DIR.glob("*.db"):
        stale.unlink()


def post_fork(server, worker) -> None:
    """The access log follows the log level: at ``warning`` and above it is silent.

    Gunicorn writes access lines at INFO whatever ``loglevel`` says; the benchmarks (and
    anyone running with ``--log-level warning``) want none of them. And no line of either log
    holds a webhook's secret: a path /hooks/<id>/<secret> is written /hooks/<id>/[secret]
    (notify_site/log_redaction.py).
    """
    from notify_site.log_redaction import RedactingFilter

    if server.log.loglevel > logging.INFO:
        server.log.access_log.setLevel(server.log.loglevel)
    for log in (server.log.access_log, server.log.error_log):
        log.addFilter(RedactingFilter())


def child_exit(server, worker) -> None:
    """A web process has exited: drop its live-gauge files (its counters stay summed)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, str(METRICS_DIR))


def on_exit(server) -> None:
    if _created_metrics_dir:
        shutil.rmtree(METRICS_DIR, ignore_errors=True)
