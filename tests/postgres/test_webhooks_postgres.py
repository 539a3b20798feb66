"""Repeats of one alert group posted at once, on PostgreSQL: exactly one queues.

Alertmanager in high availability sends the same notification from each replica, at nearly
the same moment. The webhook_dedupe row's primary key decides (services/webhooks/receive.py).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select

from notify_site.extensions import db
from notify_site.models import Notification, WebhookDedupe, WebhookDelivery
from tests.factories import create_connection, create_user, create_webhook, webhook_fixture

CONCURRENT_POSTS = 30


@pytest.fixture
def live_overrides(pg_url):
    return {"DATABASE_URL": pg_url}


def test_identical_posts_at_once_queue_once_and_a_change_queues_again(live):
    assert live.app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")
    with live.app.app_context():
        alice = create_user("alice")
        create_connection(alice, label="Team alerts", target_type="GROUP")
        webhook_id, secret = create_webhook(alice, ["Team alerts"])
    url = f"{live.site}/hooks/{webhook_id}/{secret}"
    firing = webhook_fixture("alertmanager-firing.json")
    start = threading.Barrier(CONCURRENT_POSTS)

    def post(_):
        start.wait(timeout=30)
        answer = requests.post(url, data=firing, timeout=60)
        return answer.status_code, answer.json()["status"]

    with ThreadPoolExecutor(max_workers=CONCURRENT_POSTS) as pool:
        answers = list(pool.map(post, range(CONCURRENT_POSTS)))

    assert [status for status, _ in answers] == [202] * CONCURRENT_POSTS
    outcomes = [outcome for _, outcome in answers]
    assert outcomes.count("queued") == 1
    assert outcomes.count("duplicate") == CONCURRENT_POSTS - 1
    with live.app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Notification)) == 1
        assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == (
            CONCURRENT_POSTS
        )
        [claim] = db.session.scalars(select(WebhookDedupe)).all()
        first = db.session.scalar(
            select(WebhookDelivery.id).where(WebhookDelivery.outcome == "queued")
        )
        assert claim.delivery_id == first

    resolved = requests.post(url, data=webhook_fixture("alertmanager-resolved.json"), timeout=10)
    assert resolved.json()["status"] == "queued"
