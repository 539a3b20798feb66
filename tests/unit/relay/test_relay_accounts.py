"""Who is signed in, as the relay learns it: through the accounts port the factory hands it
(relay/accounts.py, wiring.SiteAccounts), never from the site's user object; and the relay's
own page frame, which shows it."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

import pytest

from notify_site.relay.accounts import Person
from notify_site.relay.accounts import init_app as set_accounts
from notify_site.services import accounts as site_accounts
from notify_site.wiring import SiteAccounts
from tests.factories import create_user, login


def links(page: str) -> set[str]:
    """Every link's target on the page."""
    return {html.unescape(href) for href in re.findall(r'href="([^"]*)"', page)}


@dataclass
class FakeAccounts:
    """An accounts port with no site behind it."""

    person: Person | None
    admins: set[int] = field(default_factory=set)
    asked: list[str] = field(default_factory=list)

    def current_person(self) -> Person | None:
        self.asked.append("current_person")
        return self.person

    def is_admin(self, person_id: int) -> bool:
        return person_id in self.admins

    def display_names(self, person_ids) -> dict[int, str]:
        # The LINE page names the people who have budgets or tokens (issue 15).
        return {person_id: f"person {person_id}" for person_id in person_ids}

    def sign_in_url(self, next_url: str) -> str:
        return f"https://accounts.example/sign-in?next={next_url}"

    def language_url(self) -> str:
        return "https://accounts.example/language"


@pytest.mark.parametrize(
    ("person", "status"),
    [
        (Person(7, "Operator", is_admin=True), 200),
        (Person(8, "Visitor", is_admin=False), 403),
        (None, 302),
    ],
)
def test_the_channel_page_asks_the_port_who_is_an_admin(app, client, person, status):
    port = FakeAccounts(person)
    set_accounts(app, port)
    answer = client.get("/relay/line/admin")  # nobody is signed in to the site
    assert answer.status_code == status
    assert "current_person" in port.asked
    if status == 302:
        assert answer.headers["Location"] == (
            "https://accounts.example/sign-in?next=/relay/line/admin"
        )
    if status == 200:
        page = answer.get_data(as_text=True)
        assert "Operator" in page
        assert 'action="https://accounts.example/language"' in page


def test_the_sites_accounts_answer_the_port(app, client):
    with app.app_context():
        root = create_user("root", admin=True)
        bob = create_user("bob")
        root_id, bob_id = root.id, bob.id
    accounts = SiteAccounts()
    with app.test_request_context("/relay/inbox"):
        assert accounts.current_person() is None
        assert accounts.is_admin(root_id) is True
        assert accounts.is_admin(bob_id) is False
        assert accounts.is_admin(999_999) is False
        assert (
            accounts.sign_in_url("/relay/inbox?chat=2") == "/login?next=%2Frelay%2Finbox%3Fchat%3D2"
        )
        assert accounts.language_url() == "/language"
    login(client, "bob")
    with client:
        client.get("/relay/inbox")
        assert accounts.current_person() == Person(bob_id, "bob", is_admin=False)


def test_a_disabled_admin_is_no_admin_to_the_relay(app):
    with app.app_context():
        root = create_user("root", admin=True)
        other = create_user("other", admin=True)
        site_accounts.set_disabled(root, other.id, True)
        assert SiteAccounts().is_admin(other.id) is False
        assert SiteAccounts().is_admin(root.id) is True


def test_the_relay_frame_shows_who_is_signed_in(app, client):
    anonymous = links(client.get("/relay/oauth/authorize?x=1").get_data(as_text=True))
    assert "/login?next=%2Frelay%2Foauth%2Fauthorize%3Fx%3D1" in anonymous
    assert "/relay/line/admin" not in anonymous
    with app.app_context():
        create_user("root", admin=True)
    login(client, "root")
    page = client.get("/relay/inbox").get_data(as_text=True)
    assert re.search(r'class="who">root <span class="badge">admin</span>', page)
    assert "/relay/line/admin" in links(page)


def test_the_consent_page_is_the_relays_not_the_sites(client, authorize_params, person):
    with client:
        answer = client.get("/relay/oauth/authorize", query_string=authorize_params())
    page = answer.get_data(as_text=True)
    # No site navigation, no site stylesheet or script (issue 20): the relay's own frame.
    for site_page in ("/dashboard", "/connections", "/send", "/api-keys", "/settings"):
        assert site_page not in links(page)
    assert "<nav" not in page
    assert "/static/css/site.css" not in page
    assert "/static/js/site.js" not in page
    assert '<link rel="stylesheet" href="/web/static/css/base.css">' in page
    assert '<link rel="stylesheet" href="/relay/static/relay/relay.css">' in page
    assert "<title>Connect Example Service · Notify relay</title>" in html.unescape(page)
    assert 'class="brand relay-brand">Notify relay<' in page
    # The footer's language switcher still works from here, posting to the accounts' setting.
    assert 'action="/language"' in page


def test_the_consent_page_frame_is_translated(client, authorize_params, person):
    page = client.get(
        "/relay/oauth/authorize", query_string=authorize_params(), headers={"Accept-Language": "ja"}
    ).get_data(as_text=True)
    assert 'class="brand relay-brand">Notify リレー<' in page
    assert "LINE Notify と同じ OAuth と API" in page
