"""Scheduled sends over the JSON API: send_at and cancel on /notifications, /schedules and
/batches. With a controllable clock (time-machine)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from notify_site.extensions import db
from notify_site.models import Notification, Schedule
from tests.unit.api.calls import auth, post

NOW = datetime(2027, 1, 4, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def test_send_at_schedules_and_the_answer_says_when(app, client, world):
    answer = post(
        client,
        world.alice_key,
        {"connection": "Ops", "message": "later", "send_at": "2027-01-04T09:30:00+09:00"},
    )
    assert answer.status_code == 202
    [row] = answer.get_json()["notifications"]
    assert (row["status"], row["send_at"]) == ("scheduled", "2027-01-04T00:30:00Z")
    read = client.get(row["url"], headers=auth(world.alice_key)).get_json()
    assert (read["status"], read["send_at"]) == ("scheduled", "2027-01-04T00:30:00Z")
    assert read["next_attempt_at"] == "2027-01-04T00:30:00Z"


@pytest.mark.parametrize(
    ("send_at", "reason"),
    [
        ("2027-01-04T09:30:00", "give the time with its offset (Z or +09:00)"),
        ("next tuesday", "an RFC 3339 date and time with its offset"),
        ("2027-01-03T09:30:00Z", "must be in the future"),
        ("2028-02-01T00:00:00Z", "must be at most a year ahead"),
    ],
)
def test_a_bad_send_at_is_refused_naming_the_field(app, client, world, send_at, reason):
    answer = post(
        client, world.alice_key, {"connection": "Ops", "message": "x", "send_at": send_at}
    )
    assert answer.status_code == 400
    assert answer.get_json()["error"]["fields"]["send_at"].startswith(reason)
    with app.app_context():
        assert db.session.query(Notification).count() == 0


def test_cancel_before_due_and_not_after_a_worker_took_it(app, client, world, clock):
    body = {"connection": "Ops", "message": "x", "send_at": "2027-01-04T00:10:00Z"}
    [first] = post(client, world.alice_key, body).get_json()["notifications"]
    [second] = post(client, world.alice_key, body).get_json()["notifications"]
    cancelled = client.post(f"{first['url']}/cancel", headers=auth(world.alice_key))
    assert cancelled.status_code == 200
    assert cancelled.get_json()["status"] == "cancelled"
    assert client.post(f"{first['url']}/cancel", headers=auth(world.bob_key)).status_code == 404
    with app.app_context():  # a worker takes the second one
        db.session.get(Notification, second["id"]).status = "sending"
        db.session.commit()
    refused = client.post(f"{second['url']}/cancel", headers=auth(world.alice_key))
    assert refused.status_code == 409
    error = refused.get_json()["error"]
    assert error["code"] == "not_cancellable"
    assert "a worker took it" in error["message"]


def test_a_daily_schedule_is_created_with_its_next_occurrences(app, client, world):
    answer = client.post(
        "/api/v1/schedules",
        headers=auth(world.alice_key),
        json={
            "name": "Morning",
            "connections": ["Ops", "Family"],
            "message": "おはよう",
            "recurrence": {"kind": "daily", "time": "07:30"},
            "timezone": "Asia/Tokyo",
        },
    )
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert body["rrule"] == "FREQ=DAILY;BYHOUR=7;BYMINUTE=30;BYSECOND=0"
    assert body["status"] == "active"
    assert body["next_occurrences"][:2] == ["2027-01-04T22:30:00Z", "2027-01-05T22:30:00Z"]
    assert len(body["next_occurrences"]) == 5
    assert [c["label"] for c in body["connections"]] == ["Family", "Ops"]
    listed = client.get("/api/v1/schedules", headers=auth(world.alice_key)).get_json()
    assert [s["name"] for s in listed["schedules"]] == ["Morning"]
    assert (
        client.get("/api/v1/schedules", headers=auth(world.bob_key)).get_json()["schedules"] == []
    )
    url = f"/api/v1/schedules/{body['id']}"
    assert client.get(url, headers=auth(world.bob_key)).status_code == 404
    paused = client.post(f"{url}/pause", headers=auth(world.alice_key))
    assert paused.get_json()["status"] == "paused"
    assert client.post(f"{url}/pause", headers=auth(world.alice_key)).status_code == 409
    assert client.post(f"{url}/resume", headers=auth(world.alice_key)).status_code == 200
    assert client.delete(url, headers=auth(world.alice_key)).status_code == 204
    with app.app_context():
        assert db.session.query(Schedule).count() == 0


def test_a_raw_rrule_and_its_problems(app, client, world):
    def create(**extra):
        body = {"name": "Raw", "connection": "Ops", "message": "x", "timezone": "UTC", **extra}
        return client.post("/api/v1/schedules", headers=auth(world.alice_key), json=body)

    made = create(rrule="FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0", starts_at="2027-01-01T00:00")
    assert made.status_code == 201
    assert made.get_json()["next_occurrences"][0] == "2027-01-04T09:00:00Z"
    assert create(rrule="FREQ=SECONDLY").get_json()["error"]["fields"] == {
        "rrule": "must repeat at most once a minute"
    }
    assert "rrule" in create().get_json()["error"]["fields"]
    assert create(rrule="FREQ=DAILY", timezone="Mars/Base").get_json()["error"]["fields"] == {
        "timezone": "is not a time zone this site knows"
    }
    assert create(rrule="FREQ=DAILY", connection="Old").status_code == 409


def test_a_batch_is_all_or_nothing_with_every_bad_row_named(app, client, world):
    rows = [
        {"date": "2027-04-01", "time": "08:00", "connection": "Ops", "message": "one"},
        {"date": "2027-04-31", "connection": "Ops", "message": "two"},
        {"date": "2027-04-02", "time": "08:00", "connection": "Nobody", "message": "three"},
    ]
    refused = client.post(
        "/api/v1/batches",
        headers=auth(world.alice_key),
        json={"rows": rows, "timezone": "Asia/Tokyo", "default_time": "07:30"},
    )
    assert refused.status_code == 400
    assert set(refused.get_json()["error"]["fields"]) == {"rows.1", "rows.2"}
    with app.app_context():
        assert db.session.query(Notification).count() == 0
    rows[1]["date"], rows[2]["connection"] = "2027-04-30", "Family"
    stored = client.post(
        "/api/v1/batches",
        headers=auth(world.alice_key),
        json={"rows": rows, "timezone": "Asia/Tokyo", "default_time": "07:30"},
    )
    assert stored.status_code == 201
    assert [n["status"] for n in stored.get_json()["notifications"]] == ["scheduled"] * 3
    yearly = client.post(
        "/api/v1/batches",
        headers=auth(world.alice_key),
        json={"rows": rows[:1], "yearly": True},
    )
    assert yearly.status_code == 201
    assert yearly.get_json()["schedules"][0]["next_run_at"] == "2027-04-01T08:00:00Z"


def test_an_admins_key_schedules_only_to_the_admins_own_chats(app, client, world):
    answer = client.post(
        "/api/v1/schedules",
        headers=auth(world.admin_key),
        json={
            "name": "Someone else's",
            "connection": world.ops,  # alice's chat, by id
            "message": "x",
            "rrule": "FREQ=DAILY",
            "timezone": "UTC",
        },
    )
    assert answer.status_code == 404
    assert answer.get_json()["error"]["code"] == "connection_not_found"
