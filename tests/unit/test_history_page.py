"""The History page (issue 20): every notification of the person's, newest first, with the
API's filters (chat, status, days in the person's zone, text), 50 a page by cursor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from notify_site.extensions import db
from notify_site.models import User
from tests.factories import create_connection, create_notification, create_user, login
from tests.htmltree import parse


def _rows(client, **query) -> list[int]:
    answer = client.get("/history", query_string=query)
    assert answer.status_code == 200
    return [
        int(tr.attrs["data-notification-id"])
        for tr in parse(answer.get_data(as_text=True)).find_all("tr")
        if "data-notification-id" in tr.attrs
    ]


def test_history_filters_like_the_api(app, client, alice):
    with app.app_context():
        owner = db.session.get(User, alice)
        ops = create_connection(owner, label="Ops")
        kin = create_connection(owner, label="Kin")
        other = create_connection(create_user("bob"), label="Bobs")
        day = datetime(2031, 5, 6, 12, 0, tzinfo=UTC)
        old = create_notification(ops, message="disk full", created=day - timedelta(days=2)).id
        failed = create_notification(kin, message="Backup failed", status="failed", created=day).id
        new = create_notification(ops, message="backup ok", created=day + timedelta(hours=1)).id
        create_notification(other, message="not alice's")
        ops_id = ops.id
    login(client)
    assert _rows(client) == [new, failed, old]
    assert _rows(client, connection=ops_id) == [new, old]
    assert _rows(client, status="failed") == [failed]
    assert _rows(client, q="BACKUP") == [new, failed]
    assert _rows(client, since="2031-05-06", until="2031-05-06") == [new, failed]
    assert _rows(client, until="2031-05-05") == [old]
    # What cannot be read is left out of the filter and said so, never a 500.
    page = client.get("/history?since=someday&status=lost&connection=999&cursor=x")
    assert page.status_code == 200
    assert "“someday” is not a date" in page.get_data(as_text=True)


def test_history_pages_by_cursor_and_the_dashboard_links_to_it(app, client, alice):
    with app.app_context():
        ops = create_connection(db.session.get(User, alice), label="Ops")
        made = [create_notification(ops, message=f"n{i}").id for i in range(55)]
    login(client)
    first = client.get("/history").get_data(as_text=True)
    assert _rows(client) == made[::-1][:50]
    [older] = [a for a in parse(first).find_all("a") if a.attrs.get("rel") == "next"]
    assert (
        _rows(client, cursor=older.attrs["href"].split("cursor=")[1].split("&")[0]) == made[4::-1]
    )
    assert 'href="/history"' in client.get("/dashboard").get_data(as_text=True)
