"""One Idempotency-Key under 1,000 concurrent requests, on PostgreSQL: exactly one queues.

The claim is one ``INSERT … ON CONFLICT DO NOTHING RETURNING`` (services/idempotency.py):
PostgreSQL makes every other insert of the key wait for the first transaction, then insert
nothing; those requests read the committed answer and replay it.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from notify_site.extensions import db
from notify_site.models import IdempotencyRecord, Notification
from tests.conftest import make_test_config
from tests.factories import create_api_key, create_connection, create_user

REQUESTS = 1_000
THREADS = 16


@pytest.fixture
def app_config(tmp_path, pg_url):
    # One key makes all 1,000 requests: its rate limit must not answer any of them.
    return make_test_config(tmp_path, DATABASE_URL=pg_url, API_RATE_LIMIT="100000 per minute")


def test_one_key_under_1000_concurrent_requests_queues_once(app):
    with app.app_context():
        assert db.engine.dialect.name == "postgresql"
        alice = create_user("alice")
        ops = create_connection(alice, label="Ops")
        family = create_connection(alice, label="Family", target_type="GROUP")
        _, key = create_api_key(alice, "load test")
        targets = {ops.id, family.id}
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "release-2026-12-05"}
    body = {"connections": ["Ops", "Family"], "message": "Release 2026-12-05 is out"}
    start = threading.Barrier(THREADS)

    def send(thread: int) -> list[tuple[int, str, str | None]]:
        client = app.test_client()
        start.wait(timeout=30)
        answers = []
        for _ in range(REQUESTS // THREADS + (thread < REQUESTS % THREADS)):
            answer = client.post("/api/v1/notifications", json=body, headers=headers)
            answers.append(
                (
                    answer.status_code,
                    answer.get_data(as_text=True),
                    answer.headers.get("Idempotent-Replayed"),
                )
            )
        return answers

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        answers = [answer for batch in pool.map(send, range(THREADS)) for answer in batch]

    assert len(answers) == REQUESTS
    assert [status for status, _, _ in answers].count(202) == REQUESTS
    assert len({text for _, text, _ in answers}) == 1
    assert [replayed for _, _, replayed in answers].count(None) == 1  # one queued; all replayed
    with app.app_context():
        rows = db.session.scalars(select(Notification)).all()
        assert {row.connection_id for row in rows} == targets
        assert len(rows) == 2
        assert db.session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 1


def test_a_failed_claim_holder_leaves_the_key_free(app):
    """A request that claimed the key and then failed rolled its claim back: a retry queues."""
    with app.app_context():
        alice = create_user("alice")
        create_connection(alice, label="Ops")
        _, key = create_api_key(alice, "ci")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "k-1"}
    refused = client.post(
        "/api/v1/notifications", json={"connection": "Nope", "message": "x"}, headers=headers
    )
    assert refused.status_code == 404
    queued = client.post(
        "/api/v1/notifications", json={"connection": "Ops", "message": "x"}, headers=headers
    )
    assert queued.status_code == 202
    assert "Idempotent-Replayed" not in queued.headers
    again = client.post(
        "/api/v1/notifications", json={"connection": "Ops", "message": "x"}, headers=headers
    )
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == queued.get_data()
