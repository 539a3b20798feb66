"""The site as a Notify OAuth client, against a mocked Notify server (responses)."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from sqlalchemy import select

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.keyring import keyring
from notify_site.models import Connection, ConnectionStatus, OAuthState
from notify_site.services.connections import connection_context
from tests.conftest import make_test_config
from tests.factories import create_connection, create_user, login

BOT = "https://notify-bot.test"
API = "https://notify-api.test"
REDIRECT_URI = "https://site.test/callback"
TOKEN = "issued-access-token-canary-7f3a"
RATE_HEADERS = {
    "X-RateLimit-Limit": "1000",
    "X-RateLimit-Remaining": "999",
    "X-RateLimit-ImageLimit": "50",
    "X-RateLimit-ImageRemaining": "50",
    "X-RateLimit-Reset": "1893456000",
}


@pytest.fixture
def app_config(tmp_path):
    return make_test_config(
        tmp_path,
        NOTIFY_BOT_ORIGIN=BOT,
        NOTIFY_API_ORIGIN=API,
        NOTIFY_REDIRECT_URI=REDIRECT_URI,
    )


def start(client, label="Ops"):
    response = client.post("/connections", data={"label": label})
    assert response.status_code == 302
    url = urlsplit(response.headers["Location"])
    return url, {k: v[0] for k, v in parse_qs(url.query).items()}


def mock_server(mocked_http, *, token_status=200, status_status=200):
    token_call = mocked_http.post(
        BOT + "/oauth/token",
        json={"access_token": TOKEN} if token_status == 200 else {"status": 400, "message": "bad"},
        status=token_status,
    )
    status_call = mocked_http.get(
        API + "/api/status",
        json={"status": 200, "message": "ok", "targetType": "GROUP", "target": "Family"},
        status=status_status,
        headers=RATE_HEADERS,
    )
    return token_call, status_call


def test_connect_redirects_to_authorize_with_state_pkce_and_form_post(signed_in, app):
    url, params = start(signed_in)
    assert f"{url.scheme}://{url.netloc}{url.path}" == BOT + "/oauth/authorize"
    assert params["response_type"] == "code"
    assert params["client_id"] == "test-client"
    assert params["redirect_uri"] == REDIRECT_URI
    assert params["scope"] == "notify"
    assert params["response_mode"] == "form_post"
    assert params["code_challenge_method"] == "S256"
    assert len(params["state"]) >= 20
    with app.app_context():
        row = db.session.scalar(select(OAuthState))
        verifier = keyring().decrypt(
            row.verifier_ciphertext, context=f"oauth-state:{row.state_hash}"
        )
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert params["code_challenge"] == challenge.decode()
    # The state itself is not stored, only its hash.
    assert row.state_hash == hashlib.sha256(params["state"].encode()).hexdigest()


def test_form_post_callback_exchanges_code_once_and_stores_encrypted_token(
    signed_in, app, mocked_http
):
    _, params = start(signed_in)
    token_call, status_call = mock_server(mocked_http)
    response = signed_in.post("/callback", data={"code": "the-code", "state": params["state"]})
    assert response.status_code == 302
    assert response.headers["Location"] == "/connections"

    assert token_call.call_count == 1
    sent = parse_qs(mocked_http.calls[0].request.body)
    assert sent["grant_type"] == ["authorization_code"]
    assert sent["code"] == ["the-code"]
    assert sent["redirect_uri"] == [REDIRECT_URI]
    assert sent["client_id"] == ["test-client"]
    assert sent["client_secret"] == ["test-client-secret"]
    assert len(sent["code_verifier"][0]) >= 43
    assert status_call.call_count == 1
    assert mocked_http.calls[1].request.headers["Authorization"] == f"Bearer {TOKEN}"

    with app.app_context():
        connection = db.session.scalar(select(Connection))
        assert connection.label == "Ops"
        assert connection.target_name == "Family"
        assert connection.target_type == "GROUP"
        assert connection.status == ConnectionStatus.ACTIVE
        assert connection.rate_limit == 1000
        assert connection.rate_remaining == 999
        assert connection.rate_image_remaining == 50
        assert int(connection.rate_reset_at.timestamp()) == 1893456000
        assert connection.rate_checked_by == "status"
        assert TOKEN not in connection.token_ciphertext
        assert (
            keyring().decrypt(
                connection.token_ciphertext, context=connection_context(connection.id)
            )
            == TOKEN
        )

    page = signed_in.get("/connections").get_data(as_text=True)
    assert "Family" in page
    assert "999 / 1,000" in page  # figures in the locale's format (issue 8)
    assert TOKEN not in page


def test_query_string_callback_works_too(signed_in, app, mocked_http):
    _, params = start(signed_in)
    token_call, _ = mock_server(mocked_http)
    response = signed_in.get(f"/callback?code=c1&state={params['state']}")
    assert response.status_code == 302
    assert token_call.call_count == 1
    with app.app_context():
        assert db.session.scalar(select(Connection.target_name)) == "Family"


@pytest.mark.parametrize("state", [None, "", "not-the-state"])
def test_missing_or_wrong_state_is_400_and_no_token_request(signed_in, mocked_http, app, state):
    start(signed_in)
    token_call, _ = mock_server(mocked_http)
    data = {"code": "c1"} if state is None else {"code": "c1", "state": state}
    response = signed_in.post("/callback", data=data)
    assert response.status_code == 400
    assert token_call.call_count == 0
    with app.app_context():
        assert db.session.scalar(select(Connection)) is None


def test_reused_state_is_400_and_no_second_token_request(signed_in, mocked_http):
    _, params = start(signed_in)
    token_call, _ = mock_server(mocked_http)
    assert (
        signed_in.post("/callback", data={"code": "c1", "state": params["state"]}).status_code
        == 302
    )
    again = signed_in.post("/callback", data={"code": "c1", "state": params["state"]})
    assert again.status_code == 400
    assert token_call.call_count == 1


def test_state_from_another_browser_is_400(app, signed_in, mocked_http):
    _, params = start(signed_in)
    token_call, _ = mock_server(mocked_http)
    other = app.test_client()
    login(other)  # same account, other browser: its session never saw this state
    assert other.post("/callback", data={"code": "c1", "state": params["state"]}).status_code == 400
    assert token_call.call_count == 0


def test_expired_state_is_400_and_no_token_request(signed_in, app, mocked_http):
    _, params = start(signed_in)
    with app.app_context():
        row = db.session.scalar(select(OAuthState))
        row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    token_call, _ = mock_server(mocked_http)
    assert (
        signed_in.post("/callback", data={"code": "c", "state": params["state"]}).status_code == 400
    )
    assert token_call.call_count == 0


def test_state_expires_within_an_hour(signed_in, app):
    _, params = start(signed_in)
    with app.app_context():
        row = db.session.scalar(select(OAuthState))
        assert row.expires_at - row.created_at <= timedelta(hours=1)


def test_access_denied_shows_friendly_message_and_spends_state(signed_in, mocked_http):
    _, params = start(signed_in)
    token_call, _ = mock_server(mocked_http)
    response = signed_in.post(
        "/callback",
        data={
            "error": "access_denied",
            "error_description": "user cancelled",
            "state": params["state"],
        },
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "Not connected" in response.get_data(as_text=True)
    assert token_call.call_count == 0
    again = signed_in.post("/callback", data={"code": "c", "state": params["state"]})
    assert again.status_code == 400


def test_refused_code_is_reported_and_nothing_stored(signed_in, app, mocked_http):
    _, params = start(signed_in)
    mock_server(mocked_http, token_status=400)
    response = signed_in.post(
        "/callback", data={"code": "bad", "state": params["state"]}, follow_redirects=True
    )
    assert "refused the authorization code" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Connection)) is None


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ({"body": requests.exceptions.ReadTimeout("read timed out")}, "did not answer the code"),
        ({"status": 503, "body": "<html>down</html>"}, "did not answer the code"),
        ({"status": 200, "body": "<html>ok</html>"}, "token answer was not understood"),
        ({"status": 200, "json": {"token_type": "Bearer"}}, "answered without an access token"),
    ],
)
def test_a_failed_code_exchange_says_why_and_stores_nothing(
    signed_in, app, mocked_http, answer, said
):
    """The exchange goes through notify_oauth's typed errors; each is worded for people."""
    _, params = start(signed_in)
    token_call = mocked_http.post(BOT + "/oauth/token", **answer)
    response = signed_in.post(
        "/callback", data={"code": "c1", "state": params["state"]}, follow_redirects=True
    )
    assert said in response.get_data(as_text=True)
    assert token_call.call_count == 1
    with app.app_context():
        assert db.session.scalar(select(Connection)) is None


