"""One commit between two calls: a row's outcome and the next row's attempt are written
together (services/delivery.py ``_finish_then_start``), and every guarantee of the separate
commits still holds: the next attempt is on record before its call, and nothing is started
for a row the claim will not call (stop, a spent window, a revoked token, a row lost).

Against a mocked Notify server (responses); the database is read from a second connection
while a call is in flight, as another worker would see it.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event, select, update

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import DeliveryAttempt, Notification, NotificationStatus
from notify_site.notify_content import Content
from notify_site.services import attempts
from notify_site.services.claims import claim_connections
from notify_site.services.delivery import process_claim, worker_settings
from notify_site.services.notifications import add_notifications
from notify_site.services.retry import Outcome, OutcomeKind
from notify_site.stored_text import StoredText
from notify_site.worker import Worker
from tests.conftest import make_test_config
from tests.factories import create_connection, create_user

API = "https://notify-api.test"
NOTIFY_URL = f"{API}/api/notify"
TOKEN = "commits-test-token"
OK_BODY = '{"status": 200, "message": "ok"}'
ROWS = 6


@pytest.fixture
def app_config(tmp_path):
    return make_test_config(tmp_path, NOTIFY_API_ORIGIN=API)


@pytest.fixture
def row_ids(app) -> list[int]:
    with app.app_context():
        alice = create_user("alice")
        phone = create_connection(alice, label="Phone", token=TOKEN)
        ids = [
            add_notifications(alice, [phone], Content(message=f"m{n}"))[0].id for n in range(ROWS)
        ]
        db.session.commit()
        return ids


def seen_from_outside(app) -> list[tuple]:
    """Every notification's status and every attempt's outcome, as committed."""
    with app.app_context(), db.engine.connect() as other:
        statuses = other.execute(select(Notification.status).order_by(Notification.id)).all()
        history = other.execute(
            select(DeliveryAttempt.notification_id, DeliveryAttempt.outcome).order_by(
                DeliveryAttempt.id
            )
        ).all()
    return [tuple(s for (s,) in statuses), [tuple(a) for a in history]]


@contextmanager
def counting_commits(app):
    """Counts the commits of transactions that wrote something (each one a disk sync)."""
    with app.app_context():
        engine = db.engine
    commits = []

    def wrote(connection, _cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            connection.info["wrote"] = True

    def committed(connection) -> None:
        if connection.info.pop("wrote", False):
            commits.append(1)

    event.listen(engine, "before_cursor_execute", wrote)
    event.listen(engine, "commit", committed)
    try:
        yield commits
    finally:
        event.remove(engine, "before_cursor_execute", wrote)
        event.remove(engine, "commit", committed)


def attempts_of(app) -> list[tuple]:
    with app.app_context():
        return [
            tuple(row)
            for row in db.session.execute(
                select(DeliveryAttempt.notification_id, DeliveryAttempt.outcome).order_by(
                    DeliveryAttempt.id
                )
            )
        ]


def test_each_call_finds_the_last_outcome_and_its_own_attempt_committed(app, row_ids, mocked_http):
    seen = []

    def answer(request):
        seen.append(seen_from_outside(app))
        return (200, {}, OK_BODY)

    mocked_http.add_callback("POST", NOTIFY_URL, callback=answer)
    with counting_commits(app) as commits:
        Worker(app, threads=1).run_until_idle()

    assert len(seen) == ROWS
    for n, (statuses, history) in enumerate(seen):
        # The rows before this call are delivered, their attempts finished; this row's
        # attempt is on record, open, before the server has the call.
        assert statuses[:n] == (NotificationStatus.DELIVERED,) * n
        assert statuses[n] == NotificationStatus.SENDING
        assert history == [(i, "delivered") for i in row_ids[:n]] + [(row_ids[n], None)]
    assert attempts_of(app) == [(i, "delivered") for i in row_ids]
    # One writing commit per call (the first row's start alone, then each finish with the
    # next start, the last finish alone), plus the claim's own three (the connection, the
    # rows, the release); it was two per call (start, then finish): 2 * ROWS + 3.
    assert len(commits) == ROWS + 1 + 3


def test_stopping_during_a_call_starts_nothing_more(app, row_ids, mocked_http):
    stopping = []

    def answer(request):
        stopping.append(True)  # the stop comes while the first call is in flight
        return (200, {}, OK_BODY)

    calls = mocked_http.add_callback("POST", NOTIFY_URL, callback=answer)
    with app.app_context():
        [claim] = claim_connections(1, worker_settings().lease)
        made = process_claim(claim, worker_settings(), "test", lambda: bool(stopping))

    assert made == calls.call_count == 1
    assert attempts_of(app) == [(row_ids[0], "delivered")]
    with app.app_context():
        rest = db.session.execute(
            select(Notification.status, Notification.lease_token).where(
                Notification.id.in_(row_ids[1:])
            )
        ).all()
    assert {tuple(r) for r in rest} == {(NotificationStatus.QUEUED, None)}


def test_no_attempt_and_no_call_once_the_window_is_spent(app, row_ids, mocked_http):
    reset = int(utcnow().timestamp()) + 3600
    headers = {
        "X-RateLimit-Limit": "1000",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(reset),
    }
    calls = mocked_http.post(NOTIFY_URL, body=OK_BODY, headers=headers)

    Worker(app, threads=1).run_until_idle()

    assert calls.call_count == 1  # 0 calls between Remaining = 0 and Reset
    assert attempts_of(app) == [(row_ids[0], "delivered")]
    with app.app_context():
        waiting = db.session.execute(
            select(Notification.status, Notification.next_attempt_at).where(
                Notification.id.in_(row_ids[1:])
            )
        ).all()
    assert {status for status, _ in waiting} == {NotificationStatus.QUEUED}
    assert {int(at.timestamp()) for _, at in waiting} == {reset}


def test_a_401_starts_no_further_attempt(app, row_ids, mocked_http):
    calls = mocked_http.post(NOTIFY_URL, json={"status": 401, "message": "bad"}, status=401)

    Worker(app, threads=1).run_until_idle()

    assert calls.call_count == 1
    assert attempts_of(app) == [(row_ids[0], "revoked")]
    with app.app_context():
        statuses = db.session.scalars(select(Notification.status)).all()
    assert set(statuses) == {NotificationStatus.FAILED}


def test_a_next_row_lost_during_the_call_is_not_called_and_the_outcome_is_kept(
    app, row_ids, mocked_http
):
    def answer(request):
        if len(calls_seen) == 0:
            # Meanwhile the second row went to another claim.
            with app.app_context():
                db.session.execute(
                    update(Notification)
                    .where(Notification.id == row_ids[1])
                    .values(lease_token="another-claim")
                )
                db.session.commit()
        calls_seen.append(request.body)
        return (200, {}, OK_BODY)

    calls_seen: list = []
    mocked_http.add_callback("POST", NOTIFY_URL, callback=answer)
    with app.app_context():
        [claim] = claim_connections(1, worker_settings().lease)
        process_claim(claim, worker_settings(), "test", lambda: False)

    assert len(calls_seen) == ROWS - 1
    assert "m1" not in " ".join(str(body) for body in calls_seen)
    assert [i for i, _ in attempts_of(app)] == [row_ids[0], *row_ids[2:]]
    with app.app_context():
        first = db.session.get(Notification, row_ids[0])
        assert first.status == NotificationStatus.DELIVERED


@pytest.mark.parametrize("error", [None, "server answered 500"])
def test_the_prepared_attempt_finish_writes_every_outcome_column(error):
    outcome = Outcome(
        kind=OutcomeKind.RETRY,
        spends_attempt=True,
        status_code=500,
        error=StoredText(error) if error else None,
    )
    written = attempts.finish_values(outcome, utcnow())
    assert tuple(sorted(written)) == tuple(sorted(attempts._FINISH_COLUMNS))
