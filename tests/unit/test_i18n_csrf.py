"""The footer's language switcher is a POST behind CSRF, like every other form."""

from __future__ import annotations

import re

import pytest

from tests.conftest import make_test_config


@pytest.fixture
def app_config(tmp_path):
    return make_test_config(tmp_path, WTF_CSRF_ENABLED=True)


def test_the_switcher_needs_the_pages_csrf_token(client):
    refused = client.post("/language", data={"locale": "ja", "next": "/login"})
    assert refused.status_code == 400
    assert '<html lang="en"' in client.get("/login").get_data(as_text=True)

    page = client.get("/login").get_data(as_text=True)
    footer = page.split('action="/language"', 1)[1]
    token = re.search(r'name="csrf_token" value="([^"]+)"', footer).group(1)
    accepted = client.post(
        "/language", data={"locale": "ja", "next": "/login", "csrf_token": token}
    )
    assert accepted.status_code == 302
    assert '<html lang="ja"' in client.get("/login").get_data(as_text=True)
