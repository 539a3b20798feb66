"""Every page audited by axe-core in Chromium (issue 23): signed in over the data of
:func:`tests.factories.seed_every_page`, in every language the site offers, on a desktop and
at 390 px, no page may have a serious or critical violation.

axe-core is npm's package, installed by ``make test``'s setup into .axe/ (the Makefile's
``$(AXE)`` target; NOTIFY_SITE_AXE points elsewhere). Playwright injects its script into
each page through a browser context that bypasses the Content-Security-Policy, for the audit
only: the site's policy itself stays strict (tests/unit/test_security_headers.py).

The pages are those of the all-pages list (tests/pages.py) that are whole pages (kind
"html"), so a new page is audited without touching this file. One live site and one seeding
serve the whole module; each language × width is one test that walks every page.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from notify_site.i18n import LANGUAGES
from tests.browser.steps import DESKTOP, PHONE, connect, register, screenshot
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
AXE = Path(os.environ.get("NOTIFY_SITE_AXE", ROOT / ".axe/node_modules/axe-core/axe.min.js"))
#: The impacts that fail the audit (axe's four are minor, moderate, serious, critical).
FAILING = {"serious", "critical"}
WIDTHS = {"desktop": DESKTOP, "phone": PHONE}


#: Left out of the audit: Swagger UI's drawing of the API document on /api/v1/docs (the
#: swagger-ui-bundle package, 4.15.5). Its colours are the site's (static/css/api-docs.css), but
#: its markup is upstream's: operation summaries are buttons holding buttons
#: (nested-interactive, label-content-name-mismatch) and a select without a label.
EXCLUDED = ["#swagger-ui"]


def audit(page) -> list[dict]:
    """axe's violations on the page now loaded (but :data:`EXCLUDED`)."""
    page.add_script_tag(path=str(AXE))
    return page.evaluate(
        "(excluded) => axe.run({ exclude: excluded.map((s) => [s]) }, "
        "{ resultTypes: ['violations'] })",
        EXCLUDED,
    )["violations"]


def failures(violations: list[dict], where: str) -> list[tuple[str, int]]:
    """One line per failing rule (its impact, the first element, why) and how many elements."""
    return [
        (
            f"{where}: {v['id']} ({v['impact']}, {len(v['nodes'])}×) e.g. "
            f"{v['nodes'][0]['target']} {v['nodes'][0].get('failureSummary', '')[:160]!r}",
            len(v["nodes"]),
        )
        for v in violations
        if v["impact"] in FAILING
    ]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("locale", list(LANGUAGES))
def test_no_page_has_a_serious_accessibility_violation(chromium, every_page_site, locale, width):
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `make test` installs axe-core (or set NOTIFY_SITE_AXE)")
    live, paths = every_page_site
    context = chromium.new_context(viewport=WIDTHS[width], bypass_csp=True)
    context.add_cookies([{"name": "lang", "value": locale, "url": live.site}])
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[tuple[str, int]] = []
    try:
        # The visitor's pages first, then sign in as the seeded admin.
        for listed, path in paths:
            if listed.anonymous:
                page.goto(live.site + path)
                problems += failures(audit(page), f"{listed.endpoint} [{locale}, {width}]")
        page.goto(f"{live.site}/login")
        page.fill("#username", "root")
        page.fill("#password", PASSWORD)
        page.locator("main button.primary[type=submit]").click()
        expect(page).not_to_have_url(f"{live.site}/login")
        for listed, path in paths:
            if listed.anonymous:
                continue
            answer = page.goto(live.site + path)
            assert answer.status == listed.status, f"{path}: {answer.status}"
            problems += failures(audit(page), f"{listed.endpoint} [{locale}, {width}]")
    finally:
        context.close()
    elements = sum(count for _, count in problems)
    assert not problems, (
        f"{len(problems)} serious or critical rules failed on {elements} elements:\n"
        + "\n".join(line for line, _ in problems)
    )


