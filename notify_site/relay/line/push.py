"""The push outbox: each accepted notification becomes one Messaging API push.

``/relay/api/notify`` answers exactly as in sandbox mode (synchronously, with the same window
and headers) and writes, in the same transaction as the inbox row, a :class:`RelayPush` with a
fresh ``X-Line-Retry-Key``. A worker job (hooked into the site's worker loop, so both
``flask worker`` and ``flask serve`` / ``make run`` drive it) claims due rows and pushes them.

The queue is the outbox machinery the site's delivery uses too (:mod:`notify_site.outbox`):
each push is claimed under a fresh fencing token with a lease (:data:`PUSHES`), nothing is
held open while LINE is called, and the outcome is written only while the row still carries
that token. What an answer means (delivered, failed, or tried again after the shared
full-jitter backoff, a 429 included) is :func:`push_outcome.classify_push`. A chat that became
unreachable fails without a call (LINE answers 200 to a blocked user but delivers nothing,
and counts nothing).

A worker killed between LINE's 200 and the commit leaves the row leased; after the lease the
next attempt carries the same key and LINE answers 409: still exactly one message.

Issue 15 adds, each in its own module: the push's price in LINE's quota (``cost.py``: a
day-old member count is read again first) settled in the ledger when the push finishes, and
packing (``packing.py``): the chat's pushes queued behind this one ride in the same request.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import select

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.outbox import Lease, Outbox, RetryPolicy, new_token, retrying
from notify_site.relay import ledger
from notify_site.relay.inbox import signed_image_query
from notify_site.relay.line import cost, packing
from notify_site.relay.line.channel import ChannelSettings, current_settings, messaging_api
from notify_site.relay.line.push_outcome import PushOutcomeKind, classify_push
from notify_site.relay.models import PushStatus, RelayChat, RelayMessage, RelayPush
from notify_site.relay.quota_models import UsageState

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
BATCH = 20
CHAT_UNREACHABLE = "chat unreachable"

#: The relay's push outbox: pending pushes, due at ``next_attempt_at``, each claimed under a
#: fencing token (``lease_token``) until ``lease_until``.
PUSHES = Outbox(
    Lease(RelayPush.id, RelayPush.lease_token, RelayPush.lease_until),
    RelayPush.status,
    (PushStatus.PENDING,),
    RelayPush.next_attempt_at,
)


def push_policy(config: Mapping[str, Any]) -> RetryPolicy:
    """The pushes' backoff and give-up rule, from the ``RELAY_LINE_*`` settings."""
    return RetryPolicy.from_config(config, "RELAY_LINE")


def new_retry_key() -> str:
    """A retry key as LINE wants it: a UUID in hexadecimal form."""
    return str(uuid.uuid4())


def queue_push(message: RelayMessage, chat_line_id: str, *, now: datetime) -> RelayPush:
    """Add the push for ``message`` to the caller's transaction, its retry key already set.

    With a digest window (``RELAY_LINE_DIGEST_SECONDS``, default 0: off) the push is due that
    much later, so that the pushes queued meanwhile ride in it (``packing.py``)."""
    digest = float(current_app.config.get("RELAY_LINE_DIGEST_SECONDS") or 0)
    push = RelayPush(
        message_id=message.id,
        chat_id=message.chat_id,
        to_id=chat_line_id,
        retry_key=new_retry_key(),
        status=PushStatus.PENDING,
        attempts=0,
        next_attempt_at=now + timedelta(seconds=digest),
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
    if message.image is not None:
        # LINE fetches it with no session: the URL carries the relay's signature (inbox.py).
        public_id = message.image.public_id
        url = f"{public_base_url}/images/{public_id}?{signed_image_query(public_id)}"
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
            .where(PUSHES.due(now))
            .order_by(RelayPush.next_attempt_at, RelayPush.id)
            .limit(limit)
        )
    )


