"""The channel's bot and monthly message quota (line-platform.md B5), for the admin page and
``flask relay line-check``; and LINE's quota kept on the channel's row, read by the worker at
start, every ``RELAY_LINE_QUOTA_REFRESH_SECONDS`` and after a monthly-limit 429
(:func:`refresh_quota_if_due`), for the channel's budget (``relay/budgets.py``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update

from notify_site.extensions import db
from notify_site.relay.line import channel
from notify_site.relay.line.channel import ChannelError, ChannelSettings, messaging_api
from notify_site.relay.models import RelayLineChannel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChannelReport:
    bot_name: str
    basic_id: str | None
    #: None: no monthly limit (quota type "none").
    quota: int | None
    #: Messages counted this month so far (LINE says: approximate).
    used: int

    @property
    def remaining(self) -> int | None:
        return None if self.quota is None else max(self.quota - self.used, 0)


def channel_report(settings: ChannelSettings) -> ChannelReport:
    """Ask LINE for the bot's name and this month's quota and consumption."""
    from linebot.v3 import messaging  # the SDK loads on first use (channel.py)

    api = messaging_api(settings)
    try:
        bot = api.get_bot_info(_request_timeout=settings.timeout)
        quota = api.get_message_quota(_request_timeout=settings.timeout)
        used = api.get_message_quota_consumption(_request_timeout=settings.timeout)
    except messaging.ApiException as error:
        raise ChannelError(f"LINE answered HTTP {error.status}", error.status) from None
    except Exception as error:  # noqa: BLE001 - network errors
        raise ChannelError(f"could not reach LINE ({type(error).__name__})") from None
    limit = quota.value if quota.type == "limited" else None
    return ChannelReport(bot.display_name, bot.basic_id, limit, int(used.total_usage or 0))


# --- LINE's quota, read on a schedule (issue 15) -------------------------------------------


def read_quota(settings: ChannelSettings, now: datetime) -> tuple[int | None, int]:
    """Ask LINE for the month's limit and consumption (``channel.read_quota``, which the
    monthly-limit pause asks too) and keep them on the channel's row (``relay_line_channels``);
    commits. Raises ChannelError when LINE does not answer."""
    reading = channel.read_quota(settings)
    limit, total = reading.limit, reading.used
    _channel_row(settings)
    db.session.execute(
        update(RelayLineChannel)
        .where(RelayLineChannel.channel_id == settings.channel_id)
        .values(quota_limit=limit, quota_used=total, quota_checked_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return limit, total


def refresh_quota_if_due(settings: ChannelSettings, interval: float, now: datetime) -> bool:
    """Read LINE's quota at start (never read yet), every ``interval`` seconds, and when a
    monthly-limit 429 asked for it (:func:`ask_again`); True when it was read."""
    row = db.session.get(RelayLineChannel, settings.channel_id, populate_existing=True)
    checked = row.quota_checked_at if row is not None else None
    if checked is not None and now - checked < timedelta(seconds=interval):
        return False
    try:
        read_quota(settings, now)
    except ChannelError as error:
        db.session.rollback()
        log.warning("relay: could not read LINE's quota (%s)", error)
        # Not again before the interval: a LINE that is down is not asked every round.
        _channel_row(settings)
        db.session.execute(
            update(RelayLineChannel)
            .where(RelayLineChannel.channel_id == settings.channel_id)
            .values(quota_checked_at=now)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        return False
    return True


def ask_again(settings: ChannelSettings) -> None:
    """Have the next worker round read LINE's quota (after a monthly-limit 429); commits."""
    _channel_row(settings)
    db.session.execute(
        update(RelayLineChannel)
        .where(RelayLineChannel.channel_id == settings.channel_id)
        .values(quota_checked_at=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _channel_row(settings: ChannelSettings) -> None:
    from notify_site.on_conflict import dialect_insert

    db.session.execute(
        dialect_insert(RelayLineChannel)
        .values(channel_id=settings.channel_id)
        .on_conflict_do_nothing(index_elements=["channel_id"])
    )
