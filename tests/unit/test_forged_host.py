"""Absolute URLs come from configuration, never from the request's Host header (issue 12).

With ``TRUSTED_HOSTS`` unset (development, and any deployment that forgot it) the Host header
is whatever the client sent; it once became the address of the relay's uploaded images in
``/relay/inbox.json``. tests/unit/test_smoke_pages.py also requests every page with a forged
Host and finds it nowhere in the answers.
"""

from __future__ import annotations

import io
import re

import pytest

from tests.conftest import make_test_config
from tests.factories import PASSWORD, create_user, seed_every_page, tiny_png

EVIL = "http://evil.example"


def _upload(client, data) -> str:
    """Send an image through the relay's API; the inbox.json URL of it, asked via a forged Host."""
    answer = client.post(
        "/relay/api/notify",
        data={"message": "pic", "imageFile": (io.BytesIO(tiny_png()), "p.png")},
        headers={"Authorization": f"Bearer {data.relay_token}"},
        base_url=EVIL,
    )
    assert answer.status_code == 200
    bearer = {"Authorization": f"Bearer {data.relay_token}"}
    inbox = client.get("/relay/inbox.json", base_url=EVIL, headers=bearer).get_json()
    return inbox["messages"][0]["image"]["fullsize_url"]


@pytest.fixture
def app_config(tmp_path, request):
    return make_test_config(tmp_path, **getattr(request, "param", {}))


@pytest.mark.parametrize(
    ("app_config", "expected"),
    [
        # The default: the origin of NOTIFY_REDIRECT_URI (http://127.0.0.1:5000/callback).
        ({}, r"http://127\.0\.0\.1:5000/relay/images/[\w-]{22}"),
        (
            {"NOTIFY_REDIRECT_URI": "https://notify.example.com/callback"},
            r"https://notify\.example\.com/relay/images/[\w-]{22}",
        ),
        # The relay's own public address wins when it is set.
        (
            {"RELAY_PUBLIC_BASE_URL": "https://relay.example/notify/"},
            r"https://relay\.example/notify/images/[\w-]{22}",
        ),
    ],
    indirect=["app_config"],
    ids=["default", "https-callback", "relay-public-base-url"],
)
def test_inbox_json_image_urls_come_from_the_configuration(app, client, expected):
    url = _upload(client, seed_every_page(app))
    assert re.fullmatch(expected, url), url


def test_the_inbox_page_loads_uploaded_images_from_its_own_origin(app, client):
    data = seed_every_page(app)
    signed_in = client.post(
        "/login", data={"username": data.admin, "password": PASSWORD}, base_url=EVIL
    )
    assert signed_in.status_code == 302
    html = client.get("/relay/inbox", base_url=EVIL).get_data(as_text=True)
    assert f'src="/relay/images/{data.relay_image_public_id}"' in html
    assert "evil.example" not in html


def test_the_empty_inboxs_curl_example_uses_the_configured_origin(app, client):
    with app.app_context():
        create_user("alice")
    client.post("/login", data={"username": "alice", "password": PASSWORD}, base_url=EVIL)
    html = client.get("/relay/inbox", base_url=EVIL).get_data(as_text=True)
    assert "curl -X POST http://127.0.0.1:5000/relay/api/notify" in html
    assert "evil.example" not in html


def test_the_api_keys_curl_example_uses_the_configured_origin(app, client):
    with app.app_context():
        create_user("alice")
    signed_in = client.post(
        "/login", data={"username": "alice", "password": PASSWORD}, base_url=EVIL
    )
    assert signed_in.status_code == 302
    created = client.post("/api-keys", data={"name": "CI"}, base_url=EVIL, follow_redirects=True)
    html = created.get_data(as_text=True)
    assert "curl -X POST http://127.0.0.1:5000/api/v1/notifications" in html
    assert "evil.example" not in html


@pytest.mark.parametrize("path", ["/static//css/site.css", "/relay//inbox", "/send//status"])
def test_a_double_slash_is_not_redirected_to_the_forged_host(client, path):
    answer = client.get(path, base_url=EVIL)
    assert answer.status_code == 404
    assert "Location" not in answer.headers
