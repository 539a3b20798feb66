"""Deleting your account (/settings/delete-account): a confirmation page, the password, every
chat disconnected at the Notify server through the revoke service, every row of the account
gone, and only the admins' audit entry left."""

from __future__ import annotations

import json

import pytest
import responses
from sqlalchemy import func, select

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import (
    AccountEvent,
    ApiKey,
    ApiKeyReveal,
    Connection,
    ConnectionStatus,
    DeliveryAttempt,
    IdempotencyRecord,
    Notification,
    NotificationImage,
    OAuthState,
    User,
)
from notify_site.services import api_keys
from tests.conftest import make_test_config
from tests.factories import (
    PASSWORD,
    create_api_key,
    create_connection,
    create_notification,
    create_user,
    login,
)

API = "https://notify-api.test"
REVOKE = API + "/api/revoke"


@pytest.fixture
def app_config(tmp_path):
    return make_test_config(tmp_path, NOTIFY_API_ORIGIN=API)


def add_delivered(owner_id: int, connection_id: int, *, image: bool = False) -> int:
    """A delivered notification with one recorded attempt (and an uploaded image)."""
    picture = None
    if image:
        picture = NotificationImage(filename="chart.png", content_type="image/png", data=b"png")
        db.session.add(picture)
        db.session.flush()
    image_id = picture.id if picture else None
    row = create_notification(connection_id, owner_id=owner_id, message="hello", image_id=image_id)
    now = utcnow()
    db.session.add(
        DeliveryAttempt(
            notification_id=row.id, outcome="delivered", started_at=now, finished_at=now
        )
    )
    db.session.commit()
    return row.id


@pytest.fixture
def accounts(app):
    """alice (to be deleted: two live chats, a revoked one, keys, notifications, a pending
    connect flow, a key waiting to be shown) beside root (an admin) and bob, whose rows stay."""
    with app.app_context():
        root = create_user("root", admin=True)
        alice = create_user("alice")
        bob = create_user("bob")
        ops = create_connection(alice, label="Ops", token="alice-token-ops")
        family = create_connection(alice, label="Family", token="alice-token-family")
        create_connection(
            alice, label="Old", token="alice-token-old", status=ConnectionStatus.REVOKED
        )
        bobs = create_connection(bob, label="Bob's", token="bob-token")
        key, _ = create_api_key(alice, "CI")
        _, alice_key = create_api_key(alice, "deploy")
        api_keys.create_api_key_to_show(alice, "waiting")
        _, bob_key = create_api_key(bob, "bob's key")
        db.session.add(
            IdempotencyRecord(
                api_key_id=key.id, key="k1", request_hash="h", status_code=202, response_json="{}"
            )
        )
        db.session.add(
            OAuthState(
                state_hash="s" * 64,
                user_id=alice.id,
                label="pending",
                verifier_ciphertext="x",
                redirect_uri="http://localhost/callback",
                expires_at=utcnow(),
            )
        )
        db.session.commit()
        add_delivered(alice.id, ops.id, image=True)
        add_delivered(alice.id, family.id)
        add_delivered(root.id, ops.id)  # an admin's key sent to alice's chat
        kept = add_delivered(bob.id, bobs.id, image=True)
        return {
            "root": root.id,
            "alice": alice.id,
            "bob": bob.id,
            "alice_key": alice_key,
            "bob_key": bob_key,
            "bob_notification": kept,
        }


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_the_settings_page_links_to_a_confirmation_page_with_what_goes(app, accounts):
    client = app.test_client()
    login(client, "alice")
    assert 'href="/settings/delete-account"' in client.get("/settings").get_data(as_text=True)
    page = client.get("/settings/delete-account")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "2 connected chats are disconnected at the Notify server" in html
    assert "2 notifications and their delivery history are deleted" in html
    assert "3 API keys stop working and are deleted" in html
    assert 'name="password"' in html


