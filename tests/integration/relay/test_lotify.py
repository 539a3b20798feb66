"""The unchanged PyPI client ``lotify`` against the relay over real HTTP (issue 14).

lotify is used exactly as its README shows, with only its documented ``api_origin`` and
``bot_origin`` arguments pointing at this relay: every sending method, status and revoke with
a personal access token from My page, and its OAuth methods with a registered service.
"""

from __future__ import annotations

import html
import re

import pytest
import requests
from lotify.client import Client

from notify_site.relay.clients import register_client
from tests import images
from tests.integration.helpers import person_session
from tests.servers import LiveServer

TIMEOUT = 30
PNG = images.png()
REDIRECT_URI = "https://lotify.example/callback"


@pytest.fixture
def server(app):
    live = LiveServer(app)
    app.config["NOTIFY_REDIRECT_URI"] = f"{live.url}/callback"
    live.start()
    yield live
    live.stop()


@pytest.fixture
def browser(app, server) -> requests.Session:
    """A person signed in to the site (and so to the relay: same host) through the form."""
    session = person_session(app, server.url)
    yield session
    session.close()


def hidden_fields(page: str) -> dict[str, str]:
    fields = {}
    for tag in re.findall(r'<input[^>]*type="hidden"[^>]*>', page):
        name = re.search(r'name="([^"]+)"', tag)[1]
        value = re.search(r'value="([^"]*)"', tag)
        fields[name] = html.unescape(value[1]) if value else ""
    return fields


def personal_token(browser: requests.Session, base: str, name: str, chat: str) -> str:
    """Generate a personal access token on My page for the chat labelled ``chat``."""
    page = browser.get(f"{base}/my/", timeout=TIMEOUT).text
    chat_id = re.search(
        rf'name="chat" value="(\d+)"[^>]*>\s*<span[^>]*>[^<]*</span>\s*'
        rf'<span class="relay-chat-name">{re.escape(chat)}</span>',
        page,
    ).group(1)
    answer = browser.post(
        f"{base}/my/tokens", data={"name": name, "chat": chat_id}, timeout=TIMEOUT
    )
    assert answer.status_code == 200, answer.text
    return re.search(r'id="relay-new-token" class="relay-secret">([A-Za-z0-9]{43})<', answer.text)[
        1
    ]


def test_every_lotify_method_with_a_personal_token(server, browser, tmp_path):
    base = server.url + "/relay"
    token = personal_token(browser, base, "lotify", "Family")
    lotify = Client(bot_origin=base, api_origin=base)

    status = lotify.status(token)
    # The relay's extension (issue 15): the month's LINE figures, which Lotify passes through.
    assert status.pop("lineQuota")["scope"] == "channel"
    assert status == {
        "status": 200,
        "message": "ok",
        "targetType": "GROUP",
        "target": "Family",
    }
    ok = {"status": 200, "message": "ok"}
    assert lotify.send_message(token, "plain text") == ok
    assert lotify.send_message(token, "quietly", notification_disabled=True) == ok
    assert lotify.send_message_with_sticker(token, "sticker", 1988, 446) == ok
    assert (
        lotify.send_message_with_image_url(
            token, "image urls", "https://img.example/t.jpg", "https://img.example/f.jpg"
        )
        == ok
    )
    picture = tmp_path / "graph.png"
    picture.write_bytes(PNG)
    with picture.open("rb") as file:
        assert lotify.send_message_with_image_file(token, "image file", file) == ok

    messages = browser.get(f"{base}/inbox.json", timeout=TIMEOUT).json()["messages"]
    by_text = {m["message"]: m for m in messages}
    assert list(by_text) == ["image file", "image urls", "sticker", "quietly", "plain text"]
    assert all(m["client"] == "lotify" for m in messages)
    assert all(m["chat"]["name"] == "Family" for m in messages)
    assert by_text["quietly"]["notification_disabled"] is True
    assert by_text["sticker"]["sticker"] == {"package_id": 446, "sticker_id": 1988}
    assert by_text["image urls"]["image"]["fullsize_url"] == "https://img.example/f.jpg"
    image = browser.get(by_text["image file"]["image"]["fullsize_url"], timeout=TIMEOUT)
    assert image.content == PNG

    assert lotify.revoke(token) == ok
    # lotify raises ValueError with the server's JSON for any status but 2xx.
    with pytest.raises(ValueError, match="Invalid access token"):
        lotify.send_message(token, "after revoke")
    with pytest.raises(ValueError, match="401"):
        lotify.status(token)


def test_lotify_oauth_methods_get_a_token_that_looks_like_lines(app, server, browser):
    base = server.url + "/relay"
    with app.app_context():
        client_id, secret = register_client("Lotify service", REDIRECT_URI)
    lotify = Client(
        client_id=client_id,
        client_secret=secret,
        redirect_uri=REDIRECT_URI,
        bot_origin=base,
        api_origin=base,
    )
    link = lotify.get_auth_link("lotify-state")
    assert link.startswith(f"{base}/oauth/authorize?")
    page = browser.get(link, timeout=TIMEOUT)
    assert page.status_code == 200
    form = hidden_fields(page.text)
    form.update(
        chat=re.search(r'name="chat" value="(\d+)"', page.text)[1], agree="Agree and connect"
    )
    answer = browser.post(
        f"{base}/oauth/authorize", data=form, allow_redirects=False, timeout=TIMEOUT
    )
    code = re.search(r"[?&]code=([^&]+)", answer.headers["Location"])[1]

    token = lotify.get_access_token(code)
    assert re.fullmatch(r"[A-Za-z0-9]{43}", token)
    assert lotify.status(token)["target"] == "Sandbox user"
    assert lotify.send_message(token, "from a service") == {"status": 200, "message": "ok"}
    # The service's token is on the person's My page, with Disconnect.
    assert "Lotify service" in browser.get(f"{base}/my/", timeout=TIMEOUT).text
