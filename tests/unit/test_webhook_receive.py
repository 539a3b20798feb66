"""Posting to a webhook's URL: 202 and the rows through the one send path; 400, 404, 409, 413,
429; the secret in the path or as Bearer; repeats within the window queue once."""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.log_redaction import RedactingFilter, redact
from notify_site.models import (
    Connection,
    ConnectionStatus,
    Notification,
    User,
    Webhook,
    WebhookDedupe,
    WebhookDelivery,
)
from notify_site.services.webhooks import manage
from tests.conftest import make_test_config
from tests.factories import create_connection, create_user, create_webhook, webhook_fixture

FIRING = webhook_fixture("alertmanager-firing.json")
RESOLVED = webhook_fixture("alertmanager-resolved.json")
NOT_FOUND = {"error": {"code": "not_found", "message": "No such webhook.", "fields": {}}}


@pytest.fixture
def app_config(tmp_path):
    return make_test_config(tmp_path, WEBHOOK_MAX_BODY_BYTES=64 * 1024, WTF_CSRF_ENABLED=True)


@pytest.fixture
def hook(app):
    """Alice's Alertmanager webhook to her "Team alerts" group: (id, secret)."""
    with app.app_context():
        alice = create_user("alice")
        create_connection(alice, label="Team alerts", target_type="GROUP")
        return create_webhook(alice, ["Team alerts"], name="Prometheus")


def post(client, hook, body: bytes = FIRING, **headers):
    webhook_id, secret = hook
    return client.post(
        f"/hooks/{webhook_id}/{secret}",
        data=body,
        headers={"Content-Type": "application/json", **headers},
    )


def rows(app, model):
    with app.app_context():
        return db.session.scalars(select(model).order_by(*model.__table__.primary_key)).all()


def test_a_post_is_queued_through_the_send_path_with_its_history(app, client, hook):
    # CSRF protection is on (app_config): the webhook's URL needs no token.
    answer = post(client, hook)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    data = answer.get_json()
    assert data["status"] == "queued"
    assert data["message"].startswith("🔥 [FIRING:2] InstanceDown\nSeverity: page\n")
    [queued] = data["notifications"]
    assert queued["connection"]["label"] == "Team alerts"
    assert queued["status"] == "queued"
    assert queued["url"] == f"/api/v1/notifications/{queued['id']}"

    [notification] = rows(app, Notification)
    assert notification.id == queued["id"]
    assert notification.message == data["message"]
    assert notification.api_key_id is None
    [delivery] = rows(app, WebhookDelivery)
    assert (delivery.outcome, delivery.id) == ("queued", data["delivery"])
    assert json.loads(delivery.notification_ids) == [notification.id]
    assert delivery.text == data["message"]
    with app.app_context():
        assert db.session.get(Webhook, hook[0]).last_received_at is not None


def test_the_secret_may_come_as_bearer_and_the_method_as_put(client, hook):
    webhook_id, secret = hook
    answer = client.put(
        f"/hooks/{webhook_id}",
        data=RESOLVED,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {secret}"},
    )
    assert answer.status_code == 202
    assert answer.get_json()["message"].startswith("✅ [RESOLVED] InstanceDown")


def test_unknown_webhooks_and_wrong_secrets_get_the_same_404(app, client, hook):
    webhook_id, secret = hook
    with app.app_context():
        alice = db.session.scalar(select(User))
        other_id, other_secret = create_webhook(alice, ["Team alerts"], name="Other")
    attempts = [
        client.post(f"/hooks/{webhook_id}/{secret}x", data=FIRING),
        client.post(f"/hooks/{webhook_id}/{other_secret}", data=FIRING),
        client.post(f"/hooks/{webhook_id}", data=FIRING),
        client.post(f"/hooks/{webhook_id}", data=FIRING, headers={"Authorization": "Bearer"}),
        client.post(f"/hooks/{webhook_id + 99}/{secret}", data=FIRING),
        client.post(f"/hooks/{webhook_id}/nsk_{secret[4:]}", data=FIRING),
        client.post("/hooks/2147483647/whk_x", data=FIRING),
    ]
    for answer in attempts:
        assert answer.status_code == 404
        assert answer.get_json() == NOT_FOUND
        assert answer.mimetype == "application/json"
    assert rows(app, Notification) == []
    assert rows(app, WebhookDelivery) == []  # an unauthenticated post leaves no trace
    assert post(client, (other_id, other_secret)).status_code == 202


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (b"{not json", {"body": "is not valid JSON"}),
        (b"", {"body": "is empty: send the tool's JSON"}),
        (b'{"status": "firing"}', {"alerts": "is missing"}),
        (
            b'{"status": "firing", "alerts": [{"annotations": {}}]}',
            {"alerts[0].labels": "is missing"},
        ),
    ],
)
def test_a_body_the_format_cannot_read_is_a_400_naming_what_is_missing(
    app, client, hook, body, fields
):
    answer = post(client, hook, body)
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert error["code"] == "invalid_payload"
    assert error["fields"] == fields
    assert "alertmanager" in error["message"]
    assert rows(app, Notification) == []
    [delivery] = rows(app, WebhookDelivery)
    assert delivery.outcome == "invalid"
    assert delivery.notification_ids is None


