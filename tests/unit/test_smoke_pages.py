"""Every route of the app, in every language, with data on every page (issue 12).

An admin, signed in over :func:`tests.factories.seed_every_page` (connections of both kinds and
every status, notifications in every state, API keys, a second user, the relay's inbox with a
sticker and images), requests each route of the site and the relay in each language the site
offers, and the answer must be:

* the route's intended status (200 unless tests/pages.py says otherwise);
* of the route's kind (a page, a fragment, JSON...);
* in that language: ``<html lang>`` says so, and no English text of the site's catalogue shows
  where the catalogue has a translation (a missing translation, a string not marked for
  translation, a Babel format falling back to English), and no placeholder is left unfilled;
* with every element id used once (a label's ``for`` finds the first element with its id: the
  LINE page's budget label pointed at a section, not its input).

The relay's pages are requested a second time with the relay in channel mode (a LINE channel
on the fake Messaging API, with LINE chats, a push and webhook events), where its consent
page and admin page are other templates. Every page is also requested under a forged Host
header, which must show up nowhere in the answer.

The routes come from the app's URL map and the languages from ``notify_site.i18n.LANGUAGES``,
so a new route or a new language is covered without touching this file. Known limit: only
English pieces of two words and 12 characters or more are looked for (shorter ones, such as
a status word, also occur in data and in the other languages' text).

**Adding a route**: usually nothing to do. A GET route without URL arguments is requested as
it is and must answer 200; a POST-only route must answer a GET with 405. A route with URL
arguments, or one whose intended answer is not 200, makes
``test_every_route_is_in_the_page_list`` fail, naming it, until it has an entry in
``LISTED`` in tests/pages.py (its URL arguments from the seeded data, its status and kind). If
the page needs data to show, add it to ``seed_every_page`` in tests/factories.py.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from flask import Flask

from notify_site import create_app
from notify_site.extensions import db
from notify_site.i18n import HTML_LANG, LANGUAGES, TRANSLATIONS_DIR
from tests.conftest import init_database, make_test_config
from tests.factories import PageData, login, seed_every_page, seed_line_channel
from tests.fakes.line_api import FakeLineServer, channel_config
from tests.pages import (
    LISTED,
    SMOKE_CONFIG,
    Page,
    UnlistedRouteError,
    channel_pages,
    collection_app,
    pages_for,
)
from tests.pg_schemas import ALL_ON_POSTGRES, PG_URL, PostgresSchemas


def _page_list() -> tuple[list[Page], str | None]:
    with collection_app() as app:
        try:
            return pages_for(app), None
        except UnlistedRouteError as error:
            return [], str(error)


PAGES, PAGE_LIST_ERROR = _page_list()
CHANNEL_PAGES = channel_pages(PAGES)
LOCALES = list(LANGUAGES)

# ------------------------------------------------------------------ what "untranslated" is

_PLACEHOLDER = re.compile(r"%\([A-Za-z_]+\)[sd]|\{[01]\}")
# Pieces of a msgid between its placeholders and markup.
_SPLIT = re.compile(r"%\([^)]*\)[sd]|%[sd]|<[^>]*>|\{[^}]*\}|\n")


def _english_fragments(locale: str) -> dict[str, str]:
    """English pieces of the catalogue that must not show on a page in ``locale``: those of
    at least two words and 12 characters whose translation does not contain them, mapped to
    their msgid."""
    with (TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle)
    fragments: dict[str, str] = {}
    for message in catalog:
        if not message.id or not message.string:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        translated = " ".join(strings)
        for msgid in ids:
            for piece in _SPLIT.split(msgid):
                piece = piece.strip(" .,:;!?—–-()“”‘’\"'")
                if len(piece) >= 12 and " " in piece and piece not in translated:
                    fragments[piece] = msgid
    return fragments


_FRAGMENTS = {locale: _english_fragments(locale) for locale in LOCALES if locale != "en"}

# Attributes that people read (or hear). Every data-* attribute except the two that carry
# machine data is read as a script's text: data-label is shown on phones, others (data-one,
# data-capped...) are templates a script fills, so their placeholders stay unfilled.
_READ_ATTRIBUTES = {"title", "alt", "aria-label", "placeholder", "aria-description"}
_MACHINE_DATA = {"data-i18n", "data-hourly"}


class _Readable(HTMLParser):
    """The text a person meets on a page: text nodes and readable attributes (``parts``), and
    the strings handed to scripts (``script_strings``): data-* attributes and the values of
    ``data-i18n`` (whose keys are English names)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        #: The scripts' strings: their placeholders are filled in the browser.
        self.script_strings: list[str] = []
        self.lang: str | None = None
        #: Every element id, in order: a label's ``for`` and ARIA references need them unique.
        self.ids: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if value is None:
                continue
            if name == "id":
                self.ids.append(value)
            if tag == "html" and name == "lang":
                self.lang = value
            elif name == "data-i18n":
                strings = json.loads(value)
                self.script_strings.extend(strings["strings"].values())
                self.script_strings.extend(strings["statuses"].values())
            elif name in _READ_ATTRIBUTES:
                self.parts.append(value)
            elif name.startswith("data-") and name not in _MACHINE_DATA:
                self.script_strings.append(value)

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def _json_texts(value, key: str = "") -> list[str]:
    """The values a page shows people from JSON: ``message`` and ``*_text`` fields (the rest
    is data: stored English errors, labels, ids)."""
    if isinstance(value, str):
        return [value] if key == "message" or key.endswith("_text") else []
    if isinstance(value, dict):
        return [text for name, item in value.items() for text in _json_texts(item, name)]
    if isinstance(value, list):
        return [text for item in value for text in _json_texts(item, key)]
    return []


