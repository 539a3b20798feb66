"""POST /relay/api/notify: every field's validation, delivery into the inbox, and errors.

One module past 400 lines on purpose: one endpoint, whose field rules are tables that share
its token and request helpers."""

from __future__ import annotations

import io
import logging

import pytest
from sqlalchemy import event, func, select

from notify_site.extensions import db
from notify_site.relay import service
from notify_site.relay.models import RelayImage, RelayMessage
from tests import images

URL = "/relay/api/notify"
PNG = images.png()
JPEG = images.jpeg()
GIF = b"GIF89a" + b"\x00" * 32
RATE_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-ImageLimit",
    "X-RateLimit-ImageRemaining",
    "X-RateLimit-Reset",
)


def messages(app) -> list[RelayMessage]:
    with app.app_context():
        rows = db.session.scalars(select(RelayMessage).order_by(RelayMessage.id)).all()
        db.session.expunge_all()
        return rows


def upload(data: bytes, filename: str = "image.png", content_type: str | None = None):
    if content_type is None:
        return (io.BytesIO(data), filename)  # the test client guesses the type from the name
    return (io.BytesIO(data), filename, content_type)


# --- Success --------------------------------------------------------------------------------


def test_a_message_with_every_option_is_delivered_to_the_tokens_chat(app, client, get_token):
    token = get_token("GROUP", "Team alerts")
    response = client.post(
        URL,
        headers={"Authorization": f"Bearer {token}"},
        data={
            "message": "Disk full\non db-1",
            "stickerPackageId": "446",
            "stickerId": "1988",
            "imageThumbnail": "https://img.example/t.jpg",
            "imageFullsize": "https://img.example/f.jpg",
            "notificationDisabled": "TRUE",
            "somethingElse": "ignored",
        },
    )
    assert response.status_code == 200
    assert response.get_json() == {"status": 200, "message": "ok"}
    for header in RATE_HEADERS:
        assert response.headers[header].isdigit()
    assert response.headers["X-RateLimit-Remaining"] == "999"
    (row,) = messages(app)
    assert row.message == "Disk full\non db-1"
    assert (row.sticker_package_id, row.sticker_id) == (446, 1988)
    assert row.image_thumbnail_url == "https://img.example/t.jpg"
    assert row.image_fullsize_url == "https://img.example/f.jpg"
    assert row.image_id is None
    assert row.notification_disabled is True
    assert row.client_name == "Example Service"
    assert row.created_at is not None
    with app.app_context():
        assert db.session.get(RelayMessage, row.id).chat.name == "Team alerts"


def test_fields_may_come_from_the_query_string_and_the_body_wins(app, client, auth_headers):
    response = client.post(
        URL + "?message=from-query&notificationDisabled=true",
        headers=auth_headers,
        data={"message": "from-body"},
    )
    assert response.status_code == 200
    (row,) = messages(app)
    assert row.message == "from-body"
    assert row.notification_disabled is True


def test_a_query_string_alone_is_enough(app, client, auth_headers):
    assert client.post(URL + "?message=hello", headers=auth_headers).status_code == 200
    assert messages(app)[0].message == "hello"


@pytest.mark.parametrize("value", ["false", "False", "FALSE"])
def test_notification_disabled_false_in_any_case(app, client, auth_headers, value):
    response = client.post(
        URL, headers=auth_headers, data={"message": "m", "notificationDisabled": value}
    )
    assert response.status_code == 200
    assert messages(app)[0].notification_disabled is False


