"""Sessions end when they should (issue 12, item 3): a copied session cookie stops working at
sign-out, at a password change (the browser that changed it stays signed in), when an admin
disables the account and when an admin sets a new password; and a session lasts
``PERMANENT_SESSION_LIFETIME`` after the last visit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import select
from werkzeug.security import check_password_hash

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import User
from tests.conftest import make_test_config
from tests.factories import PASSWORD, create_user, login

NEW_PASSWORD = "a brand new passphrase"


def signed_in(app, username: str = "alice", password: str = PASSWORD):
    client = app.test_client()
    login(client, username, password)
    return client


def copy_of(app, client):
    """Another browser holding a copy of ``client``'s session cookie (as a thief would)."""
    cookie = client.get_cookie(app.config.get("SESSION_COOKIE_NAME", "session"))
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie(cookie.key, cookie.value)
    return thief


def is_signed_in(client) -> bool:
    return client.get("/settings").status_code == 200


def test_a_copied_cookie_is_refused_after_sign_out(app, alice):
    browser = signed_in(app)
    thief = copy_of(app, browser)
    assert is_signed_in(thief)  # before: the copy works, as any signed cookie would

    signed_out = browser.post("/logout", follow_redirects=True)
    assert "on this device and every other" in signed_out.get_data(as_text=True)
    assert not is_signed_in(browser)
    answer = thief.get("/settings")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/login")


def test_sign_out_ends_the_accounts_other_sessions_too(app, alice):
    laptop, phone = signed_in(app), signed_in(app)
    laptop.post("/logout")
    assert not is_signed_in(phone)
    assert is_signed_in(signed_in(app))  # signing in again works


def test_a_session_id_from_before_the_upgrade_is_refused(app, alice):
    """Sessions made before session epochs held the bare row id: they end once."""
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = str(alice)
        session["_fresh"] = True
    assert not is_signed_in(client)


def test_a_forged_epoch_is_refused(app, alice):
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = f"{alice}:not-the-epoch"
    assert not is_signed_in(client)


def change_password(client, current=PASSWORD, new=NEW_PASSWORD, confirm=None):
    return client.post(
        "/settings/password",
        data={
            "current_password": current,
            "new_password": new,
            "confirm_password": confirm or new,
        },
    )


def test_a_password_change_ends_other_sessions_and_keeps_this_one(app, alice):
    browser = signed_in(app)
    other_device = signed_in(app)
    thief = copy_of(app, browser)

    answer = change_password(browser)
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/settings"
    page = browser.get("/settings").get_data(as_text=True)
    assert "Your password is changed" in page
    assert is_signed_in(browser)
    assert not is_signed_in(other_device)
    assert not is_signed_in(thief)

    refused = app.test_client().post("/login", data={"username": "alice", "password": PASSWORD})
    assert "Wrong username or password." in refused.get_data(as_text=True)
    signed_in(app, password=NEW_PASSWORD)


@pytest.mark.parametrize(
    ("current", "new", "confirm", "message"),
    [
        ("not my password", NEW_PASSWORD, None, "That is not your current password."),
        (PASSWORD, "short", None, "between 8 and 200"),
        (PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "!", "The passwords differ."),
    ],
)
def test_a_refused_password_change_changes_nothing(app, alice, current, new, confirm, message):
    browser = signed_in(app)
    other_device = signed_in(app)
    answer = change_password(browser, current, new, confirm)
    assert answer.status_code == 400
    assert message in answer.get_data(as_text=True)
    assert is_signed_in(other_device)
    signed_in(app)  # the old password still works


def test_an_admin_disabling_an_account_ends_its_sessions(app, alice):
    with app.app_context():
        admin = create_user("root", admin=True).id
    victim = signed_in(app)
    thief = copy_of(app, victim)
    admin_browser = signed_in(app, "root")

    answer = admin_browser.post(f"/admin/users/{alice}/disable")
    assert answer.status_code == 302
    assert not is_signed_in(victim)
    assert not is_signed_in(thief)
    assert is_signed_in(admin_browser)
    with app.app_context():
        assert db.session.get(User, admin).disabled_at is None


def test_set_password_from_the_command_line_ends_every_session(app, alice):
    browser = signed_in(app)
    result = app.test_cli_runner().invoke(
        args=["set-password", "alice"], input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert not is_signed_in(browser)
    signed_in(app, password=NEW_PASSWORD)


def test_the_session_lifetime_is_a_week_by_default(app):
    assert app.permanent_session_lifetime == timedelta(days=7)


class TestLifetime:
    @pytest.fixture
    def app_config(self, tmp_path):
        return make_test_config(tmp_path, PERMANENT_SESSION_LIFETIME=3600)

    def test_the_cookie_expires_with_the_configured_lifetime(self, app, alice):
        answer = app.test_client().post("/login", data={"username": "alice", "password": PASSWORD})
        [cookie] = [c for c in answer.headers.getlist("Set-Cookie") if c.startswith("session=")]
        assert "Expires=" in cookie
        browser = signed_in(app)
        expires = browser.get_cookie("session").expires
        assert expires is not None
        assert timedelta(minutes=59) < expires - utcnow() <= timedelta(hours=1, minutes=1)

    def test_a_cookie_older_than_the_lifetime_is_refused(self, app, alice, monkeypatch):
        browser = signed_in(app)
        thief = copy_of(app, browser)
        assert is_signed_in(thief)
        real = TimestampSigner.get_timestamp
        # An hour and a minute later, as the signature's clock sees it.
        monkeypatch.setattr(
            TimestampSigner, "get_timestamp", lambda self: real(self) + 3660, raising=True
        )
        assert not is_signed_in(thief)


def test_a_disabled_account_cannot_sign_in(app, alice):
    with app.app_context():
        create_user("root", admin=True)
    signed_in(app, "root").post(f"/admin/users/{alice}/disable")
    client = app.test_client()
    answer = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert answer.status_code == 403
    assert "This account is disabled. Ask your admin." in answer.get_data(as_text=True)
    assert not is_signed_in(client)
    # The wrong password gets the usual answer: only the password's holder learns of it.
    wrong = client.post("/login", data={"username": "alice", "password": "wrong-password"})
    assert wrong.status_code == 200
    assert "disabled" not in wrong.get_data(as_text=True)

    signed_in(app, "root").post(f"/admin/users/{alice}/enable")
    assert is_signed_in(signed_in(app))


def test_the_sign_in_page_says_who_resets_a_forgotten_password(client):
    page = client.get("/login").get_data(as_text=True)
    assert "Forgot your password? Ask your admin" in page


def test_users_get_different_epochs_and_an_epoch_changes_at_sign_out(app, alice):
    with app.app_context():
        create_user("bob")
        epochs = dict(db.session.execute(select(User.username, User.session_epoch)).all())
    assert epochs["alice"] != epochs["bob"]
    assert len(epochs["alice"]) >= 20
    signed_in(app).post("/logout")
    with app.app_context():
        assert db.session.get(User, alice).session_epoch != epochs["alice"]


def test_a_password_change_needs_the_csrf_token(tmp_path):
    from notify_site import create_app
    from tests.conftest import init_database

    app = create_app(make_test_config(tmp_path, WTF_CSRF_ENABLED=True))
    init_database(app)
    with app.app_context():
        create_user("alice")
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token})
    assert is_signed_in(client)
    assert change_password(client).status_code == 400
    with app.app_context():
        stored = db.session.scalar(select(User.password_hash).where(User.username == "alice"))
    assert check_password_hash(stored, PASSWORD)
    assert is_signed_in(client)
