"""v2.1 channel access tokens issued by the relay, ``relay line-check``, the admin page and
the channel configuration's checks (against the fake Messaging API)."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import func, select

from notify_site import create_app, seams
from notify_site.config import ConfigError
from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.relay.line import channel, push
from notify_site.relay.models import RelayLineChannel, RelayLineToken
from tests.conftest import init_database, make_test_config
from tests.factories import PASSWORD, create_user
from tests.fakes.line_api import CHANNEL_ID, channel_config

TOKEN_EXP = 7 * 24 * 3600
RENEW_BEFORE = 24 * 3600


@pytest.fixture(scope="module")
def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "test-kid-1", "alg": "RS256"})


@pytest.fixture
def app_config(tmp_path, fake_line, rsa_key):
    fake_line.state.public_jwk = rsa_key.as_dict(private=False)
    return make_test_config(
        tmp_path,
        **channel_config(
            fake_line,
            "https://relay.example/relay",
            RELAY_LINE_CHANNEL_ACCESS_TOKEN=None,
            RELAY_LINE_PRIVATE_KEY_JWK=json.dumps(rsa_key.as_dict(private=True)),
            RELAY_LINE_TOKEN_EXP=TOKEN_EXP,
            RELAY_LINE_TOKEN_RENEW_BEFORE=RENEW_BEFORE,
        ),
    )


def test_the_relay_issues_a_v21_token_from_a_signed_assertion(app, fake_line, rsa_key):
    with app.app_context():
        token = channel.access_token()
        (row,) = db.session.scalars(select(RelayLineToken)).all()
        assert token not in row.token_ciphertext
        assert row.key_id == "kid-1"
    assert token == fake_line.state.issued[0]
    (call,) = fake_line.state.calls_to("/oauth2/v2.1/token")
    assert call.form["grant_type"] == "client_credentials"
    assert call.form["client_assertion_type"] == (
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    )
    public = RSAKey.import_key(rsa_key.as_dict(private=False))
    decoded = jwt.decode(call.form["client_assertion"], public)
    assert decoded.header == {"alg": "RS256", "typ": "JWT", "kid": "test-kid-1"}
    claims = decoded.claims
    assert claims["iss"] == claims["sub"] == CHANNEL_ID
    assert claims["aud"] == "https://api.line.me/"
    assert claims["token_exp"] == TOKEN_EXP
    assert 0 < claims["exp"] - time.time() <= 30 * 60
    # Signed with that key and no other: another key's public half does not verify it.
    other = RSAKey.generate_key(2048, parameters={"kid": "x"})
    with pytest.raises(Exception, match="signature"):
        jwt.decode(call.form["client_assertion"], RSAKey.import_key(other.as_dict(private=False)))


def test_the_token_is_reused_then_reissued_before_expiry_and_the_old_one_revoked(
    app,
    fake_line,
):
    with app.app_context():
        first = channel.access_token()
        assert channel.access_token() == first
        assert len(fake_line.state.issued) == 1
        expires_at = db.session.scalar(select(RelayLineToken.expires_at))
        almost = expires_at - timedelta(seconds=RENEW_BEFORE - 60)
        second = channel.access_token(now=almost)
        assert second != first
        old, new = db.session.scalars(select(RelayLineToken).order_by(RelayLineToken.id)).all()
        assert old.revoked_at is not None
        assert old.token_ciphertext == ""
        assert new.revoked_at is None
    assert fake_line.state.revoked == [first]
    (revoke,) = fake_line.state.calls_to("/oauth2/v2.1/revoke")
    assert revoke.form["client_id"] == CHANNEL_ID
    assert first not in fake_line.state.valid_tokens
    assert second in fake_line.state.valid_tokens


def test_a_refused_issue_is_a_clear_error_without_secrets(app, fake_line):
    fake_line.state.fail_next("/oauth2/v2.1/token", 400)
    with app.app_context(), pytest.raises(channel.ChannelError) as caught:
        channel.access_token()
    assert "HTTP 400" in str(caught.value)
    assert "-----" not in str(caught.value)
    assert '"d"' not in str(caught.value)


def test_line_check_prints_the_bot_and_the_quota(app, fake_line):
    fake_line.state.quota = 5000
    fake_line.state.consumption = 42
    result = app.test_cli_runner().invoke(args=["relay", "line-check"])
    assert result.exit_code == 0, result.output
    assert "token valid (v2.1, issued by the relay)" in result.output
    assert "Bot: Notify Relay Bot (@fakebot)" in result.output
    assert "Messages this month: 42 used, quota 5000." in result.output
    assert fake_line.state.issued[0] not in result.output
    assert len(fake_line.state.calls_to("/oauth2/v2.1/verify")) == 1


def test_line_check_fails_clearly_when_line_refuses(app, fake_line):
    fake_line.state.fail_next("/v2/bot/info", 401)
    result = app.test_cli_runner().invoke(args=["relay", "line-check"])
    assert result.exit_code == 1
    assert "LINE answered HTTP 401" in result.output


def _login(client, username):
    response = client.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 302


def test_the_admin_page_shows_the_quota_to_admins_only(app, client, fake_line):
    fake_line.state.quota = 200
    fake_line.state.consumption = 17
    with app.app_context():
        create_user("root", admin=True)
        create_user("bob")
    anonymous = client.get("/relay/line/admin")
    assert anonymous.status_code == 302
    _login(client, "bob")
    assert client.get("/relay/line/admin").status_code == 403
    client.post("/logout")
    _login(client, "root")
    page = client.get("/relay/line/admin")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Notify Relay Bot" in html
    assert "data-quota>200<" in html
    assert "data-consumption>17<" in html
    assert "a group of five counts five" in html


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"RELAY_LINE_CHANNEL_SECRET": None}, "RELAY_LINE_CHANNEL_SECRET"),
        ({"RELAY_LINE_CHANNEL_ID": None}, "RELAY_LINE_CHANNEL_ID"),
        ({"RELAY_LINE_CHANNEL_ACCESS_TOKEN": None}, "RELAY_LINE_PRIVATE_KEY_JWK"),
        ({"RELAY_PUBLIC_BASE_URL": None}, "RELAY_PUBLIC_BASE_URL"),
        # LINE fetches images over HTTPS only (issue 22: the text was lost with the image).
        ({"RELAY_PUBLIC_BASE_URL": "http://relay.example"}, "RELAY_LINE_ALLOW_HTTP_PUBLIC_URL"),
        (
            {
                "RELAY_LINE_CHANNEL_ACCESS_TOKEN": None,
                "RELAY_LINE_PRIVATE_KEY_JWK": '{"kty":"RSA"}',
            },
            "RELAY_LINE_PRIVATE_KEY_JWK",
        ),
    ],
)
def test_a_half_configured_channel_stops_the_app_naming_the_key(
    tmp_path, fake_line, overrides, key
):
    config = make_test_config(
        tmp_path, **channel_config(fake_line, "https://r.example", **overrides)
    )
    with pytest.raises(ConfigError, match=key) as caught:
        create_app(config)
    assert "fake-channel-secret" not in str(caught.value)


def test_an_http_public_url_runs_only_when_development_allows_it(tmp_path, fake_line):
    config = make_test_config(
        tmp_path,
        **channel_config(
            fake_line, "http://127.0.0.1:5000/relay", RELAY_LINE_ALLOW_HTTP_PUBLIC_URL=True
        ),
    )
    app = create_app(config)
    with app.app_context():
        assert channel.current_settings().public_base_url == "http://127.0.0.1:5000/relay"


def test_settings_repr_shows_no_secret(app):
    with app.app_context():
        text = repr(channel.current_settings())
    assert "fake-channel-secret" not in text
    assert '"d"' not in text
    assert "'d'" not in text


def test_without_a_channel_the_relay_stays_in_sandbox_mode(tmp_path):
    app = create_app(make_test_config(tmp_path))
    with app.app_context():
        assert channel.current_settings() is None
    assert app.test_client().post("/relay/line/webhook", data=b"{}").status_code == 404
    # The relay adds no job of its own to the worker (the site's scheduler is there).
    assert push.worker_job not in seams.items(app, seams.WORKER_JOBS)


def test_an_unused_token_is_revoked_even_when_it_has_expired_meanwhile(app, fake_line):
    with app.app_context():
        channel.access_token()
        row = db.session.scalar(select(RelayLineToken))
        later = row.expires_at + timedelta(seconds=1)
        channel.access_token(now=later)
        old = db.session.get(RelayLineToken, row.id)
        assert old.revoked_at == later
        assert old.token_ciphertext == ""
    # Expired tokens no longer count at LINE: no revoke call was needed.
    assert fake_line.state.calls_to("/oauth2/v2.1/revoke") == []
    assert utcnow() < later


def test_a_token_under_a_key_that_left_the_ring_is_replaced(app, fake_line):
    with app.app_context():
        first = channel.access_token()
        row = db.session.scalar(select(RelayLineToken))
        row.token_ciphertext = "kgone$" + row.token_ciphertext.split("$", 1)[1]
        db.session.commit()
        second = channel.access_token()
        assert second != first
        assert db.session.get(RelayLineToken, row.id).revoked_at is not None
    assert len(fake_line.state.issued) == 2


def test_two_processes_finding_the_token_due_issue_one_and_share_it(
    app_config, fake_line, monkeypatch
):
    """Two app instances on one database (threads standing for processes) need a token at
    once. The first to take the lease calls LINE, which is held until the second has found
    the lease taken and is waiting; then both get the one token, and nothing is revoked."""
    apps = [create_app(app_config), create_app(app_config)]
    init_database(apps[0])
    waiting = threading.Event()
    released = threading.Event()
    fake_line.state.hold("/oauth2/v2.1/token", released)
    real_wait = channel._wait_for_other_issuer

    def wait(settings):
        waiting.set()
        released.set()  # the second process is waiting: let LINE answer the first
        real_wait(settings)

    monkeypatch.setattr(channel, "_wait_for_other_issuer", wait)
    tokens: dict[int, str] = {}
    errors: list[BaseException] = []

    def need_a_token(index: int) -> None:
        try:
            with apps[index].app_context():
                tokens[index] = channel.access_token()
                db.session.remove()
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)

    threads = [threading.Thread(target=need_a_token, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert waiting.is_set(), "the second process never found the lease taken"
    assert len(fake_line.state.calls_to("/oauth2/v2.1/token")) == 1
    assert tokens[0] == tokens[1] == fake_line.state.issued[0]
    assert fake_line.state.calls_to("/oauth2/v2.1/revoke") == []
    with apps[1].app_context():
        assert db.session.scalar(select(func.count()).select_from(RelayLineToken)) == 1
        lease = db.session.get(RelayLineChannel, CHANNEL_ID)
        assert (lease.issuing_until, lease.issuing_by) == (None, None)  # released
        db.engine.dispose()
    with apps[0].app_context():
        db.engine.dispose()


def test_a_lease_left_by_a_dead_process_expires_and_is_taken_over(app, fake_line):
    with app.app_context():
        db.session.add(
            RelayLineChannel(
                channel_id=CHANNEL_ID,
                issuing_until=utcnow() - timedelta(seconds=1),
                issuing_by="dead-process",
            )
        )
        db.session.commit()
        token = channel.access_token()
        assert token == fake_line.state.issued[0]
        lease = db.session.get(RelayLineChannel, CHANNEL_ID)
        assert lease.issuing_by is None


def test_a_failed_issue_releases_the_lease(app, fake_line):
    fake_line.state.fail_next("/oauth2/v2.1/token", 500)
    with app.app_context():
        with pytest.raises(channel.ChannelError):
            channel.access_token()
        assert db.session.get(RelayLineChannel, CHANNEL_ID).issuing_until is None
        assert channel.access_token() == fake_line.state.issued[0]
