"""POST /relay/oauth/token: the code exchange and every way it can be refused."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.relay.models import RelayAccessToken, RelayAuthorizationCode
from notify_site.relay.secrets_util import hash_secret

URL = "/relay/oauth/token"


@pytest.fixture
def exchange(client, registered):
    """POST the token request for ``code``; keyword arguments override fields (None drops)."""

    def post(code_value: str, **overrides):
        data = {
            "grant_type": "authorization_code",
            "code": code_value,
            "redirect_uri": registered.redirect_uri,
            "client_id": registered.client_id,
            "client_secret": registered.client_secret,
        }
        data.update(overrides)
        return client.post(URL, data={k: v for k, v in data.items() if v is not None})

    return post


def tokens(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(RelayAccessToken))


def test_a_good_code_is_exchanged_for_a_token_stored_only_as_its_hash(app, get_code, exchange):
    code = get_code(kind="GROUP", name="Family")
    response = exchange(code)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert set(body) == {"access_token"}
    access_token = body["access_token"]
    assert len(access_token) >= 43
    with app.app_context():
        row = db.session.scalar(select(RelayAccessToken))
        assert row.token_hash == hash_secret(access_token)
        assert access_token not in repr(row.__dict__)
        assert row.chat.name == "Family"
        used = db.session.scalar(select(RelayAuthorizationCode.used_at))
        assert used is not None


def test_a_code_is_single_use(app, get_code, exchange):
    code = get_code()
    assert exchange(code).status_code == 200
    again = exchange(code)
    assert again.status_code == 400
    assert again.get_json() == {"status": 400, "message": "code: already used"}
    assert tokens(app) == 1


def test_an_expired_code_is_refused(app, get_code, exchange):
    code = get_code()
    with app.app_context():
        db.session.execute(
            update(RelayAuthorizationCode).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    response = exchange(code)
    assert response.status_code == 400
    assert response.get_json() == {"status": 400, "message": "code: expired"}
    assert tokens(app) == 0


def test_a_wrong_client_secret_is_refused(app, get_code, exchange):
    response = exchange(get_code(), client_secret="not-the-secret")
    assert response.status_code == 400
    assert response.get_json()["message"] == (
        "client_id or client_secret: invalid client credentials"
    )
    assert tokens(app) == 0


def test_an_unknown_client_is_refused(get_code, exchange):
    response = exchange(get_code(), client_id="nobody")
    assert response.status_code == 400
    assert "invalid client credentials" in response.get_json()["message"]


def test_a_wrong_redirect_uri_is_refused(app, get_code, exchange):
    response = exchange(get_code(), redirect_uri="https://service.example/other")
    assert response.status_code == 400
    assert response.get_json()["message"] == (
        "redirect_uri: does not match the authorization request"
    )
    assert tokens(app) == 0


def test_a_code_issued_to_another_client_is_refused(app, register, get_code, exchange):
    other = register(name="Other", redirect_uri="https://other.example/cb")
    code = get_code(reg=other)
    # The right client's credentials, another client's code.
    response = exchange(code)
    assert response.status_code == 400
    assert response.get_json()["message"] == "code: invalid authorization code"
    # ... and that client's own credentials with its own redirect URI still work.
    ok = exchange(
        code,
        client_id=other.client_id,
        client_secret=other.client_secret,
        redirect_uri=other.redirect_uri,
    )
    assert ok.status_code == 200
    assert tokens(app) == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"grant_type": "client_credentials"}, "grant_type: must be authorization_code"),
        ({"grant_type": None}, "grant_type: must be authorization_code"),
        ({"code": None}, "code: required"),
        ({"redirect_uri": None}, "redirect_uri: required"),
        ({"client_id": None}, "client_id: required"),
        ({"client_secret": None}, "client_secret: required"),
    ],
)
def test_malformed_requests_name_the_field(exchange, overrides, message):
    response = exchange("some-code", **overrides)
    assert response.status_code == 400
    assert response.get_json() == {"status": 400, "message": message}


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_pkce_s256_is_verified_when_the_client_sent_a_challenge(get_code, exchange):
    verifier = "v" * 20 + "-._~" + "0123456789" * 3
    code = get_code(code_challenge=_s256(verifier), code_challenge_method="S256")
    missing = exchange(code)
    assert missing.status_code == 400
    assert missing.get_json()["message"].startswith("code_verifier: required")
    wrong = exchange(code, code_verifier="w" * 43)
    assert wrong.status_code == 400
    assert wrong.get_json()["message"] == "code_verifier: does not match the code_challenge"
    assert exchange(code, code_verifier=verifier).status_code == 200


def test_without_pkce_the_exchange_works_as_line_notifys_did(get_code, exchange):
    assert exchange(get_code()).status_code == 200


def test_a_code_verifier_for_a_code_without_a_challenge_is_refused(get_code, exchange):
    # The client used PKCE, the code was issued without a challenge: someone stripped it on the
    # way (the consent form carries it through the browser). RFC 9700 section 2.1.1.
    # get_code() posts the consent form without code_challenge.
    answer = exchange(get_code(), code_verifier="x" * 50)
    assert answer.status_code == 400
    assert answer.get_json()["message"] == (
        "code_verifier: the authorization request had no code_challenge (PKCE downgrade)"
    )


def test_a_code_stored_with_plain_is_never_exchanged(app, get_code, exchange):
    # A code issued before plain was refused (the relay stored the method it was given).
    verifier = "p" * 43
    code = get_code(code_challenge=_s256(verifier), code_challenge_method="S256")
    with app.app_context():
        db.session.execute(
            update(RelayAuthorizationCode).values(
                code_challenge=verifier, code_challenge_method="plain"
            )
        )
        db.session.commit()
    answer = exchange(code, code_verifier=verifier)
    assert answer.status_code == 400
    assert answer.get_json()["message"] == (
        "code: issued for a code_challenge_method other than S256"
    )


def test_a_body_over_the_size_limit_is_a_json_413(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = client.post(URL, data={"code": "x" * 2000})
    assert response.status_code == 413
    assert response.get_json() == {
        "status": 413,
        "message": "request body too large (the limit is 1000 bytes)",
    }
