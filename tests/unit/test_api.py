"""The JSON API v1: queueing, reading back, scoping by key owner, errors, the OpenAPI document."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import (
    Connection,
    ConnectionStatus,
    IdempotencyRecord,
    Notification,
    NotificationStatus,
)
from notify_site.services import notifications
from tests import images
from tests.factories import create_api_key, create_connection, create_user, tiny_png

ERROR_KEYS = {"code", "message", "fields"}


@dataclass
class World:
    """An admin, two users, their connections and a key each."""

    admin_key: str
    alice_key: str
    bob_key: str
    alice_id: int
    bob_id: int
    ops: int  # alice's "Ops"
    family: int  # alice's "Family"
    old: int  # alice's revoked "Old"
    bob_ops: int  # bob's "Ops"


@pytest.fixture
def world(app) -> World:
    with app.app_context():
        admin = create_user("root")  # the first account is an admin
        alice = create_user("alice")
        bob = create_user("bob")
        ops = create_connection(alice, label="Ops")
        family = create_connection(alice, label="Family", target_type="GROUP")
        old = create_connection(alice, label="Old", status=ConnectionStatus.REVOKED)
        bob_ops = create_connection(bob, label="Ops")
        return World(
            admin_key=create_api_key(admin, "admin")[1],
            alice_key=create_api_key(alice, "alice")[1],
            bob_key=create_api_key(bob, "bob")[1],
            alice_id=alice.id,
            bob_id=bob.id,
            ops=ops.id,
            family=family.id,
            old=old.id,
            bob_ops=bob_ops.id,
        )


def auth(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def post(client, key: str, body=None, headers=None, **kwargs):
    if body is not None:
        kwargs["json"] = body
    return client.post("/api/v1/notifications", headers=auth(key, **(headers or {})), **kwargs)


def count_rows(app, model=Notification) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def assert_api_error(response, status: int, code: str) -> dict:
    """A JSON error of the documented shape: no HTML, no traceback."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    text = response.get_data(as_text=True)
    assert "<html" not in text.lower()
    assert "Traceback" not in text
    assert 'File "' not in text
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == ERROR_KEYS
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    return body["error"]


# ---------------------------------------------------------------------------- queueing


def test_post_by_id_answers_202_with_one_record(app, client, world):
    answer = post(client, world.alice_key, {"connection": world.ops, "message": "Disk full"})
    assert answer.status_code == 202, answer.get_data(as_text=True)
    with app.app_context():
        row = db.session.scalar(select(Notification))
        assert answer.get_json() == {
            "notifications": [
                {
                    "id": row.id,
                    "connection": {"id": world.ops, "label": "Ops"},
                    "status": "queued",
                    "url": f"/api/v1/notifications/{row.id}",
                }
            ]
        }
        assert row.connection_id == world.ops
        assert row.owner_id == world.alice_id
        assert row.message == "Disk full"
        assert row.status == NotificationStatus.QUEUED
        assert row.api_key_id is not None
        assert row.notification_disabled is False


def test_post_by_label_and_to_several_connections_makes_one_row_per_target(app, client, world):
    answer = post(
        client,
        world.alice_key,
        {"connections": ["Family", world.ops, "Ops"], "message": "Deploy done"},
    )
    assert answer.status_code == 202, answer.get_data(as_text=True)
    records = answer.get_json()["notifications"]
    assert [r["connection"] for r in records] == [
        {"id": world.family, "label": "Family"},
        {"id": world.ops, "label": "Ops"},
    ]
    with app.app_context():
        rows = db.session.scalars(select(Notification).order_by(Notification.id)).all()
        assert [row.connection_id for row in rows] == [world.family, world.ops]
        assert [r["id"] for r in records] == [row.id for row in rows]

    single = post(client, world.alice_key, {"connection": "Family", "message": "by label"})
    assert single.status_code == 202
    assert single.get_json()["notifications"][0]["connection"]["id"] == world.family


def test_post_with_sticker_image_urls_and_silently(app, client, world):
    answer = post(
        client,
        world.alice_key,
        {
            "connection": "Ops",
            "message": "with extras",
            "sticker": {"package_id": 446, "sticker_id": 1988},
            "image": {
                "thumbnail_url": "https://example.com/t.jpg",
                "fullsize_url": "https://example.com/f.jpg",
            },
            "notification_disabled": True,
        },
    )
    assert answer.status_code == 202, answer.get_data(as_text=True)
    with app.app_context():
        row = db.session.scalar(select(Notification))
        assert (row.sticker_package_id, row.sticker_id) == (446, 1988)
        assert row.image_thumbnail_url == "https://example.com/t.jpg"
        assert row.image_fullsize_url == "https://example.com/f.jpg"
        assert row.notification_disabled is True


