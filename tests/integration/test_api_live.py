"""The JSON API over real HTTP: many concurrent POSTs with one Idempotency-Key queue once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import func, select

from notify_site.extensions import db
from notify_site.models import IdempotencyRecord, Notification
from tests.factories import create_api_key, create_connection, create_user

CONCURRENT_POSTS = 120


def test_concurrent_posts_with_one_idempotency_key_queue_once(live):
    with live.app.app_context():
        alice = create_user("alice")
        ops = create_connection(alice, label="Ops")
        family = create_connection(alice, label="Family", target_type="GROUP")
        _, key = create_api_key(alice, "load test")
        ops_id, family_id = ops.id, family.id
    targets = {ops_id, family_id}

    url = f"{live.site}/api/v1/notifications"
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "release-2025-03-31"}
    body = {"connections": [ops_id, "Family"], "message": "Release 2025-03-31 is out"}
    start = threading.Barrier(CONCURRENT_POSTS)

    def send(_):
        start.wait(timeout=30)  # every thread fires at once
        answer = requests.post(url, json=body, headers=headers, timeout=60)
        return answer.status_code, answer.text, answer.headers.get("Idempotent-Replayed")

    with ThreadPoolExecutor(max_workers=CONCURRENT_POSTS) as pool:
        answers = list(pool.map(send, range(CONCURRENT_POSTS)))

    statuses = [status for status, _, _ in answers]
    assert statuses.count(202) == CONCURRENT_POSTS, sorted(set(statuses))
    bodies = {text for _, text, _ in answers}
    assert len(bodies) == 1, bodies
    # Exactly one request queued; every other one replayed its answer.
    assert [replayed for _, _, replayed in answers].count(None) == 1
    records = requests.post(url, json=body, headers=headers, timeout=10).json()["notifications"]
    assert {record["connection"]["id"] for record in records} == targets

    with live.app.app_context():
        rows = db.session.scalars(select(Notification)).all()
        assert len(rows) == 2
        assert {row.connection_id for row in rows} == targets
        assert sorted(row.id for row in rows) == sorted(record["id"] for record in records)
        assert db.session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 1

    changed = requests.post(url, json={**body, "message": "changed"}, headers=headers, timeout=10)
    assert changed.status_code == 422
    assert changed.json()["error"]["code"] == "idempotency_key_reused"

    for record in records:
        status = requests.get(
            f"{live.site}{record['url']}", headers={"Authorization": f"Bearer {key}"}, timeout=10
        )
        assert status.status_code == 200
        assert status.json()["status"] in {"queued", "sending", "delivered", "failed"}
