"""Per-token rate limiting: a fixed window of calls and image uploads (line-platform.md A4).

Each token has one window: when it resets, how many calls and image uploads it has spent. The
arithmetic is in small pure functions (:func:`current_window`, :func:`spend`,
:func:`remaining`, :func:`rate_limit_headers`); :func:`spend_call` applies the same rules in
the database with conditional UPDATEs, so that any number of processes sharing the database
admit at most the limit per window:

* within a live window: ``UPDATE ... SET calls_used = calls_used + 1 ... WHERE reset > now AND
  calls_used < limit AND images_used + n <= image_limit`` — the database serialises concurrent
  updates of the row and re-checks the condition, so the last call of a window is given once;
* when the window has passed (or never started): ``UPDATE ... SET reset = now + window,
  calls_used = 1 ... WHERE reset IS NULL OR reset <= now`` — only one process starts the new
  window; the others see its reset in the future and fall back to the first statement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, or_, select, update

from notify_site.extensions import db
from notify_site.prepared import PreparedCache, session_cursor
from notify_site.relay.errors import InvalidTokenError
from notify_site.relay.models import RelayAccessToken


@dataclass(frozen=True)
class RateLimits:
    """The configured limits: calls and image uploads per window of ``window_seconds``."""

    calls: int
    images: int
    window_seconds: int

    @classmethod
    def from_config(cls, config: Any) -> RateLimits:
        return cls(
            calls=int(config["RELAY_RATE_LIMIT"]),
            images=int(config["RELAY_IMAGE_RATE_LIMIT"]),
            window_seconds=int(config["RELAY_RATE_WINDOW"]),
        )


@dataclass(frozen=True)
class RateWindow:
    """One token's window: when it resets (None: not started) and what it has spent."""

    reset_at: datetime | None
    calls_used: int = 0
    images_used: int = 0


def _ceil_to_second(moment: datetime) -> datetime:
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment


def current_window(window: RateWindow, now: datetime, limits: RateLimits) -> RateWindow:
    """The window in force at ``now``: the stored one, or a fresh one if it has reset.

    A fresh window resets ``window_seconds`` after ``now``, rounded up to a whole second so that
    the ``X-RateLimit-Reset`` header (whole epoch seconds) is exact.
    """
    if window.reset_at is None or window.reset_at <= now:
        return RateWindow(_ceil_to_second(now + timedelta(seconds=limits.window_seconds)))
    return window


def admits(window: RateWindow, images: int, limits: RateLimits) -> bool:
    """Whether ``window`` has room for one more call carrying ``images`` image uploads."""
    return window.calls_used < limits.calls and window.images_used + images <= limits.images


def spend(window: RateWindow, now: datetime, images: int, limits: RateLimits) -> RateWindow | None:
    """The window after one call with ``images`` uploads at ``now``; None if it is refused."""
    window = current_window(window, now, limits)
    if not admits(window, images, limits):
        return None
    return replace(
        window, calls_used=window.calls_used + 1, images_used=window.images_used + images
    )


def remaining(window: RateWindow, limits: RateLimits) -> tuple[int, int]:
    """Calls and image uploads left in ``window`` (never negative, even if limits shrank)."""
    return (
        max(0, limits.calls - window.calls_used),
        max(0, limits.images - window.images_used),
    )


def reset_epoch(window: RateWindow) -> int:
    """The window's reset time in whole UTC epoch seconds (rounded up)."""
    if window.reset_at is None:
        raise ValueError("the window has not started; use current_window() first")
    return math.ceil(window.reset_at.timestamp())


def rate_limit_headers(window: RateWindow, limits: RateLimits) -> dict[str, str]:
    """The ``X-RateLimit-*`` headers LINE Notify sent, for a window in force."""
    calls_left, images_left = remaining(window, limits)
    return {
        "X-RateLimit-Limit": str(limits.calls),
        "X-RateLimit-Remaining": str(calls_left),
        "X-RateLimit-ImageLimit": str(limits.images),
        "X-RateLimit-ImageRemaining": str(images_left),
        "X-RateLimit-Reset": str(reset_epoch(window)),
    }


