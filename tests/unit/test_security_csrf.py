"""CSRF on every state-changing form: without the token → 400 and nothing changes.

Send and the API-key forms have their own tests (test_send_csrf.py, test_api_keys_csrf.py),
and connecting a chat is tested over real HTTP (tests/integration/test_connect_live.py).
These are the rest: sign-in, registration, sign-out, and revoking and refreshing a connection.
Each case also runs with the page's token, to prove the token was the only thing missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from notify_site.extensions import db
from notify_site.models import Connection, ConnectionStatus, User
from tests.conftest import make_test_config
from tests.factories import PASSWORD, create_connection, create_user

API = "http://127.0.0.1:5000/relay"
TOKEN_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@pytest.fixture
def app_config(tmp_path):
    return make_test_config(tmp_path, WTF_CSRF_ENABLED=True)


def page_token(client, path: str) -> str:
    match = TOKEN_FIELD.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client) -> None:
    data = {"username": "alice", "password": PASSWORD, "csrf_token": page_token(client, "/login")}
    assert client.post("/login", data=data).status_code == 302


def signed_in(client) -> bool:
    with client.session_transaction() as session:
        return "_user_id" in session


@dataclass
class Case:
    """A form: where its page is, where it posts, and how to tell whether it did anything."""

    page: str
    path: str
    data: dict[str, str]
    needs_sign_in: bool
    # The observable state the POST would change, read after it.
    state: Any
    # The state after a POST with the token (before one, it must be unchanged).
    changed: Any


def users(app, client) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


def connection_state(app, client) -> tuple[str, bool]:
    with app.app_context():
        connection = db.session.get(Connection, 1)
        return connection.status, connection.rate_checked_at is not None


CASES = {
    "login": Case(
        page="/login",
        path="/login",
        data={"username": "alice", "password": PASSWORD},
        needs_sign_in=False,
        state=lambda app, client: signed_in(client),
        changed=True,
    ),
    "register": Case(
        page="/register",
        path="/register",
        data={"username": "bob", "password": PASSWORD, "confirm": PASSWORD},
        needs_sign_in=False,
        state=users,
        changed=2,
    ),
    "logout": Case(
        page="/connections",
        path="/logout",
        data={},
        needs_sign_in=True,
        state=lambda app, client: signed_in(client),
        changed=False,
    ),
    "revoke": Case(
        page="/connections",
        path="/connections/1/revoke",
        data={},
        needs_sign_in=True,
        state=connection_state,
        changed=(ConnectionStatus.REVOKED, False),
    ),
    "refresh": Case(
        page="/connections",
        path="/connections/1/refresh",
        data={},
        needs_sign_in=True,
        state=connection_state,
        changed=(ConnectionStatus.ACTIVE, True),
    ),
}


def mock_notify_server(mocked_http) -> None:
    headers = {
        "X-RateLimit-Limit": "1000",
        "X-RateLimit-Remaining": "998",
        "X-RateLimit-ImageLimit": "50",
        "X-RateLimit-ImageRemaining": "50",
        "X-RateLimit-Reset": "1893456000",
    }
    mocked_http.post(API + "/api/revoke", json={"status": 200, "message": "ok"}, headers=headers)
    mocked_http.get(
        API + "/api/status",
        json={"status": 200, "message": "ok", "targetType": "USER", "target": "Me"},
        headers=headers,
    )


@pytest.mark.parametrize("with_token", [False, True], ids=["no token", "with token"])
@pytest.mark.parametrize("name", CASES)
def test_a_state_changing_form_needs_its_csrf_token(app, client, mocked_http, name, with_token):
    case = CASES[name]
    with app.app_context():
        alice = create_user("alice")
        create_connection(alice, label="Ops")
    mock_notify_server(mocked_http)
    if case.needs_sign_in:
        sign_in(client)
    before = case.state(app, client)

    data = dict(case.data)
    if with_token:
        data["csrf_token"] = page_token(client, case.page)
        answer = client.post(case.path, data=data)
        assert answer.status_code == 302, answer.get_data(as_text=True)
        assert case.state(app, client) == case.changed != before
        return

    for forged in (None, "forged-token"):
        if forged:
            data["csrf_token"] = forged
        answer = client.post(case.path, data=data)
        assert answer.status_code == 400
        assert "The form expired or was not sent from this site" in answer.get_data(as_text=True)
        assert case.state(app, client) == before
    # Refused before the view ran: the Notify server was never called.
    assert len(mocked_http.calls) == 0
