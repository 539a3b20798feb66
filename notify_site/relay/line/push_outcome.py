"""What to do after a Messaging API push: the outcome of one attempt, and when to try again.

A pure function (no database, no HTTP, no Flask), so that every rule is testable alone:

* 2xx → delivered; 409 → delivered too (LINE already accepted this retry key);
* 429, 5xx, 401 (the channel's token) and no answer at all (a timeout, a refused
  connection) → tried again with the **same** retry key after the shared full-jitter backoff
  (:class:`notify_site.outbox.RetryPolicy`, ``RELAY_LINE_*``); each attempt counts, a 429
  included, so a push waits longer after each refusal and gives up like any other;
* any other 4xx (400: a bad message, a chat the bot is not in) → failed at once;
* given up after ``RELAY_LINE_MAX_ATTEMPTS`` attempts or ``RELAY_LINE_MAX_AGE_HOURS`` hours,
  which stays well inside the 24 hours LINE remembers a retry key: a retry can never become a
  second send.

A 429 is either LINE's rate limit (requests per second) or the channel's **monthly** message
limit, told apart by LINE's message and the quota endpoints. Only the first is classified
here; the push job hands the second to :mod:`monthly_limit`, which pauses the whole channel
until the quota comes back. :attr:`PushOutcome.monthly_limit` still marks a 429 whose message
names the monthly limit, for a caller that has no channel to pause.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from notify_site.outbox import RetryPolicy

#: LINE's message when the channel has sent its month's allowance (docs/line-platform.md B5).
MONTHLY_LIMIT_MESSAGE = "You have reached your monthly limit."


class PushOutcomeKind:
    DELIVERED = "delivered"
    FAILED = "failed"
    RETRY = "retry"


@dataclass(frozen=True)
class PushOutcome:
    kind: str
    #: What ``last_error`` should say (None when delivered).
    error: str | None = None
    #: When to try again (RETRY only).
    retry_at: datetime | None = None
    #: A 429 that says the channel's monthly limit is reached (see the module's docstring).
    monthly_limit: bool = False


def is_monthly_limit(status: int | None, line_message: str | None) -> bool:
    """True for LINE's 429 that means the month's messages are spent (not a rate limit)."""
    return status == 429 and bool(line_message) and "monthly limit" in line_message.lower()


def classify_push(
    status: int | None,
    error: str | None,
    *,
    line_message: str | None,
    attempts: int,
    created_at: datetime,
    now: datetime,
    policy: RetryPolicy,
    rng: random.Random | None = None,
) -> PushOutcome:
    """The outcome of one push: ``status`` is LINE's HTTP status (None when nothing
    answered), ``error`` the text to keep when it was not a success, ``line_message`` LINE's
    own message from the error body, ``attempts`` the attempts spent *including* this one."""
    if status is not None and (200 <= status < 300 or status == 409):
        return PushOutcome(PushOutcomeKind.DELIVERED)
    retryable = status is None or status >= 500 or status in (401, 429)
    if not retryable:
        return PushOutcome(PushOutcomeKind.FAILED, error)
    monthly = is_monthly_limit(status, line_message)
    retry_at = policy.retry_at(attempts, created_at, now, rng)
    if retry_at is None:
        return PushOutcome(
            PushOutcomeKind.FAILED, f"gave up after {attempts}: {error}", monthly_limit=monthly
        )
    return PushOutcome(PushOutcomeKind.RETRY, error, retry_at, monthly_limit=monthly)