def _untranslated(texts: list[str], locale: str, *, templates: list[str] = ()) -> list[str]:
    """What in ``texts`` is English that ``locale``'s catalogue translates, or a placeholder
    left unfilled; ``templates`` (the scripts' strings) are checked for English only."""
    found = []
    joined = "\n".join(html.unescape(text) for text in texts)
    for match in _PLACEHOLDER.finditer(joined):
        found.append(f"unfilled placeholder {match.group()!r}")
    joined += "\n" + "\n".join(templates)
    for fragment, msgid in _FRAGMENTS.get(locale, {}).items():
        if fragment in joined:
            found.append(f"English {fragment!r} (msgid {msgid!r})")
    return found


# ------------------------------------------------------------------------------ the tests


@dataclass(frozen=True)
class Smoke:
    app: Flask
    data: PageData
    #: The admin's signed-in session cookie.
    session: str


@contextmanager
def _seeded_app(tmp: Path, **overrides) -> Iterator[Smoke]:
    """An app with data on every page and the admin signed in; on the PostgreSQL pass its
    data lives in a schema of its own, dropped afterwards."""
    schemas = PostgresSchemas(PG_URL) if ALL_ON_POSTGRES else None
    url = schemas.new_url() if schemas else "sqlite:///" + str(tmp / "smoke.sqlite3")
    app = create_app(make_test_config(tmp, DATABASE_URL=url, **SMOKE_CONFIG, **overrides))
    try:
        init_database(app)
        data = seed_every_page(app)
        client = app.test_client()
        login(client, data.admin)
        session = client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
        yield Smoke(app, data, session)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if schemas:
            schemas.drop_all()


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Iterator[Smoke]:
    """One app and one set of data for the whole module: the requests only read (~500 of
    them; seeding for each would cost more than the requests)."""
    with _seeded_app(tmp_path_factory.mktemp("smoke")) as smoke:
        yield smoke


@pytest.fixture(scope="module")
def channel_smoke(tmp_path_factory) -> Iterator[Smoke]:
    """The same with the relay in channel mode, on the fake Messaging API."""
    fake = FakeLineServer()
    try:
        # The seeded push stays pending (no wait for LINE), so the admin page lists one.
        config = channel_config(fake, "https://relay.example/relay", RELAY_LINE_SYNC_WAIT_SECONDS=0)
        with _seeded_app(tmp_path_factory.mktemp("channel"), **config) as smoke:
            seed_line_channel(smoke.app, smoke.data, fake)
            yield smoke
    finally:
        fake.stop()


def test_every_route_is_in_the_page_list():
    assert PAGE_LIST_ERROR is None, PAGE_LIST_ERROR
    assert {page.endpoint for page in PAGES} >= {"admin.index", "relay.inbox", "static"}


def test_every_offered_language_has_a_catalogue():
    catalogues = {path.name for path in TRANSLATIONS_DIR.iterdir() if path.is_dir()}
    assert catalogues == set(LOCALES) - {"en"}
    assert set(HTML_LANG) == set(LOCALES)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("page", PAGES, ids=Page.label)
