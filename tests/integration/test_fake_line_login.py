"""The fake LINE Login (tests/fakes/line_login.py) behaves as LINE documents, over real HTTP:
the authorize checks and consent step, a code exchanged once with PKCE, an HS256 ID token
signed with the channel secret, verify, profile, friendship, and the Messaging API's own
requests still reaching the fake Messaging API on the same port."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import OctKey

from tests.fakes.line_api import STATIC_TOKEN
from tests.fakes.line_login import (
    ALICE,
    ISSUER,
    LOGIN_CHANNEL_ID,
    LOGIN_CHANNEL_SECRET,
    serve_fakes,
)

CALLBACK = "https://site.example/login/line/callback"
VERIFIER = "v" * 50


@pytest.fixture
def fakes():
    yield from serve_fakes()


def authorize_url(fakes, **changes) -> str:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest())
    params = {
        "response_type": "code",
        "client_id": LOGIN_CHANNEL_ID,
        "redirect_uri": CALLBACK,
        "state": "s1",
        "scope": "openid profile",
        "nonce": "n1",
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
        "bot_prompt": "normal",
    }
    params.update(changes)
    return f"{fakes.url}/oauth2/v2.1/authorize?" + urlencode(
        {k: v for k, v in params.items() if v is not None}
    )


def exchange(fakes, code: str, verifier: str = VERIFIER) -> requests.Response:
    return requests.post(
        fakes.url + "/oauth2/v2.1/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "client_id": LOGIN_CHANNEL_ID,
            "client_secret": LOGIN_CHANNEL_SECRET,
            "code_verifier": verifier,
        },
        timeout=10,
    )


def test_consent_then_a_code_exchanged_once_for_an_hs256_id_token(fakes):
    fakes.login.redirect_uris.add(CALLBACK)
    callback = fakes.approve(authorize_url(fakes), add_friend=True)
    query = parse_qs(urlsplit(callback).query)
    assert callback.startswith(CALLBACK)
    assert query["state"] == ["s1"]
    assert query["friendship_status_changed"] == ["true"]

    answer = exchange(fakes, query["code"][0])
    assert answer.status_code == 200
    body = answer.json()
    claims = jwt.decode(body["id_token"], OctKey.import_key(LOGIN_CHANNEL_SECRET)).claims
    assert claims["iss"] == ISSUER
    assert claims["sub"] == ALICE
    assert claims["aud"] == LOGIN_CHANNEL_ID
    assert claims["nonce"] == "n1"
    assert claims["exp"] > claims["iat"]

    assert exchange(fakes, query["code"][0]).json()["error"] == "invalid_grant"
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    profile = requests.get(fakes.url + "/v2/profile", headers=bearer, timeout=10).json()
    assert profile == {"userId": ALICE, "displayName": "Alice"}
    status = requests.get(fakes.url + "/friendship/v1/status", headers=bearer, timeout=10)
    assert status.json() == {"friendFlag": True}
    verified = requests.post(
        fakes.url + "/oauth2/v2.1/verify",
        data={"id_token": body["id_token"], "client_id": LOGIN_CHANNEL_ID, "nonce": "n1"},
        timeout=10,
    )
    assert verified.json()["sub"] == ALICE
    assert len(fakes.login.token_requests) == 2


def test_a_wrong_verifier_and_a_cancel_and_an_unregistered_callback(fakes):
    fakes.login.redirect_uris.add(CALLBACK)
    code = parse_qs(urlsplit(fakes.approve(authorize_url(fakes))).query)["code"][0]
    assert exchange(fakes, code, verifier="w" * 50).json()["error"] == "invalid_grant"

    cancelled = parse_qs(urlsplit(fakes.approve(authorize_url(fakes), cancel=True)).query)
    assert cancelled["error"] == ["access_denied"]
    assert cancelled["state"] == ["s1"]

    other = requests.get(authorize_url(fakes, redirect_uri="https://evil.example/cb"), timeout=10)
    assert other.status_code == 400
    assert "registered" in other.text
    assert requests.get(authorize_url(fakes, state=None), timeout=10).status_code == 400


def test_the_messaging_api_still_answers_on_the_same_port(fakes):
    fakes.messaging.profiles["U" + "1" * 32] = "Carol"
    answer = requests.get(
        f"{fakes.url}/v2/bot/profile/{'U' + '1' * 32}",
        headers={"Authorization": f"Bearer {STATIC_TOKEN}"},
        timeout=10,
    )
    assert answer.json()["displayName"] == "Carol"
    assert fakes.login.token_requests == []
