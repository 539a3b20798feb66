"""GET /api/v1/notifications (issue 20): a key's owner's notifications, newest first,
filtered by connection, status, time and text, a page at a time by cursor."""

from __future__ import annotations

from datetime import timedelta

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import Connection, NotificationStatus
from tests.factories import create_notification
from tests.unit.api.calls import assert_api_error, auth


def _history(client, key, **query):
    answer = client.get("/api/v1/notifications", query_string=query, headers=auth(key))
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def _seed(app, world) -> dict[str, int]:
    now = utcnow()
    with app.app_context():
        ops = db.session.get(Connection, world.ops)
        family = db.session.get(Connection, world.family)
        bob_ops = db.session.get(Connection, world.bob_ops)
        ids = {
            "old": create_notification(
                ops, message="Disk 95% full", created=now - timedelta(days=3)
            ).id,
            "failed": create_notification(
                family,
                message="Backup FAILED",
                status=NotificationStatus.FAILED,
                created=now - timedelta(hours=5),
            ).id,
            "new": create_notification(
                ops, message="backup ok", created=now - timedelta(minutes=5)
            ).id,
            "bob": create_notification(bob_ops, message="bob's backup").id,
        }
    return ids


def test_the_history_is_the_owners_newest_first(app, client, world):
    ids = _seed(app, world)
    page = _history(client, world.alice_key)
    assert [n["id"] for n in page["notifications"]] == [ids["new"], ids["failed"], ids["old"]]
    assert page["next_cursor"] is None
    first = page["notifications"][0]
    assert first["message"] == "backup ok"
    assert first["connection"]["id"] == world.ops
    # An admin's key sees every account's.
    assert ids["bob"] in [n["id"] for n in _history(client, world.admin_key)["notifications"]]


def test_filters_narrow_the_history(app, client, world):
    ids = _seed(app, world)
    ids_of = lambda page: [n["id"] for n in page["notifications"]]  # noqa: E731
    key = world.alice_key
    assert ids_of(_history(client, key, connection=world.family)) == [ids["failed"]]
    assert ids_of(_history(client, key, status="failed")) == [ids["failed"]]
    assert ids_of(_history(client, key, q="BACKUP")) == [ids["new"], ids["failed"]]
    assert ids_of(_history(client, key, q="95%")) == [ids["old"]]
    assert ids_of(_history(client, key, q="_")) == []  # % and _ are text, not wildcards
    since = (utcnow() - timedelta(days=1)).isoformat()
    until = (utcnow() - timedelta(hours=1)).isoformat()
    assert ids_of(_history(client, key, since=since)) == [ids["new"], ids["failed"]]
    assert ids_of(_history(client, key, since=since, until=until)) == [ids["failed"]]
    # Another account's connection shows nothing of it.
    assert ids_of(_history(client, key, connection=world.bob_ops)) == []


def test_pages_follow_the_cursor(app, client, world):
    with app.app_context():
        ops = db.session.get(Connection, world.ops)
        made = [create_notification(ops, message=f"n{i}").id for i in range(5)]
    first = _history(client, world.alice_key, per_page=2)
    assert [n["id"] for n in first["notifications"]] == made[:-3:-1]
    second = _history(client, world.alice_key, per_page=2, cursor=first["next_cursor"])
    assert [n["id"] for n in second["notifications"]] == [made[2], made[1]]
    third = _history(client, world.alice_key, per_page=2, cursor=second["next_cursor"])
    assert [n["id"] for n in third["notifications"]] == [made[0]]
    assert third["next_cursor"] is None


def test_bad_filters_get_a_clear_error(client, world):
    for query in (
        {"status": "lost"},
        {"since": "yesterday"},
        {"since": "2031-05-06T07:30:00"},  # no offset
        {"cursor": "abc"},
        {"per_page": 0},
        {"connection": "Ops"},
    ):
        answer = client.get(
            "/api/v1/notifications", query_string=query, headers=auth(world.alice_key)
        )
        error = assert_api_error(answer, 400, "validation_failed")
        assert set(error["fields"]) == set(query), query


def test_the_openapi_document_describes_the_history(client):
    document = client.get("/api/v1/openapi.json").get_json()
    listing = document["paths"]["/api/v1/notifications"]["get"]
    names = {parameter["name"] for parameter in listing["parameters"]}
    assert {"connection", "status", "since", "until", "q", "cursor", "per_page"} <= names
    assert "200" in listing["responses"]


def test_the_openapi_document_declares_the_rate_limit(client):
    document = client.get("/api/v1/openapi.json").get_json()
    too_many = document["components"]["responses"]["TOO_MANY_REQUESTS"]
    assert set(too_many["headers"]) == {
        "Retry-After",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
        "RateLimit-Policy",
    }
    operations = [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "delete"}
    ]
    assert len(operations) > 10
    for path, method, operation in operations:
        assert "429" in operation["responses"], (method, path)
        for status, answer in operation["responses"].items():
            if status.startswith("2"):
                assert "RateLimit-Remaining" in answer.get("headers", {}), (method, path, status)