def test_multipart_with_a_png_stores_the_image(app, client, world):
    png = tiny_png()
    answer = post(
        client,
        world.alice_key,
        data={
            "connection": ["Ops", "Family"],
            "message": "graph attached",
            "notification_disabled": "TRUE",
            "image_file": (io.BytesIO(png), "graph.png", "image/png"),
        },
        content_type="multipart/form-data",
    )
    assert answer.status_code == 202, answer.get_data(as_text=True)
    assert len(answer.get_json()["notifications"]) == 2
    with app.app_context():
        rows = db.session.scalars(select(Notification).order_by(Notification.id)).all()
        assert [row.connection_id for row in rows] == [world.ops, world.family]
        assert rows[0].image is not None
        assert rows[0].image_id == rows[1].image_id  # one image shared by the send
        assert rows[0].image.data == png
        assert rows[0].image.content_type == "image/png"
        assert rows[0].image.filename == "graph.png"
        assert rows[0].notification_disabled is True


def test_multipart_without_a_file_works_too(app, client, world):
    answer = post(
        client,
        world.alice_key,
        data={
            "connections": str(world.ops),
            "message": "plain",
            "sticker_package_id": "446",
            "sticker_id": "1988",
            "image_file": (io.BytesIO(b""), ""),  # a form's empty file input
        },
        content_type="multipart/form-data",
    )
    assert answer.status_code == 202, answer.get_data(as_text=True)
    with app.app_context():
        row = db.session.scalar(select(Notification))
        assert row.connection_id == world.ops
        assert (row.sticker_package_id, row.sticker_id) == (446, 1988)
        assert row.image_id is None


# ---------------------------------------------------------------------------- validation

VALID = {"connection": "Ops", "message": "hello"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"connection": "Ops"}, "message"),
        ({"connection": "Ops", "message": ""}, "message"),
        ({"connection": "Ops", "message": "escape \x1b[0m"}, "message"),
        ({"connection": "Ops", "message": "x" * 1001}, "message"),
        ({"connection": "Ops", "message": 42}, "message"),
        ({"connection": "Ops", "message": "nul \x00 inside"}, "message"),
        ({"connection": "Ops", "message": "lone \ud800 surrogate"}, "message"),
        ({"connection": "Ops\x00", "message": "hi"}, "connection"),
        ({"message": "hi"}, "connection"),
        ({"connection": "Ops", "connections": ["Ops"], "message": "hi"}, "connection"),
        ({"connections": [], "message": "hi"}, "connections"),
        ({"connections": "Ops", "message": "hi"}, "connections"),
        ({"connections": ["Ops", None], "message": "hi"}, "connections.1"),
        ({"connection": True, "message": "hi"}, "connection"),
        ({"connection": "", "message": "hi"}, "connection"),
        ({"connection": 0, "message": "hi"}, "connection"),
        ({"connection": "L" * 65, "message": "hi"}, "connection"),
        ({**VALID, "sticker": {"package_id": 1}}, "sticker.sticker_id"),
        ({**VALID, "sticker": {"package_id": "1", "sticker_id": 2}}, "sticker.package_id"),
        ({**VALID, "sticker": {"package_id": 0, "sticker_id": 1}}, "sticker.package_id"),
        ({**VALID, "sticker": "446/1988"}, "sticker"),
        ({**VALID, "image": {"thumbnail_url": "https://example.com/t.png"}}, "image.fullsize_url"),
        (
            {
                **VALID,
                "image": {"thumbnail_url": "http://example.com/t", "fullsize_url": "https://e/f"},
            },
            "image.thumbnail_url",
        ),
        (
            {
                **VALID,
                "image": {"thumbnail_url": "https://e/t", "fullsize_url": "https://e/a b.jpg"},
            },
            "image.fullsize_url",
        ),
        ({**VALID, "notification_disabled": "yes"}, "notification_disabled"),
        ({**VALID, "colour": "red"}, "colour"),
        ({**VALID, "sticker": {"package_id": 1, "sticker_id": 2, "extra": 3}}, "sticker.extra"),
    ],
)
def test_json_validation_errors_name_the_field(app, client, world, body, field):
    answer = post(client, world.alice_key, body)
    error = assert_api_error(answer, 400, "validation_failed")
    assert field in error["fields"], error
    assert count_rows(app) == 0


