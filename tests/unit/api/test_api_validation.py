"""The JSON API v1 refuses what it cannot queue with a JSON error naming the field, and fails
as JSON too: 503 while the database is down, a bare 500 for the unexpected."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from notify_site.extensions import db
from notify_site.models import (
    IdempotencyRecord,
    Notification,
)
from notify_site.services import notifications
from tests import images
from tests.factories import tiny_png
from tests.unit.api.calls import VALID, assert_api_error, auth, count_rows, post


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
