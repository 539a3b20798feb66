"""What the relay makes of LINE's answer to a push (relay/line/push_outcome.py): pure."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from notify_site.outbox import RetryPolicy
from notify_site.relay.line.push_outcome import (
    MONTHLY_LIMIT_MESSAGE,
    PushOutcomeKind,
    classify_push,
    is_monthly_limit,
)

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
POLICY = RetryPolicy(base_seconds=15, cap_seconds=900, max_attempts=8, max_age=timedelta(hours=20))


def outcome(status, *, attempts=1, created_at=NOW, message=None, rng=None):
    error = None if status is None else f"HTTP {status}: {message or 'x'}"
    return classify_push(
        status,
        error or "no answer from LINE (ReadTimeout)",
        line_message=message,
        attempts=attempts,
        created_at=created_at,
        now=NOW,
        policy=POLICY,
        rng=rng or random.Random(5),
    )


@pytest.mark.parametrize("status", [200, 409])
def test_accepted_or_already_accepted_is_delivered(status):
    assert outcome(status).kind == PushOutcomeKind.DELIVERED
    assert outcome(status).error is None


@pytest.mark.parametrize("status", [400, 403, 404, 413, 415])
def test_other_client_errors_fail_at_once(status):
    result = outcome(status, message="The request body has 1 error(s)")
    assert (result.kind, result.retry_at) == (PushOutcomeKind.FAILED, None)
    assert result.error == f"HTTP {status}: The request body has 1 error(s)"


@pytest.mark.parametrize("status", [None, 401, 429, 500, 503])
def test_rate_limits_server_errors_and_silence_are_tried_again(status):
    result = outcome(status, attempts=2)
    assert result.kind == PushOutcomeKind.RETRY
    assert NOW <= result.retry_at <= NOW + timedelta(seconds=30)


def test_a_429s_wait_grows_with_its_attempts():
    """Issue 22: a 429 waited uniform(0, 15 s) however often it came back (about every 7.5 s
    for 20 hours). Now its ceiling doubles with each attempt, as for any failure."""
    rng = random.Random(22)
    for attempts, ceiling in [(1, 15), (3, 60), (5, 240), (7, 900)]:
        waits = [
            (outcome(429, attempts=attempts, rng=rng).retry_at - NOW).total_seconds()
            for _ in range(300)
        ]
        assert max(waits) <= ceiling
        assert sum(waits) / len(waits) > ceiling / 4  # full jitter: mean ceiling / 2


def test_a_429_gives_up_like_any_failure():
    result = outcome(429, attempts=POLICY.max_attempts, message="Too many requests")
    assert result.kind == PushOutcomeKind.FAILED
    assert result.error == "gave up after 8: HTTP 429: Too many requests"
    old = outcome(429, attempts=1, created_at=NOW - timedelta(hours=20))
    assert old.kind == PushOutcomeKind.FAILED


def test_a_monthly_limit_is_told_from_a_rate_limit():
    monthly = outcome(429, message=MONTHLY_LIMIT_MESSAGE)
    rate = outcome(429, message="Too Many Requests")
    assert (monthly.kind, monthly.monthly_limit) == (PushOutcomeKind.RETRY, True)
    assert (rate.kind, rate.monthly_limit) == (PushOutcomeKind.RETRY, False)
    assert not is_monthly_limit(400, MONTHLY_LIMIT_MESSAGE)
    assert not is_monthly_limit(429, None)
