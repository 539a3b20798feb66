"""The dashboard shows a connection's monthly LINE budget when its Notify server reports one
(the built-in relay's X-LineQuota-* extension headers, issue 15), and nothing when it does
not (a plain Notify server, as LINE Notify was)."""

from __future__ import annotations

from datetime import UTC, datetime

from notify_site.extensions import db
from notify_site.models import User
from notify_site.notify_client import RateLimit
from notify_site.services.connections import apply_rate_limit
from tests.factories import create_connection
from tests.htmltree import card, parse

RESET = datetime(2031, 6, 30, 15, 0, tzinfo=UTC)


def test_the_extension_headers_are_read_and_absent_ones_are_none():
    rate = RateLimit.from_headers(
        {
            "X-RateLimit-Limit": "1000",
            "x-linequota-limit": "200",
            "X-LineQuota-Remaining": "185",
            "X-LineQuota-Reset": str(int(RESET.timestamp())),
        }
    )
    assert (rate.monthly_limit, rate.monthly_remaining, rate.monthly_reset_at) == (200, 185, RESET)
    assert "monthly_limit" not in rate.to_dict()  # the API's shape is LINE Notify's
    plain = RateLimit.from_headers({"X-RateLimit-Limit": "1000", "X-LineQuota-Limit": "lots"})
    assert (plain.monthly_limit, plain.monthly_remaining, plain.monthly_reset) == (None, None, None)


def _connection(app, owner_id: int, headers: dict[str, str]) -> int:
    with app.app_context():
        connection = create_connection(db.session.get(User, owner_id))
        apply_rate_limit(connection, RateLimit.from_headers(headers), "notify")
        db.session.commit()
        return connection.id


def test_the_dashboard_shows_the_budget_only_when_the_server_reports_it(app, signed_in, alice):
    reported = _connection(
        app,
        alice,
        {
            "X-RateLimit-Limit": "1000",
            "X-RateLimit-Remaining": "990",
            "X-LineQuota-Limit": "200",
            "X-LineQuota-Remaining": "185",
            "X-LineQuota-Reset": str(int(RESET.timestamp())),
        },
    )
    plain = _connection(app, alice, {"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "990"})
    page = parse(signed_in.get("/dashboard").get_data(as_text=True))
    figures = card(page, reported).one(data_field="line_quota")
    assert "15 of 200 used" in figures.text
    assert "2031-06-30 15:00 UTC" in figures.text
    assert "LINE messages this month" not in card(page, plain).text
