"""Rough edges a first-time user hit (issue 20): the 404 page's title, the API's 404 wording,
/favicon.ico."""

from __future__ import annotations

from tests.htmltree import parse


def test_a_missing_page_says_so_in_its_title(client):
    answer = client.get("/no-such-page")
    assert answer.status_code == 404
    page = parse(answer.get_data(as_text=True))
    assert page.one("title").text.startswith("Page not found")
    assert page.one("h1").text == "Page not found"
    assert "something went wrong" not in answer.get_data(as_text=True)


def test_the_apis_404_speaks_to_a_program(client):
    for path in ("/api/v1/nothing-here", "/api/v1/connections/999999"):
        answer = client.get(path, headers={"Authorization": "Bearer nsk_nope"})
        assert answer.is_json, path
    error = client.get("/api/v1/nothing-here").get_json()["error"]
    assert error["code"] == "not_found"
    assert "home page" not in error["message"]
    assert "/api/v1/openapi.json" in error["message"]


def test_favicon_ico_is_the_sites_icon(client):
    answer = client.get("/favicon.ico")
    assert answer.status_code == 200
    assert answer.mimetype == "image/svg+xml"
    assert answer.get_data().lstrip().startswith(b"<svg")
