"""A ``next`` parameter is followed only when it is a plain path of one of our pages (issue 12).

``/static//x`` once made the URL map raise a redirect (a 308 to ``http://<Host>/static/x``)
out of the sign-in and the language switcher: the browser sent the sign-in form, password
and all, to that address again. :func:`notify_site.security.safe_local_path` is the one check
for the site and the relay; it never raises.
"""

from __future__ import annotations

import pytest

from notify_site.security import safe_local_path
from tests.factories import PASSWORD

# Paths the URL map answers by redirecting (merging slashes, adding one), and worse.
REFUSED = [
    "/static//x",
    "/static//css/site.css",
    "/relay/static//x",
    "/relay/static//relay/line.css",
    "//evil.example/x",
    "///evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
    "/\\evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/connections\r\nSet-Cookie: x=1",
    "/ connections",
    "/connections#frag",
    "/no-such-page",
    "/connections/",  # not our path: the URL map would redirect it
    "/logout",  # POST only
    "connections",
    "",
    None,
    "/" + "a" * 3000,
]

ALLOWED = ["/", "/connections", "/dashboard?x=1", "/relay/inbox?chat=2", "/static/css/site.css"]


@pytest.mark.parametrize("target", REFUSED)
def test_unsafe_paths_are_refused_and_nothing_raises(app, target):
    with app.test_request_context():
        assert safe_local_path(target) is None


@pytest.mark.parametrize("target", ALLOWED)
def test_our_own_pages_are_allowed(app, target):
    with app.test_request_context():
        assert safe_local_path(target) == target


@pytest.mark.parametrize("target", ["/static//x", "/relay/static//x", "//evil.example"])
def test_sign_in_with_a_redirecting_next_signs_in_and_goes_home(app, alice, target):
    client = app.test_client()
    answer = client.post(
        "/login", query_string={"next": target}, data={"username": "alice", "password": PASSWORD}
    )
    assert (answer.status_code, answer.headers["Location"]) == (302, "/connections")
    assert client.get("/connections").status_code == 200  # signed in


def test_sign_in_follows_a_plain_next(app, alice):
    answer = app.test_client().post(
        "/login?next=/dashboard", data={"username": "alice", "password": PASSWORD}
    )
    assert (answer.status_code, answer.headers["Location"]) == (302, "/dashboard")


@pytest.mark.parametrize("target", ["/static//x", "/relay/static//x", "/\t/evil.example"])
def test_the_language_switcher_drops_a_redirecting_next(client, target):
    answer = client.post("/language", data={"locale": "ja", "next": target})
    assert (answer.status_code, answer.headers["Location"]) == (302, "/")
    assert "lang=ja" in answer.headers["Set-Cookie"]
