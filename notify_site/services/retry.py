"""What to do after a call to the Notify API: the outcome of an attempt and when to try again.

Pure functions (no database, no HTTP), so that every rule of SPEC 4.4 is unit-testable:

- 200 → delivered;
- 400 → failed at once, the server's reason kept;
- 401 → the connection is revoked, and its queued notifications fail with "connection revoked";
- 401 with ``"reason": "chat_unreachable"`` (the relay's channel mode) → the connection is
  unreachable: the token is kept (the chat may come back), but its queued notifications fail
  with :data:`CHAT_UNREACHABLE`;
- 429, or a window already spent → wait until Reset **without spending an attempt**;
- 429 with ``"reason": "monthly_limit"`` (the relay's LINE channel spent its month) → failed,
  "refused: monthly limit": the server refused it, and no hourly reset brings the month back;
  likewise ``"reason": "monthly_budget"`` (a monthly LINE budget set at the relay is spent);
- 5xx, timeouts, connection errors → retry after a full-jitter exponential backoff, capped;
  failed once the attempts or the age run out (the shared :class:`RetryPolicy` of
  :mod:`notify_site.outbox`, which the relay's LINE pushes use too).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from notify_site.notify_client import (
    AuthError,
    BadRequestError,
    NotifyError,
    RateLimit,
    RateLimitedError,
)
from notify_site.outbox import RetryPolicy
from notify_site.stored_text import StoredText, error_text, site_text

__all__ = [
    "CHAT_UNREACHABLE",
    "CONNECTION_REVOKED",
    "Outcome",
    "OutcomeKind",
    "RetryPolicy",
    "classify",
    "wait_until",
]


class OutcomeKind:
    DELIVERED = "delivered"
    FAILED = "failed"
    RETRY = "retry"
    WAIT = "wait"  # rate limited: try again at Reset, no attempt spent
    REVOKED = "revoked"
    UNREACHABLE = "unreachable"  # the chat blocked the bot or removed it; the token is sound
    AT_SERVER = "at_server"  # accepted, but pending at the Notify server (an extension)


# A notification's last_error (English, with a code pages translate: stored_text.py).
CONNECTION_REVOKED = site_text("connection_revoked")
CHAT_UNREACHABLE = site_text("chat_unreachable")
MONTHLY_LIMIT = site_text("refused_monthly_limit")
MONTHLY_BUDGET = site_text("refused_monthly_budget")


@dataclass(frozen=True)
class Outcome:
    kind: str
    spends_attempt: bool
    status_code: int | None = None
    error: StoredText | None = None
    retry_at: datetime | None = None
    rate_limit: RateLimit | None = None
    #: The server's message id, for AT_SERVER.
    remote_message_id: str | None = None


def wait_until(rate_limit: RateLimit | None, now: datetime, policy: RetryPolicy) -> datetime:
    """When a rate-limited connection may be called again."""
    reset = rate_limit.reset_at if rate_limit else None
    if reset is None or reset <= now:
        return now + timedelta(seconds=policy.rate_limit_fallback_seconds)
    return reset


def classify(
    error: NotifyError | None,
    *,
    rate_limit: RateLimit | None,
    attempts: int,
    created_at: datetime,
    now: datetime,
    policy: RetryPolicy,
    rng: random.Random | None = None,
) -> Outcome:
    """The outcome of one call: ``error`` is None on success, else the client's typed error.

    ``attempts`` counts the attempts spent *including* this one (a rate-limited answer does
    not spend one, whatever the count says).
    """
    if error is None:
        return Outcome(OutcomeKind.DELIVERED, True, 200, None, None, rate_limit)
    status = error.status_code
    limits = error.rate_limit or rate_limit
    reason = error_text(error)
    if isinstance(error, RateLimitedError) and error.monthly_limit:
        # The relay's LINE channel has spent its month: no hourly reset brings it back, and
        # the server refused this message (it will not send it later).
        return Outcome(OutcomeKind.FAILED, True, status, MONTHLY_LIMIT, None, limits)
    if isinstance(error, RateLimitedError) and error.monthly_budget:
        # A monthly LINE budget at the relay is spent: refused now, not sent later either.
        return Outcome(OutcomeKind.FAILED, True, status, MONTHLY_BUDGET, None, limits)
    if isinstance(error, RateLimitedError):
        return Outcome(
            OutcomeKind.WAIT, False, status, reason, wait_until(limits, now, policy), limits
        )
    if isinstance(error, AuthError) and error.chat_unreachable:
        return Outcome(OutcomeKind.UNREACHABLE, True, status, CHAT_UNREACHABLE, None, limits)
    if isinstance(error, AuthError):
        return Outcome(OutcomeKind.REVOKED, True, status, CONNECTION_REVOKED, None, limits)
    if isinstance(error, BadRequestError):
        return Outcome(OutcomeKind.FAILED, True, status, reason, None, limits)
    # 5xx, other statuses, timeouts and connection errors: worth another try.
    retry_at = policy.retry_at(attempts, created_at, now, rng)
    if retry_at is None:
        gave_up = site_text("gave_up", count=attempts, reason=reason)
        return Outcome(OutcomeKind.FAILED, True, status, gave_up, None, limits)
    return Outcome(OutcomeKind.RETRY, True, status, reason, retry_at, limits)
