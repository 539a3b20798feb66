"""Every call to the Notify API is on record, including those a crash cut off (issue 12, item 12).

Against a mocked Notify server (responses). A worker's death in the middle of a call is
played here by its effects on the database: an attempt started (committed before the call)
and never finished, under a lease that ran out. tests/integration/test_interrupted_attempt.py
does it for real, with a worker process SIGKILLed while a Notify server holds its call.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from notify_site import outbox
from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import (
    Connection,
    DeliveryAttempt,
    Notification,
    NotificationStatus,
)
from notify_site.notify_content import Content
from notify_site.services import attempts, delivery
from notify_site.services.claims import ConnectionClaim, claim_batch, claim_connections
from notify_site.services.delivery import deliver_one, worker_settings
from notify_site.services.notifications import add_notifications
from notify_site.worker import Worker
from tests.conftest import make_test_config
from tests.factories import create_api_key, create_connection, create_user

API = "https://notify-api.test"
NOTIFY_URL = f"{API}/api/notify"
TOKEN = "attempts-test-token"
OK = {"status": 200, "message": "ok"}


@pytest.fixture
def app_config(tmp_path):
    return make_test_config(tmp_path, NOTIFY_API_ORIGIN=API, DELIVERY_MAX_ATTEMPTS=3)


@pytest.fixture
def ids(app) -> dict:
    with app.app_context():
        alice = create_user("alice")
        phone = create_connection(alice, label="Phone", token=TOKEN)
        _, key = create_api_key(alice, "alice")
        [row] = add_notifications(alice, [phone], Content(message="hello"))
        db.session.commit()
        return {"alice": alice.id, "phone": phone.id, "key": key, "row": row.id}


def cut_off_call(app, ids, *, attempts_before: int = 0) -> None:
    """What a worker killed during its call leaves: the row ``sending`` under a lease that ran
    out, with an attempt started (committed before the call) and never finished."""
    with app.app_context():
        [claim] = claim_connections(1, timedelta(seconds=60))
        settings = worker_settings()
        [row] = claim_batch(claim, 10, settings.lease, settings.policy)
        assert attempts.start(row.id, claim.token, "killed-worker") is not None
        expired = utcnow() - timedelta(seconds=1)
        db.session.execute(
            update(Notification)
            .where(Notification.id == row.id)
            .values(lease_expires_at=expired, attempts=attempts_before)
        )
        db.session.execute(
            update(Connection)
            .where(Connection.id == ids["phone"])
            .values(delivery_lease_token=None, delivery_lease_expires_at=None)
        )
        db.session.commit()


def history(app, ids) -> list[dict]:
    client = app.test_client()
    answer = client.get(
        f"/api/v1/notifications/{ids['row']}", headers={"Authorization": f"Bearer {ids['key']}"}
    )
    assert answer.status_code == 200
    return answer.get_json()["history"]


def row(app, ids) -> Notification:
    with app.app_context():
        notification = db.session.get(Notification, ids["row"])
        db.session.expunge(notification)
        return notification


def test_an_attempt_is_on_record_while_its_call_is_in_flight(app, ids, mocked_http):
    seen_during_the_call = []

    def answer(request):
        # The server has the call: the attempt is already committed, with no outcome yet.
        seen_during_the_call.extend(history(app, ids))
        return (200, {}, '{"status": 200, "message": "ok"}')

    mocked_http.add_callback("POST", NOTIFY_URL, callback=answer)
    Worker(app, threads=1).run_until_idle()

    [during] = seen_during_the_call
    assert during["outcome"] == attempts.IN_FLIGHT
    assert (during["finished_at"], during["status_code"]) == (None, None)
    [after] = history(app, ids)
    assert (after["outcome"], after["status_code"], after["error"]) == ("delivered", 200, None)
    assert after["started_at"] == during["started_at"]
    assert after["finished_at"] is not None
    assert row(app, ids).attempts == 1


def test_a_call_cut_off_shows_as_interrupted_once_its_lease_ran_out(app, ids, mocked_http):
    cut_off_call(app, ids)
    [cut] = history(app, ids)  # no worker has claimed the row again yet
    assert cut["outcome"] == attempts.INTERRUPTED
    assert cut["error"] == attempts.NO_ANSWER_RECORDED.text
    assert cut["finished_at"] is None


def test_the_next_claim_records_the_interrupted_attempt_and_counts_it(app, ids, mocked_http):
    calls = mocked_http.post(NOTIFY_URL, json=OK)
    cut_off_call(app, ids)

    Worker(app, threads=1).run_until_idle()

    assert calls.call_count == 1
    notification = row(app, ids)
    assert notification.status == NotificationStatus.DELIVERED
    assert notification.attempts == 2  # the cut-off call counts: it may have reached the server
    assert [(a["outcome"], a["status_code"]) for a in history(app, ids)] == [
        (attempts.INTERRUPTED, None),
        ("delivered", 200),
    ]
    with app.app_context():
        stored = db.session.scalars(select(DeliveryAttempt.outcome).order_by(DeliveryAttempt.id))
        assert stored.all() == [attempts.INTERRUPTED, "delivered"]
        codes = db.session.scalars(select(DeliveryAttempt.error_code).order_by(DeliveryAttempt.id))
        assert codes.all() == ["no_answer_recorded", None]  # pages translate from the code


def test_a_row_whose_calls_keep_being_cut_off_fails_without_another_call(app, ids, mocked_http):
    calls = mocked_http.post(NOTIFY_URL, json=OK)
    cut_off_call(app, ids, attempts_before=2)  # the third of DELIVERY_MAX_ATTEMPTS=3

    Worker(app, threads=1).run_until_idle()

    assert calls.call_count == 0  # a poison message is not sent for ever
    notification = row(app, ids)
    assert notification.status == NotificationStatus.FAILED
    assert notification.attempts == 3
    assert (
        notification.last_error == f"gave up after 3 attempts: {attempts.NO_ANSWER_RECORDED.text}"
    )
    # Pages translate it from its code (notify_site/stored_text.py), not from the English.
    assert (notification.last_error_code, notification.last_error_params) == (
        "gave_up",
        {"count": 3, "reason": {"code": "no_answer_recorded", "params": {}}},
    )
    assert notification.lease_token is None


def test_a_worker_that_lost_its_row_makes_no_call_and_records_nothing(app, ids, mocked_http):
    calls = mocked_http.post(NOTIFY_URL, json=OK)
    with app.app_context():
        [claim] = claim_connections(1, timedelta(seconds=60))
        settings = worker_settings()
        [claimed] = claim_batch(claim, 10, settings.lease, settings.policy)
        # Meanwhile another worker took the row (its lease had run out).
        db.session.execute(
            update(Notification).where(Notification.id == claimed.id).values(lease_token="other")
        )
        db.session.commit()
        outcome = deliver_one(claimed, TOKEN, claim, settings, "slow-worker")
        recorded = db.session.scalars(select(DeliveryAttempt)).all()
    assert outcome is None
    assert calls.call_count == 0
    assert recorded == []


def test_a_late_answer_is_kept_on_the_attempt_but_not_on_the_row(app, ids, mocked_http):
    with app.app_context():
        [claim] = claim_connections(1, timedelta(seconds=60))
        settings = worker_settings()
        [claimed] = claim_batch(claim, 10, settings.lease, settings.policy)
        newer = ConnectionClaim(claim.connection_id, "newer-claim-token")

        def answer(request):
            # During the call the lease runs out and another worker claims the row again.
            with app.app_context():
                db.session.execute(
                    update(Notification)
                    .where(Notification.id == claimed.id)
                    .values(lease_expires_at=utcnow() - timedelta(seconds=1))
                )
                db.session.commit()
                claim_batch(newer, 10, settings.lease, settings.policy)
            return (200, {}, '{"status": 200, "message": "ok"}')

        mocked_http.add_callback("POST", NOTIFY_URL, callback=answer)
        outcome = deliver_one(claimed, TOKEN, claim, settings, "slow-worker")
        notification = db.session.get(Notification, claimed.id)
        stored = db.session.execute(
            select(DeliveryAttempt.outcome, DeliveryAttempt.status_code)
        ).all()
        assert outcome.kind == "delivered"
        # The row belongs to the newer claim: still sending under its token, the cut-off
        # call counted once.
        assert (notification.status, notification.lease_token) == (
            NotificationStatus.SENDING,
            newer.token,
        )
        assert notification.attempts == 1
        # The attempt, marked interrupted by the newer claim, got the server's real answer.
        assert stored == [("delivered", 200)]


def test_a_429_is_on_record_and_spends_no_attempt(app, ids, mocked_http):
    reset = int(utcnow().timestamp()) + 3600
    headers = {"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "0"}
    headers["X-RateLimit-Reset"] = str(reset)
    mocked_http.post(
        NOTIFY_URL, json={"status": 429, "message": "slow"}, status=429, headers=headers
    )

    Worker(app, threads=1).run_until_idle()

    assert [(a["outcome"], a["status_code"]) for a in history(app, ids)] == [("wait", 429)]
    assert row(app, ids).attempts == 0


def test_a_database_blip_after_the_call_keeps_the_answer(app, ids, mocked_http, monkeypatch):
    """The database goes away between the server's 200 and the finish (a restart): the finish
    is tried again once it answers, so the row is not sent twice after its lease."""
    calls = mocked_http.post(NOTIFY_URL, json=OK)
    monkeypatch.setattr(outbox, "DATABASE_RETRY_SECONDS", 0.01)
    real_finish = attempts.finish
    failures = iter([OperationalError("UPDATE ...", {}, Exception("server closed the connection"))])

    def flaky_finish(*args, **kwargs):
        error = next(failures, None)
        if error is not None:
            raise error
        return real_finish(*args, **kwargs)

    monkeypatch.setattr(attempts, "finish", flaky_finish)
    Worker(app, threads=1).run_until_idle()

    assert calls.call_count == 1
    notification = row(app, ids)
    assert (notification.status, notification.attempts) == (NotificationStatus.DELIVERED, 1)
    assert [a["outcome"] for a in history(app, ids)] == ["delivered"]
    with app.app_context():
        connection = db.session.get(Connection, ids["phone"])
        assert connection.delivery_lease_token is None  # released, not left to expire


def test_a_connection_lost_after_the_call_is_replaced_and_the_answer_kept(
    app, ids, mocked_http, monkeypatch
):
    """As above, but the driver's own connection goes away (no error made up in Python): the
    prepared writes (notify_site/prepared.py) must raise SQLAlchemy's error, which the retry
    catches, and invalidate the connection, so the retry gets a live one. Raw driver errors
    once escaped the retry: in `make chaos`, rows waited a whole lease (57 s) after each
    PostgreSQL restart, and some were sent twice."""
    calls = mocked_http.post(NOTIFY_URL, json=OK)
    monkeypatch.setattr(outbox, "DATABASE_RETRY_SECONDS", 0.01)
    real_finish = attempts.finish
    lost = []

    def connection_lost_once(*args, **kwargs):
        if not lost:
            lost.append(1)
            db.session.connection().connection.dbapi_connection.close()
        return real_finish(*args, **kwargs)

    monkeypatch.setattr(attempts, "finish", connection_lost_once)
    Worker(app, threads=1).run_until_idle()

    assert lost
    assert calls.call_count == 1
    notification = row(app, ids)
    assert (notification.status, notification.attempts) == (NotificationStatus.DELIVERED, 1)
    assert [a["outcome"] for a in history(app, ids)] == ["delivered"]


def test_a_database_away_for_longer_than_the_lease_is_given_up_on(app, ids, monkeypatch):
    monkeypatch.setattr(outbox, "DATABASE_RETRY_SECONDS", 0.01)
    tries = []

    def down():
        tries.append(1)
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    with app.app_context(), pytest.raises(OperationalError):
        delivery.retrying(down, utcnow() + timedelta(seconds=0.2))
    assert 2 <= len(tries) <= 25