@dataclass(frozen=True)
class SpendResult:
    """What :func:`spend_call` did: whether the call was admitted, and the window after it."""

    admitted: bool
    window: RateWindow


# Built once and compiled once per dialect (notify_site.prepared): every accepted Notify call
# runs one of these under SQLite's write lock (the first write of its transaction), and
# RETURNING gives the window without another read.
_PREPARED = PreparedCache()
_tokens = RelayAccessToken.__table__
_now = bindparam("now", type_=_tokens.c.window_reset_at.type)
_images = bindparam("images", type_=_tokens.c.images_used.type)
_WINDOW_COLUMNS = (_tokens.c.window_reset_at, _tokens.c.calls_used, _tokens.c.images_used)
_SPEND_WITHIN = (
    update(_tokens)
    .where(
        _tokens.c.id == bindparam("token_pk"),
        _tokens.c.revoked_at.is_(None),
        _tokens.c.window_reset_at > _now,
        _tokens.c.calls_used < bindparam("calls"),
        _tokens.c.images_used + _images <= bindparam("image_limit"),
    )
    .values(
        calls_used=_tokens.c.calls_used + 1,
        images_used=_tokens.c.images_used + _images,
        last_used_at=_now,
    )
    .returning(*_WINDOW_COLUMNS)
)
_START_WINDOW = (
    update(_tokens)
    .where(
        _tokens.c.id == bindparam("token_pk"),
        _tokens.c.revoked_at.is_(None),
        or_(_tokens.c.window_reset_at.is_(None), _tokens.c.window_reset_at <= _now),
    )
    .values(
        window_reset_at=bindparam("reset_at", type_=_tokens.c.window_reset_at.type),
        calls_used=bindparam("calls_used"),
        images_used=bindparam("images_used"),
        last_used_at=_now,
    )
    .returning(*_WINDOW_COLUMNS)
)


def spend_call(token_pk: int, *, images: int, limits: RateLimits, now: datetime) -> SpendResult:
    """Spend one call (and ``images`` uploads) of the token's window, atomically.

    Runs inside the caller's transaction and does not commit: the caller commits together with
    whatever the call delivers, or rolls back. An admitted call also sets the token's
    ``last_used_at`` (My page shows it), in the same UPDATE. Raises
    :class:`InvalidTokenError` if the token was revoked meanwhile.
    """
    fresh = spend(RateWindow(None), now, images, limits)
    spend_params = {
        "token_pk": token_pk,
        "now": now,
        "images": images,
        "calls": limits.calls,
        "image_limit": limits.images,
    }
    spent: RateWindow | None = None
    for _attempt in range(3):
        with session_cursor(db.session) as cursor:
            row = cursor.row(
                _PREPARED.get("within", cursor.dialect, lambda: _SPEND_WITHIN), spend_params
            )
        if row is not None:
            spent = RateWindow(*row)
            break
        if fresh is None:
            break
        start_params = {
            "token_pk": token_pk,
            "now": now,
            "reset_at": fresh.reset_at,
            "calls_used": fresh.calls_used,
            "images_used": fresh.images_used,
        }
        with session_cursor(db.session) as cursor:
            row = cursor.row(
                _PREPARED.get("start", cursor.dialect, lambda: _START_WINDOW), start_params
            )
        if row is not None:
            spent = RateWindow(*row)
            break
        # Neither matched: another process started a new window in between, or this one is
        # spent. Look again; a spent live window fails both statements next time too.
        stored = _read_window(token_pk)
        if stored is None or not admits(current_window(stored, now, limits), images, limits):
            break

    window = spent if spent is not None else _read_window(token_pk)
    if window is None:
        raise InvalidTokenError()
    return SpendResult(spent is not None, current_window(window, now, limits))


def _read_window(token_pk: int) -> RateWindow | None:
    """The stored window of a live token, or None if the token is gone or revoked."""
    token = RelayAccessToken
    row = db.session.execute(
        select(token.window_reset_at, token.calls_used, token.images_used).where(
            token.id == token_pk, token.revoked_at.is_(None)
        )
    ).one_or_none()
    if row is None:
        return None
    return RateWindow(row.window_reset_at, row.calls_used, row.images_used)
