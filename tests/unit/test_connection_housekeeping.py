"""Looking after one's connections (issue 20): rename a label, remove a revoked connection from
the lists (its history stays), and a warning when the same chat is connected twice."""

from __future__ import annotations

from notify_site.extensions import db
from notify_site.models import Connection, User
from notify_site.services import connections as service
from tests.factories import create_connection, create_notification, create_user, login
from tests.htmltree import parse


def _labels(client, path: str = "/connections") -> list[str]:
    page = parse(client.get(path).get_data(as_text=True))
    return [td.text for td in page.find_all("td", class_="label")]


def test_a_connection_is_renamed(app, client, alice):
    with app.app_context():
        ops = create_connection(db.session.get(User, alice), label="Ops").id
        bobs = create_connection(create_user("bob"), label="Bobs").id
    login(client)
    answer = client.post(f"/connections/{ops}/label", data={"label": "  Night shift "})
    assert answer.status_code == 302
    assert "“Ops” is now “Night shift”." in client.get("/connections").get_data(as_text=True)
    assert _labels(client) == ["Night shift"]
    # An empty or control-character label is refused with a reason; nothing changes.
    client.post(f"/connections/{ops}/label", data={"label": " "})
    assert _labels(client) == ["Night shift"]
    # Another person's connection is not found.
    assert client.post(f"/connections/{bobs}/label", data={"label": "Mine"}).status_code == 404


def test_a_revoked_connection_leaves_the_lists_and_its_history_stays(app, client, alice):
    with app.app_context():
        owner = db.session.get(User, alice)
        live = create_connection(owner, label="Ops").id
        gone = create_connection(owner, label="Gone", status="revoked")
        sent = create_notification(gone, message="kept in the history").id
        gone = gone.id
    login(client)
    # An active connection must be disconnected first.
    client.post(f"/connections/{live}/remove")
    assert "Disconnect “Ops” before removing it." in client.get("/connections").get_data(
        as_text=True
    )
    assert _labels(client) == ["Ops", "Gone"]

    client.post(f"/connections/{gone}/remove")
    assert _labels(client) == ["Ops"]
    dashboard = parse(client.get("/dashboard").get_data(as_text=True))
    cards = [card.text for card in dashboard.find_all("article", class_="quota-card")]
    assert len(cards) == 1
    assert "Ops" in cards[0]
    history = client.get("/history").get_data(as_text=True)
    assert f'data-notification-id="{sent}"' in history
    assert "kept in the history" in history
    with app.app_context():
        assert db.session.get(Connection, gone).removed_at is not None


def test_the_same_chat_connected_twice_is_found(app):
    with app.app_context():
        owner = create_user("alice")
        first = create_connection(
            owner, label="Ops", target_name="Team alerts", target_type="GROUP"
        )
        create_connection(
            owner, label="Old", target_name="Team alerts", target_type="GROUP", status="revoked"
        )
        create_connection(owner, label="Me", target_name="Team alerts", target_type="USER")
        create_connection(
            create_user("bob"), label="Bobs", target_name="Team alerts", target_type="GROUP"
        )
        second = create_connection(
            owner, label="Ops 2", target_name="Team alerts", target_type="GROUP"
        )
        assert [c.label for c in service.same_chat(second)] == ["Ops"]
        assert [c.label for c in service.same_chat(first)] == ["Ops 2"]
