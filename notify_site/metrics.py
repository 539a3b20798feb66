"""Prometheus metrics: what ``/metrics`` on the web exposes (its view is in
notify_site/views/metrics.py), and a small metrics server for delivery workers.

What is measured, and where:

- **web** (any process serving the site): JSON API requests by method, endpoint and status,
  counted by :func:`count_api_request`, an ``after_request`` hook of the ``api`` blueprint;
  notifications queued by source (:mod:`notify_site.services.sending`); and, computed at
  scrape time from the database, the depth of the queue by state.
- **delivery workers** (``flask --app wsgi worker``): every call to the Notify API by outcome
  and upstream status code, its duration, the time from queued to finished, the attempts a
  notification took, rate-limit waits and fenced-off outcomes. :mod:`notify_site.services.delivery`
  reports them through the small functions at the end of this module.

Under gunicorn the metrics of its worker processes are kept in files in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multi-process mode; ``gunicorn.conf.py``
sets it up) and summed at scrape. A delivery worker serves its own metrics on
``WORKER_METRICS_PORT`` instead, since it may run on any machine.

Both answer only with ``Authorization: Bearer <METRICS_TOKEN>``: 404 while no token is
configured (the endpoint does not exist), 401 with a missing or wrong one.
"""

from __future__ import annotations

import functools
import hmac
import logging
import os
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from flask import Response, request
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import Notification, NotificationStatus
from notify_site.services.retry import Outcome, OutcomeKind

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# --- The metrics ------------------------------------------------------------------------------
# Label values are bounded: outcomes and states are fixed sets, status codes are HTTP codes,
# endpoints are the API's route names.

API_REQUESTS = Counter(
    "notify_site_api_requests",
    "JSON API requests answered, by method, endpoint and HTTP status.",
    ["method", "endpoint", "status"],
)
DELIVERY_CALLS = Counter(
    "notify_site_deliveries",
    "Calls to the Notify API by outcome (delivered, failed, retry, wait, revoked, unreachable) "
    "and the upstream HTTP status code (none: no answer).",
    ["outcome", "status_code"],
)
CALL_SECONDS = Histogram(
    "notify_site_notify_call_seconds",
    "Duration of one call to the Notify API.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DELIVERY_SECONDS = Histogram(
    "notify_site_delivery_latency_seconds",
    "From queued to finished, for notifications that reached delivered or failed.",
    ["outcome"],
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600),
)
ATTEMPTS = Histogram(
    "notify_site_delivery_attempts",
    "Attempts a notification took to reach delivered or failed.",
    ["outcome"],
    buckets=(1, 2, 3, 4, 5, 6, 8, 10, 15, 20),
)
RATE_LIMIT_WAITS = Counter(
    "notify_site_rate_limit_waits",
    "Times a connection's notifications were held back until its window resets: the server "
    "answered 429 (reason 429), or the last snapshot said the window was spent, so no call "
    "was made (reason window_spent).",
    ["reason"],
)
LEASE_LOST = Counter(
    "notify_site_delivery_lease_lost",
    "Outcomes discarded by the fence: the claim had expired and another worker owned the row.",
)
NOTIFICATIONS_QUEUED = Counter(
    "notify_site_notifications_queued",
    "Notifications queued, by the way they came in (form, api); replays of an "
    "Idempotency-Key queue nothing and count nothing.",
    ["source"],
)
WORKER_DATABASE_ERRORS = Counter(
    "notify_site_worker_database_errors",
    "Database errors a delivery worker met and recovered from (it retries).",
)

# A revoked or unreachable connection's notification ends as failed ("connection revoked",
# "chat unreachable ...").
#: The states the queue-depth gauge counts: waiting for a call here, or pending at the Notify
#: server (followed by services/remote_pending.py).
WAITING = (*NotificationStatus.PENDING, NotificationStatus.AT_SERVER)

TERMINAL_OUTCOMES = {
    OutcomeKind.DELIVERED: "delivered",
    OutcomeKind.FAILED: "failed",
    OutcomeKind.REVOKED: "failed",
    OutcomeKind.UNREACHABLE: "failed",
}


# --- Recording (called by the worker, the send use case and the API hook) --------------------


def notifications_queued(source: str, count: int) -> None:
    """``count`` notifications were queued by a send from ``source``."""
    _queued(str(source)).inc(count)


def delivery_finished(
    outcome: Outcome,
    *,
    call_seconds: float,
    queued_at: datetime,
    attempts: int,
    fenced: bool,
    now: datetime | None = None,
) -> None:
    """Record one call to the Notify API once :func:`~notify_site.services.delivery.finish` ran.

    ``outcome`` is the :class:`~notify_site.services.retry.Outcome`; ``fenced`` is what
    ``finish`` returned (False: the lease was lost and the outcome was not written).
    ``attempts`` counts the attempts spent, this one included.
    """
    status = str(outcome.status_code) if outcome.status_code is not None else "none"
    DELIVERY_CALLS.labels(outcome.kind, status).inc()
    CALL_SECONDS.observe(call_seconds)
    if outcome.kind == OutcomeKind.WAIT:
        RATE_LIMIT_WAITS.labels("429").inc()
    if not fenced:
        LEASE_LOST.inc()
        return
    terminal = TERMINAL_OUTCOMES.get(outcome.kind)
    if terminal is not None:
        elapsed = ((now or utcnow()) - queued_at).total_seconds()
        DELIVERY_SECONDS.labels(terminal).observe(max(elapsed, 0.0))
        ATTEMPTS.labels(terminal).observe(attempts)


def window_spent_wait() -> None:
    """A claim held its rows back without calling: the window was known to be spent."""
    RATE_LIMIT_WAITS.labels("window_spent").inc()


