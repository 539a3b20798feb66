"""`gunicorn wsgi:app` with the repository's gunicorn.conf.py: metrics summed over its
processes, and an access log that holds no query string and no credentials."""

from __future__ import annotations

import signal

import requests
from prometheus_client.parser import text_string_to_metric_families

from notify_site import create_app
from tests.conftest import init_database, make_test_config
from tests.servers import start_gunicorn

TOKEN = "gunicorn-metrics-token"
REQUESTS = 20
HOOK_SECRET = "whk_a-webhook-secret-in-a-path-321"


def test_gunicorn_sums_metrics_over_processes_and_logs_no_secrets(tmp_path):
    config = make_test_config(tmp_path)
    init_database(create_app(config))
    log = tmp_path / "gunicorn.log"
    process, port = start_gunicorn(config, log, processes=2, METRICS_TOKEN=TOKEN)
    site = f"http://127.0.0.1:{port}"
    try:
        for _ in range(REQUESTS):
            answer = requests.get(
                f"{site}/api/v1/connections?code=SECRET-CODE-123&state=STATE-456",
                headers={"Authorization": "Bearer nsk_not-a-real-key-789", "Connection": "close"},
                timeout=10,
            )
            assert answer.status_code == 401
        # A webhook's URL carries its secret in the path: the access log must not.
        hook = requests.post(f"{site}/hooks/7/{HOOK_SECRET}", data=b"{}", timeout=10)
        assert hook.status_code == 404
        scraped = requests.get(
            f"{site}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        )
        assert scraped.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0

    counted = sum(
        sample.value
        for family in text_string_to_metric_families(scraped.text)
        for sample in family.samples
        if sample.name == "notify_site_api_requests_total"
        and sample.labels == {"method": "GET", "endpoint": "api.list_connections", "status": "401"}
    )
    assert counted == REQUESTS  # every process's count, summed at scrape

    text = log.read_text()
    assert text.count('"GET /api/v1/connections HTTP/1.1" 401') == REQUESTS
    assert '"GET /metrics HTTP/1.1" 200' in text
    assert '"POST /hooks/7/[secret] HTTP/1.1" 404' in text
    for secret in ("SECRET-CODE-123", "STATE-456", "nsk_not-a-real-key-789", TOKEN, HOOK_SECRET):
        assert secret not in text
    assert text.count("Booting worker with pid") == 2  # two processes served
