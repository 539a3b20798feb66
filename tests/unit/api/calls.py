"""The JSON API v1 tests' world and calls: an admin, two users, their chats and keys; a POST
with a key; the documented error shape. The ``world`` fixture is in this folder's conftest."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from notify_site.extensions import db
from notify_site.models import (
    ConnectionStatus,
    Notification,
)
from tests.factories import create_api_key, create_connection, create_user

ERROR_KEYS = {"code", "message", "fields"}
#: A body the API accepts from alice.
VALID = {"connection": "Ops", "message": "hello"}


@dataclass
class World:
    """An admin, two users, their connections and a key each."""

    admin_key: str
    alice_key: str
    bob_key: str
    alice_id: int
    bob_id: int
    ops: int  # alice's "Ops"
    family: int  # alice's "Family"
    old: int  # alice's revoked "Old"
    bob_ops: int  # bob's "Ops"


def make_world(app) -> World:
    with app.app_context():
        admin = create_user("root")  # the first account is an admin
        alice = create_user("alice")
        bob = create_user("bob")
        ops = create_connection(alice, label="Ops")
        family = create_connection(alice, label="Family", target_type="GROUP")
        old = create_connection(alice, label="Old", status=ConnectionStatus.REVOKED)
        bob_ops = create_connection(bob, label="Ops")
        return World(
            admin_key=create_api_key(admin, "admin")[1],
            alice_key=create_api_key(alice, "alice")[1],
            bob_key=create_api_key(bob, "bob")[1],
            alice_id=alice.id,
            bob_id=bob.id,
            ops=ops.id,
            family=family.id,
            old=old.id,
            bob_ops=bob_ops.id,
        )


def auth(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def post(client, key: str, body=None, headers=None, **kwargs):
    if body is not None:
        kwargs["json"] = body
    return client.post("/api/v1/notifications", headers=auth(key, **(headers or {})), **kwargs)


def count_rows(app, model=Notification) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def assert_api_error(response, status: int, code: str) -> dict:
    """A JSON error of the documented shape: no HTML, no traceback."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    text = response.get_data(as_text=True)
    assert "<html" not in text.lower()
    assert "Traceback" not in text
    assert 'File "' not in text
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == ERROR_KEYS
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    return body["error"]
