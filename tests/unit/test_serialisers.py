"""One shape per thing (notify_site/serialisers.py): a connection and a notification look the
same in every JSON answer of the site, every time is RFC 3339 with ``Z``, and every JSON error
is the one envelope."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import Connection
from notify_site.serialisers import ErrorResponseSchema
from notify_site.services import api_keys
from tests.factories import (
    create_api_key,
    create_connection,
    create_notification,
    create_user,
    login,
)

# Anything that reads as a date and a time, with or without an offset.
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?$")


@pytest.fixture
def world(app):
    """Root (an admin, signed in) owns a chat with a rate-limit snapshot, one failed and one
    delivered notification sent with root's API key."""
    with app.app_context():
        root = create_user("root", admin=True)
        connection = create_connection(root, label="Ops")
        connection.rate_limit, connection.rate_remaining = 1000, 998
        connection.rate_image_limit, connection.rate_image_remaining = 50, 49
        connection.rate_reset_at = datetime(2030, 1, 1, tzinfo=UTC)
        connection.rate_checked_at = utcnow()
        connection.rate_checked_by = "notify"
        connection.status_detail = None
        db.session.commit()
        key, plaintext = create_api_key(root, "ops key")
        api_keys.touch(key)
        finished = utcnow() - timedelta(minutes=1)
        failed = create_notification(
            connection,
            status="failed",
            finished=finished,
            last_error="400: Invalid sticker",
            api_key_id=key.id,
        ).id
        delivered = create_notification(connection, finished=finished, api_key_id=key.id).id
        return {
            "connection": connection.id,
            "failed": failed,
            "delivered": delivered,
            "key": plaintext,
        }


@pytest.fixture
def root(client, world):
    login(client, "root")
    return client


def _get(client, path: str, key: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    answer = client.get(path, headers=headers)
    assert answer.status_code == 200, (path, answer.get_data(as_text=True))
    return answer.get_json()


def _times(value, where: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [pair for name, item in value.items() for pair in _times(item, f"{where}.{name}")]
    if isinstance(value, list):
        return [pair for item in value for pair in _times(item, f"{where}[]")]
    if isinstance(value, str) and TIME.match(value):
        return [(where, value)]
    return []


def _answers(client, world) -> dict[str, dict]:
    ids = f"{world['failed']},{world['delivered']}"
    return {
        "api connection": _get(client, f"/api/v1/connections/{world['connection']}", world["key"]),
        "api notification": _get(client, f"/api/v1/notifications/{world['failed']}", world["key"]),
        "dashboard": _get(client, "/dashboard.json"),
        "send status": _get(client, f"/send/status.json?ids={ids}"),
        "admin summary": _get(client, "/admin/summary.json"),
        "admin connections": _get(client, "/admin/connections.json"),
        "admin failed": _get(client, "/admin/notifications.json?list=failed"),
        "admin keys": _get(client, "/admin/api-keys.json"),
    }


def test_every_time_in_the_sites_json_is_rfc3339_utc_with_z(root, world):
    times = {
        name: _times(body)
        for name, body in _answers(root, world).items()
        if name != "api notification"  # holds the same times as the send status, and more
    }
    assert all(times.values()), times  # each answer has times to check
    wrong = [(name, where, value) for name, found in times.items() for where, value in found]
    assert [item for item in wrong if not item[2].endswith("Z")] == []


def test_a_connection_looks_the_same_everywhere(root, world):
    answers = _answers(root, world)
    api = answers["api connection"]
    [on_dashboard] = answers["dashboard"]["connections"]
    [for_admin] = answers["admin connections"]["connections"]
    # The pages add their own fields; every field the API has, they have the same.
    assert {name: on_dashboard[name] for name in api} == api
    assert {name: for_admin[name] for name in api} == api
    assert for_admin["owner"]["username"] == "root"
    assert "owner" not in on_dashboard


def test_a_notification_looks_the_same_everywhere(root, world):
    answers = _answers(root, world)
    api = answers["api notification"]
    [on_status_page] = [n for n in answers["send status"]["notifications"] if n["id"] == api["id"]]
    [on_dashboard] = [n for n in answers["dashboard"]["notifications"] if n["id"] == api["id"]]
    [for_admin] = answers["admin failed"]["notifications"]
    for page in (on_status_page, on_dashboard, for_admin):
        # The pages show an excerpt of the message, and the admin's the chat's status too.
        shared = set(page) & set(api) - {"message", "connection"}
        assert {name: page[name] for name in shared} == {name: api[name] for name in shared}
        assert page["last_error_text"] == "400: Invalid sticker"
    assert on_dashboard["connection"] == api["connection"]
    assert for_admin["connection"] == {**api["connection"], "status": "active"}
    assert {"id", "status", "attempts", "last_error", "finished_at"} <= set(on_status_page)


def test_every_json_error_is_the_one_envelope(app, client, world):
    with app.app_context():
        create_user("mallory")
    errors = [
        client.get("/api/v1/connections"),  # no key
        client.get("/dashboard.json"),
        client.get("/send/status.json?ids=1"),
        client.get("/admin/summary.json"),
        client.get("/nothing-here.json"),
    ]
    login(client, "mallory")
    errors.append(client.get("/admin/connections.json"))  # not an admin
    for answer in errors:
        assert answer.status_code >= 400
        body = answer.get_json()
        assert ErrorResponseSchema().validate(body) == {}, body
        assert set(body) == {"error"}
        assert set(body["error"]) == {"code", "message", "fields"}


def test_the_admins_json_names_a_connections_fields_as_the_api_does(root, world):
    """Once, the admin's JSON said target_type and wrote the reset time as ``reset``."""
    with root.application.app_context():
        reset = db.session.get(Connection, world["connection"]).rate_reset_at
    [connection] = _get(root, "/admin/connections.json")["connections"]
    assert connection["type"] == "USER"
    assert connection["rate_limit"]["reset_at"] == "2030-01-01T00:00:00Z"
    assert connection["rate_limit"]["reset"] == int(reset.timestamp())
    assert "target_type" not in connection
    assert "reset_epoch" not in connection["rate_limit"]