def worker_database_error() -> None:
    WORKER_DATABASE_ERRORS.inc()


def count_api_request(response: Response) -> Response:
    """An ``after_request`` hook of the API blueprint: count the answer."""
    rule = request.url_rule
    endpoint = rule.endpoint if rule is not None else "unmatched"
    count_api_answer(request.method, endpoint, response.status_code)
    return response


def count_api_answer(method: str, endpoint: str, status_code: int) -> None:
    """One JSON API answer (the API's fast path counts its own: it answers before Flask)."""
    _api_answers(method, endpoint, status_code).inc()


# A counter's child per label values, found once: ``labels()`` builds its key at every call.
# (Bounded: a few sources, and endpoints × methods × statuses.)
@functools.cache
def _queued(source: str) -> Any:
    return NOTIFICATIONS_QUEUED.labels(source)


@functools.cache
def _api_answers(method: str, endpoint: str, status_code: int) -> Any:
    return API_REQUESTS.labels(method, endpoint, str(status_code))


# --- Reading ---------------------------------------------------------------------------------


class QueueCollector(Collector):
    """The outbox's unfinished rows by state, counted in the database at each scrape.

    One ``GROUP BY`` over the rows still queued or sending: the index on (status,
    next_attempt_at) answers it from its pending part alone, however many rows were
    delivered before. Delivered and failed totals come from the workers' counters instead,
    which cost nothing to read. Needs an application context (the scrape's request).
    """

    def collect(self) -> Iterable[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "notify_site_queue_depth",
            "Notifications not yet finished, by state (scheduled, queued, sending, or at_server: "
            "pending at the Notify server), read "
            "from the database at scrape.",
            labels=["state"],
        )
        due = GaugeMetricFamily(
            "notify_site_queue_due",
            "Queued or scheduled notifications whose next attempt is due now (the rest wait "
            "for a send-later time, a retry backoff or a rate-limit reset).",
        )
        up = GaugeMetricFamily(
            "notify_site_database_up", "1 when the queue could be read from the database."
        )
        now = utcnow()
        is_due = Notification.next_attempt_at <= now
        try:
            rows = db.session.execute(
                select(Notification.status, is_due, func.count())
                .where(Notification.status.in_(WAITING))
                .group_by(Notification.status, is_due)
            ).all()
            db.session.rollback()
        except SQLAlchemyError as error:
            db.session.rollback()
            log.warning("metrics: cannot read the queue (%s)", type(error).__name__)
            up.add_metric([], 0)
            yield up
            return
        counts = dict.fromkeys(WAITING, 0)
        due_now = 0
        for status, row_due, count in rows:
            counts[status] = counts.get(status, 0) + count
            if status in (NotificationStatus.QUEUED, NotificationStatus.SCHEDULED) and row_due:
                due_now += count
        for state, count in counts.items():
            depth.add_metric([state], count)
        due.add_metric([], due_now)
        up.add_metric([], 1)
        yield depth
        yield due
        yield up


class _Collectors(Collector):
    def __init__(self, *collectors: Collector) -> None:
        self.collectors = collectors

    def collect(self):
        for collector in self.collectors:
            yield from collector.collect()


def process_metrics() -> Collector:
    """This machine's counters: summed over gunicorn's processes in multi-process mode."""
    if os.environ.get(MULTIPROC_ENV):
        return MultiProcessCollector(None)
    return REGISTRY


def expose(collector: Collector, accept: str | None) -> tuple[bytes, str]:
    """The exposition text (or OpenMetrics, if the scraper asks for it) and its content type."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(collector), content_type


def authorized(token: str | None, header: str | None) -> bool:
    scheme, _, given = (header or "").partition(" ")
    return bool(
        token
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), token.encode())
    )


def configured_token(config) -> str | None:
    token = config.get("METRICS_TOKEN")
    # From the environment a numeric token arrives parsed as JSON (a number): compare text.
    return str(token) if token not in (None, "") else None


UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="metrics"'}


def site_metrics() -> Collector:
    """What the web's ``/metrics`` (notify_site/views/metrics.py) exposes: this machine's
    counters and the queue's depth."""
    return _Collectors(process_metrics(), QueueCollector())


# --- The delivery worker's own metrics server -------------------------------------------------


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        """Scrapes are not worth a log line each."""


def worker_metrics_app(token: str) -> Callable:
    """A WSGI app answering ``GET /metrics`` with this process's counters, behind the token."""

    def app(environ, start_response):
        if environ.get("PATH_INFO") != "/metrics" or environ["REQUEST_METHOD"] != "GET":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        if not authorized(token, environ.get("HTTP_AUTHORIZATION")):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), *UNAUTHORIZED_HEADERS.items()],
            )
            return [b"unauthorized\n"]
        body, content_type = expose(REGISTRY, environ.get("HTTP_ACCEPT"))
        start_response("200 OK", [("Content-Type", content_type), ("Cache-Control", "no-store")])
        return [body]

    return app


class MetricsServerError(RuntimeError):
    """The worker's metrics server cannot start as configured."""


def serve_worker_metrics(config) -> WSGIServer | None:
    """Start the worker's metrics server in a daemon thread if ``WORKER_METRICS_PORT`` is set.

    Returns the server (its ``server_port`` is the bound port), or None when not configured.
    """
    port = config.get("WORKER_METRICS_PORT")
    if port in (None, ""):
        return None
    token = configured_token(config)
    if token is None:
        raise MetricsServerError("WORKER_METRICS_PORT is set but METRICS_TOKEN is not")
    server = make_server(
        config.get("WORKER_METRICS_HOST") or "127.0.0.1",
        int(port),
        worker_metrics_app(token),
        server_class=_ThreadingServer,
        handler_class=_QuietHandler,
    )
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
