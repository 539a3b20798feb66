"""The /webhooks pages: making a webhook (its URL shown once), its settings and template
(refused when it fails on the sample), the live preview, Send test, pause, a new URL, delete
with confirmation, and nobody else's webhooks."""

from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import func, select

from notify_site.extensions import db
from notify_site.models import ApiKeyReveal, Notification, User, Webhook, WebhookDelivery
from tests.factories import (
    create_connection,
    create_user,
    create_webhook,
    login,
    webhook_fixture,
)

URL_PATTERN = re.compile(r"https?://[^\s<\"']+/hooks/(\d+)/(whk_[A-Za-z0-9_-]+)")
SECRET_PATTERN = re.compile(r"whk_[A-Za-z0-9_-]{20,}")


@pytest.fixture(autouse=True)
def chats(app, alice):
    """Alice's chats: the group "Team alerts" and her 1-on-1 "Me"."""
    with app.app_context():
        owner = db.session.get(User, alice)
        create_connection(owner, label="Team alerts", target_type="GROUP")
        create_connection(owner, label="Me")


def connection_id(app, label: str) -> int:
    with app.app_context():
        from notify_site.models import Connection

        return db.session.scalar(select(Connection.id).where(Connection.label == label))


def make(app, client, **fields) -> tuple[int, str, str]:
    """Make a webhook on the page; returns its id, its secret and the page that showed it."""
    data = {
        "name": "Prometheus",
        "format": "alertmanager",
        "locale": "en",
        "connections": [connection_id(app, "Team alerts")],
        **fields,
    }
    made = client.post("/webhooks", data=data)
    assert made.status_code == 303, made.get_data(as_text=True)
    page = client.get(made.headers["Location"])
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    match = URL_PATTERN.search(html)
    assert match, "the new URL is on the page"
    return int(match.group(1)), match.group(2), html


def settings(app, **overrides) -> dict:
    return {
        "name": "Prometheus",
        "locale": "en",
        "dedupe_minutes": "5",
        "connections": [connection_id(app, "Team alerts")],
        "template": "",
        **overrides,
    }


def test_the_navigation_leads_to_the_webhooks_page(signed_in):
    page = signed_in.get("/dashboard").get_data(as_text=True)
    assert '<a href="/webhooks">Webhooks</a>' in page
    listing = signed_in.get("/webhooks")
    assert listing.status_code == 200
    assert "Make the webhook" in listing.get_data(as_text=True)


def test_a_new_webhooks_url_is_shown_once_and_only_its_hash_is_kept(app, signed_in):
    webhook_id, secret, html = make(app, signed_in)
    assert html.count(secret) == 2  # the URL to copy, and the curl command
    with app.app_context():
        webhook = db.session.get(Webhook, webhook_id)
        assert webhook.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert [c.label for c in webhook.connections] == ["Team alerts"]
        assert db.session.scalar(select(func.count()).select_from(ApiKeyReveal)) == 0
    # Never again, on any page.
    for path in ("/webhooks", f"/webhooks/{webhook_id}", f"/webhooks/{webhook_id}/delete"):
        again = signed_in.get(path)
        assert again.status_code == 200
        assert secret not in again.get_data(as_text=True)
        assert not SECRET_PATTERN.search(again.get_data(as_text=True))
    detail = signed_in.get(f"/webhooks/{webhook_id}")
    assert detail.headers["Cache-Control"] == "no-store"
    assert f"/hooks/{webhook_id}</code>" in detail.get_data(as_text=True)
    # The URL works.
    posted = signed_in.post(
        f"/hooks/{webhook_id}/{secret}", data=webhook_fixture("alertmanager-firing.json")
    )
    assert posted.status_code == 202


def test_making_a_webhook_says_what_is_wrong_beside_the_field(app, signed_in):
    refused = signed_in.post(
        "/webhooks", data={"name": "", "format": "alertmanager", "locale": "en"}
    )
    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    assert "This field is required." in html
    assert "Choose at least one chat." in html
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Webhook)) == 0


def test_a_template_that_fails_on_the_sample_is_refused_at_save(app, signed_in):
    webhook_id, _, _ = make(app, signed_in)
    for template, reason in [
        ("{{ 1 / 0 }}", "Line 1: ZeroDivisionError: division by zero"),
        ("{{ ''.__class__ }}", "Not allowed: access to attribute"),
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}x",
            "did too much work",
        ),
        ("{% if false %}x{% endif %}", "The template writes nothing for the sample."),
        ("{% for a in alerts %}", "Line 1: Unexpected end of template"),
    ]:
        answer = signed_in.post(f"/webhooks/{webhook_id}", data=settings(app, template=template))
        assert answer.status_code == 400
        assert reason in answer.get_data(as_text=True)
        with app.app_context():
            assert db.session.get(Webhook, webhook_id).template is None

    good = "{{ status|upper }} {{ alerts|length }}: {{ commonLabels.alertname }}"
    saved = signed_in.post(f"/webhooks/{webhook_id}", data=settings(app, template=good))
    assert saved.status_code == 303
    page = signed_in.get(f"/webhooks/{webhook_id}").get_data(as_text=True)
    assert "FIRING 2: HighErrorRate</pre>" in page  # the preview of the sample
    with app.app_context():
        assert db.session.get(Webhook, webhook_id).template == good


