"""What a person does in the browser, shared by the browser tests: register, sign in, connect a
sandbox chat through the relay's consent page (signing in at the relay's host first), send
from the form, say no to a button's confirmation; plus screenshots for people to look at, and
a day of earlier sends for the charts.

Every step waits with Playwright's auto-waiting expectations, never a fixed sleep.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from playwright.sync_api import expect
from sqlalchemy import select

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import Connection, NotificationStatus
from tests.factories import PASSWORD, create_notification

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1200, "height": 850}
# Every element of a quota card must stay inside the card, and the page must not scroll
# sideways. Tables scroll inside their .table-wrap by design, so they are left out.
OVERFLOW = """() => {
  const problems = [];
  const doc = document.documentElement;
  if (doc.scrollWidth > doc.clientWidth) {
    problems.push(`page ${doc.scrollWidth} > ${doc.clientWidth}`);
  }
  for (const box of document.querySelectorAll(".quota-card, .card")) {
    const outer = box.getBoundingClientRect();
    for (const el of box.querySelectorAll("*")) {
      if (el.closest(".table-wrap") || el.closest("template")) continue;
      const rect = el.getBoundingClientRect();
      if (rect.width === 0 || rect.height === 0) continue;
      const what = `${el.tagName}.${el.className} [${el.textContent.trim().slice(0, 30)}]`;
      if (rect.left < outer.left - 1 || rect.right > outer.right + 1) {
        problems.push(`${what} leaves its card`);
      }
      const visible = getComputedStyle(el).overflowX === "visible";
      if (visible && el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) {
        problems.push(`${what} overflows`);
      }
    }
  }
  return problems;
}"""
# (hours ago, delivered, failed): 24 delivered and 3 failed in five hours.
HISTORY = [(20, 3, 0), (14, 6, 1), (9, 2, 0), (5, 9, 2), (2, 4, 0)]


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/ for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def dismissed_question(page, button) -> str:
    """Click ``button``, say no to the confirmation it asks for, and return its question."""
    questions: list[str] = []

    def dismiss(dialog):
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    button.click()  # returns once the page's confirm() has had its answer
    assert len(questions) == 1, questions
    return questions[0]


def register(page, live, username: str = "alice") -> None:
    """Register through the form; the site signs the new account in."""
    page.goto(f"{live.site}/register")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{live.site}/connections")


def sign_in(page, live, username: str = "root") -> None:
    page.goto(f"{live.site}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(re.escape(live.site) + r"/connections"))


def sign_in_at_the_relay_if_asked(page, username: str = "alice") -> None:
    """After **Connect a chat**: the relay asks a person it does not know yet to sign in
    first (as LINE asked for a LINE login), since the chats it offers are that person's own.
    In the live tests the relay is another host (``localhost``), where the site's session
    cookie is not sent: sign in there once, and land on the consent page."""
    page.wait_for_url(re.compile(r"/login\?next=|/oauth/authorize"))
    if "/login?" in page.url:
        page.fill("#username", username)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r"/oauth/authorize"))


def connect(page, live, label: str, chat: str, username: str = "alice") -> None:
    """From /connections: connect the relay's sandbox chat whose label holds ``chat`` through
    its consent page, which names the site asking; back on /connections with it listed."""
    page.fill("#label", label)
    page.get_by_role("button", name="Connect a chat").click()
    sign_in_at_the_relay_if_asked(page, username)
    expect(page).to_have_url(re.compile(re.escape(live.relay) + r"/oauth/authorize"))
    expect(page.get_by_text("notify_site").first).to_be_visible()
    page.get_by_label(re.compile(re.escape(chat))).check()
    page.get_by_role("button", name="Agree and connect").click()
    expect(page).to_have_url(f"{live.site}/connections")
    expect(page.locator(".flash-success")).to_contain_text(f"Connected “{label}”")


def sign_up_and_connect(page, live, chats: list[tuple[str, str]]) -> None:
    """Register, then connect each (label, sandbox chat)."""
    register(page, live)
    for label, chat in chats:
        connect(page, live, label, chat)


def send_from_the_form(page, live, label: str, message: str) -> None:
    """Send ``message`` to the chat ``label`` and wait for the status page to say delivered
    (the test runs the in_process_worker fixture)."""
    page.goto(f"{live.site}/send")
    page.get_by_role("checkbox", name=re.compile(label)).check()
    page.fill("#message", message)
    page.get_by_role("button", name="Send", exact=True).click()
    row = page.locator("table.notifications tbody tr")
    expect(row.locator("[data-field=status]")).to_have_text("delivered", timeout=30_000)


def quota_card(page, label: str):
    """The dashboard's card of the chat ``label``."""
    return page.locator("article.quota-card").filter(
        has=page.get_by_role("heading", name=label, exact=True)
    )


def add_history(live) -> None:
    """A day of earlier sends to the first chat, so the chart has bars in several hours (some
    failed): :data:`HISTORY`."""
    with live.app.app_context():
        connection = db.session.scalars(select(Connection).order_by(Connection.id)).first()
        hour = utcnow().replace(minute=0, second=0, microsecond=0)
        for hours_ago, delivered, failed in HISTORY:
            for index in range(delivered + failed):
                at = hour - timedelta(hours=hours_ago) + timedelta(minutes=10 + index)
                ok = index < delivered
                create_notification(
                    connection,
                    message=f"Nightly report {hours_ago}/{index}",
                    status=NotificationStatus.DELIVERED if ok else NotificationStatus.FAILED,
                    attempts=1 if ok else 3,
                    last_error=None if ok else "500: Notify server error",
                    created=at,
                    finished=at + timedelta(seconds=2),
                )