def test_deleting_revokes_every_chat_and_leaves_only_the_audit(app, accounts, mocked_http):
    revoke = mocked_http.post(REVOKE, json={"status": 200, "message": "ok"})
    client = app.test_client()
    login(client, "alice")
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)

    answer = client.post("/settings/delete-account", data={"password": PASSWORD})
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/login"
    assert "Your account is deleted." in client.get("/login").get_data(as_text=True)

    # Each live chat revoked once at the Notify server with its own token; the revoked one not.
    assert revoke.call_count == 2
    sent = sorted(call.request.headers["Authorization"] for call in mocked_http.calls)
    assert sent == ["Bearer alice-token-family", "Bearer alice-token-ops"]

    alice = accounts["alice"]
    with app.app_context():
        assert db.session.get(User, alice) is None
        assert count(Connection, Connection.owner_id == alice) == 0
        assert count(ApiKey, ApiKey.owner_id == alice) == 0
        assert count(ApiKeyReveal) == 0
        assert count(OAuthState) == 0
        assert count(IdempotencyRecord) == 0
        # Alice's notifications, and the admin's one to her chat, with attempts and images.
        assert count(Notification) == 1
        assert count(DeliveryAttempt) == 1
        assert count(NotificationImage) == 1
        kept = db.session.get(Notification, accounts["bob_notification"])
        assert kept is not None
        assert kept.image is not None
        assert count(User) == 2
        [event] = db.session.scalars(
            select(AccountEvent).where(AccountEvent.action == "deleted")
        ).all()
        assert (event.user_id, event.username, event.actor_username) == (alice, "alice", "alice")
        assert json.loads(event.detail) == {"api_keys": 3, "connections": 3, "notifications": 3}

    assert client.get("/settings").status_code == 302
    assert thief.get("/settings").status_code == 302
    refused = app.test_client().get(
        "/api/v1/connections", headers={"Authorization": f"Bearer {accounts['alice_key']}"}
    )
    assert refused.status_code == 401
    still = app.test_client().get(
        "/api/v1/connections", headers={"Authorization": f"Bearer {accounts['bob_key']}"}
    )
    assert still.status_code == 200


def test_the_wrong_password_deletes_nothing_and_calls_nobody(app, accounts, mocked_http):
    revoke = mocked_http.post(REVOKE, json={"status": 200, "message": "ok"})
    client = app.test_client()
    login(client, "alice")
    answer = client.post("/settings/delete-account", data={"password": "not my password"})
    assert answer.status_code == 400
    assert "That is not your password." in answer.get_data(as_text=True)
    assert revoke.call_count == 0
    with app.app_context():
        assert db.session.get(User, accounts["alice"]) is not None
        assert count(Connection, Connection.status == ConnectionStatus.ACTIVE) == 3


def test_a_chat_that_cannot_be_revoked_stops_the_deletion(app, accounts, mocked_http):
    mocked_http.post(REVOKE, body=responses.ConnectionError("down"))
    client = app.test_client()
    login(client, "alice")
    answer = client.post(
        "/settings/delete-account", data={"password": PASSWORD}, follow_redirects=True
    )
    html = answer.get_data(as_text=True)
    assert "Your account is not deleted." in html
    assert "still connected" in html
    with app.app_context():
        assert db.session.get(User, accounts["alice"]) is not None
        assert count(Connection, Connection.owner_id == accounts["alice"]) == 3
        assert count(AccountEvent, AccountEvent.action == "deleted") == 0
    assert client.get("/settings").status_code == 200  # still signed in


def test_a_token_the_server_no_longer_knows_does_not_stop_the_deletion(app, accounts, mocked_http):
    mocked_http.post(REVOKE, json={"status": 401, "message": "Invalid access token"}, status=401)
    client = app.test_client()
    login(client, "alice")
    assert client.post("/settings/delete-account", data={"password": PASSWORD}).status_code == 302
    with app.app_context():
        assert db.session.get(User, accounts["alice"]) is None


def test_deleting_needs_the_csrf_token(tmp_path, mocked_http):
    from notify_site import create_app
    from tests.conftest import init_database

    app = create_app(make_test_config(tmp_path, WTF_CSRF_ENABLED=True))
    init_database(app)
    with app.app_context():
        create_user("root", admin=True)
        create_user("alice")
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token})
    answer = client.post("/settings/delete-account", data={"password": PASSWORD})
    assert answer.status_code == 400
    with app.app_context():
        assert db.session.scalar(select(User).where(User.username == "alice")) is not None


class TestAdmins:
    def test_the_last_admin_cannot_delete_the_account_while_others_exist(self, app, accounts):
        client = app.test_client()
        login(client, "root")
        answer = client.post(
            "/settings/delete-account", data={"password": PASSWORD}, follow_redirects=True
        )
        assert "You are the only admin" in answer.get_data(as_text=True)
        with app.app_context():
            assert db.session.get(User, accounts["root"]) is not None

    def test_an_admin_may_go_once_another_admin_exists(self, app, accounts):
        with app.app_context():
            db.session.get(User, accounts["bob"]).is_admin = True
            db.session.commit()
        client = app.test_client()
        login(client, "root")
        assert (
            client.post("/settings/delete-account", data={"password": PASSWORD}).status_code == 302
        )
        with app.app_context():
            assert db.session.get(User, accounts["root"]) is None

    def test_the_only_account_may_delete_itself(self, app):
        with app.app_context():
            create_user("solo")
        client = app.test_client()
        login(client, "solo")
        assert (
            client.post("/settings/delete-account", data={"password": PASSWORD}).status_code == 302
        )
        with app.app_context():
            assert count(User) == 0
