"""notify_site.notify_oauth: the Notify server's OAuth endpoints, through the same transport
as the API client (answered by ``responses``; nothing else may go out)."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from notify_site.notify_client import NetworkError, ServerError
from notify_site.notify_oauth import CodeRefusedError, NotifyOAuthClient, TokenAnswerError

BOT = "https://notify-bot.test"
TOKEN_URL = BOT + "/oauth/token"
REDIRECT_URI = "https://site.test/callback"
SECRET = "client-SECRET-5c1e9a"
CODE = "code-7b2f4d"
VERIFIER = "verifier-" + "v" * 43


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


@pytest.fixture
def oauth():
    client = NotifyOAuthClient(BOT, "the-client", SECRET, timeout=3.5)
    yield client
    client.close()


def exchange(oauth):
    return oauth.exchange_code(CODE, REDIRECT_URI, VERIFIER)


def test_the_authorize_url_has_state_pkce_s256_and_form_post(oauth):
    first, second = oauth.authorization(REDIRECT_URI), oauth.authorization(REDIRECT_URI)
    url = urlsplit(first.url)
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == BOT + "/oauth/authorize"
    challenge = base64.urlsafe_b64encode(hashlib.sha256(first.code_verifier.encode()).digest())
    assert params == {
        "response_type": "code",
        "client_id": "the-client",
        "redirect_uri": REDIRECT_URI,
        "scope": "notify",
        "state": first.state,
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
        "response_mode": "form_post",
    }
    assert len(first.state) >= 20
    assert len(first.code_verifier) >= 43
    assert first.state != second.state
    assert first.code_verifier != second.code_verifier
    assert SECRET not in first.url


def test_the_code_is_exchanged_in_the_form_body_with_the_clients_timeout(mocked, oauth):
    call = mocked.post(TOKEN_URL, json={"access_token": "the-token", "token_type": "Bearer"})
    seen = {}
    real_send = requests.Session.send

    def send(session, request, **kwargs):
        seen.update(kwargs)
        return real_send(session, request, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(requests.Session, "send", send)
        assert exchange(oauth) == "the-token"
    assert call.call_count == 1
    sent = parse_qs(mocked.calls[0].request.body)
    assert sent == {
        "grant_type": ["authorization_code"],
        "code": [CODE],
        "redirect_uri": [REDIRECT_URI],
        "client_id": ["the-client"],
        "client_secret": [SECRET],
        "code_verifier": [VERIFIER],
    }
    assert seen["timeout"] == 3.5
    assert seen["allow_redirects"] is False


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (400, {"error": "invalid_grant", "error_description": "expired"}, "invalid_grant"),
        (401, {"error": "invalid_client"}, "invalid_client"),
        # LINE answered a bad code with its own shape and no OAuth `error`.
        (400, {"status": 400, "message": "Invalid code"}, "Invalid code"),
    ],
)
def test_a_refused_code_is_a_typed_error_with_the_servers_reason(
    mocked, oauth, status, body, reason
):
    mocked.post(TOKEN_URL, json=body, status=status)
    with pytest.raises(CodeRefusedError) as refused:
        exchange(oauth)
    assert refused.value.message == reason
    assert refused.value.status_code == status


def test_a_reason_that_echoes_a_secret_is_redacted(mocked, oauth):
    mocked.post(TOKEN_URL, json={"message": f"bad code {CODE} for {SECRET}"}, status=400)
    with pytest.raises(CodeRefusedError) as refused:
        exchange(oauth)
    assert CODE not in str(refused.value)
    assert SECRET not in str(refused.value)


@pytest.mark.parametrize(
    ("answer", "without_token"),
    [({"json": {"token_type": "Bearer"}}, True), ({"body": "<html>ok</html>"}, False)],
)
def test_a_success_without_a_usable_token_says_which(mocked, oauth, answer, without_token):
    mocked.post(TOKEN_URL, status=200, **answer)
    with pytest.raises(TokenAnswerError) as error:
        exchange(oauth)
    assert error.value.without_token is without_token


def test_a_server_error_is_a_server_error(mocked, oauth):
    mocked.post(TOKEN_URL, body="<html>Bad gateway</html>", status=502)
    with pytest.raises(ServerError) as error:
        exchange(oauth)
    assert not isinstance(error.value, TokenAnswerError)
    assert error.value.status_code == 502


def test_a_redirect_is_not_followed(mocked, oauth):
    mocked.post(TOKEN_URL, status=302, headers={"Location": "https://elsewhere.test/steal"})
    with pytest.raises(ServerError) as error:
        exchange(oauth)
    assert error.value.status_code == 302
    assert len(mocked.calls) == 1


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ReadTimeout(f"read timed out sending {SECRET}"),
        requests.exceptions.ConnectionError(f"refused: code={CODE}"),
    ],
)
def test_no_answer_is_a_network_error_without_the_secrets(mocked, oauth, failure):
    mocked.post(TOKEN_URL, body=failure)
    with pytest.raises(NetworkError) as error:
        exchange(oauth)
    assert error.value.status_code is None
    text = f"{error.value} {error.value!r}"
    assert SECRET not in text
    assert CODE not in text
    assert TOKEN_URL in text


def test_the_client_secret_is_not_in_its_repr(oauth):
    assert SECRET not in repr(oauth)
