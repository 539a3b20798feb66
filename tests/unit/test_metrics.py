"""/metrics and the counters behind it: the token guard, the queue read at scrape, the API
hook, the delivery worker's calls, and a worker's own metrics server.

The metrics are process-wide (as Prometheus counters are), so each test compares before and
after instead of expecting absolute values.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from notify_site import metrics
from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import Notification, NotificationStatus
from notify_site.notify_content import Content
from notify_site.services.notifications import add_notifications
from notify_site.worker import Worker
from tests.conftest import make_test_config
from tests.factories import create_connection, create_user

TOKEN = "metrics-test-token"
API = "https://notify-api.test"
NOTIFY_URL = f"{API}/api/notify"


@pytest.fixture
def app_config(tmp_path):
    return make_test_config(tmp_path, METRICS_TOKEN=TOKEN, NOTIFY_API_ORIGIN=API)


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(client, token: str = TOKEN) -> dict[tuple[str, tuple], float]:
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.get_data(as_text=True))
        for s in family.samples
    }


def test_metrics_is_not_found_while_no_token_is_configured(tmp_path):
    from notify_site import create_app

    app = create_app(make_test_config(tmp_path))
    assert app.config["METRICS_TOKEN"] is None
    answer = app.test_client().get("/metrics", headers={"Authorization": "Bearer anything"})
    assert answer.status_code == 404


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer", f"Bearer {TOKEN}x"]
)
def test_a_missing_or_wrong_token_is_refused(client, header):
    headers = {"Authorization": header} if header else {}
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert "notify_site" not in answer.get_data(as_text=True)


def test_a_numeric_token_from_the_environment_still_matches(tmp_path):
    from notify_site import create_app

    # NOTIFY_SITE_METRICS_TOKEN=12345 arrives parsed as JSON: the number 12345.
    app = create_app(make_test_config(tmp_path, METRICS_TOKEN=12345))
    answer = app.test_client().get("/metrics", headers={"Authorization": "Bearer 12345"})
    assert answer.status_code == 200


def test_scheduled_rows_are_counted_and_due_once_their_time_has_come(app, client):
    with app.app_context():
        alice = create_user("alice")
        connection = create_connection(alice)
        for minutes in (-1, 30, 60):  # one due (no worker took it yet), two to come
            add_notifications(
                alice,
                [connection],
                Content(message="later"),
                send_at=utcnow() + timedelta(minutes=minutes),
            )
        db.session.commit()
    found = scrape(client)
    assert found[("notify_site_queue_depth", (("state", "scheduled"),))] == 3
    assert found[("notify_site_queue_due", ())] == 1


def test_queue_depth_is_read_from_the_database_at_scrape(app, client):
    with app.app_context():
        alice = create_user("alice")
        connection = create_connection(alice)
        for n in range(3):
            add_notifications(alice, [connection], Content(message=f"m{n}"))
        db.session.commit()
        first = db.session.scalars(db.select(Notification).order_by(Notification.id)).first()
        first.status = NotificationStatus.SENDING
        later = db.session.scalars(db.select(Notification).order_by(Notification.id)).all()[-1]
        later.next_attempt_at = utcnow() + timedelta(hours=1)  # waiting for a retry
        db.session.commit()
    found = scrape(client)
    assert found[("notify_site_queue_depth", (("state", "queued"),))] == 2
    assert found[("notify_site_queue_depth", (("state", "sending"),))] == 1
    assert found[("notify_site_queue_depth", (("state", "scheduled"),))] == 0
    assert found[("notify_site_queue_due", ())] == 1
    assert found[("notify_site_database_up", ())] == 1
    assert (
        client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        .headers["Content-Type"]
        .startswith("text/plain")
    )


def test_an_unreadable_queue_says_so_instead_of_failing_the_scrape(app, client, monkeypatch):
    from sqlalchemy.exc import OperationalError

    def broken(*_args, **_kwargs):
        raise OperationalError("SELECT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(db.session, "execute", broken)
    found = scrape(client)
    assert found[("notify_site_database_up", ())] == 0
    assert ("notify_site_queue_depth", (("state", "queued"),)) not in found


def test_api_answers_are_counted_by_endpoint_and_status(client):
    labels = {"method": "GET", "endpoint": "api.list_connections", "status": "401"}
    before = sample("notify_site_api_requests_total", **labels)
    assert client.get("/api/v1/connections").status_code == 401
    assert client.get("/api/v1/connections").status_code == 401
    assert sample("notify_site_api_requests_total", **labels) == before + 2
    # Pages outside the API are not counted.
    other = sample("notify_site_api_requests_total", method="GET", endpoint="main.healthz")
    client.get("/healthz")
    assert sample("notify_site_api_requests_total", method="GET", endpoint="main.healthz") == (
        other
    )


def deliver(app, mocked_http, status: int, body: dict, headers: dict | None = None) -> None:
    mocked_http.add("POST", NOTIFY_URL, json=body, status=status, headers=headers or {})
    with app.app_context():
        alice = create_user("alice")
        connection = create_connection(alice)
        add_notifications(alice, [connection], Content(message="hello"))
        db.session.commit()
    Worker(app, threads=1).run_until_idle(max_rounds=1)


def test_a_delivery_is_counted_with_its_status_code_latency_and_attempts(app, mocked_http):
    delivered = {"outcome": "delivered", "status_code": "200"}
    before = {
        "calls": sample("notify_site_deliveries_total", **delivered),
        "call_seconds": sample("notify_site_notify_call_seconds_count"),
        "latency": sample("notify_site_delivery_latency_seconds_count", outcome="delivered"),
        "attempts": sample("notify_site_delivery_attempts_sum", outcome="delivered"),
    }
    deliver(app, mocked_http, 200, {"status": 200, "message": "ok"})
    assert sample("notify_site_deliveries_total", **delivered) == before["calls"] + 1
    assert sample("notify_site_notify_call_seconds_count") == before["call_seconds"] + 1
    assert (
        sample("notify_site_delivery_latency_seconds_count", outcome="delivered")
        == before["latency"] + 1
    )
    assert (
        sample("notify_site_delivery_attempts_sum", outcome="delivered") == before["attempts"] + 1
    )


def test_a_429_is_a_rate_limit_wait_and_not_a_finished_delivery(app, mocked_http):
    waited = sample("notify_site_rate_limit_waits_total", reason="429")
    calls = sample("notify_site_deliveries_total", outcome="wait", status_code="429")
    latency = sample("notify_site_delivery_latency_seconds_count", outcome="failed")
    reset = str(int((utcnow() + timedelta(minutes=5)).timestamp()))
    spent = {"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}
    deliver(
        app,
        mocked_http,
        429,
        {"status": 429, "message": "Rate limit exceeded"},
        spent,
    )
    assert sample("notify_site_rate_limit_waits_total", reason="429") == waited + 1
    assert sample("notify_site_deliveries_total", outcome="wait", status_code="429") == calls + 1
    assert sample("notify_site_delivery_latency_seconds_count", outcome="failed") == latency


def test_a_worker_serves_its_own_metrics_behind_the_same_token(mocked_http):
    mocked_http.add_passthru("http://127.0.0.1")
    server = metrics.serve_worker_metrics(
        {"WORKER_METRICS_PORT": 0, "WORKER_METRICS_HOST": "127.0.0.1", "METRICS_TOKEN": TOKEN}
    )
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        answer = requests.get(
            f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        )
        assert answer.status_code == 200
        assert "# HELP notify_site_deliveries_total" in answer.text
        assert "notify_site_queue_depth" not in answer.text  # the web's, read from the database
        assert requests.get(f"{url}/metrics", timeout=10).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert requests.get(f"{url}/metrics", headers=wrong, timeout=10).status_code == 401
        assert requests.get(f"{url}/other", timeout=10).status_code == 404
    finally:
        server.shutdown()
        server.server_close()


def test_a_worker_metrics_port_without_a_token_is_a_configuration_error():
    with pytest.raises(metrics.MetricsServerError, match="METRICS_TOKEN"):
        metrics.serve_worker_metrics({"WORKER_METRICS_PORT": 9200, "METRICS_TOKEN": None})
    assert metrics.serve_worker_metrics({"WORKER_METRICS_PORT": None}) is None
