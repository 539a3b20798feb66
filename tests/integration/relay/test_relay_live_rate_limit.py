"""Concurrent calls over real HTTP never get more than the window's limit admitted."""

from __future__ import annotations

import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.relay.clients import register_client
from notify_site.relay.models import RelayChat
from tests.integration.helpers import person_session
from tests.servers import LiveServer

REDIRECT_URI = "https://service.example/callback"
TIMEOUT = 30
LIMIT = 5
CALLERS = 24


@pytest.fixture
def app_config(app_config):
    return {**app_config, "RELAY_RATE_LIMIT": LIMIT}


def test_concurrent_notifies_admit_exactly_the_limit(app):
    with app.app_context():
        client_id, secret = register_client("Racer", REDIRECT_URI)
    server = LiveServer(app).start()
    try:
        base = server.url + "/relay"
        browser = person_session(app, server.url)
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": "notify",
            "state": "s",
        }
        assert browser.get(f"{base}/oauth/authorize", params=params, timeout=TIMEOUT).ok
        with app.app_context():
            chat = db.session.scalar(select(RelayChat.id).where(RelayChat.kind == "USER"))
        consent = browser.post(
            f"{base}/oauth/authorize",
            data={**params, "chat": str(chat), "agree": "1"},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        code = parse_qs(urlsplit(consent.headers["Location"]).query)["code"][0]
        token = requests.post(
            f"{base}/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "client_id": client_id,
                "client_secret": secret,
            },
            timeout=TIMEOUT,
        ).json()["access_token"]

        barrier = threading.Barrier(CALLERS)
        answers: list[requests.Response] = []
        lock = threading.Lock()

        def call(number: int) -> None:
            barrier.wait()
            answer = requests.post(
                f"{base}/api/notify",
                headers={"Authorization": f"Bearer {token}"},
                data={"message": f"call {number}"},
                timeout=TIMEOUT,
            )
            with lock:
                answers.append(answer)

        threads = [threading.Thread(target=call, args=(n,)) for n in range(CALLERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=TIMEOUT)

        statuses = [answer.status_code for answer in answers]
        assert len(statuses) == CALLERS
        assert statuses.count(200) == LIMIT
        assert statuses.count(429) == CALLERS - LIMIT
        for answer in answers:
            if answer.status_code == 429:
                assert answer.headers["X-RateLimit-Remaining"] == "0"
        remaining = sorted(
            int(answer.headers["X-RateLimit-Remaining"])
            for answer in answers
            if answer.status_code == 200
        )
        assert remaining == list(range(LIMIT))
        inbox = browser.get(f"{base}/inbox.json", timeout=TIMEOUT).json()
        assert len(inbox["messages"]) == LIMIT
    finally:
        server.stop()
