"""The push outbox: each accepted notification becomes one Messaging API push.

``/relay/api/notify`` answers exactly as in sandbox mode (synchronously, with the same window
and headers) and writes, in the same transaction as the inbox row, a :class:`RelayPush` with a
fresh ``X-Line-Retry-Key``. A worker job (hooked into the site's worker loop, so both
``flask worker`` and ``flask serve`` / ``make run`` drive it) claims due rows with a lease and
pushes them:

* 200 → delivered; 409 → delivered too (LINE already accepted this retry key);
* 429 (rate or monthly limit), 5xx, 401 (the channel token) and network errors → retried
  after a full-jitter backoff with the **same** retry key; a 429 does not spend an attempt;
* any other 4xx (400: a bad message, a chat the bot is not in) → failed at once;
* a chat that became unreachable → failed without a call (LINE answers 200 to a blocked user
  but delivers nothing, and counts nothing);
* given up after ``RELAY_LINE_MAX_ATTEMPTS`` attempts or ``RELAY_LINE_MAX_AGE_HOURS`` hours,
  which stays well inside the 24 hours LINE remembers a retry key: a retry can never become a
  second send.

A worker killed between LINE's 200 and the commit leaves the row leased; after the lease the
next attempt carries the same key and LINE answers 409: still exactly one message.
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import or_, select, update

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.relay.line.channel import ChannelSettings, current_settings, messaging_api
from notify_site.relay.models import PushStatus, RelayChat, RelayMessage, RelayPush

log = logging.getLogger(__name__)

LEASE_SECONDS = 60
BATCH = 20
CHAT_UNREACHABLE = "chat unreachable"


@dataclass(frozen=True)
class PushPolicy:
    base_seconds: float = 15
    cap_seconds: float = 900
    max_attempts: int = 8
    max_age: timedelta = timedelta(hours=20)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> PushPolicy:
        return cls(
            base_seconds=float(config["RELAY_LINE_RETRY_BASE"]),
            cap_seconds=float(config["RELAY_LINE_RETRY_CAP"]),
            max_attempts=int(config["RELAY_LINE_MAX_ATTEMPTS"]),
            max_age=timedelta(hours=float(config["RELAY_LINE_MAX_AGE_HOURS"])),
        )

    def backoff(self, attempt: int) -> float:
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** max(attempt - 1, 0))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret


def new_retry_key() -> str:
    """A retry key as LINE wants it: a UUID in hexadecimal form."""
    return str(uuid.uuid4())


def queue_push(message: RelayMessage, chat_line_id: str, *, now: datetime) -> RelayPush:
    """Add the push for ``message`` to the caller's transaction, its retry key already set."""
    push = RelayPush(
        message_id=message.id,
        chat_id=message.chat_id,
        to_id=chat_line_id,
        retry_key=new_retry_key(),
        status=PushStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    db.session.add(push)
    return push


def build_messages(message: RelayMessage, public_base_url: str) -> list[Any]:
    """The Messaging API messages for one notification: text, then image, then sticker.

    The text starts with the sending service's name in brackets, as LINE Notify's did, since
    several services share one bot.
    """
    from linebot.v3 import messaging  # the SDK loads on first use (channel.py)

    out: list[Any] = [messaging.TextMessage(text=f"[{message.client_name}] {message.message}")]
    if message.image_id is not None:
        url = f"{public_base_url}/images/{message.image_id}"
        out.append(messaging.ImageMessage(originalContentUrl=url, previewImageUrl=url))
    elif message.image_fullsize_url and message.image_thumbnail_url:
        out.append(
            messaging.ImageMessage(
                originalContentUrl=message.image_fullsize_url,
                previewImageUrl=message.image_thumbnail_url,
            )
        )
    if message.sticker_package_id is not None and message.sticker_id is not None:
        out.append(
            messaging.StickerMessage(
                packageId=str(message.sticker_package_id), stickerId=str(message.sticker_id)
            )
        )
    return out


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    items = headers.items() if hasattr(headers, "items") else headers
    for key, value in items:
        if key.lower() == name.lower():
            return str(value)[:64]
    return None


def due_push_ids(now: datetime, limit: int = BATCH) -> list[int]:
    return list(
        db.session.scalars(
            select(RelayPush.id)
            .where(
                RelayPush.status == PushStatus.PENDING,
                RelayPush.next_attempt_at <= now,
                or_(RelayPush.lease_until.is_(None), RelayPush.lease_until < now),
            )
            .order_by(RelayPush.next_attempt_at, RelayPush.id)
            .limit(limit)
        )
    )


def process_due_pushes(
    settings: ChannelSettings, policy: PushPolicy, stopping: Callable[[], bool] = lambda: False
) -> int:
    """Push every due row once; returns how many calls to LINE were made."""
    calls = 0
    now = utcnow()
    db.session.commit()  # a fresh snapshot
    for push_id in due_push_ids(now):
        if stopping():
            break
        calls += push_one(settings, policy, push_id)
    return calls


def push_one(settings: ChannelSettings, policy: PushPolicy, push_id: int) -> int:
    """Claim one due push and attempt it; returns 1 if LINE was called, else 0."""
    from linebot.v3 import messaging  # the SDK loads on first use (channel.py)

    now = utcnow()
    claimed = db.session.execute(
        update(RelayPush)
        .where(
            RelayPush.id == push_id,
            RelayPush.status == PushStatus.PENDING,
            or_(RelayPush.lease_until.is_(None), RelayPush.lease_until < now),
        )
        .values(lease_until=now + timedelta(seconds=LEASE_SECONDS))
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        db.session.rollback()
        return 0
    db.session.commit()
    push = db.session.get(RelayPush, push_id)
    chat = db.session.get(RelayChat, push.chat_id)
    if chat is None or not chat.reachable:
        _finish(push, PushStatus.FAILED, error=CHAT_UNREACHABLE)
        return 0
    request = messaging.PushMessageRequest(
        to=push.to_id,
        messages=build_messages(push.message, settings.public_base_url),
        notificationDisabled=bool(push.message.notification_disabled),
    )
    retry_key = push.retry_key
    created_at = push.created_at
    attempts = push.attempts + 1
    db.session.commit()  # no transaction open while LINE is called

    status: int | None = None
    request_id = None
    error_text = None
    try:
        answer = messaging_api(settings).push_message_with_http_info(
            request, x_line_retry_key=retry_key, _request_timeout=settings.timeout
        )
        status = answer.status_code
        request_id = _header(answer.headers, "x-line-request-id")
    except messaging.ApiException as error:
        status = error.status
        request_id = _header(error.headers, "x-line-accepted-request-id") or _header(
            error.headers, "x-line-request-id"
        )
        error_text = f"HTTP {status}: {_line_message(error.body)}"
    except Exception as error:  # noqa: BLE001 - timeouts, refused connections: retry
        error_text = f"no answer from LINE ({type(error).__name__})"

    push = db.session.get(RelayPush, push_id)
    push.last_status_code = status
    push.line_request_id = request_id
    now = utcnow()
    if status is not None and (200 <= status < 300 or status == 409):
        push.attempts = attempts
        _finish(push, PushStatus.DELIVERED, now=now)
        return 1
    if status == 429:
        # Rate or monthly limit: no attempt spent, only the age limit applies.
        if now - created_at >= policy.max_age:
            _finish(push, PushStatus.FAILED, error=f"gave up: {error_text}", now=now)
        else:
            _retry_later(push, policy, max(attempts - 1, 1), error_text, now)
        return 1
    push.attempts = attempts
    retryable = status is None or status >= 500 or status == 401
    if not retryable:
        _finish(push, PushStatus.FAILED, error=error_text, now=now)
    elif attempts >= policy.max_attempts or now - created_at >= policy.max_age:
        _finish(push, PushStatus.FAILED, error=f"gave up after {attempts}: {error_text}", now=now)
    else:
        if status == 401:
            log.error("relay: LINE rejected the channel access token (HTTP 401)")
        _retry_later(push, policy, attempts, error_text, now)
    return 1


def _line_message(body: Any) -> str:
    """LINE's error message, from its JSON body (never echoes request data back)."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return "unreadable error body"
    message = data.get("message") if isinstance(data, dict) else None
    return str(message)[:300] if message else "no message"


def _retry_later(push: RelayPush, policy: PushPolicy, attempt: int, error: str | None, now):
    push.next_attempt_at = now + timedelta(seconds=policy.backoff(attempt))
    push.lease_until = None
    push.last_error = (error or "")[:500] or None
    db.session.commit()


def _finish(push: RelayPush, status: str, *, error: str | None = None, now=None) -> None:
    push.status = status
    push.lease_until = None
    push.finished_at = now or utcnow()
    if error is not None:
        push.last_error = error[:500]
    db.session.commit()


# --- The worker job ----------------------------------------------------------------------


def worker_job(app: Flask, stopping: Callable[[], bool]) -> int:
    """One round for the site's worker: leftover webhook events, then due pushes."""
    from notify_site.relay.line.events import process_events

    with app.app_context():
        settings = current_settings()
        if settings is None:
            return 0
        try:
            work = process_events(settings)
            work += process_due_pushes(
                settings, PushPolicy.from_config(current_app.config), stopping
            )
        except Exception:
            db.session.rollback()
            raise
        finally:
            db.session.remove()
        return work