def test_every_page_answers_in_every_language(smoke, page, locale):
    check_page(smoke, page, locale)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("page", CHANNEL_PAGES, ids=Page.label)
def test_every_relay_page_answers_in_every_language_in_channel_mode(channel_smoke, page, locale):
    check_page(channel_smoke, page, locale)


def check_page(smoke: Smoke, page: Page, locale: str) -> None:
    """Request ``page`` in ``locale`` and check its status, kind and language."""
    client = smoke.app.test_client()
    client.set_cookie("lang", locale)
    if not page.anonymous:
        client.set_cookie(smoke.app.config["SESSION_COOKIE_NAME"], smoke.session)
    with smoke.app.test_request_context():
        url = page.url(smoke.data)
    headers = {"Accept-Language": HTML_LANG[locale], **page.headers(smoke.data)}
    answer = client.get(url, headers=headers)
    body = answer.get_data(as_text=page.kind != "file")

    assert answer.status_code == page.status, f"GET {url}: {answer.status_code}\n{body!s:.2000}"
    kind = page.kind or ("json" if answer.is_json else "html")
    if kind == "file":
        assert body, f"GET {url}: empty"
        return
    if kind == "text":
        assert answer.mimetype == "text/plain", answer.mimetype
        return
    if kind == "json":
        assert answer.is_json, f"GET {url}: {answer.mimetype}\n{body:.2000}"
        texts, templates = _json_texts(answer.get_json()), []
    else:
        assert answer.mimetype == "text/html", f"GET {url}: {answer.mimetype}"
        reader = _Readable()
        reader.feed(body)
        texts, templates = reader.parts, reader.script_strings
        if kind == "html":
            assert reader.lang == HTML_LANG[locale], f"GET {url}: <html lang={reader.lang!r}>"
        repeated = sorted({i for i in reader.ids if reader.ids.count(i) > 1})
        assert not repeated, f"GET {url}: ids used more than once: {repeated}"
    leaks = _untranslated(texts, locale, templates=templates)
    assert not leaks, f"GET {url} in {locale}:\n" + "\n".join(leaks)


def test_the_check_sees_english_on_a_page_that_should_be_japanese(smoke):
    # The smoke test is only as good as this check: an English page, read as if it were the
    # Japanese one, must be caught.
    client = smoke.app.test_client()
    client.set_cookie(smoke.app.config["SESSION_COOKIE_NAME"], smoke.session)
    reader = _Readable()
    reader.feed(client.get("/admin", headers={"Accept-Language": "en"}).get_data(as_text=True))
    leaks = _untranslated(reader.parts, "ja", templates=reader.script_strings)
    assert "English 'Stuck notifications' (msgid 'Stuck notifications')" in leaks
    assert "English 'Failed in the last 24 hours' (msgid 'Failed in the last 24 hours')" in leaks
    assert _untranslated(["%(count)s connections"], "en") == ["unfilled placeholder '%(count)s'"]


@pytest.mark.parametrize("page", PAGES, ids=Page.label)
def test_no_page_takes_its_host_from_the_request(smoke, page):
    # TRUSTED_HOSTS is unset, so the Host header is whatever the client sent: no answer may
    # build a URL (a link, an image, a redirect) from it.
    forged = "evil.example"
    client = smoke.app.test_client()
    if not page.anonymous:
        client.set_cookie(smoke.app.config["SESSION_COOKIE_NAME"], smoke.session, domain=forged)
    with smoke.app.test_request_context():
        url = page.url(smoke.data)
    answer = client.get(url, base_url=f"http://{forged}", headers=page.headers(smoke.data))
    assert answer.status_code == page.status, url
    assert forged not in str(answer.headers)
    assert forged.encode() not in answer.get_data(), url


def test_the_channel_mode_pages_have_their_data(channel_smoke):
    client = channel_smoke.app.test_client()
    client.set_cookie(channel_smoke.app.config["SESSION_COOKIE_NAME"], channel_smoke.session)
    admin = client.get("/relay/line/admin").get_data(as_text=True)
    assert "Aiko" in admin
    assert "Night shift" in admin
    assert "pending: 1" in admin  # the push of the message sent to Aiko
    with channel_smoke.app.test_request_context():
        authorize = LISTED["relay.authorize"].url(channel_smoke.data)
    assert "relay-line-code" in client.get(authorize).get_data(as_text=True)
