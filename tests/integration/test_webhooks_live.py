"""Incoming webhooks over real HTTP, as the issue's "done when" reads: a person connects their
"Team alerts" group, makes a webhook per tool on /webhooks, and each tool's own example
payload, posted as the tool posts it, is delivered into the relay's inbox as a readable
message. The URL's secret never reaches a log line."""

from __future__ import annotations

import logging
import re

import pytest
import requests
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.models import Connection, Notification, NotificationStatus
from tests.factories import webhook_fixture
from tests.integration.helpers import connect_chat, register, relay_reader, submit
from tests.servers import wait_until

URL = re.compile(r'id="new-webhook-url"[^>]*>(https?://[^<]+/hooks/(\d+)/(whk_[A-Za-z0-9_-]+))<')


@pytest.fixture
def live_overrides():
    return {"DELIVERY_RETRY_BASE": 0.01}


def make_webhook(browser: requests.Session, live, name: str, format_name: str) -> tuple:
    """Make a webhook on the page, as a person does; returns (url, id, secret)."""
    with live.app.app_context():
        team = db.session.scalar(select(Connection.id).where(Connection.label == "Team alerts"))
    page = browser.get(f"{live.site}/webhooks")
    made = submit(
        browser,
        page,
        {"name": name, "format": format_name, "locale": "en", "connections": str(team)},
        field="name",
    )
    assert made.status_code == 303, made.text
    shown = browser.get(f"{live.site}{made.headers['Location']}")
    match = URL.search(shown.text)
    assert match, shown.text
    return match.group(1), int(match.group(2)), match.group(3)


def inbox_messages(live) -> list[str]:
    """The messages of alice's private sandbox inbox, read as alice."""
    answer = relay_reader(live).get(f"{live.relay}/inbox.json", timeout=10)
    return [item["message"] for item in answer.json()["messages"]]


def wait_until_delivered(live, count: int) -> None:
    def statuses() -> list[str]:
        with live.app.app_context():
            return db.session.scalars(select(Notification.status)).all()

    def delivered() -> bool:
        found = statuses()
        return len(found) == count and set(found) == {NotificationStatus.DELIVERED}

    wait_until(delivered, 30, f"{count} notifications delivered", details=lambda: str(statuses()))


def test_each_tools_example_reaches_the_team_alerts_group(live, in_process_worker, caplog):
    caplog.set_level(logging.DEBUG)
    browser = requests.Session()
    register(browser, live.site)
    connect_chat(browser, live.site, "Team alerts", "Team alerts")
    alertmanager, am_id, am_secret = make_webhook(browser, live, "Prometheus", "alertmanager")
    grafana, _, gf_secret = make_webhook(browser, live, "Grafana", "grafana")
    kuma, kuma_id, kuma_secret = make_webhook(browser, live, "Uptime Kuma", "uptime-kuma")
    json_headers = {"Content-Type": "application/json"}

    # Alertmanager's example, firing then resolved: the URL with the secret, then the
    # secret as a Bearer header (http_config.authorization), as the README suggests.
    firing = requests.post(
        alertmanager,
        data=webhook_fixture("alertmanager-firing.json"),
        headers=json_headers,
        timeout=10,
    )
    assert firing.status_code == 202, firing.text
    resolved = requests.post(
        f"{live.site}/hooks/{am_id}",
        data=webhook_fixture("alertmanager-resolved.json"),
        headers={**json_headers, "Authorization": f"Bearer {am_secret}"},
        timeout=10,
    )
    assert resolved.status_code == 202, resolved.text
    # Grafana's documented example, PUT as Grafana may be set to.
    grafana_answer = requests.put(
        grafana, data=webhook_fixture("grafana-firing.json"), headers=json_headers, timeout=10
    )
    assert grafana_answer.status_code == 202
    # Uptime Kuma: down, then up, with its "Additional Headers" carrying the secret.
    for name in ("uptime-kuma-down.json", "uptime-kuma-up.json"):
        answer = requests.post(
            f"{live.site}/hooks/{kuma_id}",
            data=webhook_fixture(name),
            headers={**json_headers, "Authorization": f"Bearer {kuma_secret}"},
            timeout=10,
        )
        assert answer.status_code == 202, answer.text

    wait_until_delivered(live, 5)
    delivered = inbox_messages(live)
    expected_starts = [
        "🔥 [FIRING:2] InstanceDown\nSeverity: page\n\n• Instance web-1.example.com:9100 down",
        "✅ [RESOLVED] InstanceDown\nSeverity: page\n",
        "🔥 [FIRING:2] team=blue\n\n• High memory usage: This alert was triggered for zone us-1",
        "🔴 DOWN: My Website\nRequest failed with status code 503\nhttps://www.example.com/",
        "✅ UP: My Website\n200 - OK · 142 ms\nhttps://www.example.com/",
    ]
    for start in expected_starts:
        assert sum(message.startswith(start) for message in delivered) == 1, (start, delivered)

    # A repeat of the resolved notification (Alertmanager retrying) queues nothing.
    again = requests.post(
        alertmanager, data=webhook_fixture("alertmanager-resolved.json"), timeout=10
    )
    assert again.json()["status"] == "duplicate"
    with live.app.app_context():
        assert len(db.session.scalars(select(Notification.id)).all()) == 5

    # The site's logs (its access log included) saw every post, and no secret. The posting
    # client's own debug lines (urllib3, here in the same process) are the tool's log, not
    # the site's: a tool that logs its URLs is why the README recommends the Bearer header.
    site_records = [r for r in caplog.records if not r.name.startswith("urllib3")]
    logs = "\n".join(record.getMessage() for record in site_records)
    assert any(record.name == "werkzeug" for record in site_records)
    assert f"POST /hooks/{am_id}/[secret]" in logs
    assert "PUT /hooks/" in logs
    for secret in (am_secret, gf_secret, kuma_secret):
        assert secret not in logs
