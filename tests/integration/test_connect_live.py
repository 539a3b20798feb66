"""The whole connect flow over real HTTP: the site as OAuth client, the built-in relay as server."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.keyring import keyring
from notify_site.models import Connection, ConnectionStatus
from notify_site.services.connections import connection_context
from tests.htmlforms import forms_in
from tests.integration.helpers import (
    answer_authorize,
    finish_form_post,
    register,
    start_connect,
    without_form_post,
)

TOKEN_PATH = "/relay/oauth/token"


@pytest.fixture
def browser(live):
    session = requests.Session()
    register(session, live.site)
    return session


def token_of(live, connection_id: int) -> str:
    with live.app.app_context():
        connection = db.session.get(Connection, connection_id)
        return keyring().decrypt(
            connection.token_ciphertext, context=connection_context(connection_id)
        )


def connections(live) -> list[Connection]:
    with live.app.app_context():
        rows = list(db.session.scalars(select(Connection).order_by(Connection.id)))
        db.session.expunge_all()
        return rows


def test_form_post_flow_connects_the_one_on_one_chat(live, browser):
    authorize_url = start_connect(browser, live.site, "Me")
    assert authorize_url.startswith(live.relay + "/oauth/authorize?")
    assert parse_qs(urlsplit(authorize_url).query)["response_mode"] == ["form_post"]
    relay_answer = answer_authorize(browser, authorize_url, chat="1-on-1")
    assert relay_answer.status_code == 200
    done = finish_form_post(browser, relay_answer, live.site)
    assert done.status_code == 302
    assert done.headers["Location"] == "/connections"
    assert live.log.count("POST", TOKEN_PATH) == 1
    assert live.log.count("GET", "/relay/api/status") == 1

    [connection] = connections(live)
    assert (connection.label, connection.target_type) == ("Me", "USER")
    assert connection.target_name == live.app.config["RELAY_SANDBOX_USER"]
    assert connection.status == ConnectionStatus.ACTIVE
    assert connection.rate_limit == 1000
    assert connection.rate_remaining == 999  # the status call spent one
    page = browser.get(f"{live.site}/connections").text
    assert "Sandbox user" in page
    assert "Connected “Me”" in page


def test_query_string_flow_connects_a_group(live, browser):
    authorize_url = without_form_post(start_connect(browser, live.site, "Family chat"))
    relay_answer = answer_authorize(browser, authorize_url, chat="Family")
    assert relay_answer.status_code == 302
    callback = relay_answer.headers["Location"]
    assert callback.startswith(f"{live.site}/callback?")
    done = browser.get(callback, allow_redirects=False)
    assert done.headers["Location"] == "/connections"
    [connection] = connections(live)
    assert (connection.target_name, connection.target_type) == ("Family", "GROUP")


def test_reused_state_is_refused_without_a_token_request(live, browser):
    authorize_url = without_form_post(start_connect(browser, live.site, "Once"))
    callback = answer_authorize(browser, authorize_url, chat="1-on-1").headers["Location"]
    assert browser.get(callback, allow_redirects=False).status_code == 302
    replay = browser.get(callback, allow_redirects=False)
    assert replay.status_code == 400
    assert live.log.count("POST", TOKEN_PATH) == 1
    assert len(connections(live)) == 1


@pytest.mark.parametrize("state", [None, "forged-state-value"])
def test_missing_or_wrong_state_is_400_without_a_token_request(live, browser, state):
    authorize_url = without_form_post(start_connect(browser, live.site, "X"))
    callback = answer_authorize(browser, authorize_url, chat="1-on-1").headers["Location"]
    code = parse_qs(urlsplit(callback).query)["code"][0]
    params = {"code": code} if state is None else {"code": code, "state": state}
    answer = browser.get(f"{live.site}/callback", params=params, allow_redirects=False)
    assert answer.status_code == 400
    assert "connect flow" in answer.text
    assert live.log.count("POST", TOKEN_PATH) == 0
    assert connections(live) == []


def test_cancel_shows_not_connected(live, browser):
    authorize_url = start_connect(browser, live.site, "Nope")
    relay_answer = answer_authorize(browser, authorize_url, chat="1-on-1", agree=False)
    done = finish_form_post(browser, relay_answer, live.site)
    assert done.status_code == 302
    page = browser.get(f"{live.site}/connections").text
    assert "Not connected: you cancelled" in page
    assert live.log.count("POST", TOKEN_PATH) == 0
    assert connections(live) == []


def test_revoke_kills_the_token_at_the_relay(live, browser):
    authorize_url = without_form_post(start_connect(browser, live.site, "Short-lived"))
    browser.get(answer_authorize(browser, authorize_url, chat="Team").headers["Location"])
    [connection] = connections(live)
    token = token_of(live, connection.id)
    auth = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{live.relay}/api/status", headers=auth, timeout=10).status_code == 200

    page = browser.get(f"{live.site}/connections")
    form_action = f"/connections/{connection.id}/revoke"
    [form] = [f for f in forms_in(page.text, page.url) if f.action.endswith(form_action)]
    answer = browser.post(form.action, data=form.fields, allow_redirects=False)
    assert answer.status_code == 302
    assert live.log.count("POST", "/relay/api/revoke") == 1
    status = requests.get(f"{live.relay}/api/status", headers=auth, timeout=10)
    assert status.status_code == 401
    [connection] = connections(live)
    assert connection.status == ConnectionStatus.REVOKED
    assert "is disconnected" in browser.get(f"{live.site}/connections").text


def test_connect_form_without_csrf_token_changes_nothing(live, browser):
    answer = browser.post(f"{live.site}/connections", data={"label": "x"}, allow_redirects=False)
    assert answer.status_code == 400
    assert "form expired" in answer.text
    assert live.log.count("GET", "/relay/oauth/authorize") == 0
    with live.app.app_context():
        from notify_site.models import OAuthState

        assert db.session.scalar(select(OAuthState)) is None
