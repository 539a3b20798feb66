"""A 200 that means what it says: ``/api/notify`` waits for LINE's answer (issue 22).

LINE Notify's 200 meant the message went out. In channel mode the relay used to answer 200 as
soon as the push was queued, so a push LINE then refused (a monthly limit, a bad message)
still looked *delivered* to every Notify client. Now the call that queued a push attempts it
at once and waits, at most ``RELAY_LINE_SYNC_WAIT_SECONDS``, for LINE:

* LINE accepted it → 200, LINE Notify's own body;
* LINE refused it for good (a 400) → the Notify-shaped 400 with LINE's reason and ``details``;
* LINE's monthly limit → 429 (the channel pauses; the push is failed, since its caller is told
  it was refused and may send again);
* LINE slow or failing (a timeout, a 5xx, a rate-limit 429), or an older push of the same chat
  still waiting (its order is kept: this one waits behind it) → the push stays queued for the
  worker, and the answer is 200 with the extension ``"delivery": "pending"`` and a
  ``messageId``, whose final state the token's holder reads at ``GET /api/messages/<id>``.

The push is queued (with its retry key) in the transaction that accepted the call, before
LINE is called, and is held back from the worker while its caller waits (``next_attempt_at``
just past the wait), so the retry-key guarantees of the outbox are unchanged: a process that
dies while waiting leaves a pending push the worker sends once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from notify_site.extensions import db
from notify_site.outbox import RetryPolicy
from notify_site.relay.line.channel import ChannelSettings
from notify_site.relay.line.monthly_limit import PauseSchedule
from notify_site.relay.line.push import Attempt, AttemptKind, attempt_push
from notify_site.relay.models import PushStatus, RelayPush

#: Below this many seconds left, a call to LINE is not started.
MIN_CALL_SECONDS = 0.2


@dataclass(frozen=True)
class Delivery:
    """What the Notify API answers for a queued push."""

    #: "delivered", "pending", "failed" or "monthly_limit".
    state: str
    message_id: str
    reason: str | None = None
    details: tuple[dict[str, str], ...] = ()


def deliver_now(
    settings: ChannelSettings,
    policy: RetryPolicy,
    schedule: PauseSchedule,
    push_id: int,
    *,
    wait_seconds: float,
    clock=time.monotonic,
) -> Delivery:
    """Attempt the push the current call queued, within ``wait_seconds``; commits."""
    public_id = db.session.scalar(select(RelayPush.public_id).where(RelayPush.id == push_id))
    db.session.commit()
    if wait_seconds <= 0:
        return Delivery("pending", public_id or "")
    deadline = clock() + wait_seconds
    attempt = Attempt(AttemptKind.RETRY)
    # At most twice: a refused image sends the text alone next (push.py).
    for _ in range(2):
        left = deadline - clock()
        if left < MIN_CALL_SECONDS:
            break
        attempt = attempt_push(
            settings,
            policy,
            push_id,
            schedule,
            timeout=min(settings.timeout, left),
            caller_waits=True,
        )
        if attempt.kind != AttemptKind.IMAGE_REFUSED:
            break
    return _delivery(attempt, public_id or "")


def _delivery(attempt: Attempt, public_id: str) -> Delivery:
    if attempt.kind == AttemptKind.DELIVERED:
        return Delivery("delivered", public_id)
    if attempt.kind == AttemptKind.MONTHLY_LIMIT:
        return Delivery("monthly_limit", public_id, attempt.line_message)
    if attempt.kind == AttemptKind.FAILED:
        reason = attempt.line_message or attempt.error
        return Delivery("failed", public_id, reason, tuple(attempt.details))
    return Delivery("pending", public_id)


def has_older_pending(push: RelayPush) -> bool:
    """Whether an older push of the same chat still waits: a new one must not overtake it."""
    older = db.session.scalar(
        select(func.count())
        .select_from(RelayPush)
        .where(
            RelayPush.chat_id == push.chat_id,
            RelayPush.status == PushStatus.PENDING,
            RelayPush.id < push.id,
        )
    )
    return bool(older)


def hold_for_caller(push: RelayPush, now: datetime, wait_seconds: float) -> float:
    """Keep the worker off a push its caller is about to attempt, until the wait is over;
    returns how long the caller may wait: 0 when an older push of its chat waits (order), or
    when a digest window holds the push to gather the chat's next ones (packing.py) — the
    caller is then told *pending* at once."""
    held_for_digest = push.next_attempt_at is not None and push.next_attempt_at > now
    if wait_seconds <= 0 or held_for_digest or has_older_pending(push):
        return 0.0
    push.next_attempt_at = now + timedelta(seconds=wait_seconds + 1)
    return wait_seconds


def stored_delivery(push: RelayPush) -> Delivery:
    """A push's state as the token's holder reads it later (``GET /api/messages/<id>``)."""
    public_id = push.public_id or ""
    if push.status == PushStatus.DELIVERED:
        return Delivery("delivered", public_id, push.image_error and "image refused")
    monthly = push.last_status_code == 429 and "monthly limit" in (push.last_error or "").lower()
    if push.status == PushStatus.FAILED:
        return Delivery(
            "monthly_limit" if monthly else "failed", public_id, push.last_error or "failed"
        )
    return Delivery("pending", public_id, "waiting for the monthly quota" if monthly else None)