def test_unknown_field_is_named_in_the_message(client, world):
    error = assert_api_error(
        post(client, world.alice_key, {**VALID, "colour": "red"}), 400, "validation_failed"
    )
    assert "colour" in error["message"]
    assert "nknown" in error["fields"]["colour"]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"message": "hi"}, "connection"),
        ({"connection": "Ops"}, "message"),
        ({"connection": "Ops", "message": ["one", "two"]}, "message"),
        ({"connection": "Ops", "message": "hi", "sticker_package_id": "abc"}, "sticker_package_id"),
        ({"connection": "Ops", "message": "hi", "sticker_id": "5"}, "sticker_package_id"),
        (
            {"connection": "Ops", "message": "hi", "notification_disabled": "maybe"},
            "notification_disabled",
        ),
        ({"connection": "Ops", "message": "hi", "colour": "red"}, "colour"),
        (
            {
                "connection": "Ops",
                "message": "hi",
                "image_file": (io.BytesIO(b"GIF89a..."), "a.gif"),
            },
            "image_file",
        ),
        (
            {
                "connection": "Ops",
                "message": "hi",
                "image_file": (io.BytesIO(images.png_header(30000, 30000)), "bomb.png"),
            },
            "image_file",
        ),
        (
            {
                "connection": "Ops",
                "message": "hi",
                "image_file": (io.BytesIO(tiny_png() + b"\0" * (5 * 1024 * 1024)), "big.png"),
            },
            "image_file",
        ),
        (
            {"connection": "Ops", "message": "hi", "photo": (io.BytesIO(tiny_png()), "a.png")},
            "photo",
        ),
    ],
)
def test_multipart_validation_errors_name_the_field(app, client, world, data, field):
    answer = post(client, world.alice_key, data=data, content_type="multipart/form-data")
    error = assert_api_error(answer, 400, "validation_failed")
    assert field in error["fields"], error
    assert count_rows(app) == 0


def test_invalid_json_is_a_400(app, client, world):
    answer = post(client, world.alice_key, data="{not json", content_type="application/json")
    assert_api_error(answer, 400, "invalid_json")
    answer = post(client, world.alice_key, data="[" * 100_000, content_type="application/json")
    assert_api_error(answer, 400, "invalid_json")
    answer = post(client, world.alice_key, data="[1, 2]", content_type="application/json")
    error = assert_api_error(answer, 400, "validation_failed")
    assert "body" in error["fields"]
    assert count_rows(app) == 0


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ("connection=Ops&message=hi", "application/x-www-form-urlencoded"),
        ("hello", "text/plain"),
        ("<message>hi</message>", "application/xml"),
        ("", None),
    ],
)
def test_other_content_types_are_a_415(app, client, world, data, content_type):
    kwargs = {"content_type": content_type} if content_type else {}
    answer = post(client, world.alice_key, data=data, **kwargs)
    assert_api_error(answer, 415, "unsupported_media_type")
    assert count_rows(app) == 0


def test_a_body_over_max_content_length_is_a_413_json(app, client, world):
    app.config["MAX_CONTENT_LENGTH"] = 2048
    answer = post(client, world.alice_key, {"connection": "Ops", "message": "x" * 4000})
    assert_api_error(answer, 413, "request_entity_too_large")
    answer = post(
        client,
        world.alice_key,
        data={
            "connection": "Ops",
            "message": "big file",
            "image_file": (io.BytesIO(tiny_png() + b"\0" * 5000), "big.png"),
        },
        content_type="multipart/form-data",
    )
    assert_api_error(answer, 413, "request_entity_too_large")
    assert count_rows(app) == 0
    small = post(client, world.alice_key, {"connection": "Ops", "message": "fits"})
    assert small.status_code == 202


# ---------------------------------------------------------------------------- scoping


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


# ---------------------------------------------------------------------------- idempotency


def test_same_idempotency_key_and_body_replays_the_first_answer(app, client, world):
    headers = {"Idempotency-Key": "deploy-1234"}
    body = {"connections": ["Ops", "Family"], "message": "once", "notification_disabled": False}
    first = post(client, world.alice_key, body, headers)
    assert first.status_code == 202
    reordered = {
        "notification_disabled": False,
        "message": "once",
        "connections": ["Ops", "Family"],
    }
    again = post(client, world.alice_key, reordered, headers)
    assert again.status_code == 202
    assert again.get_data() == first.get_data()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert count_rows(app) == 2
    assert count_rows(app, IdempotencyRecord) == 1


