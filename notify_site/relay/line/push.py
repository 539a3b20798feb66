"""The push outbox: each accepted notification becomes one Messaging API push.

``/relay/api/notify`` writes, in the same transaction as the inbox row, a :class:`RelayPush`
with a fresh ``X-Line-Retry-Key``, then attempts it at once and waits (bounded) for LINE's
answer (:mod:`sync_delivery`, ``attempt_push(caller_waits=True)``). A worker job (hooked into
the site's worker loop, so both ``flask worker`` and ``flask serve`` / ``make run`` drive it)
claims the due rows still pending and pushes them.

The queue is the outbox machinery the site's delivery uses too (:mod:`notify_site.outbox`):
each push is claimed under a fresh fencing token with a lease (:data:`PUSHES`), nothing is
held open while LINE is called, and the outcome is written only while the row still carries
that token. What an answer means (delivered, failed, or tried again after the shared
full-jitter backoff, a rate-limit 429 included) is :func:`push_outcome.classify_push`; a
monthly-limit 429 instead pauses the whole channel (:mod:`monthly_limit`). A chat that became
unreachable fails without a call (LINE answers 200 to a blocked user but delivers nothing,
and counts nothing).

A worker killed between LINE's 200 and the commit leaves the row leased; after the lease the
next attempt carries the same key and LINE answers 409: still exactly one message.

Issue 15 adds, each in its own module: the push's price in LINE's quota (``cost.py``: a
day-old member count is read again first) settled in the ledger when the push finishes, and
packing (``packing.py``): the chat's pushes queued behind this one ride in the same request.

Past 400 lines on purpose: one idea, one push's attempt and its fenced outcome; packing,
the monthly pause, cost and refusals already live in modules of their own.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import select

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.outbox import Lease, Outbox, RetryPolicy, new_token, retrying
from notify_site.relay import ledger
from notify_site.relay.inbox import signed_image_query
from notify_site.relay.line import cost, packing, quota
from notify_site.relay.line.channel import ChannelSettings, current_settings, messaging_api
from notify_site.relay.line.monthly_limit import (
    PauseSchedule,
    current_pause,
    is_monthly_limit_429,
    pause,
    still_paused,
)
from notify_site.relay.line.push_outcome import PushOutcomeKind, classify_push
from notify_site.relay.line.refusals import (
    details_text,
    has_image_message,
    image_refused,
    line_error,
)
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
        public_id=secrets.token_urlsafe(16),
    )
    db.session.add(push)
    return push


def build_messages(
    message: RelayMessage, public_base_url: str, *, with_image: bool = True
) -> list[Any]:
    """The Messaging API messages for one notification: text, then image, then sticker.

    The text starts with the sending service's name in brackets, as LINE Notify's did, since
    several services share one bot. ``with_image`` False leaves the image out (LINE refused
    it: the text still goes).
    """
    from linebot.v3 import messaging  # the SDK loads on first use (channel.py)

    out: list[Any] = [messaging.TextMessage(text=f"[{message.client_name}] {message.message}")]
    if with_image and message.image is not None:
        # LINE fetches it with no session: the URL carries the relay's signature (inbox.py).
        public_id = message.image.public_id
        query = signed_image_query(public_id)
        out.append(
            messaging.ImageMessage(
                originalContentUrl=f"{public_base_url}/images/{public_id}?{query}",
                # Within LINE's 1 MB for previews (uploads may be 5 MB): relay/previews.py.
                previewImageUrl=f"{public_base_url}/images/{public_id}/preview?{query}",
            )
        )
    elif with_image and message.image_fullsize_url and message.image_thumbnail_url:
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
    settings: ChannelSettings,
    policy: RetryPolicy,
    stopping: Callable[[], bool] = lambda: False,
    schedule: PauseSchedule | None = None,
) -> int:
    """Push every due row once; returns how many pushes LINE was sent.

    Nothing is pushed while the channel is paused for LINE's monthly limit; the quota is
    re-checked here when that is due (:mod:`monthly_limit`).
    """
    schedule = schedule or PauseSchedule.from_config(current_app.config)
    calls = 0
    now = utcnow()
    db.session.commit()  # a fresh snapshot
    if still_paused(settings, schedule, now):
        return 0
    for push_id in due_push_ids(now):
        if stopping():
            break
        calls += push_one(settings, policy, push_id, schedule)
    return calls


def push_one(
    settings: ChannelSettings,
    policy: RetryPolicy,
    push_id: int,
    schedule: PauseSchedule | None = None,
) -> int:
    """Claim one due push and attempt it; returns 1 if LINE was called, else 0."""
    return int(attempt_push(settings, policy, push_id, schedule).called)


class AttemptKind:
    """What became of one attempt (:class:`Attempt`)."""

    DELIVERED = "delivered"
    FAILED = "failed"
    #: Tried again later (a 5xx, a timeout, a rate-limit 429): the push is still pending.
    RETRY = "retry"
    #: LINE's monthly limit: the channel paused; the push waits (or, for a caller that was
    #: told 429, failed).
    MONTHLY_LIMIT = "monthly_limit"
    #: LINE refused the image: the text goes next, alone.
    IMAGE_REFUSED = "image_refused"
    #: Not attempted: another process holds it, or the channel is paused.
    NOT_CLAIMED = "not_claimed"


@dataclass(frozen=True)
class Attempt:
    """One attempt's outcome, for the Notify API's synchronous answer (sync_delivery.py)."""

    kind: str
    called: bool = False
    status: int | None = None
    #: LINE's message and field-level details, when it refused.
    line_message: str | None = None
    details: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None


def attempt_push(
    settings: ChannelSettings,
    policy: RetryPolicy,
    push_id: int,
    schedule: PauseSchedule | None = None,
    *,
    timeout: float | None = None,
    caller_waits: bool = False,
) -> Attempt:
    """Claim one push and attempt it.

    The worker claims due pushes only; ``caller_waits`` (the Notify call that queued the push
    and waits for LINE's answer) claims it at once, calls LINE with ``timeout``, and on the
    monthly limit fails the push rather than let it wait: that caller is answered 429 and may
    send again, so the push must not go out later too.
    """
    from linebot.v3 import messaging  # the SDK loads on first use (channel.py)

    now = utcnow()
    token = new_token()
    mine = RelayPush.id == push_id
    if caller_waits:
        claimed = PUSHES.lease.take(
            mine, RelayPush.status == PushStatus.PENDING, token=token, now=now, duration=LEASE
        )
    else:
        claimed = PUSHES.claim(mine, token=token, now=now, duration=LEASE)
    if claimed != 1:
        db.session.rollback()
        return Attempt(AttemptKind.NOT_CLAIMED)
    db.session.commit()
    until = now + LEASE
    if current_pause(settings) is not None:
        # Another process paused the channel since this round began: the push waits, due.
        retrying(_write_outcome, until, push_id, token, {"next_attempt_at": now})
        return Attempt(AttemptKind.NOT_CLAIMED)
    push = db.session.get(RelayPush, push_id)
    chat = db.session.get(RelayChat, push.chat_id)
    if chat is None or not chat.reachable:
        retrying(
            _finish, until, push_id, token, PushStatus.FAILED, {"last_error": CHAT_UNREACHABLE}
        )
        return Attempt(AttemptKind.FAILED, error=CHAT_UNREACHABLE)
    if cost.needs_count(chat, now):  # what the push costs: a day-old member count is re-read
        cost.read_member_count(settings, chat, now)
        db.session.commit()
    units = cost.units_for(chat, current_app.config)
    # The queued pushes of the chat that ride along (packing.py), stored before any attempt.
    # A caller that waits for LINE's answer to its own message sends it alone: its answer is
    # about that message only (sync_delivery.py).
    packs = current_app.config["RELAY_LINE_PACKING"] and not caller_waits
    followers = packing.pack(push, now) if packs else []
    db.session.commit()
    # After LINE refused an image once, the pack goes again as text and stickers only, so
    # that a refused image can never make the same request loop.
    with_image = push.image_error is None
    messages = build_messages(push.message, settings.public_base_url, with_image=with_image)
    for follower in followers:
        messages += build_messages(
            follower.message, settings.public_base_url, with_image=with_image
        )
    request = messaging.PushMessageRequest(
        to=push.to_id,
        messages=messages,
        notificationDisabled=bool(push.message.notification_disabled),
    )
    retry_key = push.retry_key
    has_image = has_image_message(request.messages)
    # The give-up clock: from the push's creation, or from the end of a monthly-limit pause.
    created_at = push.retry_since or push.created_at
    attempts = push.attempts + 1
    db.session.commit()  # no transaction open while LINE is called

    status: int | None = None
    request_id = None
    error_text = None
    line_message = None
    details: list[dict[str, str]] = []
    try:
        answer = messaging_api(settings).push_message_with_http_info(
            request, x_line_retry_key=retry_key, _request_timeout=timeout or settings.timeout
        )
        status = answer.status_code
        request_id = _header(answer.headers, "x-line-request-id")
    except messaging.ApiException as error:
        status = error.status
        request_id = _header(error.headers, "x-line-accepted-request-id") or _header(
            error.headers, "x-line-request-id"
        )
        line_message, details = line_error(error.body)
        error_text = f"HTTP {status}: {line_message}{details_text(details)}"
    except Exception as error:  # noqa: BLE001 - timeouts, refused connections: retry
        error_text = f"no answer from LINE ({type(error).__name__})"

    refused = Attempt(
        AttemptKind.FAILED,
        called=True,
        status=status,
        line_message=line_message,
        details=details,
        error=error_text,
    )
    if status == 429 and is_monthly_limit_429(settings, line_message):
        # Not the push's failure: the channel's month is spent. The push waits, due and with
        # its attempts unspent, for the pause to end (monthly_limit.py) — unless its caller
        # is told 429 now.
        values = {"last_status_code": status, "line_request_id": request_id}
        if caller_waits:
            values["last_error"] = f"{error_text} (refused to the caller)"[:500]
            retrying(_finish, until, push_id, token, PushStatus.FAILED, values)
        else:
            values["last_error"] = f"{error_text} (waiting for the monthly quota)"[:500]
            retrying(_write_outcome, until, push_id, token, values)
        pause(settings, schedule or PauseSchedule.from_config(current_app.config), utcnow())
        quota.ask_again(settings)  # the admin page's and the budgets' figures, read anew
        return replace(refused, kind=AttemptKind.MONTHLY_LIMIT)
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
    values: dict[str, Any] = {
        "attempts": attempts,
        "last_status_code": status,
        "line_request_id": request_id,
    }
    if outcome.error is not None:
        values["last_error"] = outcome.error[:500]
    if (
        outcome.kind == PushOutcomeKind.FAILED
        and status == 400
        and has_image
        and image_refused(details)
    ):
        # The image cannot go (an http:// URL, a bad image): the text must not be lost with
        # it. The refusal sent nothing, so the text goes next under a fresh key, stored before
        # that attempt; the image's failure stays on the push.
        values.update(
            image_error=(error_text or "")[:500],
            retry_key=new_retry_key(),
            next_attempt_at=utcnow(),
        )
        retrying(_write_outcome, until, push_id, token, values)
        log.warning("relay: LINE refused push %s's image; sending its text alone", push_id)
        return replace(refused, kind=AttemptKind.IMAGE_REFUSED)
    if outcome.kind == PushOutcomeKind.RETRY:
        values["next_attempt_at"] = outcome.retry_at
        retrying(_write_outcome, until, push_id, token, values)
        return replace(refused, kind=AttemptKind.RETRY)
    delivered = outcome.kind == PushOutcomeKind.DELIVERED
    status_after = PushStatus.DELIVERED if delivered else PushStatus.FAILED
    retrying(_finish, until, push_id, token, status_after, values, units)
    if delivered:
        return Attempt(AttemptKind.DELIVERED, called=True, status=status)
    return replace(refused, error=outcome.error)


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
