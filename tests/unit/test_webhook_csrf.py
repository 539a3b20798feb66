"""The webhooks' pages with CSRF protection on, as they run outside the tests; the URL the
tools post to needs no token."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.models import User, Webhook
from tests.conftest import make_test_config
from tests.factories import PASSWORD, create_connection, create_webhook, webhook_fixture
from tests.htmlforms import csrf_token


@pytest.fixture
def app_config(tmp_path):
    return make_test_config(tmp_path, WTF_CSRF_ENABLED=True)


def test_the_pages_changes_need_the_token_and_the_tools_url_does_not(app, client, alice):
    with app.app_context():
        owner = db.session.get(User, alice)
        create_connection(owner, label="Ops")
        webhook_id, secret = create_webhook(owner, ["Ops"])
    signed = client.post(
        "/login",
        data={
            "username": "alice",
            "password": PASSWORD,
            "csrf_token": csrf_token(client, "/login"),
        },
    )
    assert signed.status_code == 302
    for path in (
        f"/webhooks/{webhook_id}/pause",
        f"/webhooks/{webhook_id}/delete",
        f"/webhooks/{webhook_id}/preview",
        f"/webhooks/{webhook_id}/secret",
        "/webhooks",
    ):
        assert client.post(path, data={}).status_code == 400, path
    with app.app_context():
        webhook = db.session.scalar(select(Webhook))
        assert webhook.paused_at is None
        assert db.session.get(Webhook, webhook_id) is not None

    token = csrf_token(client, f"/webhooks/{webhook_id}")
    paused = client.post(f"/webhooks/{webhook_id}/pause", data={"csrf_token": token})
    assert paused.status_code == 303
    posted = client.post(
        f"/hooks/{webhook_id}/{secret}", data=webhook_fixture("alertmanager-firing.json")
    )
    assert posted.status_code == 409  # read and refused as paused, not stopped for a token