def test_same_idempotency_key_with_another_body_is_a_422(app, client, world):
    headers = {"Idempotency-Key": "deploy-1234"}
    assert post(client, world.alice_key, VALID, headers).status_code == 202
    answer = post(client, world.alice_key, {**VALID, "message": "different"}, headers)
    error = assert_api_error(answer, 422, "idempotency_key_reused")
    assert "Idempotency-Key" in error["fields"]
    answer = post(client, world.alice_key, {"connection": "Family", "message": "hello"}, headers)
    assert_api_error(answer, 422, "idempotency_key_reused")
    assert count_rows(app) == 1


def test_idempotency_keys_belong_to_their_api_key(app, client, world):
    headers = {"Idempotency-Key": "shared-name"}
    assert post(client, world.alice_key, VALID, headers).status_code == 202
    bobs = post(client, world.bob_key, VALID, headers)
    assert bobs.status_code == 202
    assert "Idempotent-Replayed" not in bobs.headers
    assert count_rows(app) == 2


def test_a_refused_request_does_not_spend_its_idempotency_key(app, client, world):
    headers = {"Idempotency-Key": "retry-me"}
    assert (
        post(client, world.alice_key, {"connection": "Nope", "message": "hi"}, headers).status_code
        == 404
    )
    assert post(client, world.alice_key, {"connection": "Ops"}, headers).status_code == 400
    assert post(client, world.alice_key, VALID, headers).status_code == 202
    assert count_rows(app) == 1


def test_a_replay_does_not_depend_on_the_connection_still_being_active(app, client, world):
    headers = {"Idempotency-Key": "k1"}
    first = post(client, world.alice_key, VALID, headers)
    with app.app_context():
        db.session.get(Connection, world.ops).status = ConnectionStatus.REVOKED
        db.session.commit()
    again = post(client, world.alice_key, VALID, headers)
    assert (again.status_code, again.get_data()) == (202, first.get_data())


def test_multipart_idempotency_counts_the_files_bytes(app, client, world):
    def send(image: bytes):
        return post(
            client,
            world.alice_key,
            data={
                "connection": "Ops",
                "message": "pic",
                "image_file": (io.BytesIO(image), "a.png"),
            },
            content_type="multipart/form-data",
            headers={"Idempotency-Key": "upload-1"},
        )

    first = send(tiny_png())
    assert first.status_code == 202
    assert send(tiny_png()).get_data() == first.get_data()
    assert_api_error(send(tiny_png() + b"\0"), 422, "idempotency_key_reused")
    assert count_rows(app) == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9"])
def test_a_bad_idempotency_key_is_a_400(app, client, world, key):
    answer = client.post(
        "/api/v1/notifications",
        data=json.dumps(VALID).encode(),
        content_type="application/json",
        headers=[("Authorization", f"Bearer {world.alice_key}"), ("Idempotency-Key", key)],
    )
    error = assert_api_error(answer, 400, "validation_failed")
    assert "Idempotency-Key" in error["fields"]
    assert count_rows(app) == 0


def test_the_longest_idempotency_key_is_accepted(client, world):
    headers = {"Idempotency-Key": "k" * 255}
    first = post(client, world.alice_key, VALID, headers)
    assert first.status_code == 202
    assert post(client, world.alice_key, VALID, headers).get_data() == first.get_data()


# ---------------------------------------------------------------------------- reading back


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
    }
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


# ---------------------------------------------------------------------------- the document


