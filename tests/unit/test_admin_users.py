"""/admin/users: the accounts for admins, paginated and searchable; disable and enable, make
and remove admins (never yourself disabled, never the last admin removed), the audit; a
disabled account's API keys answer 403; and ``flask set-password``."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from notify_site import create_app
from notify_site.extensions import db
from notify_site.models import AccountEvent, User
from notify_site.services import accounts
from tests.conftest import init_database, make_test_config
from tests.factories import PASSWORD, create_api_key, create_connection, create_user, login


@pytest.fixture
def ids(app):
    with app.app_context():
        return {
            "root": create_user("root", admin=True).id,
            "alice": create_user("alice").id,
            "bob": create_user("bob").id,
        }


@pytest.fixture
def admin(app, ids):
    client = app.test_client()
    login(client, "root")
    return client


def user(app, user_id: int) -> User:
    with app.app_context():
        found = db.session.get(User, user_id)
        db.session.expunge(found)
        return found


def flashed(client) -> str:
    return client.get("/admin/users").get_data(as_text=True)


def test_only_admins_see_the_list(app, client, ids):
    assert client.get("/admin/users").status_code == 302
    login(client, "alice")
    assert client.get("/admin/users").status_code == 403
    assert client.post(f"/admin/users/{ids['bob']}/disable").status_code == 403
    assert user(app, ids["bob"]).disabled_at is None


def test_the_list_shows_each_account_with_its_role_status_and_counts(app, admin, ids):
    with app.app_context():
        alice = db.session.get(User, ids["alice"])
        create_connection(alice, label="Ops")
        create_api_key(alice, "CI")
    html = admin.get("/admin/users").get_data(as_text=True)
    row = html[html.index(f'data-user-id="{ids["alice"]}"') :]
    row = row[: row.index("</tr>")]
    assert ">alice<" in row
    assert "pill-active" in row
    assert '<td data-label="Chats" class="volume">1</td>' in row
    assert '<td data-label="API keys" class="volume">1</td>' in row
    assert f"/admin/users/{ids['alice']}/disable" in row
    assert f"/admin/users/{ids['alice']}/make-admin" in row
    own = html[html.index(f'data-user-id="{ids["root"]}"') :]
    own = own[: own.index("</tr>")]
    assert "(you)" in own
    assert "/disable" not in own  # no button to disable yourself
    assert "3 accounts" in html
    assert 'href="/admin/users"' in admin.get("/admin").get_data(as_text=True)


def test_the_list_is_paginated_and_searchable(app, admin, ids):
    with app.app_context():
        for number in range(accounts.USERS_PER_PAGE):
            create_user(f"user{number:03d}")
    first = admin.get("/admin/users").get_data(as_text=True)
    second = admin.get("/admin/users?page=2").get_data(as_text=True)
    assert first.count("data-user-id=") == accounts.USERS_PER_PAGE
    assert second.count("data-user-id=") == 3
    assert "page 2 of 2" in second
    assert 'href="/admin/users?page=2#users"' in first
    found = admin.get("/admin/users?q=USER04").get_data(as_text=True)
    assert found.count("data-user-id=") == 10  # user040 … user049
    assert admin.get("/admin/users?q=nobody%25").get_data(as_text=True).count("data-user-id") == 0


def test_disable_and_enable_with_the_audit(app, admin, ids):
    assert admin.post(f"/admin/users/{ids['alice']}/disable").status_code == 302
    assert user(app, ids["alice"]).disabled_at is not None
    html = flashed(admin)
    assert "“alice” is disabled and signed out everywhere." in html
    assert "pill-error" in html
    admin.post(f"/admin/users/{ids['alice']}/enable")
    assert user(app, ids["alice"]).disabled_at is None
    html = flashed(admin)
    assert "“alice” is enabled again." in html
    with app.app_context():
        actions = db.session.scalars(select(AccountEvent.action).order_by(AccountEvent.id)).all()
        assert actions == ["disabled", "enabled"]
    audit = html[html.index('data-list="account-events"') :]
    assert "enabled again" in audit
    assert "disabled" in audit
    assert "root" in audit


def test_an_admin_cannot_disable_their_own_account(app, admin, ids):
    admin.post(f"/admin/users/{ids['root']}/disable")
    assert "You cannot disable your own account." in flashed(admin)
    assert user(app, ids["root"]).disabled_at is None


def test_make_and_remove_admin_but_never_the_last_one(app, admin, ids):
    admin.post(f"/admin/users/{ids['alice']}/make-admin")
    assert user(app, ids["alice"]).is_admin
    assert "“alice” is now an admin." in flashed(admin)
    admin.post(f"/admin/users/{ids['alice']}/remove-admin")
    assert not user(app, ids["alice"]).is_admin

    admin.post(f"/admin/users/{ids['root']}/remove-admin")
    assert "is the only enabled admin left" in flashed(admin)
    assert user(app, ids["root"]).is_admin


def test_a_disabled_admin_does_not_count_as_the_admin_left(app, admin, ids):
    admin.post(f"/admin/users/{ids['alice']}/make-admin")
    admin.post(f"/admin/users/{ids['alice']}/disable")
    admin.post(f"/admin/users/{ids['root']}/remove-admin")
    assert user(app, ids["root"]).is_admin


def test_the_service_refuses_to_disable_the_last_enabled_admin(app, ids):
    # Through the page an admin can only disable others, so one enabled admin always stays;
    # the service checks it anyway (another admin may have been demoted meanwhile).
    with app.app_context():
        alice = db.session.get(User, ids["alice"])
        db.session.get(User, ids["root"]).is_admin = False
        db.session.commit()
        root = db.session.get(User, ids["root"])
        alice.is_admin = True
        db.session.commit()
        with pytest.raises(accounts.AdminRuleError):
            accounts.set_disabled(root, ids["alice"], True)
        assert db.session.get(User, ids["alice"]).disabled_at is None


def test_unknown_accounts_answer_404(admin):
    assert admin.post("/admin/users/999999/disable").status_code == 404


def test_a_disabled_accounts_api_key_answers_403_json(app, admin, ids):
    with app.app_context():
        _, key = create_api_key(ids["alice"], "CI")
        _, admin_key = create_api_key(ids["root"], "monitoring")
    headers = {"Authorization": f"Bearer {key}"}
    assert app.test_client().get("/api/v1/connections", headers=headers).status_code == 200
    admin.post(f"/admin/users/{ids['alice']}/disable")
    for path in ("/api/v1/connections", "/api/v1/notifications/1"):
        answer = app.test_client().get(path, headers=headers)
        assert answer.status_code == 403
        assert answer.is_json
        assert answer.get_json()["error"]["code"] == "account_disabled"
        assert "disabled" in answer.get_json()["error"]["message"]
    sent = app.test_client().post(
        "/api/v1/notifications", json={"connection": "Ops", "message": "x"}, headers=headers
    )
    assert sent.status_code == 403
    admin.post(f"/admin/users/{ids['alice']}/enable")
    assert app.test_client().get("/api/v1/connections", headers=headers).status_code == 200

    # An admin's key on the admin's data endpoints: refused the same way once disabled.
    with app.app_context():
        db.session.get(User, ids["bob"]).is_admin = True
        db.session.commit()
    bob = app.test_client()
    login(bob, "bob")
    bob.post(f"/admin/users/{ids['root']}/disable")
    answer = app.test_client().get(
        "/admin/summary.json", headers={"Authorization": f"Bearer {admin_key}"}
    )
    assert answer.status_code == 403
    assert answer.get_json()["error"]["code"] == "account_disabled"


def test_actions_need_the_csrf_token(tmp_path):
    app = create_app(make_test_config(tmp_path, WTF_CSRF_ENABLED=True))
    init_database(app)
    with app.app_context():
        create_user("root", admin=True)
        alice = create_user("alice").id
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    signed = client.post(
        "/login", data={"username": "root", "password": PASSWORD, "csrf_token": token}
    )
    assert signed.status_code == 302
    assert client.post(f"/admin/users/{alice}/disable").status_code == 400
    with app.app_context():
        assert db.session.get(User, alice).disabled_at is None
    page = client.get("/admin/users").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    assert (
        client.post(f"/admin/users/{alice}/disable", data={"csrf_token": token}).status_code == 302
    )
    with app.app_context():
        assert db.session.get(User, alice).disabled_at is not None
    assert 'data-confirm="Disable' in page


class TestSetPassword:
    def test_prompts_twice(self, app, runner, ids):
        result = runner.invoke(
            args=["set-password", "alice"], input="another password\nanother password\n"
        )
        assert result.exit_code == 0, result.output
        assert result.output.count("New password: ") == 1
        assert "signed out everywhere" in result.output
        assert "Repeat for confirmation" in result.output
        assert "another password" not in result.output
        login(app.test_client(), "alice", "another password")
        with app.app_context():
            [event] = db.session.scalars(select(AccountEvent)).all()
            assert (event.action, event.username, event.actor_id) == ("password_set", "alice", None)

    def test_reads_standard_input(self, app, runner, ids):
        result = runner.invoke(
            args=["set-password", "alice", "--password-stdin"], input="from a pipe 123\n"
        )
        assert result.exit_code == 0, result.output
        login(app.test_client(), "alice", "from a pipe 123")

    @pytest.mark.parametrize(
        ("name", "password", "message"),
        [("nobody", "long enough 1", "no account called"), ("alice", "short", "8 to 200")],
    )
    def test_refuses(self, app, runner, ids, name, password, message):
        result = runner.invoke(
            args=["set-password", name, "--password-stdin"], input=password + "\n"
        )
        assert result.exit_code != 0
        assert message in result.output
        login(app.test_client(), "alice", PASSWORD)


def test_the_openapi_document_lists_the_403_of_a_disabled_account(client):
    document = client.get("/api/v1/openapi.json").get_json()
    for path, method in (
        ("/api/v1/notifications", "post"),
        ("/api/v1/connections", "get"),
        ("/api/v1/connections/{connection_id}", "get"),
        ("/api/v1/notifications/{notification_id}", "get"),
    ):
        assert "403" in document["paths"][path][method]["responses"], path
