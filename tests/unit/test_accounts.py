"""Register, sign in, sign out, the first-admin rule and the create-user command."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.models import User
from tests.conftest import make_test_config
from tests.factories import PASSWORD, create_user, login


def register(client, username="alice", password=PASSWORD, confirm=None):
    return client.post(
        "/register",
        data={"username": username, "password": password, "confirm": confirm or password},
    )


def test_first_account_is_admin_and_second_is_not(client, app):
    assert register(client, "alice").status_code == 302
    assert register(app.test_client(), "bob").status_code == 302
    with app.app_context():
        users = {u.username: u for u in db.session.scalars(select(User))}
    assert users["alice"].is_admin
    assert not users["bob"].is_admin
    assert users["alice"].password_hash.startswith(("scrypt:", "pbkdf2:"))
    assert PASSWORD not in users["alice"].password_hash


def test_register_signs_in_and_lands_on_connections(client):
    response = register(client)
    assert response.headers["Location"] == "/connections"
    assert client.get("/connections").status_code == 200


@pytest.mark.parametrize(
    ("username", "password", "confirm", "message"),
    [
        ("al", PASSWORD, PASSWORD, "between 3 and 64"),
        ("bad name!", PASSWORD, PASSWORD, "Use letters"),
        ("alice", "short", "short", "between 8 and 200"),
        ("alice", PASSWORD, PASSWORD + "x", "The passwords differ"),
    ],
)
def test_register_errors_are_shown_next_to_the_field(
    client, app, username, password, confirm, message
):
    response = register(client, username, password, confirm)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(User)) is None


def test_taken_username_is_refused(client, app):
    register(client, "alice")
    response = register(app.test_client(), "alice")
    assert "already taken" in response.get_data(as_text=True)


def test_wrong_password_and_unknown_user_get_the_same_answer(client, app):
    with app.app_context():
        create_user("alice")
    wrong = client.post("/login", data={"username": "alice", "password": "nope-nope"})
    unknown = client.post("/login", data={"username": "nobody", "password": "nope-nope"})
    assert wrong.status_code == unknown.status_code == 200
    assert "Wrong username or password." in wrong.get_data(as_text=True)
    assert "Wrong username or password." in unknown.get_data(as_text=True)


def test_login_clears_the_session_first(client, app):
    with app.app_context():
        create_user("alice")
    with client.session_transaction() as session:
        session["planted"] = "by someone else"
    login(client)
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session["_user_id"]


def test_login_follows_only_local_next(client, app):
    with app.app_context():
        create_user("alice")
    data = {"username": "alice", "password": PASSWORD}
    local = client.post("/login?next=/connections", data=data)
    assert local.headers["Location"] == "/connections"
    client.post("/logout")
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "/no-such-page"):
        response = app.test_client().post(f"/login?next={evil}", data=data)
        assert response.headers["Location"] == "/connections", evil


def test_logout_signs_out(client, app):
    with app.app_context():
        create_user("alice")
    login(client)
    client.post("/logout")
    assert client.get("/connections").status_code == 302


def test_pages_need_sign_in(client):
    response = client.get("/connections")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


class TestRegistrationClosed:
    @pytest.fixture
    def app_config(self, tmp_path):
        return make_test_config(tmp_path, REGISTRATION_OPEN=False)

    def test_register_is_refused(self, client, app):
        response = register(client)
        assert response.status_code == 302
        assert response.headers["Location"] == "/login"
        with app.app_context():
            assert db.session.scalar(select(User)) is None

    def test_admin_can_still_create_users_from_the_command_line(self, runner, app):
        result = runner.invoke(
            args=["create-user", "--username", "root", "--password", PASSWORD, "--admin"]
        )
        assert result.exit_code == 0, result.output
        assert "Created admin 'root'" in result.output
        with app.app_context():
            assert db.session.scalar(select(User.is_admin).where(User.username == "root"))


def test_create_user_command_makes_plain_users_after_the_first(runner, app):
    runner.invoke(args=["create-user", "--username", "first", "--password", PASSWORD])
    result = runner.invoke(args=["create-user", "--username", "second", "--password", PASSWORD])
    assert "Created user 'second'" in result.output
    short = runner.invoke(args=["create-user", "--username", "third", "--password", "short"])
    assert short.exit_code != 0
    assert "at least 8" in short.output
