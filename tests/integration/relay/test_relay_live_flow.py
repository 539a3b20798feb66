"""The relay over real HTTP: the whole OAuth flow and the API, as a LINE Notify client sees it."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from notify_site.relay.clients import register_client
from tests import images
from tests.integration.helpers import person_session
from tests.servers import LiveServer

REDIRECT_URI = "https://service.example/callback"
TIMEOUT = 30
PNG = images.png()
RATE_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-ImageLimit",
    "X-RateLimit-ImageRemaining",
    "X-RateLimit-Reset",
)


@pytest.fixture
def server(app):
    live = LiveServer(app)
    # Absolute URLs (the inbox's image links) come from the configured origin: make it this one.
    app.config["NOTIFY_REDIRECT_URI"] = f"{live.url}/callback"
    live.start()
    yield live
    live.stop()


@pytest.fixture
def registered(app) -> tuple[str, str]:
    with app.app_context():
        return register_client("Live Service", REDIRECT_URI)


class _HiddenInputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("type") == "hidden":
            self.fields[attrs["name"]] = attrs.get("value") or ""


def hidden_inputs(html: str) -> dict[str, str]:
    parser = _HiddenInputs()
    parser.feed(html)
    return parser.fields


@pytest.fixture
def browser(app, server) -> requests.Session:
    """A person signed in to the site, and so to the relay (same host)."""
    session = person_session(app, server.url)
    yield session
    session.close()


def authorize(
    browser: requests.Session, base: str, client_id: str, *, chat: str = "Sandbox user", **extra
) -> str:
    """Show the consent page, agree to ``chat``, and return the authorization code."""
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "notify",
        "state": "live-state",
        **extra,
    }
    page = browser.get(f"{base}/oauth/authorize", params=params, timeout=TIMEOUT)
    assert page.status_code == 200
    html = page.text
    assert "Live Service" in html
    label = re.escape(chat if chat != "Sandbox user" else "1-on-1 chat with Sandbox user")
    chat_id = re.search(
        rf'name="chat" value="(\d+)"[^>]*>\s*<span[^>]*>[^<]*</span>\s*'
        rf'<span class="relay-chat-name">{label}</span>',
        html,
    ).group(1)
    form = {**hidden_inputs(html), "chat": chat_id, "agree": "Agree and connect"}
    answer = browser.post(
        f"{base}/oauth/authorize", data=form, allow_redirects=False, timeout=TIMEOUT
    )
    if params.get("response_mode") == "form_post":
        assert answer.status_code == 200
        assert f'action="{REDIRECT_URI}"' in answer.text
        fields = hidden_inputs(answer.text)
        assert fields["state"] == "live-state"
        return fields["code"]
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    query = parse_qs(location.query)
    assert query["state"] == ["live-state"]
    return query["code"][0]


def exchange(base: str, client_id: str, secret: str, code: str, **extra) -> requests.Response:
    return requests.post(
        f"{base}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": client_id,
            "client_secret": secret,
            **extra,
        },
        timeout=TIMEOUT,
    )


def test_authorize_token_notify_status_revoke_over_http(server, registered, browser):
    base = server.url + "/relay"
    client_id, secret = registered
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    code = authorize(
        browser,
        base,
        client_id,
        chat="Family",
        response_mode="form_post",
        code_challenge=challenge.rstrip(b"=").decode(),
        code_challenge_method="S256",
    )

    token_answer = exchange(base, client_id, secret, code, code_verifier=verifier)
    assert token_answer.status_code == 200
    assert token_answer.headers["Content-Type"] == "application/json"
    token = token_answer.json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}

    sent = requests.post(
        f"{base}/api/notify",
        headers=auth,
        data={"message": "Deploy finished ✅", "stickerPackageId": "446", "stickerId": "1988"},
        timeout=TIMEOUT,
    )
    assert sent.status_code == 200
    assert sent.json() == {"status": 200, "message": "ok"}
    assert sent.headers["X-RateLimit-Remaining"] == "999"

    with_image = requests.post(
        f"{base}/api/notify",
        headers=auth,
        data={"message": "graph", "notificationDisabled": "true"},
        files={"imageFile": ("graph.png", PNG, "image/png")},
        timeout=TIMEOUT,
    )
    assert with_image.status_code == 200
    assert with_image.headers["X-RateLimit-ImageRemaining"] == "49"

    bad = requests.post(f"{base}/api/notify", headers=auth, data={"message": ""}, timeout=TIMEOUT)
    assert bad.status_code == 400
    assert bad.json() == {"status": 400, "message": "message: must not be empty"}
    assert all(header in bad.headers for header in RATE_HEADERS)

    status = requests.get(f"{base}/api/status", headers=auth, timeout=TIMEOUT)
    assert status.status_code == 200
    body = status.json()
    assert body.pop("lineQuota")["scope"] == "channel"  # the extension (issue 15)
    assert body == {
        "status": 200,
        "message": "ok",
        "targetType": "GROUP",
        "target": "Family",
    }
    assert status.headers["X-RateLimit-Remaining"] == "997"
    assert status.headers["X-RateLimit-ImageRemaining"] == "49"

    inbox = browser.get(f"{base}/inbox.json", timeout=TIMEOUT).json()
    newest, oldest = inbox["messages"]
    assert oldest["message"] == "Deploy finished ✅"
    assert oldest["sticker"] == {"package_id": 446, "sticker_id": 1988}
    assert oldest["chat"]["name"] == "Family"
    assert oldest["client"] == "Live Service"
    assert newest["notification_disabled"] is True
    image = browser.get(newest["image"]["fullsize_url"], timeout=TIMEOUT)
    assert newest["image"]["fullsize_url"].startswith(server.url + "/relay/images/")
    assert (image.status_code, image.headers["Content-Type"], image.content) == (
        200,
        "image/png",
        PNG,
    )
    assert image.headers["X-Content-Type-Options"] == "nosniff"

    revoked = requests.post(f"{base}/api/revoke", headers=auth, timeout=TIMEOUT)
    assert revoked.status_code == 200
    assert revoked.json() == {"status": 200, "message": "ok"}

    after = requests.post(
        f"{base}/api/notify", headers=auth, data={"message": "x"}, timeout=TIMEOUT
    )
    assert after.status_code == 401
    assert after.json() == {"status": 401, "message": "Invalid access token"}
    gone = requests.get(f"{base}/api/status", headers=auth, timeout=TIMEOUT)
    assert gone.status_code == 401
    assert len(browser.get(f"{base}/inbox.json", timeout=TIMEOUT).json()["messages"]) == 2


def exchange_concurrently(base: str, client_id: str, secret: str, code: str, callers: int):
    """Send ``callers`` token requests for one code at the same moment."""
    barrier = threading.Barrier(callers)
    answers: list[requests.Response] = []
    lock = threading.Lock()

    def race() -> None:
        barrier.wait()
        answer = exchange(base, client_id, secret, code)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=race) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT)
    return answers


def test_two_concurrent_exchanges_of_one_code_exactly_one_wins(server, registered, browser):
    base = server.url + "/relay"
    client_id, secret = registered
    for _round in range(5):
        code = authorize(browser, base, client_id)
        answers = exchange_concurrently(base, client_id, secret, code, callers=2)
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200, 400]
        loser = next(answer for answer in answers if answer.status_code == 400)
        assert loser.json() == {"status": 400, "message": "code: already used"}
        winner = next(answer for answer in answers if answer.status_code == 200)
        token = winner.json()["access_token"]
        status = requests.get(
            f"{base}/api/status", headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT
        )
        assert status.status_code == 200