def test_a_paused_webhook_answers_409_and_queues_nothing_until_resumed(app, client, hook):
    with app.app_context():
        alice = db.session.scalar(select(User))
        manage.set_paused(alice, hook[0], True)
    answer = post(client, hook)
    assert answer.status_code == 409
    assert answer.get_json()["error"]["code"] == "webhook_paused"
    assert rows(app, Notification) == []
    assert [d.outcome for d in rows(app, WebhookDelivery)] == ["refused"]
    with app.app_context():
        manage.set_paused(db.session.scalar(select(User)), hook[0], False)
    assert post(client, hook).status_code == 202


def test_a_webhook_whose_chats_cannot_receive_answers_409(app, client, hook):
    with app.app_context():
        db.session.execute(update(Connection).values(status=ConnectionStatus.REVOKED))
        db.session.commit()
    answer = post(client, hook)
    assert answer.status_code == 409
    assert answer.get_json()["error"]["code"] == "no_active_chat"
    assert rows(app, Notification) == []


def test_a_body_over_the_webhooks_limit_is_a_413(app, client, hook):
    payload = json.loads(FIRING)
    payload["commonAnnotations"]["padding"] = "x" * (64 * 1024)
    answer = post(client, hook, json.dumps(payload).encode())
    assert answer.status_code == 413
    error = answer.get_json()["error"]
    assert error["code"] == "request_entity_too_large"
    assert "65536" in error["message"]
    assert rows(app, Notification) == []


def test_repeats_within_the_window_queue_once_and_changes_always_queue(app, client, hook):
    first = post(client, hook).get_json()
    repeat = post(client, hook)
    assert repeat.status_code == 202
    again = repeat.get_json()
    assert again["status"] == "duplicate"
    assert again["duplicate_of"] == first["delivery"]
    assert [n["id"] for n in again["notifications"]] == [n["id"] for n in first["notifications"]]
    assert len(rows(app, Notification)) == 1

    # Resolved, then firing again a moment later: both are news.
    assert post(client, hook, RESOLVED).get_json()["status"] == "queued"
    assert post(client, hook).get_json()["status"] == "queued"
    assert post(client, hook).get_json()["status"] == "duplicate"
    # A new alert joining the firing group is news too.
    grown = json.loads(FIRING)
    grown["alerts"].append({**grown["alerts"][0], "fingerprint": "00000000000000ff"})
    assert post(client, hook, json.dumps(grown).encode()).get_json()["status"] == "queued"
    assert len(rows(app, Notification)) == 4

    # Once the window has passed, the same state queues again.
    with app.app_context():
        db.session.execute(update(WebhookDedupe).values(expires_at=utcnow() - timedelta(1)))
        db.session.commit()
    assert post(client, hook, json.dumps(grown).encode()).get_json()["status"] == "queued"
    outcomes = [d.outcome for d in rows(app, WebhookDelivery)]
    assert outcomes == ["queued", "duplicate", "queued", "queued", "duplicate", "queued", "queued"]


def test_a_window_of_zero_queues_every_post(app, client, hook):
    with app.app_context():
        db.session.execute(update(Webhook).values(dedupe_seconds=0))
        db.session.commit()
    assert [post(client, hook).get_json()["status"] for _ in range(3)] == ["queued"] * 3
    assert len(rows(app, Notification)) == 3
    assert rows(app, WebhookDedupe) == []