# The focus ring of the element that has the keyboard's focus: its outline, and whether the
# page shows it as keyboard focus.
FOCUS_RING = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  return {
    tag: el.tagName, id: el.id, text: (el.textContent || el.value || "").trim().slice(0, 40),
    cls: el.className, visible: el.matches(":focus-visible"), dark: !!el.closest(".relay-topbar"),
    outline: `${style.outlineStyle} ${style.outlineWidth} ${style.outlineColor}`,
  };
}"""
RING = "solid 3px rgb(11, 87, 208)"  # base.css --focus, 6.4:1 on white
WHITE_RING = "solid 3px rgb(255, 255, 255)"  # on the relay's dark top bar (relay.css)


def tab_walk(page, steps: int) -> list[dict]:
    """Press Tab up to ``steps`` times from where the focus is; each focused element's ring
    (until the focus leaves the page, which leaves it on <body>).

    Waits for the page's load event first: a page reached by a redirect can be walked before
    its stylesheet applies, and then shows the browser's own ring (it did once, under CI's
    load, on the relay's consent page)."""
    page.wait_for_load_state("load")
    rings = []
    for _ in range(steps):
        page.keyboard.press("Tab")
        ring = page.evaluate(FOCUS_RING)
        if ring["tag"] == "BODY":
            break
        rings.append(ring)
    return rings


def walk_all(page, steps: int = 60) -> list[dict]:
    """Tab through the whole page: every control must show the one focus ring."""
    rings = tab_walk(page, steps)
    assert len(rings) > 3, rings
    unseen = [
        ring
        for ring in rings
        if not ring["visible"] or ring["outline"] != (WHITE_RING if ring["dark"] else RING)
    ]
    assert not unseen, f"{page.url}: {unseen}"
    return rings


def test_a_keyboard_sees_where_it_is_and_lands_on_what_went_wrong(live, page):
    # Registering with nothing filled in: the focus goes to the first field in error.
    page.goto(f"{live.site}/register")
    page.locator("main button.primary[type=submit]").click()
    expect(page.locator("#username")).to_be_focused()
    register(page, live)

    # The first Tab reaches the skip link, which shows and leads to the page's content.
    page.goto(f"{live.site}/connections")
    rings = tab_walk(page, 1)
    assert rings[0]["cls"] == "skip-link"
    expect(page.locator(".skip-link")).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()

    # Every control on the way to the green button shows the same ring, the button too.
    rings = tab_walk(page, 25)
    unseen = [ring for ring in rings if not ring["visible"] or ring["outline"] != RING]
    assert not unseen, unseen
    green = [ring for ring in rings if "primary" in ring["cls"]]
    assert green, rings
    page.get_by_role("button", name="Connect a chat").focus()
    screenshot(page, "a11y-focus-green-button")
    connect(page, live, "Ops", "1-on-1")

    # The relay's consent page: every control, "Agree and connect" included, shows the ring.
    page.fill("#label", "Kin")
    page.get_by_role("button", name="Connect a chat").click()
    expect(page).to_have_url(re.compile(re.escape(live.relay) + r"/oauth/authorize"))
    walked = walk_all(page)
    assert "Agree and connect" in {ring["text"] for ring in walked}, walked
    page.get_by_role("button", name="Agree and connect").focus()
    screenshot(page, "a11y-focus-consent")
    page.get_by_label(re.compile("Family")).check()
    page.get_by_role("button", name="Agree and connect").click()
    expect(page).to_have_url(f"{live.site}/connections")

    # My page (the relay) and the send form: the same ring on every control.
    page.goto(f"{live.relay}/my/")
    walk_all(page)
    page.goto(f"{live.site}/send")
    walk_all(page)

    # Sending an empty message: the focus goes to the summary of what to fix.
    page.goto(f"{live.site}/send")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator("main .flash-error")).to_be_focused()
    screenshot(page, "a11y-send-error-focus")
