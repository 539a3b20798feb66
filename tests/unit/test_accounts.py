"""Register, sign in, sign out, the first-admin rule and the create-user command."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from notify_site import create_app
from notify_site.config import ConfigError
from notify_site.extensions import db
from notify_site.models import User
from notify_site.services import accounts
from tests.conftest import init_database, make_test_config
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


# ------------------------------------------------------------------- how passwords are hashed


def test_production_hashes_passwords_with_scrypt(tmp_path):
    """The default, with no test setting: scrypt at werkzeug's work factor (N=2**15)."""
    config = make_test_config(tmp_path)
    del config["PASSWORD_HASH_METHOD"], config["TESTING"]
    app = create_app(config)
    init_database(app)
    assert app.config["PASSWORD_HASH_METHOD"] == "scrypt"
    with app.app_context():
        user = accounts.create_user("alice", PASSWORD)
        assert user.password_hash.startswith("scrypt:32768:8:1$")
        assert accounts.authenticate("alice", PASSWORD) == user
        assert accounts.authenticate("alice", "wrong password") is None
        assert accounts.authenticate("nobody", PASSWORD) is None


def test_the_configured_method_hashes_and_earlier_hashes_still_sign_in(tmp_path):
    scrypt_hash = generate_password_hash(PASSWORD, method="scrypt:16384:8:1")
    app = create_app(make_test_config(tmp_path, PASSWORD_HASH_METHOD="pbkdf2:sha256:3"))
    init_database(app)
    with app.app_context():
        bob = accounts.create_user("bob", PASSWORD)
        assert bob.password_hash.startswith("pbkdf2:sha256:3$")
        alice = accounts.create_user("alice", "placeholder password")
        alice.password_hash = scrypt_hash  # made before the method changed
        db.session.commit()
        assert accounts.authenticate("alice", PASSWORD) == alice
        assert accounts.authenticate("bob", PASSWORD) == bob


@pytest.mark.parametrize(
    "method", ["md5", "scrypt:1:2", "scrypt:a:8:1", "pbkdf2:no-such-hash:5", "pbkdf2:sha256:x"]
)
def test_an_unknown_hash_method_stops_the_site_at_start(tmp_path, method):
    with pytest.raises(ConfigError, match="PASSWORD_HASH_METHOD"):
        create_app(make_test_config(tmp_path, PASSWORD_HASH_METHOD=method))


@pytest.mark.parametrize("method", ["pbkdf2:sha256:1", "pbkdf2:sha256:599999", "scrypt:1024:8:1"])
def test_a_cheap_hash_method_is_refused_outside_tests(tmp_path, method):
    create_app(make_test_config(tmp_path, PASSWORD_HASH_METHOD=method))  # fine in tests
    with pytest.raises(ConfigError, match="too cheap outside tests"):
        create_app(make_test_config(tmp_path, PASSWORD_HASH_METHOD=method, TESTING=False))
    create_app(
        make_test_config(tmp_path, PASSWORD_HASH_METHOD="pbkdf2:sha256:600000", TESTING=False)
    )
