"""The consent form with CSRF protection on, as in production."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from notify_site.extensions import db
from notify_site.relay.models import RelayAccessToken, RelayAuthorizationCode
from tests.factories import create_relay_token

URL = "/relay/oauth/authorize"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "WTF_CSRF_ENABLED": True}


def codes(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(RelayAuthorizationCode))


def test_a_consent_post_without_the_csrf_token_is_rejected(app, client, authorize_params, person):
    page = client.get(URL, query_string=authorize_params())
    chat = re.search(r'name="chat" value="(\d+)"', page.get_data(as_text=True)).group(1)
    response = client.post(URL, data={**authorize_params(), "chat": chat, "agree": "1"})
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "form expired" in response.get_data(as_text=True)
    assert codes(app) == 0


def test_the_consent_page_carries_a_token_that_makes_the_post_work(
    app, client, authorize_params, person
):
    html = client.get(URL, query_string=authorize_params()).get_data(as_text=True)
    csrf_token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    chat = re.search(r'name="chat" value="(\d+)"', html).group(1)
    response = client.post(
        URL, data={**authorize_params(), "chat": chat, "agree": "1", "csrf_token": csrf_token}
    )
    assert response.status_code == 302
    assert "code" in parse_qs(urlsplit(response.headers["Location"]).query)
    assert codes(app) == 1


def test_the_token_endpoint_and_the_api_need_no_csrf_token(client, registered):
    token = client.post(
        "/relay/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": "unknown",
            "redirect_uri": registered.redirect_uri,
            "client_id": registered.client_id,
            "client_secret": registered.client_secret,
        },
    )
    assert token.status_code == 400
    assert token.get_json() == {"status": 400, "message": "code: invalid authorization code"}
    notify = client.post("/relay/api/notify", data={"message": "hi"})
    assert notify.status_code == 401
    assert notify.get_json() == {"status": 401, "message": "Invalid access token"}


def test_my_pages_forms_need_their_csrf_token(app, client, person):
    html = client.get("/relay/my/").get_data(as_text=True)
    chat = re.search(r'name="chat" value="(\d+)"', html).group(1)
    with app.app_context():
        token = create_relay_token(None, int(chat), person_id=person.id, name="cron")
    html = client.get("/relay/my/").get_data(as_text=True)
    refused = client.post("/relay/my/tokens", data={"name": "x", "chat": chat})
    assert refused.status_code == 400
    assert "form expired" in refused.get_data(as_text=True)
    with app.app_context():
        token_pk, count = db.session.execute(
            select(func.min(RelayAccessToken.id), func.count(RelayAccessToken.id))
        ).one()
    assert count == 1
    assert client.post(f"/relay/my/tokens/{token_pk}/disconnect").status_code == 400
    status = client.get("/relay/api/status", headers={"Authorization": f"Bearer {token}"})
    assert status.status_code == 200
    # With the page's token, both work.
    csrf_token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    made = client.post(
        "/relay/my/tokens", data={"name": "x", "chat": chat, "csrf_token": csrf_token}
    )
    assert 'id="relay-new-token"' in made.get_data(as_text=True)
    confirm = client.get(f"/relay/my/tokens/{token_pk}/disconnect").get_data(as_text=True)
    csrf_token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', confirm).group(1)
    done = client.post(f"/relay/my/tokens/{token_pk}/disconnect", data={"csrf_token": csrf_token})
    assert done.status_code == 302
    status = client.get("/relay/api/status", headers={"Authorization": f"Bearer {token}"})
    assert status.status_code == 401
