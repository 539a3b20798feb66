"""Bad input anywhere is a clear 4xx, never a 500, and nothing is half-written.

The cases test_api.py already covers (a JSON body over MAX_CONTENT_LENGTH, text/plain and
other content types, a body that is not JSON, one unknown field, bad pagination) are not
repeated; these are the others: undecodable bytes, odd JSON, huge numbers, nested unknown
fields, hostile headers and query strings, and the HTML forms.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from notify_site.extensions import db
from notify_site.models import Notification, User
from tests.conftest import make_test_config
from tests.factories import create_api_key, create_connection, create_user

JSON = "application/json"


@pytest.fixture
def app_config(tmp_path):
    # Small enough to exceed cheaply in a test.
    return make_test_config(tmp_path, MAX_CONTENT_LENGTH=64 * 1024)


@pytest.fixture
def api_key(app) -> str:
    with app.app_context():
        alice = create_user("alice")
        create_connection(alice, label="Ops")
        _, plaintext = create_api_key(alice, "CI")
    return plaintext


def nothing_queued(app) -> bool:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Notification)) == 0


def assert_api_error(response, *statuses: int) -> dict:
    assert response.status_code in statuses, (response.status_code, response.get_data())
    assert response.mimetype == JSON
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"]
    assert body["error"]["message"]
    assert "Traceback" not in response.get_data(as_text=True)
    return body["error"]


NESTED = b'{"connection": "Ops", "message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"

# name: (raw body, content type, acceptable statuses)
BODIES = {
    "non-UTF-8 bytes in a string": (
        b'{"connection": "Ops", "message": "\xff\xfe\xfa"}',
        JSON,
        {400},
    ),
    "latin-1 declared": (
        '{"connection": "Ops", "message": "caf\u00e9"}'.encode("latin-1"),
        "application/json; charset=latin-1",
        {400, 415},
    ),
    "NaN": (b'{"connection": "Ops", "message": NaN}', JSON, {400}),
    "Infinity as a sticker id": (
        b'{"connection": "Ops", "message": "x", '
        b'"sticker": {"package_id": Infinity, "sticker_id": 1}}',
        JSON,
        {400},
    ),
    "a 400-digit connection id": (
        b'{"connection": 1' + b"0" * 400 + b', "message": "x"}',
        JSON,
        {400, 404},
    ),
    "a 1e400 sticker id": (
        b'{"connection": "Ops", "message": "x", "sticker": {"package_id": 1e400, "sticker_id": 1}}',
        JSON,
        {400},
    ),
    "a negative huge sticker id": (
        b'{"connection": "Ops", "message": "x", '
        b'"sticker": {"package_id": -99999999999999999999999, "sticker_id": 1}}',
        JSON,
        {400},
    ),
    "a float connection id": (b'{"connection": 1.5, "message": "x"}', JSON, {400}),
    "JSON nested 100,000 deep": (NESTED, JSON, {400, 413}),
    "a top-level array": (b'[{"connection": "Ops", "message": "x"}]', JSON, {400}),
    "a top-level string": (b'"hello"', JSON, {400}),
    "null": (b"null", JSON, {400}),
    "an empty body": (b"", JSON, {400}),
    "an unknown nested field": (
        b'{"connection": "Ops", "message": "x", '
        b'"sticker": {"package_id": 1, "sticker_id": 2, "colour": "red"}}',
        JSON,
        {400},
    ),
    "a NUL character": (b'{"connection": "Ops", "message": "a\\u0000b"}', JSON, {400}),
    "a lone surrogate": (b'{"connection": "Ops", "message": "a\\ud800b"}', JSON, {400}),
    "a 20,000-entry connections list": (
        b'{"connections": [' + b",".join([b"1"] * 20_000) + b'], "message": "x"}',
        JSON,
        {400},
    ),
    "multipart without a boundary": (b"--x\r\n", "multipart/form-data", {400, 415}),
    "over MAX_CONTENT_LENGTH, multipart": (
        b'--b\r\nContent-Disposition: form-data; name="message"\r\n\r\n'
        + b"x" * (70 * 1024)
        + b"\r\n--b--\r\n",
        "multipart/form-data; boundary=b",
        {413},
    ),
}


@pytest.mark.parametrize("name", BODIES)
def test_a_bad_api_body_is_a_json_4xx_and_queues_nothing(app, client, api_key, name):
    body, content_type, statuses = BODIES[name]
    response = client.post(
        "/api/v1/notifications",
        data=body,
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": content_type},
    )
    assert_api_error(response, *statuses)
    assert nothing_queued(app)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer " + "x" * 10_000,
        "Bearer nsk_\u00e9\u00e8",
        "Bearer",
        "Basic YWxpY2U6cGFzc3dvcmQ=",
        "Bearer nsk_a nsk_b",
    ],
)
def test_a_hostile_authorization_header_is_a_401(app, client, api_key, header):
    response = client.get("/api/v1/connections", headers={"Authorization": header})
    assert_api_error(response, 401)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/connections?page=%ff%fe",
        "/api/v1/connections?page=1e400",
        "/api/v1/connections?per_page=-1",
        "/api/v1/connections?page=99999999999999999999999999",
        "/api/v1/connections/99999999999999999999999999",
        "/api/v1/notifications/%ff",
        "/api/v1/connections/%00",
    ],
)
def test_hostile_paths_and_query_strings_are_4xx(client, api_key, path):
    response = client.get(path, headers={"Authorization": f"Bearer {api_key}"})
    assert_api_error(response, 400, 404)


def test_a_hostile_idempotency_key_is_a_400(app, client, api_key):
    response = client.post(
        "/api/v1/notifications",
        json={"connection": "Ops", "message": "x"},
        headers={"Authorization": f"Bearer {api_key}", "Idempotency-Key": "\u00ff\x01" * 10},
    )
    assert_api_error(response, 400)
    assert nothing_queued(app)


# ---------------------------------------------------------------------------- HTML forms


def test_a_form_body_over_max_content_length_is_a_413_page(app, client):
    response = client.post("/login", data={"username": "alice", "password": "x" * (70 * 1024)})
    assert response.status_code == 413
    assert response.mimetype == "text/html"
    assert "Traceback" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/login", b"username=\xff\xfe&password=\xfa"),
        ("/register", b"username=a%00b&password=12345678&confirm=12345678"),
        ("/register", b"username=" + b"a" * 5000 + b"&password=12345678&confirm=12345678"),
        ("/login", b"username=%ff&password=%fe%ff&username=again"),
    ],
)
def test_odd_form_input_is_refused_as_a_form_error_not_a_500(app, client, path, body):
    response = client.post(
        path, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code in (200, 400)
    assert response.mimetype == "text/html"
    assert "Traceback" not in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 0