def test_cross_site_form_post_without_session_is_bounced_without_setting_a_cookie(app, mocked_http):
    token_call, _ = mock_server(mocked_http)
    anonymous = app.test_client()
    response = anonymous.post("/callback", data={"code": "c1", "state": "s1"})
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    body = response.get_data(as_text=True)
    assert 'action="/callback"' in body
    assert 'name="code" value="c1"' in body
    assert 'name="state" value="s1"' in body
    assert 'name="bounced"' in body
    assert "<script>" not in body
    assert "js/autosubmit.js" in body
    assert token_call.call_count == 0
    # The bounced re-post still has no session: refused, and still no token request.
    again = anonymous.post("/callback", data={"code": "c1", "state": "s1", "bounced": "1"})
    assert again.status_code == 400
    assert token_call.call_count == 0


def test_forged_host_header_does_not_change_redirect_uri(app, alice):
    from notify_site.models import User
    from notify_site.services.connecting import start_connect

    with app.test_request_context("/connections", base_url="http://evil.example"):
        pending = start_connect(db.session.get(User, alice), "Ops")
    params = parse_qs(urlsplit(pending.authorize_url).query)
    assert params["redirect_uri"] == [REDIRECT_URI]
    assert "evil.example" not in pending.authorize_url


def test_duplicate_active_label_is_refused_before_leaving_the_site(signed_in, app, alice):
    with app.app_context():
        from notify_site.models import User

        create_connection(db.session.get(User, alice), label="Ops")
    response = signed_in.post("/connections", data={"label": "Ops"})
    assert response.status_code == 400
    assert "already have a connection called" in response.get_data(as_text=True)


