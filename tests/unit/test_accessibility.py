"""What a keyboard or screen-reader user needs from the markup (issue 23); the browser test
tests/browser/test_accessibility_browser.py audits every page with axe-core on top of this.

* account fields say what they hold (``autocomplete``, WCAG 1.3.5);
* every page starts with a skip link to its ``<main>``;
* action columns have a header a screen reader reads (hidden from sight);
* the password rule is beside the field from the start, tied to it by aria-describedby;
* the stylesheet defines every colour variable it uses, and one :focus-visible style.
"""

from __future__ import annotations

import re
from pathlib import Path

from notify_site.extensions import db
from notify_site.models import User
from tests.factories import create_api_key, create_connection, login
from tests.htmltree import parse

ROOT = Path(__file__).resolve().parents[2]


def _input(page, name: str):
    [element] = parse(page).find_all("input", name=name)
    return element.attrs


def test_account_fields_say_what_they_hold(client, alice):
    sign_in = client.get("/login").get_data(as_text=True)
    assert _input(sign_in, "username")["autocomplete"] == "username"
    assert _input(sign_in, "password")["autocomplete"] == "current-password"
    register = client.get("/register").get_data(as_text=True)
    assert _input(register, "username")["autocomplete"] == "username"
    assert _input(register, "password")["autocomplete"] == "new-password"
    assert _input(register, "confirm")["autocomplete"] == "new-password"
    login(client)
    settings = client.get("/settings").get_data(as_text=True)
    assert _input(settings, "current_password")["autocomplete"] == "current-password"
    assert _input(settings, "new_password")["autocomplete"] == "new-password"


def test_the_password_rule_shows_beside_the_field_before_any_attempt(client):
    page = parse(client.get("/register").get_data(as_text=True))
    [password] = page.find_all("input", name="password")
    [hint] = page.find_all("p", id="password-hint")
    assert hint.text == "At least 8 characters."
    assert password.attrs["aria-describedby"] == "password-hint"


def test_a_failed_field_is_described_by_its_rule_and_its_error(client):
    page = client.post("/register", data={"username": "someone", "password": "short"})
    [password] = parse(page.get_data(as_text=True)).find_all("input", name="password")
    assert password.attrs["aria-invalid"] == "true"
    assert password.attrs["aria-describedby"] == "password-hint password-error"


def test_every_page_starts_with_a_skip_link_to_main(client, alice):
    for path in ["/login", "/relay/inbox"]:
        if path.startswith("/relay"):
            login(client)  # the relay's pages, in the relay's own layout
        answer = client.get(path)
        assert answer.status_code == 200, path
        page = parse(answer.get_data(as_text=True))
        [body] = page.find_all("body")
        first = next(child for child in body.children if not isinstance(child, str))
        assert first.tag == "a", path
        assert first.attrs["href"] == "#main", path
        assert first.attrs["class"] == "skip-link"
        assert page.find_all("main", id="main"), path


def test_action_columns_have_a_header_for_screen_readers(client, app, alice):
    with app.app_context():
        create_connection(db.session.get(User, alice), label="Ops")
        create_api_key(db.session.get(User, alice), "Cron")
    login(client)
    for path in ["/connections", "/api-keys", "/admin/users"]:
        page = parse(client.get(path).get_data(as_text=True))
        headers = page.find_all("th")
        assert headers, path
        assert all(th.text for th in headers), f"{path}: an empty <th>"
        assert page.find_all("span", class_="visually-hidden"), path


def test_the_palette_defines_what_it_uses_and_one_focus_style():
    css = (ROOT / "notify_site/web/static/css/base.css").read_text()
    defined = set(re.findall(r"(--[a-z-]+):", css))
    used = set(re.findall(r"var\((--[a-z-]+)", css))
    assert used <= defined, used - defined
    assert ":focus-visible { outline: 3px solid var(--focus)" in css
    # The text and button green is dark enough for white text; the accent stays LINE's.
    assert "--green-dark: #067a35;" in css
    assert ".button.primary { background: var(--green-dark);" in css
