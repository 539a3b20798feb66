"""Plain factory functions for test data. Call them inside an app context."""

from __future__ import annotations

from notify_site.extensions import db
from notify_site.models import Connection, ConnectionStatus, User
from notify_site.services import accounts
from notify_site.services.notify import connection_context, keyring

PASSWORD = "correct horse battery"


def create_user(username: str = "alice", *, admin: bool = False, password: str = PASSWORD) -> User:
    return accounts.create_user(username, password, admin=admin)


def create_connection(
    owner: User,
    *,
    label: str = "Ops",
    token: str = "test-access-token",
    target_name: str | None = "Sandbox user",
    target_type: str | None = "USER",
    status: str = ConnectionStatus.ACTIVE,
) -> Connection:
    connection = Connection(
        owner_id=owner.id,
        label=label,
        target_name=target_name,
        target_type=target_type,
        status=status,
    )
    db.session.add(connection)
    db.session.flush()
    connection.token_ciphertext = keyring().encrypt(
        token, context=connection_context(connection.id)
    )
    db.session.commit()
    return connection


def login(client, username: str = "alice", password: str = PASSWORD):
    """Sign in through the real form (CSRF must be off, or the caller adds the token)."""
    response = client.post("/login", data={"username": username, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response
