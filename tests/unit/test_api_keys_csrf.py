"""With CSRF on, as in production: the key forms refuse a POST without the token; the JSON
API, authenticated by a header a browser never adds by itself, is exempt."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from notify_site.extensions import db
from notify_site.models import ApiKey, Notification, User
from notify_site.services import api_keys
from tests.conftest import make_test_config
from tests.factories import PASSWORD, create_connection, create_user

TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@pytest.fixture
def app_config(tmp_path):
    return make_test_config(tmp_path, WTF_CSRF_ENABLED=True)


def _token(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    match = TOKEN.search(page) or re.search(r'value="([^"]+)"[^>]*name="csrf_token"', page)
    assert match, page
    return match.group(1)


@pytest.fixture
def signed_in(app, client):
    with app.app_context():
        create_user("alice")
    answer = client.post(
        "/login",
        data={"username": "alice", "password": PASSWORD, "csrf_token": _token(client, "/login")},
    )
    assert answer.status_code == 302
    return client


def _key_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(ApiKey))


def test_create_without_token_is_refused_and_creates_nothing(app, signed_in):
    answer = signed_in.post("/api-keys", data={"name": "CI"})
    assert answer.status_code == 400
    assert "nsk_" not in answer.get_data(as_text=True)
    assert _key_count(app) == 0

    token = _token(signed_in, "/api-keys")
    answer = signed_in.post("/api-keys", data={"name": "CI", "csrf_token": token})
    assert answer.status_code == 303
    assert _key_count(app) == 1


def test_revoke_without_token_is_refused_and_changes_nothing(app, signed_in):
    with app.app_context():
        alice = db.session.scalar(select(User).where(User.username == "alice"))
        api_key, _ = api_keys.create_api_key(alice, "CI")
        key_id = api_key.id
    answer = signed_in.post(f"/api-keys/{key_id}/revoke")
    assert answer.status_code == 400
    with app.app_context():
        assert db.session.get(ApiKey, key_id).revoked_at is None

    token = _token(signed_in, "/api-keys")
    answer = signed_in.post(f"/api-keys/{key_id}/revoke", data={"csrf_token": token})
    assert answer.status_code == 302
    with app.app_context():
        assert db.session.get(ApiKey, key_id).revoked_at is not None


def test_the_json_api_needs_no_csrf_token(app, client):
    with app.app_context():
        alice = create_user("alice")
        create_connection(alice, label="Ops")
        _, plaintext = api_keys.create_api_key(alice, "CI")
    answer = client.post(
        "/api/v1/notifications",
        json={"connection": "Ops", "message": "no token needed"},
        headers={"Authorization": f"Bearer {plaintext}"},
    )
    assert answer.status_code == 202, answer.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Notification)) == 1
