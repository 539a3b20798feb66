"""Packing (issue 15): one push carries the chat's queued notifications, up to LINE's five
message objects, and LINE counts it once per recipient however many objects it carries
(line-platform.md B1, B8). Ten notifications to a group of ten, sent one by one, cost 100
units; packed five to a push (text only), 20.

**No waiting.** When the push job takes a chat's next push (the *leader*), it packs only the
pushes already queued behind it for the same chat: nothing is held back to gather more, so
packing adds no latency. Optionally, ``RELAY_LINE_DIGEST_SECONDS`` (default 0: off) makes each
new push due that many seconds after it was queued, so that the ones queued meanwhile ride in
it (a follower may leave before its own time: it was only waiting to be gathered). The window
is channel-wide; a per-token window is not built.

**What may ride along** (a *follower*): a push of the same chat, queued after the leader
(higher id), pending, never attempted, and not held by another worker; with the same
``notificationDisabled`` as the leader; while the message objects of all of them fit in five
(a notification is 1 to 3 objects: text, image, sticker). Followers are taken in id order and
packing stops at the first push that does not qualify, so no push overtakes one queued
before it: the chat's order is kept.

**One retry key, decided before the first attempt.** The pack is decided once, on the
leader's first claim, and stored in the same commit before LINE is called: each follower gets
``status = packed`` and ``packed_into_id = leader``, and the leader points at itself to say
"decided" (a leader whose pack is decided never takes new followers, even after a crash
before its first answer was written; otherwise its retry would carry a different body under
the same retry key, and LINE's 409 would mark unsent followers delivered). Every attempt
rebuilds the same request from the stored pack and sends it with the leader's retry key, so
a 500 then 200 (or a 409) delivers each packed notification exactly once. Followers are never
claimed alone (``packed`` is not a waiting state) and are finished with their leader, in the
same fenced transaction.

Each conditional UPDATE here runs in the caller's transaction; nothing commits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from notify_site.extensions import db
from notify_site.relay.models import PushStatus, RelayMessage, RelayPush

#: LINE's limit of message objects in one push (line-platform.md B1).
MAX_MESSAGE_OBJECTS = 5
#: How many queued pushes are looked at behind a leader (at most 4 can ride along).
LOOK_AHEAD = MAX_MESSAGE_OBJECTS - 1


def message_objects(message: RelayMessage) -> int:
    """How many message objects a notification becomes (``push.build_messages``)."""
    image = message.image_id is not None or bool(
        message.image_fullsize_url and message.image_thumbnail_url
    )
    sticker = message.sticker_package_id is not None and message.sticker_id is not None
    return 1 + int(image) + int(sticker)


def pack(leader: RelayPush, now: datetime) -> list[RelayPush]:
    """The leader's followers: decided now if this is its first claim, else as stored."""
    if leader.packed_into_id is not None:
        return followers_of(leader.id)
    taken: list[RelayPush] = []
    room = MAX_MESSAGE_OBJECTS - message_objects(leader.message)
    silent = bool(leader.message.notification_disabled)
    candidates = db.session.scalars(
        select(RelayPush)
        .join(RelayMessage, RelayMessage.id == RelayPush.message_id)
        .where(RelayPush.chat_id == leader.chat_id, RelayPush.id > leader.id)
        .where(RelayPush.status == PushStatus.PENDING)
        .order_by(RelayPush.id)
        .limit(LOOK_AHEAD)
    ).all()
    for push in candidates:
        objects = message_objects(push.message)
        fits = objects <= room and bool(push.message.notification_disabled) == silent
        if not fits or not _take(push.id, leader.id, now):
            break
        taken.append(push)
        room -= objects
    _mark_decided(leader.id)
    return taken


def followers_of(leader_id: int) -> list[RelayPush]:
    return list(
        db.session.scalars(
            select(RelayPush)
            .where(RelayPush.packed_into_id == leader_id, RelayPush.id != leader_id)
            .order_by(RelayPush.id)
        )
    )


def follower_ids(leader_id: int) -> list[int]:
    return list(
        db.session.scalars(
            select(RelayPush.id).where(
                RelayPush.packed_into_id == leader_id, RelayPush.id != leader_id
            )
        )
    )


def finish_followers(leader_id: int, values: dict[str, Any]) -> None:
    """Give the followers their leader's final state (call in the leader's fenced finish)."""
    db.session.execute(
        update(RelayPush)
        .where(RelayPush.packed_into_id == leader_id, RelayPush.id != leader_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def _take(push_id: int, leader_id: int, now: datetime) -> bool:
    """Make one queued push a follower, if it still qualifies (a conditional UPDATE)."""
    taken = db.session.execute(
        update(RelayPush)
        .where(
            RelayPush.id == push_id,
            RelayPush.status == PushStatus.PENDING,
            RelayPush.packed_into_id.is_(None),
            RelayPush.attempts == 0,
            (RelayPush.lease_until.is_(None)) | (RelayPush.lease_until < now),
        )
        .values(status=PushStatus.PACKED, packed_into_id=leader_id)
        .execution_options(synchronize_session=False)
    )
    return taken.rowcount == 1


def _mark_decided(leader_id: int) -> None:
    db.session.execute(
        update(RelayPush)
        .where(RelayPush.id == leader_id)
        .values(packed_into_id=leader_id)
        .execution_options(synchronize_session=False)
    )
