"""The send form with CSRF protection on, as it runs outside the tests."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from notify_site.extensions import db
from notify_site.models import Notification
from tests.conftest import make_test_config
from tests.factories import PASSWORD, create_connection, create_user
from tests.htmlforms import csrf_token


@pytest.fixture
def app_config(tmp_path):
    return make_test_config(tmp_path, WTF_CSRF_ENABLED=True)


def count_rows(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Notification))


def test_a_post_without_the_csrf_token_is_refused_and_queues_nothing(app, client):
    with app.app_context():
        alice = create_user("alice")
        connection_id = create_connection(alice).id
    response = client.post(
        "/login",
        data={
            "username": "alice",
            "password": PASSWORD,
            "csrf_token": csrf_token(client, "/login"),
        },
    )
    assert response.status_code == 302

    data = {"connections": [connection_id], "message": "hello"}
    response = client.post("/send", data=data)
    assert response.status_code == 400
    assert "The form expired or was not sent from this site" in response.get_data(as_text=True)
    response = client.post("/send", data={**data, "csrf_token": "forged"})
    assert response.status_code == 400
    assert count_rows(app) == 0

    # The same POST with the page's token goes through: the token was the only thing missing.
    response = client.post("/send", data={**data, "csrf_token": csrf_token(client, "/send")})
    assert response.status_code == 302
    assert count_rows(app) == 1
