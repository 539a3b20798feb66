"""Webhooks for automation: GET/POST/DELETE /api/v1/webhooks (in the OpenAPI document) and
``flask --app wsgi create-webhook``."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.models import Webhook
from tests.factories import (
    create_api_key,
    create_connection,
    create_user,
    create_webhook,
    webhook_fixture,
)

FIRING = webhook_fixture("alertmanager-firing.json")


@pytest.fixture
def keys(app):
    """Alice's and Bob's API keys; Alice has "Team alerts", Bob "Bobs"."""
    with app.app_context():
        alice = create_user("alice")
        create_connection(alice, label="Team alerts", target_type="GROUP")
        bob = create_user("bob")
        create_connection(bob, label="Bobs")
        create_webhook(bob, ["Bobs"], name="Bob's Grafana", format_name="grafana")
        _, alice_key = create_api_key(alice, "automation")
        _, bob_key = create_api_key(bob, "automation")
        return {"alice": alice_key, "bob": bob_key}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_webhook_made_through_the_api_answers_its_secret_once(app, client, keys):
    made = client.post(
        "/api/v1/webhooks",
        json={"name": "Prometheus", "format": "alertmanager", "connection": "Team alerts"},
        headers=auth(keys["alice"]),
    )
    assert made.status_code == 201, made.get_data(as_text=True)
    data = made.get_json()
    assert data["name"] == "Prometheus"
    assert data["format"] == "alertmanager"
    assert data["status"] == "active"
    assert data["template"] is None
    assert data["dedupe_seconds"] == 300
    assert [c["label"] for c in data["connections"]] == ["Team alerts"]
    assert data["secret"].startswith("whk_")
    assert data["url"] == f"http://127.0.0.1:5000/hooks/{data['id']}"
    assert data["url_with_secret"] == f"{data['url']}/{data['secret']}"

    posted = client.post(urlsplit(data["url_with_secret"]).path, data=FIRING)
    assert posted.status_code == 202
    bearer = client.post(urlsplit(data["url"]).path, data=FIRING, headers=auth(data["secret"]))
    assert bearer.get_json()["status"] == "duplicate"

    # Never again: not in the list, not in the webhook.
    listed = client.get("/api/v1/webhooks", headers=auth(keys["alice"]))
    one = client.get(f"/api/v1/webhooks/{data['id']}", headers=auth(keys["alice"]))
    for answer in (listed, one):
        assert answer.status_code == 200
        assert data["secret"] not in answer.get_data(as_text=True)
        assert "secret" not in answer.get_data(as_text=True)
    assert [w["name"] for w in listed.get_json()["webhooks"]] == ["Prometheus"]
    assert listed.get_json()["pagination"]["total"] == 1
    assert one.get_json()["last_received_at"].endswith("Z")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "format": "nagios", "connection": "Team alerts"}, "format"),
        ({"name": "x", "format": "grafana", "connection": "Nope"}, "connections"),
        ({"name": "x", "format": "grafana", "connections": ["Bobs"]}, "connections"),
        ({"name": "", "format": "grafana", "connection": "Team alerts"}, "name"),
        ({"name": "x", "format": "grafana"}, "connection"),
        ({"name": "x", "format": "grafana", "connection": 1, "color": "red"}, "color"),
        (
            {"name": "x", "format": "grafana", "connection": 1, "template": "{{ 1 / 0 }}"},
            "template",
        ),
        (
            {"name": "x", "format": "text", "connection": 1, "dedupe_seconds": -1},
            "dedupe_seconds",
        ),
    ],
)
def test_a_webhook_the_api_cannot_make_is_a_400_naming_the_field(app, client, keys, body, field):
    answer = client.post("/api/v1/webhooks", json=body, headers=auth(keys["alice"]))
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert field in answer.get_json()["error"]["fields"]
    with app.app_context():
        assert db.session.scalars(select(Webhook.name)).all() == ["Bob's Grafana"]


def test_a_key_reaches_its_owners_webhooks_only_and_delete_stops_the_url(app, client, keys):
    with app.app_context():
        bobs_id = db.session.scalar(select(Webhook.id))
    assert client.get(f"/api/v1/webhooks/{bobs_id}", headers=auth(keys["alice"])).status_code == 404
    gone = client.delete(f"/api/v1/webhooks/{bobs_id}", headers=auth(keys["alice"]))
    assert gone.status_code == 404
    assert gone.get_json()["error"]["code"] == "webhook_not_found"
    assert client.get("/api/v1/webhooks", headers=auth(keys["alice"])).get_json()["webhooks"] == []

    deleted = client.delete(f"/api/v1/webhooks/{bobs_id}", headers=auth(keys["bob"]))
    assert deleted.status_code == 204
    assert deleted.get_data() == b""
    assert client.get(f"/api/v1/webhooks/{bobs_id}", headers=auth(keys["bob"])).status_code == 404
    assert client.post(f"/hooks/{bobs_id}/whk_anything", data=FIRING).status_code == 404


def test_the_webhook_endpoints_are_in_the_openapi_document(client):
    document = client.get("/api/v1/openapi.json").get_json()
    listing = document["paths"]["/api/v1/webhooks"]
    one = document["paths"]["/api/v1/webhooks/{webhook_id}"]
    assert set(listing) >= {"get", "post"}
    assert set(one) >= {"get", "delete"}
    assert "201" in listing["post"]["responses"]
    assert "204" in one["delete"]["responses"]
    body = listing["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/WebhookRequest")
    schemas = document["components"]["schemas"]
    assert schemas["WebhookRequest"]["properties"]["format"]["enum"] == [
        "alertmanager",
        "grafana",
        "uptime-kuma",
        "generic",
        "text",
    ]
    assert "secret" in schemas["WebhookCreated"]["properties"]
    assert "secret" not in schemas["Webhook"]["properties"]


def test_the_command_line_makes_a_webhook_and_prints_its_url(app, runner, client):
    with app.app_context():
        alice = create_user("alice")
        create_connection(alice, label="Team alerts", target_type="GROUP")
    result = runner.invoke(
        args=[
            "create-webhook",
            "--user",
            "alice",
            "--connection",
            "Team alerts",
            "--format",
            "uptime-kuma",
            "--name",
            "Kuma",
        ]
    )
    assert result.exit_code == 0, result.output
    url = result.stdout.strip()
    assert url.startswith("http://127.0.0.1:5000/hooks/")
    assert "only now" in result.stderr
    answer = client.post(urlsplit(url).path, data=webhook_fixture("uptime-kuma-down.json"))
    assert answer.status_code == 202
    assert answer.get_json()["message"].startswith("🔴 DOWN: My Website")

    unknown = runner.invoke(
        args=["create-webhook", "--user", "nobody", "--connection", "x", "--format", "text"]
    )
    assert unknown.exit_code == 1
    assert "There is no account called “nobody”." in unknown.output
    no_chat = runner.invoke(
        args=["create-webhook", "--user", "alice", "--connection", "Gone", "--format", "text"]
    )
    assert no_chat.exit_code == 1
    assert "connections: no connection 'Gone'" in no_chat.output
    bad_format = runner.invoke(
        args=["create-webhook", "--user", "alice", "--connection", "x", "--format", "nagios"]
    )
    assert bad_format.exit_code == 2
