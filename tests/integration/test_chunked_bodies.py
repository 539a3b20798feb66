"""Chunked request bodies over MAX_CONTENT_LENGTH answer 413 over real HTTP, as bodies with a
Content-Length do: JSON on the API, Notify-shaped JSON on the relay's /api/notify, and the send
form again with a clear message. Werkzeug's test client frames bodies itself, so these run
against werkzeug's development server and against gunicorn, each decoding the chunks itself.
Bodies under the limit, chunked, still go through.
"""

from __future__ import annotations

import http.client
import json
import re
from dataclasses import dataclass

import pytest

from notify_site import create_app
from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.relay import oauth
from notify_site.relay.chats import ensure_sandbox_chats
from notify_site.relay.clients import register_client
from tests.conftest import init_database, make_test_config
from tests.factories import PASSWORD, create_api_key, create_connection, create_user
from tests.servers import LiveServer, start_gunicorn

LIMIT = 64 * 1024
OVER = LIMIT + 40 * 1024
CHUNK = 8 * 1024


@dataclass
class World:
    api_key: str
    relay_token: str
    connection_id: int


def make_world(app) -> World:
    """An account with a chat and an API key, and a relay access token (through the relay's
    own authorize and token code, without a browser)."""
    with app.app_context():
        alice = create_user("alice")
        connection_id = create_connection(alice, label="Ops").id
        _, api_key = create_api_key(alice, "chunked")
        redirect_uri = "https://service.example/callback"
        client_id, secret = register_client("Service", redirect_uri)
        auth = oauth.parse_authorize_request(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "scope": "notify",
                "state": "s",
            }
        )
        config = app.config
        chats = ensure_sandbox_chats(
            1, config["RELAY_SANDBOX_USER"], config["RELAY_SANDBOX_GROUPS"]
        )
        code = oauth.issue_code(auth, chats[0].id, chats, person_id=1, ttl=600)
        token = oauth.exchange_code(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": client_id,
                "client_secret": secret,
            },
            now=utcnow(),
        )
        db.engine.dispose()
    return World(api_key, token, connection_id)


def send_chunked(port: int, path: str, body: bytes, headers: dict[str, str]):
    """POST ``body`` with Transfer-Encoding: chunked and no Content-Length."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest("POST", path)
        for name, value in {**headers, "Transfer-Encoding": "chunked"}.items():
            connection.putheader(name, value)
        connection.endheaders()
        try:
            for start in range(0, len(body), CHUNK):
                part = body[start : start + CHUNK]
                connection.send(b"%x\r\n%s\r\n" % (len(part), part))
            connection.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer (and close) before reading an oversized body
        answer = connection.getresponse()
        return answer.status, answer.getheader("Content-Type", ""), answer.read()
    finally:
        connection.close()


def multipart(fields: dict[str, str], boundary: str = "chunkedboundary") -> tuple[bytes, str]:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    body = ("".join(parts) + f"--{boundary}--\r\n").encode()
    return body, f"multipart/form-data; boundary={boundary}"


def sign_in(port: int) -> str:
    """The session cookie of alice (CSRF is off in the test configuration)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = f"username=alice&password={PASSWORD.replace(' ', '+')}"
    connection.request(
        "POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    answer = connection.getresponse()
    answer.read()
    connection.close()
    assert answer.status == 302, answer.status
    cookie = answer.getheader("Set-Cookie")
    return cookie.split(";", 1)[0]


def check_chunked_bodies(port: int, world: World) -> None:
    api = {"Authorization": f"Bearer {world.api_key}", "Content-Type": "application/json"}
    big_json = json.dumps({"connection": "Ops", "message": "x" * OVER}).encode()
    status, content_type, body = send_chunked(port, "/api/v1/notifications", big_json, api)
    assert (status, content_type) == (413, "application/json"), body
    error = json.loads(body)["error"]
    assert error["code"] == "request_entity_too_large"
    assert str(LIMIT) in error["message"]

    small_json = json.dumps({"connection": "Ops", "message": "chunked, and it fits"}).encode()
    status, _, body = send_chunked(port, "/api/v1/notifications", small_json, api)
    assert status == 202, body

    relay = {
        "Authorization": f"Bearer {world.relay_token}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    big_form = b"message=" + b"x" * OVER
    status, content_type, body = send_chunked(port, "/relay/api/notify", big_form, relay)
    # LINE Notify's own Content-Type (relay/views/errors.py).
    assert (status, content_type) == (413, "application/json;charset=UTF-8"), body
    answer = json.loads(body)
    assert answer["status"] == 413
    assert answer["message"] == f"request body too large (the limit is {LIMIT} bytes)"

    status, _, body = send_chunked(port, "/relay/api/notify", b"message=fits", relay)
    assert (status, json.loads(body)) == (200, {"status": 200, "message": "ok"})

    cookie = sign_in(port)
    form_body, form_type = multipart(
        {"connections": str(world.connection_id), "message": "x" * OVER}
    )
    status, content_type, body = send_chunked(
        port, "/send", form_body, {"Cookie": cookie, "Content-Type": form_type}
    )
    assert status == 413
    assert content_type.startswith("text/html")
    page = body.decode()
    assert re.search(r'id="form-error"[^>]*>Nothing was sent: the form was larger than', page)
    assert "An image file may be at most 5 MiB." in page
    assert '<form method="post" action="/send"' in page  # the form, to send again


@pytest.fixture
def config(tmp_path) -> dict:
    return make_test_config(tmp_path, MAX_CONTENT_LENGTH=LIMIT)


def test_chunked_bodies_over_the_limit_on_werkzeugs_server(config):
    app = create_app(config)
    init_database(app)
    world = make_world(app)
    server = LiveServer(app).start()
    try:
        check_chunked_bodies(server.port, world)
    finally:
        server.stop()
        with app.app_context():
            db.engine.dispose()


def test_chunked_bodies_over_the_limit_on_gunicorn(config, tmp_path):
    app = create_app(config)
    init_database(app)
    world = make_world(app)
    process, port = start_gunicorn(
        config,
        tmp_path / "gunicorn.log",
        processes=1,
        MAX_CONTENT_LENGTH=LIMIT,
        WTF_CSRF_ENABLED=False,
    )
    try:
        check_chunked_bodies(port, world)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "Traceback" not in (tmp_path / "gunicorn.log").read_text()
