"""NUL and other control characters: refused with a clear message wherever free text goes in.

PostgreSQL cannot store (or even compare) a string holding NUL: psycopg refuses the whole
statement, which used to surface as a 500. These tests run on SQLite and on PostgreSQL too
(when NOTIFY_SITE_TEST_DATABASE_URL is set).
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from notify_site.extensions import db
from notify_site.models import ApiKey, Connection, Notification, User
from notify_site.relay.clients import register_client
from notify_site.relay.models import RelayClient
from notify_site.services import api_keys
from tests.factories import PASSWORD, create_api_key, create_connection, create_user, login
from tests.pg_schemas import ON_POSTGRES_TOO

pytestmark = [ON_POSTGRES_TOO]

CONTROL = "Control characters cannot be used here (found {})."


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def signed_in(app, client):
    with app.app_context():
        alice = create_user("alice", admin=True)
        create_connection(alice, label="Ops")
    login(client)
    return client


@pytest.mark.parametrize(("value", "found"), [("Ops\x00", "U+0000"), ("Ops\x07 bell", "U+0007")])
def test_a_connection_label_with_a_control_character_is_refused(app, signed_in, value, found):
    response = signed_in.post("/connections", data={"label": value})
    assert response.status_code == 400
    assert CONTROL.format(found) in response.get_data(as_text=True)
    assert count(app, Connection) == 1


@pytest.mark.parametrize(("value", "found"), [("CI\x00", "U+0000"), ("CI\x1b[0m", "U+001B")])
def test_an_api_key_name_with_a_control_character_is_refused(app, signed_in, value, found):
    response = signed_in.post("/api-keys", data={"name": value})
    assert response.status_code == 400
    assert CONTROL.format(found) in response.get_data(as_text=True)
    assert count(app, ApiKey) == 0


def test_a_time_zone_with_nul_is_refused(signed_in):
    response = signed_in.post("/settings", data={"locale": "", "timezone": "Asia/Tok\x00yo"})
    assert response.status_code in (200, 400)
    assert CONTROL.format("U+0000") in response.get_data(as_text=True)


def test_a_username_with_nul_is_refused_at_sign_in_and_registration(app, client):
    response = client.post("/login", data={"username": "al\x00ice", "password": PASSWORD})
    assert response.status_code in (200, 400)
    assert CONTROL.format("U+0000") in response.get_data(as_text=True)
    response = client.post(
        "/register", data={"username": "a\x00b", "password": PASSWORD, "confirm": PASSWORD}
    )
    assert response.status_code in (200, 400)
    assert count(app, User) == 0


def test_the_services_refuse_control_characters_without_a_form(app):
    # The command line reaches the services directly (create-user, create-api-key).
    from notify_site.services import accounts

    with app.app_context():
        with pytest.raises(accounts.InvalidUsernameError):
            accounts.create_user("bob\x00", PASSWORD)
        alice = create_user("alice")
        with pytest.raises(api_keys.ApiKeyError, match="U\\+0000"):
            api_keys.create_api_key(alice, "key\x00")
        from notify_site.relay.errors import ClientRegistrationError

        with pytest.raises(ClientRegistrationError):
            register_client("Service\x00", "https://service.example/callback")
    assert count(app, User) == 1
    assert count(app, RelayClient) == 0


def test_the_admin_user_filter_with_nul_is_no_filter(signed_in):
    response = signed_in.get("/admin?user=al%00ice")
    assert response.status_code == 200


def test_a_send_form_message_with_nul_is_refused_beside_the_message(app, signed_in):
    with app.app_context():
        ops = db.session.scalar(select(Connection.id))
    response = signed_in.post("/send", data={"connections": [ops], "message": "a\x00b"})
    assert response.status_code == 400
    assert "Message must not contain control characters (found U+0000)." in response.get_data(
        as_text=True
    )
    assert count(app, Notification) == 0


def test_the_api_refuses_nul_in_labels_messages_and_idempotency_keys(app, client):
    with app.app_context():
        alice = create_user("alice")
        create_connection(alice, label="Ops")
        _, key = create_api_key(alice, "CI")
    headers = {"Authorization": f"Bearer {key}"}
    for body in (
        {"connection": "Ops\x00", "message": "x"},
        {"connections": ["Ops", "a\x00"], "message": "x"},
        {"connection": "Ops", "message": "x\x00"},
        {
            "connection": "Ops",
            "message": "x",
            "image": {"thumbnail_url": "https://a/\x00", "fullsize_url": "https://a/b"},
        },
    ):
        answer = client.post("/api/v1/notifications", json=body, headers=headers)
        assert answer.status_code == 400, answer.get_data(as_text=True)
        assert answer.get_json()["error"]["code"] == "validation_failed"
    answer = client.post(
        "/api/v1/notifications",
        json={"connection": "Ops", "message": "x"},
        headers={**headers, "Idempotency-Key": "k\x00"},
    )
    assert answer.status_code == 400
    assert count(app, Notification) == 0


def test_the_relay_refuses_nul_in_oauth_parameters_without_a_500(app, client):
    with app.app_context():
        client_id, secret = register_client("Service", "https://service.example/callback")
    page = client.get(
        "/relay/oauth/authorize",
        query_string={
            "response_type": "code",
            "client_id": client_id + "\x00",
            "redirect_uri": "https://service.example/callback",
            "scope": "notify",
            "state": "s",
        },
    )
    assert page.status_code == 400
    token = client.post(
        "/relay/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": "c\x00",
            "redirect_uri": "https://service.example/callback\x00",
            "client_id": client_id + "\x00",
            "client_secret": secret,
        },
    )
    assert token.status_code == 400
    assert token.get_json()["status"] == 400


def test_the_relay_notify_api_refuses_nul_in_every_field(client):
    # No valid token is needed to prove nothing reaches the database: an unknown token with
    # NUL in it is refused as any unknown token is.
    answer = client.post(
        "/relay/api/notify", data={"message": "x"}, headers={"Authorization": "Bearer a\x00b"}
    )
    assert answer.status_code == 401


def test_the_history_search_and_list_refuse_what_postgresql_cannot_compare(app, client):
    """Found by schemathesis on PostgreSQL: NUL in ``q`` and a ``cursor`` past a database
    integer answered 500. The API now answers 400 naming the field; the page leaves the
    filter out and says so."""
    with app.app_context():
        alice = create_user("alice")
        create_connection(alice, label="Ops")
        _, key = create_api_key(alice, "CI")
    headers = {"Authorization": f"Bearer {key}"}
    for query, field in (
        ("q=a%00b", "q"),
        ("q=bell%07", "q"),
        ("cursor=93238580767408427", "cursor"),
        ("cursor=2147483648", "cursor"),
        ("cursor=%C2%B2", "cursor"),  # "²": isdigit() says yes, int() refuses it
    ):
        answer = client.get(f"/api/v1/notifications?{query}", headers=headers)
        assert answer.status_code == 400, (query, answer.get_data(as_text=True))
        assert field in answer.get_json()["error"]["fields"], query
    answer = client.get("/api/v1/notifications?cursor=2147483647&q=tab%09ok", headers=headers)
    assert answer.status_code == 200
    assert answer.get_json()["notifications"] == []

    login(client)
    page = client.get("/history?q=a%00b&connection=%C2%B2&cursor=99999999999")
    assert page.status_code == 200
    assert "The search text holds a control character" in page.get_data(as_text=True)


@pytest.mark.parametrize(
    "path",
    [
        "/admin/users?page=%C2%B2",
        "/admin/users?q=al%00ice&page=99999999999",
        "/admin?hours=%C2%B2&page=%C2%B2",
        "/send/status?ids=%C2%B2",
        "/schedules?page=99999999999999999999",
        "/scheduled?page=%C2%B2",
        "/admin?page=99999999999999999999&stuck_page=0",
        "/send/status?ids=1,99999999999",
    ],
)
def test_numbers_in_query_strings_are_ascii_digits_in_range(signed_in, path):
    """``"²".isdigit()`` is true and ``int("²")`` raises; a number past a database integer
    makes PostgreSQL refuse the query. Neither may answer 500."""
    response = signed_in.get(path)
    assert response.status_code in (200, 400), (path, response.status_code)
    if path.startswith("/send/status"):
        assert response.status_code == 400


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/webhooks/99999999999"),
        ("get", "/schedules/2147483648"),
        ("post", "/connections/99999999999/revoke"),
        ("post", "/admin/users/99999999999/disable"),
    ],
)
def test_an_id_in_a_path_past_a_database_integer_is_not_found(signed_in, method, path):
    """Every ``<int:…>`` in a route is a row id (notify_site.security.RowIdConverter): past
    2**31 - 1 PostgreSQL refused the lookup with an error, a 500; now no route matches."""
    assert getattr(signed_in, method)(path).status_code == 404
