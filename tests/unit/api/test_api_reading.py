"""The JSON API v1 reads back notifications and connections, each key seeing only its
owner's (an admin's key every chat), in pages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import (
    Connection,
    Notification,
    NotificationStatus,
)
from tests.factories import create_connection
from tests.unit.api.calls import assert_api_error, auth, count_rows, post


def test_another_users_connection_is_not_found(app, client, world):
    error = assert_api_error(
        post(client, world.alice_key, {"connection": world.bob_ops, "message": "hi"}),
        404,
        "connection_not_found",
    )
    assert "connection" in error["fields"]
    error = assert_api_error(
        post(client, world.alice_key, {"connections": ["Ops", "Nope"], "message": "hi"}),
        404,
        "connection_not_found",
    )
    assert "connections" in error["fields"]
    assert count_rows(app) == 0  # nothing half-written for the connection that was found
    assert_api_error(
        client.get(f"/api/v1/connections/{world.bob_ops}", headers=auth(world.alice_key)),
        404,
        "connection_not_found",
    )


def test_a_label_means_the_callers_own_connection(app, client, world):
    answer = post(client, world.bob_key, {"connection": "Ops", "message": "bob's"})
    assert answer.status_code == 202
    assert answer.get_json()["notifications"][0]["connection"]["id"] == world.bob_ops


def test_another_users_notification_is_not_found(app, client, world):
    bobs = post(client, world.bob_key, {"connection": "Ops", "message": "private"})
    notification_id = bobs.get_json()["notifications"][0]["id"]
    answer = client.get(f"/api/v1/notifications/{notification_id}", headers=auth(world.alice_key))
    error = assert_api_error(answer, 404, "notification_not_found")
    assert "private" not in json.dumps(error)
    assert_api_error(
        client.get("/api/v1/notifications/99999", headers=auth(world.alice_key)),
        404,
        "notification_not_found",
    )


def test_an_admins_key_reaches_every_connection(app, client, world):
    answer = post(
        client, world.admin_key, {"connections": [world.ops, world.bob_ops], "message": "all"}
    )
    assert answer.status_code == 202, answer.get_data(as_text=True)
    with app.app_context():
        rows = db.session.scalars(select(Notification).order_by(Notification.id)).all()
        assert [(row.connection_id, row.owner_id) for row in rows] == [
            (world.ops, world.alice_id),
            (world.bob_ops, world.bob_id),
        ]
    bobs = post(client, world.bob_key, {"connection": "Ops", "message": "bob"})
    bobs_id = bobs.get_json()["notifications"][0]["id"]
    seen = client.get(f"/api/v1/notifications/{bobs_id}", headers=auth(world.admin_key))
    assert seen.status_code == 200
    listed = client.get("/api/v1/connections", headers=auth(world.admin_key)).get_json()
    assert {c["id"] for c in listed["connections"]} == {
        world.ops,
        world.family,
        world.old,
        world.bob_ops,
    }
    one = client.get(f"/api/v1/connections/{world.bob_ops}", headers=auth(world.admin_key))
    assert one.status_code == 200


def test_a_revoked_connection_is_a_409(app, client, world):
    error = assert_api_error(
        post(client, world.alice_key, {"connection": world.old, "message": "hi"}),
        409,
        "connection_inactive",
    )
    assert "revoked" in error["message"]
    assert "connection" in error["fields"]
    assert count_rows(app) == 0


def test_get_notification_shape(app, client, world):
    queued = post(client, world.alice_key, {"connection": "Family", "message": "status?"})
    notification_id = queued.get_json()["notifications"][0]["id"]
    answer = client.get(f"/api/v1/notifications/{notification_id}", headers=auth(world.alice_key))
    assert answer.status_code == 200
    body = answer.get_json()
    assert set(body) == {
        "id",
        "connection",
        "status",
        "attempts",
        "last_error",
        "last_status_code",
        "message",
        "created_at",
        "updated_at",
        "next_attempt_at",
        "finished_at",
        "send_at",
        "history",
    }
    assert body["history"] == []  # no call made yet
    assert body["id"] == notification_id
    assert body["connection"] == {"id": world.family, "label": "Family"}
    assert body["status"] == "queued"
    assert body["attempts"] == 0
    assert body["last_error"] is None
    assert body["finished_at"] is None
    assert body["message"] == "status?"
    created = datetime.fromisoformat(body["created_at"])
    assert body["created_at"].endswith("Z")
    assert abs(created - utcnow()) < timedelta(minutes=1)

    finished = datetime(2025, 3, 31, 12, 0, 5, tzinfo=UTC)
    with app.app_context():
        row = db.session.get(Notification, notification_id)
        row.status = NotificationStatus.FAILED
        row.attempts = 1
        row.last_error = "Invalid sticker"
        row.last_status_code = 400
        row.finished_at = finished
        db.session.commit()
    body = client.get(
        f"/api/v1/notifications/{notification_id}", headers=auth(world.alice_key)
    ).get_json()
    assert body["status"] == "failed"
    assert body["attempts"] == 1
    assert body["last_error"] == "Invalid sticker"
    assert body["last_status_code"] == 400
    assert body["finished_at"] == "2025-03-31T12:00:05Z"


def test_get_connection_shape_with_rate_limit_snapshot(app, client, world):
    reset = datetime(2030, 1, 1, 0, 0, tzinfo=UTC)
    checked = datetime(2029, 12, 31, 23, 30, tzinfo=UTC)
    with app.app_context():
        family = db.session.get(Connection, world.family)
        family.rate_limit, family.rate_remaining = 1000, 998
        family.rate_image_limit, family.rate_image_remaining = 50, 49
        family.rate_reset_at, family.rate_checked_at = reset, checked
        family.rate_checked_by = "notify"
        db.session.commit()
    answer = client.get(f"/api/v1/connections/{world.family}", headers=auth(world.alice_key))
    assert answer.status_code == 200
    assert answer.get_json() == {
        "id": world.family,
        "label": "Family",
        "target": "Sandbox user",
        "type": "GROUP",
        "status": "active",
        "rate_limit": {
            "limit": 1000,
            "remaining": 998,
            "image_limit": 50,
            "image_remaining": 49,
            "reset_at": "2030-01-01T00:00:00Z",
            "reset": int(reset.timestamp()),
            "checked_at": "2029-12-31T23:30:00Z",
            "checked_by": "notify",
        },
    }
    never_checked = client.get(f"/api/v1/connections/{world.ops}", headers=auth(world.alice_key))
    assert never_checked.get_json()["rate_limit"] == {
        "limit": None,
        "remaining": None,
        "image_limit": None,
        "image_remaining": None,
        "reset_at": None,
        "reset": None,
        "checked_at": None,
        "checked_by": None,
    }
    token_free = json.dumps(answer.get_json()) + never_checked.get_data(as_text=True)
    assert "test-access-token" not in token_free
    assert "token" not in token_free


def test_connections_are_paginated_and_scoped(app, client, world):
    with app.app_context():
        alice = db.session.get(Connection, world.ops).owner
        for n in range(4):
            create_connection(alice, label=f"Extra {n}")
    first = client.get("/api/v1/connections?per_page=2", headers=auth(world.alice_key))
    assert first.status_code == 200
    body = first.get_json()
    assert body["pagination"] == {"page": 1, "per_page": 2, "total": 7, "total_pages": 4}
    assert [c["id"] for c in body["connections"]] == [world.ops, world.family]
    last = client.get("/api/v1/connections?per_page=2&page=4", headers=auth(world.alice_key))
    assert [c["label"] for c in last.get_json()["connections"]] == ["Extra 3"]
    beyond = client.get("/api/v1/connections?per_page=2&page=9", headers=auth(world.alice_key))
    assert beyond.get_json()["connections"] == []
    default = client.get("/api/v1/connections", headers=auth(world.alice_key)).get_json()
    assert default["pagination"]["per_page"] == 50
    assert world.bob_ops not in {c["id"] for c in default["connections"]}
    assert len(default["connections"]) == 7


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("per_page=1000", "per_page"),
        ("per_page=0", "per_page"),
        ("page=0", "page"),
        ("page=x", "page"),
    ],
)
def test_bad_pagination_is_a_400(client, world, query, field):
    answer = client.get(f"/api/v1/connections?{query}", headers=auth(world.alice_key))
    error = assert_api_error(answer, 400, "validation_failed")
    assert field in error["fields"]


def test_ids_beyond_the_database_range_are_not_found(client, world):
    for path in ("/api/v1/notifications/", "/api/v1/connections/"):
        answer = client.get(path + "9" * 30, headers=auth(world.alice_key))
        assert_api_error(answer, 404, "not_found")