@pytest.mark.parametrize(("data", "content_type"), [(PNG, "image/png"), (JPEG, "image/jpeg")])
def test_an_uploaded_png_or_jpeg_is_stored_and_served(
    app, client, auth_headers, data, content_type
):
    response = client.post(
        URL,
        headers=auth_headers,
        data={
            "message": "see picture",
            # No type declared: the bytes decide, whatever the name says.
            "imageFile": upload(data, "pretend.gif", "application/octet-stream"),
            "imageThumbnail": "https://img.example/t.jpg",
            "imageFullsize": "https://img.example/f.jpg",
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.get_json()
    assert response.headers["X-RateLimit-ImageRemaining"] == "49"
    (row,) = messages(app)
    # The upload takes the place of the URLs, as on LINE.
    assert row.image_thumbnail_url is None
    with app.app_context():
        image = db.session.get(RelayImage, row.image_id)
        assert (image.content_type, image.data, image.size) == (content_type, data, len(data))
        public_id = image.public_id
    served = client.get(f"/relay/images/{public_id}")
    assert served.status_code == 200
    assert served.headers["Content-Type"] == content_type
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.data == data


def test_an_empty_file_input_from_a_browser_form_means_no_file(app, client, auth_headers):
    response = client.post(
        URL,
        headers=auth_headers,
        data={"message": "m", "imageFile": (io.BytesIO(b""), "")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert response.headers["X-RateLimit-ImageRemaining"] == "50"
    assert messages(app)[0].image_id is None


def test_an_unknown_image_is_a_404(client):
    assert client.get("/relay/images/12345").status_code == 404
    assert client.get("/relay/images/" + "A" * 22).status_code == 404
    assert client.get("/relay/images/" + "A" * 33).status_code == 404


# --- Wire details found with unmodified clients -----------------------------------------------


def test_answers_are_byte_for_byte_lines_json(client, auth_headers):
    # LINE's documentation shows {"status":200,"message":"ok"}; some scripts compare the text,
    # and some the Content-Type header.
    ok = client.post(URL, headers=auth_headers, data={"message": "hi"})
    assert ok.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert ok.get_data() == b'{"status":200,"message":"ok"}'
    bad = client.post(URL, headers=auth_headers, data={})
    assert bad.get_data().startswith(b'{"status":400,"message":"message: ')
    assert bad.headers["Content-Type"] == "application/json;charset=UTF-8"
    nobody = client.post(URL, headers={"Authorization": "Bearer nope"}, data={"message": "hi"})
    assert nobody.get_data() == b'{"status":401,"message":"Invalid access token"}'
    status = client.get("/relay/api/status", headers=auth_headers)
    assert status.get_data(as_text=True).startswith('{"status":200,"message":"ok","targetType":')
    unknown = client.get("/relay/api/nothing-here")
    assert unknown.get_data().startswith(b'{"status":404,"message":')
    assert unknown.headers["Content-Type"] == "application/json;charset=UTF-8"


def test_a_file_part_wins_over_an_imagefile_text_field(app, client, auth_headers):
    # One popular client sends the file's path as ?imageFile=... besides the file part.
    response = client.post(
        URL + "?imageFile=%2Fhome%2Fme%2Fgraph.png",
        headers=auth_headers,
        data={"message": "graph", "imageFile": upload(PNG, "graph.png")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.get_json()
    (row,) = messages(app)
    assert row.image_id is not None
    with_text_in_body = client.post(
        URL,
        headers=auth_headers,
        data={"message": "graph", "imageFile": ["/home/me/graph.png", upload(PNG, "graph.png")]},
        content_type="multipart/form-data",
    )
    assert with_text_in_body.status_code == 200, with_text_in_body.get_json()


def test_an_imagefile_text_field_alone_is_still_refused(app, client, auth_headers):
    for kwargs in (
        {"data": {"message": "m", "imageFile": "/home/me/graph.png"}},
        {"data": {"message": "m"}, "query_string": {"imageFile": "/home/me/graph.png"}},
        {
            "data": {"message": "m", "imageFile": "/home/me/graph.png"},
            "content_type": "multipart/form-data",
        },
    ):
        response = client.post(URL, headers=auth_headers, **kwargs)
        assert response.status_code == 400
        assert response.get_json()["message"].startswith("imageFile: must be a file")
    assert messages(app) == []


# --- Validation -----------------------------------------------------------------------------

OK_URL = "https://img.example/a.jpg"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "message: required"),
        ({"message": ""}, "message: must not be empty"),
        ({"message": "x" * 1001}, "message: must be at most 1000 characters (got 1001)"),
        ({"message": "é" * 1001}, "message: must be at most 1000 characters (got 1001)"),
        ({"message": "😀" * 1001}, "message: must be at most 1000 characters (got 1001)"),
        ({"message": "a\x00b"}, "message: must not contain control characters (found U+0000)"),
        ({"message": "bell\x07"}, "message: must not contain control characters (found U+0007)"),
        (
            {"message": "m", "imageThumbnail": OK_URL},
            "imageFullsize: required together with imageThumbnail",
        ),
        (
            {"message": "m", "imageFullsize": OK_URL},
            "imageThumbnail: required together with imageFullsize",
        ),
        (
            {"message": "m", "imageThumbnail": "http://img.example/a.jpg", "imageFullsize": OK_URL},
            "imageThumbnail: must be an HTTPS URL (https://...)",
        ),
        (
            {"message": "m", "imageThumbnail": OK_URL, "imageFullsize": "ftp://img.example/a"},
            "imageFullsize: must be an HTTPS URL (https://...)",
        ),
        (
            {"message": "m", "imageThumbnail": OK_URL, "imageFullsize": "https://"},
            "imageFullsize: must be an HTTPS URL with a host name",
        ),
        (
            {"message": "m", "imageThumbnail": "https://x.example/a b", "imageFullsize": OK_URL},
            "imageThumbnail: must be a URL without spaces or control characters",
        ),
        (
            {
                "message": "m",
                "imageThumbnail": "https://x.example/" + "a" * 1990,
                "imageFullsize": OK_URL,
            },
            "imageThumbnail: must be at most 2000 characters",
        ),
        ({"message": "m", "stickerPackageId": "1"}, "stickerId: required together with"),
        ({"message": "m", "stickerId": "1"}, "stickerPackageId: required together with"),
        (
            {"message": "m", "stickerPackageId": "abc", "stickerId": "1"},
            "stickerPackageId: must be a positive integer",
        ),
        (
            {"message": "m", "stickerPackageId": "1", "stickerId": "-5"},
            "stickerId: must be a positive integer",
        ),
        (
            {"message": "m", "stickerPackageId": "0", "stickerId": "1"},
            "stickerPackageId: must be a positive integer",
        ),
        (
            {"message": "m", "stickerPackageId": "1", "stickerId": "1.5"},
            "stickerId: must be a positive integer",
        ),
        (
            {"message": "m", "stickerPackageId": "1", "stickerId": str(2**31)},
            "stickerId: must be a positive integer",
        ),
        (
            {"message": "m", "stickerPackageId": "1", "stickerId": "9" * 5000},
            "stickerId: must be a positive integer",
        ),
        (
            {"message": "m", "stickerPackageId": "1", "stickerId": ""},
            "stickerId: must be a positive integer",
        ),
        ({"message": "m", "notificationDisabled": "yes"}, "notificationDisabled: must be true"),
        ({"message": "m", "notificationDisabled": "1"}, "notificationDisabled: must be true"),
        ({"message": "m", "notificationDisabled": ""}, "notificationDisabled: must be true"),
        ({"message": "m", "imageFile": "not-a-file"}, "imageFile: must be a file"),
    ],
)
def test_an_invalid_field_is_a_400_naming_it_and_nothing_is_delivered(
    app, client, auth_headers, data, message
):
    response = client.post(URL, headers=auth_headers, data=data)
    assert response.status_code == 400
    body = response.get_json()
    assert body["status"] == 400
    assert body["message"].startswith(message)
    # A valid token: the rate-limit headers are there, and a refused request spends nothing.
    assert response.headers["X-RateLimit-Remaining"] == "1000"
    assert messages(app) == []


@pytest.mark.parametrize("message", ["x" * 1000, "é" * 1000, "😀" * 1000, "日本語" * 333 + "!"])
def test_a_message_of_1000_characters_is_accepted_whatever_the_characters(
    app, client, auth_headers, message
):
    response = client.post(URL, headers=auth_headers, data={"message": message})
    assert response.status_code == 200
    assert messages(app)[0].message == message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (GIF, "imageFile: must be a PNG or JPEG image"),
        (b"just some text, not an image", "imageFile: must be a PNG or JPEG image"),
        (b"", "imageFile: the file is empty"),
    ],
)
def test_an_upload_that_is_not_png_or_jpeg_is_refused(app, client, auth_headers, data, message):
    response = client.post(
        URL,
        headers=auth_headers,
        data={"message": "m", "imageFile": upload(data, "image.png")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert response.get_json() == {"status": 400, "message": message}
    assert response.headers["X-RateLimit-ImageRemaining"] == "50"
    assert messages(app) == []


def test_an_upload_over_the_image_size_limit_is_refused(app, client, auth_headers):
    app.config["RELAY_IMAGE_MAX_BYTES"] = 100
    just_fits = PNG + b"\x00" * (100 - len(PNG))
    ok = client.post(
        URL,
        headers=auth_headers,
        data={"message": "m", "imageFile": upload(just_fits)},
        content_type="multipart/form-data",
    )
    assert ok.status_code == 200
    response = client.post(
        URL,
        headers=auth_headers,
        data={"message": "m", "imageFile": upload(just_fits + b"\x00")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert response.get_json() == {"status": 400, "message": "imageFile: must be at most 100 bytes"}
    assert len(messages(app)) == 1


def test_a_body_over_the_request_size_limit_is_a_json_413_with_rate_headers(
    app, client, auth_headers
):
    app.config["MAX_CONTENT_LENGTH"] = 2048
    response = client.post(
        URL,
        headers=auth_headers,
        data={"message": "m", "imageFile": upload(PNG + b"\x00" * 4096)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
    assert response.get_json() == {
        "status": 413,
        "message": "request body too large (the limit is 2048 bytes)",
    }
    assert response.headers["X-RateLimit-Remaining"] == "1000"
    assert messages(app) == []


# --- Authentication and unexpected errors ---------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
)
def test_a_missing_or_unknown_token_is_a_401_without_rate_headers(app, client, headers):
    response = client.post(URL, headers=headers, data={"message": "m"})
    assert response.status_code == 401
    assert response.get_json() == {"status": 401, "message": "Invalid access token"}
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "X-RateLimit-Limit" not in response.headers
    assert messages(app) == []


def test_the_bearer_scheme_is_case_insensitive(client, token):
    response = client.post(URL, headers={"Authorization": f"bearer {token}"}, data={"message": "m"})
    assert response.status_code == 200


def test_an_unexpected_error_is_a_json_500_logged_without_the_token(
    app, client, token, monkeypatch, caplog
):
    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(service, "deliver_notification", explode)
    with caplog.at_level(logging.ERROR):
        response = client.post(
            URL, headers={"Authorization": f"Bearer {token}"}, data={"message": "m"}
        )
    assert response.status_code == 500
    assert response.get_json() == {"status": 500, "message": "Internal server error"}
    assert "X-RateLimit-Limit" in response.headers
    assert "RuntimeError" in caplog.text
    assert token not in caplog.text
    assert messages(app) == []


def test_delivery_is_atomic_a_failed_write_spends_no_call(app, client, auth_headers):
    # The inbox row's INSERT fails in the database, after the window was spent in the same
    # transaction: nothing of the call may stay.
    def failing_insert(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO RELAY_MESSAGES"):
            raise RuntimeError("write failed")

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", failing_insert)
    try:
        response = client.post(URL, headers=auth_headers, data={"message": "m"})
    finally:
        event.remove(engine, "before_cursor_execute", failing_insert)
    assert response.status_code == 500
    status = client.get("/relay/api/status", headers=auth_headers)
    # Only the status call itself was spent.
    assert status.headers["X-RateLimit-Remaining"] == "999"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RelayMessage)) == 0


def test_rate_headers_do_not_leak_into_a_later_answer_in_the_same_app_context(
    app, client, auth_headers
):
    with app.app_context():
        assert client.post(URL, headers=auth_headers, data={"message": "m"}).status_code == 200
        anonymous = client.post(URL, data={"message": "m"})
    assert anonymous.status_code == 401
    assert "X-RateLimit-Limit" not in anonymous.headers


# --- Image checks shared with the site (notify_site.notify_content) -------------------------


@pytest.mark.parametrize(
    ("data", "content_type", "message"),
    [
        # A decompression bomb: 0.9 MB on the wire, 900 million pixels once decoded.
        (
            images.png_header(30000, 30000, padding=900_000),
            "image/png",
            "imageFile: must be at most 2048x2048 pixels",
        ),
        (
            images.png_header(4032, 3024),
            "image/png",
            "imageFile: must be at most 2048x2048 pixels (got 4032x3024)",
        ),
        (PNG, "image/jpeg", "imageFile: is declared as image/jpeg but the file is image/png"),
        (JPEG, "text/html", "imageFile: is declared as text/html but the file is image/jpeg"),
        (PNG[:20], "image/png", "imageFile: must be a readable PNG or JPEG image"),
    ],
)
def test_an_upload_too_large_in_pixels_or_not_what_it_says_is_refused(
    app, client, auth_headers, data, content_type, message
):
    response = client.post(
        URL,
        headers=auth_headers,
        data={"message": "m", "imageFile": upload(data, "image", content_type)},
        content_type="multipart/form-data",
    )
    assert response.get_json() == {"status": 400, "message": message}
    assert response.headers["X-RateLimit-ImageRemaining"] == "50"
    assert messages(app) == []


def test_an_upload_of_2048_by_2048_pixels_is_accepted(app, client, auth_headers):
    response = client.post(
        URL,
        headers=auth_headers,
        data={"message": "m", "imageFile": upload(images.png_header(2048, 2048), "big.png")},
        content_type="multipart/form-data",
    )
    assert response.get_json() == {"status": 200, "message": "ok"}
