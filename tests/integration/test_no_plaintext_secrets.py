"""After a real connect flow, neither the database nor any log line holds a plaintext token."""

from __future__ import annotations

import logging

import requests

from notify_site.extensions import db
from notify_site.keyring import keyring
from notify_site.models import Connection
from notify_site.services.connections import connection_context
from tests.dumps import database_dump
from tests.integration.helpers import (
    answer_authorize,
    finish_form_post,
    register,
    start_connect,
)


def test_database_and_logs_hold_no_plaintext_token(live, caplog):
    caplog.set_level(logging.DEBUG)
    browser = requests.Session()
    register(browser, live.site)
    answer = answer_authorize(browser, start_connect(browser, live.site, "Me"), chat="1-on-1")
    assert finish_form_post(browser, answer, live.site).status_code == 302

    with live.app.app_context():
        connection = db.session.scalars(db.select(Connection)).one()
        token = keyring().decrypt(
            connection.token_ciphertext, context=connection_context(connection.id)
        )
    assert len(token) >= 32
    secrets = {
        "access token": token,
        "client secret": live.app.config["NOTIFY_CLIENT_SECRET"],
        "token key": live.app.config["TOKEN_KEYS"][0].split(":", 1)[1],
    }
    dump = database_dump(live)
    # The dump really has the tables and their rows.
    assert "CREATE TABLE connections" in dump
    assert connection.token_ciphertext in dump
    logs = "\n".join(record.getMessage() for record in caplog.records)
    assert "POST /callback" in logs  # the captured logs really cover the flow
    for name, value in secrets.items():
        assert value not in dump, f"{name} found in the database"
        assert value not in logs, f"{name} found in the logs"
    page = browser.get(f"{live.site}/connections").text
    assert token not in page
