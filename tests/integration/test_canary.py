"""Canary: a whole connect / send / rotate cycle leaves no secret in the database or the logs.

reliability.md "Secrets at rest": a database dump and every log line contain **0** copies of
a canary token, a canary API key or a key. The cycle runs over real HTTP against the built-in
relay, with a known key ring: connect a chat (the token the relay issues is the canary token),
create an API key on /api-keys, send through the API and the form, have the worker deliver,
add a new key and run ``rotate-keys``, drop the old key, and send again.
"""

from __future__ import annotations

import base64
import logging
import re

import pytest
import requests
from cryptography.fernet import Fernet
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.keyring import keyring
from notify_site.models import Connection, Notification, NotificationStatus
from notify_site.services.connections import connection_context
from tests.dumps import database_dump
from tests.integration.helpers import (
    answer_authorize,
    finish_form_post,
    register,
    relay_reader,
    start_connect,
    submit,
)
from tests.servers import wait_until

FIRST_KEY = "kcanary1:" + Fernet.generate_key().decode()
SECOND_KEY = "kcanary2:" + Fernet.generate_key().decode()


@pytest.fixture
def live_overrides():
    return {"TOKEN_KEYS": [FIRST_KEY], "DELIVERY_RETRY_BASE": 0.01}


def redeploy_with_ring(live, *keys: str) -> None:
    """What restarting every process with a new TOKEN_KEYS does to the running site."""
    live.app.config["TOKEN_KEYS"] = list(keys)
    live.app.extensions.pop("notify_site.keyring", None)


def wait_until_delivered(live, timeout: float = 30) -> list[str]:
    """Every notification's message, once all are delivered (by the in-process worker)."""

    def rows():
        with live.app.app_context():
            return db.session.execute(select(Notification.status, Notification.message)).all()

    def all_delivered() -> bool:
        found = rows()
        return bool(found) and all(status == NotificationStatus.DELIVERED for status, _ in found)

    wait_until(all_delivered, timeout, "every notification delivered", details=lambda: str(rows()))
    return [message for _, message in rows()]


def send_through_api(live, api_key: str, message: str) -> None:
    answer = requests.post(
        f"{live.site}/api/v1/notifications",
        json={"connection": "Canary", "message": message},
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=10,
    )
    assert answer.status_code == 202, answer.text


def variants(secret: str) -> list[str]:
    """The secret as text, and (for a Fernet key) its raw bytes as the dump decodes them."""
    forms = [secret]
    if len(secret) == 44 and secret.endswith("="):
        forms.append(base64.urlsafe_b64decode(secret).decode("latin-1"))
    return forms


def test_a_connect_send_rotate_cycle_leaves_no_secret_in_the_database_or_logs(
    live, in_process_worker, caplog
):
    caplog.set_level(logging.DEBUG)
    browser = requests.Session()
    register(browser, live.site)

    # Connect: the relay issues the token that is our canary.
    authorize_url = start_connect(browser, live.site, "Canary")
    answer = answer_authorize(browser, authorize_url, chat="1-on-1")
    assert finish_form_post(browser, answer, live.site).status_code == 302
    with live.app.app_context():
        connection = db.session.scalars(select(Connection)).one()
        token = keyring().decrypt(
            connection.token_ciphertext, context=connection_context(connection.id)
        )

    # An API key, made on the page that shows it once (after the creation's redirect).
    redirected = submit(
        browser, browser.get(f"{live.site}/api-keys"), {"name": "canary"}, field="name"
    )
    assert redirected.status_code == 303
    created = browser.get(f"{live.site}{redirected.headers['Location']}")
    assert created.status_code == 200
    api_key = re.search(r'id="new-api-key"[^>]*>(nsk_[A-Za-z0-9_-]+)<', created.text).group(1)

    # Send through the API and the form; also a refused call with a near miss of the key.
    send_through_api(live, api_key, "canary one")
    wrong = requests.get(
        f"{live.site}/api/v1/connections",
        headers={"Authorization": f"Bearer {api_key}x"},
        timeout=10,
    )
    assert wrong.status_code == 401
    sent = submit(
        browser,
        browser.get(f"{live.site}/send"),
        {"message": "canary two"},
        field="sticker_package_id",
    )
    assert sent.status_code == 302, sent.text
    assert sorted(wait_until_delivered(live)) == ["canary one", "canary two"]

    # Rotate: every process gets the new key first in the ring, then rotate-keys moves the
    # stored token; then the old key is dropped and the site still delivers.
    redeploy_with_ring(live, SECOND_KEY, FIRST_KEY)
    rotated = live.app.test_cli_runner().invoke(args=["rotate-keys"])
    assert rotated.exit_code == 0, rotated.output
    assert "  kcanary1: 0 (can now be removed from TOKEN_KEYS)" in rotated.output
    redeploy_with_ring(live, SECOND_KEY)
    send_through_api(live, api_key, "canary three")
    assert sorted(wait_until_delivered(live)) == ["canary one", "canary three", "canary two"]
    inbox = relay_reader(live).get(f"{live.relay}/inbox.json", timeout=10).text
    assert "canary three" in inbox

    secrets = {
        "access token": token,
        "API key": api_key,
        "first token key": FIRST_KEY.split(":", 1)[1],
        "second token key": SECOND_KEY.split(":", 1)[1],
        "OAuth client secret": live.app.config["NOTIFY_CLIENT_SECRET"],
    }
    dump = database_dump(live)
    logs = "\n".join(record.getMessage() for record in caplog.records)
    # The dump and the logs really cover the cycle.
    assert "CREATE TABLE connections" in dump
    assert "kcanary2$" in dump
    assert "POST /api/v1/notifications" in logs
    assert "POST /callback" in logs
    assert "POST /api-keys" in logs
    for name, secret in secrets.items():
        for form in variants(secret):
            assert dump.count(form) == 0, f"{name} found in the database"
            assert logs.count(form) == 0, f"{name} found in the logs"
            assert rotated.output.count(form) == 0, f"{name} printed by rotate-keys"
