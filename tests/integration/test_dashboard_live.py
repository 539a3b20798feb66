"""The dashboard over real HTTP shows what the relay last said about each connection's quota.

A chat is connected through the real OAuth flow, a notification with an uploaded image is
delivered through the relay by the worker, and the page and its JSON are read by a session
signed in through the forms. The relay's truth is read straight from it: one more status call
with the connection's token, whose X-RateLimit headers are those of the same window, one
call further on.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.keyring import keyring
from notify_site.models import Connection, Notification, NotificationStatus, User
from notify_site.notify_content import Content, ImageFile, check_content
from notify_site.services.connections import connection_context
from notify_site.services.notifications import queue_notifications
from notify_site.worker import Worker
from tests import images
from tests.htmltree import card, parse
from tests.integration.helpers import connect_chat, register

PNG = images.png()
# Not the defaults (1000 / 50): the figures on the page can only have come from the relay.
CALLS, IMAGES = 40, 6


@pytest.fixture
def live_overrides():
    # No worker thread: the test delivers with Worker.run_until_idle(), so it knows the calls.
    return {"RELAY_RATE_LIMIT": CALLS, "RELAY_IMAGE_RATE_LIMIT": IMAGES}


@pytest.fixture
def browser(live) -> requests.Session:
    """A session signed in through the registration form, with one 1-on-1 chat connected."""
    session = requests.Session()
    register(session, live.site)
    connect_chat(session, live.site, "Me", "1-on-1")
    return session


def queue_and_deliver(live) -> int:
    with live.app.app_context():
        connection = db.session.scalars(select(Connection)).one()
        owner = db.session.get(User, connection.owner_id)
        queue_notifications(
            owner,
            [connection],
            check_content(
                "Camera 3 saw motion", image_file=ImageFile("motion.png", PNG, "image/png")
            ),
        )
        queue_notifications(owner, [connection], Content(message="All quiet again"))
        connection_id = connection.id
    assert Worker(live.app).run_until_idle() == 2
    return connection_id


def relay_status_headers(live, connection_id: int) -> dict[str, int]:
    """Ask the relay directly, with the connection's own token (this spends one call)."""
    with live.app.app_context():
        ciphertext = db.session.get(Connection, connection_id).token_ciphertext
        token = keyring().decrypt(ciphertext, context=connection_context(connection_id))
    answer = requests.get(
        f"{live.relay}/api/status", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return {
        name: int(answer.headers[f"X-RateLimit-{name}"])
        for name in ("Limit", "Remaining", "ImageLimit", "ImageRemaining", "Reset")
    }


def test_dashboard_shows_the_relays_last_answer(live, browser):
    connection_id = queue_and_deliver(live)

    body = browser.get(f"{live.site}/dashboard.json", timeout=10).json()
    page = parse(browser.get(f"{live.site}/dashboard", timeout=10).text)
    relay = relay_status_headers(live, connection_id)

    # The status call at connect, then two notify calls, one with an image upload.
    assert relay["Limit"] == CALLS
    assert relay["Remaining"] == CALLS - 4  # ... and our own status call just now
    assert relay["ImageLimit"] == IMAGES
    assert relay["ImageRemaining"] == IMAGES - 1

    [connection] = body["connections"]
    assert connection["id"] == connection_id
    assert connection["rate_limit"] == {
        "limit": relay["Limit"],
        "remaining": relay["Remaining"] + 1,  # the site has not seen our status call
        "image_limit": relay["ImageLimit"],
        "image_remaining": relay["ImageRemaining"],
        "reset": relay["Reset"],
        "reset_at": datetime.fromtimestamp(relay["Reset"], UTC).isoformat().replace("+00:00", "Z"),
        "checked_at": connection["rate_limit"]["checked_at"],
        "checked_by": "notify",
    }
    assert connection["type"] == "USER"

    me = card(page, connection_id)
    calls, images = me.one(data_gauge="calls"), me.one(data_gauge="images")
    assert calls.one(data_field="remaining").text == str(relay["Remaining"] + 1)
    assert calls.one(data_field="limit").text == str(relay["Limit"])
    assert images.one(data_field="remaining").text == str(relay["ImageRemaining"])
    assert images.one(data_field="limit").text == str(relay["ImageLimit"])
    assert me.one(data_field="countdown").attrs["data-reset"] == str(relay["Reset"])
    assert me.one(data_field="checked_by").text == "notify"

    assert [n["status"] for n in body["notifications"]] == [NotificationStatus.DELIVERED] * 2
    assert [n["excerpt"] for n in body["notifications"]] == [
        "All quiet again",
        "Camera 3 saw motion",
    ]
    assert sum(body["hourly"]["delivered"]) == body["hourly"]["delivered"][-1] == 2
    rows = page.one(id="recent-rows").find_all("tr")
    assert [r.one(data_field="status").text for r in rows] == ["delivered", "delivered"]

    with live.app.app_context():
        # The page shows the row the worker wrote, not a figure of its own.
        stored = db.session.get(Connection, connection_id)
        assert (stored.rate_remaining, stored.rate_image_remaining) == (CALLS - 3, IMAGES - 1)
        assert db.session.scalars(select(Notification.attempts)).all() == [1, 1]


def test_refresh_on_the_dashboard_spends_one_call_and_shows_the_status_answer(live, browser):
    connection_id = queue_and_deliver(live)
    page = browser.get(f"{live.site}/dashboard", timeout=10)
    me = card(parse(page.text), connection_id)
    [refresh] = [f for f in me.find_all("form") if f.one("button").text == "Refresh"]
    token = refresh.one("input", name="csrf_token").attrs["value"]

    done = browser.post(
        f"{live.site}{refresh.attrs['action']}", data={"csrf_token": token}, allow_redirects=False
    )
    assert done.status_code == 302
    assert done.headers["Location"] == "/dashboard"

    rate = browser.get(f"{live.site}/dashboard.json", timeout=10).json()["connections"][0]
    assert rate["rate_limit"]["remaining"] == CALLS - 4
    assert rate["rate_limit"]["checked_by"] == "status"
    relay = relay_status_headers(live, connection_id)
    assert rate["rate_limit"]["remaining"] == relay["Remaining"] + 1
    assert rate["rate_limit"]["reset"] == relay["Reset"]


def test_signed_out_json_is_a_401_not_a_redirect(live):
    answer = requests.get(f"{live.site}/dashboard.json", allow_redirects=False, timeout=10)
    assert answer.status_code == 401
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json()["error"]["code"] == "unauthorized"
