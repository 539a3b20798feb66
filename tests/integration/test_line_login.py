"""Sign in with LINE on the site (issue 19 items 1 and 2), against the fake LINE Login over
real HTTP: the state's rules (0 token requests when it is wrong), the ID token's checks,
access_denied, a new account vs linking vs an id linked elsewhere, unlinking, friendship."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from sqlalchemy import select, update

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import LineLoginState, User
from tests.conftest import make_test_config
from tests.factories import PASSWORD, create_user, login
from tests.fakes.line_login import ALICE, BOB, login_config, serve_fakes

CALLBACK = "http://localhost/login/line/callback"


@pytest.fixture
def fakes():
    yield from serve_fakes()


@pytest.fixture
def app_config(tmp_path, fakes):
    return make_test_config(
        tmp_path, **login_config(fakes, CALLBACK, LINE_LOGIN_BOT_PROMPT="normal")
    )


def begin(client, path: str = "/login/line") -> str:
    """Press a LINE button; the authorize URL LINE is sent to."""
    response = client.post(path)
    assert response.status_code == 302
    return response.headers["Location"]


def callback_path(url: str) -> str:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == CALLBACK
    return f"{parts.path}?{parts.query}"


def sign_in_with_line(client, fakes, **approve):
    return client.get(callback_path(fakes.approve(begin(client), **approve)))


def user_by_line(app, line_user_id: str) -> User | None:
    with app.app_context():
        return db.session.scalar(select(User).where(User.line_user_id == line_user_id))


def test_the_authorize_request_has_state_nonce_pkce_and_the_add_friend_option(client, fakes):
    query = parse_qs(urlsplit(begin(client)).query)
    assert query["response_type"] == ["code"]
    assert query["scope"] == ["openid profile"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["bot_prompt"] == ["normal"]
    assert query["redirect_uri"] == [CALLBACK]
    assert len(query["state"][0]) >= 32
    assert len(query["nonce"][0]) >= 32
    assert query["state"] != query["nonce"]


def test_a_first_sign_in_makes_an_account_that_is_signed_in(app, client, fakes):
    answer = sign_in_with_line(client, fakes, add_friend=True)
    assert answer.headers["Location"] == "/login/line/new"
    page = client.get("/login/line/new").get_data(as_text=True)
    assert "Alice" in page
    assert client.post("/login/line/new").status_code == 302
    user = user_by_line(app, ALICE)
    assert user is not None
    assert user.password_hash is None
    assert user.line_friend is True
    assert client.get("/settings").status_code == 200  # signed in
    assert len(fakes.login.token_requests) == 1
    # LINE's access token served the friendship question only: revoked, kept nowhere.
    assert len(fakes.login.revoked) == 1
    assert fakes.login.access_tokens == {}

    # The next time, LINE signs the same account in straight away.
    client.post("/logout")
    fakes.login.friends.clear()
    answer = sign_in_with_line(client, fakes)
    assert answer.headers["Location"] == "/connections"
    assert user_by_line(app, ALICE).line_friend is False


def test_registration_closed_offers_only_linking(app, client, fakes):
    app.config["REGISTRATION_OPEN"] = False
    sign_in_with_line(client, fakes)
    page = client.get("/login/line/new").get_data(as_text=True)
    assert "Create an account with LINE" not in page
    client.post("/login/line/new")
    assert user_by_line(app, ALICE) is None


def test_a_sign_in_no_account_holds_links_to_the_password_account_signed_in_next(
    app, client, fakes
):
    with app.app_context():
        create_user("carol")
    sign_in_with_line(client, fakes, user_id=BOB)
    assert "link your LINE account" in client.get("/login").get_data(as_text=True)
    answer = client.post("/login", data={"username": "carol", "password": PASSWORD})
    assert answer.headers["Location"] == "/settings"
    assert user_by_line(app, BOB).username == "carol"
    assert "linked to LINE" in client.get("/settings").get_data(as_text=True)


def test_settings_links_and_an_id_linked_elsewhere_is_refused(app, client, fakes, alice):
    login(client)
    callback = fakes.approve(begin(client, "/settings/line/link"))
    assert client.get(callback_path(callback)).headers["Location"] == "/settings"
    assert user_by_line(app, ALICE).id == alice

    with app.app_context():
        create_user("bob")
    other = app.test_client()
    login(other, "bob")
    callback = fakes.approve(begin(other, "/settings/line/link"))
    other.get(callback_path(callback))
    assert "already linked to another account" in other.get("/settings").get_data(as_text=True)
    assert user_by_line(app, ALICE).id == alice


def test_a_link_started_by_one_account_cannot_be_finished_by_another(app, client, fakes, alice):
    login(client)
    callback = fakes.approve(begin(client, "/settings/line/link"))
    client.post("/logout")
    with app.app_context():
        create_user("bob")
    login(client, "bob")
    # bob's fresh session does not hold alice's state: refused before any token request.
    assert client.get(callback_path(callback)).status_code == 400
    assert fakes.login.token_requests == []
    assert user_by_line(app, ALICE) is None


def test_unlinking_never_removes_the_last_way_to_sign_in(app, client, fakes):
    sign_in_with_line(client, fakes)
    client.post("/login/line/new")
    client.post("/settings/line/unlink")
    assert "set a password" in client.get("/settings").get_data(as_text=True).lower()
    assert user_by_line(app, ALICE) is not None

    answer = client.post(
        "/settings/password",
        data={"new_password": "a new password 1", "confirm_password": "a new password 1"},
    )
    assert answer.status_code == 302
    client.post("/settings/line/unlink")
    assert user_by_line(app, ALICE) is None


# ------------------------------------------------------------------------------ refusals


def state_of(authorize_url: str) -> str:
    return parse_qs(urlsplit(authorize_url).query)["state"][0]


def refused(answer) -> str:
    assert answer.status_code == 400
    return answer.get_data(as_text=True)


def test_no_state_or_a_wrong_state_is_refused_without_a_token_request(client, fakes):
    callback = callback_path(fakes.approve(begin(client)))
    code = parse_qs(urlsplit(callback).query)["code"][0]
    assert "no state" in refused(client.get("/login/line/callback?" + urlencode({"code": code})))
    wrong = urlencode({"code": code, "state": "x" * 43})
    assert "not belong" in refused(client.get("/login/line/callback?" + wrong))
    assert fakes.login.token_requests == []
    assert client.get("/settings").status_code == 302  # not signed in


def test_a_state_from_another_browser_is_refused_without_a_token_request(app, client, fakes):
    callback = callback_path(fakes.approve(begin(client)))
    assert "not belong" in refused(app.test_client().get(callback))
    assert fakes.login.token_requests == []


def test_an_expired_state_is_refused_without_a_token_request(app, client, fakes):
    callback = callback_path(fakes.approve(begin(client)))
    with app.app_context():
        db.session.execute(
            update(LineLoginState).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    assert "expired" in refused(client.get(callback))
    assert fakes.login.token_requests == []


def test_a_reused_state_is_refused_without_another_token_request(client, fakes):
    callback = callback_path(fakes.approve(begin(client)))
    assert client.get(callback).status_code == 302
    client.post("/logout")  # the spent state stays refused whatever the session holds
    assert refused(client.get(callback))
    assert len(fakes.login.token_requests) == 1


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"nonce": "another-nonce"}, None),
        ({"aud": "1999999999"}, None),
        ({"iss": "https://evil.example"}, None),
        ({"exp": 1_000_000_000, "iat": 999_990_000}, None),
        ({"iat": 4_000_000_000, "exp": 4_000_003_600}, None),
        ({"nonce": None}, None),
        ({}, "another-secret-of-someone-else-000"),
    ],
    ids=["nonce", "aud", "iss", "expired", "iat-future", "no-nonce", "tampered"],
)
def test_an_id_token_that_does_not_verify_is_refused(app, client, fakes, changes, key):
    fakes.login.id_token_changes = changes
    fakes.login.id_token_key = key
    page = refused(sign_in_with_line(client, fakes))
    assert "could not be verified" in page
    assert user_by_line(app, ALICE) is None
    assert "No LINE sign-in is waiting" in client.get("/login/line/new").get_data(as_text=True)


def test_access_denied_and_other_errors_get_a_friendly_page(client, fakes):
    answer = client.get(callback_path(fakes.approve(begin(client), cancel=True)))
    assert answer.status_code == 200
    assert "You cancelled on LINE" in answer.get_data(as_text=True)

    state = state_of(begin(client))
    query = urlencode({"error": "server_error", "error_description": "x", "state": state})
    answer = client.get("/login/line/callback?" + query)
    assert "server_error" in answer.get_data(as_text=True)
    assert fakes.login.token_requests == []
    # The state is spent by the error answer too.
    assert refused(client.get("/login/line/callback?" + urlencode({"code": "c", "state": state})))


def test_the_sign_in_page_offers_line_only_when_configured(app, client):
    assert "Sign in with LINE" in client.get("/login").get_data(as_text=True)
    app.config["LINE_LOGIN_CHANNEL_ID"] = None
    assert "Sign in with LINE" not in client.get("/login").get_data(as_text=True)
    assert client.post("/login/line").status_code == 404


def test_the_new_account_page_speaks_the_visitors_language(client, fakes):
    sign_in_with_line(client, fakes)
    ja = client.get("/login/line/new", headers={"Accept-Language": "ja"}).get_data(as_text=True)
    assert "LINE でアカウントを作成" in ja
    zh = client.get("/login/line/new", headers={"Accept-Language": "zh-TW"})
    assert "用 LINE 建立帳號" in zh.get_data(as_text=True)


def test_friendship_from_the_endpoint_else_from_the_callback(app, client, fakes):
    fakes.login.friends.add(ALICE)
    sign_in_with_line(client, fakes)  # already a friend: friendship_status_changed=false
    client.post("/login/line/new")
    assert user_by_line(app, ALICE).line_friend is True

    client.post("/logout")
    fakes.login.friends.clear()
    fakes.login.friendship_down = True
    sign_in_with_line(client, fakes, add_friend=True)  # the endpoint fails; the callback says
    assert user_by_line(app, ALICE).line_friend is True
    client.post("/logout")
    sign_in_with_line(client, fakes)  # nothing known either way: the flag stays as it was
    assert user_by_line(app, ALICE).line_friend is True


def test_a_bot_prompt_other_than_normal_or_aggressive_stops_the_app(tmp_path):
    from notify_site import create_app
    from notify_site.config import ConfigError

    with pytest.raises(ConfigError, match="LINE_LOGIN_BOT_PROMPT"):
        create_app(make_test_config(tmp_path, LINE_LOGIN_BOT_PROMPT="always"))


def test_without_bot_prompt_no_friendship_is_asked(app, client, fakes):
    app.config["LINE_LOGIN_BOT_PROMPT"] = None
    assert "bot_prompt" not in begin(client)
    sign_in_with_line(client, fakes)
    client.post("/login/line/new")
    assert user_by_line(app, ALICE).line_friend is None


def test_signing_in_with_line_goes_on_to_the_page_that_asked(app, client, fakes):
    sign_in_with_line(client, fakes)
    client.post("/login/line/new")
    client.post("/logout")
    url = fakes.approve(begin(client, "/login/line?next=/relay/my/"))
    assert client.get(callback_path(url)).headers["Location"] == "/relay/my/"
    client.post("/logout")
    url = fakes.approve(begin(client, "/login/line?next=https://evil.example/"))
    assert client.get(callback_path(url)).headers["Location"] == "/connections"


def test_a_disabled_account_cannot_sign_in_with_line(app, client, fakes):
    sign_in_with_line(client, fakes)
    client.post("/login/line/new")
    client.post("/logout")
    with app.app_context():
        user = db.session.scalar(select(User).where(User.line_user_id == ALICE))
        user.disabled_at = utcnow()
        db.session.commit()
    answer = sign_in_with_line(client, fakes)
    assert answer.status_code == 403
    assert "disabled" in answer.get_data(as_text=True)
    assert client.get("/settings").status_code == 302


def test_no_secret_reaches_the_pages_or_the_log(app, client, fakes, caplog):
    fakes.login.id_token_changes = {"aud": "1999999999"}
    authorize = begin(client)
    callback = callback_path(fakes.approve(authorize))
    page = client.get(callback).get_data(as_text=True)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    # The site's own log (the fake's access log is LINE's side).
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("notify_site"))
    for secret in (fakes.login.channel_secret, code, state_of(authorize)):
        assert secret not in page
        assert secret not in ours
    assert "LINE Login refused" in ours


def test_the_callbacks_code_and_state_are_kept_out_of_access_logs():
    from notify_site.log_redaction import redact

    line = '127.0.0.1 - - "GET /login/line/callback?code=c0de&state=s7ate HTTP/1.1" 302 -'
    assert redact(line) == '127.0.0.1 - - "GET /login/line/callback?[secret] HTTP/1.1" 302 -'


def test_linking_is_in_the_admins_audit_and_a_line_only_account_confirms_with_a_password(
    app, client, fakes
):
    from notify_site.models import AccountEvent

    sign_in_with_line(client, fakes)
    client.post("/login/line/new")
    deleted = client.post("/settings/delete-account", data={"password": "anything at all"})
    assert deleted.status_code == 400
    assert "no password yet" in deleted.get_data(as_text=True)
    client.post(
        "/settings/password",
        data={"new_password": "a new password 1", "confirm_password": "a new password 1"},
    )
    client.post("/settings/line/unlink")
    with app.app_context():
        actions = db.session.scalars(select(AccountEvent.action).order_by(AccountEvent.id)).all()
    assert actions == ["created_with_line", "password_changed", "line_unlinked"]


def test_flows_a_day_past_their_expiry_are_cleared_when_another_starts(app, client, fakes):
    begin(client)
    with app.app_context():
        db.session.execute(update(LineLoginState).values(expires_at=utcnow() - timedelta(days=2)))
        db.session.commit()
    begin(client)
    with app.app_context():
        assert len(db.session.scalars(select(LineLoginState)).all()) == 1
