"""The send form and the delivery status page (SPEC 4.3), through the test client.

One module past 400 lines on purpose: the form and the page it leads to are one flow, and
their tests share its fixtures (the chats, a valid form) and its HTML readers."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import (
    Connection,
    ConnectionStatus,
    Notification,
    NotificationStatus,
    User,
)
from notify_site.notify_content import Content
from notify_site.services.notifications import queue_notifications
from tests import images
from tests.factories import create_connection, create_user, login

PNG = images.png()
JPEG = images.jpeg()

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


class _Block(HTMLParser):
    """Collects the text (and the raw tags) inside the element with a given id."""

    def __init__(self, element_id: str) -> None:
        super().__init__()
        self.element_id = element_id
        self.depth = 0
        self.found = False
        self.text: list[str] = []
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        if self.depth:
            self.tags.append((tag, attributes))
            if tag not in VOID:
                self.depth += 1
        elif attributes.get("id") == self.element_id:
            self.found = True
            self.depth = 1

    def handle_endtag(self, tag):
        if self.depth and tag not in VOID:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.text.append(data)


def block(html: str, element_id: str) -> _Block:
    parser = _Block(element_id)
    parser.feed(html)
    assert parser.found, f"no element #{element_id} on the page"
    return parser


def block_text(html: str, element_id: str) -> str:
    return " ".join(" ".join(block(html, element_id).text).split())


def checkboxes(html: str) -> dict[int, bool]:
    """The connection checkboxes on the page: id -> checked."""
    return {
        int(attrs["value"]): "checked" in attrs
        for tag, attrs in block(html, "field-connections").tags
        if tag == "input" and attrs.get("name") == "connections"
    }


def count_rows(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Notification))


@pytest.fixture
def ids(app):
    """Alice with two active chats and a revoked one; Bob with one chat.

    The first account is an admin: that is root, so Alice and Bob are ordinary users.
    """
    with app.app_context():
        create_user("root")
        alice = create_user("alice")
        bob = create_user("bob")
        return {
            "ops": create_connection(alice, label="Ops", target_name="Sandbox user").id,
            "family": create_connection(
                alice, label="Family alerts", target_name="Family", target_type="GROUP"
            ).id,
            "old": create_connection(
                alice, label="Old chat", target_name="Gone", status=ConnectionStatus.REVOKED
            ).id,
            "bob": create_connection(bob, label="Bob's", target_name="Bob").id,
        }


@pytest.fixture
def alice(client, ids):
    login(client, "alice")
    return client


def valid(ids, **overrides) -> dict:
    data = {"connections": [ids["ops"]], "message": "Disk almost full on db-1"}
    data.update(overrides)
    return data


# -- the form ---------------------------------------------------------------------------------


def test_send_requires_sign_in(client, ids):
    response = client.get("/send")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"


def test_form_lists_active_connections_with_type_and_not_revoked_ones(alice, ids):
    response = alice.get("/send")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert checkboxes(html) == {ids["ops"]: False, ids["family"]: False}
    targets = block_text(html, "field-connections")
    assert "Ops" in targets
    assert "Sandbox user" in targets
    assert "USER" in targets
    assert "Family alerts" in targets
    assert "GROUP" in targets
    assert "Old chat" not in html
    assert "Bob's" not in html
    assert 'enctype="multipart/form-data"' in html
    assert "0 / 1000" in block_text(html, "field-message")


def test_connection_parameter_preselects_that_chat(alice, ids):
    html = alice.get(f"/send?connection={ids['family']}").get_data(as_text=True)
    assert checkboxes(html) == {ids["ops"]: False, ids["family"]: True}
    # Someone else's or a revoked chat is not offered, so it cannot be preselected.
    html = alice.get(f"/send?connection={ids['old']}").get_data(as_text=True)
    assert checkboxes(html) == {ids["ops"]: False, ids["family"]: False}


def test_the_only_chat_is_preselected(client, ids):
    login(client, "bob")
    html = client.get("/send").get_data(as_text=True)
    assert checkboxes(html) == {ids["bob"]: True}


def test_no_connections_shows_a_link_to_connect_one(app, client):
    with app.app_context():
        create_user("carol")
    login(client, "carol")
    response = client.get("/send")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "No chats to send to yet" in html
    assert re.search(r'<a [^>]*href="/connections"[^>]*>Connect a chat first</a>', html)
    assert "<textarea" not in html


def test_only_inactive_connections_says_none_can_receive(app, client):
    with app.app_context():
        carol = create_user("carol")
        create_connection(carol, label="Old", status=ConnectionStatus.REVOKED)
        create_connection(carol, label="Gone", status=ConnectionStatus.UNREACHABLE)
    login(client, "carol")
    response = client.get("/send")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "None of your chats can receive messages now" in html
    assert "You have 2 connected chats, but each is revoked or cannot be reached." in html
    assert "No chats to send to yet" not in html
    assert re.search(r'<a [^>]*href="/connections"[^>]*>See your connections</a>', html)
    assert "<textarea" not in html
    response = client.post("/send", data={"message": "hello"})
    assert response.status_code == 400
    assert "None of your chats can receive messages now" in response.get_data(as_text=True)
    assert count_rows(client.application) == 0
    html = client.get("/send", headers={"Accept-Language": "ja"}).get_data(as_text=True)
    assert "いまメッセージを受け取れるトークがありません" in html
    assert "接続済みのトークが 2 件ありますが" in html


# -- queueing ---------------------------------------------------------------------------------


def test_sending_to_two_chats_queues_two_rows_and_redirects_to_their_status(app, alice, ids):
    response = alice.post(
        "/send",
        data={
            "connections": [ids["ops"], ids["family"]],
            "message": "Deploy finished ✅",
            "sticker_package_id": "446",
            "sticker_id": "1988",
            "image_thumbnail_url": " https://img.example/t.jpg ",
            "image_fullsize_url": "https://img.example/f.jpg",
            "notification_disabled": "y",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    location = urlsplit(response.headers["Location"])
    assert location.path == "/send/status"

    with app.app_context():
        rows = list(db.session.scalars(select(Notification).order_by(Notification.id)))
        alice_id = db.session.scalar(select(User.id).where(User.username == "alice"))
        assert len(rows) == 2
        assert [row.connection_id for row in rows] == [ids["ops"], ids["family"]]
        for row in rows:
            assert row.owner_id == alice_id
            assert row.status == NotificationStatus.QUEUED
            assert row.message == "Deploy finished ✅"
            assert (row.sticker_package_id, row.sticker_id) == (446, 1988)
            assert row.image_thumbnail_url == "https://img.example/t.jpg"
            assert row.image_fullsize_url == "https://img.example/f.jpg"
            assert row.image_id is None
            assert row.notification_disabled is True
            assert row.attempts == 0
        row_ids = [row.id for row in rows]
    assert parse_qs(location.query) == {"ids": [",".join(str(i) for i in row_ids)]}

    page = alice.get(response.headers["Location"])
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Queued 2 notifications." in html
    for row_id, label in zip(row_ids, ["Ops", "Family alerts"], strict=True):
        text = block_text(html.replace("data-notification-id", "id"), str(row_id))
        assert label in text
        assert "Deploy finished ✅" in text
        assert "queued" in text
    assert 'href="/send"' in html  # Send another
    assert f'data-status-url="/send/status.json?ids={",".join(map(str, row_ids))}"' in html


def test_uploaded_png_is_stored_once_with_the_rows(app, alice, ids):
    response = alice.post(
        "/send",
        data=valid(ids, image_file=(io.BytesIO(PNG), "chart.png")),
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        row = db.session.scalars(select(Notification)).one()
        assert row.image.content_type == "image/png"
        assert row.image.filename == "chart.png"
        assert row.image.data == PNG
        assert row.image_thumbnail_url is None
        assert row.notification_disabled is False


def test_a_file_with_urls_is_sent_as_the_relay_takes_it_the_file_alone(app, alice, ids):
    # LINE Notify (and the relay) let an imageFile take the place of the URLs; the site now
    # accepts exactly what the relay accepts, so it queues the file and drops the URLs.
    response = alice.post(
        "/send",
        data=valid(
            ids,
            image_thumbnail_url="https://img.example/t.jpg",
            image_fullsize_url="https://img.example/f.jpg",
            image_file=(io.BytesIO(JPEG), "photo.jpg"),
        ),
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        row = db.session.scalars(select(Notification)).one()
        assert row.image.content_type == "image/jpeg"
        assert (row.image_thumbnail_url, row.image_fullsize_url) == (None, None)


def test_a_message_of_spaces_with_a_sticker_is_sent(app, alice, ids):
    # How LINE Notify users sent a sticker alone: the message was required, so " ".
    response = alice.post(
        "/send", data=valid(ids, message=" ", sticker_package_id="446", sticker_id="1988")
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(Notification.message)).one() == " "


def test_the_form_states_the_image_limits(alice):
    html = alice.get("/send").get_data(as_text=True)
    assert "PNG or JPEG, at most 5 MiB and 2048×2048 pixels." in block_text(
        html, "field-image_file"
    )


def test_silent_is_off_unless_ticked_and_a_blank_sticker_is_no_sticker(app, alice, ids):
    response = alice.post("/send", data=valid(ids, sticker_package_id="", sticker_id=""))
    assert response.status_code == 302
    with app.app_context():
        row = db.session.scalars(select(Notification)).one()
        assert row.notification_disabled is False
        assert row.sticker_package_id is None
        assert row.sticker_id is None


def test_1000_code_points_of_japanese_and_emoji_are_accepted(app, alice, ids):
    message = "あ" * 998 + "🎉👍"  # 1000 code points; 1002 UTF-16 units; 3000 bytes
    response = alice.post("/send", data=valid(ids, message=message))
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(Notification.message)).one() == message


def test_a_browsers_crlf_line_break_counts_as_one_character(app, alice, ids):
    # The live counter counts the textarea's "\n" as one; the browser submits it as "\r\n".
    response = alice.post("/send", data=valid(ids, message="x" * 998 + "\r\n" + "y"))
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(Notification.message)).one() == "x" * 998 + "\ny"


# -- validation: 400, the reason beside its field, nothing queued -------------------------------

FIELD_BLOCKS = [
    "field-connections",
    "field-message",
    "field-sticker",
    "field-image",
    "field-image_file",
]


def _without_connections(ids):
    data = valid(ids)
    del data["connections"]
    return data


INVALID = {
    "no chat chosen": (_without_connections, "field-connections", "Choose at least one chat."),
    "empty message": (
        lambda ids: valid(ids, message=""),
        "field-message",
        "Message is required.",
    ),
    "NUL in the message": (
        lambda ids: valid(ids, message="a\x00b"),
        "field-message",
        "Message must not contain control characters (found U+0000).",
    ),
    "escape in the message": (
        lambda ids: valid(ids, message="red \x1b[31m"),
        "field-message",
        "Message must not contain control characters (found U+001B).",
    ),
    "1001 characters": (
        lambda ids: valid(ids, message="あ" * 1001),
        "field-message",
        "At most 1000 characters (this one has 1001).",
    ),
    "sticker package without sticker": (
        lambda ids: valid(ids, sticker_package_id="446"),
        "field-sticker",
        "Give both the package id and the sticker id, or neither.",
    ),
    "sticker without package": (
        lambda ids: valid(ids, sticker_id="1988"),
        "field-sticker",
        "Give both the package id and the sticker id, or neither.",
    ),
    "sticker id not a number": (
        lambda ids: valid(ids, sticker_package_id="446", sticker_id="smile"),
        "field-sticker",
        "Not a valid integer value.",
    ),
    "sticker id negative": (
        lambda ids: valid(ids, sticker_package_id="446", sticker_id="-3"),
        "field-sticker",
        "Sticker id must be a positive whole number.",
    ),
    "thumbnail without full size": (
        lambda ids: valid(ids, image_thumbnail_url="https://img.example/t.jpg"),
        "field-image",
        "Give both the thumbnail URL and the full-size URL, or neither.",
    ),
    "http URL": (
        lambda ids: valid(
            ids,
            image_thumbnail_url="http://img.example/t.jpg",
            image_fullsize_url="https://img.example/f.jpg",
        ),
        "field-image",
        "Thumbnail URL must be an https:// URL.",
    ),
    "URL with a space": (
        lambda ids: valid(
            ids,
            image_thumbnail_url="https://img.example/t.jpg",
            image_fullsize_url="https://img.example/my photo.jpg",
        ),
        "field-image",
        "Full-size URL must be an address without spaces or control characters.",
    ),
    "upload that is not an image": (
        lambda ids: valid(ids, image_file=(io.BytesIO(b"%PDF-1.7 not an image"), "x.png")),
        "field-image_file",
        "Image file must be a PNG or JPEG image.",
    ),
    "decompression bomb": (
        lambda ids: valid(
            ids, image_file=(io.BytesIO(images.png_header(30000, 30000)), "bomb.png")
        ),
        "field-image_file",
        "Image file must be at most 2048×2048 pixels.",
    ),
    "photo too large in pixels": (
        lambda ids: valid(ids, image_file=(io.BytesIO(images.png_header(4032, 3024)), "photo.png")),
        "field-image_file",
        "Image file must be at most 2048×2048 pixels (this one is 4032×3024).",
    ),
    "file over 5 MiB": (
        lambda ids: valid(
            ids, image_file=(io.BytesIO(PNG + b"\x00" * (5 * 1024 * 1024)), "big.png")
        ),
        "field-image_file",
        "Image file must be at most 5 MiB.",
    ),
    "PNG named and declared as a JPEG": (
        lambda ids: valid(ids, image_file=(io.BytesIO(PNG), "photo.jpg")),
        "field-image_file",
        "Image file is declared as image/jpeg but the file is image/png.",
    ),
}


@pytest.mark.parametrize(("make_data", "where", "reason"), INVALID.values(), ids=INVALID.keys())
def test_invalid_input_is_shown_beside_its_field_and_nothing_is_queued(
    app, alice, ids, make_data, where, reason
):
    response = alice.post("/send", data=make_data(ids), content_type="multipart/form-data")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert reason in block_text(html, where)
    for other in FIELD_BLOCKS:
        if other != where:
            assert reason not in block_text(html, other)
    assert "Nothing was sent." in html
    assert count_rows(app) == 0


def test_an_invalid_form_keeps_what_was_typed(alice, ids):
    response = alice.post(
        "/send",
        data={"connections": [ids["family"]], "message": "あ" * 1001, "sticker_package_id": "7"},
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert checkboxes(html) == {ids["ops"]: False, ids["family"]: True}
    assert "あ" * 1001 in html
    assert "1001 / 1000" in block_text(html, "field-message")
    assert re.search(r'class="char-count over"', html)
    assert 'value="7"' in html
    assert re.search(r'<details [^>]*id="field-sticker" open>', html)


def test_every_problem_is_reported_at_once(app, alice, ids):
    response = alice.post("/send", data={"message": "", "image_fullsize_url": "https://a.b/c"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Choose at least one chat." in block_text(html, "field-connections")
    assert "Message is required." in block_text(html, "field-message")
    assert "Give both the thumbnail URL" in block_text(html, "field-image")
    assert count_rows(app) == 0


def test_a_chat_that_cannot_receive_is_reported_with_the_contents_problems(app, alice, ids):
    response = alice.post("/send", data=valid(ids, connections=[ids["old"]], message=""))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Connection 'Old chat' is revoked" in block_text(html, "field-connections")
    assert "Message is required." in block_text(html, "field-message")
    assert count_rows(app) == 0


@pytest.mark.parametrize(
    ("connection", "reason"),
    [
        ("bob", "No connection {id}."),
        ("old", "Connection 'Old chat' is revoked; connect it again."),
        ("missing", "No connection {id}."),
    ],
)
def test_a_forged_connection_id_is_refused_beside_the_connections(
    app, alice, ids, connection, reason
):
    target = ids.get(connection, 9999)
    response = alice.post("/send", data=valid(ids, connections=[ids["ops"], target]))
    assert response.status_code == 400
    assert reason.format(id=target) in block_text(
        response.get_data(as_text=True), "field-connections"
    )
    assert count_rows(app) == 0


def test_a_connection_id_that_is_not_a_number_is_refused(app, alice, ids):
    response = alice.post("/send", data=valid(ids, connections=["1 OR 1=1"]))
    assert response.status_code == 400
    text = block_text(response.get_data(as_text=True), "field-connections")
    assert "Choose chats from the list." in text
    assert count_rows(app) == 0


def test_an_admin_sends_only_to_their_own_chats_from_the_form(app, client, ids):
    login(client, "root")
    response = client.post("/send", data={"connections": [ids["bob"]], "message": "hi"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Connect a chat first" in html  # root has no chats of their own
    with app.app_context():
        root = db.session.scalar(select(User).where(User.username == "root"))
        own = create_connection(root, label="Root's").id
    response = client.post("/send", data={"connections": [own, ids["bob"]], "message": "hi"})
    assert response.status_code == 400
    text = block_text(response.get_data(as_text=True), "field-connections")
    assert f"No connection {ids['bob']}." in text
    assert count_rows(app) == 0


# -- the status page and its JSON ---------------------------------------------------------------


def _queue(app, username: str, connection_id: int, message: str = "hello") -> int:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == username))
        connection = db.session.get(Connection, connection_id)
        (row,) = queue_notifications(user, [connection], Content(message=message))
        return row.id


def _set(app, notification_id: int, **values) -> None:
    with app.app_context():
        row = db.session.get(Notification, notification_id)
        for name, value in values.items():
            setattr(row, name, value)
        db.session.commit()


def test_status_json_returns_only_the_users_own_rows_and_says_when_all_are_done(app, alice, ids):
    first = _queue(app, "alice", ids["ops"])
    second = _queue(app, "alice", ids["family"])
    bobs = _queue(app, "bob", ids["bob"])

    response = alice.get(f"/send/status.json?ids={first},{second},{bobs}")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_json() == {
        "notifications": [
            {
                "id": first,
                "status": "queued",
                "attempts": 0,
                "last_error": None,
                "last_error_text": None,
                "finished_at": None,
            },
            {
                "id": second,
                "status": "queued",
                "attempts": 0,
                "last_error": None,
                "last_error_text": None,
                "finished_at": None,
            },
        ],
        "done": False,
    }

    finished = utcnow() - timedelta(seconds=5)
    _set(app, first, status=NotificationStatus.DELIVERED, attempts=1, finished_at=finished)
    body = alice.get(f"/send/status.json?ids={first},{second}").get_json()
    assert body["done"] is False
    assert body["notifications"][0]["status"] == "delivered"
    assert body["notifications"][0]["finished_at"] == finished.isoformat().replace("+00:00", "Z")

    _set(app, second, status=NotificationStatus.SENDING, attempts=1)
    assert alice.get(f"/send/status.json?ids={first},{second}").get_json()["done"] is False

    _set(
        app,
        second,
        status=NotificationStatus.FAILED,
        attempts=3,
        last_error="400: Invalid sticker",
        finished_at=finished,
    )
    body = alice.get(f"/send/status.json?ids={first},{second}").get_json()
    assert body["done"] is True
    assert body["notifications"][1] == {
        "id": second,
        "status": "failed",
        "attempts": 3,
        "last_error": "400: Invalid sticker",
        "last_error_text": "400: Invalid sticker",
        "finished_at": finished.isoformat().replace("+00:00", "Z"),
    }

    # Bob's row stays Bob's, even once it is finished.
    _set(app, bobs, status=NotificationStatus.DELIVERED)
    body = alice.get(f"/send/status.json?ids={bobs}").get_json()
    assert body["notifications"] == []


def test_status_page_shows_finished_rows_and_stops_following_them(app, alice, ids):
    first = _queue(app, "alice", ids["ops"], "Backup done")
    _set(
        app,
        first,
        status=NotificationStatus.FAILED,
        attempts=5,
        last_error="connection revoked",
        finished_at=utcnow(),
    )
    html = alice.get(f"/send/status?ids={first}").get_data(as_text=True)
    assert 'data-done="true"' in html
    assert "Finished: 0 delivered, 1 failed." in html
    row = block_text(html.replace("data-notification-id", "id"), str(first))
    assert "failed" in row
    assert "connection revoked" in row
    assert "Backup done" in row
    assert "/static/js/status.js" in html
    assert "<script>" not in html  # no inline script under the CSP


def test_status_page_of_someone_elses_notifications_is_not_found(app, alice, ids):
    bobs = _queue(app, "bob", ids["bob"], "Bob's secret")
    response = alice.get(f"/send/status?ids={bobs}")
    assert response.status_code == 404
    assert "Bob's secret" not in response.get_data(as_text=True)


def test_an_admin_follows_only_their_own_sends_here(app, client, ids):
    bobs = _queue(app, "bob", ids["bob"], "Bob's secret")
    login(client, "root")
    assert client.get(f"/send/status?ids={bobs}").status_code == 404
    assert client.get(f"/send/status.json?ids={bobs}").get_json()["notifications"] == []


@pytest.mark.parametrize("query", ["", "?ids=", "?ids=1,x", "?ids=" + ",".join(["1"] * 101)])
def test_status_needs_a_list_of_ids(alice, query):
    assert alice.get(f"/send/status{query}").status_code == 400
    assert alice.get(f"/send/status.json{query}").status_code == 400


def test_status_json_without_a_session_is_a_json_401(client, ids):
    response = client.get("/send/status.json?ids=1", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    response = client.get("/send/status?ids=1")
    assert response.status_code == 302


def test_a_form_over_the_body_limit_says_so_on_the_send_page(app, alice, ids):
    app.config["MAX_CONTENT_LENGTH"] = 4096
    response = alice.post("/send", data=valid(ids, message="x" * 5000))
    assert response.status_code == 413
    html = response.get_data(as_text=True)
    assert re.search(
        r'id="form-error"[^>]*>Nothing was sent: the form was larger than 4 KiB,', html
    )
    assert "An image file may be at most 5 MiB." in html
    assert 'name="message"' in html  # the form itself, to send again
    assert count_rows(app) == 0
