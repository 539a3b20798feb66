"""The per-token window: pure arithmetic, a hypothesis model check, and the SQL version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from notify_site.extensions import db
from notify_site.relay.errors import InvalidTokenError
from notify_site.relay.models import RelayAccessToken, RelayChat, RelayClient
from notify_site.relay.ratelimit import (
    RateLimits,
    RateWindow,
    current_window,
    rate_limit_headers,
    remaining,
    reset_epoch,
    spend,
    spend_call,
)

LIMITS = RateLimits(calls=1000, images=50, window_seconds=3600)
NOW = datetime(2026, 1, 2, 3, 4, 5, 250_000, tzinfo=UTC)


def test_a_token_without_a_window_gets_a_fresh_one_ending_a_window_later():
    window = current_window(RateWindow(None), NOW, LIMITS)
    # Rounded up to a whole second so that X-RateLimit-Reset is exact.
    assert window == RateWindow(datetime(2026, 1, 2, 4, 4, 6, tzinfo=UTC), 0, 0)


def test_a_live_window_is_kept_as_it_is():
    live = RateWindow(NOW + timedelta(minutes=10), 17, 3)
    assert current_window(live, NOW, LIMITS) is live


@pytest.mark.parametrize("offset", [timedelta(0), timedelta(seconds=-1), timedelta(days=-3)])
def test_a_window_whose_reset_has_come_starts_again(offset):
    spent = RateWindow(NOW + offset, 1000, 50)
    fresh = current_window(spent, NOW, LIMITS)
    assert (fresh.calls_used, fresh.images_used) == (0, 0)
    assert fresh.reset_at > NOW + timedelta(seconds=3599)


def test_spending_counts_calls_and_images():
    window = spend(RateWindow(None), NOW, 0, LIMITS)
    assert (window.calls_used, window.images_used) == (1, 0)
    window = spend(window, NOW + timedelta(seconds=1), 1, LIMITS)
    assert (window.calls_used, window.images_used) == (2, 1)
    assert remaining(window, LIMITS) == (998, 49)


def test_the_last_call_of_a_window_is_admitted_and_the_next_refused():
    window = RateWindow(NOW + timedelta(minutes=5), 999, 0)
    last = spend(window, NOW, 0, LIMITS)
    assert last is not None
    assert remaining(last, LIMITS) == (0, 50)
    assert spend(last, NOW, 0, LIMITS) is None


def test_image_uploads_have_their_own_limit_but_plain_calls_go_on():
    window = RateWindow(NOW + timedelta(minutes=5), 60, 50)
    assert spend(window, NOW, 1, LIMITS) is None
    plain = spend(window, NOW, 0, LIMITS)
    assert plain is not None
    assert remaining(plain, LIMITS) == (939, 0)


def test_a_spent_window_admits_again_once_it_resets():
    spent = RateWindow(NOW, 1000, 50)
    assert spend(spent, NOW - timedelta(seconds=1), 0, LIMITS) is None
    again = spend(spent, NOW, 1, LIMITS)
    assert (again.calls_used, again.images_used) == (1, 1)


def test_remaining_is_never_negative_when_the_limits_shrink():
    assert remaining(RateWindow(NOW, 1500, 70), LIMITS) == (0, 0)


def test_headers_are_integers_with_the_reset_in_epoch_seconds():
    window = RateWindow(datetime(2026, 1, 2, 4, 0, 0, tzinfo=UTC), 10, 2)
    assert rate_limit_headers(window, LIMITS) == {
        "X-RateLimit-Limit": "1000",
        "X-RateLimit-Remaining": "990",
        "X-RateLimit-ImageLimit": "50",
        "X-RateLimit-ImageRemaining": "48",
        "X-RateLimit-Reset": str(int(window.reset_at.timestamp())),
    }
    # A reset with a fraction of a second is rounded up, never announced early.
    fractional = RateWindow(datetime(2026, 1, 2, 4, 0, 0, 1, tzinfo=UTC))
    assert reset_epoch(fractional) == int(window.reset_at.timestamp()) + 1


def test_an_unstarted_window_has_no_reset_time():
    with pytest.raises(ValueError, match="current_window"):
        reset_epoch(RateWindow(None))


@settings(max_examples=200, deadline=None)
@given(
    calls=st.integers(min_value=0, max_value=6),
    images=st.integers(min_value=0, max_value=3),
    window_seconds=st.integers(min_value=1, max_value=20),
    steps=st.lists(st.tuples(st.integers(min_value=0, max_value=7), st.booleans()), max_size=60),
)
def test_no_window_ever_admits_more_than_its_limits(calls, images, window_seconds, steps):
    """A random stream of calls, some with an image, at non-decreasing times: per window, the
    admitted calls never exceed the limits, and a call is refused only when the limits say so."""
    limits = RateLimits(calls=calls, images=images, window_seconds=window_seconds)
    window = RateWindow(None)
    now = NOW
    admitted: dict[datetime, list[int]] = {}
    for gap, with_image in steps:
        now += timedelta(seconds=gap)
        image = 1 if with_image else 0
        live = current_window(window, now, limits)
        after = spend(window, now, image, limits)
        if after is None:
            assert live.calls_used >= calls or live.images_used + image > images
            continue
        assert after.reset_at == live.reset_at
        assert after.reset_at > now
        counts = admitted.setdefault(after.reset_at, [0, 0])
        counts[0] += 1
        counts[1] += image
        assert (after.calls_used, after.images_used) == tuple(counts)
        window = after
    for used_calls, used_images in admitted.values():
        assert used_calls <= calls
        assert used_images <= images


# --- The same rules in SQL ------------------------------------------------------------------


@pytest.fixture
def token_pk(app) -> int:
    with app.app_context():
        client = RelayClient(
            client_id="c", secret_hash="0" * 64, name="S", redirect_uri="https://x/"
        )
        chat = RelayChat(kind="USER", name="Someone")
        db.session.add_all([client, chat])
        db.session.flush()
        token = RelayAccessToken(token_hash="1" * 64, client_pk=client.id, chat_id=chat.id)
        db.session.add(token)
        db.session.commit()
        return token.id


def _stored(token_pk: int) -> tuple:
    row = db.session.execute(
        select(
            RelayAccessToken.window_reset_at,
            RelayAccessToken.calls_used,
            RelayAccessToken.images_used,
        ).where(RelayAccessToken.id == token_pk)
    ).one()
    return tuple(row)


def test_spend_call_starts_counts_refuses_and_renews_the_stored_window(app, token_pk):
    limits = RateLimits(calls=2, images=1, window_seconds=60)
    with app.app_context():
        first = spend_call(token_pk, images=1, limits=limits, now=NOW)
        db.session.commit()
        assert first.admitted
        reset = datetime(2026, 1, 2, 3, 5, 6, tzinfo=UTC)
        assert _stored(token_pk) == (reset, 1, 1)

        no_image = spend_call(token_pk, images=1, limits=limits, now=NOW + timedelta(seconds=5))
        db.session.rollback()
        assert not no_image.admitted
        assert no_image.window == RateWindow(reset, 1, 1)

        second = spend_call(token_pk, images=0, limits=limits, now=NOW + timedelta(seconds=5))
        db.session.commit()
        assert second.admitted
        assert second.window == RateWindow(reset, 2, 1)

        third = spend_call(token_pk, images=0, limits=limits, now=NOW + timedelta(seconds=30))
        db.session.rollback()
        assert not third.admitted
        assert _stored(token_pk) == (reset, 2, 1)

        renewed = spend_call(token_pk, images=0, limits=limits, now=reset)
        db.session.commit()
        assert renewed.admitted
        assert _stored(token_pk) == (reset + timedelta(seconds=60), 1, 0)


def test_spend_call_on_a_revoked_token_is_an_invalid_token(app, token_pk):
    with app.app_context():
        db.session.get(RelayAccessToken, token_pk).revoked_at = NOW
        db.session.commit()
        with pytest.raises(InvalidTokenError):
            spend_call(token_pk, images=0, limits=LIMITS, now=NOW)