def test_uptime_kuma_form_data_and_plain_text_are_read(app, client):
    with app.app_context():
        alice = create_user("alice")
        create_connection(alice, label="Me")
        kuma = create_webhook(alice, ["Me"], format_name="uptime-kuma", name="Kuma")
        text = create_webhook(alice, ["Me"], format_name="text", name="Cron")
    # Uptime Kuma's "form-data" body: the JSON in a field named data.
    answer = client.post(
        f"/hooks/{kuma[0]}/{kuma[1]}",
        data={"data": webhook_fixture("uptime-kuma-down.json").decode()},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 202
    assert answer.get_json()["message"].startswith("🔴 DOWN: My Website\n")
    plain = client.post(
        f"/hooks/{text[0]}/{text[1]}", data="Backup done ✅".encode(), content_type="text/plain"
    )
    assert plain.get_json()["message"] == "Backup done ✅"
    form = client.post(f"/hooks/{text[0]}/{text[1]}", data={"message": "Disk 91% full"})
    assert form.get_json()["message"] == "Disk 91% full"
    assert [n.message for n in rows(app, Notification)][1:] == ["Backup done ✅", "Disk 91% full"]


def test_a_template_that_fails_on_a_post_sends_the_built_in_message_and_says_why(app, client, hook):
    with app.app_context():
        alice = db.session.scalar(select(User))
        # Fine on the sample (two alerts); a division by zero on a post without alerts.
        manage.update_webhook(
            alice,
            hook[0],
            manage.Settings(
                name="Prometheus",
                connections=["Team alerts"],
                template="{{ status }}: {{ 100 // alerts|length }}% each",
            ),
        )
    assert post(client, hook).get_json()["message"] == "firing: 50% each"
    empty = json.loads(FIRING)
    empty["alerts"] = []
    empty["groupKey"] = "another group"
    data = post(client, hook, json.dumps(empty).encode()).get_json()
    assert data["status"] == "queued"
    assert data["message"] == (
        "🔥 [FIRING:0] InstanceDown\nSeverity: page\n\nhttp://alertmanager.example.com:9093"
    )
    assert "ZeroDivisionError" in data["note"]
    assert "ZeroDivisionError" in rows(app, WebhookDelivery)[-1].detail


def test_posts_are_limited_per_secret_like_the_api(tmp_path):
    from notify_site import create_app
    from tests.conftest import init_database

    app = create_app(make_test_config(tmp_path, WEBHOOK_RATE_LIMIT="2 per minute"))
    init_database(app)
    with app.app_context():
        alice = create_user("alice")
        create_connection(alice, label="Ops")
        hook = create_webhook(alice, ["Ops"], dedupe_seconds=0)
    client = app.test_client()
    # A stranger's wrong secrets spend a budget of their own, never the webhook's.
    for _ in range(3):
        client.post(f"/hooks/{hook[0]}/whk_wrong", data=FIRING)
    answers = [post(client, hook) for _ in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert answers[0].headers["RateLimit-Limit"] == "2"
    assert answers[2].get_json()["error"]["code"] == "rate_limited"
    assert int(answers[2].headers["Retry-After"]) >= 1


def test_a_webhook_path_in_a_log_line_loses_its_secret():
    line = '127.0.0.1 - - [x] "POST /hooks/12/whk_AbC-123_xyz HTTP/1.1" 202 -'
    assert redact(line) == '127.0.0.1 - - [x] "POST /hooks/12/[secret] HTTP/1.1" 202 -'
    assert redact("GET /webhooks/12/delete") == "GET /webhooks/12/delete"
    record = logging.LogRecord(
        "werkzeug", logging.INFO, "", 0, '"%s" %s', ("POST /hooks/3/whk_s", 202), None
    )
    assert RedactingFilter().filter(record)
    assert record.getMessage() == '"POST /hooks/3/[secret]" 202'
    assert logging.getLogger("werkzeug").filters  # create_app put it on the access log


def test_a_post_stays_within_the_form_fields_limit(app, client, hook):
    # A multipart body for a JSON format without a data field is read as the body itself.
    answer = client.post(
        f"/hooks/{hook[0]}/{hook[1]}",
        data={"file": (io.BytesIO(b"x"), "x.txt")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 400
    assert answer.get_json()["error"]["fields"] == {"body": "is not valid JSON"}


def test_the_history_keeps_the_newest_posts(app, client, hook, monkeypatch):
    from notify_site.services.webhooks import receive

    monkeypatch.setattr(receive, "HISTORY_KEPT", 3)
    ids = [post(client, hook, b"{}").status_code for _ in range(5)]
    assert ids == [400] * 5
    kept = [d.id for d in rows(app, WebhookDelivery)]
    assert kept == [3, 4, 5]
