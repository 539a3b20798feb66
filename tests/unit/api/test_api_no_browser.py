"""The JSON API runs without the browser's machinery (notify_site/pages_only.py): no session,
no remember-cookie hook, no CSRF check. Its answers carry no ``Set-Cookie`` and no
``Vary: Cookie``, whatever cookies the caller sends; pages keep all three."""

from __future__ import annotations

import pytest

from notify_site import create_app
from notify_site.extensions import db
from notify_site.models import User
from tests.conftest import init_database, make_test_config
from tests.factories import sign_in
from tests.unit.api.calls import VALID, make_world, post


def assert_no_cookie_machinery(response) -> None:
    assert "Set-Cookie" not in response.headers
    vary = {part.strip().lower() for part in response.headers.get("Vary", "").split(",")}
    assert "cookie" not in vary


@pytest.fixture
def browser_app(tmp_path):
    """CSRF on, and Flask-Login renewing the remember cookie on every request: an API request
    that ran the remember hook would write to its (absent) session and fail."""
    app = create_app(
        make_test_config(tmp_path, WTF_CSRF_ENABLED=True, REMEMBER_COOKIE_REFRESH_EACH_REQUEST=True)
    )
    init_database(app)
    return app


def signed_in_client(app, username: str):
    """A browser signed in as ``username``: its session cookie goes along with every call."""
    client = app.test_client()
    with app.app_context():
        user = db.session.query(User).filter_by(username=username).one()
        sign_in(client, user)
    return client


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda client, world: post(client, world.alice_key, VALID), id="202"),
        pytest.param(lambda client, world: post(client, "nsk_wrong", VALID), id="401"),
        pytest.param(
            lambda client, world: post(client, world.alice_key, {**VALID, "connection": "Nope"}),
            id="404",
        ),
        pytest.param(
            lambda client, world: client.get(
                "/api/v1/connections", headers={"Authorization": f"Bearer {world.alice_key}"}
            ),
            id="get",
        ),
        pytest.param(lambda client, world: client.get("/api/v1/openapi.json"), id="document"),
    ],
)
def test_api_answers_carry_no_cookie_and_no_vary_cookie(browser_app, call):
    world = make_world(browser_app)
    client = signed_in_client(browser_app, "alice")  # a browser's session cookie goes along
    response = call(client, world)
    assert response.status_code < 500, response.get_data(as_text=True)
    assert_no_cookie_machinery(response)


def test_an_api_post_with_a_session_cookie_needs_no_csrf_token_and_is_decided_by_the_key(
    browser_app,
):
    world = make_world(browser_app)
    client = signed_in_client(browser_app, "alice")
    assert post(client, world.alice_key, VALID).status_code == 202
    # alice's session says nothing to the API: without a key it is a 401, with bob's key bob's.
    assert client.post("/api/v1/notifications", json=VALID).status_code == 401
    answer = post(client, world.bob_key, VALID)
    assert answer.status_code == 202
    assert answer.get_json()["notifications"][0]["connection"]["id"] == world.bob_ops


def test_pages_keep_the_session_the_remember_hook_and_csrf(browser_app):
    make_world(browser_app)
    client = signed_in_client(browser_app, "alice")
    page = client.get("/connections")
    assert page.status_code == 200
    assert "remember_token=" in " ".join(page.headers.getlist("Set-Cookie"))  # the hook ran
    assert "cookie" in page.headers.get("Vary", "").lower()
    refused = client.post("/settings", data={})  # a page's form without its CSRF token
    assert refused.status_code == 400


def test_the_api_documentation_is_a_page_with_its_session(browser_app):
    # /api/v1/docs lives under /api/ but is a page: the signed-in navigation needs the session.
    make_world(browser_app)
    client = signed_in_client(browser_app, "alice")
    page = client.get("/api/v1/docs")
    assert page.status_code == 200, page.get_data(as_text=True)[:300]
    assert "cookie" in page.headers.get("Vary", "").lower()
    assert "alice" in page.get_data(as_text=True)


def test_the_hooks_are_found_at_start_up(tmp_path):
    # pages_only.install raises when Flask-Login's or Flask-WTF's hook is not where it looks.
    app = create_app(make_test_config(tmp_path))
    names = [hook.__name__ for hook in app.before_request_funcs[None]]
    assert "csrf_protect" in names
