"""The JSON API v1 queues notifications: by id or label, to several chats, with stickers,
image URLs or an uploaded image; and an Idempotency-Key makes a retried POST queue once."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.models import (
    Connection,
    ConnectionStatus,
    IdempotencyRecord,
    Notification,
    NotificationStatus,
)
from tests.factories import tiny_png
from tests.unit.api.calls import VALID, assert_api_error, count_rows, post


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
