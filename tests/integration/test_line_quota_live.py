"""The site and the relay over real HTTP (issue 15): the relay reports its monthly LINE figures
in the X-LineQuota-* extension headers, the site stores them and its dashboard shows them."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.models import Connection, User
from notify_site.notify_content import Content
from notify_site.services.notifications import queue_notifications
from notify_site.worker import Worker
from tests.htmltree import card, parse
from tests.integration.helpers import connect_chat, register


@pytest.fixture
def live_overrides():
    return {"RELAY_SANDBOX_MONTHLY_QUOTA": 12, "RELAY_SANDBOX_GROUP_MEMBERS": 5}


def test_the_dashboard_shows_the_relays_monthly_figures(live):
    browser = requests.Session()
    register(browser, live.site)
    connect_chat(browser, live.site, "Family", "Family")
    with live.app.app_context():
        connection = db.session.scalars(select(Connection)).one()
        owner = db.session.get(User, connection.owner_id)
        for text in ("one", "two"):
            queue_notifications(owner, [connection], Content(message=text))
        connection_id = connection.id
    assert Worker(live.app).run_until_idle() == 2
    page = parse(browser.get(f"{live.site}/dashboard", timeout=10).text)
    figures = card(page, connection_id).one(data_field="line_quota")
    assert "10 of 12 used" in figures.text  # a sandbox group of 5, twice
    with live.app.app_context():
        stored = db.session.get(Connection, connection_id)
        assert (stored.line_quota_limit, stored.line_quota_remaining) == (12, 2)
