"""Outcome classification and the full-jitter backoff policy."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notify_site.notify_client import (
    AuthError,
    BadRequestError,
    NetworkError,
    RateLimit,
    RateLimitedError,
    ServerError,
)
from notify_site.services.retry import (
    CHAT_UNREACHABLE,
    CONNECTION_REVOKED,
    MONTHLY_BUDGET,
    MONTHLY_LIMIT,
    OutcomeKind,
    RetryPolicy,
    classify,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(base_seconds=10, cap_seconds=600, max_attempts=5)
RESET = RateLimit(
    limit=1000,
    remaining=0,
    image_limit=50,
    image_remaining=50,
    reset=int((NOW + timedelta(minutes=20)).timestamp()),
)


def outcome(error, attempts=1, created_at=NOW, rate_limit=None):
    return classify(
        error,
        rate_limit=rate_limit,
        attempts=attempts,
        created_at=created_at,
        now=NOW,
        policy=POLICY,
        rng=random.Random(7),
    )


def test_success_is_delivered():
    result = outcome(None, rate_limit=RESET)
    assert result.kind == OutcomeKind.DELIVERED
    assert result.status_code == 200
    assert result.rate_limit == RESET


def test_400_fails_at_once_and_keeps_the_reason():
    result = outcome(BadRequestError("message: 1000 characters max", status_code=400))
    assert result.kind == OutcomeKind.FAILED
    assert result.error.text == "message: 1000 characters max"
    assert result.error.code is None  # the server's words, shown as they came
    assert result.spends_attempt


def test_401_revokes():
    result = outcome(AuthError("Invalid access token", status_code=401))
    assert result.kind == OutcomeKind.REVOKED
    assert result.error == CONNECTION_REVOKED


def test_401_for_an_unreachable_chat_is_its_own_outcome():
    error = AuthError("the chat can no longer be reached", status_code=401, chat_unreachable=True)
    result = outcome(error, attempts=POLICY.max_attempts + 3, rate_limit=RESET)
    assert result.kind == OutcomeKind.UNREACHABLE
    assert result.error == CHAT_UNREACHABLE
    assert "unreachable" in CHAT_UNREACHABLE.text
    assert "blocked" in CHAT_UNREACHABLE.text
    assert (result.status_code, result.spends_attempt, result.retry_at) == (401, True, None)
    assert result.rate_limit == RESET


def test_a_plain_401_still_revokes_whatever_the_flag_default():
    assert AuthError("x", status_code=401).chat_unreachable is False
    assert outcome(AuthError("x", status_code=401)).kind == OutcomeKind.REVOKED


def test_429_waits_until_reset_without_spending_an_attempt():
    result = outcome(RateLimitedError("limit", status_code=429, rate_limit=RESET), attempts=5)
    assert result.kind == OutcomeKind.WAIT
    assert result.spends_attempt is False
    assert result.retry_at == NOW + timedelta(minutes=20)


def test_a_monthly_limit_429_is_a_refusal_not_a_wait():
    """Issue 22: the relay's LINE channel spent its month; no hourly reset brings it back."""
    error = RateLimitedError("Monthly message limit reached", status_code=429, monthly_limit=True)
    result = outcome(error, rate_limit=RESET)
    assert (result.kind, result.status_code, result.error) == (
        OutcomeKind.FAILED,
        429,
        MONTHLY_LIMIT,
    )


def test_a_monthly_budget_429_is_a_refusal_not_a_wait():
    """A monthly LINE budget set at the relay is spent (issue 15): refused, not retried hourly."""
    error = RateLimitedError("budget spent", status_code=429, monthly_budget=True)
    result = outcome(error, rate_limit=RESET)
    assert (result.kind, result.status_code, result.error) == (
        OutcomeKind.FAILED,
        429,
        MONTHLY_BUDGET,
    )
    assert result.spends_attempt is True


def test_429_without_reset_waits_the_fallback():
    result = outcome(RateLimitedError("limit", status_code=429, rate_limit=RateLimit()))
    assert result.retry_at == NOW + timedelta(seconds=POLICY.rate_limit_fallback_seconds)


@pytest.mark.parametrize(
    "error",
    [
        ServerError("boom", status_code=500),
        ServerError("bad gateway", status_code=502),
        NetworkError("timed out"),
    ],
)
def test_server_errors_and_timeouts_retry_within_the_backoff(error):
    result = outcome(error, attempts=2)
    assert result.kind == OutcomeKind.RETRY
    assert result.spends_attempt
    assert NOW <= result.retry_at <= NOW + timedelta(seconds=20)


def test_retries_stop_after_max_attempts():
    result = outcome(ServerError("boom", status_code=500), attempts=5)
    assert result.kind == OutcomeKind.FAILED
    assert "gave up after 5 attempts" in result.error.text
    assert (result.error.code, result.error.params) == (
        "gave_up",
        {"count": 5, "reason": "boom"},
    )


def test_retries_stop_after_24_hours():
    old = NOW - timedelta(hours=24)
    result = outcome(NetworkError("timed out"), attempts=1, created_at=old)
    assert result.kind == OutcomeKind.FAILED


@given(attempt=st.integers(min_value=1, max_value=60), seed=st.integers())
def test_backoff_is_within_zero_and_the_capped_ceiling(attempt, seed):
    delay = POLICY.backoff(attempt, random.Random(seed))
    assert 0 <= delay <= min(POLICY.cap_seconds, POLICY.base_seconds * 2 ** (attempt - 1))


def test_a_thousand_simultaneous_failures_spread_out():
    """reliability.md: < 10 % of 1,000 retries in any one second (default policy)."""
    policy = RetryPolicy()
    rng = random.Random(2026)
    seconds = [int(policy.backoff(1, rng)) for _ in range(1000)]
    busiest = max(seconds.count(s) for s in set(seconds))
    assert busiest < 100
