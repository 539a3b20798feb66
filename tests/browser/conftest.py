"""Browser fixtures: Debian's Chromium driven by Playwright (never `playwright install`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import Live
from tests.factories import seed_every_page
from tests.pages import SMOKE_CONFIG, collection_app, pages_for
from tests.pg_schemas import ALL_ON_POSTGRES

CHROMIUM = os.environ.get("NOTIFY_SITE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


# Playwright's assertions wait as long as the pages' actions do (15 s, the page fixture):
# under CI's load, with the suite's processes on both cores, 5 s was too short for a
# preview's round trip (test_webhooks_browser.py failed once waiting for one). A check
# that passes waits no longer than it did.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="session")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium) "
            "or point NOTIFY_SITE_CHROMIUM at a Chromium binary."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1200, "height": 850})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def _html_pages():
    with collection_app() as app:
        return [page for page in pages_for(app) if page.kind == "html"]


#: The whole pages (kind "html") of the all-pages list, tests/pages.py.
HTML_PAGES = _html_pages()


@pytest.fixture(scope="module")
def every_page_site(tmp_path_factory):
    """A live site with data on every page (tests.factories.seed_every_page: the admin is
    "root") and the path of each of :data:`HTML_PAGES`, as (page, path): for the tests that
    walk every page (accessibility, phone width). One per module: the walks only read.

    Not on the PostgreSQL pass: that pass gives each *test* its own schema, and these walks
    audit what pages look like, not the database (make test runs them on every change)."""
    if ALL_ON_POSTGRES:
        pytest.skip("the page audits run on the SQLite pass (make test)")
    live = Live(tmp_path_factory.mktemp("every-page"), **SMOKE_CONFIG)
    try:
        data = seed_every_page(live.app)
        with live.app.test_request_context():
            paths = [(page, page.url(data)) for page in HTML_PAGES]
        yield live, paths
    finally:
        live.stop()
