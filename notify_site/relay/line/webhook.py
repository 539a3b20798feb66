"""``POST /relay/line/webhook``: check the signature, store the events, acknowledge.

The order is the point (reliability.md, Webhooks):

1. the ``x-line-signature`` is checked over the raw body bytes, in constant time, by the SDK's
   ``SignatureValidator`` — before anything is parsed; a bad one stores nothing;
2. each event is stored as it came, keyed by its ``webhookEventId`` (unique): a redelivery or a
   duplicate finds the row already there and is only counted;
3. the view answers 200 at once; the events are processed afterwards (:mod:`events`), by a
   step that runs after the response is sent and, as a backstop, by the worker.

The SDK's ``WebhookParser`` would check and parse in one go, but it parses every event at once
and turns unknown ones into opaque objects; the relay wants the raw JSON of each event stored
first, so it validates with ``SignatureValidator`` and parses each stored event on its own with
the SDK's ``Event.from_dict`` (in :mod:`events`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.on_conflict import dialect_insert
from notify_site.relay.line.channel import ChannelSettings
from notify_site.relay.models import RelayLineEvent

log = logging.getLogger(__name__)


class WebhookSignatureError(Exception):
    """The body does not carry the channel's signature."""


class WebhookBodyError(Exception):
    """The body is signed but is not a webhook payload."""


@dataclass(frozen=True)
class StoredEvents:
    new_ids: list[int]
    duplicates: int
    ignored: int


def check_signature(settings: ChannelSettings, body: bytes, signature: str | None) -> None:
    """Raise WebhookSignatureError unless ``signature`` is the body's HMAC under the secret."""
    from linebot.v3 import SignatureValidator  # the SDK loads on first use (channel.py)

    if not signature:
        raise WebhookSignatureError("no x-line-signature")
    try:
        text = body.decode("utf-8")
        signature.encode("ascii")
    except (UnicodeDecodeError, UnicodeEncodeError):
        raise WebhookSignatureError("body or signature is not text") from None
    if not SignatureValidator(settings.channel_secret).validate(text, signature):
        raise WebhookSignatureError("signature does not match")


def _source(event: dict[str, Any]) -> tuple[str | None, str | None]:
    source = event.get("source")
    if not isinstance(source, dict):
        return None, None
    kind = source.get("type")
    ident = {"user": "userId", "group": "groupId", "room": "roomId"}.get(str(kind))
    value = source.get(ident) if ident else None
    return (str(kind)[:8] if kind else None), (str(value)[:64] if value else None)


def _storable(value: Any) -> Any:
    """``value`` with every character no database text column can hold replaced by U+FFFD:
    a lone UTF-16 surrogate and NUL.

    JSON may escape either (``"\\ud800"``, ``"\\u0000"``). ``json.loads`` keeps a lone
    surrogate in the string, which UTF-8 cannot encode, and PostgreSQL refuses NUL in text:
    the event could not be stored (a 500, which LINE counts and resends) or its chat not
    recorded. A real surrogate pair is already one character after ``json.loads``.
    """
    if isinstance(value, str):
        text = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return text.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    return value


def _line_message_id(event: dict[str, Any]) -> str | None:
    """The LINE message a ``message`` event carries, or an ``unsend`` event takes back: the id
    that pairs them (events.py blanks what was unsent)."""
    kind = event.get("type")
    holder = event.get("message") if kind == "message" else event.get("unsend")
    value = (
        holder.get("id" if kind == "message" else "messageId") if isinstance(holder, dict) else None
    )
    return value if isinstance(value, str) and 0 < len(value) <= 64 else None


def _is_int64(value: Any) -> bool:
    """LINE's timestamps are int64 (webhook.yml); anything else is not stored as one."""
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def store_events(body: bytes) -> StoredEvents:
    """Store each event of a (verified) body once; returns the new rows' ids. Commits."""
    try:
        payload = _storable(json.loads(body))
    except ValueError:
        raise WebhookBodyError("body is not JSON") from None
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list):
        raise WebhookBodyError("body has no events list")
    new_ids: list[int] = []
    duplicates = ignored = 0
    now = utcnow()
    for event in events:
        event_id = event.get("webhookEventId") if isinstance(event, dict) else None
        if not isinstance(event_id, str) or not 0 < len(event_id) <= 64:
            ignored += 1
            log.warning("relay: webhook event without a usable webhookEventId ignored")
            continue
        delivery = event.get("deliveryContext")
        redelivery = bool(isinstance(delivery, dict) and delivery.get("isRedelivery"))
        timestamp = event.get("timestamp")
        source_type, source_id = _source(event)
        values = {
            "line_message_id": _line_message_id(event),
            "webhook_event_id": event_id,
            "event_type": str(event.get("type") or "")[:32],
            "source_type": source_type,
            "source_id": source_id,
            "event_timestamp": timestamp if _is_int64(timestamp) else None,
            "is_redelivery": redelivery,
            "duplicates": 0,
            "payload": json.dumps(event, ensure_ascii=False),
            "received_at": now,
        }
        # INSERT ... ON CONFLICT DO NOTHING: concurrent deliveries of one event insert it once.
        new_id = db.session.scalar(
            dialect_insert(RelayLineEvent)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["webhook_event_id"])
            .returning(RelayLineEvent.id)
        )
        if new_id is not None:
            new_ids.append(new_id)
            continue
        duplicates += 1
        db.session.execute(
            update(RelayLineEvent)
            .where(RelayLineEvent.webhook_event_id == event_id)
            .values(duplicates=RelayLineEvent.duplicates + 1)
            .execution_options(synchronize_session=False)
        )
        log.info(
            "relay: webhook event %s seen again (%s)",
            event_id,
            "redelivery" if redelivery else "duplicate",
        )
    db.session.commit()
    return StoredEvents(new_ids, duplicates, ignored)


def pending_event_ids(limit: int = 100) -> list[int]:
    """Stored events not processed yet, oldest first."""
    return list(
        db.session.scalars(
            select(RelayLineEvent.id)
            .where(RelayLineEvent.processed_at.is_(None))
            .order_by(RelayLineEvent.id)
            .limit(limit)
        )
    )