def process_due_pushes(
    settings: ChannelSettings, policy: RetryPolicy, stopping: Callable[[], bool] = lambda: False
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


def push_one(settings: ChannelSettings, policy: RetryPolicy, push_id: int) -> int:
    """Claim one due push and attempt it; returns 1 if LINE was called, else 0."""
    from linebot.v3 import messaging  # the SDK loads on first use (channel.py)

    now = utcnow()
    token = new_token()
    if PUSHES.claim(RelayPush.id == push_id, token=token, now=now, duration=LEASE) != 1:
        db.session.rollback()
        return 0
    db.session.commit()
    until = now + LEASE
    push = db.session.get(RelayPush, push_id)
    chat = db.session.get(RelayChat, push.chat_id)
    if chat is None or not chat.reachable:
        retrying(
            _finish, until, push_id, token, PushStatus.FAILED, {"last_error": CHAT_UNREACHABLE}
        )
        return 0
    if cost.needs_count(chat, now):  # what the push costs: a day-old member count is re-read
        cost.read_member_count(settings, chat, now)
        db.session.commit()
    units = cost.units_for(chat, current_app.config)
    # The queued pushes of the chat that ride along (packing.py), stored before any attempt.
    followers = packing.pack(push, now) if current_app.config["RELAY_LINE_PACKING"] else []
    db.session.commit()
    messages = build_messages(push.message, settings.public_base_url)
    for follower in followers:
        messages += build_messages(follower.message, settings.public_base_url)
    request = messaging.PushMessageRequest(
        to=push.to_id,
        messages=messages,
        notificationDisabled=bool(push.message.notification_disabled),
    )
    retry_key = push.retry_key
    created_at = push.created_at
    attempts = push.attempts + 1
    db.session.commit()  # no transaction open while LINE is called

    status: int | None = None
    request_id = None
    error_text = None
    line_message = None
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
        line_message = _line_message(error.body)
        error_text = f"HTTP {status}: {line_message}"
    except Exception as error:  # noqa: BLE001 - timeouts, refused connections: retry
        error_text = f"no answer from LINE ({type(error).__name__})"

    outcome = classify_push(
        status,
        error_text,
        line_message=line_message,
        attempts=attempts,
        created_at=created_at,
        now=utcnow(),
        policy=policy,
    )
    if status == 401:
        log.error("relay: LINE rejected the channel access token (HTTP 401)")
    if outcome.monthly_limit:
        monthly_limit_reached(settings)
    values: dict[str, Any] = {
        "attempts": attempts,
        "last_status_code": status,
        "line_request_id": request_id,
    }
    if outcome.error is not None:
        values["last_error"] = outcome.error[:500]
    if outcome.kind == PushOutcomeKind.RETRY:
        values["next_attempt_at"] = outcome.retry_at
        retrying(_write_outcome, until, push_id, token, values)
    else:
        status_after = (
            PushStatus.DELIVERED if outcome.kind == PushOutcomeKind.DELIVERED else PushStatus.FAILED
        )
        retrying(_finish, until, push_id, token, status_after, values, units)
    return 1


def monthly_limit_reached(settings: ChannelSettings) -> None:
    """LINE said the channel's monthly message limit is reached: LINE's quota is read again
    on the worker's next round (``quota.ask_again``), so the budgets see it at once.

    For now the push backs off like after any 429 (and counts the attempt). This is where the
    channel-wide pause of issue 22 belongs: stop pushing for the channel, re-check the quota
    on a slow schedule, and resume when it comes back.
    """
    from notify_site.relay.line import quota

    log.warning("relay: LINE says the channel's monthly message limit is reached")
    quota.ask_again(settings)


def _line_message(body: Any) -> str:
    """LINE's error message, from its JSON body (never echoes request data back)."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return "unreadable error body"
    message = data.get("message") if isinstance(data, dict) else None
    return str(message)[:300] if message else "no message"


def _finish(
    push_id: int, token: str, status: str, values: dict[str, Any], units: int | None = None
) -> bool:
    """Write the push's final state, if this claim still holds it, and settle its units in
    the ledger in the same transaction (spent at ``units`` when delivered; refunded when it
    failed, as LINE counts nothing it refused); commits."""
    if status == PushStatus.DELIVERED:
        ledger.settle([push_id], UsageState.SPENT, units)
    else:
        ledger.settle([push_id], UsageState.REFUNDED)
    final = {**values, "status": status, "finished_at": utcnow()}
    # A pack is charged once, on its leader: its followers' reservations are given back.
    ledger.settle(packing.follower_ids(push_id), UsageState.REFUNDED)
    packing.finish_followers(push_id, final)
    return _write_outcome(push_id, token, final)


def _write_outcome(push_id: int, token: str, values: dict[str, Any]) -> bool:
    """The fenced finish: write ``values`` and let the push go, if this claim still holds it
    (a retry's ``next_attempt_at`` is among the values); commits."""
    if PUSHES.lease.finish(push_id, token, values):
        db.session.commit()
        return True
    # The lease ran out during the call and another worker claimed the push: its attempt is
    # the newer one (same retry key, so LINE sent the message at most once).
    db.session.rollback()
    log.warning("relay: push %s was claimed again meanwhile; this outcome is dropped", push_id)
    return False


# --- The worker job ----------------------------------------------------------------------


def worker_job(app: Flask, stopping: Callable[[], bool]) -> int:
    """One round for the site's worker: leftover webhook events, then due pushes."""
    from notify_site.relay import notices
    from notify_site.relay.line import quota
    from notify_site.relay.line.events import process_events

    with app.app_context():
        settings = current_settings()
        if settings is None:
            return 0
        try:
            work = process_events(settings)
            if quota.refresh_quota_if_due(
                settings, float(current_app.config["RELAY_LINE_QUOTA_REFRESH_SECONDS"]), utcnow()
            ):
                notices.check_thresholds(current_app.config, utcnow())  # LINE's count moved
            work += process_due_pushes(settings, push_policy(current_app.config), stopping)
        except Exception:
            db.session.rollback()
            raise
        finally:
            db.session.remove()
        return work
