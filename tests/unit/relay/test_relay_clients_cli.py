"""Registering services: ``flask relay add-client`` and the functions the site's setup calls."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.relay.clients import client_is_registered, register_client
from notify_site.relay.errors import ClientRegistrationError
from notify_site.relay.models import RelayClient
from notify_site.relay.secrets_util import hash_secret


def test_add_client_prints_the_id_and_secret_once_and_stores_only_the_hash(app, runner):
    result = runner.invoke(
        args=["relay", "add-client", "--name", "Bot", "--redirect-uri", "https://bot.example/cb"]
    )
    assert result.exit_code == 0, result.output
    client_id = re.search(r"client_id: (\S+)", result.stdout).group(1)
    secret = re.search(r"client_secret: (\S+)", result.stdout).group(1)
    assert len(secret) >= 43
    assert "only its hash" in result.stderr

    with app.app_context():
        row = db.session.scalar(select(RelayClient).where(RelayClient.client_id == client_id))
        assert row.name == "Bot"
        assert row.redirect_uri == "https://bot.example/cb"
        assert row.secret_hash == hash_secret(secret)
        stored = [str(getattr(row, column.key)) for column in RelayClient.__table__.columns]
        assert not any(secret in value for value in stored)
        assert client_is_registered(client_id, "https://bot.example/cb")


def test_the_printed_secret_authenticates_at_the_token_endpoint(runner, client):
    result = runner.invoke(
        args=["relay", "add-client", "--name", "Bot", "--redirect-uri", "https://bot.example/cb"]
    )
    client_id = re.search(r"client_id: (\S+)", result.stdout).group(1)
    secret = re.search(r"client_secret: (\S+)", result.stdout).group(1)
    response = client.post(
        "/relay/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": "unknown",
            "redirect_uri": "https://bot.example/cb",
            "client_id": client_id,
            "client_secret": secret,
        },
    )
    # Past the client check: the only complaint is the (made-up) code.
    assert response.get_json()["message"] == "code: invalid authorization code"


@pytest.mark.parametrize(
    "redirect_uri",
    ["not a url", "ftp://bot.example/cb", "/relative/cb", "https://bot.example/cb#frag"],
)
def test_add_client_refuses_a_bad_redirect_uri(app, runner, redirect_uri):
    result = runner.invoke(
        args=["relay", "add-client", "--name", "Bot", "--redirect-uri", redirect_uri]
    )
    assert result.exit_code != 0
    assert "redirect URI" in result.output
    with app.app_context():
        assert db.session.scalar(select(RelayClient)) is None


def test_add_client_requires_both_options(runner):
    result = runner.invoke(args=["relay", "add-client", "--name", "Bot"])
    assert result.exit_code != 0
    assert "--redirect-uri" in result.output


def test_register_client_and_client_is_registered(app):
    with app.app_context():
        client_id, secret = register_client("notify_site", "http://127.0.0.1:5000/callback")
        other_id, other_secret = register_client("notify_site", "http://127.0.0.1:5000/callback")
        assert client_id != other_id
        assert secret != other_secret
        assert client_is_registered(client_id, "http://127.0.0.1:5000/callback")
        assert not client_is_registered(client_id, "http://127.0.0.1:5000/callback/")
        assert not client_is_registered("unknown", "http://127.0.0.1:5000/callback")
        assert not client_is_registered("", "http://127.0.0.1:5000/callback")
        with pytest.raises(ClientRegistrationError):
            register_client("  ", "https://ok.example/cb")
