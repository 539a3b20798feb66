"""The idempotency service on its own, without HTTP: one run per key, replays, conflicts."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from notify_site.extensions import db
from notify_site.models import ApiKey, IdempotencyRecord, Notification, User
from notify_site.notify_content import Content
from notify_site.services import idempotency, notifications, sending
from tests.factories import create_api_key, create_connection, create_user


@pytest.fixture
def setup(app):
    with app.app_context():
        alice = create_user("alice")
        create_connection(alice, label="Ops")
        api_key, _ = create_api_key(alice, "k")
        return alice.id, api_key.id


def _queue_action(user, api_key, calls: list):
    def action():
        calls.append(1)
        found = sending.find_targets(sending.Sender.person(user), ["Ops"])
        rows = notifications.add_notifications(user, found, Content(message="hi"), api_key=api_key)
        return 202, f'{{"id": {rows[0].id}}}'

    return action


def _counts():
    return (
        db.session.scalar(select(func.count()).select_from(Notification)),
        db.session.scalar(select(func.count()).select_from(IdempotencyRecord)),
    )


def test_the_action_runs_once_per_key_and_its_answer_is_replayed(app, setup):
    user_id, key_id = setup
    with app.app_context():
        user, api_key = db.session.get(User, user_id), db.session.get(ApiKey, key_id)
        calls: list = []
        first = idempotency.execute(api_key, "k1", "hash-a", _queue_action(user, api_key, calls))
        again = idempotency.execute(api_key, "k1", "hash-a", _queue_action(user, api_key, calls))
        assert (first.status_code, first.replayed) == (202, False)
        assert (again.status_code, again.body, again.replayed) == (202, first.body, True)
        assert len(calls) == 1
        assert _counts() == (1, 1)
        with pytest.raises(idempotency.IdempotencyKeyReusedError):
            idempotency.execute(api_key, "k1", "hash-b", _queue_action(user, api_key, calls))
        assert len(calls) == 1


def test_without_a_key_every_call_runs(app, setup):
    user_id, key_id = setup
    with app.app_context():
        user, api_key = db.session.get(User, user_id), db.session.get(ApiKey, key_id)
        calls: list = []
        for _ in range(2):
            idempotency.execute(api_key, None, "hash-a", _queue_action(user, api_key, calls))
        assert len(calls) == 2
        assert _counts() == (2, 0)


def test_a_failing_action_leaves_neither_rows_nor_record(app, setup):
    user_id, key_id = setup
    with app.app_context():
        user, api_key = db.session.get(User, user_id), db.session.get(ApiKey, key_id)

        def failing():
            _queue_action(user, api_key, [])()
            raise sending.UnknownConnectionError("no connection 'x'")

        with pytest.raises(sending.UnknownConnectionError):
            idempotency.execute(api_key, "k1", "hash-a", failing)
        assert _counts() == (0, 0)
        answer = idempotency.execute(api_key, "k1", "hash-a", _queue_action(user, api_key, []))
        assert not answer.replayed
        assert _counts() == (1, 1)


def test_fingerprint_ignores_key_order_but_not_values():
    assert idempotency.fingerprint({"a": 1, "b": [1, 2]}) == idempotency.fingerprint(
        {"b": [1, 2], "a": 1}
    )
    assert idempotency.fingerprint({"a": 1}) != idempotency.fingerprint({"a": "1"})
    assert idempotency.fingerprint({"b": [1, 2]}) != idempotency.fingerprint({"b": [2, 1]})