def _resolve_refs(document: dict, node) -> None:
    """Fail on any $ref that does not point into the document."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if ref is not None:
            target = document
            for part in ref.removeprefix("#/").split("/"):
                assert part in target, ref
                target = target[part]
        for value in node.values():
            _resolve_refs(document, value)
    elif isinstance(node, list):
        for value in node:
            _resolve_refs(document, value)


def test_openapi_document_is_generated_from_the_code(client):
    answer = client.get("/api/v1/openapi.json")  # no key needed
    assert answer.status_code == 200
    assert answer.mimetype == "application/json"
    document = answer.get_json()
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"]
    assert set(document["paths"]) >= {
        "/api/v1/notifications",
        "/api/v1/notifications/{notification_id}",
        "/api/v1/connections",
        "/api/v1/connections/{connection_id}",
        "/api/v1/openapi.json",
    }
    _resolve_refs(document, document)
    schemas = document["components"]["schemas"]
    post_op = document["paths"]["/api/v1/notifications"]["post"]
    content = post_op["requestBody"]["content"]
    json_schema = schemas[content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert "message" in json_schema["properties"]
    assert "message" in json_schema["required"]
    assert json_schema["additionalProperties"] is False
    form_schema = schemas[content["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert form_schema["properties"]["image_file"] == {
        "type": "string",
        "format": "binary",
        "description": "A PNG or JPEG image of at most 5 MiB and 2048x2048 pixels; "
        "it takes the place of image URLs",
    }
    assert {"202", "400", "401", "404", "409", "413", "415", "422", "503"} <= set(
        post_op["responses"]
    )
    assert any(p["name"] == "Idempotency-Key" for p in post_op["parameters"])
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert document["paths"]["/api/v1/openapi.json"]["get"]["security"] == []
    error_schema = schemas["ErrorResponse"]
    assert set(schemas["ErrorDetail"]["properties"]) == ERROR_KEYS
    assert "error" in error_schema["properties"]
    listing = document["paths"]["/api/v1/connections"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"page", "per_page"}


def test_the_site_keeps_its_html_error_pages(client):
    answer = client.get("/no-such-page")
    assert answer.status_code == 404
    assert answer.mimetype == "text/html"
    assert "<html" in answer.get_data(as_text=True).lower()


def test_unknown_api_paths_and_methods_answer_json(client, world):
    assert_api_error(
        client.get("/api/v1/nothing-here", headers=auth(world.alice_key)), 404, "not_found"
    )
    assert_api_error(
        client.put("/api/v1/notifications", headers=auth(world.alice_key)),
        405,
        "method_not_allowed",
    )


# ---------------------------------------------------------------------------- failures


def test_database_down_is_a_503_not_a_500(app, client, world, monkeypatch):
    with app.app_context():
        engine = db.engine
        db.session.remove()
        engine.dispose()
    if engine.dialect.name == "sqlite":
        # Move the database away and put a directory in its place: every connect now fails.
        database = Path(engine.url.database)
        for path in database.parent.glob(database.name + "*"):
            path.rename(path.with_name(path.name + ".away"))
        database.mkdir()
    else:
        # PostgreSQL: every new connection is refused, as by a server that is down.
        def refuse(*_args, **_kwargs):
            raise engine.dialect.loaded_dbapi.OperationalError("connection refused")

        monkeypatch.setattr(engine.dialect, "connect", refuse)

    for answer in (
        client.get("/api/v1/connections", headers=auth(world.alice_key)),
        post(client, world.alice_key, VALID),
    ):
        assert_api_error(answer, 503, "service_unavailable")
        assert int(answer.headers["Retry-After"]) > 0


def test_database_failure_mid_request_is_a_503_and_writes_nothing(app, client, world, monkeypatch):
    def fail(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    monkeypatch.setattr(notifications, "add_notifications", fail)
    answer = post(client, world.alice_key, VALID, {"Idempotency-Key": "during-outage"})
    assert_api_error(answer, 503, "service_unavailable")
    assert "server closed" not in answer.get_data(as_text=True)
    assert count_rows(app, IdempotencyRecord) == 0
    monkeypatch.undo()
    # The key was not spent: the retry after the outage queues the notification.
    retry = post(client, world.alice_key, VALID, {"Idempotency-Key": "during-outage"})
    assert retry.status_code == 202
    assert count_rows(app) == 1


def test_an_unexpected_error_is_a_500_without_details(app, client, world, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(notifications, "get_notification", boom)
    answer = client.get("/api/v1/notifications/1", headers=auth(world.alice_key))
    assert_api_error(answer, 500, "internal_error")
    assert "secret internal detail" not in answer.get_data(as_text=True)
    assert "RuntimeError" not in answer.get_data(as_text=True)


def test_a_file_with_image_urls_is_queued_as_the_relay_takes_it_the_file_alone(app, client, world):
    answer = post(
        client,
        world.alice_key,
        data={
            "connection": "Ops",
            "message": "hi",
            "image_thumbnail_url": "https://e/t.png",
            "image_fullsize_url": "https://e/f.png",
            "image_file": (io.BytesIO(tiny_png()), "a.png"),
        },
        content_type="multipart/form-data",
    )
    assert answer.status_code == 202, answer.get_data(as_text=True)
    with app.app_context():
        row = db.session.scalar(select(Notification))
        assert row.image.content_type == "image/png"
        assert (row.image_thumbnail_url, row.image_fullsize_url) == (None, None)


def test_an_image_refusal_is_worded_in_the_callers_language(client, world):
    answer = post(
        client,
        world.alice_key,
        data={
            "connection": "Ops",
            "message": "hi",
            "image_file": (io.BytesIO(images.png_header(4032, 3024)), "photo.png"),
        },
        content_type="multipart/form-data",
        headers={"Accept-Language": "ja"},
    )
    error = assert_api_error(answer, 400, "validation_failed")
    assert "4032×3024" in error["fields"]["image_file"]
    assert "must be" not in error["fields"]["image_file"]