def test_the_live_preview_renders_the_sample_or_says_why_not(app, signed_in):
    webhook_id, _, _ = make(app, signed_in)
    url = f"/webhooks/{webhook_id}/preview"
    ok = signed_in.post(url, json={"template": "{{ alerts[0].labels.instance }}"})
    assert ok.get_json() == {"text": "api-1.example.com:8080"}
    failed = signed_in.post(url, json={"template": "{{ nope( }}"})
    assert failed.get_json()["error"].startswith("Line 1: ")
    built_in = signed_in.post(url, json={"template": "  ", "locale": "en"})
    assert built_in.get_json()["text"].startswith("🔥 [FIRING:2] HighErrorRate")
    # Without script: the Preview button posts the form and saves nothing.
    page = signed_in.post(
        f"/webhooks/{webhook_id}",
        data=settings(app, template="Hi {{ receiver }}", action="preview"),
    )
    assert page.status_code == 200
    assert "Hi line</pre>" in page.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Webhook, webhook_id).template is None


def test_send_test_posts_the_formats_sample_through_the_send_path(app, signed_in):
    webhook_id, _, _ = make(app, signed_in)
    sent = signed_in.post(f"/webhooks/{webhook_id}/test", follow_redirects=True)
    html = sent.get_data(as_text=True)
    assert "Test sent: 1 notification queued." in html
    with app.app_context():
        [notification] = db.session.scalars(select(Notification)).all()
        [delivery] = db.session.scalars(select(WebhookDelivery)).all()
    assert notification.message.startswith("🔥 [FIRING:2] HighErrorRate")
    assert delivery.test
    assert f"/send/status?ids={notification.id}" in html
    # A test is never a repeat.
    signed_in.post(f"/webhooks/{webhook_id}/test")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Notification)) == 2


def test_pause_refuses_posts_and_resume_lets_them_in(app, signed_in):
    webhook_id, secret, _ = make(app, signed_in)
    firing = webhook_fixture("alertmanager-firing.json")
    assert signed_in.post(f"/webhooks/{webhook_id}/pause").status_code == 303
    assert signed_in.post(f"/hooks/{webhook_id}/{secret}", data=firing).status_code == 409
    page = signed_in.get(f"/webhooks/{webhook_id}").get_data(as_text=True)
    assert "The webhook is paused." in page
    assert signed_in.post(f"/webhooks/{webhook_id}/resume").status_code == 303
    assert signed_in.post(f"/hooks/{webhook_id}/{secret}", data=firing).status_code == 202


def test_a_new_url_replaces_the_old_one_at_once(app, signed_in):
    webhook_id, old, _ = make(app, signed_in)
    made = signed_in.post(f"/webhooks/{webhook_id}/secret", follow_redirects=True)
    match = URL_PATTERN.search(made.get_data(as_text=True))
    new = match.group(2)
    assert new != old
    firing = webhook_fixture("alertmanager-firing.json")
    assert signed_in.post(f"/hooks/{webhook_id}/{old}", data=firing).status_code == 404
    assert signed_in.post(f"/hooks/{webhook_id}/{new}", data=firing).status_code == 202


def test_delete_asks_first_then_the_url_answers_404(app, signed_in):
    webhook_id, secret, _ = make(app, signed_in)
    signed_in.post(f"/webhooks/{webhook_id}/test")
    confirm = signed_in.get(f"/webhooks/{webhook_id}/delete")
    assert confirm.status_code == 200
    assert "Delete “Prometheus”?" in confirm.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Webhook, webhook_id) is not None
    deleted = signed_in.post(f"/webhooks/{webhook_id}/delete", follow_redirects=True)
    assert "The webhook “Prometheus” is deleted." in deleted.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Webhook, webhook_id) is None
        assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
        assert db.session.scalar(select(func.count()).select_from(Notification)) == 1
    firing = webhook_fixture("alertmanager-firing.json")
    assert signed_in.post(f"/hooks/{webhook_id}/{secret}", data=firing).status_code == 404


def test_another_persons_webhook_is_not_found_on_every_page(app, client, alice):
    with app.app_context():
        bob = create_user("bob")
        create_connection(bob, label="Bobs")
        bobs_id, _ = create_webhook(bob, ["Bobs"])
    login(client)
    for method, path in [
        ("get", f"/webhooks/{bobs_id}"),
        ("post", f"/webhooks/{bobs_id}"),
        ("post", f"/webhooks/{bobs_id}/preview"),
        ("post", f"/webhooks/{bobs_id}/test"),
        ("post", f"/webhooks/{bobs_id}/secret"),
        ("post", f"/webhooks/{bobs_id}/pause"),
        ("get", f"/webhooks/{bobs_id}/delete"),
        ("post", f"/webhooks/{bobs_id}/delete"),
    ]:
        assert getattr(client, method)(path).status_code == 404, path
    with app.app_context():
        assert db.session.get(Webhook, bobs_id).paused_at is None


def test_the_history_is_kept_in_english_and_shown_in_the_pages_language(app, signed_in):
    webhook_id, secret, _ = make(app, signed_in)
    signed_in.post(f"/hooks/{webhook_id}/{secret}", data=b'{"status": "firing"}')
    signed_in.post(f"/webhooks/{webhook_id}/pause")
    signed_in.post(f"/hooks/{webhook_id}/{secret}", data=b"{}")
    with app.app_context():
        details = db.session.scalars(
            select(WebhookDelivery.detail).order_by(WebhookDelivery.id)
        ).all()
    assert details == ["alerts: is missing", "The webhook is paused."]
    with app.app_context():
        codes = db.session.scalars(
            select(WebhookDelivery.detail_code).order_by(WebhookDelivery.id)
        ).all()
    assert codes == ["payload_unreadable", "webhook_paused"]
    signed_in.set_cookie("lang", "ja")
    page = signed_in.get(f"/webhooks/{webhook_id}").get_data(as_text=True)
    assert "alerts：ありません" in page
    assert "Webhook は一時停止中です。" in page
    assert "is missing" not in page
