"""The send use case on its own, without HTTP (services/sending.py): who may send where, at
most once per idempotency key, and what is counted."""

from __future__ import annotations

import json

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from notify_site.extensions import db
from notify_site.models import ApiKey, ConnectionStatus, IdempotencyRecord, Notification
from notify_site.notify_content import Content
from notify_site.services import idempotency, sending
from notify_site.services.notifications import ConnectionRef, QueuedNotification
from notify_site.services.sending import IdempotencyKey, Sender, SendOptions, Source
from tests.factories import create_api_key, create_connection, create_user

FORM = SendOptions(source=Source.FORM)
API = SendOptions(source=Source.API)


@pytest.fixture
def world(app):
    """An admin (root) with a chat, Alice with two, one of them revoked; Alice's API key and
    root's. Yields inside an app context."""
    with app.app_context():
        root = create_user("root", admin=True)
        alice = create_user("alice")
        ids = {
            "root": create_connection(root, label="Root's").id,
            "ops": create_connection(alice, label="Ops").id,
            "old": create_connection(alice, label="Old", status=ConnectionStatus.REVOKED).id,
        }
        alice_key, _ = create_api_key(alice, "alice's key")
        root_key, _ = create_api_key(root, "root's key")
        yield {
            "ids": ids,
            "root": root,
            "alice": alice,
            "alice_key": alice_key,
            "root_key": root_key,
        }


def _key_sender(key: ApiKey) -> Sender:
    owner = key.owner
    return Sender(id=owner.id, is_admin=owner.is_admin, api_key=key)


def _rows() -> int:
    return db.session.scalar(select(func.count()).select_from(Notification))


def _queued(source: str) -> float:
    return (
        REGISTRY.get_sample_value("notify_site_notifications_queued_total", {"source": source})
        or 0.0
    )


def test_a_person_sends_to_their_own_chats_by_id_or_label(world):
    sender = Sender.person(world["alice"])
    result = sending.send(sender, ["Ops", world["ids"]["ops"]], Content(message="hi"), options=FORM)
    assert [row.connection.id for row in result.notifications] == [world["ids"]["ops"]]
    assert result.notifications[0].connection.label == "Ops"
    assert not result.replayed
    assert _rows() == 1


def test_an_admin_on_the_site_reaches_only_their_own_chats(world):
    root = Sender.person(world["root"])
    with pytest.raises(sending.UnknownConnectionError, match=str(world["ids"]["ops"])):
        sending.send(root, [world["ids"]["ops"]], Content(message="hi"), options=FORM)
    assert _rows() == 0


def test_an_admins_api_key_reaches_any_connection_by_id_but_labels_stay_its_own(world):
    root = _key_sender(world["root_key"])
    assert root.reaches_every_connection
    result = sending.send(root, [world["ids"]["ops"]], Content(message="hi"), options=API)
    assert [row.connection.id for row in result.notifications] == [world["ids"]["ops"]]
    with pytest.raises(sending.UnknownConnectionError):
        sending.send(root, ["Ops"], Content(message="hi"), options=API)
    # Alice's key is no admin's: root's chat is out of its reach, even by id.
    alice = _key_sender(world["alice_key"])
    assert not alice.reaches_every_connection
    with pytest.raises(sending.UnknownConnectionError):
        sending.send(alice, [world["ids"]["root"]], Content(message="hi"), options=API)
    assert _rows() == 1


def test_an_inactive_target_is_refused_and_nothing_is_queued(world):
    sender = Sender.person(world["alice"])
    with pytest.raises(sending.InactiveConnectionError, match="revoked"):
        sending.send(sender, ["Ops", "Old"], Content(message="hi"), options=FORM)
    assert _rows() == 0


def test_the_content_must_come_checked(world):
    with pytest.raises(TypeError):
        sending.send(Sender.person(world["alice"]), ["Ops"], {"message": "hi"}, options=FORM)


def test_an_idempotency_key_queues_once_and_replays_the_receipt(world):
    sender = _key_sender(world["alice_key"])
    content = Content(message="deploy done")
    key = IdempotencyKey.for_request("deploy-1", ["Ops"], content)
    ops = world["ids"]["ops"]
    first = sending.send(sender, ["Ops"], content, options=API, idempotency_key=key)
    again = sending.send(sender, ["Ops"], content, options=API, idempotency_key=key)
    assert (first.replayed, again.replayed) == (False, True)
    assert again.notifications == first.notifications
    assert first.notifications == [
        QueuedNotification(id=first.notifications[0].id, connection=ConnectionRef(ops, "Ops"))
    ]
    assert _rows() == 1
    other = IdempotencyKey.for_request("deploy-1", ["Ops"], Content(message="another"))
    with pytest.raises(idempotency.IdempotencyKeyReusedError):
        sending.send(
            sender, ["Ops"], Content(message="another"), options=API, idempotency_key=other
        )
    assert _rows() == 1


def test_the_fingerprint_follows_the_request_not_its_form(world):
    content = Content(message="same")
    assert IdempotencyKey.for_request("k", ["Ops"], content) == IdempotencyKey.for_request(
        "k", ["Ops"], Content(message="same")
    )
    assert (
        IdempotencyKey.for_request("k", ["Ops"], content).fingerprint
        != IdempotencyKey.for_request("k", ["Ops", "Family"], content).fingerprint
    )


def test_an_idempotency_key_needs_an_api_key(world):
    content = Content(message="hi")
    with pytest.raises(ValueError, match="API key"):
        sending.send(
            Sender.person(world["alice"]),
            ["Ops"],
            content,
            options=FORM,
            idempotency_key=IdempotencyKey.for_request("k", ["Ops"], content),
        )
    assert _rows() == 0


def test_a_record_kept_before_receipts_replays_the_same_notifications(world):
    """Records written before the send use case kept the API's whole answer: they replay."""
    sender = _key_sender(world["alice_key"])
    content = Content(message="old record")
    key = IdempotencyKey.for_request("old-1", ["Ops"], content)
    stored = {
        "notifications": [
            {
                "id": 41,
                "connection": {"id": world["ids"]["ops"], "label": "Ops"},
                "status": "queued",
                "url": "/api/v1/notifications/41",
            }
        ]
    }
    db.session.add(
        IdempotencyRecord(
            api_key_id=world["alice_key"].id,
            key="old-1",
            request_hash=key.fingerprint,
            status_code=202,
            response_json=json.dumps(stored, separators=(",", ":")) + "\n",
        )
    )
    db.session.commit()
    result = sending.send(sender, ["Ops"], content, options=API, idempotency_key=key)
    assert result.replayed
    assert [(row.id, row.connection.id, row.connection.label) for row in result.notifications] == [
        (41, world["ids"]["ops"], "Ops")
    ]
    assert _rows() == 0


def test_queued_notifications_are_counted_by_source_and_replays_are_not(world):
    before = {source: _queued(source) for source in ("form", "api")}
    sending.send(Sender.person(world["alice"]), ["Ops"], Content(message="a"), options=FORM)
    sender = _key_sender(world["root_key"])
    content = Content(message="b")
    key = IdempotencyKey.for_request("k", [world["ids"]["root"], world["ids"]["ops"]], content)
    for _ in range(2):
        sending.send(
            sender,
            [world["ids"]["root"], world["ids"]["ops"]],
            content,
            options=API,
            idempotency_key=key,
        )
    assert _queued("form") - before["form"] == 1
    assert _queued("api") - before["api"] == 2