def test_empty_label_is_refused_with_message(signed_in, app):
    response = signed_in.post("/connections", data={"label": "   "})
    assert response.status_code == 400
    assert "This field is required" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(OAuthState)) is None


def _connection(app, owner_id, **kwargs):
    with app.app_context():
        from notify_site.models import User

        return create_connection(db.session.get(User, owner_id), token=TOKEN, **kwargs).id


@pytest.mark.parametrize("answer", [200, 401])
def test_revoke_calls_the_server_and_marks_revoked(signed_in, app, alice, mocked_http, answer):
    connection_id = _connection(app, alice)
    call = mocked_http.post(
        API + "/api/revoke", json={"status": answer, "message": "x"}, status=answer
    )
    response = signed_in.post(f"/connections/{connection_id}/revoke")
    assert response.status_code == 302
    assert call.call_count == 1
    assert mocked_http.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"
    with app.app_context():
        connection = db.session.get(Connection, connection_id)
        assert connection.status == ConnectionStatus.REVOKED
        assert connection.token_ciphertext == ""


def test_revoke_keeps_connection_when_server_unreachable(signed_in, app, alice, mocked_http):
    connection_id = _connection(app, alice)
    mocked_http.post(API + "/api/revoke", body=responses.ConnectionError("down"))
    response = signed_in.post(f"/connections/{connection_id}/revoke", follow_redirects=True)
    assert "still connected" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Connection, connection_id).status == ConnectionStatus.ACTIVE


def test_refresh_updates_target_and_snapshot(signed_in, app, alice, mocked_http):
    connection_id = _connection(app, alice, target_name=None, target_type=None)
    mock_server(mocked_http)
    response = signed_in.post(f"/connections/{connection_id}/refresh", follow_redirects=True)
    assert "999 calls left" in response.get_data(as_text=True)
    with app.app_context():
        connection = db.session.get(Connection, connection_id)
        assert (connection.target_name, connection.target_type) == ("Family", "GROUP")


def test_refresh_with_dead_token_marks_revoked(signed_in, app, alice, mocked_http):
    connection_id = _connection(app, alice)
    mocked_http.get(API + "/api/status", json={"status": 401, "message": "Invalid"}, status=401)
    signed_in.post(f"/connections/{connection_id}/refresh")
    with app.app_context():
        assert db.session.get(Connection, connection_id).status == ConnectionStatus.REVOKED


def test_someone_elses_connection_is_404(app, client, mocked_http):
    with app.app_context():
        owner = create_user("owner")
        create_user("bob")
        connection_id = create_connection(owner, token=TOKEN).id
    login(client, "bob")
    assert client.post(f"/connections/{connection_id}/revoke").status_code == 404
    assert client.post(f"/connections/{connection_id}/refresh").status_code == 404
    assert len(mocked_http.calls) == 0
